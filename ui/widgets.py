"""Small rendering helpers shared by pages: KPI cards, tables, chart display."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from analytics import reports
from analytics.core.db import Role
from analytics.core.filters import whole_number
from analytics.present import detector_charts, exports
from analytics.present.theme import format_number
from analytics.views import monitor
from ui import data, explorer, nav
from ui.filters import humanise, page_param, set_page_param

__all__ = [
    "DEFAULT_SENSITIVITY",
    "SENSITIVITY_OPTIONS",
    "alert_precision",
    "chart",
    "cluster_cases",
    "cluster_columns",
    "cluster_rows",
    "ring_columns",
    "selected_cluster",
    "selected_ring",
    "drill_down",
    "filter_incidents",
    "incident_columns",
    "kpi_cards",
    "movers_table",
    "require_data",
    "root_cause_rows",
]

#: The Anomalies page's sensitivity choices: URL value -> label (false alerts per slice
#: per month), from :data:`analytics.views.monitor.SENSITIVITY`.
SENSITIVITY_OPTIONS: dict[str, str] = {
    f"{v:g}": {0.25: "¼", 0.5: "½"}.get(v, f"{v:g}") for v in monitor.SENSITIVITY
}
DEFAULT_SENSITIVITY = f"{monitor.DEFAULT_SENSITIVITY:g}"

_DELTA_UNIT = {"count": "count", "percent": "points", "hours": "hours", "per_1000": "per_1000"}


def _delta(row: dict[str, object]) -> str | None:
    delta = row["delta"]
    if delta is None:
        return None
    unit = str(row["unit"])
    sign = "+" if float(delta) >= 0 else "-"  # type: ignore[arg-type]
    size = abs(float(delta))  # type: ignore[arg-type]
    if unit == "percent":
        text = f"{size * 100:.1f} pp"
    else:
        text = format_number(size, unit=_DELTA_UNIT[unit])  # type: ignore[arg-type]
    verdict = "significant" if row["significant"] else "noise"
    return f"{sign}{text} · {verdict}"


def _help(row: dict[str, object]) -> str:
    unit = str(row["unit"])
    parts = [
        f"Previous week: {format_number(row['previous'], unit=unit)} "  # type: ignore[arg-type]
        f"(p = {float(row['p_previous']):.3f}, "  # type: ignore[arg-type]
        f"{'significant' if row['significant'] else 'noise'}).",
        f"4-week mean: {format_number(row['baseline'], unit=unit)} "  # type: ignore[arg-type]
        f"(p = {float(row['p_baseline']):.3f}, "  # type: ignore[arg-type]
        f"{'significant' if row['significant_baseline'] else 'noise'}).",
    ]
    if row["completeness"] is not None:
        parts.append(
            f"{float(row['completeness']):.0%} of the week's cases are far enough along "  # type: ignore[arg-type]
            "to count: the value can still move."
        )
    return " ".join(parts)


def _value(row: dict[str, object]) -> str:
    if row["unit"] == "per_1000":  # the unit is in the label
        return format_number(row["value"], unit="count", digits=2)  # type: ignore[arg-type]
    return format_number(row["value"], unit=row["unit"])  # type: ignore[arg-type]


def kpi_cards(frame: pl.DataFrame, *, per_row: int = 4) -> None:
    """One ``st.metric`` per KPI row (see :func:`analytics.metrics.trends.kpis`)."""
    rows = frame.to_dicts()
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, row in zip(cols, rows[start : start + per_row], strict=False):
            better = row["better"]
            colour = "off"
            if row["significant"]:
                colour = {"up": "normal", "down": "inverse"}.get(str(better), "off")
            label = str(row["label"])
            col.metric(
                label,
                _value(row),
                delta=_delta(row),
                delta_color=colour,  # type: ignore[arg-type]
                help=_help(row),
                border=True,
            )
    partial = frame.filter(pl.col("completeness") < 0.9)
    if partial.height:
        names = ", ".join(str(n).lower() for n in partial["label"])
        share = float(partial["completeness"].min())  # type: ignore[arg-type]
        st.caption(
            f"Still moving: {names} see as little as {share:.0%} of the week's cases so far; "
            "the rest are not yet responded to or resolved."
        )


def movers_table(frame: pl.DataFrame, *, rows: int = 20) -> None:
    """The top movers as a table (see :func:`analytics.metrics.trends.top_movers`)."""
    shown = frame.head(rows).select(
        "slice",
        "current",
        "expected",
        "abs_change",
        pl.col("rel_change") * 100,
        pl.col("share_of_change") * 100,
        "q_value",
        "significant",
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "slice": st.column_config.TextColumn("Slice", width="large"),
            "current": st.column_config.NumberColumn("This week", format="localized"),
            "expected": st.column_config.NumberColumn("Baseline", format="%.1f"),
            "abs_change": st.column_config.NumberColumn("Change", format="%+.1f"),
            "rel_change": st.column_config.NumberColumn("Change %", format="%+.0f%%"),
            "share_of_change": st.column_config.NumberColumn(
                "Share of total change", format="%+.0f%%"
            ),
            "q_value": st.column_config.NumberColumn("q-value (FDR)", format="%.3f"),
            "significant": st.column_config.CheckboxColumn("Significant"),
        },
    )


def chart_config(key: str) -> dict[str, Any]:
    """Plotly's toolbar for a chart: its camera button downloads a PNG named after it."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": f"lookout-{key}", "scale": 2},
    }


