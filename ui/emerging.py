"""The Emerging Threats page's pieces, drawn: the topic table, a topic's story and cases,
the ring table, and where the rings are when the focus week has none.

Its own state lives in the URL under ``emerging.*`` (:data:`EMERGING`): ``cluster`` (the
topic shown) and ``ring``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from analytics.core.calendar import iso_week
from analytics.core.filters import whole_number
from analytics.core.models import Role
from analytics.present import detector_charts, exports
from analytics.present.formatting import format_days, format_number, significance_note
from analytics.views import emerging
from analytics.views.cases import list_rows
from analytics.views.emerging import RingView, Topic, TopicsView
from ui import data, explorer, widgets
from ui.filters import PageState, link_params

__all__ = [
    "EMERGING",
    "RING_WEEKS_AROUND",
    "ring_cases",
    "ring_columns",
    "rings_elsewhere",
    "selected_ring",
    "selected_topic",
    "topic_cases",
    "topic_columns",
    "topic_story",
    "topics_table",
]

#: The Emerging Threats page's own state in the URL and the session (``emerging.*``).
EMERGING = PageState("emerging")
#: Weeks before and after the focus week looked at for rings when it has none.
RING_WEEKS_AROUND = 12
#: A row of a table holds up to three lines (wrapping needs more than 64 px).
_ROW_HEIGHT = 72
#: A row of the topic table holds four lines of its narrow "What changed".
_TOPIC_ROW_HEIGHT = 92
#: The topic table's columns, in order, narrow enough that every header is whole in
#: the page at 1280 px (the id and raw phrase stay out of sight; a topic's terms are in
#: its story, its category mix in "What changed", examples in its cases below).
_TOPIC_ORDER = ("name", "status", "spark", "summary", "recent_count", "expected",
                "first_flagged")  # fmt: skip


def topic_columns() -> dict[str, Any]:
    """Column formats for the topic table: the topic by its name, short headers (their
    help says the rest), every header whole."""
    return {
        "cluster_id": st.column_config.NumberColumn("Topic id", width=95),
        "name": st.column_config.TextColumn(
            "Topic", width=140, help="The phrase its cases use most"
        ),
        "status": st.column_config.TextColumn(
            "Emerging",
            width=92,
            help="New: under one case a week was expected. Growing again: it had cases "
            "before and now grows. Empty: not emerging.",
        ),
        "label": st.column_config.TextColumn("Phrase", width=190),
        "spark": st.column_config.LineChartColumn(
            "30 days", width=84, help="Cases per day, last 30 days"
        ),
        "summary": st.column_config.TextColumn("What changed", width=230),
        "recent_count": st.column_config.NumberColumn(
            "7 days", format="localized", width=76, help="Cases in the last 7 days"
        ),
        "expected": st.column_config.NumberColumn(
            "Expected", format="%.1f", width=92, help="Cases expected in 7 days from its past"
        ),
        "first_flagged": st.column_config.DateColumn(
            "Since", format="D MMM", width=70, help="The day it was first flagged emerging"
        ),
        "terms": st.column_config.TextColumn("Distinctive terms", width=230),
        "mix": st.column_config.TextColumn("Categories", width=230),
        "example": st.column_config.TextColumn("Example (masked)", width=380),
    }


def topics_table(view: TopicsView) -> Any:
    """The topic table, emerging first, long text wrapped; returns its selection event."""
    return st.dataframe(
        view.rows(),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="emerging_table",
        width="stretch",
        height=38 + (_TOPIC_ROW_HEIGHT + 1) * min(view.clusters.height, 6),
        row_height=_TOPIC_ROW_HEIGHT,
        placeholder="–",
        column_order=_TOPIC_ORDER,
        column_config=topic_columns(),
    )


def selected_topic(view: TopicsView, *events: Any) -> int:
    """The topic picked on the map or in the table, else the one in the URL, else the
    top one; kept in the URL (``emerging.cluster``) so a link reproduces the view."""
    ids = view.ids
    chosen: int | None = None
    for event in events:
        try:
            selection = event.selection
        except AttributeError:
            continue
        rows = selection.get("rows") or []
        points = selection.get("points") or []
        if rows:
            chosen = ids[rows[0]]
        elif points and points[0].get("customdata") is not None:
            custom = points[0]["customdata"]
            chosen = int(custom[0] if isinstance(custom, list) else custom)
    if chosen is None:
        number = whole_number(EMERGING.param("cluster"))
        chosen = number if number is not None and number in ids else ids[0]
    EMERGING.set("cluster", str(chosen))
    return chosen


def topic_story(topic: Topic, *, tested: int) -> None:
    """The selected topic by its name: emergence sentence, strands, terms and daily
    history (``tested``: how many topics were tested)."""
    st.subheader(topic.name)
    if topic.is_emerging:
        since = topic.first_flagged
        when = "today" if since == topic.last_day else f"since {since:%-d %b %Y}"
        kind = "New" if topic.status == "new" else "Growing again"
        st.markdown(f"**{kind}, emerging {when}.** {topic.summary}.")
    else:
        st.markdown(f"**Not emerging.** {topic.summary}.")
    if topic.strands:
        strands = " · ".join(
            f"{widgets.plain(label)} ({format_number(n)} cases)" for label, n in topic.strands
        )
        st.markdown(f"**Its strands in the last 7 days:** {strands}.")
    st.caption(
        f"Topic {topic.cluster_id}. Distinctive terms: {widgets.plain(topic.terms)}. Growth "
        f"tested against its own past, corrected for how much topics vary week to week and "
        f"for the {tested} topics tested.",
        help=significance_note(topic.q_value, "q"),
    )
    widgets.chart(
        detector_charts.topic_history(
            topic.history,
            first_flagged=topic.first_flagged,
            title="Cases per day over the 90 days read",
        ),
        key="emerging_topic_history",
    )


def topic_cases(view: TopicsView, cluster_id: int) -> None:
    """The selected topic's cases (masked, wrapped), with a link to Case Explorer."""
    mine = view.topic_cases(cluster_id)
    st.markdown(f"**Its cases** ({mine.height:,}, newest first; descriptions masked)")
    explorer.link(f"Open the {mine.height:,} cases in Case Explorer", cluster=cluster_id)
    st.dataframe(
        exports.neutralise(list_rows(mine)),
        hide_index=True,
        width="stretch",
        height=38 + (_ROW_HEIGHT + 1) * min(max(mine.height, 1), 5),
        row_height=_ROW_HEIGHT,
        placeholder="–",
        column_order=(
            "case_id",
            "opened_at",
            "description",
            "category",
            "region",
            "subject_account_id",
        ),  # fmt: skip
        column_config={
            "case_id": st.column_config.NumberColumn("Case", format="%d", width=70),
            "opened_at": st.column_config.DatetimeColumn(
                "Opened", format="D MMM YYYY, HH:mm", width=140
            ),
            "description": st.column_config.TextColumn("Description (masked)", width=520),
            "category": st.column_config.TextColumn("Category", width=140),
            "region": st.column_config.TextColumn("Region", width=80),
            "subject_account_id": st.column_config.NumberColumn(
                "Subject account", format="%d", width=150
            ),
        },
    )


