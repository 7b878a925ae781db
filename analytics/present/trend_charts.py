"""Figure builders for trends over days and weeks.

Volumes (daily and weekly, with known events), categories by week, rates, the open
backlog by age, handling durations and prevalence, drawn in the house style of
:mod:`analytics.present.theme`.

A period still filling in (its ``complete`` column false, or, without that column, its
``provisional`` column true) is never drawn as a real value: it is left out of the
lines and bars and drawn instead as its projection (``projected``, with the range
``low``..``high`` as an error bar, a hollow marker and a dotted link from the last
complete point, labelled "projected"; see :mod:`analytics.metrics.nowcast`), or, when
there is no projection, as a hollow grey "so far" marker.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import plotly.graph_objects as go
import polars as pl

from analytics.metrics.trends import AGE_BUCKETS
from analytics.present.formatting import Unit, format_number, humanise
from analytics.present.theme import (
    MUTED,
    PALETTE,
    SEQUENTIAL,
    add_events,
    no_data_figure,
    number_texts,
    require_columns,
    titled_figure,
    value_axis,
)

__all__ = [
    "backlog_bars",
    "category_heatmap",
    "daily_trend",
    "duration_lines",
    "prevalence_bars",
    "rate_lines",
    "weekly_trend",
]

_AGE_COLOURS = ("#FDE8C4", "#F9C27A", "#E69F00", "#D55E00", "#7A2E00")
_BAR_OPACITY = 0.45
_PROJECTED = "projected"
_SO_FAR = "so far (not finished)"


def _is_complete(frame: pl.DataFrame) -> pl.Expr:
    """True for the rows drawn as real values: ``complete`` if given, else not
    ``provisional`` (and every row when neither column is there)."""
    provisional = (
        pl.col("provisional").fill_null(False) if "provisional" in frame.columns else pl.lit(False)
    )
    if "complete" in frame.columns:
        return pl.coalesce(pl.col("complete"), ~provisional)
    return ~provisional


def _projection_columns(frame: pl.DataFrame, prefix: str = "") -> pl.DataFrame:
    """``frame`` with ``projected``, ``low`` and ``high`` (from ``{prefix}projected``...),
    null where the frame has none."""
    names = {"projected": f"{prefix}projected", "low": f"{prefix}low", "high": f"{prefix}high"}
    return frame.with_columns(
        (pl.col(src) if src in frame.columns else pl.lit(None, pl.Float64)).alias(dst)
        for dst, src in names.items()
    )


def _add_projection(
    fig: go.Figure,
    complete: pl.DataFrame,
    pending: pl.DataFrame,
    *,
    x: str,
    y: str,
    unit: Unit,
    colour: str,
    name: str = _PROJECTED,
    label: bool = True,
) -> None:
    """The unfinished points: each projection as a hollow marker with its range as an
    error bar, linked to the last complete point by a dotted line; a point without a
    projection as a hollow grey "so far" marker."""
    if pending.is_empty():
        return
    pending = pending.sort(x)
    shown = pending.filter(pl.col("projected").is_not_null())
    if not shown.is_empty():
        xs, ys = shown[x].to_list(), shown["projected"].to_list()
        lows, highs = shown["low"].to_list(), shown["high"].to_list()
        texts = [
            f"projected {format_number(p, unit=unit)} "
            f"(range {format_number(lo, unit=unit)}–{format_number(hi, unit=unit)}); "
            f"so far {format_number(v, unit=unit)}"
            for p, lo, hi, v in zip(ys, lows, highs, shown[y].to_list(), strict=True)
        ]
        before = complete.filter(pl.col(x) < xs[0]).sort(x).tail(1)
        if not before.is_empty() and before[y][0] is not None:
            fig.add_trace(
                go.Scatter(
                    x=[before[x][0], xs[0]],
                    y=[before[y][0], ys[0]],
                    mode="lines",
                    name=f"{name} (link)",
                    line={"color": colour, "width": 2, "dash": "dot"},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
        above = [None if h is None else h - p for h, p in zip(highs, ys, strict=True)]
        below = [None if lo is None else p - lo for lo, p in zip(lows, ys, strict=True)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=name,
                marker={"symbol": "circle-open", "size": 10, "color": colour, "line": {"width": 2}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": above,
                    "arrayminus": below,
                    "color": colour,
                    "thickness": 1.5,
                    "width": 6,
                },
                customdata=texts,
                hovertemplate="%{customdata}",
                showlegend=False,
            )
        )
        if label:
            tops = [h if h is not None else p for h, p in zip(highs, ys, strict=True)]
            fig.add_annotation(
                x=xs[-1],
                y=max(tops),
                text=_PROJECTED,
                showarrow=False,
                yanchor="bottom",
                font={"size": 11, "color": MUTED},
            )
    bare = pending.filter(pl.col("projected").is_null())
    if not bare.is_empty():
        fig.add_trace(
            go.Scatter(
                x=bare[x].to_list(),
                y=bare[y].to_list(),
                mode="markers",
                name=_SO_FAR if name == _PROJECTED else f"{name} (so far)",
                marker={"symbol": "circle-open", "size": 9, "color": MUTED},
                customdata=[
                    f"so far {text}; not finished, too early to project"
                    for text in number_texts(bare[y].to_list(), unit)
                ],
                hovertemplate="%{customdata}",
                showlegend=False,
            )
        )


def daily_trend(
    daily: pl.DataFrame,
    annotations: pl.DataFrame | None = None,
    *,
    title: str,
    y_title: str,
    unit: Unit = "count",
) -> go.Figure:
    """Daily values as light bars under a bold 7-day average line, with known events;
    an unfinished day drawn as its projection.

    Parameters
    ----------
    daily
        One row per day: ``day`` (Date), ``value`` (Float64), ``avg7`` (Float64,
        may be null) and ``provisional`` (Boolean); optionally ``complete`` (Boolean,
        false for a day still filling in) and its projection ``projected``, ``low``,
        ``high`` (:func:`analytics.metrics.nowcast.daily_nowcast`). Without
        ``complete``, a provisional day counts as unfinished. An unfinished day is no
        bar and no part of the average line: it is drawn as a ``"projected"`` marker
        with its range (or a grey "so far" marker when there is no projection).
    annotations
        Known events: ``start_at`` (Datetime), ``end_at`` (Datetime, nullable),
        ``kind`` and ``title`` (Utf8). An event is a dotted line, or a shaded span if
        it lasts more than a day, plus a labelled marker in the ``"known events"``
        trace whose hover text is the title. Events outside the data's days are skipped.
    title, y_title
        Figure and y axis titles.
    unit
        How hover values are formatted (see :func:`format_number`).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces in order: ``"daily value"``, ``"7-day average"``, then the unfinished
        days (``"projected (link)"`` and ``"projected"``, or ``"so far (not
        finished)"``), then ``"known events"`` (if any in range).

    Examples
    --------
    >>> daily = pl.DataFrame({
    ...     "day": [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)],
    ...     "value": [5.0, 7.0, 3.0],
    ...     "avg7": [None, None, 5.0],
    ...     "provisional": [False, False, True],
    ...     "complete": [True, True, False],
    ...     "projected": [None, None, 6.0], "low": [None, None, 5.0], "high": [None, None, 8.0],
    ... })
    >>> fig = daily_trend(daily, title="Reports", y_title="Reports per day")
    >>> [trace.name for trace in fig.data]
    ['daily value', '7-day average', 'projected (link)', 'projected']
    >>> list(fig.data[-1].y), list(fig.data[-1].error_y.array)
    ([6.0], [2.0])
    """
    if daily.is_empty():
        return no_data_figure(title)
    require_columns(daily, ("day", "value", "avg7", "provisional"))
    daily = daily.drop_nulls("day").sort("day")
    if daily.is_empty():
        return no_data_figure(title)
    days: list[date] = daily["day"].to_list()
    fig = titled_figure(title)
    daily = _projection_columns(daily.with_columns(_done=_is_complete(daily)))
    final = daily.filter(pl.col("_done"))
    pending = daily.filter(~pl.col("_done"))
    _add_bars(fig, final, x="day", name="daily value", unit=unit)
    average = daily.with_columns(avg7=pl.when(pl.col("_done")).then(pl.col("avg7")))
    fig.add_trace(
        go.Scatter(
            x=average["day"].to_list(),
            y=average["avg7"].to_list(),
            mode="lines",
            name="7-day average",
            line={"color": PALETTE[0], "width": 3},
            customdata=number_texts(  # an average of counts needs a decimal place
                average["avg7"].to_list(), unit, digits=1 if unit == "count" else None
            ),
            hovertemplate="%{customdata}",
        )
    )
    _add_projection(fig, final, pending, x="day", y="value", unit=unit, colour=PALETTE[0])
    add_events(fig, annotations, first=days[0], last=days[-1], weekly=False)
    value_axis(fig, title=y_title, unit=unit)
    fig.update_layout(barmode="overlay", hovermode="x unified")
    fig.update_xaxes(hoverformat="%a %b %-d, %Y")
    return fig


def _add_bars(fig: go.Figure, frame: pl.DataFrame, *, x: str, name: str, unit: Unit) -> None:
    """Light bars of ``frame["value"]``."""
    if frame.is_empty():
        return
    fig.add_trace(
        go.Bar(
            x=frame[x].to_list(),
            y=frame["value"].to_list(),
            name=name,
            marker={"color": PALETTE[0], "opacity": _BAR_OPACITY},
            customdata=number_texts(frame["value"].to_list(), unit),
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
    """Weekly values as a line, the week still filling in as its projection, with known
    events.

    Parameters
    ----------
    weekly
        One row per week: ``week`` (Date, the Monday), ``value`` (Float64) and
        ``provisional`` (Boolean); optionally ``complete`` and the projection
        ``projected``, ``low``, ``high`` (:meth:`analytics.metrics.weekly.WeeklyView.series`).
        Complete weeks make the line; the others are drawn as their projection with
        its range, labelled "projected" (a grey "so far" marker without one).
    annotations
        Known events as for :func:`daily_trend`; each is placed on the week that
        contains it and skipped if that week is outside the data.
    title, y_title
        Figure and y axis titles.
    unit
        How hover values and y ticks are formatted (see :func:`format_number`).
    focus
        The Monday of the week under review: shaded behind it and labelled "this week"
        at the foot of the chart (clear of the event markers at the top).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: ``"weekly value"``, then ``"projected (link)"`` and ``"projected"`` (or
        ``"so far (not finished)"``) if a week is unfinished, then ``"known events"`` (if
        any in range).

    Examples
    --------
    >>> weekly = pl.DataFrame({
    ...     "week": [date(2024, 7, 1), date(2024, 7, 8), date(2024, 7, 15)],
    ...     "value": [0.12, 0.10, 0.06],
    ...     "provisional": [False, False, True],
    ...     "projected": [None, None, 0.11], "low": [None, None, 0.1],
    ...     "high": [None, None, 0.13],
    ... })
    >>> fig = weekly_trend(weekly, title="Repeat rate", y_title="Share", unit="percent")
    >>> [trace.name for trace in fig.data]
    ['weekly value', 'projected (link)', 'projected']
    >>> list(fig.data[-1].customdata)
    ['projected 11.0% (range 10.0%–13.0%); so far 6.0%']
    """
    if weekly.is_empty():
        return no_data_figure(title)
    require_columns(weekly, ("week", "value", "provisional"))
    weekly = weekly.drop_nulls("week").sort("week")
    if weekly.is_empty():
        return no_data_figure(title)
    weeks: list[date] = weekly["week"].to_list()
    fig = titled_figure(title)
    weekly = _projection_columns(weekly.with_columns(_done=_is_complete(weekly)))
    final = weekly.filter(pl.col("_done"))
    if not final.is_empty():
        fig.add_trace(
            go.Scatter(
                x=final["week"].to_list(),
                y=final["value"].to_list(),
                mode="lines+markers",
                name="weekly value",
                line={"color": PALETTE[0], "width": 2.5},
                marker={"size": 6},
                customdata=number_texts(final["value"].to_list(), unit),
                hovertemplate="%{customdata}",
            )
        )
    pending = weekly.filter(~pl.col("_done"))
    _add_projection(fig, final, pending, x="week", y="value", unit=unit, colour=PALETTE[0])
    add_events(fig, annotations, first=weeks[0], last=weeks[-1], weekly=True)
    value_axis(fig, title=y_title, unit=unit)
    fig.update_layout(hovermode="x unified", showlegend=False)
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
            annotation_position="bottom left",
            annotation_font={"size": 11, "color": MUTED},
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
        return no_data_figure(title)
    require_columns(frame, ("week", "category", "value"))
    order = (
        frame.group_by("category")
        .agg(pl.col("value").sum().alias("total"))
        .sort(["total", "category"], descending=[True, False])
    )["category"].to_list()
    weeks = frame["week"].unique().sort().to_list()
    cells = {(row["category"], row["week"]): row["value"] for row in frame.iter_rows(named=True)}
    z = [[cells.get((category, week)) for week in weeks] for category in order]
    fig = titled_figure(title)
    fig.add_trace(
        go.Heatmap(
            x=weeks,
            y=[humanise(category) for category in order],
            z=z,
            text=[number_texts(row, unit) for row in z],
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
    """Weekly lines, one per group; a week still filling in drawn as its projection.

    Parameters
    ----------
    frame
        ``week`` (Date) and ``value`` (Float64), optionally the ``group`` column,
        ``provisional`` and ``complete`` (Boolean) and the projection ``projected``,
        ``low``, ``high``. Groups are drawn in order of first appearance, coloured from
        :data:`PALETTE`, labelled humanised. Unfinished weeks (``complete`` false, or
        provisional without that column) are left out of the line.
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
        One line trace per group (named after it, or ``y_title``), then, per group with
        an unfinished week, its ``"<name> – projected"`` marker (hollow, with the range
        as an error bar) and dotted link, or a grey ``"<name> – so far"`` marker; one
        "projected" label.

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
        return no_data_figure(title)
    require_columns(frame, ("week", "value") + ((group,) if group else ()))
    frame = _projection_columns(frame.with_columns(_done=_is_complete(frame)))
    keys = frame[group].unique(maintain_order=True).to_list() if group else [None]
    fig = titled_figure(title)
    pending_traces = []
    for i, key in enumerate(keys):
        rows = frame if group is None else frame.filter(pl.col(group).eq_missing(key))
        rows = rows.sort("week")
        colour = PALETTE[i % len(PALETTE)]
        name = humanise(key) if group else y_title
        final = rows.filter(pl.col("_done"))
        fig.add_trace(
            go.Scatter(
                x=final["week"].to_list(),
                y=final["value"].to_list(),
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": colour, "width": 2},
                marker={"size": 7, "symbol": "circle"},
                customdata=number_texts(final["value"].to_list(), unit),
                hovertemplate="%{customdata}",
            )
        )
        pending_traces.append((final, rows.filter(~pl.col("_done")), colour, name))
    for n, (final, pending, colour, name) in enumerate(pending_traces):
        _add_projection(
            fig,
            final,
            pending,
            x="week",
            y="value",
            unit=unit,
            colour=colour,
            name=f"{name} – {_PROJECTED}",
            label=n == len(pending_traces) - 1,
        )
    value_axis(fig, title=y_title, unit=unit)
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
        return no_data_figure(title)
    require_columns(frame, ("week_end", "age_bucket", "open"))
    unknown = sorted(set(frame["age_bucket"].to_list()) - set(AGE_BUCKETS), key=str)
    if unknown:
        raise ValueError(f"unknown age bucket(s) {unknown}; expected labels from {AGE_BUCKETS}")
    fig = titled_figure(title)
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
                customdata=number_texts(rows["open"].to_list(), "count"),
                hovertemplate="%{customdata} open",
            )
        )
    fig.update_layout(barmode="stack", hovermode="x unified", legend_traceorder="normal")
    fig.update_yaxes(title_text="Open cases")
    fig.update_xaxes(hoverformat="Week ending %b %-d, %Y")
    return fig


