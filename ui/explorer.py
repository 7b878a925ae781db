"""The Case Explorer's pieces, drawn: links to it, the case list, a case, an account.

Other pages link to the Case Explorer (:func:`link`) with the global filters and one
*context* (:data:`analytics.views.cases.CONTEXT_KEYS`, as ``cases.cluster``,
``cases.ring``, ``cases.slice``...); :func:`analytics.views.cases.explorer_query` reads
it. ``cases.case`` opens a case beside the list (above it on a narrow screen);
``cases.account`` opens an account above the list and restricts the list to the cases
about it or reported by it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import streamlit as st

from analytics import access
from analytics.access import Viewer
from analytics.present import exports
from analytics.present.formatting import format_day, format_days, format_number, humanise, humanised
from analytics.views.cases import (
    CONTEXT_KEYS,
    ExplorerQuery,
    action_rows,
    case_facts,
    case_status,
    list_rows,
)
from ui import data, session
from ui.filters import PageState, link_params

if TYPE_CHECKING:
    from analytics.sources.cases import CasePage

__all__ = [
    "CASES",
    "account_view",
    "case_list",
    "case_view",
    "clear_context",
    "context",
    "link",
    "pager",
    "split",
]

#: The Case Explorer's own state in the URL and the session (``cases.*``).
CASES = PageState("cases")
_EXPLORER = "pages/cases.py"


def link(label: str, **params: object) -> None:
    """A link to the Case Explorer that keeps the global filters and sets ``params``
    (its own, :data:`CASES`); nothing for a viewer whose role may not open it."""
    if not session.may("cases"):
        return
    st.page_link(
        _EXPLORER,
        label=label,
        icon=":material/manage_search:",
        query_params=link_params(CASES.page, **params),
    )


def context(found: ExplorerQuery) -> None:
    """What the list shows: the notes on values ignored, and the restriction a link asked
    for with a button that clears it."""
    for warning in found.warnings:
        st.warning(warning)
    for note in found.notes:
        st.caption(note)
    if found.context is None:
        return
    info, clear = st.columns([5, 1])
    info.info(found.context, icon=":material/filter_alt:")
    if clear.button("Show all cases", key="cases_clear", width="stretch"):
        clear_context()
        st.rerun()


def clear_context() -> None:
    """Forget the link's restriction (and the open case and account)."""
    for key in (*CONTEXT_KEYS, "case", "account", "page"):
        CASES.set(key, "")


_LIST_COLUMNS: dict[str, Any] = {
    "case_id": st.column_config.NumberColumn("Case", format="%d", width=65),
    # the day and time only: the full date is in the case view (its Opened fact)
    "opened_at": st.column_config.DatetimeColumn(
        "Opened", format="D MMM HH:mm", width=95, help="Day and time opened (UTC)"
    ),
    "category": st.column_config.TextColumn("Category", width=140),
    "severity": st.column_config.TextColumn("Severity", width=95),
    "status": st.column_config.TextColumn("Status", width=80),
    "source": st.column_config.TextColumn("Source", width=120),
    "region": st.column_config.TextColumn("Region", width=80),
    "platform": st.column_config.TextColumn("Platform", width=95),
    "subject_account_id": st.column_config.NumberColumn("Subject account", format="%d", width=150),
    "description": st.column_config.TextColumn(
        "Description (masked)", width=250, help="Personal data masked"
    ),
}
#: The list's columns in order: the status and the description first, so they are read,
#: not scrolled to (the rest scrolls into view).
_LIST_ORDER = ("case_id", "status", "description", "opened_at", "category", "severity",
               "source", "region", "platform", "subject_account_id")  # fmt: skip
#: A row of the list holds five lines of description (wrapping needs more than 64 px).
_ROW_HEIGHT = 108
#: Columns side by side stack on a narrow screen; the case then comes first.
_STACKED_CASE_FIRST = """<style>
@media (max-width: 640px) {
  .st-key-cases_split [data-testid="stHorizontalBlock"]:not([data-testid="stColumn"] *) {
    flex-direction: column-reverse;
  }
}
</style>"""


def split() -> tuple[Any, Any]:
    """The list's column and the case's, side by side (list left); on a narrow screen
    they stack with the case on top."""
    st.html(_STACKED_CASE_FIRST)
    with st.container(key="cases_split"):
        left, right = st.columns([11, 9], gap="medium")
    return left, right


def case_list(page: CasePage, found: ExplorerQuery) -> int | None:
    """The page of cases as a table, descriptions wrapped and masked, labels in words;
    returns the case picked in it, if any. The table's key changes with the list, so a
    selection never carries over to another list's row."""
    picked = st.dataframe(
        exports.neutralise(list_rows(page.rows)),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"cases_table_{abs(hash((found.query, page.page))):x}",
        width="stretch",
        height=min(38 + (_ROW_HEIGHT + 1) * max(page.rows.height, 1), 700),
        row_height=_ROW_HEIGHT,
        placeholder="–",
        column_order=[c for c in _LIST_ORDER if c in page.rows.columns],
        column_config=_LIST_COLUMNS,
    )
    rows = picked.selection.get("rows") if picked else None
    return int(page.rows["case_id"][rows[0]]) if rows else None


