"""The ``range`` detector: a value beyond everything the series did in its recent past.

A spike detector measures a point against the trailing scale of its residuals, and
ranks that among the series' earlier ones: on a bursty series (network bytes that jump
by a million now and then) a burst larger than any before is no rarer, in scales, than
the last one. This detector asks a plainer question: how far beyond the highest (or
below the lowest) value of the last ``span`` points is this one, in units of that
range? Inside the range the statistic is negative; a new record gets the share of the
range it breaks it by. As elsewhere the p-value is the statistic's rank among the
series' own earlier values, with the tail beyond them fitted to the top ``tail`` of
them. The range spans two weeks of 5-minute points: a shorter one forgets a large
event two weeks on and flags the first value above the smaller range that is left
(on nab-dev 2,000 points added two false runs).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.detectors.calibration import conformal_pvalues
from analytics.detectors.estimators import Direction, _Detector
from analytics.detectors.levels import _lagged

__all__ = ["RangeDetector"]


def _excess(y: np.ndarray, hi: np.ndarray, lo: np.ndarray, direction: str) -> np.ndarray:
    """How far ``y`` lies above ``hi`` (or below ``lo``) in units of ``hi - lo``
    (negative inside the range; beyond a range of zero, a large number)."""
    spread = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(spread > 0, (y - hi) / spread, np.sign(y - hi) * 1e6)
        down = np.where(spread > 0, (lo - y) / spread, np.sign(lo - y) * 1e6)
    stat = up if direction == "up" else down if direction == "down" else np.fmax(up, down)
    return np.where(np.isnan(y) | np.isnan(spread), np.nan, stat)


class RangeDetector(_Detector):
    """New records: a value beyond the range of the last ``span`` points, by a share
    of that range, ranked among the series' own earlier values of that share.

    Parameters
    ----------
    false_alerts, per_days, direction, gap
        As :class:`~analytics.detectors.estimators.SpikeDetector`.
    span : the past points whose highest and lowest values make the range.
    tail : the share of the past statistics the tail beyond them is fitted to.
    window, min_history
        As :class:`~analytics.detectors.estimators.SpikeDetector` (``min_history`` is
        also the fewest points a range is taken over).

    Examples
    --------
    A week of a bursty 5-minute series (60 bursts of 0-100 on a quiet floor), then a
    burst of 150: the spike detector, which has seen bursts of many scales before,
    does not flag it at one false alert a year; this one does.

    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> from analytics.detectors.estimators import SpikeDetector
    >>> rng = np.random.default_rng(5)
    >>> values = rng.normal(1.0, 0.1, 2000)
    >>> bursts = rng.choice(1900, 60, replace=False)
    >>> values[bursts] += rng.uniform(0, 100, 60)
    >>> values[1950] += 150.0
    >>> ts = [datetime(2026, 1, 1) + timedelta(minutes=5 * i) for i in range(2000)]
    >>> frame = pl.DataFrame({"ts": ts, "value": values})
    >>> RangeDetector(per_days=365.0).fit(frame).predict(frame).arg_true().to_list()
    [1950]
    >>> SpikeDetector(per_days=365.0).fit(frame).predict(frame).arg_true().to_list()
    []
    """

    name = "range"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        direction: Direction = "both",
        span: int = 4032,
        tail: float = 0.01,
        window: int = 2000,
        min_history: int = 50,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.span = span
        self.tail = tail
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _validate(self) -> None:
        super()._validate()
        if not (self.span >= 2 and 0 < self.tail < 1):
            raise ValueError("span must be at least 2, tail in (0, 1)")

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        span = min(self.span, y.shape[1])
        least = min(max(1, self.min_history), span)
        hi = _lagged(bn.move_max(y, span, min_count=least, axis=-1), 1)  # strictly before
        lo = _lagged(bn.move_min(y, span, min_count=least, axis=-1), 1)
        stat = _excess(y, hi, lo, self.direction)
        p, crit = conformal_pvalues(
            stat, window=self.window, min_history=self.min_history, level=alpha, tail=self.tail
        )
        with np.errstate(invalid="ignore"):
            reach = np.where(np.isfinite(crit), crit * (hi - lo), np.nan)
        return {
            "detector_names": [self.name],
            "which": np.zeros(y.shape),
            "expected": (hi + lo) / 2,
            "lower": lo - reach if self.direction != "up" else np.nan,
            "upper": hi + reach if self.direction != "down" else np.nan,
            "p_value": p,
            "threshold": -np.log10(alpha)[:, None],
            "stat": stat,
            "limit": crit,
        }
