"""The week in progress, projected: each metric's final value for unfinished weeks and days.

A week's numbers fill in over time: its cases arrive through the week, then are
responded to, resolved and appealed over the weeks after it. Each unfinished week
(and the unfinished day) is projected from how the earlier weeks filled in:

1. **Replay.** Every earlier week is seen as it stood at the same *age* (time since its
   Monday) as the week projected now: its cases opened, responded to, resolved and
   appealed by then (:func:`analytics.metrics.trends.weekly_metrics` with ``age``, every
   week at once). Its value now is its *final* value.
2. **Factor.** For counts and durations the factor is final / at-age (the inverse of the
   completeness curve of reporting delay and time to resolve); for rates (percentages) it
   is final − at-age (how the rate moved as its slow cases closed). Rates whose numerator
   and denominator both accrue with the week's exposure (prevalence) are not moved; their
   range is the new-case count's.
3. **Project.** The projection is the value so far times (or plus) the median factor of
   the earlier weeks; the range is the factor's empirical quantiles (:data:`LEVEL`, 80%
   by default). Earlier weeks count from :data:`SETTLE` weeks before the one projected
   (their values have settled), at most :data:`HISTORY` of them, at least
   :data:`MIN_WEEKS`.
4. **Complete enough.** A metric's *completeness* at an age is the median earlier week's
   share of its final count (of the cases the metric is computed over: new cases,
   resolved, responded, due...) already known at that age. From :data:`COMPLETE_ENOUGH`
   (90%) on, the value is drawn and tested as a real one; below it, it is drawn as a
   projection with its range and left out of trend lines and KPI tests.

Everything is vectorised in Polars: one replay per distinct age (at most
:data:`HORIZON` weeks are projected), one ``group_by`` for every metric's factors.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

import polars as pl

from analytics.core.calendar import WEEK
from analytics.metrics.trends import COUNT_MODES, Count, case_flags, weekly_metrics
from analytics.sources.frames import Cube

__all__ = [
    "COMPLETE_ENOUGH",
    "HISTORY",
    "HORIZON",
    "LEVEL",
    "METHODS",
    "MIN_WEEKS",
    "SERIES",
    "SETTLE",
    "attach",
    "daily_nowcast",
    "daily_with_projection",
    "project",
    "weekly_nowcast",
    "with_projection",
]

#: A value is complete enough to draw and test as real once the median earlier week had
#: this share of its final count at the same age.
COMPLETE_ENOUGH = 0.9
#: The central share of the earlier weeks' factors the range covers.
LEVEL = 0.8
#: At most this many earlier weeks teach the projection.
HISTORY = 12
#: At least this many earlier weeks are needed to project at all.
MIN_WEEKS = 3
#: Earlier weeks count from this many weeks before the one projected (settled values).
SETTLE = 2
#: Weeks younger than this many weeks are projected; older ones are taken as final.
HORIZON = 3

Method = Literal["ratio", "shift", "level"]
#: How each method moves a value so far to its projection.
METHODS: tuple[Method, ...] = ("ratio", "shift", "level")

#: Every projected weekly series: metric -> (the count it is computed over, method).
SERIES: dict[str, tuple[str, Method]] = {
    "new_cases": ("new_cases", "ratio"),
    "cases": ("cases", "ratio"),
    "prevalence": ("cases", "level"),
    "proactive_rate": ("violations", "shift"),
    "action_rate": ("resolved", "shift"),
    "precision": ("automated_resolved", "shift"),
    "sla_breach_rate": ("due", "shift"),
    "appeal_rate": ("violations", "shift"),
    "overturn_rate": ("appeal_decided", "shift"),
    "repeat_rate": ("cases", "shift"),
    "ttfr_median_h": ("responded", "ratio"),
    "ttfr_p90_h": ("responded", "ratio"),
    "ttr_median_h": ("resolved", "ratio"),
    "ttr_p90_h": ("resolved", "ratio"),
}

_OUT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "so_far": pl.Float64,
    "projected": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "completeness": pl.Float64,
    "complete": pl.Boolean,
    "weeks": pl.UInt32,
}


def project(
    history: pl.DataFrame,
    current: pl.DataFrame,
    *,
    by: tuple[str, ...] = (),
    level: float = LEVEL,
    threshold: float = COMPLETE_ENOUGH,
    min_weeks: int = MIN_WEEKS,
) -> pl.DataFrame:
    """Project each series' value so far from how its earlier periods filled in.

    Parameters
    ----------
    history
        One row per earlier period and series: ``target`` (the period projected),
        ``key``, the ``by`` columns, ``method`` (:data:`METHODS`), ``at_age`` and
        ``final`` (the earlier period's value at the target's age and now),
        ``den_at_age`` and ``den_final`` (the count it is computed over, then and now).
    current
        One row per series to project: ``target``, ``key``, the ``by`` columns,
        ``so_far`` and ``provisional`` (the period has not ended).
    by
        Columns that split a series (e.g. ``("severity",)``).
    level
        The central share of the factors the range covers (empirical quantiles).
    threshold
        Completeness from which a value is ``complete``.
    min_weeks
        Fewer earlier periods than this give no projection (``complete`` is then
        ``not provisional``).

    Returns
    -------
    polars.DataFrame
        ``target``, ``key``, the ``by`` columns, ``so_far``, ``projected``, ``low``,
        ``high``, ``completeness`` (median earlier share of the final count known at
        this age), ``complete`` and ``weeks`` (earlier periods used).

    Examples
    --------
    Three earlier weeks had 50%, 40% and 60% of their final count at this age:

    >>> history = pl.DataFrame({
    ...     "target": [date(2026, 11, 30)] * 3, "key": ["new_cases"] * 3,
    ...     "method": ["ratio"] * 3, "at_age": [50.0, 40.0, 60.0],
    ...     "final": [100.0, 100.0, 100.0], "den_at_age": [50, 40, 60],
    ...     "den_final": [100, 100, 100]})
    >>> current = pl.DataFrame({"target": [date(2026, 11, 30)], "key": ["new_cases"],
    ...                         "so_far": [45.0], "provisional": [True]})
    >>> out = project(history, current, level=0.5)
    >>> out.select("so_far", "projected", "low", "high", "completeness", "complete").row(0)
    (45.0, 90.0, 75.0, 112.5, 0.5, False)
    """
    keys = ["target", "key", *by]
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    method = pl.col("method")
    factor = (
        pl.when(method == "shift")
        .then(pl.col("final") - pl.col("at_age"))
        .when(pl.col("at_age") > 0)
        .then(pl.col("final") / pl.col("at_age"))
    )
    share = pl.when(pl.col("den_final") > 0).then(pl.col("den_at_age") / pl.col("den_final"))
    stats = (
        history.lazy()
        .with_columns(factor=factor, share=share)
        .filter(pl.col("factor").is_not_null() & pl.col("factor").is_finite())
        .group_by(keys)
        .agg(
            method=method.first(),
            mid=pl.col("factor").median(),
            lo=_prediction_quantile(pl.col("factor"), lo_q),
            hi=_prediction_quantile(pl.col("factor"), hi_q),
            completeness=pl.col("share").median(),
            weeks=pl.len().cast(pl.UInt32),
        )
    )
    x = pl.col("so_far")
    enough = pl.col("weeks").fill_null(0) >= min_weeks

    def moved(f: str) -> pl.Expr:
        m = pl.col("method")
        value = (
            pl.when(m == "shift")
            .then((x + pl.col(f)).clip(0.0, 1.0))
            .when(m == "level")
            .then(x * pl.col(f) / pl.col("mid"))
            .otherwise(x * pl.col(f))
        )
        return pl.when(enough).then(value)

    out = (
        current.lazy()
        .join(stats, on=keys, how="left")
        .with_columns(
            pl.col("so_far").cast(pl.Float64),
            projected=pl.when(enough).then(
                pl.when(pl.col("method") == "level").then(x).otherwise(moved("mid"))
            ),
            low=moved("lo"),
            high=moved("hi"),
            completeness=pl.when(enough).then(pl.col("completeness").clip(0.0, 1.0)),
        )
        .with_columns(
            # a count at zero this early tells nothing: no projection
            projected=pl.when((pl.col("method") == "ratio") & (x == 0) & ~pl.col("provisional"))
            .then(x)
            .when((pl.col("method") == "ratio") & (x == 0))
            .then(None)
            .otherwise(pl.col("projected")),
            complete=pl.coalesce(
                pl.col("completeness") >= threshold, ~pl.col("provisional").fill_null(False)
            ),
            weeks=pl.col("weeks").fill_null(0),
        )
    )
    return out.select(*keys, *_OUT_SCHEMA).collect()


def _prediction_quantile(values: pl.Expr, p: float) -> pl.Expr:
    """The ``p`` quantile of a group's values at rank ``(n + 1) p`` (interpolated, held
    within the smallest and largest): the range of a *new* week, wider than the spread of
    the ``n`` seen (which the usual ``1 + (n - 1) p`` rank would give)."""
    ordered = values.sort()
    n = values.len()
    rank = ((n + 1).cast(pl.Float64) * p).clip(1.0, n.cast(pl.Float64))
    below = rank.floor().cast(pl.Int64) - 1
    above = (below + 1).clip(upper_bound=n.cast(pl.Int64) - 1)
    low, high = ordered.gather(below), ordered.gather(above)
    return (low + (high - low) * (rank - rank.floor())).first()


def _target_weeks(cube: Cube, weeks: pl.Series) -> list[tuple[date, timedelta]]:
    """The weeks younger than :data:`HORIZON` weeks and their age at ``as_of``."""
    if cube.as_of is None:
        return []
    out = []
    for monday in weeks.to_list():
        age = cube.as_of - datetime.combine(monday, datetime.min.time())
        if timedelta(0) <= age < HORIZON * WEEK:
            out.append((monday, age))
    return out


def weekly_nowcast(
    cube: Cube,
    *,
    count: Count = "cases",
    by: str | None = None,
    keys: tuple[str, ...] = tuple(SERIES),
    level: float = LEVEL,
    threshold: float = COMPLETE_ENOUGH,
) -> pl.DataFrame:
    """Each recent week's metrics (the last :data:`HORIZON` weeks), so far and projected.

    Columns: ``week``, ``key`` (a metric of :data:`SERIES`), ``by`` when given,
    ``so_far``, ``projected``, ``low``, ``high`` (the range, :data:`LEVEL`),
    ``completeness``, ``complete`` (:data:`COMPLETE_ENOUGH`) and ``weeks``. Older weeks
    are final and have no row.

    >>> from analytics.metrics.trends import example_cube
    >>> out = weekly_nowcast(example_cube(), keys=("new_cases",))
    >>> out.select("week", "so_far", "projected", "complete").rows()
    [(datetime.date(2026, 11, 9), 2.0, None, True), (datetime.date(2026, 11, 16), 1.0, None, False)]
    """
    final = weekly_metrics(cube, by=by, count=count)
    split = (by,) if by else ()
    targets = _target_weeks(cube, final["week"].unique().sort())
    schema: dict[str, pl.DataType | type[pl.DataType]] = {"week": pl.Date, "key": pl.String}
    schema |= {b: pl.String for b in split}
    if not targets:
        return pl.DataFrame(schema=schema | _OUT_SCHEMA)
    series = pl.DataFrame(
        {
            "key": list(keys),
            "den": [SERIES[k][0] for k in keys],
            "method": [SERIES[k][1] for k in keys],
        }
    )
    histories, currents = [], []
    for target, age in targets:
        then = weekly_metrics(cube, by=by, count=count, age=age)
        earlier = (
            then.filter(pl.col("week") <= target - SETTLE * WEEK)
            .filter(pl.col("week") >= target - (SETTLE + HISTORY - 1) * WEEK)
            .join(final, on=["week", *split], how="inner", suffix="_final")
        )
        histories.append(_long(earlier, series, split, target))
        now = final.filter(pl.col("week") == target)
        currents.append(
            _melt(now, list(keys), split, "so_far")
            .drop("week")
            .with_columns(target=pl.lit(target), provisional=pl.lit(bool(age < WEEK)))
        )
    history = pl.concat(histories, how="vertical_relaxed")
    current = pl.concat(currents, how="vertical_relaxed")
    out = project(history, current, by=split, level=level, threshold=threshold)
    return out.rename({"target": "week"}).sort("week", "key", *split)


def _melt(frame: pl.DataFrame, keys: list[str], split: tuple[str, ...], name: str) -> pl.DataFrame:
    return frame.select("week", *split, *[pl.col(k).cast(pl.Float64) for k in keys]).unpivot(
        index=["week", *split], on=keys, variable_name="key", value_name=name
    )


def _long(
    earlier: pl.DataFrame, series: pl.DataFrame, split: tuple[str, ...], target: date
) -> pl.DataFrame:
    """The earlier weeks' values at age and final, one row per week and series."""
    keys = series["key"].to_list()
    dens = sorted(set(series["den"].to_list()))
    idx = ["week", *split]
    at_age = _melt(earlier, keys, split, "at_age")
    final = earlier.select(*idx, *[pl.col(f"{k}_final").cast(pl.Float64).alias(k) for k in keys])
    final = final.unpivot(index=idx, on=keys, variable_name="key", value_name="final")
    den_at = earlier.select(*idx, *[pl.col(d).cast(pl.Float64) for d in dens]).unpivot(
        index=idx, on=dens, variable_name="den", value_name="den_at_age"
    )
    den_final = earlier.select(
        *idx, *[pl.col(f"{d}_final").cast(pl.Float64).alias(d) for d in dens]
    ).unpivot(index=idx, on=dens, variable_name="den", value_name="den_final")
    return (
        at_age.join(final, on=[*idx, "key"])
        .join(series, on="key")
        .join(den_at, on=[*idx, "den"])
        .join(den_final, on=[*idx, "den"])
        .with_columns(target=pl.lit(target))
        .drop("den")
    )


