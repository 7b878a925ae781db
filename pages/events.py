"""Known events: the launches, outages and policy changes that explain the charts,
added, edited and ended here (associates and leadership), every change audited."""

from __future__ import annotations

from datetime import date

import streamlit as st

from ui import auth, data, events, nav, widgets

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Known events")
widgets.require_data()
viewer = auth.require("annotate")
st.caption(
    "Launches, outages, policy changes and holidays. They are drawn on the trend charts, "
    "explain anomalies and are listed in the weekly brief. Every change is kept in the "
    "audit log."
)
events.flash()
try:
    frame = events.events(role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

asked = events.prefilled_day()
with st.expander("Add a known event", expanded=asked is not None or frame.is_empty()):
    events.add_form(viewer, first_day=asked or date.today())

st.subheader(f"{frame.height:,} known events" if frame.height != 1 else "1 known event")
if frame.is_empty():
    st.info("No known event is recorded yet: add the first one above.")
    st.stop()
events.table(frame)

chosen = events.chosen_event(frame)
if chosen is not None:
    seen = events.edit_form(chosen, viewer)
    if seen is not None:
        events.end_form(chosen, seen, viewer, today=date.today())
