"""The Known events page: the annotations (launches, outages, policy changes, holidays)
listed, added, edited and ended from the app, each write checked and audited.

Reading needs the ``aggregates`` capability (known events sit on the trend charts);
writing needs ``annotate`` (associates and leadership, :mod:`analytics.access.roles`).
Every write appends an audit entry in the same transaction (who, what, the values
before and after) and bumps the data version, so the snapshot and every cache keyed on
the data (the trend charts, the brief, the anomaly scan) pick the change up.

Two people editing the same event cannot silently overwrite each other: an edit or an
end carries the event as its editor read it (``seen``); the row is locked, compared,
and the write refused with :class:`EditConflict` when someone changed it meanwhile.
Text is stored as typed (control and direction characters refused) and every page
shows it as text, never as HTML or Markdown.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, insert, select, update

from analytics import access
from analytics.access import Viewer
from analytics.access.audit import utc_now, write_audit
from analytics.core import database, taxonomy
from analytics.core.models import US_STATES, Annotation, AnnotationKind, AuditLog, Role
from analytics.present.formatting import format_day, humanise, humanised

__all__ = [
    "DESCRIPTION_MAX",
    "TITLE_MAX",
    "EditConflict",
    "InvalidEvent",
    "KnownEvent",
    "add_event",
    "annotation_version",
    "check_event",
    "edit_event",
    "end_event",
    "event_days",
    "events_table",
    "list_events",
    "read_event",
]

TITLE_MAX = 200
"""The longest title (the column's width)."""
DESCRIPTION_MAX = 2000
"""The longest description."""

_COLUMNS = ("id", "start_at", "end_at", "kind", "title", "description", "category",
            "region", "created_by")  # fmt: skip
_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "start_at": pl.Datetime("us"),
    "end_at": pl.Datetime("us"),
    "kind": pl.String,
    "title": pl.String,
    "description": pl.String,
    "category": pl.String,
    "region": pl.String,
    "created_by": pl.String,
}


@dataclass(frozen=True)
class KnownEvent:
    """A known event's values: when (``end_at`` None while it lasts), what kind, its
    title and description, and the category and region it concerns (None: all)."""

    start_at: datetime
    end_at: datetime | None
    kind: str
    title: str
    description: str | None = None
    category: str | None = None
    region: str | None = None

    @property
    def last_day(self) -> date | None:
        """The last day it covers (an end at midnight ends the day before), None while
        it lasts.

        >>> KnownEvent(datetime(2026, 1, 1), datetime(2026, 1, 2), "holiday", "x").last_day
        datetime.date(2026, 1, 1)
        """
        if self.end_at is None:
            return None
        if self.end_at.time() == time.min and self.end_at > self.start_at:
            return (self.end_at - timedelta(microseconds=1)).date()
        return self.end_at.date()

    def shown(self) -> dict[str, Any]:
        """The values as the audit log keeps them (times as ISO text)."""
        return {k: v.isoformat(sep=" ") if isinstance(v, datetime) else v
                for k, v in asdict(self).items()}  # fmt: skip


