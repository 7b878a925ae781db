"""The base class of every time-series detector: parameters, fit, the scoring chain, incidents.

Each detector is calibrated the same way: a statistic of each point computed from its
series' past only, turned into a p-value by its rank among the same series' earlier
statistics (:func:`analytics.detectors.calibration.conformal_pvalues`), and alerted when
below the per-point level that the user's budget ("about ``false_alerts`` per series per
``per_days`` days") gives at the series' sampling step. An :class:`IncidentRule` then
turns alerting points into incidents: :meth:`BaseDetector.predict` flags only the point
that opens each incident. A detector supplies :meth:`BaseDetector._score_grid`; the
sentence of numbers of an alert is :func:`analytics.detectors.reasons.alert_reason`.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from analytics.detectors._grid import SERIES, Grid, keyed, layout
from analytics.detectors.calibration import point_alpha
from analytics.detectors.reasons import alert_reason
from analytics.detectors.rules import IncidentRule

__all__ = ["COLUMNS", "BaseDetector", "Direction", "oriented", "standardise"]

Direction = Literal["both", "up", "down"]
_CAP = 1e6
#: Output columns of :meth:`BaseDetector.detect`, after the input's.
COLUMNS = (
    "detector",
    "expected",
    "lower",
    "upper",
    "p_value",
    "score",
    "threshold",
    "alert",
    "incident",
    "reason",
)


class BaseDetector:
    """The estimator machinery shared by the detectors (parameters, fit, the scoring
    chain, incidents); a detector supplies :meth:`_score_grid`."""

    name: ClassVar[str]

    # Subclasses set these in __init__.
    false_alerts: float
    per_days: float
    gap: int

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (a detector is saved as ``(name, get_params())``)."""
        names = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in names if k != "self"}

    def set_params(self, **params: Any) -> BaseDetector:
        """Set constructor parameters; returns ``self``."""
        known = self.get_params()
        for key, value in params.items():
            if key not in known:
                raise ValueError(f"unknown parameter {key!r} of {self.name!r}")
            setattr(self, key, value)
        return self

    def to_spec(self) -> tuple[str, dict[str, Any]]:
        """``(name, params)``: what to store to rebuild the detector with ``from_spec``."""
        return self.name, self.get_params()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---------------------------------------------------------------- fitting

    def fit(self, frame: pl.DataFrame) -> BaseDetector:
        """Validate the parameters and learn each series' sampling step and per-point
        level (``steps_``, ``alpha_``, keyed by series; ``""`` when the frame has no
        ``series`` column). Returns ``self``."""
        self._validate()
        steps = {name: grid.step for grid in layout(keyed(frame)) for name in grid.names}
        self.steps_ = steps
        self.alpha_ = {
            k: point_alpha(self.false_alerts, self.per_days, v, self._gap(v))
            for k, v in steps.items()
        }
        return self

    def _gap(self, step: timedelta) -> int:
        """The merging gap in points: ``gap``, but never more than a tenth of the
        interval between two false alerts of the budget (else daily data could not
        reach the budget at all)."""
        points = timedelta(days=self.per_days) / step / self.false_alerts
        return int(max(0, min(self.gap, points // 10)))

    def _validate(self) -> None:
        point_alpha(self.false_alerts, self.per_days, timedelta(days=1))
        if getattr(self, "direction", "both") not in ("both", "up", "down"):
            raise ValueError("direction must be 'both', 'up' or 'down'")
        if self.gap < 0:
            raise ValueError("gap must not be negative")

    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    # ---------------------------------------------------------------- scoring

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def _scored(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per input row: ``series``, ``ts``, ``value``, ``step`` and the
        detector's columns (``p_value`` null where there is too little history)."""
        self._check_fitted()
        base = keyed(frame)
        parts = [self._score_part(grid) for grid in layout(base)]
        scored = pl.concat([_SCORED.clear(), *parts], how="vertical_relaxed")
        # Each laid-out row is in one part: put them back in input order (a row with no
        # timestamp is in none and gets nulls).
        place = np.full(base.height, -1, np.int64)
        place[scored["_row"].to_numpy()] = np.arange(scored.height)
        where = pl.select(pl.when(pl.lit(place) >= 0).then(pl.lit(place))).to_series()
        return pl.concat(
            [base, scored.drop("_row").select(pl.all().gather(where))], how="horizontal"
        ).with_columns(pl.col(c).fill_nan(None) for c in ("expected", "lower", "upper", "p_value"))

    def _score_part(self, grid: Grid) -> pl.DataFrame:
        fallback = point_alpha(self.false_alerts, self.per_days, grid.step, self._gap(grid.step))
        alpha = np.array([self.alpha_.get(name, fallback) for name in grid.names])
        out = self._score_grid(grid.values, grid.step, alpha)
        width = grid.values.shape[1]
        row, step = np.divmod(grid.cells, width)
        names = pl.Series(out.pop("detector_names"), dtype=pl.String)
        which = grid.take(out.pop("which")).astype(np.int64)
        columns: dict[str, Any] = {
            "_row": grid.rows.astype(np.uint32),
            "step": step,
            "detector": names.gather(which),
        }
        for key, value in out.items():
            # A per-row or scalar value is read in place, never spread over the grid.
            columns[key] = np.broadcast_to(np.asarray(value, float), grid.values.shape)[row, step]
        return pl.DataFrame(columns).select(_SCORED.columns)

    def score_samples(self, frame: pl.DataFrame) -> np.ndarray:
        """Anomaly score of each row, ``-log10`` of its calibrated p-value (0 with too
        little history); higher is more anomalous."""
        p = self._scored(frame)["p_value"].fill_null(1.0).to_numpy()
        score: np.ndarray = -np.log10(np.clip(p, 1e-300, 1.0))
        return score

    def decision_function(self, frame: pl.DataFrame) -> np.ndarray:
        """Score minus the row's threshold (``-log10`` of the per-point level of the
        budget): positive where a point alerts."""
        scored = self._scored(frame)
        p = scored["p_value"].fill_null(1.0).to_numpy()
        margin: np.ndarray = (
            -np.log10(np.clip(p, 1e-300, 1.0)) - scored["threshold"].fill_null(0.0).to_numpy()
        )
        return margin

    def predict(self, frame: pl.DataFrame) -> pl.Series:
        """``True`` at the point that opens each incident (one alert per incident)."""
        return self.detect(frame)["alert"]

    def detect(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Every input row with the detector's verdict and its reasons.

        Adds ``detector`` (which one judged the point), ``expected``, ``lower``,
        ``upper`` (the band at the alerting level), ``p_value``, ``score``
        (``-log10 p``), ``threshold``, ``alert`` (the point opens an incident),
        ``incident`` (its number, on every alerting point of the incident) and
        ``reason`` (a sentence of numbers, on alerting points).
        """
        scored = self._scored(frame)
        steps = [step for step in getattr(self, "steps_", {}).values()] or [timedelta(days=1)]
        gap = min(self._gap(step) for step in steps)
        score = -pl.col("p_value").clip(lower_bound=1e-300).log10()
        flagged = scored.with_columns(
            score=score, alert=(score > pl.col("threshold")).fill_null(False)
        )
        ruled = IncidentRule(gap=gap).apply(flagged)
        # The sentence of numbers only for the alerting points, put back in place.
        alerting = ruled.with_row_index("_row").filter("alert")
        reason = pl.repeat(None, ruled.height, dtype=pl.String, eager=True).scatter(
            alerting["_row"], alerting.select(alert_reason()).to_series()
        )
        out = ruled.with_columns(reason=reason, alert=pl.col("opens"))
        extra = [c for c in frame.columns if c not in ("series", "ts", "value")]
        keep = [SERIES] if SERIES in frame.columns else []
        return pl.concat(
            [frame.select(extra), out.select(*keep, "ts", "value", *COLUMNS)], how="horizontal"
        )


#: The columns :meth:`BaseDetector._score_part` returns, in order.
_SCORED = pl.DataFrame(
    schema={
        "_row": pl.UInt32,
        "step": pl.Int64,
        "detector": pl.String,
        "expected": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
        "p_value": pl.Float64,
        "threshold": pl.Float64,
        "stat": pl.Float64,
        "limit": pl.Float64,
    }
)


def standardise(resid: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Residuals over their scale; 0 for a zero residual, +-cap over a zero scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, resid / scale, np.sign(resid) * _CAP)
    return np.where(np.isnan(scale) & ~np.isnan(resid), np.nan, z)


def oriented(z: np.ndarray, direction: str) -> np.ndarray:
    return np.abs(z) if direction == "both" else z if direction == "up" else -z
