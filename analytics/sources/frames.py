"""The frames the analytics work on: their column schemas, the cube, and reading or deriving them.

Every frame read from the snapshot or the database is cast to one canonical schema
(:func:`conform`), so that both loaders give equal frames; the aggregates over event
rows (exposure, events per day, active accounts) are built here for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.sql import Select

from analytics.core.filters import CHOICES, Filters
from analytics.core.models import EventKind, Resolution

__all__ = [
    "ACCOUNT_COLUMNS",
    "ACTIVE_COLUMNS",
    "ANNOTATION_COLUMNS",
    "CASE_COLUMNS",
    "EVENTS_DAILY_COLUMNS",
    "EVENT_COLUMNS",
    "EXPOSURE_COLUMNS",
    "EXPOSURE_KINDS",
    "VIOLATIONS",
    "Cube",
    "active_from_events",
    "case_facts",
    "conform",
    "empty_frame",
    "events_daily_from_events",
    "exposure_from_events",
    "read_frame",
    "specialty_moves",
    "with_target_specialty",
]

#: Events that are exposures: the activity abuse is measured against.
EXPOSURE_KINDS: tuple[str, ...] = (
    EventKind.booking_created.value,
    EventKind.review_posted.value,
    EventKind.message_sent.value,
)
#: Resolutions that mean a violation was found and acted on.
VIOLATIONS: tuple[str, ...] = tuple(r.value for r in Resolution if r is not Resolution.no_violation)

# Category, severity and source are the taxonomy's (analytics.core.taxonomy): their Enums are
# those of the taxonomy in force when this module is first imported (the process's map). A
# snapshot written under another taxonomy no longer has the expected columns and is rebuilt.
_ENUMS = {name: pl.Enum(values) for name, values in CHOICES.items()}
_ENUMS["kind"] = pl.Enum(list(EXPOSURE_KINDS))

#: The columns of each frame, as the loaders give them.
CASE_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "opened_at": pl.Datetime("us"),
    "source": _ENUMS["source"],
    "category": _ENUMS["category"],
    "severity": _ENUMS["severity"],
    "status": pl.String,
    "region": _ENUMS["region"],
    "platform": _ENUMS["platform"],
    "specialty": _ENUMS["specialty"],
    "subject_account_id": pl.Int64,
    "reporter_account_id": pl.Int64,
    "first_response_at": pl.Datetime("us"),
    "resolved_at": pl.Datetime("us"),
    "resolution": pl.String,
    "appealed_at": pl.Datetime("us"),
    "appeal_outcome": pl.String,
    "repeat_offender": pl.Boolean,
}
EXPOSURE_COLUMNS: dict[str, Any] = {
    "day": pl.Date,
    "kind": _ENUMS["kind"],
    "region": _ENUMS["region"],
    "platform": _ENUMS["platform"],
    "specialty": _ENUMS["specialty"],
    "events": pl.Int64,
}
ACTIVE_COLUMNS: dict[str, Any] = {"week": pl.Date, "accounts": pl.Int64}
ACCOUNT_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "kind": pl.String,
    "created_at": pl.Datetime("us"),
    "specialty": _ENUMS["specialty"],
}
EVENTS_DAILY_COLUMNS: dict[str, Any] = {
    "day": pl.Date,
    "kind": pl.Enum([k.value for k in EventKind]),
    "region": _ENUMS["region"],
    "platform": _ENUMS["platform"],
    "events": pl.Int64,
}
ANNOTATION_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "start_at": pl.Datetime("us"),
    "end_at": pl.Datetime("us"),
    "kind": pl.String,
    "title": pl.String,
    "category": pl.String,
    "region": pl.String,
}
EVENT_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "ts": pl.Datetime("us"),
    "account_id": pl.Int64,
    "kind": pl.Enum([k.value for k in EventKind]),
    "platform": _ENUMS["platform"],
    "region": _ENUMS["region"],
    "target_account_id": pl.Int64,
    "device_hash": pl.String,
    "ip_hash": pl.String,
    "rating": pl.Int64,
    "specialty": _ENUMS["specialty"],
}


@dataclass(frozen=True)
class Cube:
    """The frames trend metrics are computed from, for one set of filters."""

    filters: Filters
    cases: pl.DataFrame
    exposure: pl.DataFrame
    active: pl.DataFrame
    annotations: pl.DataFrame
    as_of: datetime | None
    loader: str = "snapshot"
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    #: Results derived from this cube, computed once (see ``analytics.metrics.trends``).
    memo: dict[Any, pl.DataFrame] = field(default_factory=dict, compare=False, repr=False)


def empty_frame(columns: Mapping[str, Any]) -> pl.DataFrame:
    """A frame with no rows and the given columns.

    >>> empty_frame(ACTIVE_COLUMNS).schema
    Schema([('week', Date), ('accounts', Int64)])
    """
    return pl.DataFrame(schema=dict(columns))


def conform(frame: pl.DataFrame, columns: Mapping[str, Any]) -> pl.DataFrame:
    """Cast a frame read from any source to the canonical schema."""
    exprs = []
    for name, dtype in columns.items():
        col = pl.col(name)
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype).alias(name))
            continue
        have = frame.schema[name]
        if isinstance(dtype, pl.Datetime) and have == pl.String:
            col = col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)
        elif dtype == pl.Date and have == pl.String:
            col = col.str.to_date("%Y-%m-%d")
        elif dtype == pl.Date and isinstance(have, pl.Datetime):
            col = col.dt.date()
        elif dtype == pl.Boolean and have != pl.Boolean:
            col = col.cast(pl.Int8).cast(pl.Boolean)
        exprs.append(col.cast(dtype).alias(name))
    try:
        return frame.select(exprs)
    except pl.exceptions.InvalidOperationError:
        problem = _unknown_values(frame, columns)
        if problem is None:
            raise
        raise ValueError(problem) from None


def _unknown_values(frame: pl.DataFrame, columns: Mapping[str, Any]) -> str | None:
    """Which values of an enumerated column are not among its dtype's, in one line.

    >>> _unknown_values(pl.DataFrame({"category": ["spam", "fraud", "fraud"]}),
    ...                 {"category": pl.Enum(["spam"])})
    "category: 'fraud' (2 rows) is not a value Lookout knows (for category, severity and \
source: the taxonomy in force, analytics.core.taxonomy)"
    """
    for name, dtype in columns.items():
        if not isinstance(dtype, pl.Enum) or name not in frame.columns:
            continue
        values = frame.get_column(name).cast(pl.String)
        outside = values.filter(~values.is_in(dtype.categories.to_list()) & values.is_not_null())
        if outside.is_empty():
            continue
        counts = outside.value_counts(sort=True).head(3).rows()
        shown = ", ".join(f"{v!r} ({n:,} {'row' if n == 1 else 'rows'})" for v, n in counts)
        verb = "is" if len(counts) == 1 else "are"
        return (
            f"{name}: {shown} {verb} not a value Lookout knows (for category, severity and "
            "source: the taxonomy in force, analytics.core.taxonomy)"
        )
    return None


def read_frame(
    engine: Engine, stmt: Select[*tuple[Any, ...]], columns: Mapping[str, Any]
) -> pl.DataFrame:
    """Run a Core statement (bound parameters) into a frame of the canonical schema
    (on ClickHouse through Arrow: :func:`_clickhouse_frame`)."""
    if engine.dialect.name == "clickhousedb":
        frame = _clickhouse_frame(engine, stmt)
    else:
        with engine.connect() as conn:
            frame = pl.read_database(stmt, conn, infer_schema_length=None)
    return empty_frame(columns) if frame.is_empty() else conform(frame, columns)


def _clickhouse_frame(engine: Engine, stmt: Select[*tuple[Any, ...]]) -> pl.DataFrame:
    """A statement's rows read by clickhouse-connect as Arrow (2-8x faster than rows
    through SQLAlchemy on large results), its UTC times made naive as Lookout keeps them
    (:mod:`analytics.sources.warehouse`)."""
    compiled = stmt.compile(engine, compile_kwargs={"render_postcompile": True})
    with engine.connect() as conn:
        client = conn.connection.dbapi_connection.client  # type: ignore[union-attr]
        table = client.query_arrow(str(compiled), parameters=compiled.params)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    zoned = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(pl.col(zoned).dt.replace_time_zone(None)) if zoned else frame


def with_target_specialty(events: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """``events`` with ``specialty`` set to their target account's (null without a target),
    as the snapshot and the warehouse keep them, in the events' order.

    >>> ev = pl.DataFrame({"id": [1, 2], "target_account_id": [7, None]})
    >>> acc = pl.DataFrame({"id": [7], "specialty": ["dentistry"]})
    >>> with_target_specialty(ev, acc)["specialty"].to_list()
    ['dentistry', None]
    """
    specialty = accounts.select(pl.col("id").alias("target_account_id"), "specialty")
    return events.drop("specialty", strict=False).join(
        specialty, on="target_account_id", how="left", maintain_order="left"
    )


def specialty_moves(before: pl.DataFrame, after: pl.DataFrame) -> int:
    """How many accounts of both ``before`` and ``after`` (``id``, ``specialty``) changed
    specialty: events copied with their target's specialty must then be copied again.

    >>> a = pl.DataFrame({"id": [1, 2, 3], "specialty": ["dentistry", None, "optometry"]})
    >>> b = pl.DataFrame({"id": [1, 2, 4], "specialty": ["dentistry", "optometry", None]})
    >>> specialty_moves(a, b)
    1
    """
    joined = before.select("id", pl.col("specialty").cast(pl.String)).join(
        after.select("id", pl.col("specialty").cast(pl.String).alias("now")), on="id"
    )
    return joined.filter(pl.col("specialty").ne_missing(pl.col("now"))).height


def case_facts(cases: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """Cases with the subject's specialty and whether the subject was already actioned."""
    with_specialty = cases.drop("specialty", "repeat_offender", strict=False).join(
        accounts.select(pl.col("id").alias("subject_account_id"), "specialty"),
        on="subject_account_id",
        how="left",
    )
    first_violation = (
        cases.filter(pl.col("resolution").is_in(list(VIOLATIONS)))
        .group_by("subject_account_id")
        .agg(_first=pl.col("resolved_at").min())
    )
    flagged = with_specialty.join(first_violation, on="subject_account_id", how="left")
    # A subject is a repeat offender when a violation was resolved before this case
    # opened; the earliest one decides whether any such violation exists.
    return conform(
        flagged.with_columns(
            repeat_offender=(pl.col("_first") <= pl.col("opened_at")).fill_null(False)
        ).sort("id"),
        CASE_COLUMNS,
    )


