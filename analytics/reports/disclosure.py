"""What the product brief may disclose: its protected counts, rates and topics.

The product brief is for people outside T&S and carries aggregates only, under one
guarantee: **no combination of product outputs reveals a count below**
:data:`~analytics.access.suppression.SUPPRESSION_THRESHOLD`. A product user can ask for
any week, set any filter on the page or in a URL, open the Overview, and compare as many
briefs as they like; the old brief honoured filters and hid small cells one brief at a
time, so subtracting a filtered brief from the unfiltered one gave the hidden cells back
exactly (issue 14). The mechanism:

1. *No free filters.* The product brief always covers the whole platform; filters given
   for it are ignored and named in :attr:`analytics.reports.model.Brief.ignored_filters`
   (the page says so; :func:`analytics.reports.build.build_brief` does it). Each week
   therefore has exactly one product brief, and there is nothing to subtract it from.
2. *One fixed table of counts* (:func:`category_table`): new cases per category and
   week, with the week's exact total
   (:data:`~analytics.access.suppression.TOTAL_LABEL`). No second breakdown (platform,
   region...) shares that total: two margins of one table could be played against each
   other.
3. *Primary and complementary suppression*
   (:func:`analytics.access.suppression.suppress`): the cells below the threshold are
   hidden, then the smallest shown cells too until at least two are hidden and the
   hidden cells add up to at least the threshold, so the total minus the shown cells
   bounds no hidden cell below the threshold. Every hidden cell reads
   :data:`~analytics.access.suppression.SUPPRESSED_TEXT`, small or not, so the marker
   says nothing about its size. A total below the threshold is hidden with all its cells.
4. *Decided per (week, cell) from that week's data only* (:func:`protect_weeks`), so
   every brief showing a week (as this week, previous week, in the 4-week mean, in the
   charts) shows it the same way, and everything derived (changes, means, tests,
   sentences) is computed from shown numbers only.
5. *Sums of shown cells only* (:func:`protect_sums`): a group of categories (a product
   surface, :mod:`analytics.reports.surfaces`) is counted only when every category in it
   is shown that week, so its count, and its rate per 1,000 exposures (exposures are
   known elsewhere, so a rate is a count), add nothing to the category table; a slice
   (platform, region) of a category is only ever *named*, never counted, and only when it
   holds most of the category's cases and the rest at least the threshold (:func:`top_slice`).
6. *Everything else carries no count below the threshold and no exact sub-count whose
   complement is shown*: rates only where the counts on both sides of them are at least
   the threshold in both weeks (:func:`product_rates`, :data:`BREACH_RATE_SHOWN`; so
   neither count they could give back is small); medians only over at least that many
   cases; the backlog at the week's end only (:func:`product_backlog`: the week before,
   seen through a later brief's window, would differ from its own brief's); topic counts
   only while the week's total minus the shown ones stays at or above the threshold
   (:func:`protect_topics`); ring sizes suppressed; anomalies by score and shares of the
   change, never counts; rates per exposure only with their shown counts (point 5: with
   the exposures known elsewhere, a rate gives its count back).

Noise calibrated to a privacy budget was the alternative; it was not chosen because
product teams read these counts as exact and compare weeks, and a fixed table with
complementary suppression gives the guarantee exactly, which ``tests/test_differencing.py``
checks with the attack itself: every number of every product brief of every week as
linear equations over the true category-week counts, and for each small true count the
least and greatest values a linear program finds consistent with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from analytics.access.suppression import (
    SUPPRESSED_TEXT,
    SUPPRESSION_THRESHOLD,
    TOTAL_LABEL,
    suppress,
)
from analytics.core import taxonomy
from analytics.core.calendar import WEEK
from analytics.metrics import trends
from analytics.metrics.kpis import KPIS
from analytics.metrics.stats import fdr, poisson_test
from analytics.metrics.weekly import WeeklyView
from analytics.present.formatting import format_count, format_day
from analytics.sources.frames import Cube

__all__ = [
    "BREACH_RATE_SHOWN",
    "category_grid",
    "category_table",
    "count_or_hidden",
    "mark_hidden",
    "product_backlog",
    "product_backlog_sentence",
    "product_rates",
    "protect_sums",
    "protect_topics",
    "protect_weeks",
    "top_slice",
]

# Rates the product brief may show (prevalence would give back the true total of cases).
_PRODUCT_RATES = (
    "proactive_rate",
    "action_rate",
    "precision",
    "ttfr_median_h",
    "ttr_median_h",
    "sla_breach_rate",
    "overturn_rate",
    "repeat_rate",
)
_DURATION_SAMPLE = {"ttfr_median_h": "responded", "ttr_median_h": "resolved"}


#: A breach rate the product brief may show: at least the threshold of cases on both sides.
BREACH_RATE_SHOWN = (pl.col("breached") >= SUPPRESSION_THRESHOLD) & (
    pl.col("due") - pl.col("breached") >= SUPPRESSION_THRESHOLD
)


def protect_weeks(cells: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each week's category table suppressed on its own (:func:`suppress` with its
    total): the cells (``week``, ``category``, ``cases``, null when hidden) and the
    totals (``week``, ``cases``, null below the threshold).

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w] * 3, "category": ["spam", "other", "fraud"],
    ...                       "cases": [120, 4, 35]})
    >>> shown, totals = protect_weeks(cells)
    >>> shown.select("category", "cases").rows(), totals["cases"].to_list()
    ([('fraud', None), ('other', None), ('spam', 120)], [159])
    """
    parts, totals = [], []
    for (week,), part in cells.sort("week", "category").group_by("week", maintain_order=True):
        out = suppress(part.select("category", "cases"), ["cases"], label="category")
        parts.append(out.head(part.height).with_columns(week=pl.lit(week, dtype=pl.Date)))
        totals.append((week, out["cases"][-1]))
    schema = {"week": pl.Date, "cases": pl.Int64}
    if not parts:
        return pl.DataFrame(schema={"week": pl.Date, "category": pl.String, **schema}), (
            pl.DataFrame(schema=schema)
        )
    return (
        pl.concat(parts).select("week", "category", "cases"),
        pl.DataFrame(totals, schema=schema, orient="row"),
    )


