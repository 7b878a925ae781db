"""The Case Explorer page: the case list a URL asks for, one case, one account.

Other pages link here with the global filters and one *context* (:data:`CONTEXT_KEYS`):
``cluster`` (a topic of the Emerging Threats page), ``ring`` (a ring of linked
accounts), or ``slice`` with ``opened_from``/``opened_to`` (an anomaly).
:func:`explorer_query` turns the page's parameters into the
:class:`~analytics.sources.cases.CaseQuery` of the list, with what the context
restricted it to in words and a note for every value it could not use; the reads
themselves are :mod:`analytics.sources.cases`' (masked, role-checked).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.access import Viewer
from analytics.core.filters import (
    DIMENSIONS,
    Filters,
    choices,
    ignored_values,
    parse_day,
    whole_number,
)
from analytics.core.models import Role
from analytics.present.formatting import format_moment, format_number, humanise, humanised
from analytics.sources import cases, warehouse
from analytics.views.emerging import RING_DAYS, RingView, TopicsView, topic_name

__all__ = [
    "CONTEXT_KEYS",
    "EXACT_WORDS_NOTE",
    "SORTS",
    "AccountProfile",
    "AccountView",
    "ExplorerQuery",
    "account_view",
    "action_rows",
    "case_detail",
    "case_facts",
    "case_list",
    "case_status",
    "explorer_query",
    "list_rows",
    "reveal_case",
    "search_note",
    "slice_filters",
    "status_choices",
]

#: The page parameters with which another page restricts the list.
CONTEXT_KEYS: tuple[str, ...] = ("cluster", "ring", "slice", "opened_from", "opened_to")
#: The list's orders: URL value (``-`` for descending) -> label; the first is the default.
SORTS: dict[str, str] = {
    "-opened_at": "Newest first",
    "opened_at": "Oldest first",
    "-severity": "Most severe first",
    "status": "Open first",
    "category": "Category",
    "region": "Region",
}


def status_choices() -> tuple[str, ...]:
    """The case statuses the list can be narrowed to."""
    return cases.STATUSES


@dataclass(frozen=True)
class ExplorerQuery:
    """The list the page shows: its ``query``; the ``context`` a link restricted it to,
    in words (None without one); ``warnings`` for values it ignored and ``notes`` on
    how it read them."""

    query: cases.CaseQuery
    context: str | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def slice_filters(slice_key: str) -> tuple[dict[str, str], list[str]]:
    """The case dimensions an anomaly's slice names, and the parts cases do not have
    (event kinds, unknown values).

    >>> slice_filters("kind=review_posted|region=FL")
    ({'region': 'FL'}, ['kind=review_posted'])
    """
    dims: dict[str, str] = {}
    ignored: list[str] = []
    for part in slice_key.split("|"):
        name, _, value = part.partition("=")
        if name in DIMENSIONS and value in choices()[name]:
            dims[name] = value
        elif part and part != "all":
            ignored.append(part)
    return dims, list(dict.fromkeys(ignored))


def _day(raw: str) -> date | None:
    return parse_day(raw) if raw else None


def _undated(f: Filters) -> Filters:
    return replace(f, start=None, end=None)


def explorer_query(
    params: Mapping[str, str],
    shown: Filters,
    *,
    topics: Callable[[], TopicsView],
    rings: Callable[[], RingView],
    role: Role | str,
) -> ExplorerQuery:
    """The list asked for by the page's ``params`` (``q``, ``status``, ``sort``, ``page``
    and a context of :data:`CONTEXT_KEYS`) under the global filters ``shown``.

    ``topics`` and ``rings`` give the week's topics and rings, called only when the
    context names one (a topic's cases, a ring's accounts); unusable values are dropped
    with a warning.
    """
    access.require(role, "cases")
    base, parsed = cases.parse_case_query(params, shown)
    warnings, notes = list(parsed), []
    cluster, ring, slice_key = (str(params.get(k, "") or "") for k in ("cluster", "ring", "slice"))
    if cluster:
        view = topics()
        number = whole_number(cluster)
        if number is not None and number in view.ids:
            ids = view.cases.filter(pl.col("cluster_id") == number)["case_id"].to_list()
            query = replace(base, case_ids=tuple(ids), filters=_undated(base.filters))
            row = view.clusters.filter(pl.col("cluster_id") == number).row(0, named=True)
            name = topic_name(row.get("label") or row["terms"])
            label = f"The topic “{name}” of the week: its {len(ids):,} cases ({row['terms']})"
            return ExplorerQuery(query, label, tuple(warnings))
        warnings.append(f"Ignored topic {cluster[:20]!r}: not a topic of this week and filters.")
    if ring:
        mine = rings().members_of(ring)
        if not mine.is_empty():
            accounts = tuple(int(a) for a in mine["account_id"].to_list())
            query = replace(base, subject_ids=accounts, filters=_undated(base.filters))
            label = f"Ring {ring} of the week: cases about its {len(accounts)} accounts"
            return ExplorerQuery(query, label, tuple(warnings))
        warnings.append(f"Ignored ring {ring[:20]!r}: not a ring of this week.")
    if base.account_id is not None and not (slice_key or params.get("opened_from")):
        query = replace(base, filters=_undated(base.filters))
        label = f"Cases about account {base.account_id} or reported by it, of any date"
        return ExplorerQuery(query, label, tuple(warnings))
    start = _day(str(params.get("opened_from", "") or ""))
    end = _day(str(params.get("opened_to", "") or ""))
    if not (slice_key or start or end):
        return ExplorerQuery(base, None, tuple(warnings))
    dims, ignored = slice_filters(slice_key)
    if ignored:
        notes.append(
            f"The anomaly's slice also names {ignored_values(ignored)}, which cases "
            "do not have: showing the cases of its other dimensions."
        )
    start, end = start or base.filters.start, end or base.filters.end
    f = replace(base.filters, start=start, end=end, **{k: (v,) for k, v in dims.items()})
    what = f"The anomaly {slice_key[:80]}:" if slice_key else "Cases"
    if start and end and start > end:
        warnings.append("Ignored the opening dates: they end before they start.")
        start, end = base.filters.start, base.filters.end
    when = f" opened {start:%d %b}–{end:%d %b %Y}" if start and end else ""
    return ExplorerQuery(replace(base, filters=f), what + when, tuple(warnings), tuple(notes))


def case_status(found: Mapping[str, Any]) -> str:
    """A case's one status in words, the same in its heading, its facts and the list:
    ``Open``, ``In review`` or ``Resolved``; ``–`` without one.

    >>> case_status({"status": "in_review", "resolution": None})
    'In review'
    """
    return humanise(found.get("status"))


def _after(hours: float | None) -> str:
    return f"after {format_number(hours, unit='hours')}" if hours is not None else "Not yet"


def case_facts(found: Mapping[str, Any]) -> dict[str, str]:
    """A case's facts as the page shows them, label -> words: never ``None``, labels
    humanised, the status from :func:`case_status` (and the outcome only once resolved).

    >>> from datetime import datetime
    >>> facts = case_facts({"status": "in_review", "resolution": None,
    ...     "opened_at": datetime(2026, 3, 3, 14, 5), "hours_to_response": 2.6,
    ...     "hours_to_resolve": None, "category": "fake_review", "severity": "high",
    ...     "source": "ml_model", "region": "FL", "platform": "ios", "assignee": None,
    ...     "appealed_at": None, "appeal_outcome": None})
    >>> facts["Status"], facts["Outcome"], facts["First response"], facts["Resolved"]
    ('In review', 'Not decided yet', 'after 2.6 h', 'Not yet')
    >>> facts["Source"], facts["Platform"], facts["Assignee"], facts["Appeal"]
    ('ML model', 'iOS', 'Unassigned', 'Not appealed')
    """
    status = case_status(found)
    resolved = found.get("status") == "resolved"
    appealed = found.get("appealed_at") is not None
    return {
        "Status": status,
        "Outcome": humanise(found.get("resolution")) if resolved else "Not decided yet",
        "Opened": format_moment(found["opened_at"]) if found.get("opened_at") else "–",
        "First response": _after(found.get("hours_to_response")),
        "Resolved": _after(found.get("hours_to_resolve")) if resolved else "Not yet",
        "Category": humanise(found.get("category")),
        "Severity": humanise(found.get("severity")),
        "Source": humanise(found.get("source")),
        "Region": humanise(found.get("region")),
        "Platform": humanise(found.get("platform")),
        "Assignee": str(found.get("assignee") or "Unassigned"),
        "Appeal": (
            f"Appealed: {humanise(found.get('appeal_outcome') or 'pending').lower()}"
            if appealed
            else "Not appealed"
        ),
    }


#: The list's coded columns, shown as words.
_CODED = ("category", "severity", "status", "source", "platform")


def list_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """A page of the case list as shown: coded values humanised (the status as
    :func:`case_status` writes it), nothing else changed.

    >>> list_rows(pl.DataFrame({"case_id": [7], "status": ["in_review"],
    ...     "source": ["ml_model"], "platform": ["ios"]})).row(0)
    (7, 'In review', 'ML model', 'iOS')
    """
    return rows.with_columns(humanised(pl.col(c)) for c in _CODED if c in rows.columns)


def action_rows(actions: pl.DataFrame) -> pl.DataFrame:
    """A case's actions as shown: when, hours after opening, who, what (humanised) and
    the (masked) detail, ``–`` where there is none.

    >>> from datetime import datetime
    >>> a = pl.DataFrame({"ts": [datetime(2026, 3, 3, 15)], "actor": ["associate-1"],
    ...     "action": ["first_response"], "detail": [None], "after_hours": [1.0]})
    >>> action_rows(a).row(0)[1:]
    ('1.0 h', 'associate-1', 'First response', '–')
    """
    hours = pl.col("after_hours").map_elements(
        lambda h: format_number(h, unit="hours"), return_dtype=pl.String
    )
    detail = pl.col("detail").cast(pl.String)
    return actions.select(
        "ts",
        after=hours.fill_null("–") if "after_hours" in actions.columns else pl.lit("–"),
        actor=pl.col("actor").cast(pl.String).fill_null("–"),
        action=humanised(pl.col("action").cast(pl.String)).fill_null("–"),
        detail=pl.when(detail.str.contains(r"^[a-z]+(_[a-z]+)*$"))
        .then(humanised(detail))
        .otherwise(detail)
        .fill_null("–"),
    )


#: What the search box says on the ClickHouse warehouse, whose token index does not stem.
EXACT_WORDS_NOTE = (
    "Words match exactly here (the warehouse's index does not stem): `refund` does not "
    "find *refunds*; `refund*` finds both."
)


def search_note(environ: Mapping[str, str] | None = None) -> str | None:
    """What the search box should add about how words match: on the ClickHouse warehouse
    (``LOOKOUT_WAREHOUSE_URL``), exactly; else nothing (SQLite's and PostgreSQL's
    indexes stem, so ``refund`` finds *refunds*).

    >>> search_note({}) is None
    True
    >>> search_note({"LOOKOUT_WAREHOUSE_URL": "clickhousedb://wh/db"}) == EXACT_WORDS_NOTE
    True
    """
    return EXACT_WORDS_NOTE if warehouse.warehouse_url(environ) is not None else None


def case_list(engine: Engine, query: cases.CaseQuery, *, role: Role | str) -> cases.CasePage:
    """One page of the list (descriptions masked)."""
    return cases.search_cases(engine, query, role=role)


def _timed(
    found: dict[str, Any] | None, actions: pl.DataFrame
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """The actions with ``after_hours``: hours after the case was opened."""
    if found is None:
        return found, actions
    hours = ((pl.col("ts") - found["opened_at"]).dt.total_minutes() / 60).round(1)
    return found, actions.with_columns(after_hours=hours)


def case_detail(
    engine: Engine, case_id: int, *, role: Role | str
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case (masked) and its actions timeline, each action with ``after_hours``."""
    return _timed(*cases.case_detail(engine, case_id, role=role))


