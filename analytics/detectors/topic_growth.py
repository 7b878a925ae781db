"""How topics grew: their daily counts, the emergence test of every day and its sentence.

The test (:func:`growth_test`) asks of a topic's recent count, given its earlier count,
whether the recent share of its cases is above the recent window's share of all cases
(a one-sided binomial test), with both counts divided by the topics' over-dispersion
(:func:`dispersion`), Benjamini-Hochberg across topics each day.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

__all__ = ["daily_counts", "day_bins", "dispersion", "growth_summary", "growth_test"]


def day_bins(
    opened_at: pl.Series, *, as_of: datetime, history: timedelta
) -> tuple[np.ndarray, int]:
    """Each case's day in the window (0 = the first, counted back from ``as_of`` in
    whole days) and the number of days."""
    n_days = max(1, math.ceil(history / timedelta(days=1)))
    age = (as_of - opened_at).dt.total_seconds().to_numpy() / 86_400.0
    return np.clip(n_days - 1 - np.floor(age).astype(np.int64), 0, n_days - 1), n_days


def daily_counts(label: np.ndarray, day: np.ndarray, *, n_topics: int, n_days: int) -> np.ndarray:
    """``(n_topics, n_days)`` cases per topic and day."""
    flat = np.bincount(label * n_days + day, minlength=n_topics * n_days)
    return flat.reshape(n_topics, n_days)


def dispersion(curves: np.ndarray, *, recent_days: int, min_cases: int = 10) -> float:
    """How much more topics' weekly counts vary than Poisson, before the recent window.

    For each topic with at least ``min_cases`` earlier cases, the Pearson statistic of
    its weekly counts against its share of each week's cases, over its degrees of
    freedom; the median over topics, at least 1 (1 when fewer than three earlier weeks
    or three such topics).

    >>> steady = np.tile([2, 3, 2, 3, 2, 3, 2], (4, 5))
    >>> dispersion(steady, recent_days=7)
    1.0
    >>> bursty = np.zeros((4, 35), dtype=int)
    >>> for t in range(4): bursty[t, 7 * t : 7 * t + 7] = 5
    >>> round(dispersion(bursty, recent_days=7), 1)
    35.0
    """
    earlier = curves[:, : max(0, curves.shape[1] - recent_days)]
    n_weeks = earlier.shape[1] // 7
    if n_weeks < 3:
        return 1.0
    weeks = earlier[:, earlier.shape[1] - 7 * n_weeks :].reshape(curves.shape[0], n_weeks, 7)
    weekly = weeks.sum(axis=2).astype(float)
    size = weekly.sum(axis=1)
    kept = size >= min_cases
    if kept.sum() < 3:
        return 1.0
    share = weekly.sum(axis=0) / weekly.sum()
    expected = size[kept, None] * share[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = np.where(expected > 0, (weekly[kept] - expected) ** 2 / expected, 0.0)
    return float(max(1.0, np.median(pearson.sum(axis=1) / (n_weeks - 1))))


def growth_test(
    curves: np.ndarray,
    totals: np.ndarray,
    *,
    recent_days: int,
    explained: np.ndarray,
    alpha: float,
    min_recent: int,
    min_growth: float,
) -> dict[str, np.ndarray]:
    """The emergence test of every topic at the end of each day that has at least ``2 *
    recent_days`` days before it, from its daily counts (``curves``, topics x days) and all cases'
    (``totals``).

    At each day's end, a topic's last ``recent_days`` days are tested against its days
    before (the conditional test of the module, its counts divided by the
    :func:`dispersion`), Benjamini-Hochberg across topics that day; it passes when
    significant, with ``min_recent`` recent cases, ``min_growth`` times its expected
    count, and not ``explained``. Returns today's ``p_value``, ``q_value``,
    ``expected``, ``growth`` and ``is_emerging``, ``run``: days since the first pass of
    the current episode (passes with fewer than ``recent_days`` failing days between
    them), 0 when not emerging, and ``expected_then``: the expected count on that first
    day (NaN when not emerging).
    """
    from scipy import special, stats

    n_topics, n_days = curves.shape
    look = max(1, n_days - 2 * recent_days)  # every day with two weeks of past before it
    ends = np.arange(n_days - look, n_days)
    split = ends - recent_days  # the last day before each recent window
    cum, total = np.cumsum(curves, axis=1), np.cumsum(totals)
    before = split >= 0
    earlier = np.where(before, cum[:, np.maximum(split, 0)], 0).astype(float)
    recent = cum[:, ends] - earlier
    total_earlier = np.where(before, total[np.maximum(split, 0)], 0).astype(float)
    share = (total[ends] - total_earlier) / np.maximum(total[ends], 1)
    expected = earlier * recent_days / np.maximum(split + 1, 1)
    phi = dispersion(curves, recent_days=recent_days)
    k, n = recent / phi, (recent + earlier) / phi
    testable = before & (k > 0) & (share > 0) & (share < 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(
            testable, special.betainc(np.maximum(k, 1e-9), n - k + 1.0, np.clip(share, 0, 1)), 1.0
        )
    q = stats.false_discovery_control(p, axis=0) if n_topics else p
    growth = (recent + 1.0) / (expected + 1.0)
    passes = (
        (q < alpha) & (recent >= min_recent) & (growth >= min_growth) & ~explained[:, None] & before
    )
    start = np.where(passes[:, -1], look - 1, -1)
    alive, quiet = passes[:, -1].copy(), np.zeros(n_topics, dtype=np.int64)
    for j in range(look - 2, -1, -1):  # a loop over days, vectorised across topics
        quiet = np.where(passes[:, j], 0, quiet + 1)
        alive &= quiet < recent_days
        start = np.where(alive & passes[:, j], j, start)
    first = np.maximum(start, 0)
    return {
        "expected_then": np.where(start >= 0, expected[np.arange(n_topics), first], np.nan),
        "p_value": p[:, -1],
        "q_value": q[:, -1],
        "expected": expected[:, -1],
        "growth": growth[:, -1],
        "is_emerging": passes[:, -1],
        "run": np.where(start >= 0, look - start, 0),
    }


def growth_summary(last_day: date, first_day: date, *, recent_days: int) -> pl.Expr:
    """The emergence sentence: "23 cases in the last 7 days against 1.2 expected; first
    seen 3 days ago; 80% in category other"."""
    ago = (pl.lit(last_day) - pl.col("first_seen")).dt.total_days()
    seen = (
        pl.when(pl.col("first_seen") < pl.lit(first_day + timedelta(days=recent_days)))
        .then(pl.lit("already there when the window starts"))
        .when(ago == 0)
        .then(pl.lit("first seen today"))
        .when(ago == 1)
        .then(pl.lit("first seen yesterday"))
        .otherwise(pl.format("first seen {} days ago", ago))
    )
    category = pl.when(pl.col("top_category").is_not_null()).then(
        pl.format(
            "; {}% in category {}",
            (pl.col("top_category_share") * 100).round(0).cast(pl.Int64),
            pl.col("top_category"),
        )
    )
    return pl.format(
        "{} cases in the last {} days against {} expected; {}{}",
        pl.col("recent_count"),
        pl.lit(recent_days),
        pl.col("expected").round(1),
        seen,
        category.fill_null(""),
    )
