"""Loading: the frames the trend analytics work on, from a Parquet snapshot or by SQL pushdown.

The weekly page never scans raw event rows. It works on a :class:`Cube`:

- ``exposure``: the daily exposure cube, day x kind x region x platform x the
  target provider's specialty -> events (bookings, reviews and messages);
- ``active``: distinct active accounts per week under the filters;
- ``cases``: the narrow case rows that distinct counts and percentiles need;
- ``annotations``: the known events.

Two ways build the same cube (tested equal):

(a) **snapshot** (default for the embedded SQLite database): Polars over a columnar
    copy of the database under ``data/snapshots/<key>/``. The key is a hash of the
    database URL, so another ``LOOKOUT_DATABASE_URL`` never reads it. The snapshot
    records a fingerprint of the database; a stale snapshot is refreshed
    (incrementally: new events are appended, cases and accounts re-read), not trusted.
    A snapshot whose files cannot be read (:class:`SnapshotBroken`) is rebuilt whole by
    its next refresh; a folder that cannot be written raises :class:`SnapshotUnwritable`.
    With the default loader (``loader=None``) either makes the reads fall back to (b).
(b) **pushdown** (default for any other database): SQLAlchemy Core queries in which the
    filters and the first aggregation run in the database.

``LOOKOUT_LOADER=snapshot|pushdown`` overrides the choice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import polars as pl
from sqlalchemy import (
    Date,
    Engine,
    case,
    distinct,
    false,
    func,
    inspect,
    or_,
    select,
    true,
)
from sqlalchemy.engine import URL
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement

from analytics.core import db
from analytics.core.db import (
    SPECIALTIES,
    US_STATES,
    Account,
    Annotation,
    Case,
    CaseSource,
    Category,
    Event,
    EventKind,
    Platform,
    Resolution,
    Severity,
)

__all__ = [
    "CHOICES",
    "DIMENSIONS",
    "EXPOSURE_KINDS",
    "VIOLATIONS",
    "Cube",
    "Filters",
    "RefreshSummary",
    "SnapshotBroken",
    "SnapshotError",
    "SnapshotUnwritable",
    "bypass_snapshot",
    "snapshot_bypassed",
    "snapshot_problem",
    "case_texts",
    "empty_frame",
    "ignored_values",
    "parse_day",
    "whole_number",
    "FIRST_DAY",
    "LAST_DAY",
    "read_frame",
    "load_cube",
    "data_fingerprint",
    "events_daily",
    "loader_for",
    "parse_filters",
    "refresh",
    "snapshot_dir",
    "snapshot_frames",
    "snapshot_is_fresh",
]

#: The dimensions every metric can be sliced and filtered by.
DIMENSIONS: tuple[str, ...] = ("category", "region", "platform", "severity", "source", "specialty")
#: Events that are exposures: the activity abuse is measured against.
EXPOSURE_KINDS: tuple[str, ...] = (
    EventKind.booking_created.value,
    EventKind.review_posted.value,
    EventKind.message_sent.value,
)
#: Resolutions that mean a violation was found and acted on.
VIOLATIONS: tuple[str, ...] = tuple(r.value for r in Resolution if r is not Resolution.no_violation)

_T = TypeVar("_T")
_SNAPSHOT_FORMAT = 2  # bump when the snapshot gains or changes a file
_ROOT = Path(__file__).resolve().parent.parent / "data" / "snapshots"
_EVENT_CHUNK = 2_000_000

#: The values each dimension can take.
CHOICES: dict[str, tuple[str, ...]] = {
    "category": tuple(c.value for c in Category),
    "region": tuple(US_STATES),
    "platform": tuple(p.value for p in Platform),
    "severity": tuple(s.value for s in Severity),
    "source": tuple(s.value for s in CaseSource),
    "specialty": tuple(SPECIALTIES),
}
_ENUMS = {name: pl.Enum(values) for name, values in CHOICES.items()}
_ENUMS["kind"] = pl.Enum(list(EXPOSURE_KINDS))

_CASE_COLUMNS: dict[str, Any] = {
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
_EXPOSURE_COLUMNS: dict[str, Any] = {
    "day": pl.Date,
    "kind": _ENUMS["kind"],
    "region": _ENUMS["region"],
    "platform": _ENUMS["platform"],
    "specialty": _ENUMS["specialty"],
    "events": pl.Int64,
}
_ACTIVE_COLUMNS: dict[str, Any] = {"week": pl.Date, "accounts": pl.Int64}
_ACCOUNT_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "kind": pl.String,
    "created_at": pl.Datetime("us"),
    "specialty": _ENUMS["specialty"],
}
_EVENTS_DAILY_COLUMNS: dict[str, Any] = {
    "day": pl.Date,
    "kind": pl.Enum([k.value for k in EventKind]),
    "region": _ENUMS["region"],
    "platform": _ENUMS["platform"],
    "events": pl.Int64,
}
_ANNOTATION_COLUMNS: dict[str, Any] = {
    "id": pl.Int64,
    "start_at": pl.Datetime("us"),
    "end_at": pl.Datetime("us"),
    "kind": pl.String,
    "title": pl.String,
    "category": pl.String,
    "region": pl.String,
}
_EVENT_COLUMNS: dict[str, Any] = {
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


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """What the user looks at: an inclusive date range and values per dimension.

    An empty tuple means "all". Dates are days (UTC); ``end`` is included.

    >>> Filters(category=("spam",)).where("category")
    ('spam',)
    >>> Filters().is_empty()
    True
    """

    start: date | None = None
    end: date | None = None
    category: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    platform: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    specialty: tuple[str, ...] = ()

    def where(self, dim: str) -> tuple[str, ...]:
        """The chosen values of one dimension (empty: all)."""
        return tuple(getattr(self, dim))

    def is_empty(self) -> bool:
        """True when no dimension is restricted (dates aside)."""
        return not any(self.where(d) for d in DIMENSIONS)

    def window(self) -> tuple[datetime, datetime]:
        """The loaded time window: whole ISO weeks covering ``start``..``end``.

        >>> Filters(start=date(2026, 11, 18), end=date(2026, 11, 24)).window()
        (datetime.datetime(2026, 11, 16, 0, 0), datetime.datetime(2026, 11, 30, 0, 0))
        """
        if self.start is None or self.end is None:
            raise ValueError("the filters need a start and an end date")
        lo = self.start - timedelta(days=self.start.weekday())
        hi = self.end - timedelta(days=self.end.weekday()) + timedelta(days=7)
        return datetime.combine(lo, datetime.min.time()), datetime.combine(hi, datetime.min.time())


#: Dates outside these are refused wherever a date is typed or linked.
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)


def parse_day(text: str) -> date | None:
    """An ISO date between :data:`FIRST_DAY` and :data:`LAST_DAY`, else None.

    >>> parse_day("2026-11-24"), parse_day("9999-12-31"), parse_day("tomorrow")
    (datetime.date(2026, 11, 24), None, None)
    """
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def whole_number(text: str, *, limit: int = 2**62) -> int | None:
    """A positive whole number written in ASCII digits, below ``limit``; else None.

    >>> whole_number("42"), whole_number("²"), whole_number("9" * 5000), whole_number("0")
    (42, None, None, None)
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value < limit else None


