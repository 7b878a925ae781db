"""SQL pushdown: the cube and the other frames read by queries in which the filters and the
first aggregation run in the database (SQLAlchemy Core, any dialect).

The same queries run on SQLite, PostgreSQL and ClickHouse (the warehouse,
:mod:`analytics.sources.warehouse`): every selected column of a join is labelled
(ClickHouse renames a joined column whose name both tables have), and the day and the
week of a timestamp compile per dialect (``toDate`` and ``toMonday`` on ClickHouse)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    case,
    distinct,
    false,
    func,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import CTE

from analytics.core import models
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Account, Annotation, Case, Event
from analytics.sources.fingerprint import fingerprint, fingerprint_as_of
from analytics.sources.frames import (
    ACCOUNT_COLUMNS,
    ACTIVE_COLUMNS,
    ANNOTATION_COLUMNS,
    CASE_COLUMNS,
    EVENT_COLUMNS,
    EVENTS_DAILY_COLUMNS,
    EXPOSURE_COLUMNS,
    EXPOSURE_KINDS,
    VIOLATIONS,
    Cube,
    case_facts,
    conform,
    read_frame,
)

__all__ = [
    "WAREHOUSE_TABLES",
    "Tables",
    "case_dimension",
    "ACCOUNTS_QUERY",
    "CASES_QUERY",
    "case_texts",
    "cube_from_database",
    "database_tables",
    "events_daily_from_database",
]

#: Every account with the columns the snapshot keeps.
ACCOUNTS_QUERY = select(*[getattr(Account, c) for c in ACCOUNT_COLUMNS])
#: Every case with its stored columns (the specialty and the repeat flag are derived).
CASES_QUERY = select(
    *[getattr(Case, c) for c in CASE_COLUMNS if c not in ("specialty", "repeat_offender")]
)


@dataclass(frozen=True)
class Tables:
    """Where the pushdown reads cases, events and accounts: Lookout's own tables, or
    ``views`` (SELECTs giving every column of the table, by entity name; see
    :func:`analytics.sources.mapped_pushdown.mapped_tables`). An entity without a view
    reads as having no rows."""

    views: Mapping[str, Select[Any] | CTE] | None = field(default=None)
    #: The tables keep what the snapshot derives (the ClickHouse warehouse, at load): each
    #: event its target account's specialty, each case its subject's specialty and the
    #: repeat-offender flag. The cube then reads them without joining every event and
    #: case to the accounts, and bounds time by day and by week, as the events'
    #: projections are kept (:mod:`analytics.sources.clickhouse_ddl`).
    derived: bool = False

    def entity(self, cls: Any, name: str | None = None) -> Any:
        """``cls`` (Case, Event, Account) or an alias of it named ``name``, over its view."""
        if self.views is None:
            return cls if name is None else aliased(cls, name=name)
        table = cls.__tablename__
        view = self.views.get(table)
        if view is None:  # every column, no rows (and no table of theirs named)
            columns = [type_coerce(null(), c.type).label(c.name) for c in cls.__table__.columns]
            view = select(*columns).where(false())
        if isinstance(view, CTE):  # computed once for every use in the statement
            return aliased(cls, view.alias(name or table), adapt_on_names=True)
        return aliased(cls, view.subquery(name or table), adapt_on_names=True)


#: Lookout's own tables.
LOOKOUT_TABLES = Tables()
#: The ClickHouse warehouse's tables (:mod:`analytics.sources.warehouse`): Lookout's, with
#: what the snapshot derives kept at load (see :attr:`Tables.derived`).
WAREHOUSE_TABLES = Tables(derived=True)
_DERIVED = MetaData()
#: The warehouse's events: Lookout's columns and the target's specialty.
_EVENTS_DERIVED = Table(
    "events",
    _DERIVED,
    *(Column(c.name, c.type) for c in Event.__table__.columns),
    Column("specialty", String),
)
#: The warehouse's cases: Lookout's columns, the subject's specialty, the repeat flag.
_CASES_DERIVED = Table(
    "cases",
    _DERIVED,
    *(Column(c.name, c.type) for c in Case.__table__.columns),
    Column("specialty", String),
    Column("repeat_offender", Boolean),
)


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


@compiles(_day, "clickhousedb")
def _day_clickhouse(element: _day, compiler: Any, **kw: Any) -> str:
    return f"toDate({compiler.process(element.clauses, **kw)})"


@compiles(_week)
def _week_default(element: _week, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(_week, "sqlite")
def _week_sqlite(element: _week, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


@compiles(_week, "clickhousedb")
def _week_clickhouse(element: _week, compiler: Any, **kw: Any) -> str:
    return f"toMonday({compiler.process(element.clauses, **kw)})"


def case_dimension(dim: str, subject: Any, case_: Any = Case) -> Any:
    """The SQL column of a case's dimension ``dim``: the case's own column (``case_``:
    :class:`~analytics.core.models.Case` or an alias), except ``specialty``, which is the
    subject account's (``subject``: an alias of :class:`~analytics.core.models.Account`
    joined as the case's subject)."""
    return subject.specialty if dim == "specialty" else getattr(case_, dim)