def chart(figure: go.Figure, *, key: str) -> None:
    """Show a figure in the shared template (Streamlit's own theme off); the toolbar
    downloads it as PNG."""
    st.plotly_chart(figure, theme=None, width="stretch", key=key, config=chart_config(key))


def incident_columns() -> dict[str, Any]:
    """Column formats for incident tables."""
    return {
        "slice": st.column_config.TextColumn("Slice", width="large"),
        "source": st.column_config.TextColumn("Source"),
        "freq": st.column_config.TextColumn("Scale"),
        "start": st.column_config.DatetimeColumn("From", format="D MMM YYYY"),
        "end": st.column_config.DatetimeColumn("To", format="D MMM YYYY"),
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


def root_cause_rows(explained: pl.DataFrame, *, top: int = 10) -> pl.DataFrame:
    """The selected values of the best dimensions, labelled for a bar chart."""
    best = explained.filter(pl.col("selected"))
    if best.is_empty():
        best = explained.sort("surprise", descending=True).head(top)
    return best.head(top).select(
        value=pl.col("dimension") + "=" + pl.col("value"), change=pl.col("change")
    )


def drill_down(cases: pl.DataFrame, chosen: Any, *, role: Role) -> None:
    """The cases underneath (narrowed to the days picked on the chart) and an account."""
    st.markdown("**Cases underneath**")
    if cases.is_empty():
        st.caption("Event slices have no cases of their own: open an account below.")
        return
    days = _picked_days(chosen)
    if days:
        cases = cases.filter(pl.col("opened_at").dt.date().is_in(days))
        st.caption(f"Narrowed to {len(days)} day(s) picked on the chart.")
    st.dataframe(exports.neutralise(cases), hide_index=True, width="stretch", height=260)
    subjects = cases["subject_account_id"].drop_nulls().unique().sort().to_list()
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


def alert_precision(precision: pl.DataFrame, metric: str) -> None:
    """The measured precision of ``metric``'s alerts (from verdicts), and every metric's
    in an expander."""
    mine = precision.filter(pl.col("metric") == metric)
    if mine.is_empty():
        st.caption("No verdict on these alerts yet: verdicts measure how often they help.")
        return
    row = mine.row(0, named=True)
    st.caption(
        f"Measured precision of {humanise(metric).lower()} alerts: {row['precision']:.0%} "
        f"confirmed of {row['judged']:,} judged (95% interval {row['low']:.0%}–"
        f"{row['high']:.0%})."
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


def filter_incidents(incidents: pl.DataFrame, *, source: str, text: str) -> pl.DataFrame:
    """Incidents of one source ("all" for both) whose slice contains ``text`` (literal)."""
    shown = incidents if source == "all" else incidents.filter(pl.col("source") == source)
    if text:
        shown = shown.filter(pl.col("slice").str.contains(text, literal=True))
    return shown


def cluster_rows(clusters: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """The topic table: one row per topic with its status, phrase, sparkline, emergence
    sentence, counts, category mix and one masked example (its newest case)."""
    example = cases.group_by("cluster_id").agg(example=pl.col("description").first())
    mix = pl.col("category_mix").list.eval(
        pl.element().struct.field("category")
        + " "
        + (pl.element().struct.field("share") * 100).round(0).cast(pl.Int64).cast(pl.String)
        + "%"
    )
    status = pl.col("status").replace_strict(
        {"steady": "", "new": "New", "growing again": "Growing again"}, default=""
    )
    return clusters.join(example, on="cluster_id", how="left", maintain_order="left").select(
        "cluster_id",
        status.alias("status"),
        "label",
        "spark",
        "summary",
        "recent_count",
        "expected",
        "first_flagged",
        "terms",
        mix=mix.list.join(" · "),
        example=pl.col("example"),
    )


def cluster_columns() -> dict[str, Any]:
    """Column formats for the topic table."""
    return {
        "cluster_id": st.column_config.NumberColumn("Topic", width="small"),
        "status": st.column_config.TextColumn(
            "Emerging",
            width=110,
            help="New: under one case a week was expected. Growing again: it had cases "
            "before and now grows. Empty: not emerging.",
        ),
        "label": st.column_config.TextColumn("Topic phrase", width="medium"),
        "spark": st.column_config.LineChartColumn("Last 30 days", width="small"),
        "summary": st.column_config.TextColumn("What changed", width="large"),
        "recent_count": st.column_config.NumberColumn("Last 7 days", format="localized"),
        "expected": st.column_config.NumberColumn("Expected", format="%.1f"),
        "first_flagged": st.column_config.DateColumn("Emerging since", format="D MMM YYYY"),
        "terms": st.column_config.TextColumn("Distinctive terms", width="medium"),
        "mix": st.column_config.TextColumn("Categories"),
        "example": st.column_config.TextColumn("Example (masked)", width="large"),
    }


def selected_cluster(clusters: pl.DataFrame, *events: Any) -> int:
    """The cluster picked on the map or in the table, else the one in the URL, else the
    top one; kept in the URL (``cluster``) so a link reproduces the view."""
    ids = clusters["cluster_id"].to_list()
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
        wanted = page_param("cluster")
        number = whole_number(wanted)
        chosen = number if number is not None and number in ids else ids[0]
    set_page_param("cluster", str(chosen))
    return chosen


def cluster_story(clusters: pl.DataFrame, cluster_id: int, *, last_day: date) -> None:
    """The selected topic: its phrase, emergence sentence and daily history."""
    row = clusters.filter(pl.col("cluster_id") == cluster_id).row(0, named=True)
    st.subheader(f"Topic {cluster_id}: {row['label']}")
    if row["is_emerging"]:
        since = row["first_flagged"]
        when = "today" if since == last_day else f"since {since:%-d %b %Y}"
        kind = "New" if row["status"] == "new" else "Growing again"
        st.markdown(f"**{kind}, emerging {when}.** {row['summary']}.")
    else:
        st.markdown(f"**Not emerging.** {row['summary']}.")
    if row.get("strands"):
        strands = " · ".join(
            f"{s['label']} ({format_number(s['recent_count'])} cases)" for s in row["strands"]
        )
        st.markdown(f"**Its strands in the last 7 days:** {strands}.")
    st.caption(
        f"Distinctive terms: {row['terms']}. Growth tested against its own past, corrected "
        f"for how much topics vary week to week and for the {clusters.height} topics tested "
        f"(q = {row['q_value']:.2g})."
    )
    history = row["history"]
    days = pl.date_range(last_day - timedelta(days=len(history) - 1), last_day, eager=True)
    chart(
        detector_charts.topic_history(
            pl.DataFrame({"day": days, "cases": history}),
            first_flagged=row["first_flagged"],
            title="Cases per day over the 90 days read",
        ),
        key="emerging_topic_history",
    )


def cluster_cases(cases: pl.DataFrame, cluster_id: int) -> None:
    """The list of the selected topic's cases (masked), with a link to Case Explorer."""
    mine = cases.filter(pl.col("cluster_id") == cluster_id)
    st.markdown(f"**Its cases** ({mine.height:,}, newest first; descriptions masked)")
    explorer.link(f"Open the {mine.height:,} cases in Case Explorer", cluster=cluster_id)
    st.dataframe(
        exports.neutralise(mine.drop("cluster_id")),
        hide_index=True,
        width="stretch",
        height=300,
        column_config={
            "case_id": st.column_config.NumberColumn("Case", format="%d"),
            "opened_at": st.column_config.DatetimeColumn("Opened", format="D MMM YYYY, HH:mm"),
            "category": st.column_config.TextColumn("Category"),
            "region": st.column_config.TextColumn("Region"),
            "subject_account_id": st.column_config.NumberColumn("Subject account", format="%d"),
            "description": st.column_config.TextColumn("Description", width="large"),
        },
    )


def ring_columns() -> dict[str, Any]:
    """Column formats for the ring table."""

    def share(label: str) -> Any:
        return st.column_config.ProgressColumn(label, format="percent", min_value=0, max_value=1)

    return {
        "ring_id": st.column_config.NumberColumn("Ring", format="%d"),
        "size": st.column_config.NumberColumn("Accounts"),
        "devices": st.column_config.NumberColumn("Devices"),
        "ips": st.column_config.NumberColumn("IPs"),
        "first_seen": st.column_config.DatetimeColumn("First seen", format="D MMM YYYY"),
        "median_age_days": st.column_config.NumberColumn("Median age (days)", format="%.0f"),
        "young_share": share("Under 7 days"),
        "reported_share": share("Reported"),
        "actioned_share": share("Actioned"),
        "previous_size": st.column_config.NumberColumn("Linked before"),
        "growth": st.column_config.NumberColumn("New"),
        "is_growing": st.column_config.CheckboxColumn("Growing"),
        "score": st.column_config.NumberColumn("Score", format="%.1f"),
    }


def selected_ring(rings: pl.DataFrame, event: Any) -> int:
    """The ring picked in the table, else the one in the URL (``ring``), else the top one."""
    ids = rings["ring_id"].to_list()
    rows = event.selection.get("rows") if event is not None else None
    wanted = page_param("ring")
    if rows:
        chosen = ids[rows[0]]
    elif whole_number(wanted) in ids:
        chosen = int(wanted)
    else:
        chosen = ids[0]
    set_page_param("ring", str(chosen))
    return chosen


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
            st.dataframe(table.text(), hide_index=True, width="stretch")
            if table.note:
                st.caption(plain(table.note))
        for i, figure in enumerate(section.figures):
            chart(figure, key=f"brief_{section.key}_{i}")