def protect_sums(cells: pl.DataFrame, groups: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """Each group's weekly count as the sum of its categories' shown cells, null (hidden)
    when any of them is hidden that week: ``week``, ``group``, ``cases``.

    ``cells`` come from :func:`protect_weeks`. A group's count is then a sum of numbers
    already shown, and whether it is hidden follows from which cells are: it tells an
    attacker nothing the category table did not (a group with a hidden cell, added to the
    others and subtracted from the total, would give back that cell's sum).

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w] * 3, "category": ["spam", "harassment", "other"],
    ...                       "cases": [40, 25, None]})
    >>> groups = {"messaging": ["spam", "harassment"], "elsewhere": ["other"]}
    >>> protect_sums(cells, groups).rows()
    [(datetime.date(2026, 3, 30), 'elsewhere', None), (datetime.date(2026, 3, 30), 'messaging', 65)]
    """
    mapping = pl.DataFrame(
        [(c, g) for g, members in groups.items() for c in members],
        schema={"category": pl.String, "group": pl.String},
        orient="row",
    )
    return (
        cells.join(mapping, on="category")
        .group_by("week", "group")
        .agg(
            cases=pl.when(pl.col("cases").null_count() == 0)
            .then(pl.col("cases").sum())
            .cast(pl.Int64)
        )
        .sort("week", "group")
    )


def top_slice(counts: pl.DataFrame, column: str) -> str | None:
    """The value of ``column`` (platform, region...) holding most of the cases, or None.

    ``counts`` has ``column`` and ``cases`` (one category in one week). A value is named
    only when it holds more than half of the cases and the other values together at least
    :data:`~analytics.access.suppression.SUPPRESSION_THRESHOLD` (so it holds more than
    that too). Only the name is published, never a count or a share; what the name tells
    (the others together are fewer than it and at least the threshold) bounds no other
    value, and not the rest, below the threshold.

    >>> counts = pl.DataFrame({"platform": ["web", "ios", "android"], "cases": [30, 8, 6]})
    >>> top_slice(counts, "platform")
    'web'
    >>> top_slice(counts.with_columns(pl.col("cases") // 2), "platform") is None  # 15, 4+3
    True
    >>> top_slice(pl.DataFrame({"platform": ["web", "ios"], "cases": [20, 20]}), "platform")
    """
    if counts.is_empty():
        return None
    ranked = counts.sort("cases", column, descending=[True, False])
    top = int(ranked["cases"][0])
    rest = int(ranked["cases"].sum()) - top
    if top <= rest or rest < SUPPRESSION_THRESHOLD:
        return None
    return str(ranked[column][0])


def category_grid(view: WeeklyView) -> pl.DataFrame:
    """New cases per week and category, every category of every week (zeros included):
    ``week``, ``category``, ``cases``."""
    weeks = view.weekly.select("week").unique()
    names = list(taxonomy.active().category_names)
    grid = weeks.join(
        pl.DataFrame({"category": names}, schema={"category": pl.String}), how="cross"
    )
    counts = view.categories.select(
        "week", pl.col("category").cast(pl.String), pl.col("value").cast(pl.Int64).alias("cases")
    )
    return (
        grid.join(counts, on=["week", "category"], how="left")
        .with_columns(pl.col("cases").fill_null(0))
        .sort("week", "category")
    )


def category_table(cells: pl.DataFrame, totals: pl.DataFrame, week: date) -> pl.DataFrame:
    """The product's category table, every number a function of shown numbers only.

    ``cells`` and ``totals`` come from :func:`protect_weeks` (each week suppressed on
    its own). Columns: ``category``, ``this``, ``previous``, ``mean_4w`` (only when all
    four weeks are shown), ``p_prev``/``q_prev`` and ``p_4w``/``q_4w`` (exact Poisson
    tests of the shown numbers, Benjamini-Hochberg across categories), then a
    :data:`TOTAL_LABEL` row with the weeks' totals (null where hidden).

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w - WEEK * k for k in range(5)] * 2,
    ...     "category": ["spam"] * 5 + ["other"] * 5,
    ...     "cases": [40, 12, 11, 10, 13, None, 20, 25, 30, 22]})
    >>> totals = pl.DataFrame({"week": [w - WEEK * k for k in range(5)],
    ...     "cases": [44, 32, 36, 40, 35]})
    >>> out = category_table(cells, totals, w)
    >>> out.select("category", "this", "previous", "mean_4w").rows()
    [('spam', 40, 12, 11.5), ('other', None, 20, 24.25), ('Total', 44, 32, 35.75)]
    """
    first = week - 4 * WEEK

    base = (
        cells.filter(pl.col("week") >= first, pl.col("week") < week)
        .group_by("category")
        .agg(shown=pl.col("cases").count(), weeks=pl.len(), base=pl.col("cases").sum())
    )
    wide = (
        cells.filter(pl.col("week") == week)
        .select("category", this="cases")
        .join(
            cells.filter(pl.col("week") == week - WEEK).select("category", previous="cases"),
            on="category",
            how="full",
            coalesce=True,
        )
        .join(base, on="category", how="left")
        .with_columns(
            mean_4w=pl.when((pl.col("shown") == 4) & (pl.col("weeks") == 4)).then(
                pl.col("base") / 4
            )
        )
        .sort(pl.col("this").fill_null(-1), "category", descending=[True, False])
    )
    prev_ok = wide["this"].is_not_null() & wide["previous"].is_not_null()
    base_ok = wide["this"].is_not_null() & wide["mean_4w"].is_not_null()
    tests = {}
    for name, ok, x0, t0 in (
        ("prev", prev_ok, wide["previous"], 1),
        ("4w", base_ok, wide["mean_4w"] * 4, 4),
    ):
        tested = ok.to_numpy()
        p = poisson_test(wide["this"].fill_null(0), [1], x0.fill_null(0), [t0])
        q = np.full(wide.height, np.nan)
        q[tested] = fdr(p[tested])
        tests[f"p_{name}"] = pl.Series(np.where(tested, p, np.nan), nan_to_null=True)
        tests[f"q_{name}"] = pl.Series(q, nan_to_null=True)
    wide = wide.with_columns(**tests).select("category", "this", "previous", "mean_4w", *tests)
    weekly = dict(totals.iter_rows())
    before: list[int | None] = [weekly.get(week - WEEK * k) for k in range(1, 5)]
    total = pl.DataFrame(
        {
            "category": [TOTAL_LABEL],
            "this": [weekly.get(week)],
            "previous": [weekly.get(week - WEEK)],
            "mean_4w": [sum(b or 0 for b in before) / 4 if None not in before else None],
        },
        schema={"category": pl.String, "this": pl.Int64, "previous": pl.Int64,
                "mean_4w": pl.Float64},
    )  # fmt: skip
    return pl.concat([wide, total], how="diagonal_relaxed")


def product_backlog(backlog: pl.DataFrame, week: date) -> pl.DataFrame:
    """Open cases by age at the week's end only, every age bucket (zeros included),
    suppressed with its total (``age_bucket``, ``open``; the total row last).

    Only the week's own end: the brief reads the 12 weeks before its week, so a later
    brief would see this week's end without the cases opened before its own window, and
    the two numbers would differ by a count that may be small.
    """
    end = week + timedelta(days=6)
    grid = pl.DataFrame({"age_bucket": list(trends.AGE_BUCKETS)})
    now = backlog.filter(pl.col("week_end") == end).select("age_bucket", "open")
    cells = grid.join(now, on="age_bucket", how="left").with_columns(
        pl.col("open").fill_null(0).cast(pl.Int64)
    )
    return suppress(cells, ["open"], label="age_bucket")


def product_backlog_sentence(backlog: pl.DataFrame, week: date) -> str:
    """The product brief's backlog sentence: open cases at the week's end and those open
    more than 7 days, from :func:`product_backlog`'s protected table."""
    end = week + timedelta(days=6)
    rows = dict(backlog.iter_rows())
    older = [rows[b] for b in trends.AGE_BUCKETS[3:]]
    many = format_count(sum(older)) if None not in older else SUPPRESSED_TEXT
    return (
        f"Open backlog at the end of {format_day(end)}: {count_or_hidden(rows[TOTAL_LABEL])} "
        f"cases; open more than 7 days: {many}."
    )


def product_rates(view: WeeklyView, cube: Cube) -> tuple[list[dict[str, Any]], list[str]]:
    """KPI rows the product brief may show, and the labels of those left out.

    A rate is shown when, in the week and in the week before, at least
    :data:`SUPPRESSION_THRESHOLD` cases are counted in it and at least as many in its
    denominator are not (so neither count it could give back is small); a median when at
    least that many cases underlie it.
    """
    weekly = trends.weekly_metrics(cube)
    weeks = weekly.filter(pl.col("week").is_in([view.week, view.week - WEEK]))
    kpis = {k.key: k for k in KPIS}
    shown, left_out = [], []
    for row in view.kpis.filter(pl.col("key").is_in(_PRODUCT_RATES)).to_dicts():
        kpi = kpis[row["key"]]
        if kpi.num and kpi.den:
            sides = [pl.col(kpi.num), pl.col(kpi.den) - pl.col(kpi.num)]
        else:
            sides = [pl.col(_DURATION_SAMPLE[row["key"]])]
        fewest = weeks.select(pl.min_horizontal(sides).min()).item() if weeks.height == 2 else None
        if fewest is not None and fewest >= SUPPRESSION_THRESHOLD:
            shown.append(row)
        else:
            left_out.append(str(row["label"]))
    return shown, left_out


def protect_topics(
    emerging: pl.DataFrame, topics: pl.DataFrame, *, week_total: int
) -> pl.DataFrame:
    """Topic counts as the product brief may show them: a count only when it is at least
    the threshold and, with the counts shown before it, leaves at least the threshold of
    the cases it is part of (all topics' cases of its window, and the week's total) out;
    growth and q only where both counts are shown. A topic is a sub-slice of the week's
    cases: showing its count next to the week's total must not give a small complement.

    >>> emerging = pl.DataFrame({"recent_count": [30, 12, 4], "baseline_count": [9, 40, 50],
    ...                          "growth": [3.0, 0.3, 0.1], "q_value": [0.01, 0.02, 0.03]})
    >>> out = protect_topics(emerging, emerging, week_total=50)
    >>> out.select("recent_count", "baseline_count", "growth").rows()
    [(30, None, None), (None, 40, None), (None, None, None)]
    """
    recent_left = [int(topics["recent_count"].sum()), week_total]
    before_left = [int(topics["baseline_count"].sum())]
    recent: list[int | None] = []
    before: list[int | None] = []
    for r, b in emerging.select("recent_count", "baseline_count").iter_rows():
        for value, left, out in ((r, recent_left, recent), (b, before_left, before)):
            ok = value >= SUPPRESSION_THRESHOLD and all(
                n - value >= SUPPRESSION_THRESHOLD for n in left
            )
            out.append(value if ok else None)
            if ok:
                left[:] = [n - value for n in left]
    both = pl.col("recent_count").is_not_null() & pl.col("baseline_count").is_not_null()
    return emerging.with_columns(
        pl.Series("recent_count", recent, dtype=emerging.schema["recent_count"]),
        pl.Series("baseline_count", before, dtype=emerging.schema["baseline_count"]),
    ).with_columns(
        pl.when(both).then(pl.col("growth")).alias("growth"),
        pl.when(both).then(pl.col("q_value")).alias("q_value"),
    )


def count_or_hidden(value: float | None) -> str:
    """A count as the product brief shows it: :data:`SUPPRESSED_TEXT` when hidden (None)
    or below the threshold."""
    return (
        SUPPRESSED_TEXT if value is None or value < SUPPRESSION_THRESHOLD else format_count(value)
    )


def mark_hidden(fig: go.Figure) -> go.Figure:
    """Hover text :data:`SUPPRESSED_TEXT` on the hidden cells of a heatmap or bars built
    from a suppressed frame (the builders would say ``"–"``)."""
    for trace in fig.data:
        if isinstance(trace, go.Heatmap) and trace.z is not None:
            trace.text = [
                [SUPPRESSED_TEXT if v is None else t for v, t in zip(row, texts, strict=True)]
                for row, texts in zip(trace.z, trace.text, strict=True)
            ]
        elif isinstance(trace, go.Bar) and trace.customdata is not None:
            trace.customdata = [
                SUPPRESSED_TEXT if v is None else t
                for v, t in zip(trace.y, trace.customdata, strict=True)
            ]
    return fig
