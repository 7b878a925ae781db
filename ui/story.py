"""The Overview's week story, cached, and drawn as sentences with their links.

:func:`week_story` caches :func:`analytics.reports.story.week_story` per database, week,
filters, role and data version (the token of :func:`ui.data.data_token`, with the
feedback's version: a verdict changes which incidents alert). :func:`draw` shows the
items: the sentence, the p- or q-values on hover, and a link to the evidence that keeps
the global filters.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

import streamlit as st

from analytics import access
from analytics.core import database
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Role
from analytics.present.formatting import humanise
from analytics.views import feedback
from analytics.views import selection as sel
from ui import data, widgets
from ui.filters import Selection

if TYPE_CHECKING:
    from analytics.reports.story import StoryItem, WeekStory

__all__ = ["draw", "show", "week_story"]

_ICONS = {
    "sla": ":material/timer:",
    "topic": ":material/new_releases:",
    "incident": ":material/notifications_active:",
    "ring": ":material/hub:",
    "mover": ":material/trending_up:",
    "surface": ":material/trending_up:",
    "fall": ":material/trending_down:",
}
#: How each severity reads (analytics.reports.story ranks by it).
_SEVERITY = {1: "Act now", 2: "Watch", 3: "Note"}


@st.cache_data(ttl=600, max_entries=16, show_spinner="Reading the week…")
def _story(url: str, week: date, filters: Filters, token: str, role: Role) -> WeekStory:
    from analytics.reports import story  # the brief's modules: loaded on first use

    return story.week_story(data.engine(), week=week, role=role, filters=filters)


def week_story(week: date, filters: Filters, *, role: Role) -> WeekStory:
    """The story of ``week`` for ``role`` (cached per data version); a failure to read
    becomes :class:`ui.data.DataUnavailable` for the page's banner."""
    url = database.database_url()
    try:
        token = f"{data.data_token()}:{feedback.feedback_version(data.engine())}"
        return _story(url, week, filters, token, role)
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise data.DataUnavailable(
            f"Cannot read the week at {data.database_label()} ({type(exc).__name__}). "
            "Check that the database is reachable and that LOOKOUT_DATABASE_URL is right."
        ) from exc


def _query(item: StoryItem) -> dict[str, str]:
    """The item's link with the global filters the URL holds (the item's own win)."""
    params = {k: str(v) for k, v in st.query_params.to_dict().items() if k in sel.GLOBAL_KEYS}
    return {**params, **item.query}


def draw(story: WeekStory) -> None:
    """The preface, then each item: its kind, its sentence (p- and q-values on hover) and
    a link to its evidence; then what did not need attention."""
    for line in story.preface:
        st.info(line, icon=":material/schedule:")
    for item in story.items:
        with st.container(border=True, key=f"story_item_{item.rank}"):
            fall = item.kind in ("mover", "surface") and item.severity == 3
            icon = _ICONS["fall" if fall else item.kind]
            st.markdown(
                f"{icon} **{_SEVERITY[item.severity]}** · {widgets.plain(item.text)}",
                help=item.note or None,
            )
            st.page_link(
                item.page,
                label=item.link,
                icon=":material/arrow_forward:",
                query_params=_query(item),
            )
    if story.calm is not None:
        st.success(widgets.plain(story.calm), icon=":material/check_circle:")


def _scope(filters: Filters, role: Role) -> str:
    """What the story covers: the whole platform, or the filters' values."""
    if not access.allowed(role, "aggregates") or replace(filters, start=None, end=None).is_empty():
        return "the whole platform"
    return "; ".join(
        ", ".join(humanise(v) for v in filters.where(d)) for d in DIMENSIONS if filters.where(d)
    )


def show(selection: Selection | None, *, role: Role) -> None:
    """The Overview's story: the heading with the week, what it covers, the items (or
    the banner of a failure to read); just a heading without cases."""
    if selection is None:
        st.title("Lookout")
        return
    try:
        story = week_story(selection.week, selection.filters, role=role)
    except data.DataUnavailable as exc:
        st.title("This week")
        st.error(str(exc))
        return
    st.title(f"This week · {story.period}")
    scope = _scope(selection.filters, role)
    what = (
        f"What needs attention, most important first, over {scope}."
        if access.allowed(role, "aggregates")
        else "What changed on the product surfaces (cases per 1,000 exposures) and what to "
        f"consider fixing, most important first, over {scope}: the opening of the product brief."
    )
    st.caption(f"{what} Hover the question marks for the p- and q-values behind the words.")
    draw(story)
