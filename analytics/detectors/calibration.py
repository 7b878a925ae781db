"""Calibrated p-values: each series judged against its own past, whatever its noise.

- :func:`conformal_pvalues`: the tail probability of each point's statistic among the
  same series' earlier statistics (rank-based, over a trailing window), with a
  generalised Pareto tail fitted to the largest past values where the ranks run out.
- :func:`point_alpha`: the user's budget ("about one false alert per series per N
  days") as a per-point level, from the series' sampling step.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

__all__ = ["conformal_pvalues", "point_alpha"]

#: Statistics are clipped to this magnitude (an infinite or huge value ranks first
#: anyway, and a bounded one keeps the tail fit finite).
_CAP = 1e6


def point_alpha(false_alerts: float, per_days: float, step: timedelta, gap: int = 0) -> float:
    """The per-point level that gives ``false_alerts`` per ``per_days`` days on noise.

    Alerting points within ``gap`` points of each other form one incident, so the
    level ``a`` solves ``a (1 - a) ** gap = budget per point`` (independent points
    open an incident when none of the ``gap`` before them alerted).

    Parameters
    ----------
    false_alerts, per_days
        The budget: about ``false_alerts`` false alerts per series every ``per_days``
        days.
    step
        The spacing of the series' points.
    gap
        The merging gap of the incident rule, in points.

    Examples
    --------
    >>> point_alpha(1.0, 30, timedelta(days=1))
    0.03333333333333333
    >>> round(point_alpha(1.0, 30, timedelta(minutes=5)), 7)
    0.0001157
    >>> round(point_alpha(1.0, 30, timedelta(days=1), gap=3), 4)
    0.0374
    """
    if false_alerts <= 0 or per_days <= 0:
        raise ValueError("the budget needs a positive number of alerts and of days")
    budget = min(0.2, false_alerts / max(timedelta(days=per_days) / step, 1.0))
    lo, hi = budget, 1.0 / (gap + 1)  # a (1 - a) ** gap increases up to 1 / (gap + 1)
    if hi * (1.0 - hi) ** gap <= budget:
        return float(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * (1.0 - mid) ** gap < budget else (lo, mid)
    return float(lo)


def conformal_pvalues(
    stat: np.ndarray,
    *,
    window: int,
    min_history: int,
    refresh: int = 16,
    tail: float = 0.05,
    min_tail: int = 10,
    level: float | np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Upper-tail p-value of each cell of a (series x time) grid among its row's past.

    ``p = (1 + #past >= x) / (1 + n)`` over the last ``window`` non-missing cells
    before the cell's block (blocks of ``refresh`` columns share a reference set). It
    is exactly calibrated when the statistics of a row are exchangeable, whatever their
    distribution. Beyond the ``k``-th largest past value (``k`` = ``tail`` of the past,
    at least ``min_tail``) the p-value comes from a generalised Pareto tail fitted to
    those ``k`` exceedances (probability-weighted moments), so that levels smaller than
    ``1 / n`` are reachable. NaN where the cell is missing or its row has fewer than
    ``min_history`` past values. With ``level`` (one per row, or one for all) it also
    returns the grid of critical values: the statistic whose p-value is ``level``
    against the same reference (the edge of the band). With ``reference`` (a grid of
    the same shape, NaN where it has nothing) each cell is ranked among that grid's
    earlier cells instead of its own statistic's.

    Examples
    --------
    One hundred past values 1..100: 50.5 is exceeded by half of them; 100.5 by none,
    and the tail fitted to the ten largest puts it at 0.039:

    >>> past = np.arange(1.0, 101.0)
    >>> p = conformal_pvalues(np.array([np.r_[past, 100.5, 50.5]]), window=200,
    ...                       min_history=50, refresh=100)
    >>> p[0, 100:].round(3).tolist()
    [0.039, 0.505]
    """
    n_series, width = stat.shape
    out = np.full(stat.shape, np.nan)
    crit = np.full(stat.shape, np.nan)
    levels = np.broadcast_to(np.asarray(1.0 if level is None else level, float), (n_series,))
    x = np.clip(stat, -_CAP, _CAP)
    past = x if reference is None else np.clip(reference, -_CAP, _CAP)
    for start in range(0, width, refresh):
        lo, hi = max(0, start - window), min(width, start + refresh)
        query = x[:, start:hi]
        ref = past[:, lo:start]
        n = np.sum(~np.isnan(ref), axis=1)
        ok = n >= max(min_history, 1)
        if not ok.any():
            continue
        rows = np.flatnonzero(ok)
        p, c = _block_pvalues(ref[rows], n[rows], query[rows], tail, min_tail, levels[rows])
        out[rows, start:hi] = p
        crit[rows, start:hi] = c[:, None]
    return out if level is None else (out, crit)