def daily_nowcast(
    cube: Cube,
    *,
    count: Count = "cases",
    days: int = 28,
    level: float = LEVEL,
    threshold: float = COMPLETE_ENOUGH,
) -> pl.DataFrame:
    """The unfinished day's new cases, so far and projected from the ``days`` before it.

    Each earlier day's count by the same time of day is its count at age; its whole
    day's count is final. One row (``day``, ``so_far``, ``projected``, ``low``, ``high``,
    ``completeness``, ``complete``, ``weeks`` = earlier days used), none when ``as_of``
    is at midnight or unknown.

    >>> from analytics.metrics.trends import example_cube
    >>> daily_nowcast(example_cube()).select("day", "so_far", "complete").rows()
    [(datetime.date(2026, 11, 17), 1.0, False)]
    """
    schema = {"day": pl.Date, **_OUT_SCHEMA}
    if cube.as_of is None:
        return pl.DataFrame(schema=schema)
    today = cube.as_of.date()
    clock = cube.as_of - datetime.combine(today, datetime.min.time())
    if clock == timedelta(0):
        return pl.DataFrame(schema=schema)
    column = COUNT_MODES[count]
    early = pl.col("opened_at") - pl.col("opened_at").dt.truncate("1d") <= clock

    def counted_where(cond: pl.Expr | None) -> pl.Expr:
        if column is None:
            return (pl.len() if cond is None else cond.sum()).cast(pl.Float64)
        values = pl.col(column) if cond is None else pl.col(column).filter(cond)
        return values.drop_nulls().n_unique().cast(pl.Float64)

    per_day = (
        case_flags(cube)
        .filter(pl.col("day") >= today - timedelta(days=days), pl.col("day") <= today)
        .group_by("day")
        .agg(at_age=counted_where(early), final=counted_where(None))
        .collect()
    )
    earlier = per_day.filter(pl.col("day") < today)
    history = earlier.select(
        target=pl.lit(today),
        key=pl.lit("new_cases"),
        method=pl.lit("ratio"),
        at_age="at_age",
        final="final",
        den_at_age="at_age",
        den_final="final",
    )
    so_far = per_day.filter(pl.col("day") == today)["final"].sum()
    current = pl.DataFrame(
        {
            "target": [today],
            "key": ["new_cases"],
            "so_far": [float(so_far)],
            "provisional": [True],
        }
    )
    out = project(history, current, level=level, threshold=threshold)
    return out.rename({"target": "day"}).drop("key")


