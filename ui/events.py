"""The Known events page's pieces: the cached list, the forms that add, edit and end an
event, and the link other pages give to it.

Reads are cached per database and :func:`analytics.views.annotations.annotation_version`;
every write goes through :mod:`analytics.views.annotations` (role check, validation,
audit, conflict check) on the writer engine, then clears this module's cache and the
data token of :mod:`ui.data` (:func:`ui.data.data_changed`), so the trend charts, the
anomaly scan and the brief read the change on their next run.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from analytics.access import Viewer
from analytics.core import database, taxonomy
from analytics.core.models import US_STATES, AnnotationKind, Role
from analytics.present.formatting import format_day, humanise
from analytics.views import annotations as known
from analytics.views.annotations import EditConflict, InvalidEvent, KnownEvent
from ui import data, session
from ui.filters import PageState, link_params
from ui.widgets import plain

__all__ = [
    "EVENTS",
    "add_form",
    "chosen_event",
    "edit_form",
    "end_form",
    "events",
    "flash",
    "link",
    "prefilled_day",
    "table",
]

#: The page's state in the URL: ``events.start`` (a first day to prefill, from a chart's
#: link) and ``events.event`` (the event being edited).
EVENTS = PageState("events")
_PAGE = "pages/events.py"
_FLASH = "events_flash"
_KINDS = {k.value: humanise(k.value) for k in AnnotationKind}
_REGIONS = {"": "All regions", **{r: r for r in US_STATES}}


@st.cache_data(ttl=600, max_entries=8, show_spinner=False)
def _events(url: str, version: str, role: Role) -> pl.DataFrame:
    return known.list_events(data.engine(), role=role)


def events(*, role: Role) -> pl.DataFrame:
    """Every known event (:func:`analytics.views.annotations.list_events`), cached until
    one is added, edited or ended."""
    try:
        version = known.annotation_version(data.engine())
        return _events(database.database_url(), version, role)
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise data.DataUnavailable(
            f"Cannot read the known events ({type(exc).__name__}). Check that the database "
            "is reachable."
        ) from exc


#: A row of the table holds four lines of wrapped title or description.
_ROW_HEIGHT = 92


def table(frame: pl.DataFrame) -> None:
    """The events as a table (text shown as text, never as HTML or Markdown)."""
    st.dataframe(
        known.events_table(frame),
        hide_index=True,
        width="stretch",
        key="events_table",
        placeholder="ongoing",  # the only empty cells: the last day of an ongoing event
        row_height=_ROW_HEIGHT,
        height=38 + (_ROW_HEIGHT + 1) * min(max(frame.height, 1), 7),
        column_order=(
            "id",
            "first_day",
            "last_day",
            "kind",
            "title",
            "category",
            "region",
            "created_by",
            "description",
        ),  # fmt: skip
        # narrow enough to fit the page at 1280 px; long titles and descriptions wrap
        column_config={
            "id": st.column_config.NumberColumn("#", width=35, format="%d"),
            "first_day": st.column_config.DateColumn("First day", format="D MMM YYYY", width=90),
            "last_day": st.column_config.DateColumn("Last day", format="D MMM YYYY", width=90),
            "kind": st.column_config.TextColumn("Kind", width=70),
            "title": st.column_config.TextColumn("Title", width=130),
            "category": st.column_config.TextColumn("Category", width=95),
            "region": st.column_config.TextColumn("Region", width=65),
            "description": st.column_config.TextColumn("Description", width=170),
            "created_by": st.column_config.TextColumn("Added by", width=75),
            "ongoing": None,
        },
    )


def link(label: str, *, first_day: date) -> None:
    """A link to the Known events page with its form's first day set to ``first_day``
    (and the global filters kept); nothing for a role that may not add events."""
    if not session.may("annotate"):
        return
    st.page_link(
        _PAGE,
        label=label,
        icon=":material/event_note:",
        query_params=link_params(EVENTS.page, start=first_day.isoformat()),
    )


def prefilled_day() -> date | None:
    """The first day a link asked the form to start on (``events.start``), None if none
    or not a date (with a note)."""
    raw = EVENTS.param("start")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10]) if len(raw) <= 10 else None
    except ValueError:
        pass
    st.warning(f"Ignored start {raw[:20]!r}: not a day like 2026-04-20.")
    return None


def flash() -> None:
    """The message the last write left for this run."""
    message = st.session_state.pop(_FLASH, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def _problems(exc: InvalidEvent) -> None:
    st.error("\n".join(f"- {plain(p)}" for p in exc.problems))


def _saved(message: str, keys: list[str]) -> None:
    """After a write: forget the caches reading events, the form's inputs; rerun."""
    _events.clear()
    data.data_changed()
    for key in keys:
        st.session_state.pop(key, None)
    st.session_state[_FLASH] = message
    st.rerun()


