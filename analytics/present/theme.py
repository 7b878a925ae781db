"""The one chart style of the app: the plotly template, the palette and the shared figure parts.

Every figure builder (:mod:`analytics.present.trend_charts`,
:mod:`analytics.present.detector_charts`) takes Polars frames and returns a
:class:`plotly.graph_objects.Figure` drawn with the ``"lookout"`` template, which is
registered in :data:`plotly.io.templates` once, when this module is first imported
(the global default template is left alone). Colours come from the Okabe–Ito palette,
which stays distinguishable under the common forms of colour blindness. A builder
given an empty frame returns a figure that says "No data for this selection" (see
:func:`no_data_figure`) rather than raising.

Light and dark: the app follows the browser's colour scheme, so pages show these
figures with ``st.plotly_chart(fig, theme="streamlit")``. Streamlit then draws the
template's text, axes, grid lines and hover boxes in its light or dark theme's colours
(over a transparent background) and keeps everything else: the palette, the scales,
the marks. :data:`FOREGROUND`, the palette's black, becomes the theme's text colour.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from analytics.present.formatting import Unit, format_number, humanise

__all__ = [
    "DIVERGING",
    "FOREGROUND",
    "GRID",
    "MUTED",
    "NO_DATA",
    "PALETTE",
    "SEQUENTIAL",
    "TEMPLATE",
    "add_events",
    "no_data_figure",
    "number_texts",
    "require_columns",
    "titled_figure",
    "value_axis",
]

FOREGROUND = "#000037"
"""The colour of text and of the palette's black: Streamlit's placeholder for its theme's
text colour in a chart drawn with ``theme="streamlit"`` (``GRAY_90`` of
``streamlit.elements.lib.streamlit_plotly_theme``), near-black on light and near-white
on dark; anywhere else (the HTML brief) it is the near-black it reads as."""

PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue: the app's primary colour
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    FOREGROUND,  # black on light, white on dark
)
"""Okabe–Ito colour-blind-safe palette, in the order series are coloured (its black is
:data:`FOREGROUND`, so that it shows on a dark background too)."""

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

TEMPLATE = "lookout"
"""Name of the plotly template every builder applies."""

NO_DATA = "No data for this selection"
"""Text of the annotation on a figure built from an empty frame."""

_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
GRID = "#E5E5E5"
"""Light grey of grid lines, axis lines and network edges."""

MUTED = "#7A7A7A"
"""Mid grey of secondary marks: the no-data text, known events, clusters not emerging
(contrast about 4.2:1 on both the light and the dark background)."""

_EVENT_COLOURS = {
    "holiday": PALETTE[2],
    "policy_change": PALETTE[4],
    "product_launch": PALETTE[5],
    "outage": PALETTE[3],
    "emerging": PALETTE[3],
}
_TITLED_TOP_MARGIN = 76


def _register_template() -> None:
    """Put the ``"lookout"`` template in :data:`plotly.io.templates` (called once, below:
    a module runs once per process, whichever chart module imports it first)."""
    template = go.layout.Template(pio.templates["plotly_white"])
    axis = {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID}
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


def titled_figure(title: str) -> go.Figure:
    """An empty figure with the template and, if given, a title above the legend."""
    fig = go.Figure(layout={"template": TEMPLATE})
    if title:
        fig.update_layout(
            title={"text": title, "yref": "container", "y": 0.98, "yanchor": "top"},
            margin={"t": _TITLED_TOP_MARGIN},
        )
    return fig


def no_data_figure(title: str) -> go.Figure:
    """The figure of an empty selection: the title and :data:`NO_DATA` in the middle, no axes."""
    fig = titled_figure(title)
    fig.add_annotation(
        text=NO_DATA,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 15, "color": MUTED},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def require_columns(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the ``columns`` that ``frame`` lacks, if any."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {frame.columns}")


def number_texts(
    values: Sequence[float | None], unit: Unit | None, digits: int | None = None
) -> list[str]:
    """:func:`format_number` of each value (hover and cell texts)."""
    return [format_number(v, unit=unit, digits=digits) for v in values]


def value_axis(fig: go.Figure, *, title: str, unit: Unit | None) -> None:
    """Title the y axis and give its ticks the unit."""
    fig.update_yaxes(title_text=title, rangemode="tozero")
    if unit == "percent":
        fig.update_yaxes(tickformat=".1~%")
    elif unit == "hours":
        fig.update_yaxes(ticksuffix=" h")


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def add_events(
    fig: go.Figure,
    annotations: pl.DataFrame | None,
    *,
    first: date,
    last: date,
    weekly: bool,
) -> None:
    """Known events as dotted lines or shaded spans, and a marker for each labelled with
    its short title (the whole title, kind and days on hover).

    Only events that touch ``first``..``last`` are drawn, clipped to that range. On a
    weekly chart (x = Mondays) an event is placed on the week that contains it. Events
    on the same day (week) share one marker whose hover text lists them all.
    """
    if annotations is None or annotations.is_empty():
        return
    require_columns(annotations, ("start_at", "end_at", "kind", "title"))
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
                fillcolor=MUTED,
                opacity=0.12,
                line_width=0,
                layer="below",
            )
        elif x0 not in markers:
            fig.add_vline(x=x0, line={"color": MUTED, "width": 1, "dash": "dot"})
        markers.setdefault(x0, []).append(row)
    if not markers:
        return
    titles = [_short_title(rows) for rows in markers.values()]
    places = _label_places(list(markers), titles, first=first, last=last)
    labels = [title if place else "" for title, place in zip(titles, places, strict=True)]
    fig.add_trace(
        go.Scatter(
            x=list(markers),
            y=[0.97] * len(markers),
            yaxis="y2",
            mode="markers+text",
            name="known events",
            text=labels,
            textposition=[place or "middle right" for place in places],
            textfont={"size": 10, "color": MUTED},
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


def _label_places(
    days: list[date], labels: list[str], *, first: date, last: date, chars: float = 0.022
) -> list[str | None]:
    """Where each marker's label goes: right of it (left in the last quarter of the axis,
    so it is not cut), on the marker's line or the line below, whichever is free of the
    labels before it (a label is about ``chars`` of the axis per character wide); None
    when both are taken (that label is left to the hover).

    >>> days = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 30)]
    >>> _label_places(days, ["Labor Day", "Outage", "Sale", "Fair"], first=date(2026, 1, 1),
    ...               last=date(2026, 1, 31))
    ['middle right', 'bottom right', None, 'middle left']
    """
    span = max((last - first).days, 1)
    ends = [-1.0, -1.0]  # where the labels on each line end so far (fraction of the axis)
    places: list[str | None] = []
    for day, label in zip(days, labels, strict=True):
        x = (day - first).days / span
        width = len(label) * chars
        left = x > 0.75
        start, stop = (x - width, x) if left else (x, x + width)
        free = [line for line in (0, 1) if ends[line] < start]
        if not free:
            places.append(None)
            continue
        ends[free[0]] = stop
        places.append(("bottom " if free[0] else "middle ") + ("left" if left else "right"))
    return places


def _short_title(rows: list[dict[str, Any]], width: int = 16) -> str:
    """A marker's label: the first event's title cut after its last whole word that
    fits in ``width`` characters with an ellipsis (a single long word is cut), and how
    many more events share the marker; the whole title is on hover.

    >>> _short_title([{"title": "Holiday season fraud push"}, {"title": "Outage"}])
    'Holiday season… +1'
    >>> _short_title([{"title": "Washington's Birthday"}])
    'Washington&#x27;s…'
    >>> _short_title([{"title": "Juneteenth National Independence Day"}], width=8)
    'Junetee…'
    """
    title = str(rows[0]["title"])
    short = title
    if len(title) > width:
        space = title.rfind(" ", 0, width)  # the words before it fit with the ellipsis
        words = title[:space] if space > 0 else title[: width - 1]
        short = words.rstrip(" ,;:-–—·(") + "…"
    return html.escape(short) + (f" +{len(rows) - 1}" if len(rows) > 1 else "")


def _event_colour(rows: list[dict[str, Any]]) -> str:
    kinds = {row["kind"] for row in rows}
    return _EVENT_COLOURS.get(kinds.pop(), MUTED) if len(kinds) == 1 else MUTED


def _event_text(row: dict[str, Any]) -> str:
    start, end = row["start_at"].date(), row["end_at"]
    when = start.isoformat()
    if end is not None and end.date() != start:
        when += f" to {end.date().isoformat()}"
    return f"<b>{html.escape(str(row['title']))}</b> ({humanise(row['kind']).lower()}, {when})"