def ring_columns() -> dict[str, Any]:
    """Column formats for the ring table, every header whole."""

    def share(label: str, width: int) -> Any:
        return st.column_config.ProgressColumn(
            label, format="percent", min_value=0, max_value=1, width=width
        )

    return {
        "ring_id": st.column_config.NumberColumn("Ring", format="%d", width=60),
        "size": st.column_config.NumberColumn("Accounts", width=95),
        "devices": st.column_config.NumberColumn("Devices", width=85),
        "ips": st.column_config.NumberColumn("IPs", width=60),
        "first_seen": st.column_config.DatetimeColumn("First seen", format="D MMM YYYY", width=110),
        "median_age_days": st.column_config.NumberColumn(
            "Median age (days)", format="%.0f", width=165
        ),
        "young_share": share("Under 7 days", 125),
        "reported_share": share("Reported", 100),
        "actioned_share": share("Actioned", 100),
        "previous_size": st.column_config.NumberColumn("Linked before", width=135),
        "growth": st.column_config.NumberColumn("New", width=60),
        "is_growing": st.column_config.CheckboxColumn("Growing", width=85),
        "score": st.column_config.NumberColumn("Score", format="%.1f", width=70),
    }


def selected_ring(view: RingView, event: Any) -> int:
    """The ring picked in the table, else the one in the URL (``emerging.ring``), else
    the top one."""
    ids = view.ids
    rows = event.selection.get("rows") if event is not None else None
    wanted = whole_number(EMERGING.param("ring"))
    chosen: int
    if rows:
        chosen = ids[rows[0]]
    elif wanted is not None and wanted in ids:
        chosen = wanted
    else:
        chosen = ids[0]
    EMERGING.set("ring", str(chosen))
    return chosen


@st.cache_data(ttl=600, max_entries=16, show_spinner="Looking for rings in other weeks…")
def _ring_weeks(database: str, ends: tuple[datetime, ...], token: str, role: Role) -> pl.DataFrame:
    return emerging.ring_weeks(data.engine(), ends, role=role)


def rings_elsewhere(week: date | None, *, role: Role) -> None:
    """When the focus ``week`` has no ring: which of the :data:`RING_WEEKS_AROUND` weeks
    before and after it have rings, in a sentence, with a link that selects each."""
    span = data.data_span()
    if span is None or week is None:
        return
    around = timedelta(weeks=RING_WEEKS_AROUND)
    mondays = [m for m in span.weeks if m != week and abs(m - week) <= around]
    ends = tuple(data.week_end(m) for m in mondays)
    try:
        weeks = _ring_weeks(data.database_label(), ends, data.data_token(), role)
    except Exception:  # noqa: BLE001 - a hint, never a reason for the page to fail
        st.caption("Other weeks could not be looked at for rings.")
        return
    sentence, found = emerging.rings_elsewhere(weeks, week=week)
    st.markdown(sentence)
    if not found:
        return
    counts = dict(weeks.select("week", "rings").iter_rows())
    columns = st.columns(min(len(found), 3))
    for i, monday in enumerate(found):
        n = counts[monday]
        columns[i % len(columns)].page_link(
            "pages/emerging.py",
            label=f"Week of {format_days(monday, monday + timedelta(days=6))}: "
            f"{n} ring{'s' * (n != 1)}",
            icon=":material/hub:",
            query_params={**link_params(EMERGING.page), "week": iso_week(monday)},
        )


def ring_cases(account_ids: list[int], *, role: Role) -> None:
    """The cases about a ring's members (masked, wrapped, labels in words)."""
    found = data.ring_cases(account_ids, role=role)
    st.dataframe(
        exports.neutralise(list_rows(found)),
        hide_index=True,
        width="stretch",
        row_height=_ROW_HEIGHT,
        placeholder="–",
        column_config={
            "case_id": st.column_config.NumberColumn("Case", format="%d", width=70),
            "opened_at": st.column_config.DatetimeColumn(
                "Opened", format="D MMM YYYY, HH:mm", width=140
            ),
            "category": st.column_config.TextColumn("Category", width=140),
            "status": st.column_config.TextColumn("Status", width=90),
            "subject_account_id": st.column_config.NumberColumn(
                "Subject account", format="%d", width=150
            ),
            "description": st.column_config.TextColumn("Description (masked)", width=520),
        },
    )
