"""Quiet hours: the residual scale of each time of day, from the series' earlier days.

Many series are far noisier at some hours than at others (an ad exchange's cost per
click swings at noon and barely moves at night). A trailing scale over all hours
judges a night-time jump against daytime swings; :func:`quiet_hours` gives each cell
the factor by which its time of day was quieter than the whole day over the series'
earlier days, so that a detector can shrink its scale there (never widen it: the
noisy hours keep the overall scale).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from analytics.detectors.baseline import moving, seasonal_offset

__all__ = ["daily_quiet", "quiet_hours"]


def _earlier(cumulative: np.ndarray, days: int) -> np.ndarray:
    """Sums over the ``days`` cycles strictly before each cycle (axis 1), from the
    cumulative sums along it."""
    before = np.zeros_like(cumulative)
    before[:, 1:] = cumulative[:, :-1]
    dropped = np.zeros_like(cumulative)
    dropped[:, days + 1 :] = cumulative[:, : -days - 1]
    earlier: np.ndarray = before - dropped
    return earlier


def quiet_hours(
    resid: np.ndarray,
    period: int,
    *,
    days: int,
    half: int,
    floor: float = 0.5,
    margin: float = 1.0,
) -> np.ndarray:
    """Factor of each cell's scale, in ``[floor, 1]``: the mean absolute residual at
    the cell's phase of the cycle of ``period`` points (within ``half`` phases either
    side) over the ``days`` cycles before the cell's, raised by ``margin`` standard
    errors (a Gaussian's absolute values vary by 0.75 of their mean), divided by the
    mean absolute residual of those cycles at all phases. 1 where fewer than two
    earlier cycles have that phase, or the phase is not quieter than the day beyond
    the margin (so that on noise without a daily rhythm, whose phases differ only by
    chance, the factor stays 1 nearly everywhere).

    Parameters
    ----------
    resid : (series x time) residuals, NaN where missing.
    period : points in a cycle (a day).
    days : earlier cycles the scales are measured over.
    half : phases either side pooled with a cell's own.
    floor : the smallest factor (a quiet hour is judged at no less than this part of
        the overall scale).
    margin : standard errors of the phase's mean added before comparing (1 on
        nab-dev: as many windows as 0 with one false run more, and none of the false
        alerts that 0 raised on short hourly noise; 2 lost a window).

    Examples
    --------
    Days whose first half is ten times quieter than their second: from the third day
    on, the quiet half gets the floor (its scale is a fifth of the day's), the noisy
    half 1.

    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0.0, 1.0, (1, 24 * 5))
    >>> resid = noise * np.tile(np.r_[np.full(12, 0.1), np.full(12, 1.0)], 5)
    >>> factor = quiet_hours(resid, 24, days=7, half=1)
    >>> factor[0, :48].min().item(), factor[0, 50:58].tolist(), factor[0, 62:70].min().item()
    (1.0, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], 1.0)
    """
    n_series, width = resid.shape
    cycles = -(-width // period)
    absolute = np.full((n_series, cycles * period), np.nan)
    absolute[:, :width] = np.abs(resid)
    absolute = absolute.reshape(n_series, cycles, period)
    known = ~np.isnan(absolute)
    values = np.where(known, absolute, 0.0)
    pooled = np.zeros_like(values)
    count = np.zeros_like(values)
    for shift in range(-half, half + 1):  # neighbouring phases (the cycle wraps)
        pooled += np.roll(values, shift, axis=2)
        count += np.roll(known, shift, axis=2)
    phase_sum = _earlier(np.cumsum(pooled, axis=1), days)
    phase_count = _earlier(np.cumsum(count, axis=1), days)
    day_sum = _earlier(np.cumsum(values.sum(axis=2, keepdims=True), axis=1), days)
    day_count = _earlier(np.cumsum(known.sum(axis=2, keepdims=True), axis=1), days)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = (phase_sum / phase_count) / (day_sum / day_count)
        factor = factor * (1.0 + margin * 0.75 / np.sqrt(phase_count))
    enough = (phase_count >= 2 * (2 * half + 1)) & np.isfinite(factor)
    factor = np.where(enough, np.clip(factor, floor, 1.0), 1.0)
    return factor.reshape(n_series, cycles * period)[:, :width]


def daily_quiet(
    y: np.ndarray, step: timedelta, *, days: int, seasons: int, level_window: int
) -> np.ndarray | float:
    """:func:`quiet_hours` of a (series x time) grid sampled every ``step``: of its
    residuals around a daily cycle (a trailing median level of ``level_window`` points
    plus each time of day's offset, the median over ``seasons`` days), times of day
    pooled within an hour either side. 1 for a series without a daily cycle of at
    least 4 points or with less than two days. The residuals are the daily model's
    even where a detector's baseline uses another, so that the hours' quiet is the
    noise's, not the rhythm a level-only baseline missed.

    >>> hourly = np.tile(np.r_[np.zeros(12), np.ones(12)], 20)[None, :]
    >>> daily_quiet(hourly, timedelta(days=1), days=14, seasons=4, level_window=12)
    1.0
    >>> noise = np.random.default_rng(1).normal(0.0, 1.0, (1, 24 * 20))
    >>> quiet = noise * np.tile(np.r_[np.full(12, 0.1), np.ones(12)], 20)
    >>> factor = daily_quiet(50.0 + quiet, timedelta(hours=1), days=7, seasons=4,
    ...                      level_window=12)
    >>> np.unique(factor[0, -23:-13]).tolist(), np.unique(factor[0, -11:-1]).tolist()
    ([0.5], [1.0])
    """
    per_day = timedelta(days=1) / step
    if per_day < 4 or abs(per_day - round(per_day)) > 1e-6 or y.shape[1] < 2 * per_day:
        return 1.0
    period = round(per_day)
    offset = seasonal_offset(y, period, seasons)
    expected = moving(y - offset, "median", level_window, max(1, level_window // 2)) + offset
    half = max(1, round(timedelta(hours=1) / step))
    return quiet_hours(y - expected, period, days=days, half=half)
