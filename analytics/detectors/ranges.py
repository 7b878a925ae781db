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

Beyond the largest earlier value of the statistic (the record margin of the series'
largest earlier record, at least ``record_floor`` of the range) the p-value is a Pareto
tail from the empirical ``1 / (n + 1)`` rather than the fitted one
(:func:`~analytics.detectors.calibration.record_tail`): a record that beats the range
by twice the largest earlier margin is then about ``1 / (256 (n + 1))``, whatever the
few small records the fitted tail saw (records by less than ``record_floor`` of the
range keep the fitted tail).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.detectors.calibration import conformal_pvalues, record_tail
from analytics.detectors.estimator import BaseDetector, Direction
from analytics.detectors.levels import lagged

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


class RangeDetector(BaseDetector):
    """New records: a value beyond the range of the last ``span`` points, by a share
    of that range, ranked among the series' own earlier values of that share.

    Parameters
    ----------
    false_alerts, per_days, direction, gap
        As :class:`~analytics.detectors.spikes.SpikeDetector`.
    span : the past points whose highest and lowest values make the range.
    tail : the share of the past statistics the tail beyond them is fitted to.
    record_index, record_floor : beyond the largest earlier statistic (at least
        ``record_floor``) the p-value is ``(largest / x) ** record_index / (n + 1)``
        (``record_index=None``: the fitted tail). The floor keeps the ratio of two tiny
        margins from counting (``art_noisy`` on nab-dev, with no floor: a new high by
        0.001 of its range got p = 7e-9; with 0.05, two weeks of Gaussian noise broke its
        largest margin of 0.052 by 0.068 and alerted): noise breaks its records by a few
        hundredths of its range, so a record by less than a tenth is judged by the
        fitted tail alone. With the ensemble's tenth of the level, a record beyond a
        series' small earlier ones alerts from about 0.15 of the range. Seventh round on
        nab-dev: with the warm-up below it found ``grok_asg_anomaly``'s record spike
        (45.6 where nothing had passed 40, 0.185 of the range; the fitted tail gave p =
        2.4e-4, ten times the member's level) and lost nothing; indices 6-32 and floors
        0.02-0.1 did the same, index 4 lost ``ec2_network_in_5abac7``'s record, floors
        0.15 and 0.2 lost the grok spike.
    window, min_history
        As :class:`~analytics.detectors.spikes.SpikeDetector` (``min_history`` is
        also the fewest points a range is taken over: 288, a day of 5-minute points, so
        that the records of a file's first hours, over a range of a few points, are not
        what later records are ranked among; with 50 ``grok_asg_anomaly``'s first-hour
        record of 12.6 ranges stayed the largest. On nab-dev 288 and 576 found the same
        windows in the ensemble, 144 and 1,000 one fewer; alone 288 found 22 windows for
        2 false runs, 50 21 for 2, 576 18 for 3).

    Examples
    --------
    A week of a bursty 5-minute series (60 bursts of 0-100 on a quiet floor), then a
    burst of 150: the spike detector, which has seen bursts of many scales before,
    does not flag it at one false alert a year; this one does.

    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> from analytics.detectors.spikes import SpikeDetector
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
        record_index: float | None = 8.0,
        record_floor: float = 0.1,
        window: int = 2000,
        min_history: int = 288,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.span = span
        self.tail = tail
        self.record_index = record_index
        self.record_floor = record_floor
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _validate(self) -> None:
        super()._validate()
        if not (self.span >= 2 and 0 < self.tail < 1):
            raise ValueError("span must be at least 2, tail in (0, 1)")
        if self.record_floor < 0:
            raise ValueError("record_floor must not be negative")

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        span = min(self.span, y.shape[1])
        least = min(max(1, self.min_history), span)
        hi = lagged(bn.move_max(y, span, min_count=least, axis=-1), 1)  # strictly before
        lo = lagged(bn.move_min(y, span, min_count=least, axis=-1), 1)
        stat = _excess(y, hi, lo, self.direction)
        p, crit = conformal_pvalues(
            stat, window=self.window, min_history=self.min_history, level=alpha, tail=self.tail
        )
        if self.record_index is not None:
            p, crit = record_tail(
                p,
                crit,
                stat,
                window=self.window,
                index=self.record_index,
                level=alpha,
                least=self.record_floor,
                replace=True,
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