class InvalidEvent(ValueError):
    """What is wrong with a known event, one plain sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(" ".join(problems))


class EditConflict(RuntimeError):
    """The event changed (or was removed) since the editor read it; nothing was written.
    ``current`` is the event as it is now (None if removed), ``by`` who changed it last."""

    def __init__(self, message: str, current: KnownEvent | None, by: str | None) -> None:
        self.current = current
        self.by = by
        super().__init__(message)


def event_days(first: date, last: date | None) -> tuple[datetime, datetime | None]:
    """The ``start_at`` and ``end_at`` of an event over the days ``first`` to ``last``
    (both included; ``last`` None while it lasts): from the first day's midnight to the
    last second of the last day.

    >>> event_days(date(2026, 4, 20), date(2026, 4, 21))
    (datetime.datetime(2026, 4, 20, 0, 0), datetime.datetime(2026, 4, 21, 23, 59, 59))
    >>> event_days(date(2026, 4, 20), None)[1] is None
    True
    """
    start = datetime.combine(first, time.min)
    return start, None if last is None else datetime.combine(last, time(23, 59, 59))


def _clean(text: str | None) -> str | None:
    stripped = (text or "").strip()
    return stripped or None


def _odd_characters(text: str) -> bool:
    """Control characters (but line breaks and tabs) or invisible format characters
    (direction overrides, zero-width joiners...)."""
    return any(
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in "\n\t" for c in text
    )


def check_event(event: KnownEvent) -> KnownEvent:
    """``event`` with its texts trimmed (empty ones None), or :class:`InvalidEvent`
    listing every problem: a title is required, at most :data:`TITLE_MAX` characters;
    the end is not before the start; kind, category and region are known values; no
    control or direction characters.

    >>> ok = check_event(KnownEvent(datetime(2026, 4, 20), None, "outage", "  App down "))
    >>> ok.title
    'App down'
    >>> check_event(KnownEvent(datetime(2026, 4, 20), datetime(2026, 4, 19), "x", ""))
    Traceback (most recent call last):
    ...
    analytics.views.annotations.InvalidEvent: Give the event a title. The end (19 Apr 2026) is before the start (20 Apr 2026). Choose a kind: policy change, product launch, outage, holiday or other.
    """  # noqa: E501
    title, description = _clean(event.title), _clean(event.description)
    category, region = _clean(event.category), _clean(event.region)
    problems: list[str] = []
    if title is None:
        problems.append("Give the event a title.")
    elif len(title) > TITLE_MAX:
        problems.append(f"Shorten the title to {TITLE_MAX} characters (it has {len(title):,}).")
    if description is not None and len(description) > DESCRIPTION_MAX:
        problems.append(
            f"Shorten the description to {DESCRIPTION_MAX:,} characters "
            f"(it has {len(description):,})."
        )
    for name, text in (("title", title), ("description", description)):
        if text is not None and _odd_characters(text):
            problems.append(f"Remove the control or invisible characters from the {name}.")
    if event.end_at is not None and event.end_at < event.start_at:
        problems.append(
            f"The end ({format_day(event.end_at.date())}) is before the "
            f"start ({format_day(event.start_at.date())})."
        )
    kinds = [k.value for k in AnnotationKind]
    if event.kind not in kinds:
        problems.append(f"Choose a kind: {_choices(kinds)}.")
    if category is not None and category not in taxonomy.active().category_names:
        problems.append("Choose a category from the list, or none for every category.")
    if region is not None and region not in US_STATES:
        problems.append("Choose a region (a US state code such as CA), or none for every region.")
    if problems:
        raise InvalidEvent(problems)
    return replace(
        event, title=title or "", description=description, category=category, region=region
    )


def _choices(values: list[str]) -> str:
    words = [humanise(v).lower() for v in values]
    return ", ".join(words[:-1]) + " or " + words[-1]


def annotation_version(engine: Engine) -> str:
    """A token that changes whenever a known event is added, edited or ended (the data
    version every write bumps, and the table's size for imports)."""
    with engine.connect() as conn:
        size = conn.execute(select(func.count(Annotation.id), func.max(Annotation.id))).one()
    return f"{database.get_meta(engine, 'data_version')}:{size[0]}:{size[1]}"


def list_events(engine: Engine, *, role: Role | str) -> pl.DataFrame:
    """Every known event, the newest start first: ``id``, ``start_at``, ``end_at``,
    ``kind``, ``title``, ``description``, ``category``, ``region``, ``created_by``."""
    access.require(role, "aggregates")
    stmt = select(*[getattr(Annotation, c) for c in _COLUMNS]).order_by(
        Annotation.start_at.desc(), Annotation.id.desc()
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pl.DataFrame([tuple(_value(v) for v in r) for r in rows], schema=_SCHEMA, orient="row")


def _value(value: Any) -> Any:
    return getattr(value, "value", value)  # enums as their text


def events_table(events: pl.DataFrame) -> pl.DataFrame:
    """:func:`list_events` as the page shows it: first and last day (an end at midnight
    is the day before's end; none while it lasts), kind and category in words, the
    region or "All".

    >>> t = pl.DataFrame({"id": [3], "start_at": [datetime(2026, 4, 20)],
    ...     "end_at": [datetime(2026, 4, 22)], "kind": ["product_launch"], "title": ["v2"],
    ...     "description": [None], "category": ["fake_review"], "region": [None],
    ...     "created_by": ["ann"]})
    >>> events_table(t).row(0)
    (3, datetime.date(2026, 4, 20), datetime.date(2026, 4, 21), 'Product launch', 'v2', 'Fake review', 'All', '', 'ann', False)
    """  # noqa: E501
    end = pl.col("end_at")
    at_midnight = (end.dt.time() == time.min) & (end > pl.col("start_at"))
    return events.select(
        "id",
        first_day=pl.col("start_at").dt.date(),
        last_day=pl.when(at_midnight)
        .then(end - timedelta(microseconds=1))
        .otherwise(end)
        .dt.date(),
        kind=humanised(pl.col("kind")),
        title="title",
        category=pl.when(pl.col("category").is_null())
        .then(pl.lit("All"))
        .otherwise(humanised(pl.col("category"))),
        region=pl.col("region").fill_null("All"),
        description=pl.col("description").fill_null(""),
        created_by="created_by",
        ongoing=end.is_null(),
    )


def read_event(engine: Engine, event_id: int, *, role: Role | str) -> KnownEvent | None:
    """One known event's values, None when there is no such event."""
    access.require(role, "aggregates")
    with engine.connect() as conn:
        return _read(conn, event_id)


def _read(conn: Connection, event_id: int) -> KnownEvent | None:
    fields = ("start_at", "end_at", "kind", "title", "description", "category", "region")
    row = conn.execute(
        select(*[getattr(Annotation, f) for f in fields]).where(Annotation.id == event_id)
    ).first()
    if row is None:
        return None
    return KnownEvent(**{f: _value(v) for f, v in zip(fields, row, strict=True)})


def _target(event_id: int, title: str) -> str:
    return f"annotation {event_id}: {title}"


def _audit(
    conn: Connection,
    viewer: Viewer,
    action: str,
    event_id: int,
    before: KnownEvent | None,
    after: KnownEvent,
) -> None:
    changes = {"before": None if before is None else before.shown(), "after": after.shown()}
    write_audit(conn, viewer.name, viewer.role, action, _target(event_id, after.title), changes,
                utc_now())  # fmt: skip


def add_event(engine: Engine, event: KnownEvent, *, viewer: Viewer) -> int:
    """Store a new known event by ``viewer`` (checked by :func:`check_event`); its id.
    Audited as ``annotation_add``."""
    access.require(viewer.role, "annotate")
    event = check_event(event)
    with engine.begin() as conn:
        event_id = int(
            conn.execute(
                insert(Annotation)
                .values(**asdict(event), created_by=viewer.name[:64])
                .returning(Annotation.id)
            ).scalar_one()
        )
        _audit(conn, viewer, "annotation_add", event_id, None, event)
    database.bump_data_version(engine, events_rewritten=False)
    return event_id


def edit_event(
    engine: Engine, event_id: int, event: KnownEvent, *, seen: KnownEvent, viewer: Viewer
) -> KnownEvent:
    """Replace a known event's values with ``event`` (checked), provided it still is as
    ``viewer`` read it (``seen``), else :class:`EditConflict` and nothing is written.
    Audited as ``annotation_edit`` with the values before and after."""
    access.require(viewer.role, "annotate")
    return _write(engine, event_id, check_event(event), seen=seen, viewer=viewer,
                  action="annotation_edit")  # fmt: skip


def end_event(
    engine: Engine, event_id: int, *, last_day: date, seen: KnownEvent, viewer: Viewer
) -> KnownEvent:
    """End a known event on ``last_day`` (included), under the same check as
    :func:`edit_event`. Audited as ``annotation_end``."""
    access.require(viewer.role, "annotate")
    ended = replace(seen, end_at=event_days(last_day, last_day)[1])
    return _write(engine, event_id, check_event(ended), seen=seen, viewer=viewer,
                  action="annotation_end")  # fmt: skip


def _write(
    engine: Engine,
    event_id: int,
    event: KnownEvent,
    *,
    seen: KnownEvent,
    viewer: Viewer,
    action: str,
) -> KnownEvent:
    with engine.begin() as conn:
        # Lock the row first (a no-op update), so that nobody writes between the
        # comparison below and the update.
        conn.execute(
            update(Annotation).where(Annotation.id == event_id).values(title=Annotation.title)
        )
        current = _read(conn, event_id)
        if current != seen:
            by = _last_editor(conn, event_id)
            raise EditConflict(_conflict_message(current, by), current, by)
        conn.execute(update(Annotation).where(Annotation.id == event_id).values(**asdict(event)))
        _audit(conn, viewer, action, event_id, seen, event)
    database.bump_data_version(engine, events_rewritten=False)
    return event


def _last_editor(conn: Connection, event_id: int) -> str | None:
    """Who last added, edited or ended the event, and when (from the audit log)."""
    row = conn.execute(
        select(AuditLog.user_name, AuditLog.ts)
        .where(
            AuditLog.action.in_(("annotation_add", "annotation_edit", "annotation_end")),
            AuditLog.target.startswith(f"annotation {event_id}:", autoescape=True),
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    ).first()
    return None if row is None else f"{row[0]} at {row[1]:%H:%M} UTC on {format_day(row[1].date())}"


def _conflict_message(current: KnownEvent | None, by: str | None) -> str:
    if current is None:
        return "This event was removed since you opened it; nothing was saved."
    who = f" by {by}" if by else ""
    return (
        f"This event was changed{who} since you opened it, so your change was not saved "
        "(it would have overwritten theirs). Its current values are shown: make your "
        "change again on them."
    )
