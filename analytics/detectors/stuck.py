"""The ``stuck`` detector: outages, a value stuck or at (near) zero for longer than ever before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from analytics.detectors.baseline import moving
from analytics.detectors.calibration import conformal_pvalues, judged_cells
from analytics.detectors.estimator import BaseDetector

__all__ = ["StuckDetector"]


def _runs(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of the run of ``True`` ending at each cell (0 where ``False``), and, at
    each ``False`` cell, the length of the run that ended just before it (the
    completed runs, NaN elsewhere).

    >>> r, done = _runs(np.array([[False, True, True, False, False, True]]))
    >>> r.tolist(), done.tolist()
    ([[0, 1, 2, 0, 0, 1]], [[0.0, nan, nan, 2.0, 0.0, nan]])
    """
    idx = np.arange(c.shape[1])
    last_false = np.maximum.accumulate(np.where(c, -1, idx), axis=1)
    r = np.where(c, idx - last_false, 0)
    before = np.zeros(c.shape, np.int64)
    before[:, 1:] = r[:, :-1]
    return r, np.where(c, np.nan, before.astype(float))


def _run_pvalues(c: np.ndarray, window: int, min_history: int) -> tuple[np.ndarray, np.ndarray]:
    """p-value of the current run of ``c`` at each cell among the series' completed
    runs, and the longest completed run before the cell.

    ``p = (1 + #earlier runs at least as long) / (1 + #earlier runs)``, where every
    point outside a run closes one (of length 0 when none was open): a run longer than
    any before is as rare as the rarest run, shrunk by ``((longest + 1) / (r + 1))**2``
    as it grows. 1 outside a run; NaN with fewer than ``min_history`` earlier runs.
    """
    r, done = _runs(c)
    # Only the cells in a run are ranked (the others cost nothing): 1 where judged.
    inside = np.where(r > 0, r, np.nan)
    p = conformal_pvalues(inside, window=window, min_history=min_history, reference=done)
    assert isinstance(p, np.ndarray)
    lagged = np.full(c.shape, np.nan)
    lagged[:, 1:] = done[:, :-1]
    longest = np.fmax.accumulate(np.nan_to_num(lagged, nan=0.0), axis=1)
    count = np.cumsum(~np.isnan(lagged), axis=1)
    beyond = (1.0 / (1.0 + count)) * ((longest + 1.0) / (r + 1.0)) ** 2
    p = np.where(r > longest, np.minimum(p, beyond), p)  # NaN stays: too few runs
    judged = judged_cells(done, window=window, min_history=min_history)
    return np.where(r > 0, p, np.where(judged, 1.0, np.nan)), longest


class StuckDetector(BaseDetector):
    """Outages: a value that stays stuck, or a fall to (near) zero, for longer than the
    series ever did before.

    Two runs are measured at each point: how many points in a row the value has not
    changed, and how many it has stayed near zero (at most ``near_zero`` times the
    trailing median of its magnitude). Each run's p-value is its rank among the same
    series' earlier runs (every point outside a run closes one), so a series that is
    often flat or often at zero must stay so longer than ever before, while one that
    never was is flagged on its first stuck points. The smaller p-value, doubled,
    judges the point; a series stuck from its start has no earlier runs and is not
    judged.

    Parameters
    ----------
    false_alerts, per_days, min_history, gap : as
        :class:`~analytics.detectors.spikes.SpikeDetector`.
    level_window : points in the trailing median magnitude that "near zero" is relative
        to.
    near_zero : the fraction of that magnitude below which a value is near zero.
    same_value : also judge runs of one unchanged value (off by default: on nab-dev
        they raised 6 more false runs and found no window that the fall to zero and
        the other detectors did not).
    window : past points whose runs a run is ranked among.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> values = np.random.default_rng(4).normal(100, 5, 600)
    >>> values[400:450] = values[399]
    >>> ts = [datetime(2026, 1, 1) + timedelta(hours=i) for i in range(600)]
    >>> frame = pl.DataFrame({"ts": ts, "value": values})
    >>> StuckDetector(same_value=True).fit(frame).predict(frame).arg_true().to_list()
    [400]
    >>> values[400:450] = 0.0
    >>> StuckDetector().fit(frame.with_columns(value=values)).predict(
    ...     frame.with_columns(value=values)).arg_true().to_list()
    [400]
    """

    name = "stuck"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        level_window: int = 288,
        near_zero: float = 0.1,
        same_value: bool = False,
        window: int = 10_000,
        min_history: int = 50,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.level_window = level_window
        self.near_zero = near_zero
        self.same_value = same_value
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        known = ~np.isnan(y)
        same = np.zeros(y.shape, bool)
        same[:, 1:] = known[:, 1:] & (y[:, 1:] == y[:, :-1])
        level = moving(np.abs(y), "median", self.level_window, 12)
        with np.errstate(invalid="ignore"):
            low = known & (np.abs(y) <= self.near_zero * level)
        if not self.same_value:
            same[:] = False  # runs of 0: never judged
        p_same, m_same = _run_pvalues(same, self.window, self.min_history)
        p_low, m_low = _run_pvalues(low, self.window, self.min_history)
        use_low = np.nan_to_num(p_low, nan=1.0) < np.nan_to_num(p_same, nan=1.0)
        p = np.fmin(p_same, p_low)
        stat = np.where(use_low, _runs(low)[0], _runs(same)[0]).astype(float)
        return {
            "detector_names": ["stuck", "zero"],
            "which": use_low,
            "expected": moving(y, "median", self.level_window, 1),
            "lower": np.nan,
            "upper": np.nan,
            "p_value": np.where(known, np.clip(2.0 * p, 0.0, 1.0), np.nan),
            "threshold": -np.log10(alpha)[:, None],
            "stat": stat,
            "limit": np.where(use_low, m_low, m_same),
        }
