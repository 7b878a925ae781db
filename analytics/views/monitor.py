"""The associates' monitoring view: recent incidents, one incident's evidence, feedback.

Reads through :mod:`analytics.sources.load` and scores with
:mod:`analytics.detectors.anomalies`; the
Anomalies page only renders what these functions return.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, insert, select

from analytics import access
from analytics.access import privacy
from analytics.core.db import Case, Event, Feedback, Role, Verdict
from analytics.core.filters import DIMENSIONS, Filters
from analytics.detectors import anomalies, clusters, rings
from analytics.metrics import rootcause
from analytics.sources import load
from analytics.sources.frames import conform, empty_frame
from analytics.sources.pushdown import case_texts

__all__ = [
    "HISTORY_DAYS",
    "NARRATIVE_DAYS",
    "account_timeline",
    "alert_precision",
    "emerging_view",
    "feedback_version",
    "RECENT_DAYS",
    "SENSITIVITY",
    "DEFAULT_SENSITIVITY",
    "detector_spec",
    "incident_cases",
    "incident_days",
    "incident_reason",
    "incident_root_cause",
    "incident_series",
    "read_feedback",
    "recent_incidents",
    "record_feedback",
    "scan_history",
    "ring_cases",
    "ring_view",
]

#: Days of history each scan scores (enough for the seasonal baseline to settle).
HISTORY_DAYS = 120
#: The sensitivity choices of the Anomalies page: expected false alerts per series per
#: month (30 days) on a series of noise, and the default.
SENSITIVITY: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_SENSITIVITY = 1.0
#: Incidents whose last day falls in this many days before the newest data are current.
RECENT_DAYS = 30
#: Days of case narratives the emerging-threat clusters are built from.
NARRATIVE_DAYS = 90
#: Days of events a ring is built from (and as many before, for its growth).
RING_DAYS = 14
#: Days of daily volume in a cluster's sparkline.
_SPARK_DAYS = 30


#: Sources of automated detections, whose falls alert.
_AUTOMATED = ("automated_rule", "ml_model")


def scan_history(
    engine: Engine,
    *,
    start: date,
    end: date,
    feedback: pl.DataFrame | None = None,
    false_alerts: float | None = None,
    per_days: float | None = None,
) -> pl.DataFrame:
    """All incidents of the full scan over ``[start, end)``, with ``source`` and ``freq``.

    Each slice's budget is about ``false_alerts`` false alerts per ``per_days`` days
    (default: the detector's), on top of the false discovery control across slices.

    Rises in case and event volume are alerts; their falls are scanned too (one-sided,
    their own false discovery control) and kept as incidents to show, never alerted.
    For automated detections (cases from rules and models, by category and source) it
    is the other way round: a fall alerts.
    """
    cube = load.load_cube(engine, Filters(start=start, end=end - timedelta(days=1)))
    notes = cube.annotations
    case_series = anomalies.daily_slices(cube.cases, start=start, end=end)
    events = load.events_daily(engine, start=start, end=end)
    event_series = anomalies.event_slices(events, start=start, end=end)
    # Automated detections: a fall here is bad (a broken rule or model, a lost feed).
    automated = cube.cases.filter(pl.col("source").cast(pl.String).is_in(_AUTOMATED))
    detection_series = anomalies.daily_slices(
        automated, start=start, end=end, dims=("category", "source"), depth=1
    )
    found = []
    for source, series, alert_on in (
        ("cases", case_series, "up"),
        ("events", event_series, "up"),
        ("detections", detection_series, "down"),
    ):
        for freq, frame, period, seasons in (
            ("daily", series, 7, 6),
            ("weekly", anomalies.weekly_sums(series), 1, 4),
        ):
            incidents = anomalies.scan_both_ways(
                frame,
                annotations=notes,
                feedback=feedback,
                metric=f"{source}_{freq}",
                alert_on=alert_on,  # type: ignore[arg-type]
                period=period,
                seasons=seasons,
                false_alerts=false_alerts,
                per_days=per_days,
            )
            found.append(incidents.with_columns(source=pl.lit(source), freq=pl.lit(freq)))
    return pl.concat(found, how="diagonal_relaxed")


def emerging_view(
    engine: Engine, filters: Filters, *, as_of: datetime, role: Role | str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Narrative clusters of the :data:`NARRATIVE_DAYS` before ``as_of`` for the filters'
    dimensions, and their cases with descriptions masked.

    ``clusters`` is :func:`analytics.detectors.clusters.find_emerging`'s, plus ``history`` (new
    cases per day over the window, oldest first; its last day is the day before
    ``as_of``), ``spark`` (the last 30 of them), ``terms`` (the top terms joined) and
    ``strands`` (an emerging topic's strands, :func:`analytics.detectors.clusters.find_strands`:
    ``label`` and ``recent_count`` each; null for the others).
    ``cases``: ``case_id``, ``cluster_id``, ``opened_at``, ``category``, ``region``,
    ``subject_account_id`` and the masked ``description``, newest first.
    """
    access.require(role, "cases")
    start = as_of - timedelta(days=NARRATIVE_DAYS)
    texts = case_texts(engine, filters, start=start, end=as_of)
    found, members = clusters.find_emerging(
        texts, as_of=as_of, history=timedelta(days=NARRATIVE_DAYS)
    )
    first = (as_of - timedelta(days=NARRATIVE_DAYS)).date()
    days = pl.DataFrame(
        {"day": pl.date_range(first, as_of.date(), "1d", closed="left", eager=True)}
    )
    grid = found.select("cluster_id").join(days, how="cross")
    daily = clusters.cluster_daily(members, texts)
    history = (
        grid.join(daily, on=["cluster_id", "day"], how="left")
        .sort("cluster_id", "day")
        .group_by("cluster_id", maintain_order=True)
        .agg(history=pl.col("cases").fill_null(0))
    )
    strands = (
        clusters.find_strands(texts, found, members)
        .group_by("cluster_id", maintain_order=True)
        .agg(strands=pl.struct("label", "recent_count"))
    )
    found = (
        found.join(history, on="cluster_id", how="left", maintain_order="left")
        .join(strands, on="cluster_id", how="left", maintain_order="left")
        .with_columns(
            spark=pl.col("history").list.tail(_SPARK_DAYS),
            terms=pl.col("top_terms").list.join(", "),
        )
    )
    cases = (
        members.join(texts, on="case_id")
        .select(
            "case_id", "cluster_id", "opened_at", "category", "region", "subject_account_id",
            description=privacy.scrub_expr(pl.col("description")),
        )
        .sort("opened_at", descending=True)
    )  # fmt: skip
    return found, cases


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
    >>> from datetime import datetime
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


def record_feedback(
    engine: Engine,
    *,
    user: str,
    metric: str,
    slice_key: str,
    alert_start: datetime,
    verdict: str,
    value: float | None,
    note: str | None = None,
) -> None:
    """Store an associate's verdict on an incident (expected, not_useful, confirmed)."""
    Verdict(verdict)  # ValueError for anything else
    with engine.begin() as conn:
        conn.execute(
            insert(Feedback).values(
                created_at=datetime.now().replace(microsecond=0),
                user_name=user[:64],
                metric=metric[:64],
                slice_key=slice_key[:400],
                alert_start=alert_start,
                verdict=verdict,
                value_at_feedback=value,
                note=(note or None) and note[:2000],
            )
        )


def _sensitivity(per_month: float) -> float:
    if not 0 < per_month <= 30:
        raise ValueError("the sensitivity is a number of false alerts per month, above 0")
    return float(per_month)


def recent_incidents(
    engine: Engine,
    *,
    end: date,
    role: Role | str,
    per_month: float = DEFAULT_SENSITIVITY,
) -> pl.DataFrame:
    """Incidents of the last :data:`RECENT_DAYS` days before ``end``, best first.

    Every slice of cases and events, daily and weekly, is scored over the last
    :data:`HISTORY_DAYS` days, with the stored feedback applied, each slice with a
    budget of about ``per_month`` false alerts per month.
    """
    access.require(role, "aggregates")
    start = end - timedelta(days=HISTORY_DAYS)
    incidents = scan_history(
        engine,
        start=start,
        end=end,
        feedback=read_feedback(engine),
        false_alerts=_sensitivity(per_month),
        per_days=30.0,
    )
    since = datetime.combine(end - timedelta(days=RECENT_DAYS), datetime.min.time())
    return incidents.filter(pl.col("end") >= since).sort(
        "alerted", "score", descending=[True, True]
    )


def _dims(slice_key: str) -> dict[str, str]:
    return {} if slice_key == "all" else dict(p.split("=", 1) for p in slice_key.split("|"))


def detector_spec(freq: str) -> tuple[str, dict[str, object]]:
    """The detector the scan judges a slice's daily or weekly counts with.

    >>> detector_spec("weekly")
    ('counts', {'period': 1, 'seasons': 4})
    """
    return (
        "counts",
        {"period": 1, "seasons": 4} if freq == "weekly" else {"period": 7, "seasons": 6},
    )


def incident_series(
    engine: Engine,
    incident: dict[str, object],
    *,
    end: date,
    per_month: float = DEFAULT_SENSITIVITY,
) -> pl.DataFrame:
    """The incident's slice as a daily (or weekly) series scored by the scan's detector,
    with its band at the level of a budget of ``per_month`` false alerts per month.

    Columns of :func:`analytics.detectors.anomalies.score_series`.
    """
    start = end - timedelta(days=HISTORY_DAYS)
    dims = _dims(str(incident["slice"]))
    if incident["source"] == "events":
        frame = load.events_daily(engine, start=start, end=end).with_columns(
            pl.col(c).cast(pl.String) for c in ("kind", "region", "platform")
        )
        picked = frame.filter(*[pl.col(k) == v for k, v in dims.items()])
        daily = picked.group_by(pl.col("day").cast(pl.Datetime("us")).alias("ts")).agg(
            value=pl.col("events").sum().cast(pl.Float64)
        )
    else:
        cases = _cases(engine, start=start, end=end, dims=dims)
        daily = cases.group_by(pl.col("opened_at").dt.truncate("1d").alias("ts")).agg(
            value=pl.len().cast(pl.Float64)
        )
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    days = pl.DataFrame({"ts": pl.datetime_range(lo, hi, "1d", closed="left", eager=True)})
    series = days.join(daily, on="ts", how="left").with_columns(pl.col("value").fill_null(0.0))
    budget = _sensitivity(per_month)
    if incident["freq"] == "weekly":
        weekly = anomalies.weekly_sums(series.with_columns(slice=pl.lit("one")))
        return anomalies.score_series(
            weekly.select("ts", "value"),
            detector=detector_spec("weekly"),
            false_alerts=budget,
            per_days=30.0,
        )
    return anomalies.score_series(
        series, detector=detector_spec("daily"), false_alerts=budget, per_days=30.0
    )


#: What each detector compares a point with, in words.
DETECTOR_WORDS: dict[str, str] = {
    "daily": (
        "the seasonal baseline: the recent level plus the usual offset of that weekday "
        "over the previous 6 weeks, with count noise (negative binomial) fitted to the "
        "slice's own past"
    ),
    "weekly": (
        "the weekly baseline: the median of the previous 4 weeks, with count noise "
        "(negative binomial) fitted to the slice's own past"
    ),
}


def incident_reason(incident: dict[str, object], series: pl.DataFrame) -> str:
    """Why an incident was raised, in one plain paragraph of numbers: the peak against
    its expected value and band, its p-value, the detector and what it compares with.

    Parameters
    ----------
    incident
        A row of :func:`recent_incidents`.
    series
        Its scored series (:func:`incident_series`): ``ts``, ``value``, ``expected``,
        ``lower``, ``upper`` (the band at the level ``10 ** -threshold``), ``p_value``.

    Examples
    --------
    >>> from datetime import datetime
    >>> peak = datetime(2026, 4, 14)
    >>> inc = {"slice": "category=spam", "source": "cases", "freq": "daily", "days": 1,
    ...        "start": peak, "end": peak, "peak_ts": peak, "direction": "up"}
    >>> series = pl.DataFrame({"ts": [peak], "value": [6.0], "expected": [0.5],
    ...                        "lower": [0.0], "upper": [3.0], "p_value": [2e-6],
    ...                        "threshold": [1.5]})
    >>> print(incident_reason(inc, series))  # doctest: +NORMALIZE_WHITESPACE
    Tue 14 Apr 2026: 6 cases against 0.5 expected (96.8% band 0–3), a rise of 5.5 (p = 2e-06).
    Detector: the seasonal baseline: the recent level plus the usual offset of that weekday
    over the previous 6 weeks, with count noise (negative binomial) fitted to the slice's own
    past. Alerted after false-discovery control across every slice scanned that day.
    """
    freq = str(incident.get("freq") or "daily")
    unit = "events" if incident.get("source") == "events" else "cases"
    peak = incident["peak_ts"]
    found = series.filter(pl.col("ts") == peak)
    when = f"Week of {peak:%d %b %Y}" if freq == "weekly" else f"{peak:%a %d %b %Y}"
    if found.is_empty():
        return f"{when}: the slice's series is not available to explain it."
    row = found.row(0, named=True)
    value, expected = float(row["value"]), float(row["expected"] or 0.0)
    change = value - expected
    move = "rise" if change >= 0 else "fall"
    band = ""
    if row.get("lower") is not None and row.get("upper") is not None:
        level = 10 ** -float(row["threshold"]) if row.get("threshold") is not None else 0.001
        band = f" ({100 * (1 - level):.3g}% band {row['lower']:,.0f}–{row['upper']:,.0f})"
    p = "" if row.get("p_value") is None else f" (p = {row['p_value']:.1g})"
    days = int(incident.get("days") or 1)  # type: ignore[call-overload]
    span = ""
    if days > 1:
        span = f" It lasted {days} {'weeks' if freq == 'weekly' else 'days'}."
    return (
        f"{when}: {value:,.0f} {unit} against {expected:,.1f} expected{band}, "
        f"a {move} of {abs(change):,.1f}{p}.{span} "
        f"Detector: {DETECTOR_WORDS.get(freq, DETECTOR_WORDS['daily'])}. "
        "Alerted after false-discovery control across every slice scanned that "
        f"{'week' if freq == 'weekly' else 'day'}."
    )


def _cases(engine: Engine, *, start: date, end: date, dims: dict[str, str]) -> pl.DataFrame:
    case_dims = {k: v for k, v in dims.items() if k in DIMENSIONS}
    filters = Filters(
        start=start, end=end - timedelta(days=1), **{k: (v,) for k, v in case_dims.items()}
    )
    cube = load.load_cube(engine, filters)
    lo = datetime.combine(start, datetime.min.time())
    return cube.cases.filter(pl.col("opened_at") >= lo)


def incident_root_cause(engine: Engine, incident: dict[str, object], *, end: date) -> pl.DataFrame:
    """Which dimension values explain the incident's peak day (Adtributor-style).

    Each leaf cell's expected count on the peak day is its mean on the same weekday of
    the four weeks before. Case slices break down by the case dimensions not fixed by
    the slice; event slices by region and platform.
    """
    peak = incident["peak_ts"]
    assert isinstance(peak, datetime)
    dims = _dims(str(incident["slice"]))
    first = (peak - timedelta(weeks=4)).date()
    # Daily incidents: the peak day against the same weekday of the 4 weeks before;
    # weekly ones: the peak week against the 4 weeks before.
    weekly = incident["freq"] == "weekly"
    width = timedelta(days=7 if weekly else 1)
    periods = [peak - timedelta(weeks=w) for w in range(5)]
    if incident["source"] == "events":
        frame = (
            load.events_daily(engine, start=first, end=(peak + width).date())
            .with_columns(pl.col(c).cast(pl.String) for c in ("kind", "region", "platform"))
            .filter(*[pl.col(k) == v for k, v in dims.items()])
            .select(
                pl.col("day").cast(pl.Datetime("us")).alias("ts"), "region", "platform", "events"
            )
        )
        free = [d for d in ("region", "platform") if d not in dims]
        counts = frame.rename({"events": "n"})
    else:
        cases = _cases(engine, start=first, end=(peak + width).date(), dims=dims)
        free = [d for d in anomalies.SCAN_DIMS if d not in dims]
        counts = cases.select(
            pl.col("opened_at").dt.truncate("1d").alias("ts"),
            *[pl.col(d).cast(pl.String).fill_null("(none)") for d in free],
        ).with_columns(n=pl.lit(1))
    if not free:
        return pl.DataFrame()
    period_start = pl.col("ts").dt.truncate("1w") if weekly else pl.col("ts")
    cells = (
        counts.with_columns(ts=period_start)
        .filter(pl.col("ts").is_in(periods))
        .group_by(*free)
        .agg(
            actual=pl.col("n").filter(pl.col("ts") == peak).sum().cast(pl.Float64),
            expected=(pl.col("n").filter(pl.col("ts") != peak).sum() / 4).cast(pl.Float64),
        )
    )
    return rootcause.explain(cells, dims=free)


def incident_days(incident: dict[str, object]) -> tuple[date, date]:
    """The first and last day an incident covers (a weekly point covers its 7 days).

    >>> incident_days({"start": datetime(2026, 11, 9), "end": datetime(2026, 11, 16),
    ...                "freq": "weekly"})
    (datetime.date(2026, 11, 9), datetime.date(2026, 11, 22))
    """
    start, last = incident["start"], incident["end"]
    assert isinstance(start, datetime) and isinstance(last, datetime)
    span = timedelta(days=7 if incident["freq"] == "weekly" else 1)
    return start.date(), (last + span).date() - timedelta(days=1)


def incident_cases(
    engine: Engine, incident: dict[str, object], *, end: date, role: Role | str
) -> pl.DataFrame:
    """The cases underneath a case-slice incident (its days), newest first; no text."""
    access.require(role, "cases")
    if incident["source"] != "cases":
        return pl.DataFrame()
    first, last = incident_days(incident)
    after = last + timedelta(days=1)
    cases = _cases(engine, start=first, end=after, dims=_dims(str(incident["slice"])))
    return (
        cases.filter(pl.col("opened_at") < datetime.combine(after, datetime.min.time()))
        .select(
            "id",
            "opened_at",
            "category",
            "severity",
            "source",
            "region",
            "platform",
            "status",
            "subject_account_id",
        )
        .sort("opened_at", descending=True)
    )


def account_timeline(
    engine: Engine, account_id: int, *, role: Role | str, limit: int = 500
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An account's latest events (newest first) and the cases about it; no text."""
    access.require(role, "cases")
    events_q = (
        select(
            Event.ts, Event.kind, Event.platform, Event.region, Event.device_hash, Event.ip_hash,
            Event.target_account_id,
        )
        .where(Event.account_id == account_id)
        .order_by(Event.ts.desc())
        .limit(limit)
    )  # fmt: skip
    cases_q = (
        select(
            Case.id, Case.opened_at, Case.category, Case.severity, Case.source, Case.status,
            Case.resolution,
        )
        .where(Case.subject_account_id == account_id)
        .order_by(Case.opened_at.desc())
    )  # fmt: skip
    with engine.connect() as conn:
        events = pl.read_database(events_q, conn, infer_schema_length=None)
        cases = pl.read_database(cases_q, conn, infer_schema_length=None)
    return events, cases


def ring_view(
    engine: Engine, *, as_of: datetime, role: Role | str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Rings of linked accounts in the :data:`RING_DAYS` before ``as_of``: ``rings``
    (growing first, then by score), ``members`` and the ``edges`` that link them
    (:mod:`analytics.detectors.rings`). No personal data: account ids and hashes only."""
    access.require(role, "cases")
    window = timedelta(days=RING_DAYS)
    links = rings.ring_links(engine, start=as_of - 2 * window, end=as_of)
    people, cases = rings.ring_facts(engine)
    found, members = rings.find_rings(
        links, as_of=as_of, window=window, accounts=people, cases=cases
    )
    edges = rings.ring_edges(links, members, as_of=as_of, window=window)
    found = found.sort(["is_growing", "score", "ring_id"], descending=[True, True, False])
    return found, members, edges


def ring_cases(engine: Engine, account_ids: list[int], *, role: Role | str) -> pl.DataFrame:
    """Cases about the given accounts, newest first, descriptions masked."""
    access.require(role, "cases")
    stmt = (
        select(Case.id.label("case_id"), Case.opened_at, Case.category, Case.status,
               Case.subject_account_id, Case.description)
        .where(Case.subject_account_id.in_(account_ids))
        .order_by(Case.opened_at.desc())
    )  # fmt: skip
    with engine.connect() as conn:
        frame = pl.read_database(stmt, conn, infer_schema_length=None)
    if frame.is_empty():
        return frame
    return frame.with_columns(description=privacy.scrub_expr(pl.col("description")))
