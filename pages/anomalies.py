"""Anomalies: what is abnormal in the focus week, why, and who is behind it."""

from __future__ import annotations

import streamlit as st

from analytics.present import detector_charts
from analytics.present.formatting import format_days, format_period, format_slice
from analytics.views import anomalies
from ui import anomalies as page
from ui import auth, data, explorer, filters, nav, triage, widgets

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Anomalies")
widgets.require_data()
viewer = auth.require("cases")
chosen_filters = filters.draw()
if chosen_filters is None:
    st.stop()
week = chosen_filters.week
state = filters.PageState("anomalies")
if recorded := st.session_state.pop("anomalies_recorded", None):
    # Shown in the run after the rerun that a verdict asks for: a toast sent just before
    # st.rerun() can be lost when the rerun starts before the browser drew it.
    st.toast(recorded)
st.caption(
    f"Incidents still open or that ended in the focus week ({format_period(week)}), over "
    "every slice of cases (by category, region, platform, source, specialty, one and two "
    "deep) and of events (by kind, region, platform), daily and weekly, each against its "
    "own seasonal baseline; false discoveries controlled across slices; known events "
    "explain, and your feedback quiets a pattern until it grows. Rises in volume alert; for "
    "automated detections a fall alerts. The sidebar's week and filters apply."
)
left, middle, right = st.columns([3, 3, 2])
with middle:
    budget = state.choice(
        "sensitivity", widgets.SENSITIVITY_OPTIONS, label="False alerts per slice per month",
        default=widgets.DEFAULT_SENSITIVITY, help=widgets.SENSITIVITY_HELP,
    )  # fmt: skip
    per_month = float(budget)
try:
    found = page.incidents(week, role=viewer.role, per_month=per_month)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()
with left:
    source = state.choice("source", anomalies.SOURCES, label="Source")
with right:
    text = state.text("find", label="Slice contains (e.g. FL or spam)")
current = anomalies.within_filters(found, chosen_filters.shown)
tables = anomalies.incident_tables(current, source=source, text=text)
alerted, quiet = anomalies.incident_rows(tables.alerted), anomalies.incident_rows(tables.quiet)
if alerted.is_empty():
    st.success(
        "No current anomaly matches these filters."
        if source != "all" or text
        else "No current anomaly: every slice is within its expected range."
    )
else:  # no empty table under the banner
    picked = st.dataframe(
        alerted, column_order=anomalies.TABLE_COLUMNS, hide_index=True, on_select="rerun",
        selection_mode="single-row", key="anomalies_table", width="stretch", placeholder="–",
        column_config=page.incident_columns(),
    )  # fmt: skip
with st.expander(f"Not alerted: explained, dismissed, or falls ({quiet.height})"):
    if quiet.is_empty():
        st.caption("Nothing held back: every unusual slice of the week is in the table above.")
    else:
        st.dataframe(
            quiet, column_order=anomalies.QUIET_COLUMNS, hide_index=True, width="stretch",
            placeholder="–", column_config=page.incident_columns(),
        )  # fmt: skip
triage.followed_up_section(viewer)
as_of = page.as_of(week)
if alerted.is_empty():
    page.accounts_section(page.review(None, week, role=viewer.role), viewer, as_of)
    st.stop()

incident = widgets.selected_incident(alerted, picked, state)
first, last = anomalies.incident_days(incident)
st.subheader(f"{format_slice(incident.slice)} · {format_days(first, last)}")
explorer.link(
    "Open its cases in Case Explorer",
    slice=incident.slice, opened_from=first.isoformat(), opened_to=last.isoformat(),
)  # fmt: skip
triage.section(incident, alerted, viewer)
evidence = page.evidence(incident, week, role=viewer.role, per_month=per_month)
st.markdown(evidence.reason, help=evidence.reason_note)
chosen = st.plotly_chart(
    detector_charts.anomaly_band(
        evidence.series, title="Value and expected band (select points to drill down)"
    ),
    theme="streamlit", on_select="rerun", selection_mode=("points", "box"), key="anomalies_chart",
    config=widgets.chart_config("anomalies_chart"), width="stretch",
)  # fmt: skip
left, right = st.columns([3, 2])
with left:
    st.markdown("**What explains it**")
    if evidence.causes.is_empty():
        st.caption("The slice cannot be broken down further.")
    else:
        st.caption(evidence.cause_summary)
        if not evidence.cause_rows.is_empty():
            page.cause_rows(evidence.cause_rows)
with right:
    page.verdicts(incident, viewer)
    widgets.alert_precision(data.alert_precision(role=viewer.role), incident.metric)

page.cases_underneath(evidence.cases, page.picked_days(chosen), incident)
page.accounts_section(page.review(incident, week, role=viewer.role), viewer, as_of)
