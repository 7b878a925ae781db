"""Figure builders of analytics.present.trend_charts and .detector_charts in the style of
analytics.present.theme: template, traces, provisional styling, events, empties."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
import pytest

from analytics.metrics.trends import AGE_BUCKETS
from analytics.present import detector_charts, trend_charts
from analytics.present.detector_charts import attribution_bars
from analytics.present.formatting import format_number
from analytics.present.theme import (
    DIVERGING,
    FOREGROUND,
    NO_DATA,
    PALETTE,
    SEQUENTIAL,
    TEMPLATE,
)
from analytics.present.trend_charts import (
    backlog_bars,
    category_heatmap,
    daily_trend,
    duration_lines,
    prevalence_bars,
    rate_lines,
    weekly_trend,
)

JUL1 = date(2024, 7, 1)  # a Monday


def _days(n: int, *, provisional_tail: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "day": [JUL1 + timedelta(days=i) for i in range(n)],
            "value": [float(10 + i) for i in range(n)],
            "avg7": [None if i < 6 else 12.0 for i in range(n)],
            "provisional": [False] * (n - provisional_tail) + [True] * provisional_tail,
        },
        schema_overrides={"avg7": pl.Float64},
    )


def _weeks(n: int, *, provisional_tail: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "week": [JUL1 + timedelta(weeks=i) for i in range(n)],
            "value": [float(100 + i) for i in range(n)],
            "provisional": [False] * (n - provisional_tail) + [True] * provisional_tail,
        }
    )


def _events(rows: list[tuple[datetime, datetime | None, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "start_at": pl.Datetime,
            "end_at": pl.Datetime,
            "kind": pl.String,
            "title": pl.String,
        },
        orient="row",
    )


def _trace(fig: go.Figure, name: str) -> go.Scatter | go.Bar:
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, [trace.name for trace in fig.data]
    return matches[0]


def _lines(fig: go.Figure) -> list[date]:
    return [shape.x0 for shape in fig.layout.shapes if shape.type == "line"]


# --- palette and template ---------------------------------------------------------------------


def test_palette_is_okabe_ito_with_primary_blue_first() -> None:
    assert PALETTE[0] == "#0072B2"
    assert len(PALETTE) == 8
    assert len({colour.upper() for colour in PALETTE}) == len(PALETTE)
    assert {"#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"} < set(PALETTE)
    assert PALETTE[7] == FOREGROUND  # Okabe-Ito's black: the theme's text colour


def test_the_foreground_is_streamlits_placeholder_for_its_themes_text_colour() -> None:
    """Streamlit swaps this colour for its light or dark theme's text colour in charts
    drawn with theme="streamlit"; an upgrade that renames it must fail here."""
    from streamlit.elements.lib import streamlit_plotly_theme

    assert FOREGROUND == streamlit_plotly_theme.GRAY_90


def test_scales_run_from_zero_to_one_and_diverging_is_blue_white_vermillion() -> None:
    for scale in (SEQUENTIAL, DIVERGING):
        stops = [stop for stop, _ in scale]
        assert stops[0] == 0.0 and stops[-1] == 1.0 and stops == sorted(stops)
    assert [colour for _, colour in DIVERGING] == ["#0072B2", "#FFFFFF", "#D55E00"]
    go.Heatmap(z=[[1]], colorscale=[list(stop) for stop in SEQUENTIAL])  # plotly accepts it


def test_template_is_registered_with_the_house_style() -> None:
    assert TEMPLATE == "lookout"
    layout = pio.templates[TEMPLATE].layout
    assert tuple(layout.colorway) == PALETTE
    assert layout.font.size == 13 and "sans-serif" in layout.font.family
    assert (layout.margin.l, layout.margin.r, layout.margin.t, layout.margin.b) == (10, 10, 40, 10)
    assert layout.legend.orientation == "h"
    assert layout.legend.y > 1  # above the plot area
    assert layout.plot_bgcolor == "rgba(0,0,0,0)"
    assert layout.xaxis.gridcolor == layout.yaxis.gridcolor == "#E5E5E5"
    assert pio.templates.default != TEMPLATE  # the global default is left alone


# --- format_number ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (12345, {}, "12,345"),
        (12345.4, {"unit": "count"}, "12,345"),
        (-1234567, {"unit": "count"}, "-1,234,567"),
        (0, {"unit": "count"}, "0"),
        (12.5, {"unit": "count", "digits": 1}, "12.5"),
        (0.1234, {"unit": "percent"}, "12.3%"),
        (1.0, {"unit": "percent"}, "100.0%"),
        (0.00049, {"unit": "percent", "digits": 2}, "0.05%"),
        (12.3456, {"unit": "percent", "digits": 0}, "1,235%"),
        (4.2, {"unit": "hours"}, "4.2 h"),
        (47.9, {"unit": "hours"}, "47.9 h"),
        (48, {"unit": "hours"}, "2.0 d"),
        (74.4, {"unit": "hours"}, "3.1 d"),
        (-0.04, {"unit": "hours"}, "0.0 h"),
        (1.234, {"unit": "per_1000"}, "1.23 per 1k"),
        (1234.5, {"unit": "per_1000", "digits": 1}, "1,234.5 per 1k"),
        (None, {}, "–"),
        (None, {"unit": "percent"}, "–"),
        (float("nan"), {"unit": "hours"}, "–"),
        (math.inf, {}, "–"),
    ],
)
def test_format_number(value: float | None, kwargs: dict, expected: str) -> None:
    assert format_number(value, **kwargs) == expected


def test_format_number_rejects_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unknown unit 'minutes'"):
        format_number(3, unit="minutes")  # type: ignore[arg-type]


# --- every builder ----------------------------------------------------------------------------


def _examples() -> dict[str, tuple[go.Figure, go.Figure]]:
    """Each builder on a small frame and on an empty frame with the same columns."""
    frames: dict[str, tuple[Callable[..., go.Figure], pl.DataFrame, dict[str, Any]]] = {
        "daily_trend": (daily_trend, _days(8, provisional_tail=2), {"y_title": "Cases"}),
        "weekly_trend": (weekly_trend, _weeks(3, provisional_tail=1), {"y_title": "Cases"}),
        "category_heatmap": (
            category_heatmap,
            pl.DataFrame({"week": [JUL1], "category": ["spam"], "value": [1.0]}),
            {},
        ),
        "rate_lines": (
            rate_lines,
            pl.DataFrame({"week": [JUL1], "value": [0.1]}),
            {"y_title": "Rate"},
        ),
        "backlog_bars": (
            backlog_bars,
            pl.DataFrame({"week_end": [JUL1], "age_bucket": ["< 1 day"], "open": [3]}),
            {},
        ),
        "duration_lines": (
            duration_lines,
            pl.DataFrame(
                {"week": [JUL1], "measure": ["Resolution"], "median_h": [2.0], "p90_h": [9.0]}
            ),
            {},
        ),
        "prevalence_bars": (
            prevalence_bars,
            pl.DataFrame(
                {
                    "category": ["spam"],
                    "exposure": ["messages"],
                    "per_1000": [1.0],
                    "prev_per_1000": [0.5],
                    "significant": [True],
                }
            ),
            {},
        ),
        "attribution_bars": (
            attribution_bars,
            pl.DataFrame({"slice": ["spam"], "abs_change": [2.0]}),
            {},
        ),
        "anomaly_band": (
            detector_charts.anomaly_band,
            pl.DataFrame(
                {
                    "ts": [datetime(2026, 1, 1), datetime(2026, 1, 2)],
                    "value": [3.0, 12.0],
                    "expected": [3.0, 3.0],
                    "lower": [0.0, 0.0],
                    "upper": [7.0, 7.0],
                    "is_anomaly": [False, True],
                }
            ),
            {},
        ),
        "cluster_map": (
            detector_charts.cluster_map,
            pl.DataFrame(
                {
                    "cluster_id": [0, 1],
                    "x": [0.1, 0.5],
                    "y": [0.2, -0.1],
                    "size": [40, 9],
                    "recent_count": [5, 9],
                    "baseline_count": [35, 0],
                    "is_emerging": [False, True],
                    "terms": ["refund, booking", "insurance, call"],
                }
            ),
            {"selected": 1},
        ),
        "topic_history": (
            detector_charts.topic_history,
            pl.DataFrame(
                {"day": [date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)], "cases": [0, 2, 9]}
            ),
            {"first_flagged": date(2026, 6, 3)},
        ),
        "ring_network": (
            detector_charts.ring_network,
            pl.DataFrame(
                {
                    "ring_id": [1] * 4,
                    "account_id": [1, 2, 2, 3],
                    "kind": ["device", "device", "ip", "ip"],
                    "identifier": ["d1", "d1", "i1", "i1"],
                    "uses": [3, 2, 2, 5],
                }
            ),
            {},
        ),
    }
    return {
        name: (
            build(frame, title="A title", **options),
            build(frame.clear(), title="A title", **options),
        )
        for name, (build, frame, options) in frames.items()
    }


EXAMPLES = _examples()


def test_every_public_builder_is_covered() -> None:
    builders = {
        name
        for module in (trend_charts, detector_charts)
        for name in module.__all__
        if callable(getattr(module, name))
    }
    assert builders == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_builder_applies_template_and_title(name: str) -> None:
    fig, _ = EXAMPLES[name]
    assert isinstance(fig, go.Figure)
    assert tuple(fig.layout.template.layout.colorway) == PALETTE
    assert fig.layout.template.layout.font.size == 13
    assert fig.layout.title.text == "A title"
    assert len(fig.data) >= 1
    # No "no data" note (the topic map's annotations are its topics' names).
    assert not [a for a in fig.layout.annotations if a.text == NO_DATA]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_empty_frame_gives_no_data_annotation(name: str) -> None:
    _, empty = EXAMPLES[name]
    assert tuple(empty.layout.template.layout.colorway) == PALETTE
    assert len(empty.data) == 0
    [note] = empty.layout.annotations
    assert note.text == NO_DATA == "No data for this selection"
    assert (note.xref, note.yref, note.x, note.y) == ("paper", "paper", 0.5, 0.5)


@pytest.mark.parametrize(
    "build",
    [
        lambda: daily_trend(pl.DataFrame(), title="t", y_title="y"),
        lambda: weekly_trend(pl.DataFrame(), title="t", y_title="y"),
        lambda: category_heatmap(pl.DataFrame(), title="t"),
        lambda: rate_lines(pl.DataFrame(), title="t", y_title="y", group="severity"),
        lambda: backlog_bars(pl.DataFrame(), title="t"),
        lambda: duration_lines(pl.DataFrame(), title="t"),
        lambda: prevalence_bars(pl.DataFrame(), title="t"),
        lambda: attribution_bars(pl.DataFrame(), title="t"),
    ],
)
def test_empty_frame_without_columns_is_no_data_too(build) -> None:
    assert build().layout.annotations[0].text == NO_DATA


def test_missing_column_is_reported() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['avg7'\]"):
        daily_trend(_days(3).drop("avg7"), title="t", y_title="y")


def test_untitled_figure_keeps_the_compact_margin() -> None:
    fig = weekly_trend(_weeks(2), title="", y_title="y")
    assert fig.layout.margin.t is None  # falls back to the template's 40
    assert EXAMPLES["weekly_trend"][0].layout.margin.t > 40


# --- daily_trend ------------------------------------------------------------------------------


def test_daily_trend_traces_and_unfinished_days_without_projection() -> None:
    fig = daily_trend(_days(10, provisional_tail=3), title="Reports", y_title="Reports")
    assert [trace.name for trace in fig.data] == [
        "daily value",
        "7-day average",
        "so far (not finished)",
    ]
    final, average, so_far = fig.data
    assert isinstance(final, go.Bar)
    assert list(final.x) == [JUL1 + timedelta(days=i) for i in range(7)]
    # Unfinished days are no bar and no part of the average: hollow grey markers.
    assert list(so_far.x) == [JUL1 + timedelta(days=i) for i in range(7, 10)]
    assert so_far.mode == "markers" and so_far.marker.symbol == "circle-open"
    assert all("not finished" in text for text in so_far.customdata)
    assert isinstance(average, go.Scatter) and average.mode == "lines"
    assert average.line.width == 3
    assert list(average.y)[7:] == [None, None, None]
    assert (average.customdata[0], average.customdata[6]) == ("–", "12.0")
    assert fig.layout.hovermode == "x unified"
    assert fig.layout.barmode == "overlay"  # bars keep full width, not grouped side by side
    assert fig.layout.yaxis.title.text == "Reports"


def test_daily_trend_draws_the_unfinished_day_as_its_projection() -> None:
    days = _days(8).with_columns(
        complete=pl.Series([True] * 7 + [False]),
        projected=pl.Series([None] * 7 + [20.0], dtype=pl.Float64),
        low=pl.Series([None] * 7 + [18.0], dtype=pl.Float64),
        high=pl.Series([None] * 7 + [23.0], dtype=pl.Float64),
    )
    fig = daily_trend(days, title="t", y_title="y")
    bars = _trace(fig, "daily value")
    assert JUL1 + timedelta(days=7) not in list(bars.x)  # no sliver bar
    projected = _trace(fig, "projected")
    assert list(projected.x) == [JUL1 + timedelta(days=7)]
    assert list(projected.y) == [20.0]
    assert list(projected.error_y.array) == [3.0] and list(projected.error_y.arrayminus) == [2.0]
    assert projected.marker.symbol == "circle-open"
    assert projected.customdata[0] == "projected 20 (range 18–23); so far 17"
    link = _trace(fig, "projected (link)")
    assert link.line.dash == "dot" and list(link.y) == [16.0, 20.0]
    assert [a.text for a in fig.layout.annotations] == ["projected"]


def test_daily_trend_sorts_days() -> None:
    fig = daily_trend(_days(5).reverse(), title="t", y_title="y")
    assert list(fig.data[0].x) == sorted(fig.data[0].x)


def test_daily_trend_without_provisional_days_has_no_provisional_trace() -> None:
    fig = daily_trend(_days(8), title="t", y_title="y")
    assert [trace.name for trace in fig.data] == ["daily value", "7-day average"]


def test_daily_trend_events_in_range_only() -> None:
    events = _events(
        [
            (datetime(2024, 6, 20, 9), None, "holiday", "Before the data"),
            (datetime(2024, 7, 3, 9), None, "outage", "Login outage"),
            (datetime(2024, 7, 3, 18), None, "policy_change", "New policy"),
            (datetime(2024, 7, 5, 8), datetime(2024, 7, 5, 20), "product_launch", "Short launch"),
            (datetime(2024, 7, 20), None, "holiday", "After the data"),
        ]
    )
    fig = daily_trend(_days(10), events, title="t", y_title="y")
    markers = _trace(fig, "known events")
    assert list(markers.x) == [date(2024, 7, 3), date(2024, 7, 5)]
    assert "Login outage" in markers.hovertext[0] and "New policy" in markers.hovertext[0]
    assert "Short launch" in markers.hovertext[1]
    assert not any("the data" in text for text in markers.hovertext)
    assert markers.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert _lines(fig) == [date(2024, 7, 3), date(2024, 7, 5)]
    assert all(shape.line.dash == "dot" for shape in fig.layout.shapes)


def test_daily_trend_long_event_is_a_span_clipped_to_the_data() -> None:
    events = _events([(datetime(2024, 6, 25), datetime(2024, 7, 4, 12), "outage", "Long outage")])
    fig = daily_trend(_days(10), events, title="t", y_title="y")
    [span] = fig.layout.shapes
    assert span.type == "rect"
    assert span.x0 == datetime(2024, 6, 30, 12)  # left edge of the first bar, not June 25
    assert span.x1 == datetime(2024, 7, 4, 12)  # right edge of the July 4 bar
    assert list(_trace(fig, "known events").x) == [JUL1]


def test_daily_trend_all_events_outside_range_adds_nothing() -> None:
    events = _events([(datetime(2023, 1, 1), datetime(2023, 1, 9), "holiday", "Old")])
    fig = daily_trend(_days(8), events, title="t", y_title="y")
    assert [trace.name for trace in fig.data] == ["daily value", "7-day average"]
    assert not fig.layout.shapes


def test_event_title_is_escaped() -> None:
    events = _events([(datetime(2024, 7, 2), None, "other", "<script>x</script>")])
    markers = _trace(daily_trend(_days(3), events, title="t", y_title="y"), "known events")
    assert "<script>" not in markers.hovertext[0]
    assert "&lt;script&gt;" in markers.hovertext[0]


# --- weekly_trend -----------------------------------------------------------------------------


def test_weekly_trend_unfinished_week_is_a_projection_not_a_bar() -> None:
    frame = _weeks(3, provisional_tail=1).with_columns(
        pl.Series("value", [0.1, 0.25, 0.02]),
        projected=pl.Series([None, None, 0.3]),
        low=pl.Series([None, None, 0.2]),
        high=pl.Series([None, None, 0.45]),
    )
    fig = weekly_trend(frame, title="t", y_title="Share", unit="percent")
    assert [trace.name for trace in fig.data] == ["weekly value", "projected (link)", "projected"]
    line, _, projected = fig.data
    assert not any(isinstance(trace, go.Bar) for trace in fig.data)
    assert line.mode == "lines+markers" and list(line.customdata) == ["10.0%", "25.0%"]
    assert list(line.x) == [JUL1, JUL1 + timedelta(weeks=1)]  # the 2% so far is not drawn
    assert list(projected.y) == [0.3]
    assert projected.error_y.array[0] == pytest.approx(0.15)
    assert projected.error_y.arrayminus[0] == pytest.approx(0.1)
    assert list(projected.customdata) == ["projected 30.0% (range 20.0%–45.0%); so far 2.0%"]
    assert fig.layout.yaxis.tickformat == ".1~%"


def test_weekly_trend_complete_column_overrides_provisional() -> None:
    frame = _weeks(3, provisional_tail=1).with_columns(complete=pl.Series([True, True, True]))
    fig = weekly_trend(frame, title="t", y_title="y")
    assert [trace.name for trace in fig.data] == ["weekly value"]
    assert len(fig.data[0].x) == 3


def test_weekly_trend_places_events_on_their_week() -> None:
    events = _events(
        [
            (datetime(2024, 7, 10, 14), None, "outage", "Wednesday outage"),  # week of July 8
            (datetime(2024, 7, 28), None, "holiday", "Sunday before the data ends"),  # July 22
            (datetime(2024, 7, 29), None, "holiday", "Week after the data"),
            (datetime(2024, 6, 30), None, "holiday", "Sunday before the data"),
        ]
    )
    fig = weekly_trend(_weeks(4), events, title="t", y_title="y")
    markers = _trace(fig, "known events")
    assert list(markers.x) == [date(2024, 7, 8), date(2024, 7, 22)]
    assert _lines(fig) == [date(2024, 7, 8), date(2024, 7, 22)]


def test_weekly_trend_span_across_weeks_is_shaded() -> None:
    events = _events([(datetime(2024, 7, 3), datetime(2024, 7, 16), "policy_change", "Pilot")])
    fig = weekly_trend(_weeks(4), events, title="t", y_title="y")
    [span] = fig.layout.shapes
    assert span.type == "rect"
    assert (span.x0, span.x1) == (datetime(2024, 6, 27, 12), datetime(2024, 7, 18, 12))


# --- category_heatmap -------------------------------------------------------------------------


def test_category_heatmap_rows_by_total_largest_on_top() -> None:
    w1, w2 = JUL1, JUL1 + timedelta(weeks=1)
    frame = pl.DataFrame(
        {
            "week": [w2, w1, w1, w2, w1],
            "category": ["spam", "spam", "fake_review", "fake_review", "account_takeover"],
            "value": [1.0, 1.0, 5.0, 4.0, 3.0],
        }
    )
    fig = category_heatmap(frame, title="t")
    [heat] = fig.data
    assert isinstance(heat, go.Heatmap)
    assert list(heat.y) == ["Fake review", "Account takeover", "Spam"]
    assert fig.layout.yaxis.autorange == "reversed"  # so y[0] is drawn at the top
    assert list(heat.x) == [w1, w2]
    assert [list(row) for row in heat.z] == [[5.0, 4.0], [3.0, None], [1.0, 1.0]]
    assert heat.text[0][0] == "5" and heat.text[1][1] == "–"
    assert [list(stop) for stop in heat.colorscale] == [list(stop) for stop in SEQUENTIAL]


def test_category_heatmap_percent_hover() -> None:
    frame = pl.DataFrame({"week": [JUL1], "category": ["spam"], "value": [0.125]})
    heat = category_heatmap(frame, title="t", unit="percent").data[0]
    assert heat.text[0][0] == "12.5%"
    assert heat.colorbar.tickformat == ".1~%"


# --- rate_lines -------------------------------------------------------------------------------


def test_rate_lines_one_line_per_group_with_unfinished_weeks_projected() -> None:
    w = [JUL1 + timedelta(weeks=i) for i in range(3)]
    frame = pl.DataFrame(
        {
            "week": w + w,
            "severity": ["critical"] * 3 + ["low"] * 3,
            "value": [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
            "provisional": [False, False, True] * 2,
            "complete": [True, True, True, True, True, False],
            "projected": [None] * 5 + [0.12],
            "low": [None] * 5 + [0.1],
            "high": [None] * 5 + [0.15],
        }
    )
    fig = rate_lines(frame, title="t", y_title="Rate", group="severity")
    names = [trace.name for trace in fig.data]
    assert names == ["Critical", "Low", "Low – projected (link)", "Low – projected"]
    assert [trace.line.color for trace in fig.data[:2]] == list(PALETTE[:2])
    # Critical is complete enough in week 3 (its own completeness), Low is not: its 0% so
    # far is left out of the line and drawn as the projection.
    assert list(fig.data[0].customdata) == ["50.0%", "40.0%", "30.0%"]
    assert list(fig.data[1].customdata) == ["20.0%", "10.0%"]
    projected = fig.data[3]
    assert list(projected.y) == [0.12] and projected.marker.color == PALETTE[1]
    assert fig.layout.yaxis.tickformat == ".1~%"
    assert fig.layout.hovermode == "x unified"


def test_rate_lines_without_group_or_provisional_column() -> None:
    frame = pl.DataFrame({"week": [JUL1, JUL1 + timedelta(weeks=1)], "value": [3.0, 4.0]})
    fig = rate_lines(frame, title="t", y_title="Hours", unit="hours")
    [line] = fig.data
    assert line.marker.symbol == "circle"
    assert list(line.customdata) == ["3.0 h", "4.0 h"]
    assert fig.layout.yaxis.tickformat is None and fig.layout.yaxis.ticksuffix == " h"
    assert fig.layout.showlegend is False


def test_duration_lines_project_each_statistic_of_an_unfinished_week() -> None:
    frame = pl.DataFrame(
        {
            "week": [JUL1, JUL1 + timedelta(weeks=1)],
            "measure": ["Resolution"] * 2,
            "median_h": [60.0, 30.0],
            "p90_h": [250.0, 15.0],
            "complete": [True, False],
            "median_h_projected": [None, 62.0],
            "median_h_low": [None, 58.0],
            "median_h_high": [None, 65.0],
            "p90_h_projected": [None, 240.0],
            "p90_h_low": [None, 220.0],
            "p90_h_high": [None, 260.0],
        }
    )
    fig = duration_lines(frame, title="t")
    p90 = _trace(fig, "Resolution – p90")
    assert list(p90.y) == [250.0]  # the 15 h so far is not drawn as a real value
    projected = _trace(fig, "Resolution – p90 – projected")
    assert list(projected.y) == [240.0] and list(projected.error_y.array) == [20.0]
    assert list(_trace(fig, "Resolution – median – projected").y) == [62.0]


# --- backlog_bars -----------------------------------------------------------------------------


def test_backlog_bars_stack_in_age_order_with_darkening_colours() -> None:
    weeks = [date(2024, 7, 7), date(2024, 7, 14)]
    rows = [(week, bucket, 10 * i + 1) for week in weeks for i, bucket in enumerate(AGE_BUCKETS)]
    frame = pl.DataFrame(
        list(reversed(rows)),
        schema={"week_end": pl.Date, "age_bucket": pl.String, "open": pl.Int64},
        orient="row",
    )
    fig = backlog_bars(frame, title="Backlog")
    assert [trace.name for trace in fig.data] == list(AGE_BUCKETS)
    assert fig.layout.barmode == "stack"
    assert list(fig.data[0].x) == weeks
    assert list(fig.data[4].y) == [41, 41]
    colours = [trace.marker.color for trace in fig.data]
    assert len(set(colours)) == 5

    def lightness(colour: str) -> int:
        return sum(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    assert [lightness(c) for c in colours] == sorted((lightness(c) for c in colours), reverse=True)


def test_backlog_bars_reject_unknown_bucket() -> None:
    frame = pl.DataFrame({"week_end": [JUL1], "age_bucket": ["1-3 days"], "open": [1]})
    with pytest.raises(ValueError, match="unknown age bucket"):
        backlog_bars(frame, title="t")  # hyphen instead of the en dash


# --- duration_lines ---------------------------------------------------------------------------


def test_duration_lines_median_solid_p90_dashed_same_colour() -> None:
    w = [JUL1, JUL1 + timedelta(weeks=1)]
    frame = pl.DataFrame(
        {
            "week": w + w,
            "measure": ["First response"] * 2 + ["Resolution"] * 2,
            "median_h": [2.0, 3.0, 30.0, 40.0],
            "p90_h": [8.0, 9.0, 100.0, 120.0],
        }
    )
    fig = duration_lines(frame, title="t")
    assert [trace.name for trace in fig.data] == [
        "First response – median",
        "First response – p90",
        "Resolution – median",
        "Resolution – p90",
    ]
    assert [trace.line.dash for trace in fig.data] == ["solid", "dash"] * 2
    assert [trace.line.color for trace in fig.data] == [PALETTE[0]] * 2 + [PALETTE[1]] * 2
    assert list(fig.data[3].customdata) == ["4.2 d", "5.0 d"]
    assert list(fig.data[0].customdata) == ["2.0 h", "3.0 h"]
    assert fig.layout.yaxis.title.text == "Hours"


# --- prevalence_bars --------------------------------------------------------------------------


def test_prevalence_bars_sorted_highlighted_with_previous_week() -> None:
    frame = pl.DataFrame(
        {
            "category": ["spam", "fake_review", "harassment", "impersonation"],
            "exposure": ["messages", "reviews", "messages", "active accounts"],
            "per_1000": [1.5, 4.0, 0.2, 2.25],
            "prev_per_1000": [1.4, 2.0, None, 2.0],
            "significant": [False, True, False, False],
        }
    )
    fig = prevalence_bars(frame, title="t")
    assert list(fig.layout.yaxis.categoryarray) == [
        "Fake review",
        "Impersonation",
        "Spam",
        "Harassment",
    ]
    assert fig.layout.yaxis.autorange == "reversed"
    plain = _trace(fig, "not significant")
    flagged = _trace(fig, "significant change")
    previous = _trace(fig, "previous week")
    assert plain.orientation == flagged.orientation == "h"
    assert list(flagged.y) == ["Fake review"]
    assert flagged.marker.line.width == 1.5 and plain.marker.line.width is None
    assert flagged.marker.opacity is None and plain.marker.opacity < 1
    assert list(plain.customdata) == [
        "2.25 per 1,000 active accounts",
        "1.50 per 1,000 messages",
        "0.20 per 1,000 messages",
    ]
    assert list(previous.y) == ["Fake review", "Impersonation", "Spam"]  # no null marker
    assert list(previous.x) == [2.0, 2.0, 1.4]


def test_prevalence_bars_category_under_two_exposures_is_labelled_apart() -> None:
    frame = pl.DataFrame(
        {
            "category": ["spam", "spam"],
            "exposure": ["messages", "reviews"],
            "per_1000": [1.0, 2.0],
            "prev_per_1000": [None, None],
            "significant": [False, False],
        },
        schema_overrides={"prev_per_1000": pl.Float64},
    )
    fig = prevalence_bars(frame, title="t")
    assert list(fig.layout.yaxis.categoryarray) == ["Spam (reviews)", "Spam (messages)"]
    assert [trace.name for trace in fig.data] == ["not significant"]


# --- attribution_bars -------------------------------------------------------------------------


def test_attribution_bars_signed_colours_in_given_order() -> None:
    frame = pl.DataFrame(
        {"driver": ["region=CA", "category=spam", "platform=ios"], "delta": [-0.05, 0.125, 0.0]}
    )
    fig = attribution_bars(frame, title="t", label="driver", value="delta", unit="percent")
    [bars] = fig.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["region=CA", "category=spam", "platform=ios"]
    assert list(fig.layout.yaxis.categoryarray) == list(bars.y)
    assert fig.layout.yaxis.autorange == "reversed"  # first row at the top
    assert list(bars.marker.color)[:2] == ["#0072B2", "#D55E00"]
    assert bars.marker.color[2] not in ("#0072B2", "#D55E00")
    assert list(bars.customdata) == ["-5.0%", "+12.5%", "0.0%"]


def test_weekly_trend_shades_the_week_under_review() -> None:
    weekly = pl.DataFrame(
        {
            "week": [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)],
            "value": [3.0, 4.0, 5.0],
            "provisional": [False, False, False],
        }
    )
    plain = trend_charts.weekly_trend(weekly, title="t", y_title="y")
    focused = trend_charts.weekly_trend(weekly, title="t", y_title="y", focus=date(2026, 11, 9))
    elsewhere = trend_charts.weekly_trend(weekly, title="t", y_title="y", focus=date(2026, 1, 5))
    assert len(plain.layout.shapes) == len(elsewhere.layout.shapes)
    added = [s for s in focused.layout.shapes if s not in plain.layout.shapes]
    assert len(added) == 1
    assert str(added[0].x0).startswith("2026-11-05") and str(added[0].x1).startswith("2026-11-12")


def test_anomaly_band_marks_only_flagged_points_and_fills_the_band() -> None:
    series = pl.DataFrame(
        {
            "ts": [datetime(2026, 1, d) for d in (1, 2, 3)],
            "value": [3.0, 12.0, 4.0],
            "expected": [3.0, 3.0, 3.5],
            "lower": [0.0, None, 0.0],
            "upper": [7.0, None, 8.0],
            "is_anomaly": [False, True, False],
        }
    )
    fig = detector_charts.anomaly_band(series, title="t")
    band, _, values, flagged = fig.data
    assert band.fill == "toself" and len(band.x) == 4  # two points with a band, there and back
    assert [float(v) for v in flagged.y] == [12.0]
    assert len(values.y) == 3
    empty = detector_charts.anomaly_band(series.clear(), title="t")
    assert empty.layout.annotations[0].text == NO_DATA


def test_known_events_are_labelled_and_this_week_sits_clear_of_them() -> None:
    """An event marker carries its short title (the whole title on hover), neighbours on
    different lines, a label near the right edge to the left of its marker; the "this
    week" label sits at the foot of the chart, the event markers at its top."""
    events = _events(
        [
            (datetime(2024, 7, 10, 14), None, "outage", "Payments outage across regions"),
            (datetime(2024, 7, 16), None, "holiday", "Fair"),
            (datetime(2024, 7, 23), None, "holiday", "Late"),
        ]
    )
    fig = weekly_trend(_weeks(4), events, title="t", y_title="y", focus=date(2024, 7, 8))
    markers = _trace(fig, "known events")
    assert markers.mode == "markers+text"
    assert list(markers.text) == ["Payments outage…", "Fair", "Late"]  # cut after a whole word
    assert "Payments outage across regions" in markers.hovertext[0]
    assert list(markers.textposition) == ["middle right", "bottom right", "middle left"]
    assert set(markers.y) == {0.97}
    [this_week] = [a for a in fig.layout.annotations if a.text == "this week"]
    assert (this_week.y, this_week.yanchor) == (0, "bottom")
