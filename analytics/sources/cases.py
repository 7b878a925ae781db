"""The Case Explorer's reads: search and page through cases, one case, one account.

Everything here reads the database through SQLAlchemy Core with bound parameters and
hands back Polars frames with personal data masked (:mod:`analytics.access.privacy`):
descriptions and action details scrubbed, names cut to initials, email mailboxes hidden.

- :func:`search_cases` filters (the global filters, statuses, a set of cases or of
  accounts, full text pushed down to the database, see :mod:`analytics.sources.search`), sorts
  and pages; it counts the whole result so the page can say "1,234 cases, page 3 of 25".
  With a ClickHouse warehouse set (``LOOKOUT_WAREHOUSE_URL``) the same statements run
  there, the text searched by its token index
  (:func:`analytics.sources.warehouse.search_condition`: no stemming); the rest reads
  Lookout's database, which alone keeps names, e-mails and case actions.
- :func:`case_detail`: a case and its actions timeline.
- :func:`account_profile`, :func:`account_events`, :func:`account_cases`,
  :func:`linked_accounts`: an account, what it did, the cases about it or reported by it,
  and the accounts it shares devices and IP addresses with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Engine, case, func, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from analytics import access
from analytics.access import privacy
from analytics.core import taxonomy
from analytics.core.filters import DIMENSIONS, Filters, ignored_values, whole_number
from analytics.core.models import Account, Case, CaseAction, CaseStatus, Event, Role
from analytics.sources import search, warehouse
from analytics.sources.frames import empty_frame, read_frame
from analytics.sources.pushdown import case_dimension

__all__ = [
    "MAX_PAGE_SIZE",
    "SORTS",
    "STATUSES",
    "CasePage",
    "CaseQuery",
    "account_cases",
    "account_events",
    "account_profile",
    "case_detail",
    "reveal_case",
    "linked_accounts",
    "parse_case_query",
    "search_cases",
]

#: The columns a case list can be sorted by.
SORTS: tuple[str, ...] = ("opened_at", "severity", "category", "status", "region", "case_id")
#: Case statuses, in workflow order.
STATUSES: tuple[str, ...] = tuple(s.value for s in CaseStatus)
#: The largest page :func:`search_cases` returns.
MAX_PAGE_SIZE = 200
#: More case or account ids than this in one query are refused (a link that big is
#: not a cluster or a ring but a mistake).
MAX_IDS = 20_000

_LIST_COLUMNS: dict[str, Any] = {
    "case_id": pl.Int64,
    "opened_at": pl.Datetime("us"),
    "category": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "source": pl.String,
    "region": pl.String,
    "platform": pl.String,
    "subject_account_id": pl.Int64,
    "description": pl.String,
}


def _severity_rank() -> dict[str, int]:
    """Each severity of the taxonomy in force by urgency (least urgent 0)."""
    return {name: i for i, name in enumerate(taxonomy.active().severity_names)}


@dataclass(frozen=True)
class CaseQuery:
    """What the case list shows: filters, search text, sorting and the page.

    ``case_ids`` or ``subject_ids`` (when not None) restrict the list to those cases or
    to cases about those accounts (a cluster's, a ring's); ``account_id`` to cases about
    or reported by one account. ``page`` counts from 1.

    >>> CaseQuery(text="refund", sort="severity").sort
    'severity'
    """

    filters: Filters = field(default_factory=Filters)
    text: str = ""
    status: tuple[str, ...] = ()
    case_ids: tuple[int, ...] | None = None
    subject_ids: tuple[int, ...] | None = None
    account_id: int | None = None
    sort: str = "opened_at"
    descending: bool = True
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class CasePage:
    """One page of a case list: its ``rows`` (descriptions masked), the ``total`` number
    of matching cases, the ``page`` shown and the number of ``pages``."""

    rows: pl.DataFrame
    total: int
    page: int
    pages: int


def parse_case_query(
    params: Mapping[str, str], filters: Filters | None = None
) -> tuple[CaseQuery, list[str]]:
    """A :class:`CaseQuery` from text parameters (a URL's), dropping what is invalid.

    Keys: ``q`` (search text), ``status`` (comma-separated), ``sort`` (one of
    :data:`SORTS`, ``-`` in front for descending), ``page``, ``size``, ``account``.
    Returns the query and one note per value dropped; never raises.

    >>> q, notes = parse_case_query({"q": "refund", "sort": "-severity", "page": "x"})
    >>> q.text, q.sort, q.descending, q.page, notes
    ('refund', 'severity', True, 1, ["Ignored page 'x': not a whole number from 1."])
    """
    notes: list[str] = []
    text = str(params.get("q", "") or "")
    if len(text) > search.MAX_QUERY_CHARS:
        notes.append(f"The search was cut to its first {search.MAX_QUERY_CHARS} characters.")
        text = text[: search.MAX_QUERY_CHARS]
    raw = [v.strip() for v in str(params.get("status", "") or "").split(",") if v.strip()]
    status = tuple(dict.fromkeys(v for v in raw if v in STATUSES))
    bad = [v for v in dict.fromkeys(raw) if v not in status]
    if bad:
        notes.append(f"Ignored status {ignored_values(bad)}: not a known status.")
    sort_text = str(params.get("sort", "") or "").strip()
    descending = True
    sort = "opened_at"
    if sort_text:
        name = sort_text.lstrip("-+")
        if name in SORTS:
            sort, descending = name, sort_text.startswith("-")
        else:
            notes.append(f"Ignored sort {sort_text[:40]!r}: sort by one of {', '.join(SORTS)}.")
    numbers: dict[str, int | None] = {}
    for key, label, high in (
        ("page", "page", None),
        ("size", "page size", MAX_PAGE_SIZE),
        ("account", "account", None),
    ):
        value = str(params.get(key, "") or "").strip()
        numbers[key] = None
        if not value:
            continue
        number = whole_number(value)
        if number is not None:
            numbers[key] = number if high is None else min(number, high)
        else:
            notes.append(f"Ignored {label} {value[:40]!r}: not a whole number from 1.")
    query = CaseQuery(
        filters=filters or Filters(),
        text=text,
        status=status,
        account_id=numbers["account"],
        sort=sort,
        descending=descending,
        page=numbers["page"] or 1,
        page_size=numbers["size"] or 50,
    )
    return query, notes


def _where(engine: Engine, query: CaseQuery, subject: Any) -> list[ColumnElement[bool]]:
    f = query.filters
    where: list[ColumnElement[bool]] = []
    for dim in DIMENSIONS:
        values = f.where(dim)
        if values:
            where.append(case_dimension(dim, subject).in_(values))
    if f.start is not None:
        where.append(Case.opened_at >= datetime.combine(f.start, datetime.min.time()))
    if f.end is not None:
        end = datetime.combine(f.end, datetime.min.time()) + timedelta(days=1)
        where.append(Case.opened_at < end)
    if query.status:
        where.append(Case.status.in_(query.status))
    for ids, col in ((query.case_ids, Case.id), (query.subject_ids, Case.subject_account_id)):
        if ids is not None:
            if len(ids) > MAX_IDS:
                raise ValueError(f"too many ids in one case list ({len(ids):,} > {MAX_IDS:,})")
            where.append(col.in_(ids))
    if query.account_id is not None:
        where.append(
            or_(
                Case.subject_account_id == query.account_id,
                Case.reporter_account_id == query.account_id,
            )
        )
    if engine.dialect.name == "clickhousedb":  # the warehouse: its token index
        matched = warehouse.search_condition(query.text)
    else:
        matched = search.match_clause(engine, query.text)
    if matched is not None:
        where.append(matched)
    return where


def _masked(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    return frame.with_columns(privacy.scrub_expr(pl.col(c)) for c in columns)


def search_cases(engine: Engine, query: CaseQuery, *, role: Role | str) -> CasePage:
    """One page of the cases ``query`` asks for, with the total count.

    Descriptions are masked. Sorting breaks ties by case id (same direction), so pages
    never overlap; a page past the end is clamped to the last one. With a warehouse set
    (:func:`analytics.sources.warehouse.active_warehouse`) the count and the page are read
    there instead of ``engine``.

    >>> from analytics.core import database, models
    >>> e = database.make_engine("sqlite://"); _ = models.init_db(e)
    >>> search_cases(e, CaseQuery(text="refund"), role="associate").total
    0
    """
    access.require(role, "cases")
    if query.sort not in SORTS:
        raise ValueError(f"unknown sort {query.sort!r}; use one of {SORTS}")
    reader = warehouse.active_warehouse() or engine
    subject = aliased(Account, name="subject")
    where = _where(reader, query, subject)
    needs_subject = bool(query.filters.specialty)
    counted = select(func.count()).select_from(Case)
    if needs_subject:
        counted = counted.outerjoin(subject, subject.id == Case.subject_account_id)
    with reader.connect() as conn:
        total = int(conn.execute(counted.where(*where)).scalar_one())
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    pages = max(1, -(-total // size))
    page = max(1, min(query.page, pages))
    key: Any = {
        "opened_at": Case.opened_at,
        "severity": case(_severity_rank(), value=Case.severity, else_=-1),
        "category": Case.category,
        "status": case({s: i for i, s in enumerate(STATUSES)}, value=Case.status, else_=-1),
        "region": Case.region,
        "case_id": Case.id,
    }[query.sort]
    order = [key.desc(), Case.id.desc()] if query.descending else [key.asc(), Case.id.asc()]
    # labelled: the frame's names on every engine, whatever a join would call them
    columns = [getattr(Case, c).label(c) for c in _LIST_COLUMNS if c != "case_id"]
    stmt = (
        select(Case.id.label("case_id"), *columns)
        .select_from(Case)
        .where(*where)
        .order_by(*order)
        .limit(size)
        .offset((page - 1) * size)
    )
    if needs_subject:
        stmt = stmt.outerjoin(subject, subject.id == Case.subject_account_id)
    rows = read_frame(reader, stmt, _LIST_COLUMNS)
    return CasePage(rows=_masked(rows, "description"), total=total, page=page, pages=pages)


_ACTION_COLUMNS: dict[str, Any] = {
    "ts": pl.Datetime("us"),
    "actor": pl.String,
    "action": pl.String,
    "detail": pl.String,
}


def case_detail(
    engine: Engine, case_id: int, *, role: Role | str
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case (every column, the description masked, plus the hours to first response
    and to resolution) and its actions timeline, oldest first; ``(None, empty)`` when
    there is no such case.

    >>> from analytics.core import database, models
    >>> e = database.make_engine("sqlite://"); _ = models.init_db(e)
    >>> case_detail(e, 1, role="leadership")[0] is None
    True
    """
    access.require(role, "cases")
    return _case(engine, case_id, masked=True)


def reveal_case(
    engine: Engine, writer: Engine, case_id: int, *, viewer: access.Viewer
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case with its personal data unmasked, for a role that may reveal: the reveal is
    written to the audit log (through ``writer``) before anything is read."""
    access.require(viewer.role, "reveal")
    access.audit(writer, viewer, "reveal", target=f"case {case_id}")
    return _case(engine, case_id, masked=False)


def _case(
    engine: Engine, case_id: int, *, masked: bool
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    with engine.connect() as conn:
        row = conn.execute(select(Case.__table__).where(Case.id == case_id)).mappings().first()
    if row is None:
        return None, empty_frame(_ACTION_COLUMNS)
    found = {k: v.value if isinstance(v, enum.Enum) else v for k, v in row.items()}
    if masked:
        found["description"] = privacy.scrub(pl.Series([found["description"]]))[0]
    opened = found["opened_at"]
    for name, column in (
        ("hours_to_response", "first_response_at"),
        ("hours_to_resolve", "resolved_at"),
    ):
        done = found.get(column)
        found[name] = None if done is None else round((done - opened).total_seconds() / 3600, 1)
    stmt = (
        select(CaseAction.ts, CaseAction.actor, CaseAction.action, CaseAction.detail)
        .where(CaseAction.case_id == case_id)
        .order_by(CaseAction.ts, CaseAction.id)
    )
    actions = read_frame(engine, stmt, _ACTION_COLUMNS)
    return found, _masked(actions, "detail") if masked else actions


def account_profile(engine: Engine, account_id: int, *, role: Role | str) -> dict[str, Any] | None:
    """An account's facts with its identity masked (name to initials, email mailbox
    hidden), or None when there is no such account."""
    access.require(role, "cases")
    with engine.connect() as conn:
        row = (
            conn.execute(select(Account.__table__).where(Account.id == account_id))
            .mappings()
            .first()
        )
    if row is None:
        return None
    masked = pl.DataFrame([dict(row)]).with_columns(
        display_name=privacy.mask_name_expr(pl.col("display_name")),
        email=privacy.mask_email_expr(pl.col("email").cast(pl.String)),
    )
    return masked.row(0, named=True)


_EVENT_COLUMNS: dict[str, Any] = {
    "ts": pl.Datetime("us"),
    "kind": pl.String,
    "platform": pl.String,
    "region": pl.String,
    "device_hash": pl.String,
    "ip_hash": pl.String,
    "target_account_id": pl.Int64,
    "rating": pl.Int64,
}


def account_events(
    engine: Engine,
    account_id: int,
    *,
    role: Role | str,
    end: datetime | None = None,
    limit: int = 500,
) -> pl.DataFrame:
    """An account's latest ``limit`` events before ``end`` (default: all), newest first."""
    access.require(role, "cases")
    stmt = (
        select(Event.ts, Event.kind, Event.platform, Event.region, Event.device_hash,
               Event.ip_hash, Event.target_account_id, Event.rating)
        .where(Event.account_id == account_id)
        .order_by(Event.ts.desc())
        .limit(limit)
    )  # fmt: skip
    if end is not None:
        stmt = stmt.where(Event.ts < end)
    return read_frame(engine, stmt, _EVENT_COLUMNS)


_ACCOUNT_CASE_COLUMNS: dict[str, Any] = {
    "case_id": pl.Int64,
    "role": pl.String,
    "opened_at": pl.Datetime("us"),
    "category": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "resolution": pl.String,
    "description": pl.String,
}


def account_cases(engine: Engine, account_id: int, *, role: Role | str) -> pl.DataFrame:
    """The cases about an account (``role`` "subject") and those it reported
    ("reporter"), newest first, descriptions masked."""
    access.require(role, "cases")
    columns = (Case.id.label("case_id"), Case.opened_at, Case.category, Case.severity,
               Case.status, Case.resolution, Case.description)  # fmt: skip
    about = select(literal("subject").label("role"), *columns).where(
        Case.subject_account_id == account_id
    )
    reported = select(literal("reporter").label("role"), *columns).where(
        Case.reporter_account_id == account_id
    )
    both = union_all(about, reported).subquery()
    stmt = select(both).order_by(both.c.opened_at.desc(), both.c.case_id.desc())
    frame = read_frame(engine, stmt, _ACCOUNT_CASE_COLUMNS)
    return _masked(frame.select(list(_ACCOUNT_CASE_COLUMNS)), "description")


_LINK_COLUMNS: dict[str, Any] = {
    "account_id": pl.Int64,
    "identifier": pl.String,
    "uses": pl.Int64,
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
}
LINKED_SCHEMA: dict[str, Any] = {
    "account_id": pl.Int64,
    "devices": pl.Int64,
    "ips": pl.Int64,
    "uses": pl.Int64,
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
}


def linked_accounts(
    engine: Engine,
    account_id: int,
    *,
    role: Role | str,
    start: datetime,
    end: datetime,
    max_accounts: int = 500,
    min_uses: int = 2,
) -> pl.DataFrame:
    """Accounts that used a device or IP address of ``account_id`` in ``[start, end)``,
    by the rules rings use (:func:`analytics.detectors.rings.find_rings`): an identifier used by
    more than ``max_accounts`` accounts is a hub and links nobody; a link needs at least
    ``min_uses`` events of each side on the identifier. One row per linked account
    with the devices and IPs shared, its uses of them and when; most shared first."""
    access.require(role, "cases")
    parts = []
    for kind, col in (("device", Event.device_hash), ("ip", Event.ip_hash)):
        mine = select(col).where(Event.account_id == account_id, Event.ts >= start, Event.ts < end)
        stmt = (
            select(Event.account_id, col.label("identifier"), func.count().label("uses"),
                   func.min(Event.ts).label("first_seen"), func.max(Event.ts).label("last_seen"))
            .where(col.in_(mine.scalar_subquery()), Event.ts >= start, Event.ts < end)
            .group_by(Event.account_id, col)
        )  # fmt: skip
        parts.append(read_frame(engine, stmt, _LINK_COLUMNS).with_columns(kind=pl.lit(kind)))
    uses = pl.concat(parts)
    ident = ["kind", "identifier"]
    linking = (
        uses.filter(pl.len().over(ident) <= max_accounts, pl.col("uses") >= min_uses)
        .filter((pl.col("account_id") == account_id).any().over(ident))
        .filter(pl.col("account_id") != account_id)
    )
    return (
        linking.group_by("account_id")
        .agg(
            devices=(pl.col("kind") == "device").sum().cast(pl.Int64),
            ips=(pl.col("kind") == "ip").sum().cast(pl.Int64),
            uses=pl.col("uses").sum(),
            first_seen=pl.col("first_seen").min(),
            last_seen=pl.col("last_seen").max(),
        )
        .with_columns(devices=pl.col("devices"), ips=pl.col("ips"))
        .sort(
            pl.col("devices") + pl.col("ips"), "uses", "account_id", descending=[True, True, False]
        )
        .select(list(LINKED_SCHEMA))
        .cast(LINKED_SCHEMA)  # type: ignore[arg-type]
    )
