"""Anomalies: what is abnormal right now, why, and who is behind it."""

from __future__ import annotations

import streamlit as st

from analytics.present import detector_charts
from analytics.present.formatting import format_days
from analytics.views import anomalies
from ui import auth, data, explorer, filters, widgets

st.title("Anomalies")
widgets.require_data()
viewer = auth.require("cases")
state = filters.PageState("anomalies")
if recorded := st.session_state.pop("anomalies_recorded", None):
    # Shown in the run after the rerun that a verdict asks for: a toast sent just before
    # st.rerun() can be lost when the rerun starts before the browser drew it.
    st.toast(recorded)
st.caption(
    "Every slice of cases (by category, region, platform, source, specialty, one and two "
    "deep) and of events (by kind, region, platform), daily and weekly, scored against its "
    "own seasonal baseline; false discoveries controlled across slices; known events "
    "explain, and your feedback quiets a pattern until it grows. Rises in volume alert; "
    "for automated detections a fall alerts."
)
left, middle, right = st.columns([3, 3, 2])
with middle:
    budget = state.choice(
        "sensitivity", widgets.SENSITIVITY_OPTIONS, label="False alerts per slice per month",
        default=widgets.DEFAULT_SENSITIVITY, help=widgets.SENSITIVITY_HELP,
    )  # fmt: skip
    per_month = float(budget)
try:
    incidents = data.incidents(role=viewer.role, per_month=per_month)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()
with left:
    source = state.choice("source", anomalies.SOURCES, label="Source")
with right:
    text = state.text("find", label="Slice contains (e.g. region=FL)")
tables = anomalies.incident_tables(incidents, source=source, text=text)
alerted, quiet = tables.alerted, tables.quiet
if alerted.is_empty():
    st.success(
        "No current anomaly matches these filters."
        if source != "all" or text
        else "No current anomaly: every slice is within its expected range."
    )
picked = st.dataframe(
    alerted.select(anomalies.TABLE_COLUMNS), hide_index=True, on_select="rerun",
    selection_mode="single-row", key="anomalies_table", width="stretch",
    column_config=widgets.incident_columns(),
)  # fmt: skip
with st.expander(f"Not alerted: explained, dismissed, or falls ({quiet.height})"):
    st.dataframe(
        quiet.select(anomalies.QUIET_COLUMNS), hide_index=True, width="stretch",
        column_config=widgets.incident_columns(),
    )  # fmt: skip
if alerted.is_empty():
    st.stop()

incident = widgets.selected_incident(alerted, picked, state)
first, last = anomalies.incident_days(incident)
st.subheader(f"{incident.slice} · {format_days(first, last)}")
explorer.link(
    "Open its cases in Case Explorer",
    slice=incident.slice, opened_from=first.isoformat(), opened_to=last.isoformat(),
)  # fmt: skip
found = data.evidence(incident, role=viewer.role, per_month=per_month)
st.markdown(found.reason)
chosen = st.plotly_chart(
    detector_charts.anomaly_band(
        found.series, title="Value and expected band (select points to drill down)"
    ),
    theme=None, on_select="rerun", selection_mode=("points", "box"), key="anomalies_chart",
    config=widgets.chart_config("anomalies_chart"), width="stretch",
)  # fmt: skip
left, right = st.columns([3, 2])
with left:
    st.markdown("**What explains it**")
    if found.causes.is_empty():
        st.caption("The slice cannot be broken down further.")
    else:
        st.caption(found.cause_summary)
        bars = detector_charts.attribution_bars(
            found.cause_bars, title="", label="value", value="change"
        )
        widgets.chart(bars, key="anomalies_causes")
with right:
    widgets.verdicts(incident, viewer)
    widgets.alert_precision(data.alert_precision(role=viewer.role), incident.metric)

widgets.drill_down(found.cases, chosen, role=viewer.role)