def exposure_from_events(events: pl.LazyFrame) -> pl.DataFrame:
    """Exposure events per day, kind, region, platform and the target's specialty."""
    return conform(
        events.filter(pl.col("kind").cast(pl.String).is_in(list(EXPOSURE_KINDS)))
        .group_by(
            pl.col("ts").dt.date().alias("day"),
            pl.col("kind").cast(pl.String),
            "region",
            "platform",
            "specialty",
        )
        .agg(events=pl.len())
        .collect(),
        EXPOSURE_COLUMNS,
    ).sort(pl.all())


def events_daily_from_events(events: pl.LazyFrame) -> pl.DataFrame:
    """Events of every kind per day, region and platform (for the anomaly scan)."""
    return conform(
        events.group_by(pl.col("ts").dt.date().alias("day"), "kind", "region", "platform")
        .agg(events=pl.len())
        .collect(),
        EVENTS_DAILY_COLUMNS,
    ).sort(pl.all())


def active_from_events(events: pl.LazyFrame) -> pl.DataFrame:
    """Distinct active accounts per ISO week."""
    return conform(
        events.group_by(pl.col("ts").dt.truncate("1w").dt.date().alias("week"))
        .agg(accounts=pl.col("account_id").n_unique())
        .collect(),
        ACTIVE_COLUMNS,
    ).sort("week")
