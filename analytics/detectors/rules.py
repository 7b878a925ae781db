"""Alert rules: from per-point alerts to incidents (one alert per incident).

A detector scores points; a rule decides what reaches a person. :class:`IncidentRule`
merges the alerting points of a series that lie within ``gap`` steps of each other into
one incident: the first point opens it (the alert), later points update it.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["IncidentRule"]


class IncidentRule:
    """Merge nearby alerting points of each series into incidents.

    Parameters
    ----------
    gap : alerting points at most ``gap`` steps after the previous alerting point of
        their series belong to its incident (a refractory period that restarts with
        every alerting point); a later one opens a new incident.

    Examples
    --------
    >>> frame = pl.DataFrame({"series": ["a"] * 6 + ["b"], "step": [0, 1, 2, 9, 10, 30, 0],
    ...                       "alert": [True, False, True, True, False, True, True]})
    >>> IncidentRule(gap=3).apply(frame).select("incident", "opens").rows()
    [(0, True), (None, False), (0, False), (1, True), (None, False), (2, True), (3, True)]
    """

    def __init__(self, *, gap: int = 12) -> None:
        self.gap = gap

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters."""
        return {"gap": self.gap}

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Number the incidents of a frame with ``series``, ``step`` (the point's index
        in its series' time grid) and ``alert`` columns, in any row order.

        Returns the frame with ``incident`` (a number unique across series, null on
        points outside every incident) and ``opens`` (the incident's first point: the
        one alert a person receives).
        """
        if self.gap < 0:
            raise ValueError("gap must not be negative")
        alerts = (
            frame.select("series", "step", "alert")
            .with_row_index("_row")
            .filter(pl.col("alert"))
            .sort("series", "step")
            .select(
                "_row",
                _new=(
                    (pl.col("series") != pl.col("series").shift())
                    | (pl.col("step") - pl.col("step").shift() > self.gap)
                ).fill_null(True),
            )
        )
        rows, new = alerts["_row"], alerts["_new"]
        incident = new.cum_sum().cast(pl.Int64) - 1
        return frame.with_columns(
            incident=pl.repeat(None, frame.height, dtype=pl.Int64, eager=True).scatter(
                rows, incident
            ),
            opens=pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(rows, new),
        )
