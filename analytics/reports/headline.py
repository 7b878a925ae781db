"""The brief's Headline and Top movers sections: this week against the last and the 4-week mean."""

from __future__ import annotations

from collections.abc import Mapping
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
    format_change,
    format_count,
    format_mean,
    format_moment,
    format_relative,
    format_slice,
    format_value,
    humanised,
    significance,
    significance_note,
    sliced,
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
    table = Table("Headline KPIs", _kpi_frame(rows), _FIGURES, hover={"Significance": "Tests"})
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
    its change on the previous week with the test's verdict and, with ``baseline``, the
    4-week mean with its verdict (the p-values are in the KPI table, on hover).

    >>> row = {"label": "New cases", "unit": "count", "value": 120, "previous": 100,
    ...        "p_previous": 0.04, "baseline": 118.0, "p_baseline": 0.8}
    >>> first, second = kpi_sentence(row, baseline=True).split("; ")
    >>> first
    "New cases: 120, up 20.0% on the previous week's 100 (significant)"
    >>> second
    '4-week mean 118 (not significant).'
    """
    unit = str(row["unit"])
    text = f"{row['label']}: {format_value(row['value'], unit)}"
    if row["previous"] is not None:
        text += (
            f", {describe_change(row['value'], row['previous'], unit)} on the previous week's "
            f"{format_value(row['previous'], unit)} ({significance(row['p_previous'])})"
        )
    if baseline and row["baseline"] is not None:
        text += (
            f"; 4-week mean {format_value(row['baseline'], unit)} "
            f"({significance(row['p_baseline'])})"
        )
    return text + "."


def _kpi_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The KPI table: values and changes, the verdict in words (``Significance``) and the
    p-values behind it (``Tests``, shown on hover)."""
    verdicts = [
        _verdict(r["significant"], r["significant_baseline"], r["p_previous"], r["p_baseline"])
        for r in rows
    ]
    tests = [
        _tests(significance_note(r["p_previous"]), significance_note(r["p_baseline"])) for r in rows
    ]
    return pl.DataFrame(
        {
            "Metric": [r["label"] for r in rows],
            "This week": [format_value(r["value"], r["unit"]) for r in rows],
            "Previous week": [format_value(r["previous"], r["unit"]) for r in rows],
            "Change": [format_change(r["value"], r["previous"], r["unit"]) for r in rows],
            "4-week mean": [format_value(r["baseline"], r["unit"]) for r in rows],
            "Significance": verdicts,
            "Tests": tests,
        }
    )


def _verdict(previous: object, baseline: object, *p: float | None) -> str:
    """A row's verdict in words: against which comparison it is significant.

    >>> _verdict(True, False, 0.01, 0.2), _verdict(False, False, 0.3, 0.2)
    ('significant (vs previous)', 'not significant')
    >>> _verdict(False, False, None, None)
    'not tested'
    """
    if all(v is None for v in p):
        return "not tested"
    return {
        (True, True): "significant (both)",
        (True, False): "significant (vs previous)",
        (False, True): "significant (vs 4-week mean)",
    }.get((bool(previous), bool(baseline)), "not significant")


def _tests(previous: str, baseline: str) -> str:
    """The numbers behind a verdict, for hover text.

    >>> _tests("q = 0.400", "q < 0.001")
    'q = 0.400 against the previous week; q < 0.001 against the 4-week mean'
    """
    return f"{previous} against the previous week; {baseline} against the 4-week mean"


def product_headline_section(
    view: WeeklyView,
    table: pl.DataFrame,
    totals: pl.DataFrame,
    *,
    story: WeekStory,
    chart: go.Figure,
) -> Section:
    """The product headline: the week's ``story`` first (what changed on the product
    surfaces and what to consider fixing, most significant first: the same sentences in the
    same order as the product's Overview, :func:`analytics.reports.story.week_story`), then
    the week's new cases (shown when at least the threshold); the weekly totals and
    ``chart`` (the surfaces' rates). Significance in words only; no table of its own (each
    surface's section has one)."""
    label = iso_week(view.week)
    total = table.filter(pl.col("category") == TOTAL_LABEL).row(0, named=True)
    sentences = [*story.sentences, *_provisional(view, label), _total_sentence(total)]
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
                f"No slice changed significantly; the closest was {format_slice(best['slice'])}"
                f": {format_count(best['current'])} against "
                f"{format_count(best['previous'])} the previous week and a 4-week mean of "
                f"{format_mean(best['mean_4w'])}."
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
    frame = _mover_columns(shown, sliced(pl.col("slice")).alias("Slice"), "current")
    formats = {"This week": "count", "Previous week": "count", **_MOVER_FORMATS}
    figure = trend_charts.category_heatmap(view.categories, title="New cases by category and week")
    table_obj = Table(
        title,
        frame,
        formats,
        note="Exact Poisson tests; q-values control false discoveries across slices (in the "
        "HTML brief, hover a verdict for its q-values).",
        hover={"Significance": "Tests"},
    )
    return Section("movers", "Top movers", tuple(sentences), (table_obj,), (figure,))


_MOVER_FORMATS = {"Change vs previous": "rel", "Change vs 4-week mean": "rel"}


def _mover_columns(table: pl.DataFrame, label: pl.Expr, current: str) -> pl.DataFrame:
    """The movers table as shown: a label, this week against the previous one and the
    4-week mean, the verdict in words (``Significance``) and the q-values behind it
    (``Tests``, shown on hover)."""
    rows = table.select("q_prev", "q_4w").rows()
    return table.select(
        label,
        pl.col(current).alias("This week"),
        pl.col("previous").alias("Previous week"),
        pl.col("rel_prev").alias("Change vs previous"),
        pl.col("mean_4w").alias("4-week mean"),
        pl.col("rel_4w").alias("Change vs 4-week mean"),
        pl.Series(
            "Significance",
            [_verdict(_below(q0), _below(q4), q0, q4) for q0, q4 in rows],
            dtype=pl.String,
        ),
        pl.Series(
            "Tests",
            [_tests(significance_note(q0, "q"), significance_note(q4, "q")) for q0, q4 in rows],
            dtype=pl.String,
        ),
    )


def _below(q: float | None) -> bool:
    return q is not None and q < ALPHA


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
    """A significant mover in words, its slice as words and each change's verdict (the
    q-values are in the table, on hover).

    >>> first, second = _mover_sentence(
    ...     {"slice": "category=other · severity=high", "current": 40.0, "mean_4w": 20.0,
    ...      "rel_4w": 1.0, "q_4w": 0.001, "previous": 30.0, "rel_prev": 0.333, "q_prev": 0.2}
    ... ).split(" and ")
    >>> first
    'Other · High: 40 cases against a 4-week mean of 20.0 (+100.0%, significant)'
    >>> second
    '30 the previous week (+33.3%, not significant).'
    """
    return (
        f"{format_slice(row['slice'])}: {format_count(row['current'])} cases against a 4-week "
        f"mean of {format_mean(row['mean_4w'])} ({format_relative(row['rel_4w'])}, "
        f"{significance(row['q_4w'])}) and {format_count(row['previous'])} the previous "
        f"week ({format_relative(row['rel_prev'])}, {significance(row['q_prev'])})."
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
