"""The Anomalies page's verdicts: recording and reading them, and the alerts' measured precision.

An associate's verdict on an incident (confirmed, expected, not useful) is stored with
who gave it; the scan (:func:`analytics.views.anomalies.recent_incidents`) reads them
back to quiet a dismissed pattern until it grows, and :func:`alert_precision` turns
them into the share of judged alerts that helped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, insert, select

from analytics import access
from analytics.access import Viewer
from analytics.core.models import Feedback, Role, Verdict
from analytics.sources.frames import conform, empty_frame

__all__ = [
    "MetricPrecision",
    "alert_precision",
    "feedback_version",
    "measured_precision",
    "precision_of",
    "read_feedback",
    "record_feedback",
]


def feedback_version(engine: Engine) -> int:
    """The newest feedback id (0 without any): changes whenever a verdict is recorded."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(Feedback.id))).scalar() or 0)


def read_feedback(engine: Engine) -> pl.DataFrame:
    """Every verdict recorded on an alert (oldest first)."""
    columns = [Feedback.metric, Feedback.slice_key, Feedback.alert_start, Feedback.verdict]
    stmt = select(*columns, Feedback.value_at_feedback, Feedback.user_name, Feedback.created_at)
    with engine.connect() as conn:
        frame = pl.read_database(stmt.order_by(Feedback.id), conn, infer_schema_length=None)
    schema: dict[str, Any] = {
        "metric": pl.String,
        "slice_key": pl.String,
        "alert_start": pl.Datetime("us"),
        "verdict": pl.String,
        "value_at_feedback": pl.Float64,
        "user_name": pl.String,
        "created_at": pl.Datetime("us"),
    }
    return empty_frame(schema) if frame.is_empty() else conform(frame, schema)


def alert_precision(feedback: pl.DataFrame, *, confidence: float = 0.95) -> pl.DataFrame:
    """The measured precision of the alerts of each metric: of the alerts associates
    judged, the share they confirmed (an alert judged twice counts once, by its newest
    verdict; "expected" and "not useful" are alerts nobody needed), with a Wilson
    interval at ``confidence``.

    Parameters
    ----------
    feedback
        From :func:`read_feedback`: ``metric``, ``slice_key``, ``alert_start``,
        ``verdict``, ``created_at``.

    Returns
    -------
    pl.DataFrame
        ``metric``, ``judged``, ``confirmed``, ``expected``, ``not_useful``,
        ``precision``, ``low``, ``high``; one row per metric, most judged first.

    Examples
    --------
    >>> t = datetime(2026, 4, 1)
    >>> fb = pl.DataFrame({
    ...     "metric": ["new_cases"] * 4 + ["events"],
    ...     "slice_key": ["a", "a", "b", "c", "d"],
    ...     "alert_start": [t] * 5,
    ...     "verdict": ["not_useful", "confirmed", "confirmed", "expected", "not_useful"],
    ...     "created_at": [datetime(2026, 4, 2, h) for h in (1, 2, 1, 1, 1)],
    ... })
    >>> alert_precision(fb).select("metric", "judged", "confirmed", "precision").rows()
    [('new_cases', 3, 2, 0.6666666666666666), ('events', 1, 0, 0.0)]
    """
    from scipy.stats import binomtest

    latest = (
        feedback.sort("created_at")
        .group_by("metric", "slice_key", "alert_start", maintain_order=True)
        .agg(pl.col("verdict").last())
    )
    counts = (
        latest.group_by("metric")
        .agg(
            judged=pl.len(),
            **{v.value: (pl.col("verdict") == v.value).sum() for v in Verdict},
        )
        .with_columns(precision=pl.col("confirmed") / pl.col("judged"))
        .sort(["judged", "metric"], descending=[True, False])
        .cast({"judged": pl.Int64, **{v.value: pl.Int64 for v in Verdict}})
    )
    bounds = [
        binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
        for k, n in zip(counts["confirmed"], counts["judged"], strict=True)
    ]  # one per metric: a handful of rows
    return counts.select(
        "metric", "judged", "confirmed", "expected", "not_useful", "precision"
    ).with_columns(
        low=pl.Series([b.low for b in bounds], dtype=pl.Float64),
        high=pl.Series([b.high for b in bounds], dtype=pl.Float64),
    )


def measured_precision(engine: Engine, *, role: Role | str) -> pl.DataFrame:
    """:func:`alert_precision` of every verdict recorded, for a role that sees cases."""
    access.require(role, "cases")
    return alert_precision(read_feedback(engine))


@dataclass(frozen=True)
class MetricPrecision:
    """The measured precision of one metric's alerts: ``confirmed`` of ``judged``, and
    the interval of :func:`alert_precision`."""

    metric: str
    judged: int
    confirmed: int
    precision: float
    low: float
    high: float


def precision_of(precision: pl.DataFrame, metric: str) -> MetricPrecision | None:
    """One metric's row of :func:`alert_precision`, None when no alert of it was judged."""
    mine = precision.filter(pl.col("metric") == metric)
    if mine.is_empty():
        return None
    row = mine.row(0, named=True)
    return MetricPrecision(
        metric=metric,
        judged=int(row["judged"]),
        confirmed=int(row["confirmed"]),
        precision=float(row["precision"]),
        low=float(row["low"]),
        high=float(row["high"]),
    )


def record_feedback(
    engine: Engine,
    *,
    viewer: Viewer,
    metric: str,
    slice_key: str,
    alert_start: datetime,
    verdict: str,
    value: float | None,
    note: str | None = None,
) -> None:
    """Store a viewer's verdict on an incident (expected, not_useful, confirmed); the
    role must see cases."""
    access.require(viewer.role, "cases")
    Verdict(verdict)  # ValueError for anything else
    with engine.begin() as conn:
        conn.execute(
            insert(Feedback).values(
                created_at=datetime.now().replace(microsecond=0),
                user_name=viewer.name[:64],
                metric=metric[:64],
                slice_key=slice_key[:400],
                alert_start=alert_start,
                verdict=verdict,
                value_at_feedback=value,
                note=(note or None) and note[:2000],
            )
        )
