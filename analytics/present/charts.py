"""The one chart style of the app: a plotly template, a palette and figure builders.

Every builder takes Polars frames and returns a :class:`plotly.graph_objects.Figure`
drawn with the ``"lookout"`` template, which is registered in
:data:`plotly.io.templates` when this module is imported (the global default
template is left alone). Colours come from the Okabe–Ito palette, which stays
distinguishable under the common forms of colour blindness. A builder given an
empty frame returns a figure that says "No data for this selection" rather than
raising.

Streamlit applies its own theme to plotly charts unless told not to, so pages show
these figures with ``st.plotly_chart(fig, theme=None)``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

__all__ = [
    "AGE_BUCKETS",
    "anomaly_band",
    "DIVERGING",
    "NO_DATA",
    "PALETTE",
    "SEQUENTIAL",
    "TEMPLATE",
    "Unit",
    "attribution_bars",
    "backlog_bars",
    "category_heatmap",
    "cluster_map",
    "daily_trend",
    "duration_lines",
    "format_number",
    "prevalence_bars",
    "rate_lines",
    "ring_network",
    "topic_history",
    "weekly_trend",
]

Unit = Literal["count", "percent", "hours", "per_1000"]

PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue: the app's primary colour
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
"""Okabe–Ito colour-blind-safe palette, in the order series are coloured."""

SEQUENTIAL: tuple[tuple[float, str], ...] = (
    (0.0, "#F4F8FB"),
    (0.25, "#C6DDEE"),
    (0.5, "#80B5DA"),
    (0.75, "#3A8DC4"),
    (1.0, "#0072B2"),
)
"""Plotly colour scale for heatmaps: near-white to the primary blue (one hue)."""

DIVERGING: tuple[tuple[float, str], ...] = (
    (0.0, "#0072B2"),
    (0.5, "#FFFFFF"),
    (1.0, "#D55E00"),
)
"""Plotly colour scale for signed changes: blue for down, white for none, vermillion for up."""

AGE_BUCKETS: tuple[str, ...] = ("< 1 day", "1–3 days", "3–7 days", "7–30 days", "> 30 days")
"""Backlog age buckets, youngest first; note the en dashes."""

TEMPLATE = "lookout"
"""Name of the plotly template every builder applies."""

NO_DATA = "No data for this selection"
"""Text of the annotation on a figure built from an empty frame."""

_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
_GRID = "#E5E5E5"
_MUTED = "#6B6B6B"
_AGE_COLOURS = ("#FDE8C4", "#F9C27A", "#E69F00", "#D55E00", "#7A2E00")
_EVENT_COLOURS = {
    "holiday": PALETTE[2],
    "policy_change": PALETTE[4],
    "product_launch": PALETTE[5],
    "outage": PALETTE[3],
    "emerging": PALETTE[3],
}
_BAR_OPACITY = 0.45
_PROVISIONAL_OPACITY = 0.5  # of stripes and outline only, so lighter than a full bar
_PROVISIONAL_PATTERN = "/"
_TITLED_TOP_MARGIN = 76
_UNITS: dict[str, int] = {"count": 0, "percent": 1, "hours": 1, "per_1000": 2}


def _register_template() -> None:
    template = go.layout.Template(pio.templates["plotly_white"])
    axis = {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID}
    template.layout.update(
        font={"family": _FONT, "size": 13},
        colorway=list(PALETTE),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "left",
            "x": 0,
            "title": {"text": ""},
        },
        title={"x": 0, "xanchor": "left", "font": {"size": 15}},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        xaxis=axis,
        yaxis=axis,
    )
    pio.templates[TEMPLATE] = template


_register_template()


# --- numbers ---------------------------------------------------------------------------------


def format_number(
    value: float | None, *, unit: Unit | None = None, digits: int | None = None
) -> str:
    """Human text for a number: thousands separators and the unit.

    Parameters
    ----------
    value
        The number; ``None``, NaN and infinities give ``"–"``.
    unit
        ``"count"`` (the default when ``None``), ``"percent"`` (``value`` is a
        fraction, 0.123 is 12.3%), ``"hours"`` (shown in days from 48 h on) or
        ``"per_1000"``.
    digits
        Decimal places; by default 0 for counts, 1 for percent and hours, 2 per 1,000.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(12345)
    '12,345'
    >>> format_number(0.1234, unit="percent")
    '12.3%'
    >>> format_number(4.25, unit="hours"), format_number(74.4, unit="hours")
    ('4.2 h', '3.1 d')
    >>> format_number(1.234, unit="per_1000"), format_number(None)
    ('1.23 per 1k', '–')
    """
    unit = unit or "count"
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(_UNITS)}")
    if value is None or not math.isfinite(value):
        return "–"
    places = _UNITS[unit] if digits is None else digits
    suffix = ""
    if unit == "percent":
        value, suffix = value * 100, "%"
    elif unit == "hours":
        value, suffix = (value / 24, " d") if abs(value) >= 48 else (value, " h")
    elif unit == "per_1000":
        suffix = " per 1k"
    if round(value, places) == 0:
        value = 0.0  # no "-0.0"
    return f"{value:,.{places}f}{suffix}"


# --- shared figure parts ---------------------------------------------------------------------


def _figure(title: str) -> go.Figure:
    """An empty figure with the template and, if given, a title above the legend."""
    fig = go.Figure(layout={"template": TEMPLATE})
    if title:
        fig.update_layout(
            title={"text": title, "yref": "container", "y": 0.98, "yanchor": "top"},
            margin={"t": _TITLED_TOP_MARGIN},
        )
    return fig


def _no_data(title: str) -> go.Figure:
    fig = _figure(title)
    fig.add_annotation(
        text=NO_DATA,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 15, "color": _MUTED},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _require(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {frame.columns}")


def _humanise(label: object) -> str:
    """``"fake_review"`` -> ``"Fake review"``; keeps the case of later letters."""
    text = "–" if label is None else str(label).replace("_", " ")
    return text[:1].upper() + text[1:]


def _texts(
    values: Sequence[float | None], unit: Unit | None, digits: int | None = None
) -> list[str]:
    return [format_number(v, unit=unit, digits=digits) for v in values]


def _value_axis(fig: go.Figure, *, title: str, unit: Unit | None) -> None:
    """Title the y axis and give its ticks the unit."""
    fig.update_yaxes(title_text=title, rangemode="tozero")
    if unit == "percent":
        fig.update_yaxes(tickformat=".1~%")
    elif unit == "hours":
        fig.update_yaxes(ticksuffix=" h")


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _add_events(
    fig: go.Figure,
    annotations: pl.DataFrame | None,
    *,
    first: date,
    last: date,
    weekly: bool,
) -> None:
    """Known events as dotted lines or shaded spans, and a hoverable marker for each.

    Only events that touch ``first``..``last`` are drawn, clipped to that range. On a
    weekly chart (x = Mondays) an event is placed on the week that contains it. Events
    on the same day (week) share one marker whose hover text lists them all.
    """
    if annotations is None or annotations.is_empty():
        return
    _require(annotations, ("start_at", "end_at", "kind", "title"))
    half = timedelta(days=3.5 if weekly else 0.5)  # half a bar: spans cover whole bars
    markers: dict[date, list[dict[str, Any]]] = {}
    for row in annotations.sort("start_at").iter_rows(named=True):
        place = _event_place(row["start_at"], row["end_at"], first=first, last=last, weekly=weekly)
        if place is None:
            continue
        x0, x1 = place
        if x1 > x0:
            fig.add_vrect(
                x0=datetime.combine(x0, datetime.min.time()) - half,
                x1=datetime.combine(x1, datetime.min.time()) + half,
                fillcolor=_MUTED,
                opacity=0.12,
                line_width=0,
                layer="below",
            )
        elif x0 not in markers:
            fig.add_vline(x=x0, line={"color": _MUTED, "width": 1, "dash": "dot"})
        markers.setdefault(x0, []).append(row)
    if not markers:
        return
    fig.add_trace(
        go.Scatter(
            x=list(markers),
            y=[0.97] * len(markers),
            yaxis="y2",
            mode="markers",
            name="known events",
            marker={
                "symbol": "triangle-down",
                "size": 11,
                "color": [_event_colour(rows) for rows in markers.values()],
            },
            hovertext=["<br>".join(_event_text(row) for row in rows) for rows in markers.values()],
            hovertemplate="%{hovertext}<extra></extra>",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}
    )


def _event_place(
    start: datetime, end: datetime | None, *, first: date, last: date, weekly: bool
) -> tuple[date, date] | None:
    """Where an event goes on the x axis: ``(x0, x1)``, equal for a line; ``None`` if off it.

    A point event (no end, or lasting at most a day) must start within the range; a
    longer one is drawn if it overlaps the range, clipped to it.
    """
    snap = _monday if weekly else (lambda day: day)
    x0 = snap(start.date())
    is_span = end is not None and end - start > timedelta(days=1)
    x1 = snap(end.date()) if end is not None and is_span else x0
    if x0 > last or x1 < first:
        return None
    return max(x0, first), min(x1, last)


def _event_colour(rows: list[dict[str, Any]]) -> str:
    kinds = {row["kind"] for row in rows}
    return _EVENT_COLOURS.get(kinds.pop(), _MUTED) if len(kinds) == 1 else _MUTED


def _event_text(row: dict[str, Any]) -> str:
    start, end = row["start_at"].date(), row["end_at"]
    when = start.isoformat()
    if end is not None and end.date() != start:
        when += f" to {end.date().isoformat()}"
    return f"<b>{html.escape(str(row['title']))}</b> ({_humanise(row['kind']).lower()}, {when})"


# --- builders --------------------------------------------------------------------------------


def daily_trend(
    daily: pl.DataFrame,
    annotations: pl.DataFrame | None = None,
    *,
    title: str,
    y_title: str,
    unit: Unit = "count",
) -> go.Figure:
    """Daily values as light bars under a bold 7-day average line, with known events.

    Parameters
    ----------
    daily
        One row per day: ``day`` (Date), ``value`` (Float64), ``avg7`` (Float64,
        may be null) and ``provisional`` (Boolean, true for days of the unfinished
        week). Provisional days are a separate bar trace named ``"provisional"``,
        hatched and outlined instead of filled.
    annotations
        Known events: ``start_at`` (Datetime), ``end_at`` (Datetime, nullable),
        ``kind`` and ``title`` (Utf8). An event is a dotted line, or a shaded span if
        it lasts more than a day, plus a marker in the ``"known events"`` trace whose
        hover text is the title. Events outside the data's days are skipped.
    title, y_title
        Figure and y axis titles.
    unit
        How hover values are formatted (see :func:`format_number`).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces in order: ``"daily value"``, ``"provisional"`` (if any),
        ``"7-day average"``, ``"known events"`` (if any in range).

    Examples
    --------
    >>> daily = pl.DataFrame({
    ...     "day": [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)],
    ...     "value": [5.0, 7.0, 6.0],
    ...     "avg7": [None, None, 6.0],
    ...     "provisional": [False, False, True],
    ... })
    >>> fig = daily_trend(daily, title="Reports", y_title="Reports per day")
    >>> [trace.name for trace in fig.data]
    ['daily value', 'provisional', '7-day average']
    """
    if daily.is_empty():
        return _no_data(title)
    _require(daily, ("day", "value", "avg7", "provisional"))
    daily = daily.drop_nulls("day").sort("day")
    if daily.is_empty():
        return _no_data(title)
    days: list[date] = daily["day"].to_list()
    fig = _figure(title)
    final = daily.filter(~pl.col("provisional").fill_null(False))
    provisional = daily.filter(pl.col("provisional").fill_null(False))
    _add_bars(fig, final, x="day", name="daily value", unit=unit)
    _add_bars(fig, provisional, x="day", name="provisional", unit=unit, provisional=True)
    fig.add_trace(
        go.Scatter(
            x=daily["day"].to_list(),
            y=daily["avg7"].to_list(),
            mode="lines",
            name="7-day average",
            line={"color": PALETTE[0], "width": 3},
            customdata=_texts(  # an average of counts needs a decimal place
                daily["avg7"].to_list(), unit, digits=1 if unit == "count" else None
            ),
            hovertemplate="%{customdata}",
        )
    )
    _add_events(fig, annotations, first=days[0], last=days[-1], weekly=False)
    _value_axis(fig, title=y_title, unit=unit)
    fig.update_layout(barmode="overlay", hovermode="x unified")
    fig.update_xaxes(hoverformat="%a %b %-d, %Y")
    return fig


def _add_bars(
    fig: go.Figure,
    frame: pl.DataFrame,
    *,
    x: str,
    name: str,
    unit: Unit,
    provisional: bool = False,
) -> None:
    """Bars of ``frame["value"]``; provisional ones hatched, outlined and labelled so."""
    if frame.is_empty():
        return
    texts = _texts(frame["value"].to_list(), unit)
    marker: dict[str, Any] = {"color": PALETTE[0], "opacity": _BAR_OPACITY}
    if provisional:
        texts = [f"{text} (provisional: period not finished)" for text in texts]
        marker |= {
            "opacity": _PROVISIONAL_OPACITY,
            "pattern": {"shape": _PROVISIONAL_PATTERN, "fillmode": "replace"},
            "line": {"color": PALETTE[0], "width": 1},
        }
    fig.add_trace(
        go.Bar(
            x=frame[x].to_list(),
            y=frame["value"].to_list(),
            name=name,
            marker=marker,
            customdata=texts,
            hovertemplate="%{customdata}",
        )
    )


def weekly_trend(
    weekly: pl.DataFrame,
    annotations: pl.DataFrame | None = None,
    *,
    title: str,
    y_title: str,
    unit: Unit = "count",
    focus: date | None = None,
) -> go.Figure:
    """Weekly bars, the unfinished week hatched instead of filled, with known events.

    Parameters
    ----------
    weekly
        One row per week: ``week`` (Date, the Monday), ``value`` (Float64) and
        ``provisional`` (Boolean).
    annotations
        Known events as for :func:`daily_trend`; each is placed on the week that
        contains it and skipped if that week is outside the data.
    title, y_title
        Figure and y axis titles.
    unit
        How hover values and y ticks are formatted (see :func:`format_number`).
    focus
        The Monday of the week under review: shaded behind its bar and labelled.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: ``"weekly value"``, ``"provisional"`` (if any), ``"known events"``
        (if any in range).

    Examples
    --------
    >>> weekly = pl.DataFrame({
    ...     "week": [date(2024, 7, 1), date(2024, 7, 8), date(2024, 7, 15)],
    ...     "value": [0.12, 0.10, 0.11],
    ...     "provisional": [False, False, True],
    ... })
    >>> fig = weekly_trend(weekly, title="Repeat rate", y_title="Share", unit="percent")
    >>> list(fig.data[1].customdata)
    ['11.0% (provisional: period not finished)']
    """
    if weekly.is_empty():
        return _no_data(title)
    _require(weekly, ("week", "value", "provisional"))
    weekly = weekly.drop_nulls("week").sort("week")
    if weekly.is_empty():
        return _no_data(title)
    weeks: list[date] = weekly["week"].to_list()
    fig = _figure(title)
    is_provisional = pl.col("provisional").fill_null(False)
    _add_bars(fig, weekly.filter(~is_provisional), x="week", name="weekly value", unit=unit)
    _add_bars(
        fig,
        weekly.filter(is_provisional),
        x="week",
        name="provisional",
        unit=unit,
        provisional=True,
    )
    _add_events(fig, annotations, first=weeks[0], last=weeks[-1], weekly=True)
    _value_axis(fig, title=y_title, unit=unit)
    fig.update_layout(barmode="overlay", hovermode="x unified")
    if focus is not None and focus in weeks:
        start = datetime.combine(focus, datetime.min.time()) - timedelta(days=3.5)
        fig.add_vrect(
            x0=start,
            x1=start + timedelta(days=7),
            fillcolor=PALETTE[1],
            opacity=0.15,
            line_width=0,
            layer="below",
            annotation_text="this week",
            annotation_position="top left",
        )
    fig.update_xaxes(hoverformat="Week of %b %-d, %Y")
    return fig


def category_heatmap(frame: pl.DataFrame, *, title: str, unit: Unit = "count") -> go.Figure:
    """Categories (rows, largest total at the top) by week (columns).

    Parameters
    ----------
    frame
        One row per week and category: ``week`` (Date), ``category`` (Utf8) and
        ``value`` (Float64). Missing pairs and null values are left blank.
    title
        Figure title.
    unit
        How hover values and the colour bar are formatted.

    Returns
    -------
    plotly.graph_objects.Figure
        One heatmap trace; ``y`` holds the humanised categories, the first is drawn
        at the top.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "week": [date(2024, 7, 1), date(2024, 7, 1), date(2024, 7, 8)],
    ...     "category": ["spam", "fake_review", "fake_review"],
    ...     "value": [3.0, 2.0, 4.0],
    ... })
    >>> list(category_heatmap(frame, title="Reports").data[0].y)
    ['Fake review', 'Spam']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("week", "category", "value"))
    order = (
        frame.group_by("category")
        .agg(pl.col("value").sum().alias("total"))
        .sort(["total", "category"], descending=[True, False])
    )["category"].to_list()
    weeks = frame["week"].unique().sort().to_list()
    cells = {(row["category"], row["week"]): row["value"] for row in frame.iter_rows(named=True)}
    z = [[cells.get((category, week)) for week in weeks] for category in order]
    fig = _figure(title)
    fig.add_trace(
        go.Heatmap(
            x=weeks,
            y=[_humanise(category) for category in order],
            z=z,
            text=[_texts(row, unit) for row in z],
            colorscale=[list(stop) for stop in SEQUENTIAL],
            hovertemplate="%{y}<br>Week of %{x|%b %-d, %Y}<br>%{text}<extra></extra>",
            xgap=1,
            ygap=1,
            colorbar={"thickness": 12, "tickformat": ".1~%" if unit == "percent" else ","},
        )
    )
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    return fig