def _in(column: Any, values: tuple[str, ...]) -> list[ColumnElement[bool]]:
    return [column.in_(values)] if values else []


def _event_where(
    filters: Filters,
    specialty: Any,
    lo: datetime,
    hi: datetime,
    event: Any = Event,
    *,
    span: Any = None,
) -> list[Any]:
    """The events' conditions; ``span`` (the day or the Monday of ``ts``) bounds time by
    it instead of by ``ts``: the same rows when ``lo`` and ``hi`` start a day (or a week)."""
    within = [event.ts >= lo, event.ts < hi]
    if span is not None:
        within = [span >= lo.date(), span < hi.date()]
    return [
        *within,
        *_in(event.region, filters.region),
        *_in(event.platform, filters.platform),
        *_in(specialty, filters.specialty),
    ]


def cube_from_database(
    engine: Engine,
    filters: Filters,
    lo: datetime,
    hi: datetime,
    *,
    source: Engine | None = None,
    tables: Tables = LOOKOUT_TABLES,
) -> Cube:
    """The cube for ``filters`` over ``[lo, hi)``, aggregated by the database.

    With ``source`` and ``tables``, cases and events are read there (their database,
    through a source map); the annotations always come from ``engine``, Lookout's.
    """
    timings: dict[str, float] = {}
    reader = source or engine
    t0 = time.perf_counter()
    exposure_q, active_q = _event_queries(filters, lo, hi, tables)
    exposure = read_frame(reader, exposure_q, EXPOSURE_COLUMNS)
    t1 = time.perf_counter()
    active = read_frame(reader, active_q, ACTIVE_COLUMNS)
    t2 = time.perf_counter()
    if tables.derived:
        cases = read_frame(reader, _derived_cases_query(filters, lo, hi), CASE_COLUMNS)
    elif tables.views is None:
        cases = read_frame(reader, _cases_query(filters, lo, hi, tables), CASE_COLUMNS)
    else:
        cases = _cases_in_parts(reader, filters, lo, hi, tables)
    t3 = time.perf_counter()
    annotations = read_frame(
        engine,
        select(*[getattr(Annotation, c) for c in ANNOTATION_COLUMNS]).order_by(Annotation.start_at),
        ANNOTATION_COLUMNS,
    )
    timings.update(exposure=t1 - t0, active=t2 - t1, cases=t3 - t2)
    return Cube(
        filters=filters,
        cases=cases.sort("id"),
        exposure=exposure.sort(pl.all()),
        active=active.sort("week"),
        annotations=annotations,
        as_of=fingerprint_as_of(fingerprint(engine)) if source is None else _newest(reader, tables),
        loader="pushdown",
        timings=timings,
    )


def _event_queries(filters: Filters, lo: datetime, hi: datetime, tables: Tables) -> tuple[Any, Any]:
    """The cube's two event queries (SELECTs): exposures per day and dimension, and each
    week's distinct active accounts."""
    events, Event, specialty, with_target = _events_with_specialty(tables)  # noqa: N806
    by_span = tables.derived and _starts(lo, week=False) and _starts(hi, week=False)
    day = _day(Event.ts)
    dims = (Event.kind, Event.region, Event.platform, specialty)
    exposure_q = with_target(
        select(day.label("day"), *(d.label(n) for d, n in zip(dims, _EXPOSURE_DIMS, strict=True)))
        .add_columns(func.count().label("events"))
        .select_from(events)
    )
    exposure_q = exposure_q.where(
        Event.kind.in_(EXPOSURE_KINDS),
        *_event_where(filters, specialty, lo, hi, Event, span=day if by_span else None),
    ).group_by(day, *dims)
    week = _week(Event.ts)
    by_week = tables.derived and _starts(lo, week=True) and _starts(hi, week=True)
    active_q = select(
        week.label("week"), func.count(distinct(Event.account_id)).label("accounts")
    ).select_from(events)
    if filters.where("specialty"):  # the target's specialty is read only to filter by it
        active_q = with_target(active_q)
    active_q = active_q.where(
        *_event_where(filters, specialty, lo, hi, Event, span=week if by_week else None)
    ).group_by(week)
    return exposure_q, active_q