def _block_pvalues(
    ref: np.ndarray,
    n: np.ndarray,
    query: np.ndarray,
    tail: float,
    min_tail: int,
    level: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """p-values of ``query`` cells against the sorted reference values of each row,
    and each row's critical value at ``level``."""
    n_rows, width = ref.shape
    ordered = np.sort(ref, axis=1)  # NaN last
    # Count past values below each query, all rows at once: sort the queries together
    # with the reference (queries first, so a stable sort puts each before the past
    # values equal to it); a query's place minus the queries before it is the count.
    q = np.nan_to_num(query, nan=-np.inf)
    merged = np.concatenate([q, np.where(np.isnan(ordered), np.inf, ordered)], axis=1)
    place = np.argsort(np.argsort(merged, axis=1, kind="stable"), axis=1, kind="stable")
    before = np.argsort(np.argsort(q, axis=1, kind="stable"), axis=1, kind="stable")
    below = place[:, : q.shape[1]] - before
    at_least = n[:, None] - below
    p = (1.0 + at_least) / (1.0 + n[:, None])
    # Empirical critical value: the smallest past value x with (1 + #>= x)/(1 + n) <= level.
    need = np.floor(level * (1.0 + n)).astype(np.int64) - 1  # values at or above it
    crit = np.take_along_axis(ordered, np.clip(n - need, 0, width - 1)[:, None], axis=1)[:, 0]
    crit = np.where(need >= 1, crit, np.inf)
    # Generalised Pareto tail over the k largest past values (k >= min_tail).
    k = np.minimum(np.maximum(np.ceil(tail * n), min_tail), n - 1).astype(np.int64)
    kmax = int(k.max())
    if kmax >= min_tail:
        idx = n[:, None] - kmax - 1 + np.arange(kmax + 1)[None, :]
        top = np.take_along_axis(ordered, np.clip(idx, 0, width - 1), axis=1)
        used = np.arange(kmax + 1)[None, :] > (kmax - k)[:, None]  # the k largest
        u = np.take_along_axis(ordered, np.clip(n - k - 1, 0, width - 1)[:, None], axis=1)
        y = np.where(used, top - u, np.nan)[:, 1:]
        sigma, xi = _gpd_pwm(y, k)
        excess = query - u
        fit = (k >= min_tail)[:, None] & (excess > 0) & (sigma[:, None] > 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = np.where(
                np.abs(xi)[:, None] < 1e-6,
                np.exp(-excess / sigma[:, None]),
                np.maximum(1 + xi[:, None] * excess / sigma[:, None], 0.0) ** (-1 / xi[:, None]),
            )
        tail_p = (k / (1.0 + n))[:, None] * np.maximum(s, 1e-300)
        # Never rarer than the past shows: where past values at least as large exist,
        # the tail may not claim less than their share (a spike recurring every day
        # stays as common as it has been, however light the fitted tail).
        p = np.where(fit, np.maximum(tail_p, np.where(at_least > 0, p, 0.0)), p)
        ratio = level * (1.0 + n) / np.maximum(k, 1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            beyond = np.where(
                np.abs(xi) < 1e-6, -sigma * np.log(ratio), sigma / xi * (ratio ** (-xi) - 1)
            )
        crit = np.where((k >= min_tail) & (ratio < 1) & (sigma > 0), u[:, 0] + beyond, crit)
    return np.where(np.isnan(query), np.nan, np.clip(p, 0.0, 1.0)), crit


def _gpd_pwm(y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shape of a generalised Pareto fit to the exceedances of each row
    (ascending, NaN-padded on the left), by probability-weighted moments (Hosking and
    Wallis, 1987), its shape raised by ``1 / sqrt(k)`` and kept within [0, 0.5]: never a
    bounded tail, whose end would make anything beyond it infinitely rare."""
    count = np.sum(~np.isnan(y), axis=1)
    rank = np.cumsum(~np.isnan(y), axis=1)  # 1..k along the valid cells
    weight = 1.0 - (rank - 0.35) / np.maximum(count, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        a0 = np.nanmean(y, axis=1) if y.shape[1] else np.zeros(len(k))
        a1 = np.nansum(np.where(np.isnan(y), 0.0, y) * weight, axis=1) / np.maximum(count, 1)
        denom = a0 - 2 * a1
        # The shape is raised by about one standard error: a tail fitted to a
        # hundred points is otherwise too light as often as too heavy, and the
        # too-light fits are the ones that raise false alerts.
        xi = np.clip(2.0 - a0 / denom + 1.0 / np.sqrt(np.maximum(count, 1)), 0.0, 0.5)
        sigma = np.where(denom > 0, 2 * a0 * a1 / denom, a0)
    return np.nan_to_num(sigma, nan=0.0), np.nan_to_num(xi, nan=0.0)