def rate_lines(
    frame: pl.DataFrame,
    *,
    title: str,
    y_title: str,
    unit: Unit = "percent",
    group: str | None = None,
) -> go.Figure:
    """Weekly lines, one per group; provisional weeks get open markers.

    Parameters
    ----------
    frame
        ``week`` (Date) and ``value`` (Float64), optionally the ``group`` column and
        ``provisional`` (Boolean). Groups are drawn in order of first appearance,
        coloured from :data:`PALETTE`, labelled humanised.
    title, y_title
        Figure and y axis titles.
    unit
        ``"percent"`` (values are fractions; the y axis shows %) or another unit of
        :func:`format_number`.
    group
        Column whose values split the lines, e.g. ``"severity"``; ``None`` for one line.

    Returns
    -------
    plotly.graph_objects.Figure
        One line trace per group. A provisional point has the marker symbol
        ``"circle-open"`` and says "(provisional)" in its hover text.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "week": [date(2024, 7, 1), date(2024, 7, 1), date(2024, 7, 8)],
    ...     "severity": ["high", "low", "high"],
    ...     "value": [0.5, 0.25, 0.4],
    ... })
    >>> fig = rate_lines(frame, title="Overturn rate", y_title="Share", group="severity")
    >>> [trace.name for trace in fig.data], fig.layout.yaxis.tickformat
    (['High', 'Low'], '.1~%')
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("week", "value") + ((group,) if group else ()))
    if "provisional" not in frame.columns:
        frame = frame.with_columns(provisional=pl.lit(False))
    keys = frame[group].unique(maintain_order=True).to_list() if group else [None]
    fig = _figure(title)
    for i, key in enumerate(keys):
        rows = frame if group is None else frame.filter(pl.col(group).eq_missing(key))
        rows = rows.sort("week")
        flags = rows["provisional"].fill_null(False).to_list()
        texts = _texts(rows["value"].to_list(), unit)
        fig.add_trace(
            go.Scatter(
                x=rows["week"].to_list(),
                y=rows["value"].to_list(),
                mode="lines+markers",
                name=_humanise(key) if group else y_title,
                line={"color": PALETTE[i % len(PALETTE)], "width": 2},
                marker={
                    "size": 7,
                    "symbol": ["circle-open" if flag else "circle" for flag in flags],
                },
                customdata=[
                    f"{text} (provisional)" if flag else text
                    for text, flag in zip(texts, flags, strict=True)
                ],
                hovertemplate="%{customdata}",
            )
        )
    _value_axis(fig, title=y_title, unit=unit)
    fig.update_layout(hovermode="x unified", showlegend=group is not None)
    fig.update_xaxes(hoverformat="Week of %b %-d, %Y")
    return fig


def backlog_bars(frame: pl.DataFrame, *, title: str) -> go.Figure:
    """Open cases at each week's end, stacked by age (older darker and warmer).

    Parameters
    ----------
    frame
        ``week_end`` (Date), ``age_bucket`` (Utf8, one of :data:`AGE_BUCKETS`) and
        ``open`` (Int64).
    title
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per age bucket present, youngest first (bottom of the stack).

    Raises
    ------
    ValueError
        If ``age_bucket`` holds a label not in :data:`AGE_BUCKETS`.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "week_end": [date(2024, 7, 7)] * 3,
    ...     "age_bucket": ["> 30 days", "< 1 day", "1–3 days"],
    ...     "open": [4, 10, 6],
    ... })
    >>> [trace.name for trace in backlog_bars(frame, title="Backlog").data]
    ['< 1 day', '1–3 days', '> 30 days']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("week_end", "age_bucket", "open"))
    unknown = sorted(set(frame["age_bucket"].to_list()) - set(AGE_BUCKETS), key=str)
    if unknown:
        raise ValueError(f"unknown age bucket(s) {unknown}; expected labels from {AGE_BUCKETS}")
    fig = _figure(title)
    for bucket, colour in zip(AGE_BUCKETS, _AGE_COLOURS, strict=True):
        rows = frame.filter(pl.col("age_bucket") == bucket).sort("week_end")
        if rows.is_empty():
            continue
        fig.add_trace(
            go.Bar(
                x=rows["week_end"].to_list(),
                y=rows["open"].to_list(),
                name=bucket,
                marker={"color": colour},
                customdata=_texts(rows["open"].to_list(), "count"),
                hovertemplate="%{customdata} open",
            )
        )
    fig.update_layout(barmode="stack", hovermode="x unified", legend_traceorder="normal")
    fig.update_yaxes(title_text="Open cases")
    fig.update_xaxes(hoverformat="Week ending %b %-d, %Y")
    return fig


