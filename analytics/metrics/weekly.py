"""Every number of the Weekly Trends page for one week, computed from one cube."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from analytics.metrics.kpis import kpis
from analytics.metrics.movers import top_movers
from analytics.metrics.nowcast import (
    daily_nowcast,
    daily_with_projection,
    weekly_nowcast,
    with_projection,
)
from analytics.metrics.trends import (
    Count,
    backlog,
    category_weekly,
    daily_volume,
    duration_weekly,
    prevalence_by_category,
    sla_weekly,
    weekly_metrics,
)
from analytics.sources.frames import Cube

__all__ = ["WeeklyView", "weekly_view"]


@dataclass(frozen=True)
class WeeklyView:
    """Every number of the Weekly Trends page for one week, filter set and count mode."""

    week: date
    count: str
    kpis: pl.DataFrame
    weekly: pl.DataFrame
    daily: pl.DataFrame
    categories: pl.DataFrame
    movers: pl.DataFrame
    sla: pl.DataFrame
    backlog: pl.DataFrame
    durations: pl.DataFrame
    prevalence: pl.DataFrame
    annotations: pl.DataFrame
    as_of: datetime | None
    #: The recent weeks' metrics so far and projected (:mod:`analytics.metrics.nowcast`).
    nowcast: pl.DataFrame
    #: The unfinished day's new cases so far and projected.
    nowcast_daily: pl.DataFrame
    #: The recent weeks' SLA breach rate by severity so far and projected.
    nowcast_severity: pl.DataFrame

    def series(self, metric: str) -> pl.DataFrame:
        """One weekly metric as ``week``, ``value``, ``provisional`` and its projection
        (``projected``, ``low``, ``high``; ``complete`` is false while the week is not
        complete enough to draw as a real value), for a chart."""
        projection = self.nowcast.filter(pl.col("key") == metric).select(
            "week", "projected", "low", "high", "complete"
        )
        return (
            self.weekly.select(
                "week", pl.col(metric).cast(pl.Float64).alias("value"), "provisional"
            )
            .join(projection, on="week", how="left")
            .with_columns(pl.col("complete").fill_null(~pl.col("provisional")))
        )

    @property
    def empty(self) -> bool:
        """True when the selection holds no case at all."""
        return int(self.weekly["cases"].sum()) == 0


def weekly_view(cube: Cube, *, week: date, count: Count = "cases") -> WeeklyView:
    """Compute everything the Weekly Trends page shows, from one cube.

    >>> from analytics.metrics.trends import example_cube
    >>> view = weekly_view(example_cube(), week=date(2026, 11, 16))
    >>> view.empty, view.kpis.height, view.weekly.height
    (False, 11, 2)
    """
    projected = weekly_nowcast(cube, count=count)
    today = daily_nowcast(cube, count=count)
    return WeeklyView(
        week=week,
        count=count,
        kpis=with_projection(kpis(cube, week=week, count=count), projected, week=week),
        weekly=weekly_metrics(cube, count=count),
        daily=daily_with_projection(daily_volume(cube, count=count), today),
        categories=category_weekly(cube, count=count),
        movers=top_movers(cube, week=week, count=count),
        sla=sla_weekly(cube),
        backlog=backlog(cube),
        durations=duration_weekly(cube),
        prevalence=prevalence_by_category(cube, week=week),
        annotations=cube.annotations,
        as_of=cube.as_of,
        nowcast=projected,
        nowcast_daily=today,
        nowcast_severity=weekly_nowcast(cube, by="severity", keys=("sla_breach_rate",)),
    )