_EXPOSURE_DIMS = ("kind", "region", "platform", "specialty")


def _events_with_specialty(tables: Tables) -> tuple[Any, Any, Any, Any]:
    """Where the cube reads events: the FROM item, its columns (``.ts``, ``.kind``...),
    the target's specialty, and what a query needs to read that specialty (a join of the
    target account, or nothing where the events carry it)."""
    if tables.derived:
        columns = _EVENTS_DERIVED.c
        return _EVENTS_DERIVED, columns, columns.specialty, lambda q: q
    event = tables.entity(models.Event)
    target = tables.entity(Account, "target")
    return (
        event,
        event,
        target.specialty,
        lambda q: q.outerjoin(target, target.id == event.target_account_id),
    )


def _starts(moment: datetime, *, week: bool) -> bool:
    """Whether ``moment`` is a midnight (and, with ``week``, a Monday's).

    >>> _starts(datetime(2026, 11, 16), week=True), _starts(datetime(2026, 11, 17), week=True)
    (True, False)
    """
    return moment.time() == datetime.min.time() and (not week or moment.weekday() == 0)


def _derived_cases_query(filters: Filters, lo: datetime, hi: datetime) -> Select[Any]:
    """:func:`_cases_query`'s rows where the cases keep the subject's specialty and the
    repeat flag (the warehouse): a plain scan of the cases in the window."""
    c = _CASES_DERIVED.c
    where = [condition for d in DIMENSIONS for condition in _in(c[d], filters.where(d))]
    return select(*[c[name] for name in CASE_COLUMNS]).where(
        c.opened_at < hi,
        or_(c.opened_at >= lo, c.resolved_at.is_(None), c.resolved_at >= lo),
        *where,
    )


def _newest(engine: Engine, tables: Tables) -> datetime | None:
    """The last event's or the last opened case's time (a cube's ``as_of``, as
    :func:`~analytics.sources.fingerprint.fingerprint_as_of` gives it for Lookout's)."""
    Event, Case = tables.entity(models.Event), tables.entity(models.Case)  # noqa: N806
    # HAVING: no row for an empty table (ClickHouse's max of no rows is 1970-01-01, not NULL)
    with engine.connect() as conn:
        stamps = [
            conn.execute(select(func.max(c)).having(func.count() > 0)).scalar()
            for c in (Event.ts, Case.opened_at)
        ]
    parsed = [s if isinstance(s, datetime) else datetime.fromisoformat(str(s)) for s in stamps if s]
    return max(parsed) if parsed else None


def _cases_query(
    filters: Filters, lo: datetime, hi: datetime, tables: Tables = LOOKOUT_TABLES
) -> Select[*tuple[Any, ...]]:
    """Case rows in the window with the subject's specialty and the repeat-offender flag."""
    subject = tables.entity(Account, "subject")
    Case = tables.entity(models.Case)  # noqa: N806 - the ORM class or its alias
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
    # Every column labelled: ClickHouse renames a joined column whose name both tables have.
    columns = [
        getattr(Case, c).label(c) for c in CASE_COLUMNS if c not in ("specialty", "repeat_offender")
    ]
    where = [
        condition
        for d in DIMENSIONS
        for condition in _in(case_dimension(d, subject, Case), filters.where(d))
    ]
    return (
        select(*columns, subject.specialty.label("specialty"), repeat)
        .select_from(Case)
        .outerjoin(subject, subject.id == Case.subject_account_id)
        .outerjoin(first, first.c.subject_id == Case.subject_account_id)
        .where(
            Case.opened_at < hi,
            or_(Case.opened_at >= lo, Case.resolved_at.is_(None), Case.resolved_at >= lo),
            *where,
        )
    )


