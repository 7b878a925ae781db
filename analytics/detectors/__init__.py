"""Calibrated anomaly detectors behind a registry (issue 15).

A detector is a small estimator (``__init__`` stores keyword parameters, ``fit``
returns ``self``, learned state ends in ``_``, ``score_samples`` ->
``decision_function`` -> ``predict``); it is saved as ``(name, params)``
(:func:`to_spec`) and rebuilt with :func:`from_spec`. Frames carry ``ts``
(Datetime), ``value`` (Float64) and optionally ``series`` (String; one series when
absent); all series are scored at once on (series x time) grids.

- ``spike``: spikes and dips against a causal robust seasonal baseline.
- ``shift``: sustained level shifts and trend changes (two-sided CUSUM), and rises of
  volatility (a CUSUM of absolute deviations).
- ``stuck``: outages, a fall to (near) zero (and optionally a value stuck unchanged)
  for longer than the series ever did before, ranked against its own earlier runs.
- ``counts``: counts against a seasonal baseline with negative-binomial noise whose
  over-dispersion adapts to the series' past; the slice scan's fast detector.
- ``block``: spikes and dips of the means over hours of a sub-hourly series (slow
  drifts and clusters of bursts that no single point shows).
- ``level``: level shifts of a sub-hourly series, the last hour's median against the
  two days before it (a shift larger than any before, even after an earlier one); the
  ensemble also judges the last four hours' median.
- ``range``: new records, a value beyond the highest or lowest of the last two weeks
  of 5-minute points by more of that range than the series' earlier records (beyond
  the largest of them, a Pareto tail: :func:`~analytics.detectors.calibration.record_tail`).
- ``ensemble``: an alert when any of them fires, each with the whole budget (the
  default; still within the budget on noise, as their incidents overlap).

Scores are calibrated per series against its own past (conformal ranks of standardised
residuals, with a fitted tail), so the user's knob means the same on any series: about
``false_alerts`` false alerts per series every ``per_days`` days. The default, one
per 14 days, was chosen on nab-dev for all its files at once (one per 30 days missed
windows that one per 14 days finds for few more false runs; one per 7 days or fewer
days raised false runs faster than it found windows).

>>> from datetime import datetime, timedelta
>>> import numpy as np
>>> import polars as pl
>>> values = np.random.default_rng(3).normal(50.0, 4.0, 300)
>>> values[250] = 90.0
>>> ts = [datetime(2026, 1, 1) + timedelta(hours=i) for i in range(300)]
>>> frame = pl.DataFrame({"ts": ts, "value": values})
>>> detector = from_spec(("ensemble", {"false_alerts": 1.0, "per_days": 365.0}))
>>> detector.fit(frame).predict(frame).arg_true().to_list()
[250]
>>> to_spec(detector)[0]
'ensemble'
"""

from __future__ import annotations

from typing import Any

from analytics.detectors.blocks import BlockDetector
from analytics.detectors.calibration import conformal_pvalues, point_alpha
from analytics.detectors.counts import CountDetector
from analytics.detectors.ensemble import EnsembleDetector
from analytics.detectors.levels import LevelDetector
from analytics.detectors.ranges import RangeDetector
from analytics.detectors.rules import IncidentRule
from analytics.detectors.shifts import ShiftDetector
from analytics.detectors.spikes import SpikeDetector
from analytics.detectors.stuck import StuckDetector

__all__ = [
    "DEFAULT",
    "DETECTORS",
    "BlockDetector",
    "CountDetector",
    "EnsembleDetector",
    "IncidentRule",
    "LevelDetector",
    "RangeDetector",
    "ShiftDetector",
    "SpikeDetector",
    "StuckDetector",
    "conformal_pvalues",
    "from_spec",
    "point_alpha",
    "to_spec",
]

Detector = (
    SpikeDetector
    | ShiftDetector
    | StuckDetector
    | BlockDetector
    | LevelDetector
    | RangeDetector
    | EnsembleDetector
    | CountDetector
)

#: Every detector by name.
DETECTORS: dict[str, type[Detector]] = {
    "spike": SpikeDetector,
    "shift": ShiftDetector,
    "stuck": StuckDetector,
    "block": BlockDetector,
    "level": LevelDetector,
    "range": RangeDetector,
    "ensemble": EnsembleDetector,
    "counts": CountDetector,
}
#: The detector used when none is named.
DEFAULT = "ensemble"


def to_spec(detector: Detector) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of a detector, to store and rebuild it with :func:`from_spec`.

    >>> to_spec(SpikeDetector(per_days=7.0))[1]["per_days"]
    7.0
    """
    return detector.to_spec()


def from_spec(spec: tuple[str, dict[str, Any]]) -> Detector:
    """A new (unfitted) detector from ``(name, params)``.

    >>> from_spec(("shift", {"drift": 1.0})).drift
    1.0
    """
    name, params = spec
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](**params)