def ignored_values(values: Sequence[str], *, show: int = 3) -> str:
    """Dropped values for a note: the first few, cut short, and how many more.

    >>> ignored_values(["x" * 60, "b", "c", "d", "e"])
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…', 'b', 'c' and 2 more"
    """
    shown = [repr(v[:30] + "…" if len(v) > 30 else v) for v in values[:show]]
    more = f" and {len(values) - show:,} more" if len(values) > show else ""
    return ", ".join(shown) + more


def parse_filters(params: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """Filters from text parameters (e.g. URL query parameters), dropping invalid values.

    Dimensions take comma-separated values; ``start`` and ``end`` take ISO dates.
    Returns the filters and one note per value dropped.

    >>> f, notes = parse_filters({"category": "spam,nonsense", "start": "2026-13-01"})
    >>> f.category, notes
    (('spam',), ["Ignored category 'nonsense': not a known value.", "Ignored start '2026-13-01': not a date (YYYY-MM-DD) between 1990 and 2100."])
    """  # noqa: E501
    notes: list[str] = []
    values: dict[str, Any] = {}
    for dim in DIMENSIONS:
        raw = [v.strip() for v in str(params.get(dim, "") or "").split(",") if v.strip()]
        good = tuple(dict.fromkeys(v for v in raw if v in CHOICES[dim]))
        bad = [v for v in dict.fromkeys(raw) if v not in good]
        if bad:
            notes.append(f"Ignored {dim} {ignored_values(bad)}: not a known value.")
        values[dim] = good
    for key in ("start", "end"):
        raw_date = str(params.get(key, "") or "").strip()
        if not raw_date:
            continue
        day = parse_day(raw_date)
        if day is None:
            notes.append(
                f"Ignored {key} {raw_date[:40]!r}: not a date (YYYY-MM-DD) between "
                f"{FIRST_DAY:%Y} and {LAST_DAY:%Y}."
            )
        else:
            values[key] = day
    f = Filters(**values)
    if f.start and f.end and f.start > f.end:
        notes.append("Ignored the date range: it ends before it starts.")
        f = replace(f, start=None, end=None)
    return f, notes


# --------------------------------------------------------------------------- the cube


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


class SnapshotError(RuntimeError):
    """A snapshot that cannot be used; ``reason`` says why, naming no path but the
    snapshot's own folder name (the hash key).

    >>> print(SnapshotBroken(Path("/srv/snapshots/3f2a"), "cases.parquet is missing"))
    the snapshot 3f2a is broken: cases.parquet is missing
    """

    what = "cannot be used"

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(folder, reason)
        self.folder, self.reason = folder, reason

    def __str__(self) -> str:
        return f"the snapshot {self.folder.name} {self.what}: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Streamlit caches it)
        return type(self), (self.folder, self.reason)


class SnapshotBroken(SnapshotError):
    """A file of the snapshot is missing, unreadable or of the wrong shape; the next
    :func:`refresh` rebuilds the snapshot whole."""

    what = "is broken"


class SnapshotUnwritable(SnapshotError, OSError):
    """The snapshot folder cannot be created or written (an ``OSError`` too)."""

    what = "cannot be written"


#: Snapshots this process reads around (by pushdown) until a refresh succeeds.
_BYPASSED: dict[Path, SnapshotError] = {}


def bypass_snapshot(
    engine: Engine, problem: SnapshotError | None, *, root: Path | None = None
) -> None:
    """Read ``engine``'s database by pushdown in this process while its snapshot has
    ``problem``; ``None`` reads the snapshot again. A successful :func:`refresh` clears it.

    >>> from sqlalchemy import create_engine
    >>> engine = create_engine("sqlite://")
    >>> bypass_snapshot(engine, SnapshotBroken(Path("x"), "cases.parquet is missing"))
    >>> loader_for(engine), str(snapshot_bypassed(engine))
    ('pushdown', 'the snapshot x is broken: cases.parquet is missing')
    >>> bypass_snapshot(engine, None)
    >>> loader_for(engine), snapshot_bypassed(engine)
    ('snapshot', None)
    """
    folder = snapshot_dir(engine, root=root)
    if problem is None:
        _BYPASSED.pop(folder, None)
    else:
        _BYPASSED[folder] = problem


def snapshot_bypassed(engine: Engine, *, root: Path | None = None) -> SnapshotError | None:
    """Why this process reads around ``engine``'s snapshot, or None (see
    :func:`bypass_snapshot`)."""
    return _BYPASSED.get(snapshot_dir(engine, root=root))


def loader_for(engine: Engine, *, root: Path | None = None) -> Literal["snapshot", "pushdown"]:
    """The default loader: snapshot for SQLite, pushdown elsewhere; ``LOOKOUT_LOADER`` wins,
    and a snapshot bypassed in this process (:func:`bypass_snapshot`) gives pushdown.

    >>> from sqlalchemy import create_engine
    >>> loader_for(create_engine("sqlite://"))
    'snapshot'
    """
    chosen = os.environ.get("LOOKOUT_LOADER", "").strip().lower()
    if chosen not in ("snapshot", "pushdown"):
        chosen = "snapshot" if engine.dialect.name == "sqlite" else "pushdown"
    if chosen == "snapshot" and snapshot_bypassed(engine, root=root) is not None:
        return "pushdown"
    return chosen  # type: ignore[return-value]


def _either(
    engine: Engine,
    loader: Literal["snapshot", "pushdown"] | None,
    root: Path | None,
    *,
    snapshot: Callable[[Path], _T],
    pushdown: Callable[[], _T],
) -> _T:
    """Read through the snapshot or by pushdown. With the default loader (``None``) a
    snapshot that cannot be used is bypassed (marked for a rebuild) and the database read
    instead; a loader asked for by name raises the :class:`SnapshotError`."""
    if (loader or loader_for(engine, root=root)) == "snapshot":
        try:
            return snapshot(_ready(engine, root=root))
        except SnapshotError as exc:
            if loader is not None:
                raise
            _fall_back(engine, exc, root=root)
    return pushdown()


def _ready(engine: Engine, *, root: Path | None) -> Path:
    """The snapshot folder, refreshed first when stale or broken (a refresh rebuilds a
    snapshot with a missing, unreadable or misshapen file)."""
    folder = snapshot_dir(engine, root=root)
    state = _read_state(folder)
    if not snapshot_is_fresh(engine, root=root) or _damage(folder, state or {}):
        refresh(engine, root=root)
    return folder


def _fall_back(engine: Engine, problem: SnapshotError, *, root: Path | None) -> None:
    bypass_snapshot(engine, problem, root=root)
    if isinstance(problem, SnapshotBroken):
        _mark_broken(problem.folder, problem.reason)


@contextmanager
def _reading(folder: Path) -> Iterator[None]:
    """Turn a failure to read the snapshot's files into :class:`SnapshotBroken`."""
    try:
        yield
    except (pl.exceptions.PolarsError, OSError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        found = _damage(folder, _read_state(folder) or {})
        reason = found or f"a file cannot be read ({type(exc).__name__})"
        raise SnapshotBroken(folder, reason) from exc


def load_cube(
    engine: Engine,
    filters: Filters,
    *,
    loader: Literal["snapshot", "pushdown"] | None = None,
    root: Path | None = None,
) -> Cube:
    """Load the cube for ``filters`` (which must have a date range).

    The snapshot loader refreshes a missing, stale or broken snapshot first. With the
    default loader, a snapshot that cannot be used is read around (see :func:`_either`).
    """
    lo, hi = filters.window()
    t0 = time.perf_counter()
    cube = _either(
        engine,
        loader,
        root,
        snapshot=lambda folder: _from_snapshot(folder, filters, lo, hi),
        pushdown=lambda: _from_database(engine, filters, lo, hi),
    )
    cube.timings["load"] = time.perf_counter() - t0
    return cube


def events_daily(
    engine: Engine,
    *,
    start: date,
    end: date,
    loader: Literal["snapshot", "pushdown"] | None = None,
    root: Path | None = None,
) -> pl.DataFrame:
    """Events of every kind per day, region and platform for days in ``[start, end)``.

    Columns ``day``, ``kind``, ``region``, ``platform``, ``events``; the snapshot's
    precomputed table, or one GROUP BY in the database.
    """

    def from_snapshot(folder: Path) -> pl.DataFrame:
        with _reading(folder):
            return (
                pl.scan_parquet(folder / "events_daily.parquet")
                .filter(pl.col("day") >= start, pl.col("day") < end)
                .collect()
                .sort(pl.all())
            )

    return _either(
        engine,
        loader,
        root,
        snapshot=from_snapshot,
        pushdown=lambda: _daily_sql(engine, start, end),
    )


def _daily_sql(engine: Engine, start: date, end: date) -> pl.DataFrame:
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    day = _day(Event.ts).label("day")
    stmt = (
        select(day, Event.kind, Event.region, Event.platform, func.count().label("events"))
        .where(Event.ts >= lo, Event.ts < hi)
        .group_by(day, Event.kind, Event.region, Event.platform)
    )
    return read_frame(engine, stmt, _EVENTS_DAILY_COLUMNS).sort(pl.all())


def snapshot_frames(engine: Engine, *, root: Path | None = None) -> dict[str, pl.LazyFrame]:
    """The snapshot's raw tables as lazy frames (``events``, ``accounts``, ``cases``),
    refreshed first when stale; for analyses that need rows, such as account scoring.

    When the snapshot cannot be used (bypassed, unwritable, or a file fails its check)
    the same frames come from the database, read when collected, and the snapshot is
    bypassed until it is rebuilt.
    """
    if snapshot_bypassed(engine, root=root) is None:
        try:
            folder = _ready(engine, root=root)
            found = _damage(folder, _read_state(folder) or {})
            if found:
                raise SnapshotBroken(folder, found)
            events = folder / "events"
            return {
                "events": pl.scan_parquet(events / "*.parquet")
                if any(events.glob("*.parquet"))
                else empty_frame(_EVENT_COLUMNS).lazy(),
                "accounts": pl.scan_parquet(folder / "accounts.parquet"),
                "cases": pl.scan_parquet(folder / "cases.parquet"),
            }
        except SnapshotError as exc:
            _fall_back(engine, exc, root=root)
    return _database_frames(engine)


def _database_frames(engine: Engine) -> dict[str, pl.LazyFrame]:
    """The frames of :func:`snapshot_frames`, read from the database when collected
    (through SQLAlchemy: the app's process never loads connectorx's SQLite)."""

    def accounts() -> pl.DataFrame:
        return read_frame(engine, _ACCOUNTS_QUERY, _ACCOUNT_COLUMNS)

    def cases() -> pl.DataFrame:
        return _case_facts(read_frame(engine, _CASES_QUERY, _CASE_COLUMNS), accounts())

    def events() -> pl.DataFrame:
        target = aliased(Account, name="target")
        cols = [getattr(Event, c) for c in _EVENT_COLUMNS if c != "specialty"]
        stmt = (
            select(*cols, target.specialty)
            .select_from(Event)
            .outerjoin(target, target.id == Event.target_account_id)
        )
        return read_frame(engine, stmt, _EVENT_COLUMNS)

    return {
        "events": pl.defer(events, schema=_EVENT_COLUMNS),
        "accounts": pl.defer(accounts, schema=_ACCOUNT_COLUMNS),
        "cases": pl.defer(cases, schema=_CASE_COLUMNS),
    }


def empty_frame(columns: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(columns))


def _conform(frame: pl.DataFrame, columns: Mapping[str, Any]) -> pl.DataFrame:
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
    return frame.select(exprs)


def _filter_exprs(filters: Filters, dims: tuple[str, ...]) -> list[pl.Expr]:
    return [pl.col(d).is_in(list(filters.where(d))) for d in dims if filters.where(d)]


def _case_window(lo: datetime, hi: datetime) -> pl.Expr:
    """Cases opened in the window, and older cases still open at its start (backlog)."""
    return (pl.col("opened_at") < hi) & (
        (pl.col("opened_at") >= lo)
        | pl.col("resolved_at").is_null()
        | (pl.col("resolved_at") >= lo)
    )


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class RefreshSummary:
    """What a snapshot refresh did."""

    folder: Path
    mode: Literal["fresh", "full", "incremental"]
    new_events: int
    events: int
    cases: int
    seconds: float
    #: What was wrong with the snapshot when a refresh rebuilt it, if anything.
    repaired: str | None = None

    def describe(self) -> str:
        """One line for the CLI."""
        if self.mode == "fresh":
            return f"snapshot {self.folder} is up to date"
        why = f" (rebuilt: {self.repaired})" if self.repaired else ""
        return (
            f"{self.mode} refresh of {self.folder}{why}: {self.new_events:,} new events "
            f"({self.events:,} in all), {self.cases:,} cases, {self.seconds:.1f} s"
        )


def snapshot_dir(engine: Engine, *, root: Path | None = None) -> Path:
    """The snapshot folder of a database: a hash of its URL under ``data/snapshots``,
    without the user and password, so the pages' read-only role and the writer that
    refreshes the snapshot (``LOOKOUT_READER_DATABASE_URL``) share one folder.

    >>> from sqlalchemy import create_engine
    >>> a = snapshot_dir(create_engine("sqlite:///a.db"), root=Path("/tmp/s"))
    >>> b = snapshot_dir(create_engine("sqlite:///b.db"), root=Path("/tmp/s"))
    >>> a != b and a.parent == b.parent == Path("/tmp/s")
    True
    >>> writer = create_engine("postgresql+psycopg://lookout:pw@db:5432/prod")
    >>> reader = create_engine("postgresql+psycopg://lookout_reader:other@db:5432/prod")
    >>> snapshot_dir(writer, root=Path("/s")) == snapshot_dir(reader, root=Path("/s"))
    True
    """
    u = engine.url  # URL.set(username=None) would keep the user: build it without one
    bare = URL.create(u.drivername, host=u.host, port=u.port, database=u.database, query=u.query)
    url = bare.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite" and db.sqlite_path(engine):
        url = "sqlite:///" + str(Path(db.sqlite_path(engine) or "").resolve())
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    base = root or Path(os.environ.get("LOOKOUT_SNAPSHOT_DIR") or _ROOT)
    return base / key


def _fingerprint(engine: Engine) -> dict[str, Any]:
    """Cheap facts that change whenever the data does.

    One aggregate per query, each answered from an index (SQLite only optimises a lone
    ``max`` this way): highest ids, newest timestamps and resolution, and the
    ``data_version`` our own writers (seed, import) bump. Deleting rows behind Lookout's
    back is not seen: run ``python -m analytics refresh --full`` after such a change.
    """
    tables = set(inspect(engine).get_table_names())
    probes: dict[str, Any] = {
        "events": (func.max(Event.id), func.max(Event.ts)),
        "accounts": (func.max(Account.id),),
        "annotations": (func.max(Annotation.id), func.count(Annotation.id)),
        "cases": (func.max(Case.id), func.max(Case.opened_at), func.max(Case.resolved_at)),
    }
    fp: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, aggregates in probes.items():
            if name in tables:
                fp[name] = [conn.execute(select(agg)).scalar() for agg in aggregates]
    fp["data_version"] = db.get_meta(engine, "data_version")
    return _json_round(fp)


def data_fingerprint(engine: Engine) -> str:
    """A short text that changes whenever the database's data does (a cache key)."""
    text = json.dumps(_fingerprint(engine), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("format") == _SNAPSHOT_FORMAT else None


def snapshot_is_fresh(engine: Engine, *, root: Path | None = None) -> bool:
    """True when the snapshot exists, is not marked broken and its fingerprint matches
    the database's."""
    state = _read_state(snapshot_dir(engine, root=root))
    return (
        state is not None
        and not state.get("broken")
        and state["fingerprint"] == _fingerprint(engine)
    )


#: The snapshot's files beside the event parts, and their columns.
_FILES: dict[str, Mapping[str, Any]] = {
    "accounts.parquet": _ACCOUNT_COLUMNS,
    "annotations.parquet": _ANNOTATION_COLUMNS,
    "cases.parquet": _CASE_COLUMNS,
    "exposure.parquet": _EXPOSURE_COLUMNS,
    "events_daily.parquet": _EVENTS_DAILY_COLUMNS,
    "active.parquet": _ACTIVE_COLUMNS,
}


def _damage(folder: Path, state: Mapping[str, Any]) -> str | None:
    """The first thing wrong with a snapshot's files, or None: a mark left by a failed
    read, a file or event part missing, one that is not Parquet (garbage, truncated)
    or whose columns are not the expected ones, or an event part the state does not
    list (left by an interrupted refresh). Reads only the files' footers."""
    if state.get("broken"):
        return str(state["broken"])
    found = sorted(p.name for p in (folder / "events").glob("*.parquet"))
    listed = state.get("parts", found)
    files = dict(_FILES) | {f"events/{name}": _EVENT_COLUMNS for name in listed}
    for extra in sorted(set(found) - set(listed)):
        return f"events/{extra} is not part of the snapshot"
    for name, columns in files.items():
        try:
            schema = pl.read_parquet_schema(folder / name)
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, pl.exceptions.PolarsError):
            return f"{name} is not a readable Parquet file"
        if dict(schema) != dict(columns):
            return f"{name} does not have the expected columns"
    return None


def _mark_broken(folder: Path, reason: str) -> None:
    """Record in the state that a file could not be read (the next refresh rebuilds);
    a folder that cannot be written keeps no mark."""
    state = _read_state(folder)
    if state is not None and not state.get("broken"):
        with suppress(OSError):
            _write_state(folder, state | {"broken": reason})


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(folder / "state.json")


def _os_reason(exc: OSError) -> str:
    """An OS error without its path: "Not a directory", "Read-only file system"..."""
    return exc.strerror or type(exc).__name__


def snapshot_problem(engine: Engine, *, root: Path | None = None) -> SnapshotError | None:
    """What stops ``engine``'s snapshot from being used, without reading the database:
    :class:`SnapshotUnwritable` when its folder cannot be created or written,
    :class:`SnapshotBroken` when a file is missing, unreadable or of the wrong shape;
    None when it is sound or not built yet. Cheap (file footers and a probe file).

    >>> import tempfile
    >>> from sqlalchemy import create_engine
    >>> blocker = Path(tempfile.mkdtemp()) / "a-file"
    >>> _ = blocker.write_text("not a folder")
    >>> engine = create_engine("sqlite://")
    >>> print(snapshot_problem(engine, root=blocker / "snapshots"))  # doctest: +ELLIPSIS
    the snapshot ... cannot be written: Not a directory
    """
    folder = snapshot_dir(engine, root=root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return SnapshotUnwritable(folder, _os_reason(exc))
    state = _read_state(folder)
    found = None if state is None else _damage(folder, state)
    return SnapshotBroken(folder, found) if found else None


def _json_round(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refresh(engine: Engine, *, full: bool = False, root: Path | None = None) -> RefreshSummary:
    """Bring the snapshot of ``engine``'s database up to date.

    Events are append-only: new ones (id above the snapshot's highest) are added as a
    new Parquet part and the exposure cube is recomputed from their first day on.
    Accounts, cases and annotations are re-read whole. A full rebuild happens when
    there is no snapshot, when ``full`` is set, when events were rewritten (re-seed,
    or an import that updated existing events), when events disappeared, or when a
    file of the snapshot is broken (see :func:`snapshot_problem`; ``repaired`` says
    which). Raises :class:`SnapshotUnwritable` when the folder cannot be written.
    """
    t0 = time.perf_counter()
    folder = snapshot_dir(engine, root=root)
    try:
        with _locked(folder):
            summary = _refresh_locked(engine, folder, full=full)
    except SnapshotError:
        raise
    except OSError as exc:
        raise SnapshotUnwritable(folder, _os_reason(exc)) from exc
    bypass_snapshot(engine, None, root=root)
    return replace(summary, seconds=time.perf_counter() - t0)


def _refresh_locked(engine: Engine, folder: Path, *, full: bool) -> RefreshSummary:
    fp = _fingerprint(engine)
    state = _read_state(folder)
    damage = None if state is None else _damage(folder, state)
    if state is not None and damage is None and state["fingerprint"] == fp and not full:
        return RefreshSummary(folder, "fresh", 0, state["events"], state["cases"], 0.0)
    old_fp = state["fingerprint"] if state else {}
    rewritten = _rewrites(old_fp) != _rewrites(fp)
    old_max = (old_fp.get("events") or [None])[0]
    new_max = (fp.get("events") or [None])[0]
    full = (
        full
        or state is None
        or damage is not None
        or rewritten
        or old_max is None
        or new_max is None
        or new_max < old_max
    )
    reader = _Reader(engine)
    accounts = reader.accounts()
    _write(accounts, folder / "accounts.parquet")
    _write(reader.annotations(), folder / "annotations.parquet")
    _write(_case_facts(reader.cases(), accounts), folder / "cases.parquet")
    parts = folder / "events"
    if full:
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        since = None
    else:
        since = old_max
    new_events, first_day = _append_events(reader, parts, accounts, since)
    _refresh_derived(folder, parts, full=full, first_day=first_day)
    names = sorted(p.name for p in parts.glob("*.parquet"))
    n_events = (
        pl.scan_parquet(parts / "*.parquet").select(pl.len()).collect().item() if names else 0
    )
    n_cases = pl.scan_parquet(folder / "cases.parquet").select(pl.len()).collect().item()
    _write_state(
        folder,
        {
            "format": _SNAPSHOT_FORMAT,
            "database": db.safe_url(engine.url.render_as_string(hide_password=False)),
            "refreshed_at": datetime.now().isoformat(timespec="seconds"),
            "fingerprint": fp,
            "events": n_events,
            "cases": int(n_cases),
            "parts": names,
        },
    )
    mode: Literal["full", "incremental"] = "full" if full else "incremental"
    return RefreshSummary(folder, mode, new_events, n_events, int(n_cases), 0.0, damage)


def _rewrites(fp: Mapping[str, Any]) -> int:
    """How many times events were rewritten (0 before any data version was recorded)."""
    return int((fp.get("data_version") or {}).get("events") or 0)


def _write(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file atomically (readers never see half a file)."""
    tmp = path.with_suffix(".tmp")
    frame.write_parquet(tmp, statistics=True)
    tmp.replace(path)


_ACCOUNTS_QUERY = select(*[getattr(Account, c) for c in _ACCOUNT_COLUMNS])
_CASES_QUERY = select(
    *[getattr(Case, c) for c in _CASE_COLUMNS if c not in ("specialty", "repeat_offender")]
)


class _Reader:
    """Reads whole tables or id ranges with the fastest reader the database allows.

    connectorx for SQLite and PostgreSQL, events split in two id partitions read in
    parallel (measured fastest on both, see ``bench/readers.py``: ADBC returns SQLite
    timestamps as text, SQLAlchemy is 5-6x slower); ``pl.read_database`` through
    SQLAlchemy on any other dialect.
    connectorx links its own SQLite: the engine's pooled connections are closed first
    so two copies of the library never hold the file open together.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.uri: str | None = None
        path = db.sqlite_path(engine)
        if path is not None:
            self.uri = "sqlite://" + str(Path(path).resolve())
        elif engine.dialect.name == "postgresql":
            url = engine.url.set(drivername="postgresql")
            self.uri = url.render_as_string(hide_password=False)

    def query(
        self, stmt: Select, columns: Mapping[str, Any], *, partition_on: str | None = None
    ) -> pl.DataFrame:
        if self.uri is None:
            frame = pl.read_database(stmt, self.engine, infer_schema_length=None)
        else:
            sql = str(stmt.compile(self.engine, compile_kwargs={"literal_binds": True}))
            if self.uri.startswith("sqlite"):
                self.engine.dispose()
            frame = pl.read_database_uri(
                sql,
                self.uri,
                engine="connectorx",
                partition_on=partition_on,
                partition_num=2 if partition_on else None,
            )
        if frame.is_empty():
            return empty_frame(columns)
        return _conform(frame, columns)

    def accounts(self) -> pl.DataFrame:
        return self.query(_ACCOUNTS_QUERY, _ACCOUNT_COLUMNS)

    def annotations(self) -> pl.DataFrame:
        cols = [getattr(Annotation, c) for c in _ANNOTATION_COLUMNS]
        return self.query(select(*cols).order_by(Annotation.start_at), _ANNOTATION_COLUMNS)

    def cases(self) -> pl.DataFrame:
        return self.query(_CASES_QUERY, _CASE_COLUMNS)

    def events(self, lo: int | None, hi: int) -> pl.DataFrame:
        cols = [getattr(Event, c) for c in _EVENT_COLUMNS if c != "specialty"]
        stmt = select(*cols).where(Event.id <= hi)
        if lo is not None:
            stmt = stmt.where(Event.id > lo)
        return self.query(stmt, _EVENT_COLUMNS, partition_on="id")

    def max_event_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(Event.id))).scalar()

    def min_event_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(Event.id))).scalar()


def _case_facts(cases: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """Cases with the subject's specialty and whether the subject was already actioned."""
    with_specialty = cases.drop("specialty", "repeat_offender").join(
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
    return _conform(
        flagged.with_columns(
            repeat_offender=(pl.col("_first") <= pl.col("opened_at")).fill_null(False)
        ).sort("id"),
        _CASE_COLUMNS,
    )


def _append_events(
    reader: _Reader, parts: Path, accounts: pl.DataFrame, since: int | None
) -> tuple[int, date | None]:
    """Copy events with id above ``since`` into new parts; return the count and first day."""
    top = reader.max_event_id()
    if top is None or (since is not None and top <= since):
        return 0, None
    lo = since if since is not None else (reader.min_event_id() or 1) - 1
    specialty = accounts.select(pl.col("id").alias("target_account_id"), "specialty")
    existing = len(list(parts.glob("*.parquet")))
    total, first_day = 0, None
    while lo < top:
        hi = min(lo + _EVENT_CHUNK, top)
        chunk = reader.events(lo, hi)
        lo = hi
        if chunk.is_empty():
            continue
        chunk = _conform(
            chunk.drop("specialty").join(specialty, on="target_account_id", how="left"),
            _EVENT_COLUMNS,
        ).sort("ts")
        _write(chunk, parts / f"part-{existing:05d}.parquet")
        existing += 1
        total += chunk.height
        day = chunk["ts"].min().date()  # type: ignore[union-attr]
        first_day = day if first_day is None else min(first_day, day)
    return total, first_day


def _exposure_from_events(events: pl.LazyFrame) -> pl.DataFrame:
    return _conform(
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
        _EXPOSURE_COLUMNS,
    ).sort(pl.all())


def _events_daily(events: pl.LazyFrame) -> pl.DataFrame:
    """Events of every kind per day, region and platform (for the anomaly scan)."""
    return _conform(
        events.group_by(pl.col("ts").dt.date().alias("day"), "kind", "region", "platform")
        .agg(events=pl.len())
        .collect(),
        _EVENTS_DAILY_COLUMNS,
    ).sort(pl.all())


def _active_from_events(events: pl.LazyFrame) -> pl.DataFrame:
    """Distinct active accounts per ISO week."""
    return _conform(
        events.group_by(pl.col("ts").dt.truncate("1w").dt.date().alias("week"))
        .agg(accounts=pl.col("account_id").n_unique())
        .collect(),
        _ACTIVE_COLUMNS,
    ).sort("week")


#: Aggregates kept beside the events: file, schema, how to build it from events, the
#: column that orders it in time, and whether it counts per week (so that an update
#: recomputes from the Monday of the first new day).
_DERIVED: tuple[
    tuple[str, Mapping[str, Any], Callable[[pl.LazyFrame], pl.DataFrame], str, bool], ...
] = (
    ("exposure.parquet", _EXPOSURE_COLUMNS, _exposure_from_events, "day", False),
    ("events_daily.parquet", _EVENTS_DAILY_COLUMNS, _events_daily, "day", False),
    ("active.parquet", _ACTIVE_COLUMNS, _active_from_events, "week", True),
)


def _refresh_derived(folder: Path, parts: Path, *, full: bool, first_day: date | None) -> None:
    """Rebuild each aggregate of :data:`_DERIVED` in full, or from the first new day on
    (keeping the days, or weeks, before it)."""
    events = pl.scan_parquet(parts / "*.parquet") if any(parts.glob("*.parquet")) else None
    for name, columns, build, key, weekly in _DERIVED:
        path = folder / name
        if events is None:
            _write(empty_frame(columns), path)
        elif full or not path.exists():
            _write(build(events), path)
        elif first_day is not None:
            since = first_day - timedelta(days=first_day.weekday()) if weekly else first_day
            fresh = build(
                events.filter(pl.col("ts") >= datetime.combine(since, datetime.min.time()))
            )
            kept = pl.read_parquet(path).filter(pl.col(key) < since)
            _write(pl.concat([kept, fresh]).sort(pl.all()), path)


def _from_snapshot(folder: Path, filters: Filters, lo: datetime, hi: datetime) -> Cube:
    with _reading(folder):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cases = (
            pl.scan_parquet(folder / "cases.parquet")
            .filter(_case_window(lo, hi), *_filter_exprs(filters, DIMENSIONS))
            .collect()
        )
        timings["cases"] = time.perf_counter() - t0
        event_dims = ("region", "platform", "specialty")
        exposure = (
            pl.scan_parquet(folder / "exposure.parquet")
            .filter(
                pl.col("day") >= lo.date(),
                pl.col("day") < hi.date(),
                *_filter_exprs(filters, event_dims),
            )
            .collect()
        )
        t1 = time.perf_counter()
        timings["exposure"] = t1 - t0 - timings["cases"]
        parts = list((folder / "events").glob("*.parquet"))
        if not any(filters.where(d) for d in event_dims):  # precomputed at refresh
            active = pl.read_parquet(folder / "active.parquet").filter(
                pl.col("week") >= lo.date(), pl.col("week") < hi.date()
            )
        elif parts:
            active = _active_from_events(
                pl.scan_parquet(parts).filter(
                    pl.col("ts") >= lo, pl.col("ts") < hi, *_filter_exprs(filters, event_dims)
                )
            )
        else:
            active = empty_frame(_ACTIVE_COLUMNS)
        timings["active"] = time.perf_counter() - t1
        annotations = pl.read_parquet(folder / "annotations.parquet")
    state = _read_state(folder) or {}
    return Cube(
        filters=filters,
        cases=cases.sort("id"),
        exposure=exposure.sort(pl.all()),
        active=active,
        annotations=annotations,
        as_of=_as_of(state.get("fingerprint", {})),
        loader="snapshot",
        timings=timings,
    )


# --------------------------------------------------------------------------- pushdown


class _day(FunctionElement[date]):
    """The calendar day of a timestamp, as a DATE, on any dialect."""

    type = Date()
    inherit_cache = True
    name = "lookout_day"


class _week(FunctionElement[date]):
    """The Monday of a timestamp's ISO week, as a DATE."""

    type = Date()
    inherit_cache = True
    name = "lookout_week"


@compiles(_day)
def _day_default(element: _day, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(_day, "sqlite")
def _day_sqlite(element: _day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_week)
def _week_default(element: _week, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(_week, "sqlite")
def _week_sqlite(element: _week, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


def _in(column: Any, values: tuple[str, ...]) -> list[ColumnElement[bool]]:
    return [column.in_(values)] if values else []


def _event_where(filters: Filters, target: Any, lo: datetime, hi: datetime) -> list[Any]:
    return [
        Event.ts >= lo,
        Event.ts < hi,
        *_in(Event.region, filters.region),
        *_in(Event.platform, filters.platform),
        *_in(target.specialty, filters.specialty),
    ]


def _from_database(engine: Engine, filters: Filters, lo: datetime, hi: datetime) -> Cube:
    timings: dict[str, float] = {}
    target = aliased(Account, name="target")
    t0 = time.perf_counter()
    day = _day(Event.ts).label("day")
    dims = (Event.kind, Event.region, Event.platform, target.specialty)
    exposure_q = (
        select(day, *dims, func.count().label("events"))
        .select_from(Event)
        .outerjoin(target, target.id == Event.target_account_id)
        .where(Event.kind.in_(EXPOSURE_KINDS), *_event_where(filters, target, lo, hi))
        .group_by(day, *dims)
    )
    exposure = read_frame(engine, exposure_q, _EXPOSURE_COLUMNS)
    t1 = time.perf_counter()
    week = _week(Event.ts).label("week")
    active_q = (
        select(week, func.count(distinct(Event.account_id)).label("accounts"))
        .select_from(Event)
        .outerjoin(target, target.id == Event.target_account_id)
        .where(*_event_where(filters, target, lo, hi))
        .group_by(week)
    )
    active = read_frame(engine, active_q, _ACTIVE_COLUMNS)
    t2 = time.perf_counter()
    cases = read_frame(engine, _cases_query(filters, lo, hi), _CASE_COLUMNS)
    t3 = time.perf_counter()
    annotations = read_frame(
        engine,
        select(*[getattr(Annotation, c) for c in _ANNOTATION_COLUMNS]).order_by(
            Annotation.start_at
        ),
        _ANNOTATION_COLUMNS,
    )
    timings.update(exposure=t1 - t0, active=t2 - t1, cases=t3 - t2)
    return Cube(
        filters=filters,
        cases=cases.sort("id"),
        exposure=exposure.sort(pl.all()),
        active=active.sort("week"),
        annotations=annotations,
        as_of=_as_of(_fingerprint(engine)),
        loader="pushdown",
        timings=timings,
    )


def _cases_query(filters: Filters, lo: datetime, hi: datetime) -> Select:
    """Case rows in the window with the subject's specialty and the repeat-offender flag."""
    subject = aliased(Account, name="subject")
    first = (
        select(
            Case.subject_account_id.label("subject_id"),
            func.min(Case.resolved_at).label("first_violation"),
        )
        .where(Case.resolution.in_(VIOLATIONS))
        .group_by(Case.subject_account_id)
        .subquery("first")
    )
    repeat = case((first.c.first_violation <= Case.opened_at, true()), else_=false()).label(
        "repeat_offender"
    )
    columns = [getattr(Case, c) for c in _CASE_COLUMNS if c not in ("specialty", "repeat_offender")]
    where = [
        condition
        for d in DIMENSIONS
        for condition in _in(
            subject.specialty if d == "specialty" else getattr(Case, d), filters.where(d)
        )
    ]
    return (
        select(*columns, subject.specialty, repeat)
        .select_from(Case)
        .outerjoin(subject, subject.id == Case.subject_account_id)
        .outerjoin(first, first.c.subject_id == Case.subject_account_id)
        .where(
            Case.opened_at < hi,
            or_(Case.opened_at >= lo, Case.resolved_at.is_(None), Case.resolved_at >= lo),
            *where,
        )
    )


_TEXT_COLUMNS: dict[str, Any] = {
    "case_id": pl.Int64,
    "opened_at": pl.Datetime("us"),
    "category": pl.String,
    "region": pl.String,
    "platform": pl.String,
    "source": pl.String,
    "specialty": pl.String,
    "subject_account_id": pl.Int64,
    "description": pl.String,
}


def case_texts(engine: Engine, filters: Filters, *, start: datetime, end: datetime) -> pl.DataFrame:
    """Cases opened in ``[start, end)`` that match the filters' dimensions, with their
    descriptions (raw: mask them before showing them). Columns of ``_TEXT_COLUMNS``."""
    subject = aliased(Account, name="subject")
    where = [
        condition
        for d in DIMENSIONS
        for condition in _in(
            subject.specialty if d == "specialty" else getattr(Case, d), filters.where(d)
        )
    ]
    stmt = (
        select(
            Case.id.label("case_id"), Case.opened_at, Case.category, Case.region,
            Case.platform, Case.source, subject.specialty, Case.subject_account_id,
            Case.description,
        )
        .select_from(Case)
        .outerjoin(subject, subject.id == Case.subject_account_id)
        .where(Case.opened_at >= start, Case.opened_at < end, *where)
    )  # fmt: skip
    return read_frame(engine, stmt, _TEXT_COLUMNS)


def read_frame(engine: Engine, stmt: Select, columns: Mapping[str, Any]) -> pl.DataFrame:
    """Run a Core statement (bound parameters) into a frame of the canonical schema."""
    with engine.connect() as conn:
        frame = pl.read_database(stmt, conn, infer_schema_length=None)
    return empty_frame(columns) if frame.is_empty() else _conform(frame, columns)


def _as_of(fp: Mapping[str, Any]) -> datetime | None:
    """The newest record time in a fingerprint: the last event or the last case opened."""
    stamps = [(fp.get("events") or [None, None])[1], (fp.get("cases") or [None] * 3)[1]]
    parsed = [datetime.fromisoformat(str(s)) for s in stamps if s]
    return max(parsed) if parsed else None