def reveal_case(
    engine: Engine, writer: Engine, case_id: int, *, viewer: Viewer
) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """A case unmasked, for a role that may reveal (audited through ``writer`` first),
    and its actions timeline, each action with ``after_hours``."""
    return _timed(*cases.reveal_case(engine, writer, case_id, viewer=viewer))


@dataclass(frozen=True)
class AccountProfile:
    """An account's facts, its identity masked (name to initials, email mailbox hidden)."""

    account_id: int
    kind: str
    region: str
    created_at: datetime
    status: str
    verified: bool
    display_name: str | None
    email: str | None
    specialty: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AccountProfile:
        """From :func:`analytics.sources.cases.account_profile`'s row."""
        return cls(
            account_id=int(row["id"]),
            kind=str(row["kind"]),
            region=str(row["region"]),
            created_at=row["created_at"],
            status=str(row["status"]),
            verified=bool(row["verified"]),
            display_name=row.get("display_name"),
            email=row.get("email"),
            specialty=row.get("specialty"),
        )


@dataclass(frozen=True)
class AccountView:
    """An account as the page shows it: its ``profile`` (None when there is no such
    account), its latest ``events`` before ``end``, its ``cases`` (about it or reported
    by it) and the accounts ``linked`` to it in ``[start, end)``."""

    profile: AccountProfile | None
    events: pl.DataFrame
    cases: pl.DataFrame
    linked: pl.DataFrame
    start: datetime
    end: datetime

    @property
    def age_days(self) -> int:
        """Days from the account's creation to ``end`` (0 without a profile)."""
        return 0 if self.profile is None else (self.end - self.profile.created_at).days


def account_view(
    engine: Engine, account_id: int, *, as_of: datetime, role: Role | str
) -> AccountView:
    """An account (identity masked), its events before ``as_of``, its cases and the
    accounts linked to it in the two ring windows (28 days) before ``as_of``."""
    access.require(role, "cases")
    start = as_of - timedelta(days=2 * RING_DAYS)
    profile = cases.account_profile(engine, account_id, role=role)
    return AccountView(
        profile=None if profile is None else AccountProfile.of(profile),
        events=cases.account_events(engine, account_id, role=role, end=as_of),
        cases=cases.account_cases(engine, account_id, role=role),
        linked=cases.linked_accounts(engine, account_id, role=role, start=start, end=as_of),
        start=start,
        end=as_of,
    )