def pager(page: CasePage) -> None:
    """Previous / next buttons around where we are; the page number lives in the URL."""
    first = page.total and (page.page - 1) * page.rows.height + 1
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        back = st.button("Previous", disabled=page.page <= 1, key="cases_prev", width="content")
        st.caption(
            f"{format_number(page.total)} cases · page {page.page:,} of {page.pages:,}"
            + (f" (cases {first:,}–{first + page.rows.height - 1:,})" if page.total else ""),
            width="stretch",
        )
        forward = st.button(
            "Next", disabled=page.page >= page.pages, key="cases_next", width="content"
        )
    if back:
        CASES.set("page", str(page.page - 1))
        st.rerun()
    if forward:
        CASES.set("page", str(page.page + 1))
        st.rerun()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$])")


#: How a case's facts are laid out: the lines, and the facts on each.
_FACT_LINES = (("Status", "Outcome"), ("Opened",), ("First response", "Resolved"),
               ("Category", "Severity"), ("Source", "Platform"), ("Region", "Assignee"),
               ("Appeal",))  # fmt: skip


def _facts(facts: dict[str, str]) -> str:
    """The facts as markdown lines (values escaped: they come from data)."""
    escaped = {k: _MARKDOWN_SPECIAL.sub(r"\\\1", v) for k, v in facts.items()}
    lines = [" · ".join(f"**{k}:** {escaped[k]}" for k in line if k in escaped)
             for line in _FACT_LINES]  # fmt: skip
    return "  \n".join(line for line in lines if line)


def case_view(case_id: int, viewer: Viewer) -> None:
    """A case: its one status (:func:`analytics.views.cases.case_status`) in its heading
    and facts, its (masked) description as plain text, its actions. An associate may
    reveal the unmasked text; every view and reveal is audited."""
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
        f"Case {case_id} · {humanise(found['category'])} · {humanise(found['severity'])} · "
        f"{case_status(found)}"
    )
    st.markdown(_facts(case_facts(found)))
    with st.container(border=True):
        st.text(found["description"] or "–")  # plain text: never markdown or HTML
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
        st.dataframe(
            exports.neutralise(action_rows(actions)),
            hide_index=True,
            width="stretch",
            placeholder="–",
            column_order=("ts", "action", "detail", "after", "actor"),
            column_config={
                "ts": st.column_config.DatetimeColumn("When", format="D MMM, HH:mm", width=110),
                "after": st.column_config.TextColumn("After", width=70),
                "actor": st.column_config.TextColumn("Who", width=110),
                "action": st.column_config.TextColumn("What", width=120),
                "detail": st.column_config.TextColumn("Detail (masked)", width="large"),
            },
        )
    people = [("Subject", found["subject_account_id"]), ("Reporter", found["reporter_account_id"])]
    columns = st.columns(len(people))
    for column, (role, account_id) in zip(columns, people, strict=True):
        if account_id is None:
            column.caption(f"{role}: no account")
        elif column.button(f"Open {role.lower()} account {account_id}", key=f"cases_open_{role}"):
            CASES.set("account", str(account_id))
            st.rerun()


def account_view(account_id: int, as_of: datetime, viewer: Viewer) -> None:
    """An account: who (masked), its ring, linked accounts, events and cases."""
    found = data.account(account_id, as_of, role=viewer.role)
    profile = found.profile
    if profile is None:
        st.warning(f"There is no account {account_id}.")
        return
    st.subheader(f"Account {account_id} · {humanise(profile.kind)} · {profile.region}")
    a, b, c, d = st.columns(4)
    a.metric(
        "Created",
        format_day(profile.created_at.date()),
        help=f"{found.age_days:,} days before as-of",
    )
    b.metric("Status", humanise(profile.status))
    c.metric("Verified", "yes" if profile.verified else "no")
    d.metric("Name (masked)", profile.display_name or "–", help=profile.email or None)
    ring_id = data.rings(as_of, role=viewer.role).ring_of(account_id)
    if ring_id is not None:
        st.info(f"Member of ring {ring_id} in the 14 days before {format_day(as_of.date())}.")
        st.page_link(
            "pages/emerging.py",
            label=f"Open ring {ring_id} in Emerging threats",
            icon=":material/hub:",
            query_params=link_params("emerging", ring=ring_id),
        )
    linked = found.linked
    start, end = found.start, found.end
    st.markdown(
        f"**Linked accounts** ({linked.height}: sharing a device or IP, each used at "
        f"least twice, {format_days(start.date(), (end - timedelta(days=1)).date())}; shared "
        "hubs left out)"
    )
    if linked.is_empty():
        st.caption("No linked account in this window.")
    else:
        picked = st.dataframe(
            linked,
            hide_index=True,
            on_select="rerun",
            selection_mode="single-row",
            key="cases_linked",
            width="stretch",
            height=min(38 + 35 * linked.height, 300),
            placeholder="–",
            column_config={"account_id": st.column_config.NumberColumn("Account", format="%d")},
        )
        rows = picked.selection.get("rows") if picked else None
        if rows:
            CASES.set("account", str(linked["account_id"][rows[0]]))
            st.rerun()
    events = found.events
    st.markdown(
        f"**Latest events** ({events.height:,}, before {format_day(as_of.date())}); its "
        "cases are the list below"
    )
    st.dataframe(
        events.with_columns(humanised(pl.col(c)) for c in ("kind", "platform")),
        hide_index=True, width="stretch", height=320, placeholder="–",
        column_config=_EVENT_COLUMNS,
    )  # fmt: skip


#: The account's events as the page shows them.
_EVENT_COLUMNS: dict[str, Any] = {
    "ts": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY, HH:mm"),
    "kind": "Event", "platform": "Platform", "region": "Region",
    "device_hash": "Device (hashed)", "ip_hash": "IP (hashed)",
    "target_account_id": st.column_config.NumberColumn("Towards account", format="%d"),
    "rating": "Rating",
}  # fmt: skip