def with_projection(kpis: pl.DataFrame, nowcast: pl.DataFrame, *, week: date) -> pl.DataFrame:
    """The KPI cards of ``week`` with their projection and whether each is ``tested``.

    Adds ``projected``, ``projected_low``, ``projected_high``, ``known_share`` (the
    completeness of :func:`weekly_nowcast`), ``complete`` and ``tested``; KPIs that are
    not projected (the backlog, a stock) and weeks past :data:`HORIZON` are complete.
    A KPI of the week in progress (``provisional``: days of it are still to come) that
    is not complete enough is not tested (its p-values are null and it is not
    significant). A week that has ended but is still filling in (appeals, resolutions)
    is tested: :func:`analytics.metrics.kpis.kpis` compares it with earlier weeks as
    they stood at the same age, so both sides are equally incomplete; its card still
    shows the projection.

    >>> kpis = pl.DataFrame({"key": ["new_cases", "backlog"], "p_previous": [0.01, 0.2],
    ...     "p_baseline": [0.02, 0.3], "significant": [True, False],
    ...     "significant_baseline": [True, False], "provisional": [True, True]})
    >>> nowcast = pl.DataFrame({"week": [date(2026, 11, 30)], "key": ["new_cases"],
    ...     "projected": [1300.0], "low": [1250.0], "high": [1390.0],
    ...     "completeness": [0.86], "complete": [False]})
    >>> out = with_projection(kpis, nowcast, week=date(2026, 11, 30))
    >>> out.select("key", "projected", "tested", "p_previous", "significant").rows()
    [('new_cases', 1300.0, False, None, False), ('backlog', None, True, 0.2, False)]
    >>> ended = with_projection(kpis.with_columns(provisional=False), nowcast,
    ...                         week=date(2026, 11, 30))
    >>> ended.select("key", "complete", "tested", "p_previous", "significant").row(0)
    ('new_cases', False, True, 0.01, True)
    """
    mine = nowcast.filter(pl.col("week") == week).select(
        "key",
        "projected",
        projected_low="low",
        projected_high="high",
        known_share="completeness",
        complete_=pl.col("complete"),
    )
    tested = pl.col("tested")
    return (
        kpis.join(mine, on="key", how="left")
        .with_columns(complete=pl.col("complete_").fill_null(True))
        .drop("complete_")
        .with_columns(tested=pl.col("complete") | ~pl.col("provisional").fill_null(False))
        .with_columns(
            p_previous=pl.when(tested).then(pl.col("p_previous")),
            p_baseline=pl.when(tested).then(pl.col("p_baseline")),
            significant=tested & pl.col("significant"),
            significant_baseline=tested & pl.col("significant_baseline"),
        )
    )


