"""The KPI cards of a week: each headline metric, its previous week and 4-week baseline,
and whether the change is significant.

Each earlier week is seen as it stood the same time after its own end (its responses,
resolutions and appeals by then), so a week still being worked is never judged against
weeks that had months to close their cases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import polars as pl

from analytics.core.calendar import WEEK
from analytics.metrics.stats import ALPHA, duration_test, poisson_test, proportion_test
from analytics.metrics.trends import Count, backlog, case_flags, weekly_metrics
from analytics.sources.frames import Cube

__all__ = ["KPIS", "Kpi", "kpis"]


@dataclass(frozen=True)
class Kpi:
    """A headline metric: its column, label, unit, test and which way is good."""

    key: str
    label: str
    unit: Literal["count", "percent", "hours", "per_1000"]
    test: Literal["count", "rate", "proportion", "duration"]
    better: Literal["up", "down", "none"]
    num: str = ""
    den: str = ""
    completeness: str | None = None


#: The KPI cards of the weekly page, in order.
KPIS: tuple[Kpi, ...] = (
    Kpi("new_cases", "New cases", "count", "count", "down"),
    Kpi("prevalence", "Per 1k active accounts", "per_1000", "rate", "down",
        "cases", "exposure"),
    Kpi("proactive_rate", "Proactive rate", "percent", "proportion", "up", "proactive",
        "violations", "resolved_share"),
    Kpi("action_rate", "Action rate", "percent", "proportion", "none", "violations", "resolved",
        "resolved_share"),
    Kpi("precision", "Automated precision", "percent", "proportion", "up",
        "automated_violations", "automated_resolved", "resolved_share"),
    Kpi("ttfr_median_h", "First response (median)", "hours", "duration", "down",
        completeness="responded_share"),
    Kpi("ttr_median_h", "Resolution (median)", "hours", "duration", "down",
        completeness="resolved_share"),
    Kpi("sla_breach_rate", "SLA breach rate", "percent", "proportion", "down", "breached", "due"),
    Kpi("backlog", "Open backlog", "count", "count", "down"),
    Kpi("overturn_rate", "Appeals overturned", "percent", "proportion", "down", "overturned",
        "appeal_decided"),
    Kpi("repeat_rate", "Repeat offenders", "percent", "proportion", "down", "repeat", "cases"),
)  # fmt: skip


def kpis(cube: Cube, *, week: date, count: Count = "cases") -> pl.DataFrame:
    """The KPI cards for ``week``: value, previous week, trailing 4-week mean, tests.

    Columns: ``key``, ``label``, ``unit``, ``better``, ``value``, ``previous``,
    ``baseline`` (mean of the 4 weeks before), ``delta``, ``delta_pct``,
    ``p_previous``, ``p_baseline``, ``significant`` and ``significant_baseline``
    (p < :data:`ALPHA`), ``direction`` (up, down, flat), ``completeness`` (share of the
    week's cases the metric can already see, for resolution-dependent metrics) and
    ``provisional``.

    >>> from analytics.metrics.trends import example_cube
    >>> out = kpis(example_cube(), week=date(2026, 11, 16))
    >>> out.filter(pl.col("key") == "new_cases").select("value", "previous", "direction").row(0)
    (1.0, 2.0, 'down')
    """
    # Each earlier week is seen as it stood the same time after its own end (its cases
    # resolved by then, its backlog then): a week still being worked is never compared
    # with weeks that had months to close their cases.
    # Only that week's cases are needed for it; the backlog at a past week's end does
    # not change with what was learnt later, so it comes from the cube itself.
    seen = [_same_age(cube, weeks=k, week=week - k * WEEK) for k in range(5)]
    stock = _backlog_by_week(cube)
    frames = [
        weekly_metrics(c, count=count)
        .filter(pl.col("week") == week - k * WEEK)
        .join(stock, on="week", how="left")
        .with_columns(pl.col("backlog").fill_null(0))
        for k, c in enumerate(seen)
    ]
    this, prev = frames[0], frames[1]
    base = pl.concat(frames[1:], how="diagonal_relaxed")
    durations = pl.concat(
        [
            case_flags(c).filter(pl.col("week") == week - k * WEEK)
            .select("week", "ttfr_h", "ttr_h").collect()
            for k, c in enumerate(seen)
        ]
    )  # fmt: skip
    rows = []
    for kpi in KPIS:
        rows.append(_kpi_row(kpi, this, prev, base, durations, week, count))
    out = pl.DataFrame(rows, orient="row", schema=_KPI_SCHEMA)
    return out.with_columns(
        delta=pl.col("value") - pl.col("previous"),
        delta_pct=pl.when(pl.col("previous") != 0)
        .then((pl.col("value") - pl.col("previous")) / pl.col("previous").abs())
        .otherwise(None),
        significant=pl.col("p_previous") < ALPHA,
        significant_baseline=pl.col("p_baseline") < ALPHA,
        direction=pl.when(pl.col("value") > pl.col("previous"))
        .then(pl.lit("up"))
        .when(pl.col("value") < pl.col("previous"))
        .then(pl.lit("down"))
        .otherwise(pl.lit("flat")),
    )


def _same_age(cube: Cube, *, weeks: int, week: date) -> Cube:
    """The cases opened in ``week`` as they stood ``weeks`` weeks before the newest record.

    Responses, resolutions and appeals after that moment are hidden.
    """
    if weeks == 0 or cube.as_of is None:
        return cube
    at = cube.as_of - weeks * WEEK
    known = pl.col("resolved_at") <= at
    first = datetime.combine(week, datetime.min.time())
    opened = pl.col("opened_at").is_between(first, first + WEEK, closed="left")
    cases = cube.cases.filter(opened).with_columns(
        resolved_at=pl.when(known).then(pl.col("resolved_at")),
        resolution=pl.when(known).then(pl.col("resolution")),
        first_response_at=pl.when(pl.col("first_response_at") <= at).then(
            pl.col("first_response_at")
        ),
        appealed_at=pl.when(pl.col("appealed_at") <= at).then(pl.col("appealed_at")),
        appeal_outcome=pl.when(pl.col("appealed_at") <= at).then(pl.col("appeal_outcome")),
    )
    return replace(cube, cases=cases, as_of=at, memo={})


def _backlog_by_week(cube: Cube) -> pl.DataFrame:
    """Open cases at the end of each week (``week``, ``backlog``)."""
    return (
        backlog(cube)
        .group_by(pl.col("week_end") - timedelta(days=6))
        .agg(backlog=pl.col("open").sum())
        .rename({"week_end": "week"})
    )


_KPI_SCHEMA = {
    "key": pl.String,
    "label": pl.String,
    "unit": pl.String,
    "better": pl.String,
    "value": pl.Float64,
    "previous": pl.Float64,
    "baseline": pl.Float64,
    "p_previous": pl.Float64,
    "p_baseline": pl.Float64,
    "completeness": pl.Float64,
    "provisional": pl.Boolean,
}


def _first(frame: pl.DataFrame, column: str) -> float | None:
    if frame.is_empty() or column not in frame.columns:
        return None
    value = frame[column][0]
    return None if value is None else float(value)


def _total(frame: pl.DataFrame, column: str) -> float:
    return float(frame[column].sum()) if column and not frame.is_empty() else 0.0


def _kpi_row(
    kpi: Kpi,
    this: pl.DataFrame,
    prev: pl.DataFrame,
    base: pl.DataFrame,
    durations: pl.DataFrame,
    week: date,
    count: Count,
) -> tuple[object, ...]:
    value, previous = _first(this, kpi.key), _first(prev, kpi.key)
    weeks = base.height
    means = base[kpi.key].drop_nulls() if kpi.key in base.columns else pl.Series([])
    baseline = float(means.mean()) if means.len() else None  # type: ignore[arg-type]
    if kpi.test == "count":
        x1, x0, xb = (_total(f, kpi.key) for f in (this, prev, base))
        p_prev = poisson_test([x1], [1], [x0], [1])[0]
        p_base = poisson_test([x1], [1], [xb], [max(weeks, 1)])[0] if weeks else 1.0
    elif kpi.test in ("rate", "proportion"):
        test = poisson_test if kpi.test == "rate" else proportion_test
        num = "new_cases" if kpi.test == "rate" and count != "cases" else kpi.num
        a1, n1 = _total(this, num), _total(this, kpi.den)
        p_prev = test([a1], [n1], [_total(prev, num)], [_total(prev, kpi.den)])[0]
        p_base = test([a1], [n1], [_total(base, num)], [_total(base, kpi.den)])[0]
    else:
        column = kpi.key.split("_")[0] + "_h"
        sample = durations.filter(pl.col("week") == week)[column]
        p_prev = duration_test(sample, durations.filter(pl.col("week") == week - WEEK)[column])
        pooled = durations.filter(pl.col("week") < week, pl.col("week") >= week - 4 * WEEK)
        p_base = duration_test(sample, pooled[column])
    provisional = bool(this["provisional"][0]) if this.height else False
    complete = _first(this, kpi.completeness) if kpi.completeness else None
    return (
        kpi.key,
        kpi.label,
        kpi.unit,
        kpi.better,
        value,
        previous,
        baseline,
        float(np.nan_to_num(p_prev, nan=1.0)),
        float(np.nan_to_num(p_base, nan=1.0)),
        complete,
        provisional,
    )