def duration_lines(frame: pl.DataFrame, *, title: str) -> go.Figure:
    """Median (solid) and 90th percentile (dashed) durations in hours, per measure; a
    week still filling in drawn as its projection.

    Parameters
    ----------
    frame
        ``week`` (Date), ``measure`` (Utf8, e.g. "First response"), ``median_h`` and
        ``p90_h`` (Float64, hours); optionally ``complete`` (Boolean) and each
        statistic's projection ``median_h_projected``, ``median_h_low``,
        ``median_h_high``, ``p90_h_projected``... Measures are drawn in order of first
        appearance; unfinished weeks are left out of the lines.

    title
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        Two traces per measure, ``"<measure> – median"`` then ``"<measure> – p90"``,
        in the same colour; then the projections of unfinished weeks
        (``"<measure> – <stat> – projected"``).

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
        return no_data_figure(title)
    require_columns(frame, ("week", "measure", "median_h", "p90_h"))
    fig = titled_figure(title)
    frame = frame.with_columns(_done=_is_complete(frame))
    measures = frame["measure"].unique(maintain_order=True).to_list()
    pending_traces = []
    for i, measure in enumerate(measures):
        rows = frame.filter(pl.col("measure").eq_missing(measure)).sort("week")
        colour = PALETTE[i % len(PALETTE)]
        for column, label, dash in (("median_h", "median", "solid"), ("p90_h", "p90", "dash")):
            final = rows.filter(pl.col("_done"))
            values = final[column].to_list()
            name = f"{humanise(measure)} – {label}"
            fig.add_trace(
                go.Scatter(
                    x=final["week"].to_list(),
                    y=values,
                    mode="lines+markers",
                    name=name,
                    legendgroup=str(measure),
                    line={"color": colour, "width": 2, "dash": dash},
                    marker={"size": 5},
                    customdata=number_texts(values, "hours"),
                    hovertemplate="%{customdata}",
                )
            )
            pending = _projection_columns(
                rows.filter(~pl.col("_done")).with_columns(value=pl.col(column)), f"{column}_"
            )
            final = final.with_columns(value=pl.col(column))
            pending_traces.append((final, pending, colour, name))
    for n, (final, pending, colour, name) in enumerate(pending_traces):
        _add_projection(
            fig,
            final,
            pending,
            x="week",
            y="value",
            unit="hours",
            colour=colour,
            name=f"{name} – {_PROJECTED}",
            label=n == len(pending_traces) - 1,
        )
    value_axis(fig, title="Hours", unit="hours")
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
        return no_data_figure(title)
    require_columns(frame, ("category", "exposure", "per_1000", "prev_per_1000", "significant"))
    frame = frame.sort("per_1000", descending=True, nulls_last=True, maintain_order=True)
    repeated = frame["category"].is_duplicated()
    frame = frame.with_columns(
        label=pl.Series(
            [
                humanise(cat) + (f" ({exp})" if again else "")
                for cat, exp, again in zip(
                    frame["category"], frame["exposure"], repeated, strict=True
                )
            ],
            dtype=pl.String,
        )
    )
    fig = titled_figure(title)
    significant = pl.col("significant").fill_null(False)
    styles = (
        ("not significant", ~significant, {"opacity": _BAR_OPACITY}),
        ("significant change", significant, {"line": {"color": PALETTE[7], "width": 1.5}}),
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
                marker={"symbol": "line-ns", "size": 16, "line": {"width": 3, "color": PALETTE[7]}},
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
