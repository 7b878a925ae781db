"""The ``block`` detector: spikes and dips of a series' means over blocks of time.

A sub-hourly series is cut into consecutive blocks of ``span_minutes`` (an hour of
5-minute points is 12), and each block's mean is judged like a point by
:class:`~analytics.detectors.spikes.SpikeDetector` on the grid of block means:
a causal seasonal baseline of earlier blocks, a trailing robust scale, a conformal
p-value among the series' own earlier blocks, at the per-block level the budget gives
at the block's length. Averaging is what it adds: a slow drift or a cluster of bursts
that no single point shows (each point stays within what the series did before) moves
an hour's mean further than the series' hours ever moved. A block's verdict is known
once it is complete, so it is reported on the block's last point.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from analytics.detectors.calibration import point_alpha
from analytics.detectors.estimator import BaseDetector, Direction
from analytics.detectors.spikes import SpikeDetector

__all__ = ["BlockDetector", "block_means"]


def block_means(y: np.ndarray, k: int) -> np.ndarray:
    """Means of consecutive blocks of ``k`` cells along the last axis (NaN skipped; NaN
    where fewer than half of a block's cells are known; an incomplete last block is
    left out).

    >>> block_means(np.array([[1.0, 3.0, np.nan, 5.0, 7.0, np.nan, 9.0]]), 2).tolist()
    [[2.0, 5.0, 7.0]]
    """
    n, width = y.shape
    cells = y[:, : width // k * k].reshape(n, width // k, k)
    known = np.sum(~np.isnan(cells), axis=2)
    total = np.nansum(cells, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * known >= k, total / known, np.nan)


def _on_last_point(blocks: np.ndarray, k: int, width: int) -> np.ndarray:
    """A (series x block) grid spread back on the points: each block's value on its
    last point, NaN elsewhere."""
    out = np.full((blocks.shape[0], width), np.nan)
    out[:, k - 1 : blocks.shape[1] * k : k] = blocks
    return out


class BlockDetector(BaseDetector):
    """Spikes and dips of the means over blocks of ``span_minutes`` (an hour), judged
    as :class:`~analytics.detectors.spikes.SpikeDetector` judges points, on the grid
    of block means.

    A series sampled every ``span_minutes / 2`` or slower has no blocks and is not
    judged (its p-values are missing): this detector adds to the point detectors only
    where averaging has points to average.

    Parameters
    ----------
    false_alerts, per_days, direction, gap
        As :class:`~analytics.detectors.spikes.SpikeDetector` (``gap`` in points
        of the series, not blocks).
    span_minutes : the length of a block.
    level_window : blocks in the trailing median level (48: two days of hours; on
        nab-dev 24-168 all found more windows than the point detectors alone, 48 with
        no more false runs).
    seasons, scale_window, window, min_history
        As :class:`~analytics.detectors.spikes.SpikeDetector`, counted in blocks.

    Examples
    --------
    Two weeks of 5-minute noise, and two hours that rise by one noise scale: no point
    is unusual (the spike detector says nothing), their hourly means are; the first
    hour is reported on its last point.

    >>> from datetime import datetime, timedelta
    >>> import polars as pl
    >>> from analytics.detectors.spikes import SpikeDetector
    >>> values = np.random.default_rng(0).normal(10.0, 1.0, 12 * 24 * 14)
    >>> values[3000:3024] += 1.0
    >>> ts = [datetime(2026, 1, 1) + timedelta(minutes=5 * i) for i in range(values.size)]
    >>> frame = pl.DataFrame({"ts": ts, "value": values})
    >>> BlockDetector().fit(frame).predict(frame).arg_true().to_list()
    [3011]
    >>> SpikeDetector().fit(frame).predict(frame).arg_true().to_list()
    []
    """

    name = "block"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        direction: Direction = "both",
        span_minutes: float = 60.0,
        level_window: int = 48,
        seasons: int = 4,
        scale_window: int = 200,
        window: int = 2000,
        min_history: int = 50,
        gap: int = 36,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.span_minutes = span_minutes
        self.level_window = level_window
        self.seasons = seasons
        self.scale_window = scale_window
        self.window = window
        self.min_history = min_history
        self.gap = gap

    def _validate(self) -> None:
        super()._validate()
        if not self.span_minutes > 0:
            raise ValueError("span_minutes must be positive")

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        k = int(round(timedelta(minutes=self.span_minutes) / step))
        if k < 2:
            nothing = np.full(y.shape, np.nan)
            return {
                "detector_names": [self.name],
                "which": np.zeros(y.shape),
                "expected": nothing,
                "lower": np.nan,
                "upper": np.nan,
                "p_value": nothing,
                "threshold": -np.log10(alpha)[:, None],
                "stat": nothing,
                "limit": nothing,
            }
        # The per-point level, scaled to a block's: the budget at the block's length
        # over the budget at the point's (a share given by an ensemble carries over).
        gap = self._gap(step)
        ratio = point_alpha(self.false_alerts, self.per_days, step * k, gap // k) / point_alpha(
            self.false_alerts, self.per_days, step, gap
        )
        level = np.minimum(alpha * ratio, 0.2)
        spike = SpikeDetector(
            direction=self.direction,
            level_window=self.level_window,
            seasons=self.seasons,
            scale_window=self.scale_window,
            quiet_days=None,  # on nab-dev the hours' quiet times lost 5-minute windows
            scale_floor=None,
            # record_index stays the spike's: an hour 4% above every earlier one is no rarity
            window=self.window,
            min_history=self.min_history,
        )
        part = spike._score_grid(block_means(y, k), step * k, level)
        width = y.shape[1]
        out: dict[str, Any] = {"detector_names": [self.name], "which": np.zeros(y.shape)}
        for key in ("expected", "lower", "upper", "p_value", "threshold", "stat", "limit"):
            out[key] = _on_last_point(np.broadcast_to(part[key], part["p_value"].shape), k, width)
        # Every point carries the block's threshold (the block's level, not the point's).
        out["threshold"] = np.broadcast_to(-np.log10(level)[:, None], y.shape)
        return out