def _fields(prefix: str, event: KnownEvent | None, first_day: date) -> KnownEvent:
    """The form's inputs (inside an ``st.form``), filled from ``event`` when given."""
    left, right = st.columns(2)
    first = left.date_input(
        "First day",
        value=event.start_at.date() if event else first_day,
        key=f"{prefix}_first",
        format="YYYY-MM-DD",
        min_value=date(2000, 1, 1),
        max_value=date(2100, 12, 31),
    )
    last_value = event.last_day if event else None
    last = right.date_input(
        "Last day (empty while it lasts)",
        value=last_value,
        key=f"{prefix}_last",
        format="YYYY-MM-DD",
        min_value=date(2000, 1, 1),
        max_value=date(2100, 12, 31),
    )
    kinds = list(_KINDS)
    kind = left.selectbox(
        "Kind",
        kinds,
        index=kinds.index(event.kind) if event else 0,
        key=f"{prefix}_kind",
        format_func=_KINDS.__getitem__,
    )
    title = right.text_input(
        "Title",
        value=event.title if event else "",
        key=f"{prefix}_title",
        max_chars=known.TITLE_MAX,
        placeholder="e.g. Payments outage in the iOS app",
    )
    names = taxonomy.active().category_names
    labels = {"": "All categories", **{c: humanise(c) for c in names}}
    if event and event.category and event.category not in labels:  # outside the taxonomy
        labels[event.category] = humanise(event.category)
    categories, regions = list(labels), list(_REGIONS)
    category = left.selectbox(
        "Category it concerns",
        categories,
        index=categories.index(event.category or "") if event else 0,
        key=f"{prefix}_category",
        format_func=labels.__getitem__,
    )
    region = right.selectbox(
        "Region it concerns",
        regions,
        index=regions.index(event.region or "") if event else 0,
        key=f"{prefix}_region",
        format_func=_REGIONS.__getitem__,
    )
    description = st.text_area(
        "Description",
        value=(event.description or "") if event else "",
        key=f"{prefix}_description",
        max_chars=known.DESCRIPTION_MAX,
        height=80,
    )
    start, end = known.event_days(
        first if isinstance(first, date) else first_day,
        last if isinstance(last, date) else None,
    )
    return KnownEvent(start, end, str(kind), title, description, category or None, region or None)


_ADD_KEYS = [f"events_add_{f}" for f in
             ("first", "last", "kind", "title", "category", "region", "description")]  # fmt: skip


def add_form(viewer: Viewer, *, first_day: date) -> None:
    """The form that adds a known event, its first day ``first_day`` until changed."""
    with st.form("events_add", border=False):
        event = _fields("events_add", None, first_day)
        submitted = st.form_submit_button("Add event", type="primary", key="events_add_submit")
    if not submitted:
        return
    try:
        known.add_event(data.writer(), event, viewer=viewer)
    except InvalidEvent as exc:
        _problems(exc)
        return
    _saved(f"Added the known event “{plain(event.title.strip())}”.", _ADD_KEYS)