def daily_with_projection(daily: pl.DataFrame, nowcast: pl.DataFrame) -> pl.DataFrame:
    """The daily volume with the unfinished day's projection: ``projected``, ``low``,
    ``high`` and ``complete`` (every earlier day is complete: its cases have all arrived).

    >>> daily = pl.DataFrame({"day": [date(2026, 12, 4), date(2026, 12, 5)],
    ...                       "value": [190.0, 40.0]})
    >>> nowcast = pl.DataFrame({"day": [date(2026, 12, 5)], "projected": [185.0],
    ...     "low": [170.0], "high": [200.0], "complete": [False]})
    >>> daily_with_projection(daily, nowcast).select("day", "projected", "complete").rows()
    [(datetime.date(2026, 12, 4), None, True), (datetime.date(2026, 12, 5), 185.0, False)]
    """
    return daily.join(
        nowcast.select("day", "projected", "low", "high", "complete"), on="day", how="left"
    ).with_columns(pl.col("complete").fill_null(True))


def attach(
    frame: pl.DataFrame, nowcast: pl.DataFrame, *, key: str, by: str | None = None
) -> pl.DataFrame:
    """``frame`` (one row per ``week`` and ``by`` value) with the projection of metric
    ``key``: ``projected``, ``low``, ``high`` and ``complete`` (true for weeks past the
    horizon, which have no projection).

    >>> frame = pl.DataFrame({"week": [date(2026, 11, 23), date(2026, 11, 30)],
    ...                       "value": [0.13, 0.01]})
    >>> nowcast = pl.DataFrame({"week": [date(2026, 11, 30)], "key": ["sla_breach_rate"],
    ...     "projected": [0.14], "low": [0.12], "high": [0.15], "complete": [False]})
    >>> attach(frame, nowcast, key="sla_breach_rate").select("projected", "complete").rows()
    [(None, True), (0.14, False)]
    """
    on = ["week", *([by] if by else [])]
    mine = nowcast.filter(pl.col("key") == key).select(*on, "projected", "low", "high", "complete")
    if by:
        frame = frame.with_columns(pl.col(by).cast(pl.String))
    return frame.join(mine, on=on, how="left").with_columns(pl.col("complete").fill_null(True))
