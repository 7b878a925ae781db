"""Causal robust baselines on (series x time) grids.

Every statistic of a cell uses only the cells strictly before it (bottleneck's compiled
moving windows over a one-step lagged grid), so a spike never sits in its own baseline
and medians keep it out of the next ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

import bottleneck as bn
import numpy as np

from analytics.detectors._grid import in_threads

__all__ = ["moving", "robust_scale", "seasonal_baseline", "seasonal_offset"]


def moving(grid: np.ndarray, how: Literal["mean", "median"], window: int, least: int) -> np.ndarray:
    """Moving mean or median of the ``window`` cells strictly before each cell, along
    the last axis (NaN skipped; NaN where fewer than ``least`` are present).

    Blocks of rows go to a few threads (bottleneck lets go of the interpreter).

    >>> moving(np.array([[1.0, 2.0, 3.0, 100.0, 5.0]]), "median", 3, 1).tolist()
    [[nan, 1.0, 1.5, 2.0, 3.0]]
    """
    window = max(1, min(window, grid.shape[-1]))
    least = max(1, min(least, window))
    out = np.empty(grid.shape)
    if how == "mean":
        # Over a grid lagged by one cell (a running sum depends on where it starts).
        lagged = np.empty_like(grid)
        lagged[..., :1] = np.nan
        lagged[..., 1:] = grid[..., :-1]

        def block(rows: slice) -> None:
            out[rows] = bn.move_mean(lagged[rows], window, min_count=least, axis=-1)

    else:
        # The median of the window ending at the cell before, one cell shorter at most
        # over the grid without its last cell; a median depends only on the values.
        window = min(window, grid.shape[-1] - 1)
        if least > window or grid.size == 0:
            return np.full(grid.shape, np.nan)
        out[..., :1] = np.nan

        def block(rows: slice) -> None:
            out[rows, ..., 1:] = bn.move_median(
                grid[rows, ..., :-1], window, min_count=least, axis=-1
            )

    in_threads(block, [slice(r, r + _ROWS) for r in range(0, len(grid), _ROWS)])
    return out


#: Rows per block of :func:`moving` (a few megabytes of a daily grid).
_ROWS = 512


@contextlib.contextmanager
def shared_offsets() -> Iterator[None]:
    """Within the block, the seasonal offsets of one grid are computed once (the
    ensemble's members score the same grid with the same cycles).

    >>> y = np.tile(np.r_[1.0, 5.0, 1.0, 1.0], (2, 10))
    >>> with shared_offsets():
    ...     a = seasonal_offset(y, 4, 3)
    ...     b = seasonal_offset(y, 4, 3)
    >>> a is b, seasonal_offset(y, 4, 3) is a
    (True, False)
    """
    token = _OFFSETS.set({})
    try:
        yield
    finally:
        _OFFSETS.reset(token)


#: The offsets computed within :func:`shared_offsets`, by grid, period and seasons (the
#: grid is kept with them, so that its ``id`` is not reused meanwhile).
_OFFSETS: ContextVar[dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] | None] = ContextVar(
    "offsets", default=None
)


def seasonal_offset(y: np.ndarray, period: int, seasons: int) -> np.ndarray:
    """Offset of each phase of a cycle of ``period`` points: the median, over the last
    ``seasons`` earlier cycles, of the value minus the mean of the cycle before it."""
    shared = _OFFSETS.get()
    key = (id(y), period, seasons)
    if shared is not None and key in shared and shared[key][0] is y:
        return shared[key][1]
    offset = _offset(y, period, seasons)
    if shared is not None:
        shared[key] = (y, offset)
    return offset


def _offset(y: np.ndarray, period: int, seasons: int) -> np.ndarray:
    n_series, width = y.shape
    padded = -(-width // period) * period
    grid = np.full((n_series, padded), np.nan)
    grid[:, :width] = y - moving(y, "mean", period, max(1, period // 2))
    cycles = grid.reshape(n_series, padded // period, period).transpose(0, 2, 1)
    offset = moving(cycles, "median", seasons, max(1, seasons // 2))
    return offset.transpose(0, 2, 1).reshape(n_series, padded)[:, :width]


def seasonal_baseline(
    y: np.ndarray, *, periods: list[int], level_window: int, seasons: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected value of each cell and the model chosen for it (0: level only, ``i``:
    the ``i``-th period of ``periods``).

    Candidates: the median of the last ``level_window`` points (no seasonality), and
    for each period the same level of the de-seasonalised values plus the phase's
    seasonal offset. Each cell takes the candidate with the smallest mean absolute
    error over the previous cycle (a seasonal one must beat the plain level by 10%),
    so a series with no seasonality keeps the plain level and one with a daily cycle
    takes it once it has seen two.

    >>> t = np.arange(24 * 10)
    >>> y = np.where(t % 24 < 12, 10.0, 20.0)[None, :]
    >>> expected, model = seasonal_baseline(y, periods=[24], level_window=6, seasons=3)
    >>> bool(np.allclose(expected[0, -48:], y[0, -48:])), int(model[0, -1])
    (True, 1)
    """
    least = max(1, level_window // 2)
    candidates = [moving(y, "median", level_window, least)]
    for period in periods:
        offset = seasonal_offset(y, period, seasons)
        candidates.append(moving(y - offset, "median", level_window, least) + offset)
    if len(candidates) == 1:
        return candidates[0], np.zeros(y.shape, np.int64)
    span = max(periods)
    best = np.zeros(y.shape)
    model = np.zeros(y.shape, np.int64)
    expected = candidates[0]
    for i, candidate in enumerate(candidates):
        err = moving(np.abs(y - candidate), "mean", span, max(1, span // 2))
        err = np.where(np.isnan(err), np.inf, err * (1.0 if i == 0 else 1.1))
        if i == 0:
            best = err
            continue
        better = err < best  # the first of equal errors wins
        model = np.where(better, i, model)
        expected = np.where(better, candidate, expected)
        best = np.minimum(best, err)
    model = np.where(np.isinf(best), 0, model)
    expected = np.where(np.isinf(best), candidates[0], expected)
    return np.where(np.isnan(expected), candidates[0], expected), model


def robust_scale(resid: np.ndarray, window: int, least: int, fallback: int = 0) -> np.ndarray:
    """Trailing robust scale of residuals: 1.4826 x their median absolute value, or
    1.2533 x their mean absolute value where most are exactly zero (quantised data),
    or, where all ``window`` are zero (a series idle between bursts), 1.2533 x the
    mean absolute value of the last ``fallback`` residuals (so that a burst is measured
    against earlier bursts, not against zero).

    >>> robust_scale(np.array([[1.0, -1.0, 1.0, -1.0, 0.0]]), 4, 2).round(2).tolist()
    [[nan, nan, 1.48, 1.48, 1.48]]
    >>> robust_scale(np.array([[4.0, 0.0, 0.0, 0.0, 0.0]]), 2, 1, 8).round(2).tolist()
    [[nan, 5.93, 2.97, 1.67, 1.25]]
    """
    absolute = np.abs(resid)
    mad = moving(absolute, "median", window, least) * 1.4826
    mean = moving(absolute, "mean", window, least) * 1.2533
    scale = np.where(mad > 0, mad, mean)
    if fallback > window:
        far = moving(absolute, "mean", fallback, least) * 1.2533
        scale = np.where(scale > 0, scale, far)
    return scale
