"""The Anomalies page: current incidents across every slice, one incident's evidence, feedback.

:func:`recent_incidents` runs the production scan (:func:`scan_history`, every slice of
cases, events and automated detections, daily and weekly, scored by
:mod:`analytics.detectors.anomalies`); an :class:`Incident` is one row of it.
:func:`incident_evidence` gives what the page shows of one incident: its scored series
with the band, the sentence that says why it was raised, its root cause
(:mod:`analytics.metrics.rootcause`) and the cases underneath. Verdicts on incidents
(:mod:`analytics.views.feedback`) quiet a pattern in later scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine, select

from analytics import access
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Case, Event, Role
from analytics.core.slices import parse_slice
from analytics.metrics import rootcause
from analytics.sources import load
from analytics.views.feedback import read_feedback

__all__ = [
    "DEFAULT_SENSITIVITY",
    "DETECTOR_WORDS",
    "HISTORY_DAYS",
    "QUIET_COLUMNS",
    "RECENT_DAYS",
    "SENSITIVITY",
    "SOURCES",
    "TABLE_COLUMNS",
    "Evidence",
    "Incident",
    "IncidentTables",
    "account_timeline",
    "cases_on",
    "detector_spec",
    "incident_cases",
    "incident_days",
    "incident_evidence",
    "incident_reason",
    "incident_root_cause",
    "incident_series",
    "incident_tables",
    "recent_incidents",
    "root_cause_rows",
    "scan_history",
    "subjects_of",
]

#: Days of history each scan scores (enough for the seasonal baseline to settle).
HISTORY_DAYS = 120
#: The sensitivity choices of the Anomalies page: expected false alerts per series per
#: month (30 days) on a series of noise, and the default.
SENSITIVITY: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_SENSITIVITY = 1.0
#: Incidents whose last day falls in this many days before the newest data are current.
RECENT_DAYS = 30
#: What the scan reads: URL value -> label ("all" for every source).
SOURCES: dict[str, str] = {
    "all": "All",
    "cases": "Cases",
    "events": "Events",
    "detections": "Detections",
}
#: The columns of the page's incident tables (alerted, and the quiet ones' extra).
TABLE_COLUMNS: tuple[str, ...] = (
    "slice", "source", "freq", "start", "last_day", "days", "peak_value", "peak_expected",
    "score",
)  # fmt: skip
QUIET_COLUMNS: tuple[str, ...] = (*TABLE_COLUMNS, "direction", "explained_by", "suppressed")

#: Sources of automated detections, whose falls alert.
_AUTOMATED = ("automated_rule", "ml_model")


@dataclass(frozen=True)
class Incident:
    """One incident of the scan: a run of alerted points of one slice's series."""

    slice: str
    source: str  # cases | events | detections
    freq: str  # daily | weekly
    metric: str
    start: datetime
    end: datetime
    peak_ts: datetime
    peak_value: float
    days: int = 1
    direction: str = "up"

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Incident:
        """From a row of :func:`recent_incidents` (or :func:`scan_history`)."""
        return cls(
            slice=str(row["slice"]),
            source=str(row.get("source") or "cases"),
            freq=str(row.get("freq") or "daily"),
            metric=str(row.get("metric") or ""),
            start=row["start"],
            end=row["end"],
            peak_ts=row["peak_ts"],
            peak_value=float(row.get("peak_value") or 0.0),
            days=int(row.get("days") or 1),
            direction=str(row.get("direction") or "up"),
        )


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
    is the other way round: a fall alerts. The batch scan itself, without a role: the
    pages read :func:`recent_incidents`, the CLI's evaluation reads this.
    """
    from analytics.detectors import anomalies  # the detectors (and scipy) on first use

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
    scans: tuple[tuple[str, pl.DataFrame, Literal["up", "down"]], ...] = (
        ("cases", case_series, "up"),
        ("events", event_series, "up"),
        ("detections", detection_series, "down"),
    )
    for source, series, alert_on in scans:
        for freq, frame, period, seasons in (
            ("daily", series, 7, 6),
            ("weekly", anomalies.weekly_sums(series), 1, 4),
        ):
            incidents = anomalies.scan_both_ways(
                frame,
                annotations=notes,
                feedback=feedback,
                metric=f"{source}_{freq}",
                alert_on=alert_on,
                period=period,
                seasons=seasons,
                false_alerts=false_alerts,
                per_days=per_days,
            )
            found.append(incidents.with_columns(source=pl.lit(source), freq=pl.lit(freq)))
    return pl.concat(found, how="diagonal_relaxed")


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
    # Ties of score are broken by metric, slice and start, so the list (and the incident
    # the page opens first) is the same on every run.
    return incidents.filter(pl.col("end") >= since).sort(
        "alerted", "score", "metric", "slice", "start", descending=[True, True, False, False, False]
    )


@dataclass(frozen=True)
class IncidentTables:
    """The page's two incident tables: the alerted ones, and the others (explained,
    dismissed, or falls)."""

    alerted: pl.DataFrame
    quiet: pl.DataFrame


def incident_tables(incidents: pl.DataFrame, *, source: str, text: str) -> IncidentTables:
    """Incidents of one source ("all" for every source) whose slice contains ``text``
    (literally), alerted ones apart; ``last_day`` is the last day each covers (a weekly
    incident's last point is a Monday and covers that week, to its Sunday).

    >>> t = datetime(2026, 11, 16)
    >>> found = pl.DataFrame({"slice": ["region=FL", "region=CA"], "source": ["cases"] * 2,
    ...                       "freq": ["weekly", "daily"], "end": [t, t],
    ...                       "alerted": [True, False]})
    >>> tables = incident_tables(found, source="cases", text="FL")
    >>> tables.alerted["slice"].to_list(), tables.quiet.height
    (['region=FL'], 0)
    >>> str(tables.alerted["last_day"][0])
    '2026-11-22'
    """
    covered = pl.when(pl.col("freq") == "weekly").then(6).otherwise(0)
    incidents = incidents.with_columns(last_day=pl.col("end").dt.date() + pl.duration(days=covered))
    shown = incidents if source == "all" else incidents.filter(pl.col("source") == source)
    if text:
        shown = shown.filter(pl.col("slice").str.contains(text, literal=True))
    return IncidentTables(shown.filter(pl.col("alerted")), shown.filter(~pl.col("alerted")))


def detector_spec(freq: str) -> tuple[str, dict[str, object]]:
    """The detector the scan judges a slice's daily or weekly counts with.

    >>> detector_spec("weekly")
    ('counts', {'period': 1, 'seasons': 4})
    """
    return (
        "counts",
        {"period": 1, "seasons": 4} if freq == "weekly" else {"period": 7, "seasons": 6},
    )


def _events_daily(engine: Engine, *, start: date, end: date) -> pl.DataFrame:
    return load.events_daily(engine, start=start, end=end).with_columns(
        pl.col(c).cast(pl.String) for c in ("kind", "region", "platform")
    )


def incident_series(
    engine: Engine,
    incident: Incident,
    *,
    end: date,
    role: Role | str,
    per_month: float = DEFAULT_SENSITIVITY,
) -> pl.DataFrame:
    """The incident's slice as a daily (or weekly) series scored by the scan's detector,
    with its band at the level of a budget of ``per_month`` false alerts per month.

    Columns of :func:`analytics.detectors.anomalies.score_series`.
    """
    from analytics.detectors import anomalies

    access.require(role, "aggregates")
    start = end - timedelta(days=HISTORY_DAYS)
    dims = parse_slice(incident.slice)
    if incident.source == "events":
        picked = _events_daily(engine, start=start, end=end).filter(
            *[pl.col(k) == v for k, v in dims.items()]
        )
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
    if incident.freq == "weekly":
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


def incident_reason(incident: Incident, series: pl.DataFrame) -> str:
    """Why an incident was raised, in one plain paragraph of numbers: the peak against
    its expected value and band, its p-value, the detector and what it compares with.

    Parameters
    ----------
    incident
        An incident of :func:`recent_incidents`.
    series
        Its scored series (:func:`incident_series`): ``ts``, ``value``, ``expected``,
        ``lower``, ``upper`` (the band at the level ``10 ** -threshold``), ``p_value``.

    Examples
    --------
    >>> peak = datetime(2026, 4, 14)
    >>> inc = Incident(slice="category=spam", source="cases", freq="daily", metric="cases_daily",
    ...                start=peak, end=peak, peak_ts=peak, peak_value=6.0)
    >>> series = pl.DataFrame({"ts": [peak], "value": [6.0], "expected": [0.5],
    ...                        "lower": [0.0], "upper": [3.0], "p_value": [2e-6],
    ...                        "threshold": [1.5]})
    >>> print(incident_reason(inc, series))  # doctest: +NORMALIZE_WHITESPACE
    Tue 14 Apr 2026: 6 cases against 0.5 expected (96.8% band 0–3), a rise of 5.5 (p = 2e-06).
    Detector: the seasonal baseline: the recent level plus the usual offset of that weekday
    over the previous 6 weeks, with count noise (negative binomial) fitted to the slice's own
    past. Alerted after false-discovery control across every slice scanned that day.
    """
    freq = incident.freq
    unit = "events" if incident.source == "events" else "cases"
    peak = incident.peak_ts
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
    span = ""
    if incident.days > 1:
        span = f" It lasted {incident.days} {'weeks' if freq == 'weekly' else 'days'}."
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


def incident_root_cause(
    engine: Engine, incident: Incident, *, end: date, role: Role | str
) -> pl.DataFrame:
    """Which dimension values explain the incident's peak day (Adtributor-style).

    Each leaf cell's expected count on the peak day is its mean on the same weekday of
    the four weeks before. Case slices break down by the case dimensions not fixed by
    the slice; event slices by region and platform.
    """
    from analytics.detectors.anomalies import SCAN_DIMS

    access.require(role, "aggregates")
    peak = incident.peak_ts
    dims = parse_slice(incident.slice)
    first = (peak - timedelta(weeks=4)).date()
    # Daily incidents: the peak day against the same weekday of the 4 weeks before;
    # weekly ones: the peak week against the 4 weeks before.
    weekly = incident.freq == "weekly"
    width = timedelta(days=7 if weekly else 1)
    periods = [peak - timedelta(weeks=w) for w in range(5)]
    if incident.source == "events":
        frame = (
            _events_daily(engine, start=first, end=(peak + width).date())
            .filter(*[pl.col(k) == v for k, v in dims.items()])
            .select(
                pl.col("day").cast(pl.Datetime("us")).alias("ts"), "region", "platform", "events"
            )
        )
        free = [d for d in ("region", "platform") if d not in dims]
        counts = frame.rename({"events": "n"})
    else:
        cases = _cases(engine, start=first, end=(peak + width).date(), dims=dims)
        free = [d for d in SCAN_DIMS if d not in dims]
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


def root_cause_rows(explained: pl.DataFrame, *, top: int = 10) -> pl.DataFrame:
    """The selected values of the best dimensions (else the most surprising ones),
    labelled ``dimension=value`` with their ``change``, for a bar chart."""
    best = explained.filter(pl.col("selected"))
    if best.is_empty():
        best = explained.sort("surprise", descending=True).head(top)
    return best.head(top).select(
        value=pl.col("dimension") + "=" + pl.col("value"), change=pl.col("change")
    )


def incident_days(incident: Incident) -> tuple[date, date]:
    """The first and last day an incident covers (a weekly point covers its 7 days).

    >>> t, u = datetime(2026, 11, 9), datetime(2026, 11, 16)
    >>> incident_days(Incident(slice="all", source="cases", freq="weekly", metric="",
    ...                        start=t, end=u, peak_ts=t, peak_value=1.0))
    (datetime.date(2026, 11, 9), datetime.date(2026, 11, 22))
    """
    span = timedelta(days=7 if incident.freq == "weekly" else 1)
    return incident.start.date(), (incident.end + span).date() - timedelta(days=1)


def incident_cases(
    engine: Engine, incident: Incident, *, end: date, role: Role | str
) -> pl.DataFrame:
    """The cases underneath a case-slice incident (its days), newest first; no text."""
    access.require(role, "cases")
    if incident.source != "cases":
        return pl.DataFrame()
    first, last = incident_days(incident)
    after = last + timedelta(days=1)
    cases = _cases(engine, start=first, end=after, dims=parse_slice(incident.slice))
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


def cases_on(cases: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """The cases opened on ``days`` (all of them when no day is given)."""
    return cases.filter(pl.col("opened_at").dt.date().is_in(days)) if days else cases


def subjects_of(cases: pl.DataFrame) -> list[int]:
    """The accounts the cases are about, in order, each once."""
    return [int(a) for a in cases["subject_account_id"].drop_nulls().unique().sort().to_list()]


@dataclass(frozen=True)
class Evidence:
    """What the page shows of one incident: its scored ``series`` (with the band), the
    ``reason`` it was raised, its root cause (``causes``, in one sentence ``cause_summary``
    and as ``cause_bars``) and the ``cases`` underneath."""

    series: pl.DataFrame
    reason: str
    causes: pl.DataFrame
    cause_summary: str
    cause_bars: pl.DataFrame
    cases: pl.DataFrame


def incident_evidence(
    engine: Engine,
    incident: Incident,
    *,
    end: date,
    role: Role | str,
    per_month: float = DEFAULT_SENSITIVITY,
) -> Evidence:
    """An incident's evidence (:class:`Evidence`) with its band at the level of a budget
    of ``per_month`` false alerts per slice per month; the role must see cases."""
    access.require(role, "cases")
    series = incident_series(engine, incident, end=end, role=role, per_month=per_month)
    causes = incident_root_cause(engine, incident, end=end, role=role)
    empty = causes.is_empty()
    return Evidence(
        series=series,
        reason=incident_reason(incident, series),
        causes=causes,
        cause_summary="" if empty else rootcause.summary(causes),
        cause_bars=pl.DataFrame() if empty else root_cause_rows(causes),
        cases=incident_cases(engine, incident, end=end, role=role),
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
