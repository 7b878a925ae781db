"""Anomaly scoring: one series (:func:`score_series`) or every slice at once (:func:`scan`).

Both are built on the detectors of :mod:`analytics.detectors` (a registry of small
estimators, each saved as ``(name, params)``):

- :func:`score_series` judges any series a user brings with the calibrated default
  (``ensemble``: spikes, level shifts, volatility rises and outages, each point ranked
  among the series' own past), or with any detector named by its spec. Its knob is a
  budget in the user's terms: about ``false_alerts`` false alerts per series every
  ``per_days`` days.
- :func:`scan` scores every slice's daily (or weekly) counts in one vectorised pass
  with the ``counts`` detector (negative-binomial noise around a causal seasonal
  baseline, fast enough for 10,000 slices), and controls false discoveries across the
  slices tested each day (Benjamini-Hochberg) on top of each slice's budget.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import combinations
from typing import Any, Literal

import numpy as np
import polars as pl

from analytics.detectors import DEFAULT, from_spec, point_alpha
from analytics.detectors.counts import CountDetector, infer_period, score_frame
from analytics.detectors.estimator import BaseDetector

__all__ = [
    "DISMISSING",
    "SCAN_DIMS",
    "Spec",
    "daily_slices",
    "event_slices",
    "infer_period",
    "scan",
    "scan_both_ways",
    "score_frame",
    "score_series",
    "weekly_sums",
]

_KEY = "_series"
#: A detector saved as ``(name, params)`` (:func:`analytics.detectors.from_spec`).
Spec = tuple[str, dict[str, Any]]


def score_series(
    frame: pl.DataFrame,
    *,
    detector: Spec | None = None,
    false_alerts: float | None = None,
    per_days: float | None = None,
    direction: Literal["both", "up", "down"] | None = None,
) -> pl.DataFrame:
    """Score every point of one series with a calibrated detector.

    Parameters
    ----------
    frame
        Columns ``ts`` (Datetime) and ``value``, at a roughly regular frequency (the
        median spacing is the step); missing points (absent rows or null values) are
        tolerated.
    detector
        ``(name, params)`` of a detector in :data:`analytics.detectors.DETECTORS`
        (default: ``("ensemble", {})``).
    false_alerts, per_days
        The budget, overriding the spec's: about ``false_alerts`` false alerts per
        ``per_days`` days on a series of noise.
    direction
        Which deviations are anomalies: ``"up"``, ``"down"`` or ``"both"`` (overriding
        the spec's; the default detectors watch both).

    Returns
    -------
    pl.DataFrame
        The input rows plus ``expected``, ``lower``, ``upper`` (the band at the budget's
        per-point level), ``p_value``, ``score`` (``-log10 p``), ``threshold`` (the
        score beyond which a point is anomalous), ``direction`` ("up"/"down"),
        ``status`` ("ok", "anomaly", "insufficient data"), ``is_anomaly`` (beyond the
        threshold), ``detector`` (which one judged the point), ``incident`` (its
        number, on anomalous points: nearby ones make one), ``alert`` (the point opens
        an incident: the one alert a person receives) and ``reason`` (a sentence of
        numbers, on anomalous points).

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> days = [datetime(2026, 1, 1) + timedelta(days=i) for i in range(84)]
    >>> values = [20.0 + (5 if i % 7 in (5, 6) else 0) for i in range(84)]
    >>> values[70] = 60.0
    >>> out = score_series(pl.DataFrame({"ts": days, "value": values}),
    ...                    detector=("counts", {}))
    >>> out.filter("is_anomaly")["ts"].to_list() == [days[70]]
    True
    """
    name, params = detector or (DEFAULT, {})
    params = dict(params)
    for key, value in (
        ("false_alerts", false_alerts),
        ("per_days", per_days),
        ("direction", direction),
    ):
        if value is not None:
            params[key] = value
    model = from_spec((name, params))
    columns = ("expected", "lower", "upper", "p_value", "score", "threshold")
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.Float64).alias(c) for c in columns).with_columns(
            direction=pl.lit(None, pl.String),
            status=pl.lit(None, pl.String),
            is_anomaly=pl.lit(None, pl.Boolean),
            detector=pl.lit(None, pl.String),
            incident=pl.lit(None, pl.Int64),
            alert=pl.lit(None, pl.Boolean),
            reason=pl.lit(None, pl.String),
        )
    data = frame.select("ts", pl.col("value").cast(pl.Float64))
    found = model.fit(data).detect(data)
    judged = pl.col("p_value").is_not_null()
    beyond = (pl.col("score") > pl.col("threshold")) & judged
    out = found.select(
        *columns,
        **_verdict(judged, beyond),
        is_anomaly=beyond.fill_null(False),
        detector=pl.when(judged).then("detector"),
        incident="incident",
        alert="alert",
        reason="reason",
    )
    return pl.concat([frame.drop(*out.columns, strict=False), out], how="horizontal")


def _verdict(judged: pl.Expr, beyond: pl.Expr) -> dict[str, pl.Expr]:
    """``direction`` ("up"/"down" from the expected value) and ``status`` ("insufficient
    data" where not ``judged``, "anomaly" where ``beyond`` the threshold, else "ok")."""
    return {
        "direction": pl.when(pl.col("value") >= pl.col("expected"))
        .then(pl.lit("up"))
        .otherwise(pl.lit("down")),
        "status": pl.when(~judged)
        .then(pl.lit("insufficient data"))
        .when(beyond)
        .then(pl.lit("anomaly"))
        .otherwise(pl.lit("ok")),
    }


# --------------------------------------------------------------------------- the scan

#: Dimensions the scan slices case volume by (one and two levels deep).
SCAN_DIMS: tuple[str, ...] = ("category", "region", "platform", "source", "specialty")
#: Verdicts that dismiss an incident's pattern for its slice.
DISMISSING = ("expected", "not_useful")


def daily_slices(
    cases: pl.DataFrame,
    *,
    start: date,
    end: date,
    dims: tuple[str, ...] = SCAN_DIMS,
    depth: int = 2,
) -> pl.DataFrame:
    """New cases per day for every slice one to ``depth`` dimensions deep, and overall.

    Every slice gets every day of ``[start, end)``, zero-filled. Columns: ``slice``
    (:func:`analytics.core.slices.slice_key`), the dimension columns (null where not part
    of the slice), ``ts`` (Datetime, midnight) and ``value`` (Float64).

    >>> from datetime import datetime
    >>> cases = pl.DataFrame({"opened_at": [datetime(2026, 1, 1, 9)], "category": ["spam"],
    ...                       "region": ["FL"]})
    >>> out = daily_slices(cases, start=date(2026, 1, 1), end=date(2026, 1, 3),
    ...                    dims=("category", "region"), depth=1)
    >>> out.sort("slice", "ts").select("slice", "value").rows()
    [('all', 1.0), ('all', 0.0), ('category=spam', 1.0), ('category=spam', 0.0), ('region=FL', 1.0), ('region=FL', 0.0)]
    """  # noqa: E501
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    frame = (
        cases.lazy()
        .filter(pl.col("opened_at") >= lo, pl.col("opened_at") < hi)
        .select(
            pl.col("opened_at").dt.truncate("1d").alias("ts"),
            *[pl.col(d).cast(pl.String) for d in dims],
        )
    )
    pieces = [frame.group_by("ts").agg(value=pl.len()).with_columns(slice=pl.lit("all"))]
    for k in range(1, depth + 1):
        for combo in combinations(dims, k):
            key = pl.concat_str([pl.lit(f"{d}=") + pl.col(d) for d in sorted(combo)], separator="|")
            pieces.append(
                frame.filter(*[pl.col(d).is_not_null() for d in combo])
                .group_by("ts", *combo)
                .agg(value=pl.len())
                .with_columns(slice=key)
            )
    counts = pl.concat(pieces, how="diagonal").collect()
    days = pl.DataFrame({"ts": pl.datetime_range(lo, hi, "1d", closed="left", eager=True)})
    slices = counts.select("slice", *dims).unique("slice")
    grid = slices.join(days, how="cross")
    return (
        grid.join(counts.select("slice", "ts", "value"), on=["slice", "ts"], how="left")
        .with_columns(pl.col("value").fill_null(0).cast(pl.Float64))
        .sort("slice", "ts")
    )


def event_slices(
    events: pl.DataFrame,
    *,
    start: date,
    end: date,
    dims: tuple[str, ...] = ("region", "platform"),
) -> pl.DataFrame:
    """Daily events per kind, overall and by one dimension, zero-filled, for the scan.

    ``events`` is :func:`analytics.sources.load.events_daily` output. Slices are keyed like
    ``"kind=review_posted|region=FL"``; columns as :func:`daily_slices` plus ``kind``.

    >>> from datetime import date
    >>> ev = pl.DataFrame({"day": [date(2026, 1, 1)], "kind": ["login_failed"],
    ...                    "region": ["FL"], "platform": ["web"], "events": [3]})
    >>> out = event_slices(ev, start=date(2026, 1, 1), end=date(2026, 1, 2))
    >>> sorted(zip(out["slice"], out["value"]))
    [('kind=login_failed', 3.0), ('kind=login_failed|platform=web', 3.0), ('kind=login_failed|region=FL', 3.0)]
    """  # noqa: E501
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    frame = (
        events.lazy()
        .select(
            pl.col("day").cast(pl.Datetime("us")).alias("ts"),
            pl.col("kind").cast(pl.String),
            *[pl.col(d).cast(pl.String) for d in dims],
            pl.col("events").cast(pl.Float64),
        )
        .filter(pl.col("ts") >= lo, pl.col("ts") < hi)
    )
    pieces = [
        frame.group_by("ts", "kind")
        .agg(value=pl.col("events").sum())
        .with_columns(slice=pl.lit("kind=") + pl.col("kind"))
    ]
    for d in dims:
        pieces.append(
            frame.group_by("ts", "kind", d)
            .agg(value=pl.col("events").sum())
            .with_columns(slice=pl.lit("kind=") + pl.col("kind") + pl.lit(f"|{d}=") + pl.col(d))
        )
    counts = pl.concat(pieces, how="diagonal").collect()
    days = pl.DataFrame({"ts": pl.datetime_range(lo, hi, "1d", closed="left", eager=True)})
    slices = counts.select("slice", "kind", *dims).unique("slice")
    return (
        slices.join(days, how="cross")
        .join(counts.select("slice", "ts", "value"), on=["slice", "ts"], how="left")
        .with_columns(pl.col("value").fill_null(0.0))
        .sort("slice", "ts")
    )


def weekly_sums(series: pl.DataFrame) -> pl.DataFrame:
    """Daily slice series summed per ISO week (``ts`` = the Monday); partial weeks dropped.

    >>> from datetime import datetime, timedelta
    >>> days = [datetime(2026, 1, 5) + timedelta(days=i) for i in range(10)]
    >>> daily = pl.DataFrame({"slice": "all", "ts": days, "value": [1.0] * 10})
    >>> weekly_sums(daily).select("ts", "value").rows()
    [(datetime.datetime(2026, 1, 5, 0, 0), 7.0)]
    """
    dims = [c for c in series.columns if c in (*SCAN_DIMS, "kind")]
    return (
        series.group_by("slice", pl.col("ts").dt.truncate("1w"))
        .agg(*[pl.col(d).first() for d in dims], value=pl.col("value").sum(), _days=pl.len())
        .filter(pl.col("_days") == 7)
        .drop("_days")
        .sort("slice", "ts")
    )


def _fdr_by_day(scored: pl.DataFrame, *, level: float) -> pl.DataFrame:
    """Benjamini-Hochberg q-values across the slices tested on each day.

    Only p-values at or below ``level`` can be discoveries at that level, and they
    rank before every other test of their day, so only they are sorted; the others
    get ``q_value`` 1 (exact q-values of discoveries are unchanged by this).
    """
    m = scored.group_by("ts").agg(_m=pl.col("p_value").is_not_null().sum())
    candidates = (
        scored.select("ts", "p_value")
        .with_row_index("_i")
        .filter(pl.col("p_value") <= level)
        .join(m, on="ts")
        .sort("ts", "p_value")
        .with_columns(_rank=pl.int_range(1, pl.len() + 1).over("ts"))
        .with_columns(_raw=pl.col("p_value") * pl.col("_m") / pl.col("_rank"))
        .select(
            "_i",
            q=pl.col("_raw").reverse().cum_min().reverse().over("ts").clip(upper_bound=1.0),
        )
    )
    q = np.ones(scored.height)
    q[candidates["_i"].to_numpy()] = candidates["q"].to_numpy()
    return scored.with_columns(q_value=pl.when(pl.col("p_value").is_not_null()).then(pl.Series(q)))


def scan(
    series: pl.DataFrame,
    *,
    annotations: pl.DataFrame | None = None,
    feedback: pl.DataFrame | None = None,
    metric: str = "new_cases",
    direction: Literal["up", "down"] = "up",
    fdr: float = 0.01,
    seasons: int = 6,
    period: int = 7,
    detector: Spec | None = None,
    false_alerts: float | None = None,
    per_days: float | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Score every slice's daily series in one pass; group alerts into incidents.

    Parameters
    ----------
    series
        From :func:`daily_slices`: ``slice``, dimension columns, ``ts``, ``value``.
    annotations
        Known events (``start_at``, ``end_at``, ``title``, ``category``, ``region``):
        incidents overlapping one that concerns their slice are *explained*, not alerted.
    feedback
        Associates' verdicts (``metric``, ``slice_key``, ``alert_start``, ``verdict``,
        ``value_at_feedback``): a pattern dismissed as expected or not useful is not
        raised again for that slice unless its peak grows by half.
    metric, direction
        The metric's name, and which way is bad (volumes: up; e.g. proactive rate: down).
    fdr
        False discovery rate controlled across the slices tested each day.
    period, seasons
        Points per seasonal cycle: 7 for daily series, 1 for weekly sums
        (:func:`weekly_sums`), which catch slower, steadier rises; and past cycles the
        seasonal offsets are the median of (parameters of the default detector).
    detector
        ``(name, params)`` of the detector (default: ``("counts", {"period": period,
        "seasons": seasons})``, the fast negative-binomial count model; any other
        detector of :data:`analytics.detectors.DETECTORS` works, about 20 times slower).
    false_alerts, per_days
        Each slice's budget (default: the detector's, one false alert per 14 days): a
        point alerts only when its p-value is below the budget's per-point level *and*
        its q-value below ``fdr``. With many slices the false discovery control is the
        stricter of the two; with few, the budget is.

    Returns
    -------
    (points, incidents)
        ``points``: every point with ``expected``, ``lower``, ``upper``, ``p_value``,
        ``q_value``, ``score``, ``status`` and ``alert``. ``incidents``: one row per run of
        consecutive alerted days of a slice, with ``start``, ``end``, ``days``,
        ``peak_ts``, ``peak_value``, ``peak_expected``, ``score``, ``state`` (open while
        its last day is the newest scanned), ``explained_by``, ``suppressed`` and
        ``alerted`` (neither explained nor suppressed).
    """
    name, params = detector or ("counts", {"period": period, "seasons": seasons})
    params = {**params, "direction": direction}
    for key, value in (("false_alerts", false_alerts), ("per_days", per_days)):
        if value is not None:
            params[key] = value
    model = from_spec((name, params))
    scored = _scan_scores(model, series, period=period)
    scored = _fdr_by_day(scored, level=fdr)
    alert = (
        (pl.col("q_value") < fdr)
        & (pl.col("p_value") < pl.col("_level"))
        & (pl.col("status") != "insufficient data")
    )
    points = scored.with_columns(alert=alert.fill_null(False)).drop("_level")
    incidents = _incidents(points, metric=metric)
    incidents = _explain(incidents, annotations, span=timedelta(days=7 if period == 1 else 1))
    incidents = _suppress(incidents, feedback, metric=metric)
    return points, incidents


def _scan_scores(model: BaseDetector, series: pl.DataFrame, *, period: int) -> pl.DataFrame:
    """Every point of every slice with ``expected``, ``lower``, ``upper``, ``p_value``,
    ``score``, ``direction``, ``status`` and ``_level`` (the slice's per-point level),
    sorted by slice, then time.

    The ``counts`` detector takes its fast path (:meth:`CountDetector.score_frame`, no
    band). Any other detector is fitted and run on all slices at once; its p-value is
    put on the scale of the budget's level (an ensemble member with a share of the
    level has its p-value divided by that share), so one false discovery control
    applies whatever the detector.
    """
    if series.is_empty():
        empty = score_frame(series.rename({"slice": _KEY}), period=period)
        return empty.rename({_KEY: "slice"}).with_columns(_level=pl.lit(None, pl.Float64))
    step_us = series.select(
        pl.col("ts").unique().sort().diff().dt.total_microseconds().median()
    ).item()
    step = timedelta(microseconds=int(step_us or 86_400_000_000))
    level = point_alpha(model.false_alerts, model.per_days, step, model._gap(step))
    if isinstance(model, CountDetector):
        scored = model.score_frame(series.rename({"slice": _KEY}), period=period, band=False)
        return scored.rename({_KEY: "slice"}).with_columns(_level=pl.lit(level))
    ordered = series.sort("slice", "ts")
    found = model.fit(ordered.rename({"slice": "series"}).select("series", "ts", "value")).detect(
        ordered.select(pl.col("slice").alias("series"), "ts", "value")
    )
    margin = pl.col("score") - pl.col("threshold")
    p = (pl.lit(level).log10() - margin).clip(upper_bound=0.0)
    judged = pl.col("p_value").is_not_null()
    scaled = found.select(
        "expected",
        "lower",
        "upper",
        p_value=pl.when(judged).then(10**p),
        score=pl.when(judged).then(-p),
        **_verdict(judged, margin > 0),
        _level=pl.lit(level),
    )
    return pl.concat([ordered, scaled], how="horizontal")


def scan_both_ways(
    series: pl.DataFrame,
    *,
    annotations: pl.DataFrame | None = None,
    feedback: pl.DataFrame | None = None,
    metric: str = "new_cases",
    alert_on: Literal["up", "down"] = "up",
    fdr: float = 0.01,
    seasons: int = 6,
    period: int = 7,
    detector: Spec | None = None,
    false_alerts: float | None = None,
    per_days: float | None = None,
) -> pl.DataFrame:
    """Incidents both ways: moves in the ``alert_on`` direction alert; the others are
    found with their own false discovery control and shown, never alerted (a fall in
    abuse volume is news, not an alarm; a fall in the proactive rate would alert).
    Parameters as :func:`scan`.
    """
    found = []
    for way in ("up", "down"):
        _, incidents = scan(
            series,
            annotations=annotations,
            feedback=feedback,
            metric=metric,
            direction=way,
            fdr=fdr,
            seasons=seasons,
            period=period,
            detector=detector,
            false_alerts=false_alerts,
            per_days=per_days,
        )
        if way != alert_on:
            incidents = incidents.with_columns(alerted=pl.lit(False))
        found.append(incidents)
    return pl.concat(found, how="diagonal_relaxed").sort("score", descending=True)


def _incidents(points: pl.DataFrame, *, metric: str) -> pl.DataFrame:
    newest = points["ts"].max()
    # Rows run by slice, then time: a run starts where the previous row is not an
    # alert of the same slice. Run numbers are global, so no per-slice window is needed.
    same_slice = (pl.col("slice") == pl.col("slice").shift(1)).fill_null(False)
    continues = pl.col("alert").shift(1, fill_value=False) & same_slice
    started = pl.col("alert") & ~continues
    runs = points.with_columns(_run=started.cast(pl.Int64).cum_sum()).filter("alert")
    dims = [c for c in points.columns if c in (*SCAN_DIMS, "kind")]
    return (
        runs.group_by("_run", "slice")
        .agg(
            *[pl.col(d).first() for d in dims],
            start=pl.col("ts").min(),
            end=pl.col("ts").max(),
            days=pl.len(),
            peak_ts=pl.col("ts").sort_by("score").last(),
            peak_value=pl.col("value").sort_by("score").last(),
            peak_expected=pl.col("expected").sort_by("score").last(),
            direction=pl.col("direction").sort_by("score").last(),
            score=pl.col("score").max(),
        )
        .drop("_run")
        .with_columns(
            metric=pl.lit(metric),
            state=pl.when(pl.col("end") == pl.lit(newest, dtype=pl.Datetime("us")))
            .then(pl.lit("open"))
            .otherwise(pl.lit("closed")),
        )
        .sort("score", descending=True)
    )


def _explain(
    incidents: pl.DataFrame, annotations: pl.DataFrame | None, *, span: timedelta
) -> pl.DataFrame:
    """Name the known event that overlaps each incident and concerns its slice.

    A note about a category or region explains that slice; a note about everything
    (a launch, an outage) explains any slice; a holiday explains only a fall.
    """
    if annotations is None or annotations.is_empty() or incidents.is_empty():
        return incidents.with_columns(explained_by=pl.lit(None, pl.String))
    notes = annotations.select(
        pl.col("start_at").dt.truncate("1d").alias("_a_start"),
        pl.col("end_at").alias("_a_end"),
        pl.col("title").alias("_title"),
        pl.col("category").cast(pl.String).alias("_a_category"),
        pl.col("region").cast(pl.String).alias("_a_region"),
        (
            pl.col("kind").cast(pl.String) == "holiday"
            if "kind" in annotations.columns
            else pl.lit(False)
        ).alias("_holiday"),
    )
    cat = pl.col("category") if "category" in incidents.columns else pl.lit(None, pl.String)
    reg = pl.col("region") if "region" in incidents.columns else pl.lit(None, pl.String)
    # A categorised note (a policy change) explains its category from its start on.
    ongoing = pl.col("_a_category").is_not_null() & pl.col("_a_end").is_null()
    finish = pl.coalesce(pl.col("_a_end"), pl.col("_a_start") + timedelta(days=1))
    overlaps = (pl.col("_a_start") < pl.col("end") + span) & ((finish > pl.col("start")) | ongoing)
    concerns = (
        (pl.col("_a_category").is_null() | (pl.col("_a_category") == cat))
        & (pl.col("_a_region").is_null() | (pl.col("_a_region") == reg))
        & (~pl.col("_holiday") | (pl.col("direction") == "down"))
    )
    matched = (
        incidents.with_row_index("_i")
        .join(notes, how="cross")
        .filter(overlaps & concerns.fill_null(False))
        .group_by("_i")
        .agg(explained_by=pl.col("_title").first())
    )
    return incidents.with_row_index("_i").join(matched, on="_i", how="left").drop("_i")


def _suppress(
    incidents: pl.DataFrame, feedback: pl.DataFrame | None, *, metric: str
) -> pl.DataFrame:
    """Mark incidents whose pattern was dismissed for their slice and has not grown."""
    if feedback is None or feedback.is_empty() or incidents.is_empty():
        suppressed = incidents.with_columns(suppressed=pl.lit(False))
    else:
        dismissed = (
            feedback.filter(
                pl.col("metric") == metric, pl.col("verdict").cast(pl.String).is_in(DISMISSING)
            )
            .group_by("slice_key")
            .agg(_since=pl.col("alert_start").min(), _at=pl.col("value_at_feedback").max())
            .rename({"slice_key": "slice"})
        )
        suppressed = (
            incidents.join(dismissed, on="slice", how="left")
            .with_columns(
                suppressed=(
                    (pl.col("start") >= pl.col("_since"))
                    & (pl.col("peak_value") <= 1.5 * pl.col("_at").fill_null(float("inf")))
                ).fill_null(False)
            )
            .drop("_since", "_at")
        )
    return suppressed.with_columns(alerted=pl.col("explained_by").is_null() & ~pl.col("suppressed"))
