"""Figure builders for what the detectors find.

The slices that moved most, a series in its expected band, the topic map and a topic's
history, and a ring of linked accounts as a network, drawn in the house style of
:mod:`analytics.present.theme`.
"""

from __future__ import annotations

import html
import math
from datetime import date, datetime

import plotly.graph_objects as go
import polars as pl

from analytics.present.formatting import Unit, format_number, humanise
from analytics.present.theme import (
    GRID,
    MUTED,
    PALETTE,
    no_data_figure,
    require_columns,
    titled_figure,
)
from analytics.present.trend_charts import daily_trend

__all__ = [
    "anomaly_band",
    "attribution_bars",
    "cluster_map",
    "ring_network",
    "topic_history",
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
        return no_data_figure(title)
    require_columns(frame, (label, value))
    labels = [str(item) for item in frame[label].to_list()]
    values = frame[value].to_list()
    colours = [
        PALETTE[3] if (v or 0) > 0 else PALETTE[0] if (v or 0) < 0 else MUTED for v in values
    ]
    texts = [("+" if v is not None and v > 0 else "") + format_number(v, unit=unit) for v in values]
    fig = titled_figure(title)
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
    fig.update_xaxes(zeroline=True, zerolinecolor=MUTED, zerolinewidth=1)
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
        return no_data_figure(title)
    require_columns(series, ("ts", "value", "expected", "lower", "upper", "is_anomaly"))
    fig = titled_figure(title)
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


def cluster_map(
    frame: pl.DataFrame, *, title: str, selected: int | None = None, labelled: int = 6
) -> go.Figure:
    """Narrative clusters on a 2-D map: one bubble per cluster, sized by its cases.

    Emerging clusters are vermillion, the others grey; the selected one is outlined. The
    emerging bubbles, the selected one and then the largest (``labelled`` in all) carry
    their name on the map, on a pale box beside the bubble where it meets no other name
    (a largest one with no free place is left to its hover): the ``label`` (the topic's
    phrase) with a capital, else the top terms. Hovering any bubble shows its name, top
    terms and the recent and earlier counts (escaped: they come from case text).
    ``customdata`` holds the cluster id (for selection events).

    Parameters
    ----------
    frame
        ``cluster_id``, ``x``, ``y``, ``size``, ``recent_count``, ``baseline_count``,
        ``is_emerging`` and ``terms`` (the top terms as one string); ``label`` optional.

    Examples
    --------
    >>> frame = pl.DataFrame({"cluster_id": [0, 1, 2], "x": [0.1, 0.5, 0.9],
    ...     "y": [0.2, -0.1, 0.0], "size": [40, 9, 5], "recent_count": [5, 9, 1],
    ...     "baseline_count": [35, 0, 4], "is_emerging": [False, True, False],
    ...     "terms": ["refund, booking", "insurance, call", "spam, link"],
    ...     "label": ["refund booking", "insurance verification", "spam links"]})
    >>> fig = cluster_map(frame, title="Map", labelled=2)
    >>> [t.name for t in fig.data], sorted(a.text for a in fig.layout.annotations)
    (['Other clusters', 'Emerging'], ['Insurance<br>verification', 'Refund booking'])
    """
    if frame.is_empty():
        return no_data_figure(title)
    require_columns(frame, ("cluster_id", "x", "y", "size", "recent_count", "baseline_count",
                     "is_emerging", "terms"))  # fmt: skip
    fig = titled_figure(title)
    biggest = max(int(frame["size"].max() or 1), 1)  # type: ignore[arg-type]
    names = frame["label"] if "label" in frame.columns else frame["terms"]
    frame = frame.with_columns(_name=names.map_elements(humanise, return_dtype=pl.String))
    shown = _labelled(frame, selected=selected, most=labelled)
    for emerging, name, colour in (
        (False, "Other clusters", MUTED),
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
                        "color": PALETTE[7],
                    },
                },
                text=[
                    _wrap(n) if i in shown else "" for i, n in zip(ids, part["_name"], strict=True)
                ],
                textposition="top center",
                textfont={"size": 11},
                hovertext=[
                    f"<b>{html.escape(n)}</b> (topic {i})<br>{html.escape(terms)}<br>"
                    f"{format_number(r)} recent, {format_number(b)} earlier"
                    for i, n, terms, r, b in zip(
                        ids,
                        part["_name"].to_list(),
                        part["terms"].to_list(),
                        part["recent_count"].to_list(),
                        part["baseline_count"].to_list(),
                        strict=True,
                    )
                ],  # fmt: skip
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    for note in _name_boxes(frame, shown, biggest=biggest, selected=selected):
        fig.add_annotation(note)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


