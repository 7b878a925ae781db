"""Top movers: every slice one or two dimensions deep, ranked by significant change."""

from __future__ import annotations

from datetime import date
from itertools import combinations
from typing import Literal

import polars as pl

from analytics.core.calendar import WEEK
from analytics.core.filters import DIMENSIONS
from analytics.metrics.stats import ALPHA, fdr, poisson_test
from analytics.metrics.trends import COUNT_MODES, Count, case_flags, counted
from analytics.sources.frames import Cube

__all__ = ["top_movers"]


def top_movers(
    cube: Cube,
    *,
    week: date,
    count: Count = "cases",
    depth: int = 2,
    baseline: Literal["previous", "4w"] = "previous",
    dims: tuple[str, ...] = DIMENSIONS,
) -> pl.DataFrame:
    """Every slice one or ``depth`` dimensions deep, ranked by significant change.

    Each slice's count in ``week`` is tested against the previous week (or the sum of
    the 4 weeks before, ``baseline="4w"``) with an exact Poisson test; q-values control
    the false discovery rate across all slices. Columns: ``slice`` (label), the
    dimension columns (null where not part of the slice), ``depth``, ``current``,
    ``expected`` (the previous week or the 4-week mean), ``abs_change``,
    ``rel_change``, ``share_of_change`` (of the total change of the week), ``p_value``,
    ``q_value``, ``significant``. Significant slices come first, then by size of change.

    >>> from analytics.metrics.trends import example_cube
    >>> movers = top_movers(example_cube(), week=date(2026, 11, 16), depth=1)
    >>> movers.select("slice", "current", "expected").rows()[:2]
    [('category=spam', 0.0, 2.0), ('platform=web', 0.0, 2.0)]
    """
    prior = 4 if baseline == "4w" else 1
    first = week - prior * WEEK
    if first < cube.filters.window()[0].date():
        raise ValueError(
            f"the cube does not cover the week of {first}: load the {prior} week(s) "
            f"before {week} to compare with them"
        )
    flagged = (
        case_flags(cube)
        .filter(pl.col("week") >= first, pl.col("week") <= week)
        .with_columns(now=pl.col("week") == week)
    )
    pieces = []
    for k in range(1, depth + 1):
        for combo in combinations(dims, k):
            pieces.append(
                flagged.filter(*[pl.col(d).is_not_null() for d in combo])
                .group_by(*[pl.col(d).cast(pl.String) for d in combo])
                .agg(
                    current=_counted_where(count, pl.col("now")),
                    before=_counted_where(count, ~pl.col("now")),
                )
                .with_columns(
                    depth=pl.lit(k),
                    slice=pl.concat_str(
                        [pl.lit(f"{d}=") + pl.col(d) for d in combo], separator=" · "
                    ),
                )
            )
    empty = pl.DataFrame(schema={d: pl.String for d in dims}).lazy()
    frames = pl.concat([empty, *pieces], how="diagonal").collect() if pieces else empty.collect()
    totals = flagged.group_by("now").agg(n=counted(count)).collect()
    total_now = float(totals.filter(pl.col("now"))["n"].sum())
    total_before = float(totals.filter(~pl.col("now"))["n"].sum()) / prior
    p = poisson_test(
        frames["current"], [1] * frames.height, frames["before"], [prior] * frames.height
    )
    total_change = total_now - total_before
    out = frames.with_columns(
        current=pl.col("current").cast(pl.Float64),
        expected=pl.col("before").cast(pl.Float64) / prior,
        p_value=pl.Series(p),
        q_value=pl.Series(fdr(p)),
    ).with_columns(
        abs_change=pl.col("current") - pl.col("expected"),
        rel_change=pl.when(pl.col("expected") > 0)
        .then((pl.col("current") - pl.col("expected")) / pl.col("expected"))
        .otherwise(None),
        share_of_change=(pl.col("current") - pl.col("expected")) / total_change
        if total_change
        else pl.lit(None, pl.Float64),
        significant=pl.col("q_value") < ALPHA,
    )
    return out.sort(
        ["significant", pl.col("abs_change").abs(), "depth", "slice"],
        descending=[True, True, False, False],
    ).select(
        "slice",
        *dims,
        "depth",
        "current",
        "expected",
        "abs_change",
        "rel_change",
        "share_of_change",
        "p_value",
        "q_value",
        "significant",
    )


def _counted_where(count: Count, condition: pl.Expr) -> pl.Expr:
    column = COUNT_MODES[count]
    if column is None:
        return condition.sum().cast(pl.Int64)
    return pl.col(column).filter(condition).drop_nulls().n_unique().cast(pl.Int64)
