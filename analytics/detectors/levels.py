"""The ``level`` detector: the last hour's median against the two days before it.

A spike detector judges each point against a trailing level that follows a shift
within a few points, and a CUSUM's excursions all saturate at the same height once a
shift is larger than its clip: a second, larger shift after an earlier one looks no
rarer than the first. This detector compares the median of the last ``recent_minutes``
(one point cannot move it) with the median of the ``past_hours`` before them, in units
of their robust scale, so that a shift's size is what it is ranked by, and a shift
larger than any the series made before gets a small p-value even when the series
shifted once already. As elsewhere the p-value is the statistic's rank among the
series' own earlier values; the tail beyond them is fitted to the top 1% only (the top
5% of a statistic that stays high for hours after each shift is mostly one shift).
The ensemble runs it over the last hour and over the last four hours (a bump of three
hours is a shift of four hours' median that an hour's median shares with shorter
bumps before it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.detectors.baseline import moving, robust_scale
from analytics.detectors.calibration import conformal_pvalues
from analytics.detectors.estimator import BaseDetector, Direction, oriented, standardise

__all__ = ["LevelDetector", "lagged", "level_name"]


def level_name(minutes: float) -> str:
    """The name an alert of the level detector carries: ``"level"`` for the hour, else
    the span in hours (the ensemble judges more than one span).

    >>> level_name(60.0), level_name(240.0), level_name(90.0)
    ('level', 'level 4h', 'level 1.5h')
    """
    return "level" if minutes == 60 else f"level {minutes / 60:g}h"


def lagged(grid: np.ndarray, k: int) -> np.ndarray:
    """The grid moved ``k`` cells later along the last axis (NaN in front)."""
    if k == 0:
        return grid
    out = np.full(grid.shape, np.nan)
    out[:, k:] = grid[:, :-k]
    return out


def _resolution(y: np.ndarray, window: int) -> np.ndarray:
    """The smallest non-zero step between consecutive values over the ``window`` points
    up to each cell: the series' resolution (a median that moves by less than it has
    not moved)."""
    step = np.full(y.shape, np.nan)
    step[:, 1:] = np.abs(np.diff(y, axis=1))
    step = np.where(step > 0, step, np.nan)
    smallest: np.ndarray = bn.move_min(step, min(window, y.shape[1]), min_count=1, axis=-1)
    return smallest


class LevelDetector(BaseDetector):
    """Level shifts: the median of the last ``recent_minutes`` against the median of
    the ``past_hours`` before them, over the robust scale of those past points (at
    least the series' resolution), ranked among the series' own earlier values.

    A series sampled every ``recent_minutes / 4`` or slower is not judged (its
    p-values are missing): an hour of hourly points has no median to speak of.

    Parameters
    ----------
    false_alerts, per_days, direction, gap
        As :class:`~analytics.detectors.spikes.SpikeDetector`.
    recent_minutes : the span of the recent median.
    past_hours : the span of the past median and scale before it.
    tail : the share of the past statistics the tail beyond them is fitted to.
    min_shift : the smallest shift, in noise scales, that may alert (p = 1 below it,
        however rare among the series' own: a mostly-zero disk series whose four-hour
        median leaves zero by 0.08 scales, or a quantised CPU series whose median moves by
        one jitter step, broke their records on nab-dev). Seventh round: 0.5-2 all
        removed the same 2 false runs of the ensemble and no window.
    window, min_history
        As :class:`~analytics.detectors.spikes.SpikeDetector`.

    Examples
    --------
    Two weeks of 5-minute noise: a spike of 60 scales on day 3 as the level rises by
    3, and a rise of 12 more on day 10. The spike detector finds the spike and then
    nothing (every later jump is small beside it); this one finds the second rise
    half an hour in (the first came too early in its history to be judged rare).

    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> from analytics.detectors.spikes import SpikeDetector
    >>> values = np.random.default_rng(0).normal(10.0, 1.0, 12 * 24 * 14)
    >>> values[900] += 60.0
    >>> values[901:] += 3.0
    >>> values[2880:] += 12.0
    >>> ts = [datetime(2026, 1, 1) + timedelta(minutes=5 * i) for i in range(values.size)]
    >>> frame = pl.DataFrame({"ts": ts, "value": values})
    >>> LevelDetector().fit(frame).predict(frame).arg_true().to_list()
    [2885]
    >>> SpikeDetector().fit(frame).predict(frame).arg_true().to_list()
    [900]
    """

    name = "level"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        direction: Direction = "both",
        recent_minutes: float = 60.0,
        past_hours: float = 48.0,
        tail: float = 0.01,
        min_shift: float = 0.5,
        window: int = 2000,
        min_history: int = 50,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.recent_minutes = recent_minutes
        self.past_hours = past_hours
        self.tail = tail
        self.min_shift = min_shift
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _validate(self) -> None:
        super()._validate()
        if not (self.recent_minutes > 0 and self.past_hours > 0 and 0 < self.tail < 1):
            raise ValueError("recent_minutes and past_hours must be positive, tail in (0, 1)")
        if self.min_shift < 0:
            raise ValueError("min_shift must not be negative")

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        m = int(round(timedelta(minutes=self.recent_minutes) / step))
        past = max(2, int(round(timedelta(hours=self.past_hours) / step)))
        if m < 4:
            nothing = np.full(y.shape, np.nan)
            return {
                "detector_names": [level_name(self.recent_minutes)],
                "which": np.zeros(y.shape),
                "expected": nothing,
                "lower": np.nan,
                "upper": np.nan,
                "p_value": nothing,
                "threshold": -np.log10(alpha)[:, None],
                "stat": nothing,
                "limit": nothing,
            }
        recent = bn.move_median(y, min(m, y.shape[1]), min_count=m // 2 + 1, axis=-1)
        level = moving(y, "median", past, past // 2)  # the points strictly before
        scale = robust_scale(y - level, past, past // 4, fallback=self.window)
        # The past ends where the recent window starts.
        expected = lagged(level, m - 1)
        scale = np.fmax(lagged(scale, m - 1), lagged(_resolution(y, past), m))
        stat = oriented(standardise(recent - expected, scale), self.direction)
        stat = np.where(np.isnan(y), np.nan, stat)
        p, crit = conformal_pvalues(
            stat, window=self.window, min_history=self.min_history, level=alpha, tail=self.tail
        )
        with np.errstate(invalid="ignore"):
            p = np.where((stat < self.min_shift) & ~np.isnan(p), 1.0, p)
        crit = np.where(np.isnan(crit), crit, np.fmax(crit, self.min_shift))
        with np.errstate(invalid="ignore"):
            half = np.where(np.isfinite(crit), crit * scale, np.nan)
        return {
            "detector_names": [level_name(self.recent_minutes)],
            "which": np.zeros(y.shape),
            "expected": expected,
            "lower": expected - half if self.direction != "up" else np.nan,
            "upper": expected + half if self.direction != "down" else np.nan,
            "p_value": p,
            "threshold": -np.log10(alpha)[:, None],
            "stat": stat,
            "limit": crit,
        }