def _cases_in_parts(
    reader: Engine, filters: Filters, lo: datetime, hi: datetime, tables: Tables
) -> pl.DataFrame:
    """:func:`_cases_query`'s rows for views over a team's database, read in three plain
    parts (the cases in the window, each account's specialty, each subject's first
    violation) and joined here. Joined in their database, two views were planned as a
    scan of one for every row of the other (SQLite makes no index on a view; PostgreSQL
    estimated one row through the stacked checks and chose nested loops): minutes on the
    medium demo's 101k cases and 100k accounts, where the parts take seconds."""
    subject = tables.entity(Account, "subject")
    Case = tables.entity(models.Case)  # noqa: N806 - an alias over the view
    own = {c: t for c, t in CASE_COLUMNS.items() if c not in ("specialty", "repeat_offender")}
    where = [
        condition
        for d in DIMENSIONS
        if d != "specialty"
        for condition in _in(getattr(Case, d), filters.where(d))
    ]
    rows = read_frame(
        reader,
        select(*[getattr(Case, c).label(c) for c in own]).where(
            Case.opened_at < hi,
            or_(Case.opened_at >= lo, Case.resolved_at.is_(None), Case.resolved_at >= lo),
            *where,
        ),
        own,
    )
    specialty = read_frame(
        reader,
        select(subject.id.label("subject_account_id"), subject.specialty.label("specialty")),
        {"subject_account_id": pl.Int64, "specialty": CASE_COLUMNS["specialty"]},
    ).unique("subject_account_id", keep="first", maintain_order=True)
    first = read_frame(
        reader,
        select(
            Case.subject_account_id.label("subject_account_id"),
            func.min(Case.resolved_at).label("first_violation"),
        )
        .where(Case.resolution.in_(VIOLATIONS))
        .group_by(Case.subject_account_id),
        {"subject_account_id": pl.Int64, "first_violation": pl.Datetime("us")},
    )
    joined = (
        rows.join(specialty, on="subject_account_id", how="left")
        .join(first, on="subject_account_id", how="left")
        .with_columns(
            repeat_offender=(pl.col("first_violation") <= pl.col("opened_at")).fill_null(False)
        )
    )
    if filters.where("specialty"):
        joined = joined.filter(
            pl.col("specialty").cast(pl.String).is_in(filters.where("specialty"))
        )
    return conform(joined.select(list(CASE_COLUMNS)), CASE_COLUMNS)


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
        for condition in _in(case_dimension(d, subject), filters.where(d))
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


def events_daily_from_database(
    engine: Engine, start: date, end: date, *, tables: Tables = LOOKOUT_TABLES
) -> pl.DataFrame:
    """Events of every kind per day, region and platform for days in ``[start, end)``:
    one GROUP BY in the database (``tables``: where the events are read)."""
    Event = tables.entity(models.Event)  # noqa: N806 - the ORM class or its alias
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    day = _day(Event.ts).label("day")
    stmt = (
        select(day, Event.kind, Event.region, Event.platform, func.count().label("events"))
        .where(Event.ts >= lo, Event.ts < hi)
        .group_by(day, Event.kind, Event.region, Event.platform)
    )
    return read_frame(engine, stmt, EVENTS_DAILY_COLUMNS).sort(pl.all())


def database_tables(engine: Engine) -> dict[str, pl.LazyFrame]:
    """The frames of :func:`analytics.sources.load.snapshot_frames` (``events``,
    ``accounts``, ``cases``), read from the database when collected
    (through SQLAlchemy: the app's process never loads connectorx's SQLite)."""

    def accounts() -> pl.DataFrame:
        return read_frame(engine, ACCOUNTS_QUERY, ACCOUNT_COLUMNS)

    def cases() -> pl.DataFrame:
        return case_facts(read_frame(engine, CASES_QUERY, CASE_COLUMNS), accounts())

    def events() -> pl.DataFrame:
        target = aliased(Account, name="target")
        cols = [getattr(Event, c) for c in EVENT_COLUMNS if c != "specialty"]
        stmt = (
            select(*cols, target.specialty)
            .select_from(Event)
            .outerjoin(target, target.id == Event.target_account_id)
        )
        return read_frame(engine, stmt, EVENT_COLUMNS)

    return {
        "events": pl.defer(events, schema=EVENT_COLUMNS),
        "accounts": pl.defer(accounts, schema=ACCOUNT_COLUMNS),
        "cases": pl.defer(cases, schema=CASE_COLUMNS),
    }
