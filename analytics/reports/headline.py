"""The brief's Headline and Top movers sections: this week against the last and the 4-week mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD, TOTAL_LABEL
from analytics.core.calendar import WEEK, iso_week
from analytics.metrics.movers import top_movers
from analytics.metrics.stats import ALPHA, poisson_test
from analytics.metrics.weekly import WeeklyView
from analytics.present import trend_charts
from analytics.present.formatting import (
    describe_change,
    describe_test,
    format_change,
    format_count,
    format_mean,
    format_moment,
    format_p,
    format_relative,
    format_value,
    humanised,
    significance,
)
from analytics.reports.disclosure import mark_hidden
from analytics.reports.model import TABLE_ROWS, Section, Table
from analytics.reports.story import WeekStory
from analytics.sources.frames import Cube

__all__ = [
    "headline_section",
    "kpi_sentence",
    "movers_section",
    "product_headline_section",
    "product_movers_section",
]

_MOVER_SENTENCES = 5

# Columns of the KPI tables: numbers already written in their units.
_FIGURES = dict.fromkeys(
    ("This week", "Previous week", "Change", "p (previous)", "4-week mean", "p (4 weeks)"),
    "figure",
)


def headline_section(view: WeeklyView, story: WeekStory | None = None) -> Section:
    """The leadership Headline: the week's ``story`` first (the things that need attention,
    most important first: the same sentences in the same order as the Overview page,
    :mod:`analytics.reports.story`), then every KPI against the previous week and the
    4-week mean, the significant changes in words, and the weekly and daily trend charts."""
    label = iso_week(view.week)
    rows = view.kpis.to_dicts()
    sentences = list(story.sentences) if story is not None else _provisional(view, label)
    sentences.append(kpi_sentence(rows[0], baseline=True))
    moved = [r for r in rows[1:] if r["significant"] or r["significant_baseline"]]
    sentences += [kpi_sentence(r, baseline=True) for r in moved]
    if not moved:
        sentences.append(
            f"No other KPI changed significantly against the previous week or the 4-week "
            f"mean ({len(rows) - 1} tested, significance level {ALPHA})."
        )
    partial = [r for r in rows if r["completeness"] is not None and r["completeness"] < 0.9]
    if partial:
        sentences.append(
            "Still moving: "
            + ", ".join(f"{r['label'].lower()} sees {r['completeness']:.0%}" for r in partial)
            + " of the week's cases so far."
        )
    table = Table("Headline KPIs", _kpi_frame(rows), _FIGURES)
    figures = (
        trend_charts.weekly_trend(
            view.series("new_cases"),
            view.annotations,
            title="New cases per week",
            y_title="new cases",
            focus=view.week,
        ),
        trend_charts.daily_trend(
            view.daily.filter(pl.col("day") >= view.week - 4 * WEEK),
            view.annotations,
            title="New cases per day",
            y_title="new cases",
        ),
    )
    return Section("headline", "Headline", tuple(sentences), (table,), figures)


def _provisional(view: WeeklyView, label: str) -> list[str]:
    if bool(view.kpis["provisional"].any()) and view.as_of is not None:
        return [
            f"{label} is still in progress (data up to {format_moment(view.as_of)}): its numbers "
            "are provisional."
        ]
    return []


def kpi_sentence(row: Mapping[str, Any], *, baseline: bool) -> str:
    """A KPI row of :attr:`analytics.metrics.weekly.WeeklyView.kpis` in words: its value,
    its change on the previous week with the test and, with ``baseline``, the 4-week mean
    with its test."""
    unit = str(row["unit"])
    text = f"{row['label']}: {format_value(row['value'], unit)}"
    if row["previous"] is not None:
        text += (
            f", {describe_change(row['value'], row['previous'], unit)} on the previous week's "
            f"{format_value(row['previous'], unit)} ({describe_test(row['p_previous'])})"
        )
    if baseline and row["baseline"] is not None:
        text += (
            f"; 4-week mean {format_value(row['baseline'], unit)} "
            f"({describe_test(row['p_baseline'])})"
        )
    return text + "."


def _kpi_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    def verdict(row: Mapping[str, Any]) -> str:
        flags = [row["significant"], row["significant_baseline"]]
        return {
            (True, True): "both",
            (True, False): "vs previous",
            (False, True): "vs 4-week mean",
        }.get((bool(flags[0]), bool(flags[1])), "no")

    return pl.DataFrame(
        {
            "Metric": [r["label"] for r in rows],
            "This week": [format_value(r["value"], r["unit"]) for r in rows],
            "Previous week": [format_value(r["previous"], r["unit"]) for r in rows],
            "Change": [format_change(r["value"], r["previous"], r["unit"]) for r in rows],
            "p (previous)": [format_p(r["p_previous"]) for r in rows],
            "4-week mean": [format_value(r["baseline"], r["unit"]) for r in rows],
            "p (4 weeks)": [format_p(r["p_baseline"]) for r in rows],
            "Significant": [verdict(r) for r in rows],
        }
    )


def product_headline_section(
    view: WeeklyView,
    table: pl.DataFrame,
    totals: pl.DataFrame,
    *,
    story: Sequence[str],
    chart: go.Figure,
) -> Section:
    """The product headline: the week's new cases (shown when at least the threshold),
    then ``story``, what changed on the product surfaces and what to consider fixing,
    most significant first (:func:`analytics.reports.surfaces.surface_headline`); the
    weekly totals and ``chart`` (the surfaces' rates). Significance in words only; no
    table of its own (each surface's section has one)."""
    label = iso_week(view.week)
    total = table.filter(pl.col("category") == TOTAL_LABEL).row(0, named=True)
    sentences = _provisional(view, label)
    sentences.append(_total_sentence(total))
    sentences += story
    provisional = view.weekly.filter(pl.col("provisional"))["week"].implode()
    series = totals.select(
        "week",
        pl.col("cases").cast(pl.Float64).alias("value"),
        provisional=pl.col("week").is_in(provisional),
    )
    figure = trend_charts.weekly_trend(
        series,
        view.annotations,
        title="New cases per week (hidden below 10)",
        y_title="new cases",
        focus=view.week,
    )
    return Section("headline", "Headline", tuple(sentences), (), (figure, chart))


def _total_sentence(total: Mapping[str, Any]) -> str:
    """The week's new cases against the previous week and the 4-week mean (shown totals).

    >>> _total_sentence({"this": 120, "previous": 100, "mean_4w": 95.5})[:51]
    "New cases: 120, up 20.0% on the previous week's 100"
    >>> _total_sentence({"this": None, "previous": 12, "mean_4w": None})
    'New cases: hidden (fewer than 10); the previous week 12.'
    """
    this, prev, mean = total["this"], total["previous"], total["mean_4w"]
    if this is None:
        text = f"New cases: {SUPPRESSED_TEXT} (fewer than {SUPPRESSION_THRESHOLD})"
        if prev is not None:
            text += f"; the previous week {format_count(prev)}"
        return text + "."
    text = f"New cases: {format_count(this)}"
    if prev is not None:
        text += (
            f", {describe_change(this, prev, 'count')} on the previous week's {format_count(prev)} "
            f"({significance(_count_p(this, prev))})"
        )
    if mean is not None:
        text += f"; 4-week mean {format_mean(mean)}"
    return text + "."


def _count_p(this: float | None, prev: float | None) -> float | None:
    if this is None or prev is None:
        return None
    return float(poisson_test([this], [1], [prev], [1])[0])


def movers_section(view: WeeklyView, cube: Cube) -> Section:
    """The leadership Top movers: every slice one or two dimensions deep against the
    previous week and the 4-week mean, with q-values across slices."""
    four = top_movers(cube, week=view.week, baseline="4w")
    table = _mover_table(view.movers, four)
    significant = table.filter(pl.col("significant"))
    tested = four.height
    sentences = [
        f"{tested:,} slices, one or two dimensions deep, tested against the previous week "
        "and the 4-week mean; q-values control false discoveries across slices."
    ]
    if significant.is_empty():
        best = table.sort("best_q").row(0, named=True) if table.height else None
        if best is not None:
            sentences.append(
                f"No slice changed significantly; the smallest q-value was "
                f"{format_p(best['best_q'])} ({best['slice']}: "
                f"{format_count(best['current'])} against "
                f"{format_count(best['previous'])} the previous week and a 4-week mean of "
                f"{format_mean(best['mean_4w'])})."
            )
        shown = table.sort(pl.col("abs_4w").abs(), descending=True).head(5)
        title = "Largest changes (none significant)"
    else:
        sentences += [_mover_sentence(r) for r in significant.head(_MOVER_SENTENCES).to_dicts()]
        if significant.height > _MOVER_SENTENCES:
            sentences.append(
                f"{significant.height - _MOVER_SENTENCES} more significant slices are in the table."
            )
        shown = significant.head(TABLE_ROWS)
        title = "Significant movers"
    frame = _mover_columns(shown, pl.col("slice").alias("Slice"), "current")
    formats = {"This week": "count", "Previous week": "count", **_MOVER_FORMATS}
    figure = trend_charts.category_heatmap(view.categories, title="New cases by category and week")
    return Section(
        "movers", "Top movers", tuple(sentences), (Table(title, frame, formats),), (figure,)
    )


_MOVER_FORMATS = {
    "Change vs previous": "rel",
    "Change vs 4-week mean": "rel",
    "q (previous)": "p",
    "q (4 weeks)": "p",
}


def _mover_columns(table: pl.DataFrame, label: pl.Expr, current: str) -> pl.DataFrame:
    """The movers table as shown: a label, this week against the previous one and the
    4-week mean, each change with its q-value."""
    return table.select(
        label,
        pl.col(current).alias("This week"),
        pl.col("previous").alias("Previous week"),
        pl.col("rel_prev").alias("Change vs previous"),
        pl.col("q_prev").alias("q (previous)"),
        pl.col("mean_4w").alias("4-week mean"),
        pl.col("rel_4w").alias("Change vs 4-week mean"),
        pl.col("q_4w").alias("q (4 weeks)"),
    )


def _mover_table(previous: pl.DataFrame, four: pl.DataFrame) -> pl.DataFrame:
    """Each slice against the previous week and the 4-week mean, significant first.

    >>> cols = ["slice", "current", "expected", "abs_change", "rel_change", "q_value",
    ...         "significant"]
    >>> prev = pl.DataFrame([("a", 30.0, 10.0, 20.0, 2.0, 0.01, True)], schema=cols,
    ...                     orient="row")
    >>> four = pl.DataFrame([("a", 30.0, 12.0, 18.0, 1.5, 0.02, True),
    ...                      ("b", 5.0, 4.0, 1.0, 0.25, 0.9, False)], schema=cols, orient="row")
    >>> _mover_table(prev, four).select("slice", "previous", "mean_4w", "significant").rows()
    [('a', 10.0, 12.0, True), ('b', 0.0, 4.0, False)]
    """
    before = previous.select(
        "slice",
        previous="expected",
        rel_prev="rel_change",
        q_prev="q_value",
        sig_prev="significant",
    )
    return (
        four.select(
            "slice",
            "current",
            mean_4w="expected",
            abs_4w="abs_change",
            rel_4w="rel_change",
            q_4w="q_value",
            sig_4w="significant",
        )
        .join(before, on="slice", how="left")
        .with_columns(
            pl.col("previous").fill_null(0.0),
            pl.col("sig_prev").fill_null(False),
            significant=pl.col("sig_4w") | pl.col("sig_prev").fill_null(False),
            best_q=pl.min_horizontal("q_4w", "q_prev"),
        )
        .sort(["significant", "best_q", "slice"], descending=[True, False, False])
    )


def _mover_sentence(row: Mapping[str, Any]) -> str:
    return (
        f"{row['slice']}: {format_count(row['current'])} cases against a 4-week mean of "
        f"{format_mean(row['mean_4w'])} ({format_relative(row['rel_4w'])}, "
        f"{describe_test(row['q_4w'], 'q')}) and {format_count(row['previous'])} the previous "
        f"week ({format_relative(row['rel_prev'])}, "
        f"{describe_test(row['q_prev'], 'q')})."
    )


def product_movers_section(table: pl.DataFrame, cells: pl.DataFrame) -> Section:
    """All categories for product: the protected category table
    (:func:`analytics.reports.disclosure.category_table`) as counts, and the category
    heatmap with hidden cells marked. The tests are the surfaces' (rates per exposure,
    :mod:`analytics.reports.surfaces`): a second verdict on counts would contradict them
    whenever exposure moved."""
    is_total = pl.col("category") == TOTAL_LABEL
    table = table.with_columns(
        rel_prev=pl.col("this") / pl.col("previous") - 1,
        rel_4w=pl.col("this") / pl.col("mean_4w") - 1,
    )
    rows = table.filter(~is_total)
    sentences = [
        f"{rows['this'].count()} of {rows.height} categories are shown this week; the others "
        f"read {SUPPRESSED_TEXT}: fewer than {SUPPRESSION_THRESHOLD} cases, or hidden with "
        "them so that no small count can be worked out from the total. Changes here are of "
        "counts; the surface sections above test rates per exposure."
    ]
    frame = table.select(
        humanised(pl.col("category")).alias("Category"),
        pl.col("this").alias("This week"),
        pl.col("previous").alias("Previous week"),
        pl.col("rel_prev").alias("Change vs previous"),
        pl.col("mean_4w").alias("4-week mean"),
        pl.col("rel_4w").alias("Change vs 4-week mean"),
    )
    heat = cells.select("week", "category", pl.col("cases").cast(pl.Float64).alias("value"))
    figure = mark_hidden(
        trend_charts.category_heatmap(
            heat, title="New cases by category and week (hidden below 10)"
        )
    )
    table_obj = Table(
        "Cases by category",
        frame,
        {"Change vs previous": "rel", "Change vs 4-week mean": "rel"},
        suppressed=("This week", "Previous week", "4-week mean"),
        note=f"Cells below {SUPPRESSION_THRESHOLD}, and the smallest others needed to protect "
        f"them, read {SUPPRESSED_TEXT}; each week is suppressed from its own counts, the same "
        "in every brief. The 4-week mean only when all four weeks are shown.",
    )
    return Section("movers", "All categories", tuple(sentences), (table_obj,), (figure,))
