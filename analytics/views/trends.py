"""The Weekly Trends page: every number of one focus week under the global filters.

:func:`weekly_view` loads the cube of the filters' window and computes
:class:`analytics.metrics.weekly.WeeklyView` (KPIs with tested deltas, volume,
categories, top movers, SLA, backlog, prevalence) for a role that may see unsuppressed
aggregates; :func:`movers` gives the top movers against both the previous week and the
4-week mean. The ``*_series`` functions give the charts their frames with the
projection of the week still filling in (:mod:`analytics.metrics.nowcast`).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.metrics import nowcast, trends, weekly
from analytics.metrics.movers import top_movers
from analytics.metrics.stats import ALPHA
from analytics.present.formatting import sliced
from analytics.sources import load

__all__ = [
    "AGAINST",
    "COUNTS",
    "both_movers",
    "categories_series",
    "complete_enough",
    "count_of",
    "duration_series",
    "movers",
    "sla_series",
    "still_moving",
    "week_days",
    "weekly_view",
]

#: What a mover's change is significant against, in words (previous week, 4-week mean).
AGAINST: dict[tuple[bool, bool], str] = {
    (True, True): "both",
    (True, False): "last week",
    (False, True): "4-week mean",
    (False, False): "neither",
}

#: What the page counts: URL value -> label.
COUNTS: dict[str, str] = {
    "cases": "Cases",
    "subjects": "Distinct subjects",
    "reporters": "Distinct reporters",
}


def count_of(value: str) -> trends.Count:
    """What to count, from a choice of :data:`COUNTS` (cases for anything else).

    >>> count_of("subjects"), count_of("bogus")
    ('subjects', 'cases')
    """
    if value == "subjects":
        return "subjects"
    return "reporters" if value == "reporters" else "cases"


def weekly_view(
    engine: Engine, filters: Filters, *, week: date, count: trends.Count, role: Role | str
) -> weekly.WeeklyView:
    """Every number of the Weekly Trends page for the ISO week holding ``week``;
    ``count`` is what the volumes count (cases, distinct subjects or reporters)."""
    access.require(role, "aggregates")
    cube = load.load_cube(engine, filters)
    return weekly.weekly_view(cube, week=week, count=count)


def week_days(monday: date) -> tuple[date, date]:
    """The first and last day of the week starting ``monday``.

    >>> week_days(date(2026, 4, 20))
    (datetime.date(2026, 4, 20), datetime.date(2026, 4, 26))
    """
    return monday, monday + timedelta(days=6)


def still_moving(kpis: pl.DataFrame, *, below: float = 0.9) -> tuple[list[str], float] | None:
    """The KPIs that see less than ``below`` of the week's cases so far (their cases are
    not all responded to or resolved yet), and the smallest share; None when none.

    >>> kpis = pl.DataFrame({"label": ["New cases", "SLA breach rate"],
    ...                      "completeness": [None, 0.42]})
    >>> still_moving(kpis)
    (['SLA breach rate'], 0.42)
    """
    partial = kpis.filter(pl.col("completeness") < below)
    if partial.is_empty():
        return None
    share = partial["completeness"].min()
    assert isinstance(share, float)
    return [str(n) for n in partial["label"]], share


def movers(
    engine: Engine,
    filters: Filters,
    *,
    week: date,
    count: trends.Count,
    role: Role | str,
    tested: bool = True,
) -> pl.DataFrame:
    """The top movers of ``week`` against both the previous week and the 4-week mean
    (:func:`both_movers`); ``tested`` false (the week is not complete enough) leaves them
    untested."""
    access.require(role, "aggregates")
    cube = load.load_cube(engine, filters)
    previous = top_movers(cube, week=week, count=count)
    four = top_movers(cube, week=week, count=count, baseline="4w")
    return both_movers(previous, four, tested=tested)


def both_movers(previous: pl.DataFrame, four: pl.DataFrame, *, tested: bool) -> pl.DataFrame:
    """The top movers against the previous week and the 4-week mean, side by side.

    ``previous`` and ``four`` are :func:`analytics.metrics.movers.top_movers` with
    ``baseline="previous"`` and ``"4w"``. Columns: ``slice`` (in words, "Other ·
    OB-GYN"), ``current``, ``last_week``, ``change_week`` (relative, as text: "+12%",
    or "new" from nothing), ``baseline`` (the 4-week mean), ``change_4w``, ``against``
    (:data:`AGAINST`, or "not tested" when the week is not complete enough),
    ``q_week``, ``q_4w`` and ``q`` (the smaller of the two; all null when not tested).
    Significant slices first (most significant first), then by size of change.

    >>> previous = pl.DataFrame({"slice": ["category=other", "platform=ios"],
    ...     "current": [140.0, 50.0], "expected": [100.0, 48.0],
    ...     "rel_change": [0.4, 0.04], "q_value": [0.2, 0.9]})
    >>> four = pl.DataFrame({"slice": ["category=other", "platform=ios"],
    ...     "current": [140.0, 50.0], "expected": [99.5, 50.0],
    ...     "rel_change": [0.41, 0.0], "q_value": [0.001, 1.0]})
    >>> both_movers(previous, four, tested=True).select("slice", "against").rows()
    [('Other', '4-week mean'), ('iOS', 'neither')]
    """
    week = previous.select(
        "slice", last_week="expected", change_week="rel_change", q_week="q_value"
    )
    out = (
        four.select("slice", "current", baseline="expected", change_4w="rel_change", q_4w="q_value")
        .join(week, on="slice", how="left")
        .with_columns(pl.col("last_week").fill_null(0.0))
        .with_columns(
            pl.col("q_week", "q_4w").fill_null(1.0)
            if tested
            else pl.lit(None, pl.Float64).alias("q_week"),
        )
    )
    if not tested:
        out = out.with_columns(q_4w=pl.lit(None, pl.Float64))
    by_week, by_4w = pl.col("q_week") < ALPHA, pl.col("q_4w") < ALPHA
    against = pl.lit("not tested")
    if tested:
        against = (
            pl.when(by_week & by_4w)
            .then(pl.lit(AGAINST[True, True]))
            .when(by_week)
            .then(pl.lit(AGAINST[True, False]))
            .when(by_4w)
            .then(pl.lit(AGAINST[False, True]))
            .otherwise(pl.lit(AGAINST[False, False]))
        )
    return (
        out.with_columns(
            against=against,
            _significant=(by_week | by_4w).fill_null(False),
            _q=pl.min_horizontal("q_week", "q_4w"),
            _size=pl.max_horizontal(
                (pl.col("current") - pl.col("last_week")).abs(),
                (pl.col("current") - pl.col("baseline")).abs(),
            ),
        )
        .sort(["_significant", "_q", "_size"], descending=[True, False, True], nulls_last=True)
        .select(
            sliced(pl.col("slice")).alias("slice"),
            "current",
            "last_week",
            _change_text("change_week", "last_week"),
            "baseline",
            _change_text("change_4w", "baseline"),
            "against",
            "q_week",
            "q_4w",
            q="_q",
        )
    )


def _change_text(change: str, before: str) -> pl.Expr:
    """A relative change as a cell: ``+12%``, ``-40%``, ``new`` (from nothing), ``–``."""
    percent = (pl.col(change) * 100).round(0).cast(pl.Int64)
    signed = pl.when(percent > 0).then(pl.lit("+")).otherwise(pl.lit("")) + percent.cast(pl.String)
    return (
        pl.when(pl.col(change).is_not_null())
        .then(signed + "%")
        .when((pl.col(before) == 0) & (pl.col("current") > 0))
        .then(pl.lit("new"))
        .otherwise(pl.lit("–"))
        .alias(change)
    )


def sla_series(view: weekly.WeeklyView) -> pl.DataFrame:
    """The SLA breach rate by severity and week with the projection of the weeks still
    filling in (``projected``, ``low``, ``high``, ``complete``)."""
    return nowcast.attach(view.sla, view.nowcast_severity, key="sla_breach_rate", by="severity")


_DURATION_KEYS: dict[str, tuple[str, str]] = {
    "ttfr_median_h": ("First response", "median_h"),
    "ttfr_p90_h": ("First response", "p90_h"),
    "ttr_median_h": ("Resolution", "median_h"),
    "ttr_p90_h": ("Resolution", "p90_h"),
}


def duration_series(view: weekly.WeeklyView) -> pl.DataFrame:
    """Hours to respond and resolve per week (``week``, ``measure``, ``median_h``,
    ``p90_h``) with each statistic's projection (``median_h_projected``,
    ``median_h_low``, ``median_h_high``, ``p90_h_...``) and ``complete``."""
    keys = list(_DURATION_KEYS)
    measure = {k: m for k, (m, _) in _DURATION_KEYS.items()}
    stat = {k: s for k, (_, s) in _DURATION_KEYS.items()}
    mine = view.nowcast.filter(pl.col("key").is_in(keys)).with_columns(
        measure=pl.col("key").replace_strict(measure),
        stat=pl.col("key").replace_strict(stat),
    )
    wide = mine.pivot(on="stat", index=["week", "measure"], values=["projected", "low", "high"])
    wide = wide.rename(
        {
            f"{v}_{s}": f"{s}_{v}"
            for v in ("projected", "low", "high")
            for s in ("median_h", "p90_h")
            if f"{v}_{s}" in wide.columns
        }
    )
    done = mine.group_by("week", "measure").agg(complete=pl.col("complete").all())
    return (
        view.durations.join(wide, on=["week", "measure"], how="left")
        .join(done, on=["week", "measure"], how="left")
        .with_columns(pl.col("complete").fill_null(True))
    )


def categories_series(view: weekly.WeeklyView) -> pl.DataFrame:
    """New cases per category and week, without the weeks not yet complete enough (a
    heatmap has no way to draw a projection; they are in the weekly chart)."""
    pending = view.nowcast.filter(pl.col("key") == "new_cases", ~pl.col("complete"))["week"]
    return view.categories.filter(~pl.col("week").is_in(pending.implode()))


def complete_enough(view: weekly.WeeklyView) -> bool:
    """Whether the focus week's new cases are complete enough to test (its movers and
    its count; :data:`analytics.metrics.nowcast.COMPLETE_ENOUGH`)."""
    return bool(view.kpis.filter(pl.col("key") == "new_cases")["complete"].all())
