"""Anomalies: what is abnormal right now, why, and who is behind it."""

from __future__ import annotations

import streamlit as st

from analytics.metrics.rootcause import summary
from analytics.present import detector_charts
from analytics.views import monitor
from ui import auth, data, explorer, filters, widgets

st.title("Anomalies")
widgets.require_data()
viewer = auth.require("cases")
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
    per_month = float(
        filters.page_choice(
            "sensitivity",
            widgets.SENSITIVITY_OPTIONS,
            label="False alerts per slice per month",
            default=widgets.DEFAULT_SENSITIVITY,
            help=(
                "How many false alerts you accept per slice per month on ordinary noise "
                "(each slice's own budget). Fewer means only larger moves alert. When many "
                "slices are scanned, the false-discovery control across them (1%) is "
                "usually the stricter of the two."
            ),
        )
    )
try:
    incidents = data.incidents(role=viewer.role, per_month=per_month)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

with left:
    source = filters.page_choice(
        "source",
        {"all": "All", "cases": "Cases", "events": "Events", "detections": "Detections"},
        label="Source",
    )
with right:
    text = filters.page_text("find", label="Slice contains (e.g. region=FL)")
shown = widgets.filter_incidents(incidents, source=source, text=text)
alerted, quiet = shown.filter(shown["alerted"]), shown.filter(~shown["alerted"])
if alerted.is_empty():
    st.success(
        "No current anomaly matches these filters."
        if source != "all" or text
        else "No current anomaly: every slice is within its expected range."
    )
columns = [
    "slice",
    "source",
    "freq",
    "start",
    "end",
    "days",
    "peak_value",
    "peak_expected",
    "score",
]
picked = st.dataframe(
    alerted.select(columns),
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="anomalies_table",
    width="stretch",
    column_config=widgets.incident_columns(),
)
with st.expander(f"Not alerted: explained, dismissed, or falls ({quiet.height})"):
    st.dataframe(
        quiet.select(*columns, "direction", "explained_by", "suppressed"),
        hide_index=True,
        width="stretch",
        column_config=widgets.incident_columns(),
    )
if alerted.is_empty():
    st.stop()

rows = picked.selection.rows if picked else []
wanted = filters.page_param("incident")
keys = alerted["slice"].to_list()
index = rows[0] if rows else (keys.index(wanted) if wanted in keys else 0)
incident = alerted.row(index, named=True)
filters.set_page_param("incident", str(incident["slice"]))
first, last = monitor.incident_days(incident)
days = f"{first:%d %b}" if first == last else f"{first:%d %b}–{last:%d %b}"
st.subheader(f"{incident['slice']} · {days}")
explorer.link(
    "Open its cases in Case Explorer",
    slice=incident["slice"],
    opened_from=first.isoformat(),
    opened_to=last.isoformat(),
)
series, causes, cases = data.evidence(incident, role=viewer.role, per_month=per_month)
st.markdown(monitor.incident_reason(incident, series))
chosen = st.plotly_chart(
    detector_charts.anomaly_band(
        series, title="Value and expected band (select points to drill down)"
    ),
    theme=None,
    on_select="rerun",
    selection_mode=("points", "box"),
    key="anomalies_chart",
    config=widgets.chart_config("anomalies_chart"),
    width="stretch",
)
left, right = st.columns([3, 2])
with left:
    st.markdown("**What explains it**")
    if causes.is_empty():
        st.caption("The slice cannot be broken down further.")
    else:
        st.caption(summary(causes))
        widgets.chart(
            detector_charts.attribution_bars(
                widgets.root_cause_rows(causes), title="", label="value", value="change"
            ),
            key="anomalies_causes",
        )
with right:
    st.markdown("**Your verdict**")
    verdicts = {"confirmed": "Confirmed", "expected": "Expected", "not_useful": "Not useful"}
    for verdict, label in verdicts.items():
        if st.button(label, key=f"anomalies_verdict_{verdict}", width="stretch"):
            data.record_feedback(incident, verdict, user=viewer.name)
            st.session_state["anomalies_recorded"] = (
                f"Recorded: {label.lower()} for {incident['slice']}."
            )
            st.rerun()
    widgets.alert_precision(data.alert_precision(role=viewer.role), str(incident["metric"]))

widgets.drill_down(cases, chosen, role=viewer.role)
