"""Small rendering helpers shared by pages: KPI cards, tables, chart display."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from analytics.access import Viewer
from analytics.core.models import Role
from analytics.present import exports
from analytics.present.formatting import (
    Unit,
    format_delta,
    format_number,
    humanise,
    significance,
    significance_note,
)
from analytics.views import anomalies, feedback, trends
from analytics.views.anomalies import Incident
from ui import data, nav
from ui.filters import PageState

if TYPE_CHECKING:
    from analytics import reports

__all__ = [
    "DEFAULT_SENSITIVITY",
    "SENSITIVITY_HELP",
    "SENSITIVITY_OPTIONS",
    "alert_precision",
    "brief_preview",
    "chart",
    "chart_config",
    "drill_down",
    "incident_columns",
    "kpi_cards",
    "plain",
    "require_data",
    "selected_incident",
    "verdicts",
]

#: The Anomalies page's sensitivity choices: URL value -> label (false alerts per slice
#: per month), from :data:`analytics.views.anomalies.SENSITIVITY`.
SENSITIVITY_OPTIONS: dict[str, str] = {
    f"{v:g}": {0.25: "¼", 0.5: "½"}.get(v, f"{v:g}") for v in anomalies.SENSITIVITY
}
DEFAULT_SENSITIVITY = f"{anomalies.DEFAULT_SENSITIVITY:g}"
SENSITIVITY_HELP = (
    "How many false alerts you accept per slice per month on ordinary noise (each slice's "
    "own budget). Fewer means only larger moves alert. When many slices are scanned, the "
    "false-discovery control across them (1%) is usually the stricter of the two."
)

_COLOUR: dict[str, Literal["normal", "inverse"]] = {"up": "normal", "down": "inverse"}


def _complete(row: Mapping[str, Any]) -> bool:
    """False for a KPI of the week in progress not complete enough to test (it shows
    its projection); an ended week still filling in is tested against earlier weeks
    at the same age (:func:`analytics.metrics.nowcast.with_projection`)."""
    return row.get("tested", row.get("complete")) is not False


def _number(value: float | None, unit: Unit) -> str:
    if unit == "per_1000":  # the unit is in the label
        return format_number(value, unit="count", digits=2)
    return format_number(value, unit=unit)


def _range(row: Mapping[str, Any]) -> str:
    unit: Unit = row["unit"]
    low, high = row.get("projected_low"), row.get("projected_high")
    if low is None or high is None:
        return ""
    return f" (range {_number(low, unit)}–{_number(high, unit)})"


def _delta(row: Mapping[str, Any]) -> str | None:
    """The change on last week (the card's arrow); none while the week fills in."""
    delta = row["delta"]
    if delta is None or not _complete(row):
        return None
    return f"{format_delta(float(delta), row['unit'])} vs last week"


def _verdict(row: Mapping[str, Any]) -> str:
    """The line under a card's number: significance against both baselines in words, or
    the projection of a value still filling in."""
    unit: Unit = row["unit"]
    if not _complete(row):
        projected = row.get("projected")
        if projected is None:
            return "So far; too early to project. Not tested yet."
        return f"So far. Projected **{_number(projected, unit)}**{_range(row)}; not tested yet."
    mean = f"the 4-week mean ({_number(row['baseline'], unit)})"
    on_week, on_mean = bool(row["significant"]), bool(row["significant_baseline"])
    if on_week and on_mean:
        return f"**Significant** vs last week and {mean}"
    if on_week:
        return f"**Significant** vs last week; not vs {mean}"
    if on_mean:
        return f"**Significant** vs {mean}; not vs last week"
    return f"Not significant vs last week or {mean}"


def _help(row: Mapping[str, Any]) -> str:
    unit: Unit = row["unit"]
    if not _complete(row):
        known = row.get("known_share")
        share = f"{float(known):.0%}" if known is not None else "too little"
        return (
            f"Not complete enough to test: at this point a typical earlier week had {share} "
            "of its final count (90% is needed). The projection is the value so far moved "
            "the way earlier weeks moved from this point to their end; the range covers 80% "
            f"of them. Previous week: {_number(row['previous'], unit)}; "
            f"4-week mean: {_number(row['baseline'], unit)}."
        )
    parts = [
        f"Previous week: {_number(row['previous'], unit)} "
        f"({significance(row['p_previous'])}, {significance_note(row['p_previous'])}).",
        f"4-week mean: {_number(row['baseline'], unit)} "
        f"({significance(row['p_baseline'])}, {significance_note(row['p_baseline'])}).",
    ]
    if row.get("projected") is not None and row["value"] != row["projected"]:
        parts.append(f"Projected final value: {_number(row['projected'], unit)}{_range(row)}.")
    if row["completeness"] is not None:
        parts.append(
            f"{float(row['completeness']):.0%} of the week's cases are far enough along "
            "to count: the value can still move."
        )
    return " ".join(parts)


def _colour(row: Mapping[str, Any]) -> Literal["normal", "inverse", "off"]:
    """The arrow (the change on last week) is coloured when that change is significant."""
    if not _complete(row) or not row["significant"]:
        return "off"
    return _COLOUR.get(str(row["better"]), "off")


def kpi_cards(frame: pl.DataFrame, *, per_row: int = 3) -> None:
    """One card per KPI row (see :func:`analytics.metrics.kpis.kpis`): its number (so far,
    while the week fills in), the change on last week, and a line with the verdict
    against last week and the 4-week mean, or the projection and its range."""
    rows = frame.to_dicts()
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, row in zip(cols, rows[start : start + per_row], strict=False):
            with col.container(border=True):
                st.metric(
                    str(row["label"]),
                    _number(row["value"], row["unit"]),
                    delta=_delta(row),
                    delta_color=_colour(row),
                    help=_help(row),
                )
                st.caption(_verdict(row))
    moving = trends.still_moving(
        frame.filter(pl.col("complete")) if "complete" in frame.columns else frame
    )
    if moving is not None:
        names, share = ", ".join(n.lower() for n in moving[0]), moving[1]
        st.caption(
            f"Still moving: {names} see as little as {share:.0%} of the week's cases so far; "
            "the rest are not yet responded to or resolved."
        )


def chart_config(key: str) -> dict[str, Any]:
    """Plotly's toolbar for a chart: its camera button downloads a PNG named after it."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": f"lookout-{key}", "scale": 2},
    }


def chart(figure: go.Figure, *, key: str) -> None:
    """Show a figure in the shared template, its text, axes and hover boxes in the
    colours of the app's light or dark theme (Streamlit's theme for plotly: it follows a
    switch of theme without a rerun); the toolbar downloads it as PNG."""
    st.plotly_chart(figure, theme="streamlit", width="stretch", key=key, config=chart_config(key))


def incident_columns() -> dict[str, Any]:
    """Column formats for incident tables."""
    return {
        "slice": st.column_config.TextColumn("Slice", width="large"),
        "source": st.column_config.TextColumn("Source"),
        "freq": st.column_config.TextColumn("Scale"),
        "start": st.column_config.DatetimeColumn("From", format="D MMM YYYY"),
        "last_day": st.column_config.DateColumn("To", format="D MMM YYYY"),
        "days": st.column_config.NumberColumn("Points"),
        "peak_value": st.column_config.NumberColumn("Peak", format="localized"),
        "peak_expected": st.column_config.NumberColumn("Expected", format="%.1f"),
        "score": st.column_config.ProgressColumn(
            "Score (−log10 p)", min_value=0, max_value=50, format="%.1f"
        ),
        "explained_by": st.column_config.TextColumn("Explained by"),
        "suppressed": st.column_config.CheckboxColumn("Dismissed earlier"),
        "direction": st.column_config.TextColumn("Move"),
    }


def drill_down(cases: pl.DataFrame, chosen: Any, *, role: Role) -> None:
    """The cases underneath (narrowed to the days picked on the chart) and an account."""
    st.markdown("**Cases underneath**")
    if cases.is_empty():
        st.caption("Event slices have no cases of their own: open an account below.")
        return
    days = _picked_days(chosen)
    cases = anomalies.cases_on(cases, days)
    if days:
        st.caption(f"Narrowed to {len(days)} day(s) picked on the chart.")
    st.dataframe(exports.neutralise(cases), hide_index=True, width="stretch", height=260)
    subjects = anomalies.subjects_of(cases)
    if not subjects:
        return
    account = st.selectbox("Open an account", subjects, key="anomalies_account")
    events, history = data.account_timeline(int(account), role=role)
    left, right = st.columns(2)
    left.markdown(f"**Events of account {account}** (latest {events.height})")
    left.dataframe(events, hide_index=True, width="stretch", height=260)
    right.markdown(f"**Cases about account {account}** ({history.height})")
    right.dataframe(exports.neutralise(history), hide_index=True, width="stretch", height=260)


def _picked_days(chosen: Any) -> list[date]:
    points = []
    try:
        points = chosen.selection.points  # plotly selection event
    except AttributeError:
        return []
    days = set()
    for point in points or []:
        x = point.get("x") if isinstance(point, dict) else None
        if x:
            days.add(date.fromisoformat(str(x)[:10]))
    return sorted(days)


def require_data() -> None:
    """Stop the page with a banner when the database is down or empty; say so when the
    pages read the database around a snapshot they cannot use."""
    state, message = data.readiness()
    if state in ("down", "empty"):
        nav.menu(None, ready=False)  # every page explains it; nobody is asked to sign in
    if state == "down":
        st.error(message)
        st.stop()
    if state == "empty":
        st.info(message)
        st.stop()
    if message:
        st.warning(message, icon=":material/database:")


def verdicts(incident: Incident, viewer: Viewer) -> None:
    """The three verdict buttons; a verdict is stored and the page reruns with it (the
    toast that says so is shown by the next run, see ``anomalies_recorded``)."""
    st.markdown("**Your verdict**")
    labels = {"confirmed": "Confirmed", "expected": "Expected", "not_useful": "Not useful"}
    for verdict, label in labels.items():
        if st.button(label, key=f"anomalies_verdict_{verdict}", width="stretch"):
            data.record_feedback(incident, verdict, viewer=viewer)
            st.session_state["anomalies_recorded"] = (
                f"Recorded: {label.lower()} for {incident.slice}."
            )
            st.rerun()


def alert_precision(precision: pl.DataFrame, metric: str) -> None:
    """The measured precision of ``metric``'s alerts (from verdicts), and every metric's
    in an expander."""
    mine = feedback.precision_of(precision, metric)
    if mine is None:
        st.caption("No verdict on these alerts yet: verdicts measure how often they help.")
        return
    st.caption(
        f"Measured precision of {humanise(metric).lower()} alerts: {mine.precision:.0%} "
        f"confirmed of {mine.judged:,} judged (95% interval {mine.low:.0%}–{mine.high:.0%})."
    )
    with st.expander("Precision by metric"):
        st.dataframe(
            precision,
            hide_index=True,
            width="stretch",
            column_config={
                "metric": st.column_config.TextColumn("Metric"),
                "judged": st.column_config.NumberColumn("Judged"),
                "confirmed": st.column_config.NumberColumn("Confirmed"),
                "expected": st.column_config.NumberColumn("Expected"),
                "not_useful": st.column_config.NumberColumn("Not useful"),
                "precision": st.column_config.NumberColumn("Precision", format="percent"),
                "low": st.column_config.NumberColumn("95% low", format="percent"),
                "high": st.column_config.NumberColumn("95% high", format="percent"),
            },
        )


def selected_incident(alerted: pl.DataFrame, event: Any, state: PageState) -> Incident:
    """The incident picked in the table, else the one in the URL (``incident``), else the
    top one; kept in the URL so a link reproduces the view."""
    rows = event.selection.rows if event else []
    keys = alerted["slice"].to_list()
    wanted = state.param("incident")
    index = rows[0] if rows else (keys.index(wanted) if wanted in keys else 0)
    incident = Incident.of(alerted.row(index, named=True))
    state.set("incident", incident.slice)
    return incident


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$])")


def plain(text: str) -> str:
    """``text`` with every Markdown character escaped, for ``st.markdown`` to show as is."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def brief_preview(brief: reports.Brief) -> None:
    """A brief as the page shows it: the note, then each section's sentences, tables
    (with "<10" where counts are suppressed) and charts."""
    if brief.note:
        with st.container(border=True):
            st.text(brief.note)
    for section in brief.sections:
        st.subheader(section.title)
        if section.sentences:
            st.markdown("\n".join(f"- {plain(s)}" for s in section.sentences))
        for table in section.tables:
            st.markdown(f"**{plain(table.title)}**")
            # no hover here: the numbers behind a verdict (its q-values) in its cell
            st.dataframe(table.text(with_hover=True), hide_index=True, width="stretch")
            if table.note:
                st.caption(plain(table.note))
        for i, figure in enumerate(section.figures):
            chart(figure, key=f"brief_{section.key}_{i}")