#: The topic map's drawing area as :func:`_name_boxes` assumes it (pixels), and a name's
#: letters (11 px text).
_MAP_PX, _CHAR_PX, _LINE_PX = (400.0, 400.0), 6.2, 14.0


def _name_boxes(
    frame: pl.DataFrame, shown: set[int], *, biggest: int, selected: int | None
) -> list[dict[str, object]]:
    """The names on :func:`cluster_map`: for each topic in ``shown`` (emerging and
    selected first, then by size), a box above, below, right or left of its bubble,
    the first place that meets no box already placed; a topic that must be named (it
    emerges or is selected) takes its first place regardless, the others none."""
    xs, ys = frame["x"].to_list(), frame["y"].to_list()
    x0, y0 = min(xs), min(ys)
    xspan, yspan = (max(xs) - x0) or 1.0, (max(ys) - y0) or 1.0
    order = frame.filter(pl.col("cluster_id").is_in(list(shown))).sort(
        pl.col("is_emerging") | (pl.col("cluster_id") == (selected or -1)), "size",
        descending=True,
    )  # fmt: skip
    placed: list[tuple[float, float, float, float]] = []
    notes: list[dict[str, object]] = []
    for row in order.iter_rows(named=True):
        text = _wrap(row["_name"])
        lines = text.split("<br>")
        w = max(len(line) for line in lines) * _CHAR_PX + 8
        h = len(lines) * _LINE_PX + 4
        r = (12 + 40 * (row["size"] / biggest) ** 0.5) / 2
        px = (row["x"] - x0) / xspan * _MAP_PX[0]
        py = (row["y"] - y0) / yspan * _MAP_PX[1]
        must = bool(row["is_emerging"]) or row["cluster_id"] == selected
        spots = ((0.0, r + h / 2 + 2), (0.0, -(r + h / 2 + 2)), (r + w / 2 + 2, 0.0),
                 (-(r + w / 2 + 2), 0.0))  # fmt: skip
        for k, (dx, dy) in enumerate(spots):
            box = (px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2)
            free = all(
                box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for b in placed
            )
            if free or (must and k == len(spots) - 1):
                if not free:
                    dx, dy = spots[0]
                    box = (px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2)
                placed.append(box)
                notes.append({
                    "x": row["x"], "y": row["y"], "xshift": dx, "yshift": dy, "text": text,
                    "showarrow": False, "font": {"size": 11, "color": "#222222"},
                    "bgcolor": "rgba(255, 255, 255, 0.85)", "borderpad": 2,
                })  # fmt: skip
                break
    return notes


def _labelled(frame: pl.DataFrame, *, selected: int | None, most: int) -> set[int]:
    """The topics :func:`cluster_map` names on the map: every emerging one and the
    selected one, then the largest, up to ``most``."""
    first = frame.filter(pl.col("is_emerging") | (pl.col("cluster_id") == (selected or -1)))
    chosen = [int(i) for i in first["cluster_id"].to_list()]
    rest = frame.filter(~pl.col("cluster_id").is_in(chosen)).sort("size", descending=True)
    chosen += [int(i) for i in rest["cluster_id"].head(max(most - len(chosen), 0)).to_list()]
    return set(chosen)


def _wrap(name: str, width: int = 18) -> str:
    """A map label on lines of about ``width`` characters (escaped: it is case text)."""
    lines: list[str] = []
    for word in html.escape(name).split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


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
        return no_data_figure(title)
    require_columns(daily, ("day", "cases"))
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
        return no_data_figure(title)
    require_columns(edges, ("ring_id", "account_id", "kind", "identifier", "uses"))
    chosen = edges["ring_id"].min() if ring_id is None else ring_id
    ring = edges.filter(pl.col("ring_id") == chosen).with_columns(pl.col("kind").cast(pl.String))
    if ring.is_empty():
        return no_data_figure(title)
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
    fig = titled_figure(title)
    fig.add_trace(
        go.Scatter(
            x=lines["x"].explode().to_list(),
            y=lines["y"].explode().to_list(),
            mode="lines",
            line={"color": GRID, "width": 1},
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
        require_columns(members, ("account_id", "reported", "actioned", "events", "age_days"))
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
