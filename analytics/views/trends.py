"""The Weekly Trends page: every number of one focus week under the global filters.

:func:`weekly_view` loads the cube of the filters' window and computes
:class:`analytics.metrics.weekly.WeeklyView` (KPIs with tested deltas, volume,
categories, top movers, SLA, backlog, prevalence) for a role that may see unsuppressed
aggregates.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.metrics import trends, weekly
from analytics.sources import load

__all__ = ["COUNTS", "count_of", "still_moving", "week_days", "weekly_view"]

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
