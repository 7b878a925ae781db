"""The ``shift`` detector: sustained level shifts, trend changes and rises of volatility (CUSUM)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from analytics.detectors._grid import periods
from analytics.detectors.baseline import robust_scale, seasonal_baseline
from analytics.detectors.calibration import conformal_pvalues
from analytics.detectors.estimator import BaseDetector, Direction, standardise

__all__ = ["ShiftDetector"]


class ShiftDetector(BaseDetector):
    """Sustained level shifts and trend changes: a two-sided CUSUM of standardised
    residuals against a slow causal baseline.

    ``S+ = max(0, S+ + z - drift)`` (and ``S-`` with ``-z``), computed for all series
    at once as the cumulative sum minus its running minimum; ``z`` is clipped at
    ``clip`` so that one spike cannot make a shift. The statistic is calibrated like
    every detector here: by its rank among the series' own past values of it. Once the
    slow baseline has caught up with a shift, ``z`` returns to zero and the statistic
    decays: the shift is one incident.

    Parameters
    ----------
    false_alerts, per_days, direction, seasons, scale_window, window, min_history, gap
        As :class:`~analytics.detectors.spikes.SpikeDetector`.
    level_window : points in the slow trailing median level.
    drift : the allowance per point, in scales (half the smallest shift of interest).
    clip : largest standardised residual one point contributes.
    volatility : the allowance per point of a third CUSUM, of ``|z|`` (clipped), that
        catches a sustained rise of volatility (``None``: level shifts only); its alerts
        are reported as detector ``"volatility"``.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> rng = np.random.default_rng(1)
    >>> values = rng.normal(100, 5, 600)
    >>> values[400:] += 8
    >>> ts = [datetime(2026, 1, 1) + timedelta(hours=i) for i in range(600)]
    >>> frame = pl.DataFrame({"ts": ts, "value": values})
    >>> opened = ShiftDetector().fit(frame).predict(frame).arg_true().to_list()
    >>> len(opened), 400 <= opened[0] < 420
    (1, True)
    """

    name = "shift"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        direction: Direction = "both",
        level_window: int = 96,
        seasons: int = 4,
        scale_window: int = 200,
        drift: float = 0.5,
        clip: float = 4.0,
        volatility: float | None = 1.0,
        window: int = 2000,
        min_history: int = 50,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.level_window = level_window
        self.seasons = seasons
        self.scale_window = scale_window
        self.drift = drift
        self.clip = clip
        self.volatility = volatility
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        expected, _ = seasonal_baseline(
            y,
            periods=periods(step, y.shape[1]),
            level_window=self.level_window,
            seasons=self.seasons,
        )
        resid = y - expected
        scale = robust_scale(
            resid, self.scale_window, max(2, self.scale_window // 4), fallback=self.window
        )
        z = np.clip(standardise(resid, scale), -self.clip, self.clip)
        known = ~np.isnan(z)
        z0 = np.where(known, z, 0.0)
        sides = {"up": z0, "down": -z0}
        stats = []
        for side, values in sides.items():
            if self.direction in (side, "both"):
                c = np.cumsum(np.where(known, values - self.drift, 0.0), axis=1)
                stats.append(c - np.minimum(np.minimum.accumulate(c, axis=1), 0.0))
        if self.volatility is not None:
            # |z| of Gaussian noise averages 0.8 scales: a run of larger ones, either
            # sign, is a rise of volatility that a level CUSUM averages away.
            values = np.abs(z0) - self.volatility
            c = np.cumsum(np.where(known, values, 0.0), axis=1)
            stats.append(c - np.minimum(np.minimum.accumulate(c, axis=1), 0.0))
        side = np.argmax(np.stack(stats), axis=0)
        which = (side == len(stats) - 1) if self.volatility is not None else np.zeros(y.shape)
        stat = np.where(known & ~np.isnan(y), np.maximum.reduce(stats), np.nan)
        p, crit = conformal_pvalues(
            stat, window=self.window, min_history=self.min_history, level=alpha
        )
        return {
            "detector_names": ["shift", "volatility"],
            "which": which,
            "expected": expected,
            "lower": np.nan,
            "upper": np.nan,
            "p_value": p,
            "threshold": -np.log10(alpha)[:, None],
            "stat": stat,
            "limit": crit,
        }