def duration_lines(frame: pl.DataFrame, *, title: str) -> go.Figure:
    """Median (solid) and 90th percentile (dashed) durations in hours, per measure.

    Parameters
    ----------
    frame
        ``week`` (Date), ``measure`` (Utf8, e.g. "First response"), ``median_h`` and
        ``p90_h`` (Float64, hours). Measures are drawn in order of first appearance.
    title
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        Two traces per measure, ``"<measure> – median"`` then ``"<measure> – p90"``,
        in the same colour.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "week": [date(2024, 7, 1), date(2024, 7, 8), date(2024, 7, 1)],
    ...     "measure": ["First response", "First response", "Resolution"],
    ...     "median_h": [2.0, 3.0, 30.0],
    ...     "p90_h": [8.0, 9.0, 100.0],
    ... })
    >>> [trace.line.dash for trace in duration_lines(frame, title="Speed").data]
    ['solid', 'dash', 'solid', 'dash']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("week", "measure", "median_h", "p90_h"))
    fig = _figure(title)
    measures = frame["measure"].unique(maintain_order=True).to_list()
    for i, measure in enumerate(measures):
        rows = frame.filter(pl.col("measure").eq_missing(measure)).sort("week")
        colour = PALETTE[i % len(PALETTE)]
        for column, label, dash in (("median_h", "median", "solid"), ("p90_h", "p90", "dash")):
            values = rows[column].to_list()
            fig.add_trace(
                go.Scatter(
                    x=rows["week"].to_list(),
                    y=values,
                    mode="lines+markers",
                    name=f"{_humanise(measure)} – {label}",
                    legendgroup=str(measure),
                    line={"color": colour, "width": 2, "dash": dash},
                    marker={"size": 5},
                    customdata=_texts(values, "hours"),
                    hovertemplate="%{customdata}",
                )
            )
    _value_axis(fig, title="Hours", unit="hours")
    fig.update_layout(hovermode="x unified")
    fig.update_xaxes(hoverformat="Week of %b %-d, %Y")
    return fig


def prevalence_bars(frame: pl.DataFrame, *, title: str) -> go.Figure:
    """Rate per 1,000 exposures by category, largest at the top, last week as a marker.

    Parameters
    ----------
    frame
        One row per category: ``category`` (Utf8), ``exposure`` (Utf8, the
        denominator, e.g. "reviews"), ``per_1000`` (Float64), ``prev_per_1000``
        (Float64, nullable) and ``significant`` (Boolean: the change from the
        previous week is significant). A category listed under several exposures
        is labelled with the exposure too.
    title
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        Bar traces ``"not significant"`` (faint) and ``"significant change"``
        (solid, outlined), each only if it has rows, then a ``"previous week"``
        marker trace if any previous value is known.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "category": ["spam", "fake_review", "harassment"],
    ...     "exposure": ["messages", "reviews", "messages"],
    ...     "per_1000": [1.5, 4.0, 0.2],
    ...     "prev_per_1000": [1.4, 2.0, None],
    ...     "significant": [False, True, False],
    ... })
    >>> fig = prevalence_bars(frame, title="Prevalence")
    >>> [trace.name for trace in fig.data]
    ['not significant', 'significant change', 'previous week']
    >>> list(fig.layout.yaxis.categoryarray)
    ['Fake review', 'Spam', 'Harassment']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("category", "exposure", "per_1000", "prev_per_1000", "significant"))
    frame = frame.sort("per_1000", descending=True, nulls_last=True, maintain_order=True)
    repeated = frame["category"].is_duplicated()
    frame = frame.with_columns(
        label=pl.Series(
            [
                _humanise(cat) + (f" ({exp})" if again else "")
                for cat, exp, again in zip(
                    frame["category"], frame["exposure"], repeated, strict=True
                )
            ],
            dtype=pl.String,
        )
    )
    fig = _figure(title)
    significant = pl.col("significant").fill_null(False)
    styles = (
        ("not significant", ~significant, {"opacity": _BAR_OPACITY}),
        ("significant change", significant, {"line": {"color": "#000000", "width": 1.5}}),
    )
    for name, keep, style in styles:
        rows = frame.filter(keep)
        if rows.is_empty():
            continue
        fig.add_trace(
            go.Bar(
                x=rows["per_1000"].to_list(),
                y=rows["label"].to_list(),
                orientation="h",
                name=name,
                marker={"color": PALETTE[0]} | style,
                customdata=_per_1000_texts(rows, "per_1000"),
                hovertemplate="%{y}: %{customdata}<extra></extra>",
            )
        )
    before = frame.filter(pl.col("prev_per_1000").is_not_null())
    if not before.is_empty():
        fig.add_trace(
            go.Scatter(
                x=before["prev_per_1000"].to_list(),
                y=before["label"].to_list(),
                mode="markers",
                name="previous week",
                marker={"symbol": "line-ns", "size": 16, "line": {"width": 3, "color": "#000000"}},
                customdata=_per_1000_texts(before, "prev_per_1000"),
                hovertemplate="%{y}, previous week: %{customdata}<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(
        categoryorder="array", categoryarray=frame["label"].to_list(), autorange="reversed"
    )
    fig.update_xaxes(title_text="Per 1,000 exposures", rangemode="tozero")
    return fig


def _per_1000_texts(rows: pl.DataFrame, column: str) -> list[str]:
    return [
        f"{format_number(value, digits=2)} per 1,000 {exposure}"
        for value, exposure in zip(rows[column], rows["exposure"], strict=True)
    ]


def attribution_bars(
    frame: pl.DataFrame,
    *,
    title: str,
    label: str = "slice",
    value: str = "abs_change",
    unit: Unit = "count",
) -> go.Figure:
    """Signed horizontal bars, increases in vermillion and decreases in blue.

    Parameters
    ----------
    frame
        A ``label`` column (the row names) and a ``value`` column (signed numbers);
        rows are drawn in the given order, the first at the top.
    title
        Figure title.
    label, value
        Names of the two columns.
    unit
        How hover values are formatted; positive ones get a leading "+".

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace with one colour per bar.

    Examples
    --------
    >>> frame = pl.DataFrame({"slice": ["spam", "harassment"], "abs_change": [12.0, -3.0]})
    >>> list(attribution_bars(frame, title="Top movers").data[0].marker.color)
    ['#D55E00', '#0072B2']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, (label, value))
    labels = [str(item) for item in frame[label].to_list()]
    values = frame[value].to_list()
    colours = [
        PALETTE[3] if (v or 0) > 0 else PALETTE[0] if (v or 0) < 0 else _MUTED for v in values
    ]
    texts = [("+" if v is not None and v > 0 else "") + format_number(v, unit=unit) for v in values]
    fig = _figure(title)
    fig.add_trace(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker={"color": colours},
            customdata=texts,
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(showlegend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=labels, autorange="reversed")
    fig.update_xaxes(zeroline=True, zerolinecolor=_MUTED, zerolinewidth=1)
    return fig


def anomaly_band(series: pl.DataFrame, *, title: str, y_title: str = "count") -> go.Figure:
    """A scored series: its expected band, the expectation, the values and the anomalies.

    Parameters
    ----------
    series
        Output of :func:`analytics.detectors.anomalies.score_series`: ``ts``, ``value``,
        ``expected``, ``lower``, ``upper``, ``is_anomaly``.
    title, y_title
        Figure and y axis titles.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: ``"expected band"`` (filled), ``"expected"``, ``"value"`` and
        ``"anomaly"``; points can be selected (box or click) to drill down.

    Examples
    --------
    >>> from datetime import datetime
    >>> s = pl.DataFrame({"ts": [datetime(2026, 1, d) for d in (1, 2, 3)],
    ...     "value": [3.0, 4.0, 20.0], "expected": [3.0, 3.5, 4.0],
    ...     "lower": [0.0, 0.0, 0.0], "upper": [8.0, 9.0, 9.0],
    ...     "is_anomaly": [False, False, True]})
    >>> fig = anomaly_band(s, title="spam")
    >>> [t.name for t in fig.data], [float(y) for y in fig.data[-1].y]
    (['expected band', 'expected', 'value', 'anomaly'], [20.0])
    """
    if series.is_empty():
        return _no_data(title)
    _require(series, ("ts", "value", "expected", "lower", "upper", "is_anomaly"))
    fig = _figure(title)
    band = series.filter(pl.col("lower").is_not_null() & pl.col("upper").is_not_null())
    fig.add_trace(
        go.Scatter(
            x=band["ts"].to_list() + band["ts"].reverse().to_list(),
            y=band["upper"].to_list() + band["lower"].reverse().to_list(),
            fill="toself",
            fillcolor="rgba(0, 114, 178, 0.15)",
            mode="lines",
            line={"width": 0},
            hoverinfo="skip",
            name="expected band",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=series["ts"],
            y=series["expected"],
            mode="lines",
            line={"color": PALETTE[0], "dash": "dot"},
            name="expected",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=series["ts"],
            y=series["value"],
            mode="lines+markers",
            marker={"size": 5, "color": PALETTE[7]},
            line={"color": PALETTE[7], "width": 1},
            name="value",
        )
    )
    flagged = series.filter(pl.col("is_anomaly").fill_null(False))
    fig.add_trace(
        go.Scatter(
            x=flagged["ts"],
            y=flagged["value"],
            mode="markers",
            marker={"size": 11, "color": PALETTE[3], "symbol": "diamond"},
            name="anomaly",
        )
    )
    fig.update_layout(hovermode="x unified", dragmode="select", yaxis_title=y_title)
    return fig


def cluster_map(frame: pl.DataFrame, *, title: str, selected: int | None = None) -> go.Figure:
    """Narrative clusters on a 2-D map: one bubble per cluster, sized by its cases.

    Emerging clusters are vermillion, the others grey; the selected one is outlined.
    Hovering shows the topic's ``label`` (when given), top terms and the recent and
    earlier counts (escaped: they come from case text); ``customdata`` holds
    the cluster id (for selection events).

    Parameters
    ----------
    frame
        ``cluster_id``, ``x``, ``y``, ``size``, ``recent_count``, ``baseline_count``,
        ``is_emerging`` and ``terms`` (the top terms as one string).

    Examples
    --------
    >>> frame = pl.DataFrame({"cluster_id": [0, 1], "x": [0.1, 0.5], "y": [0.2, -0.1],
    ...     "size": [40, 9], "recent_count": [5, 9], "baseline_count": [35, 0],
    ...     "is_emerging": [False, True], "terms": ["refund, booking", "insurance, call"]})
    >>> [t.name for t in cluster_map(frame, title="Map").data]
    ['Other clusters', 'Emerging']
    """
    if frame.is_empty():
        return _no_data(title)
    _require(frame, ("cluster_id", "x", "y", "size", "recent_count", "baseline_count",
                     "is_emerging", "terms"))  # fmt: skip
    fig = _figure(title)
    biggest = max(int(frame["size"].max() or 1), 1)  # type: ignore[arg-type]
    for emerging, name, colour in (
        (False, "Other clusters", _MUTED),
        (True, "Emerging", PALETTE[3]),
    ):
        part = frame.filter(pl.col("is_emerging") == emerging)
        if part.is_empty():
            continue
        ids = part["cluster_id"].to_list()
        fig.add_trace(
            go.Scatter(
                x=part["x"].to_list(),
                y=part["y"].to_list(),
                mode="markers",
                name=name,
                customdata=ids,
                marker={
                    "size": [12 + 40 * (n / biggest) ** 0.5 for n in part["size"].to_list()],
                    "color": colour,
                    "opacity": 0.75,
                    "line": {
                        "width": [3 if i == selected else 0.5 for i in ids],
                        "color": "#000000",
                    },
                },
                text=[
                    f"<b>{html.escape(name)}</b> (topic {i})<br>{html.escape(terms)}<br>"
                    f"{format_number(r)} recent, {format_number(b)} earlier"
                    for i, name, terms, r, b in zip(
                        ids,
                        (part["label"] if "label" in part.columns else part["terms"]).to_list(),
                        part["terms"].to_list(),
                        part["recent_count"].to_list(),
                        part["baseline_count"].to_list(),
                        strict=True,
                    )
                ],  # fmt: skip
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def topic_history(
    daily: pl.DataFrame, *, title: str, first_flagged: date | None = None
) -> go.Figure:
    """An emerging topic's cases per day, with its 7-day average and the day it was first
    flagged (a marker whose hover says so).

    Parameters
    ----------
    daily
        ``day`` (Date) and ``cases`` (its new cases that day), one row per day.
    first_flagged
        The first day of the topic's current emergence, if any.

    Examples
    --------
    >>> days = pl.date_range(date(2026, 6, 1), date(2026, 6, 5), eager=True)
    >>> fig = topic_history(pl.DataFrame({"day": days, "cases": [0, 0, 1, 4, 9]}),
    ...                     first_flagged=date(2026, 6, 4), title="Topic")
    >>> [trace.name for trace in fig.data]
    ['daily value', '7-day average', 'first flagged']
    """
    if daily.is_empty():
        return _no_data(title)
    _require(daily, ("day", "cases"))
    frame = daily.sort("day").select(
        "day",
        value=pl.col("cases").cast(pl.Float64),
        avg7=pl.col("cases").cast(pl.Float64).rolling_mean(7, min_samples=1),
        provisional=pl.lit(False),
    )
    marker = pl.DataFrame(
        {
            "start_at": [datetime.combine(first_flagged, datetime.min.time())],
            "end_at": [None],
            "kind": ["emerging"],
            "title": ["First flagged as emerging"],
        },
        schema={"start_at": pl.Datetime("us"), "end_at": pl.Datetime("us"),
                "kind": pl.String, "title": pl.String},
    ) if first_flagged else None  # fmt: skip
    fig = daily_trend(frame, marker, title=title, y_title="Cases per day")
    for trace in fig.data:
        if trace.name == "known events":
            trace.name = "first flagged"
    return fig


def ring_network(
    edges: pl.DataFrame,
    members: pl.DataFrame | None = None,
    *,
    title: str,
    ring_id: int | None = None,
) -> go.Figure:
    """One ring of linked accounts as a network: accounts and the identifiers they share.

    The layout is deterministic: the shared devices and IPs sit evenly on an inner circle
    (devices first, at the centre when there is only one); each account gets the mean
    direction of the identifiers it uses (weighted by uses), and the accounts are spread
    evenly on an outer circle in the order of those directions, so an account sits
    beside the identifiers it uses.

    Parameters
    ----------
    edges
        Output of :func:`analytics.detectors.rings.ring_edges`: ``ring_id``, ``account_id``,
        ``kind`` (``"device"`` or ``"ip"``), ``identifier``, ``uses``.
    members
        Optional, the ``members`` of :func:`analytics.detectors.rings.find_rings`; with it the
        accounts that were reported or actioned are drawn apart, and hovers give events
        and age.
    title
        Figure title.
    ring_id
        The ring to draw; by default the smallest ``ring_id`` in ``edges``.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``"shared use"`` (the edges), ``"device"``, ``"IP"``, ``"account"`` and,
        when ``members`` says so, ``"reported or actioned"``.

    Examples
    --------
    >>> e = pl.DataFrame({"ring_id": [1] * 4, "account_id": [1, 2, 2, 3],
    ...     "kind": ["device", "device", "ip", "ip"], "identifier": ["d1", "d1", "i1", "i1"],
    ...     "uses": [3, 2, 2, 5]})
    >>> fig = ring_network(e, title="Ring 1")
    >>> [(t.name, len(t.x)) for t in fig.data]
    [('shared use', 12), ('device', 1), ('IP', 1), ('account', 3)]
    """
    if edges.is_empty():
        return _no_data(title)
    _require(edges, ("ring_id", "account_id", "kind", "identifier", "uses"))
    chosen = edges["ring_id"].min() if ring_id is None else ring_id
    ring = edges.filter(pl.col("ring_id") == chosen).with_columns(pl.col("kind").cast(pl.String))
    if ring.is_empty():
        return _no_data(title)
    tau = 2 * math.pi
    ids = (
        ring.group_by("kind", "identifier")
        .agg(accounts=pl.col("account_id").n_unique())
        .sort(pl.col("kind") != "device", "identifier")
        .with_row_index("i")
    )
    radius = 1.0 if ids.height > 1 else 0.0
    ids = ids.with_columns(angle=pl.col("i") * tau / ids.height).with_columns(
        x=radius * pl.col("angle").cos(), y=radius * pl.col("angle").sin()
    )
    placed = ring.join(
        ids.select("kind", "identifier", "angle", "x", "y"), on=("kind", "identifier")
    )
    accounts = (
        placed.group_by("account_id")
        .agg(
            theta=pl.arctan2(
                (pl.col("uses") * pl.col("angle").sin()).sum(),
                (pl.col("uses") * pl.col("angle").cos()).sum(),
            )
        )
        .sort("theta", "account_id")
        .with_row_index("j")
    )
    start = accounts["theta"][0]
    accounts = accounts.with_columns(phi=start + pl.col("j") * tau / accounts.height).with_columns(
        x=2 * pl.col("phi").cos(), y=2 * pl.col("phi").sin()
    )
    lines = placed.join(accounts.select("account_id", ax="x", ay="y"), on="account_id").select(
        x=pl.concat_list("ax", "x", pl.lit(None, pl.Float64)),
        y=pl.concat_list("ay", "y", pl.lit(None, pl.Float64)),
    )
    fig = _figure(title)
    fig.add_trace(
        go.Scatter(
            x=lines["x"].explode().to_list(),
            y=lines["y"].explode().to_list(),
            mode="lines",
            line={"color": _GRID, "width": 1},
            hoverinfo="skip",
            name="shared use",
        )
    )
    for kind, name, symbol, colour in (
        ("device", "device", "square", PALETTE[1]),
        ("ip", "IP", "diamond", PALETTE[2]),
    ):
        rows = ids.filter(pl.col("kind") == kind)
        hover = [
            f"{name} {html.escape(str(i)[:8])}…<br>{n} accounts"
            for i, n in rows.select("identifier", "accounts").iter_rows()
        ]
        _add_nodes(fig, rows, name=name, symbol=symbol, size=16, colour=colour, hover=hover)
    _add_ring_accounts(fig, accounts, members)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    # Four legend entries wrap in a narrow column: below the drawing they never meet the title.
    fig.update_layout(legend={"yanchor": "top", "y": -0.02}, margin={"b": 60})
    return fig


def _add_ring_accounts(
    fig: go.Figure, accounts: pl.DataFrame, members: pl.DataFrame | None
) -> None:
    """The account nodes of :func:`ring_network`, split by reported or actioned."""
    flagged = pl.lit(False)
    hover = pl.format("account {}", "account_id")
    if members is not None and not members.is_empty():
        _require(members, ("account_id", "reported", "actioned", "events", "age_days"))
        accounts = accounts.join(
            members.select("account_id", "reported", "actioned", "events", "age_days"),
            on="account_id",
            how="left",
        )
        flagged = (pl.col("reported") | pl.col("actioned")).fill_null(False)
        hover = pl.format(
            "account {}<br>{} events<br>{} days old",
            "account_id",
            pl.col("events").fill_null(0),
            pl.col("age_days").round(0).cast(pl.Int64).cast(pl.String).fill_null("–"),
        )
    accounts = accounts.with_columns(_flagged=flagged, _hover=hover)
    for is_flagged, name, colour in (
        (False, "account", PALETTE[0]),
        (True, "reported or actioned", PALETTE[3]),
    ):
        rows = accounts.filter(pl.col("_flagged") == is_flagged)
        labels = rows["_hover"].to_list()
        _add_nodes(fig, rows, name=name, symbol="circle", size=10, colour=colour, hover=labels)


def _add_nodes(
    fig: go.Figure,
    rows: pl.DataFrame,
    *,
    name: str,
    symbol: str,
    size: int,
    colour: str,
    hover: list[str],
) -> None:
    """One legend entry of :func:`ring_network`'s nodes at ``rows``' x, y (none if empty)."""
    if rows.is_empty():
        return
    fig.add_trace(
        go.Scatter(
            x=rows["x"].to_list(),
            y=rows["y"].to_list(),
            mode="markers",
            name=name,
            marker={"symbol": symbol, "size": size, "color": colour},
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