def chosen_event(frame: pl.DataFrame) -> int | None:
    """The event picked for editing (kept in the URL as ``events.event``), None if none."""
    options = {"": "Choose an event to edit or end"}
    for row in frame.iter_rows(named=True):
        options[str(row["id"])] = f"{row['title'][:80]} · {format_day(row['start_at'].date())}"
    chosen = EVENTS.select("event", options, label="Edit or end an event")
    return int(chosen) if chosen else None


def _seen_key(event_id: int) -> str:
    return f"events_seen_{event_id}"


def _seen(event_id: int, *, role: Role) -> KnownEvent | None:
    """The event as this person first read it for editing: an edit or an end is checked
    against it, so a change by someone else meanwhile is never overwritten."""
    key = _seen_key(event_id)
    if key not in st.session_state:
        st.session_state[key] = known.read_event(data.writer(), event_id, role=role)
    found = st.session_state[key]
    return found if isinstance(found, KnownEvent) else None


def _conflict(event_id: int, exc: EditConflict, prefix: str) -> None:
    """Say that someone else changed the event; show its values as they are now."""
    st.session_state[_seen_key(event_id)] = exc.current
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]
    _events.clear()
    st.session_state[_FLASH + "_conflict"] = str(exc)
    st.rerun()


def edit_form(event_id: int, viewer: Viewer) -> KnownEvent | None:
    """The form that edits the event ``event_id``; the event as read, None if gone."""
    message = st.session_state.pop(_FLASH + "_conflict", None)
    if message:
        st.error(message, icon=":material/sync_problem:")
    seen = _seen(event_id, role=viewer.role)
    if seen is None:
        st.info("This event no longer exists.")
        return None
    prefix = f"events_edit_{event_id}"
    with st.form(prefix, border=True):
        st.markdown(f"**Edit “{plain(seen.title)}”**")
        event = _fields(prefix, seen, seen.start_at.date())
        submitted = st.form_submit_button("Save changes", type="primary", key=f"{prefix}_submit")
    if submitted:
        try:
            known.edit_event(data.writer(), event_id, event, seen=seen, viewer=viewer)
        except InvalidEvent as exc:
            _problems(exc)
        except EditConflict as exc:
            _conflict(event_id, exc, prefix)
        else:
            st.session_state.pop(_seen_key(event_id), None)
            keys = [k for k in st.session_state if str(k).startswith(prefix)]
            _saved(f"Saved the known event “{plain(event.title.strip())}”.", keys)
    return seen


def end_form(event_id: int, seen: KnownEvent, viewer: Viewer, *, today: date) -> None:
    """End an ongoing event on a day (today unless changed)."""
    if seen.end_at is not None:
        st.caption(f"This event ended on {format_day(seen.last_day or seen.end_at.date())}.")
        return
    prefix = f"events_end_{event_id}"
    with st.form(prefix, border=True):
        st.markdown("**End this event**")
        last_day = st.date_input(
            "Last day", value=max(today, seen.start_at.date()), key=f"{prefix}_day",
            format="YYYY-MM-DD",
        )  # fmt: skip
        submitted = st.form_submit_button("End event", key=f"{prefix}_submit")
    if not submitted:
        return
    try:
        known.end_event(
            data.writer(), event_id, last_day=last_day if isinstance(last_day, date) else today,
            seen=seen, viewer=viewer,
        )  # fmt: skip
    except InvalidEvent as exc:
        _problems(exc)
    except EditConflict as exc:
        _conflict(event_id, exc, f"events_edit_{event_id}")
    else:
        st.session_state.pop(_seen_key(event_id), None)
        keys = [
            k for k in st.session_state if str(k).startswith((prefix, f"events_edit_{event_id}"))
        ]
        _saved(f"Ended the known event “{plain(seen.title)}”.", keys)
