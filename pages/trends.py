"""Weekly Trends: what changed this week, is it real, what do we escalate?"""

from __future__ import annotations

import streamlit as st

from analytics.present import trend_charts
from analytics.views import selection as calendar
from analytics.views import trends
from ui import auth, charts, data, events, explorer, filters, nav, widgets
from ui import trends as trend_ui

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Weekly trends")
widgets.require_data()
viewer = auth.require("aggregates")
selection = filters.draw()
if selection is None:
    st.info(
        "There is no case data to chart yet. Load the demo with `python -m analytics seed` "
        "or import your data with `python -m analytics import TABLE FILE`; an unreachable "
        "database is explained on the Overview page."
    )
    st.stop()
count = filters.PageState("trends").choice("count", trends.COUNTS, label="Count")
try:
    view = data.weekly_view(selection.filters, selection.week, count, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

if view.empty:
    st.info(
        "No cases match these filters in this period. Widen the date range or clear a "
        "filter in the sidebar."
    )
    st.stop()

week_label = calendar.week_name(view.week)
if bool(view.kpis["provisional"].any()):
    st.info(
        f"{week_label} is still in progress (data up to {view.as_of:%d %b %H:%M} UTC): "
        "numbers not yet complete enough show the value so far and its projection, and "
        "are not tested."
    )
st.caption(
    f"{week_label} against the week before and the 4-week mean. Changes are tested "
    "(exact Poisson or Fisher tests, Mann-Whitney for times) and coloured only when "
    "significant; hover a card for the numbers. A value still filling in shows its "
    "projection, from how earlier weeks filled in, with the range 80% of them fell in."
)
widgets.kpi_cards(view.kpis)

unit = {"cases": "new cases", "subjects": "distinct subjects", "reporters": "reporters"}[count]
st.subheader("Volume")
left, right = st.columns(2)
daily = charts.figure(
    trend_charts.daily_trend, view.daily, view.annotations, title="Per day", y_title=unit
)
weekly = charts.figure(
    trend_charts.weekly_trend,
    view.series("new_cases"),
    view.annotations,
    title="Per week",
    y_title=unit,
    focus=view.week,
)
with left:
    widgets.chart(daily, key="daily")
with right:
    widgets.chart(weekly, key="weekly")
events.link("Add a known event", first_day=trends.week_days(view.week)[0])
heatmap = charts.figure(
    trend_charts.category_heatmap,
    trends.categories_series(view),
    title="Categories by week (complete weeks)",
)
widgets.chart(heatmap, key="heatmap")

st.subheader(f"Top movers in {week_label}")
tested = trends.complete_enough(view)
st.caption(
    "Every slice one or two dimensions deep, against last week and the 4-week mean; "
    "significance is corrected for the number of slices tested."
    + ("" if tested else " The week is not complete enough to test: counts so far.")
)
try:
    movers = trend_ui.movers(
        selection.filters, selection.week, count, role=viewer.role, tested=tested
    )
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()
trend_ui.movers_table(movers)
monday, sunday = trends.week_days(view.week)
explorer.link(
    f"Open the cases of {week_label} in Case Explorer",
    opened_from=monday.isoformat(), opened_to=sunday.isoformat(),
)  # fmt: skip

st.subheader("Response and backlog")
left, right = st.columns(2)
sla = charts.figure(
    trend_charts.rate_lines, trends.sla_series(view), title="SLA breach rate by severity",
    y_title="breached", group="severity",
)  # fmt: skip
proactive = charts.figure(
    trend_charts.rate_lines,
    view.series("proactive_rate"),
    title="Proactive rate",
    y_title="of violations",
)
with left:
    widgets.chart(sla, key="sla")
    durations = charts.figure(
        trend_charts.duration_lines,
        trends.duration_series(view),
        title="Hours to respond and resolve",
    )
    widgets.chart(durations, key="durations")
with right:
    widgets.chart(
        charts.figure(trend_charts.backlog_bars, view.backlog, title="Open backlog by age"),
        key="backlog",
    )
    widgets.chart(proactive, key="proactive")

st.subheader("Prevalence by category")
prevalence = charts.figure(
    trend_charts.prevalence_bars, view.prevalence, title=f"Cases per 1,000 exposures, {week_label}"
)
widgets.chart(prevalence, key="prevalence")
