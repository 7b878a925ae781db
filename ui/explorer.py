"""The Case Explorer's pieces: what a link asks for, the case list, a case, an account.

Other pages link to the Case Explorer (:func:`link`) with the global filters and one
*context* in the URL: ``cluster`` (a topic of the Emerging Threats page), ``ring`` (a
ring of linked accounts), or ``slice`` with ``opened_from``/``opened_to`` (an anomaly).
``case`` and ``account`` open a case and an account below the list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import polars as pl
import streamlit as st

from analytics import access
from analytics.access import Viewer
from analytics.core.filters import (
    CHOICES,
    DIMENSIONS,
    Filters,
    ignored_values,
    parse_day,
    whole_number,
)
from analytics.present import exports
from analytics.present.theme import format_number
from analytics.sources import cases
from ui import data, session
from ui.filters import Selection, humanise, link_params, page_param, set_page_param

__all__ = ["Context", "account_view", "case_list", "case_view", "context", "link"]

_CONTEXT_KEYS = ("cluster", "ring", "slice", "opened_from", "opened_to")
_EXPLORER = "pages/cases.py"


def link(label: str, *, key: str | None = None, **params: object) -> None:
    """A link to the Case Explorer that keeps the global filters and adds ``params``;
    nothing for a viewer whose role may not open it."""
    if not session.may("cases"):
        return
    st.page_link(
        _EXPLORER,
        label=label,
        icon=":material/manage_search:",
        query_params=link_params(**params),
    )


@dataclass(frozen=True)
class Context:
    """What the link restricted the list to, in words, and the query it gives."""

    label: str
    query: cases.CaseQuery


def _day(raw: str) -> date | None:
    return parse_day(raw) if raw else None


def context(
    selection: Selection, base: cases.CaseQuery, as_of: datetime, viewer: Viewer
) -> Context | None:
    """The restriction a link asked for (a topic, a ring or an anomaly's slice), applied
    to ``base``; None when the URL asks for none. Unusable values get a warning."""
    cluster, ring, slice_key = (page_param(k) for k in ("cluster", "ring", "slice"))
    if cluster:
        clusters, texts = data.emerging(selection.filters, as_of, role=viewer.role)
        known = clusters["cluster_id"].to_list()
        number = whole_number(cluster)
        if number is not None and number in known:
            row = clusters.filter(pl.col("cluster_id") == number).row(0, named=True)
            ids = texts.filter(pl.col("cluster_id") == number)["case_id"].to_list()
            query = replace(base, case_ids=tuple(ids), filters=_undated(base.filters))
            return Context(f"Topic {cluster} of the week: {row['terms']}", query)
        st.warning(f"Ignored topic {cluster[:20]!r}: not a topic of this week and filters.")
    if ring:
        _rings, members, _edges = data.rings(as_of, role=viewer.role)
        mine = members.filter(pl.col("ring_id").cast(pl.String) == ring)
        if not mine.is_empty():
            accounts = tuple(int(a) for a in mine["account_id"].to_list())
            query = replace(base, subject_ids=accounts, filters=_undated(base.filters))
            label = f"Ring {ring} of the week: cases about its {len(accounts)} accounts"
            return Context(label, query)
        st.warning(f"Ignored ring {ring[:20]!r}: not a ring of this week.")
    start, end = _day(page_param("opened_from")), _day(page_param("opened_to"))
    if slice_key or start or end:
        dims, ignored = _slice_dims(slice_key)
        if ignored:
            st.caption(
                f"The anomaly's slice also names {ignored_values(ignored)}, which cases "
                "do not have: showing the cases of its other dimensions."
            )
        start, end = start or base.filters.start, end or base.filters.end
        f = replace(base.filters, start=start, end=end, **{k: (v,) for k, v in dims.items()})
        what = f"The anomaly {slice_key[:80]}:" if slice_key else "Cases"
        if start and end and start > end:
            st.warning("Ignored the opening dates: they end before they start.")
            start, end = base.filters.start, base.filters.end
        when = f" opened {start:%d %b}–{end:%d %b %Y}" if start and end else ""
        return Context(what + when, replace(base, filters=f))
    return None


def _undated(f: Filters) -> Filters:
    return replace(f, start=None, end=None)


def _slice_dims(slice_key: str) -> tuple[dict[str, str], list[str]]:
    dims: dict[str, str] = {}
    ignored: list[str] = []
    for part in slice_key.split("|"):
        name, _, value = part.partition("=")
        if name in DIMENSIONS and value in CHOICES[name]:
            dims[name] = value
        elif part and part != "all":
            ignored.append(part)
    return dims, list(dict.fromkeys(ignored))


def clear_context() -> None:
    """Forget the link's restriction (and the open case and account)."""
    for key in (*_CONTEXT_KEYS, "case", "account", "page"):
        set_page_param(key, "")


_LIST_COLUMNS: dict[str, Any] = {
    "case_id": st.column_config.NumberColumn("Case", format="%d"),
    "opened_at": st.column_config.DatetimeColumn("Opened", format="D MMM YYYY, HH:mm"),
    "category": st.column_config.TextColumn("Category"),
    "severity": st.column_config.TextColumn("Severity"),
    "status": st.column_config.TextColumn("Status"),
    "source": st.column_config.TextColumn("Source"),
    "region": st.column_config.TextColumn("Region"),
    "platform": st.column_config.TextColumn("Platform"),
    "subject_account_id": st.column_config.NumberColumn("Subject account", format="%d"),
    "description": st.column_config.TextColumn("Description (masked)", width="large"),
    "role": st.column_config.TextColumn("Role"),
    "resolution": st.column_config.TextColumn("Resolution"),
}


def case_list(page: cases.CasePage) -> int | None:
    """The page of cases as a table; returns the case picked in it, if any."""
    picked = st.dataframe(
        exports.neutralise(page.rows),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"cases_table_{page.page}",
        width="stretch",
        height=min(38 + 35 * max(page.rows.height, 1), 560),
        column_config=_LIST_COLUMNS,
    )
    rows = picked.selection.get("rows") if picked else None
    return int(page.rows["case_id"][rows[0]]) if rows else None


def pager(page: cases.CasePage) -> None:
    """Previous / next buttons and where we are; the page number lives in the URL."""
    left, middle, right = st.columns([1, 4, 1])
    first = page.total and (page.page - 1) * page.rows.height + 1
    middle.caption(
        f"{format_number(page.total)} cases · page {page.page:,} of {page.pages:,}"
        + (f" (cases {first:,}–{first + page.rows.height - 1:,})" if page.total else "")
    )
    if left.button("Previous", disabled=page.page <= 1, key="cases_prev", width="stretch"):
        set_page_param("page", str(page.page - 1))
        st.rerun()
    if right.button("Next", disabled=page.page >= page.pages, key="cases_next", width="stretch"):
        set_page_param("page", str(page.page + 1))
        st.rerun()


def _hours(value: float | None) -> str:
    return format_number(value, unit="hours")


def case_view(case_id: int, viewer: Viewer) -> None:
    """A case: its facts, its (masked) description as plain text, its actions. An
    associate may reveal the unmasked text; every view and reveal is audited."""
    mine = (viewer.name, case_id)  # per-user keys: never another user's view or reveal
    revealed = st.session_state.get("cases_revealed") == mine and access.allowed(
        viewer.role, "reveal"
    )
    if revealed:
        found, actions = data.reveal(case_id, viewer)
    else:
        found, actions = data.case_detail(case_id, role=viewer.role)
    if found is None:
        st.warning(f"There is no case {case_id}.")
        return
    if st.session_state.get("cases_audited") != mine:
        data.audit(viewer, "case_view", target=f"case {case_id}")
        st.session_state["cases_audited"] = mine
    st.subheader(
        f"Case {case_id} · {humanise(found['category'])} · {found['severity']} · "
        f"{humanise(found['status'])}"
    )
    a, b, c, d = st.columns(4)
    a.metric("Opened", f"{found['opened_at']:%d %b %Y}", help=f"{found['opened_at']:%H:%M} UTC")
    b.metric("First response", _hours(found["hours_to_response"]), help="Hours after opening")
    c.metric("Resolved", _hours(found["hours_to_resolve"]), help="Hours after opening")
    d.metric("Resolution", humanise(found["resolution"] or "open"))
    st.caption(
        f"Source {humanise(found['source'])} · {found['region']} · {found['platform']} · "
        f"assignee {found['assignee'] or 'none'}"
        + (f" · appealed, {found['appeal_outcome'] or 'pending'}" if found["appealed_at"] else "")
    )
    with st.container(border=True):
        st.text(found["description"])  # plain text: never markdown or HTML
    if revealed:
        st.caption("Personal data revealed: this reveal is in the audit log.")
        if st.button("Mask again", key="cases_mask"):
            st.session_state.pop("cases_revealed", None)
            st.rerun()
    elif access.allowed(viewer.role, "reveal") and st.button(
        "Reveal personal data", key="cases_reveal", help="Written to the audit log"
    ):
        st.session_state["cases_revealed"] = mine
        st.rerun()
    st.markdown(f"**Actions** ({actions.height})")
    if actions.is_empty():
        st.caption("No action recorded yet.")
    else:
        hours = ((pl.col("ts") - found["opened_at"]).dt.total_minutes() / 60).round(1)
        st.dataframe(
            exports.neutralise(actions.with_columns(after_hours=hours)),
            hide_index=True,
            width="stretch",
            column_config={
                "ts": st.column_config.DatetimeColumn("When", format="D MMM YYYY, HH:mm"),
                "after_hours": st.column_config.NumberColumn("Hours after opening"),
                "detail": st.column_config.TextColumn("Detail (masked)", width="large"),
            },
        )
    people = [("Subject", found["subject_account_id"]), ("Reporter", found["reporter_account_id"])]
    columns = st.columns(len(people))
    for column, (role, account_id) in zip(columns, people, strict=True):
        if account_id is None:
            column.caption(f"{role}: none")
        elif column.button(f"Open {role.lower()} account {account_id}", key=f"cases_open_{role}"):
            set_page_param("account", str(account_id))
            st.rerun()


def account_view(account_id: int, as_of: datetime, viewer: Viewer) -> None:
    """An account: who (masked), its ring, linked accounts, events and cases."""
    found = data.account(account_id, as_of, role=viewer.role)
    profile = found["profile"]
    if profile is None:
        st.warning(f"There is no account {account_id}.")
        return
    st.subheader(f"Account {account_id} · {humanise(profile['kind'])} · {profile['region']}")
    age = (as_of - profile["created_at"]).days
    a, b, c, d = st.columns(4)
    a.metric("Created", f"{profile['created_at']:%d %b %Y}", help=f"{age:,} days before as-of")
    b.metric("Status", humanise(profile["status"]))
    c.metric("Verified", "yes" if profile["verified"] else "no")
    d.metric("Name (masked)", profile["display_name"] or "–", help=profile["email"] or None)
    _rings, members, _edges = data.rings(as_of, role=viewer.role)
    ring = members.filter(pl.col("account_id") == account_id)
    if not ring.is_empty():
        ring_id = int(ring["ring_id"][0])
        st.info(f"Member of ring {ring_id} in the 14 days before {as_of:%d %b %Y}.")
        st.page_link(
            "pages/emerging.py",
            label=f"Open ring {ring_id} in Emerging threats",
            icon=":material/hub:",
            query_params=link_params(ring=ring_id),
        )
    linked = found["linked"]
    start, end = found["window"]
    st.markdown(
        f"**Linked accounts** ({linked.height}: sharing a device or IP, each used at "
        f"least twice, {start:%d %b}–{end:%d %b %Y}; shared hubs left out)"
    )
    if linked.is_empty():
        st.caption("None in this window.")
    else:
        picked = st.dataframe(
            linked,
            hide_index=True,
            on_select="rerun",
            selection_mode="single-row",
            key="cases_linked",
            width="stretch",
            height=min(38 + 35 * linked.height, 300),
            column_config={"account_id": st.column_config.NumberColumn("Account", format="%d")},
        )
        rows = picked.selection.get("rows") if picked else None
        if rows:
            set_page_param("account", str(linked["account_id"][rows[0]]))
            st.rerun()
    left, right = st.columns(2)
    events = found["events"]
    left.markdown(f"**Latest events** ({events.height:,}, before {as_of:%d %b %Y})")
    left.dataframe(events, hide_index=True, width="stretch", height=320)
    history = found["cases"]
    right.markdown(f"**Cases about it or reported by it** ({history.height:,})")
    right.dataframe(
        exports.neutralise(history),
        hide_index=True,
        width="stretch",
        height=320,
        column_config=_LIST_COLUMNS,
    )
