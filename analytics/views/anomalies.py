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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine, select

from analytics import access
from analytics.access import privacy
from analytics.core import taxonomy
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Case, Event, Role
from analytics.core.slices import parse_slice
from analytics.metrics import rootcause
from analytics.present.formatting import (
    format_days,
    format_share,
    format_slice,
    humanise,
    significance,
    significance_note,
)
from analytics.sources import load
from analytics.views.feedback import read_feedback

__all__ = [
    "DEFAULT_SENSITIVITY",
    "DETECTOR_WORDS",
    "HISTORY_DAYS",
    "HOLD",
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
    "cause_table",
    "cause_words",
    "current_incidents",
    "current_only",
    "detector_spec",
    "incident_cases",
    "incident_days",
    "incident_evidence",
    "incident_reason",
    "incident_root_cause",
    "incident_rows",
    "incident_series",
    "incident_tables",
    "recent_incidents",
    "root_cause_rows",
    "scan_end",
    "scan_history",
    "subjects_of",
    "within_filters",
]

#: Days of history each scan scores (enough for the seasonal baseline to settle).
HISTORY_DAYS = 120
#: The sensitivity choices of the Anomalies page: expected false alerts per series per
#: month (30 days) on a series of noise, and the default.
SENSITIVITY: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_SENSITIVITY = 1.0
#: On an incident's chart, points further than this many noise standard deviations from
#: their expectation do not widen the band of the points after them.
HOLD = 4.0
#: Incidents whose last day falls in this many days before the newest data are current.
RECENT_DAYS = 30
#: What the scan reads: URL value -> label ("all" for every source).
SOURCES: dict[str, str] = {
    "all": "All",
    "cases": "Cases",
    "events": "Events",
    "detections": "Detections",
}
#: The columns of the page's incident tables in words (:func:`incident_rows`): alerted,
#: and the quiet ones' extra.
TABLE_COLUMNS: tuple[str, ...] = (
    "Slice", "Source", "Scale", "Days", "Status", "Peak", "Expected", "Score",
)  # fmt: skip
QUIET_COLUMNS: tuple[str, ...] = (*TABLE_COLUMNS, "Move", "Explained by", "Dismissed earlier")


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
    machines = list(taxonomy.active().automated)  # the taxonomy's automated detection
    automated = cube.cases.filter(pl.col("source").cast(pl.String).is_in(machines))
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


def scan_end(week: date, newest: date) -> date:
    """The day after the last day a scan for the focus week ``week`` (a Monday) reads.

    ``newest`` is the day after the newest data. While the focus week is the latest
    complete one (or the week in progress) the scan reads to the newest data, so what is
    open now is seen; for an earlier week it stops at the end of that week, so the page
    shows the incidents as they stood then.

    >>> scan_end(date(2026, 11, 23), date(2026, 12, 6))
    datetime.date(2026, 12, 6)
    >>> scan_end(date(2026, 11, 9), date(2026, 12, 6))
    datetime.date(2026, 11, 16)
    """
    after = week + timedelta(days=7)
    return newest if newest <= after + timedelta(days=7) else after


def _last_day() -> pl.Expr:
    """The last day an incident covers (a weekly point covers its week, to the Sunday)."""
    covered = pl.when(pl.col("freq") == "weekly").then(6).otherwise(0)
    return pl.col("end").dt.date() + pl.duration(days=covered)


def current_only(incidents: pl.DataFrame, *, week: date, end: date) -> pl.DataFrame:
    """The incidents current in the focus week ``week`` (a Monday) of a scan that read to
    ``end`` (excluded): those still open or that ended within the week or after it, that
    is whose last day is on or after the Monday. ``last_day`` is the last day each
    covers; ``ongoing`` says the incident is still open (it covers the scan's last day).

    >>> t = datetime
    >>> found = pl.DataFrame({
    ...     "slice": ["old", "ended_in_week", "weekly_open", "daily_open"],
    ...     "freq": ["daily", "daily", "weekly", "daily"],
    ...     "start": [t(2026, 11, 2), t(2026, 11, 20), t(2026, 11, 23), t(2026, 12, 1)],
    ...     "end": [t(2026, 11, 5), t(2026, 11, 24), t(2026, 11, 30), t(2026, 12, 5)]})
    >>> current = current_only(found, week=date(2026, 11, 23), end=date(2026, 12, 6))
    >>> current.select("slice", "ongoing").rows()
    [('ended_in_week', False), ('weekly_open', True), ('daily_open', True)]
    """
    last_scanned = end - timedelta(days=1)
    return (
        incidents.with_columns(last_day=_last_day())
        .filter(pl.col("last_day") >= week)
        .with_columns(ongoing=pl.col("last_day") >= last_scanned)
    )


def current_incidents(
    engine: Engine,
    *,
    week: date,
    newest: date,
    role: Role | str,
    per_month: float = DEFAULT_SENSITIVITY,
) -> pl.DataFrame:
    """The incidents current in the focus week ``week`` (a Monday): still open, or ended
    within the week (:func:`current_only`), best first, from the scan of
    :func:`recent_incidents` to :func:`scan_end` (``newest`` is the day after the newest
    data). The Anomalies page lists these; ``new`` ones of the week began in it.
    """
    end = scan_end(week, newest)
    incidents = recent_incidents(engine, end=end, role=role, per_month=per_month)
    return current_only(incidents, week=week, end=end).with_columns(
        new=pl.col("start").dt.date() >= week
    )


@dataclass(frozen=True)
class IncidentTables:
    """The page's two incident tables: the alerted ones, and the others (explained,
    dismissed, or falls)."""

    alerted: pl.DataFrame
    quiet: pl.DataFrame


def incident_tables(incidents: pl.DataFrame, *, source: str, text: str) -> IncidentTables:
    """Incidents of one source ("all" for every source) whose slice contains ``text``
    (literally, in any case, as its key ``region=FL`` or its words ``FL · Web``), alerted
    ones apart; ``last_day`` is the last day each covers (a weekly
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
    incidents = incidents.with_columns(last_day=_last_day())
    shown = incidents if source == "all" else incidents.filter(pl.col("source") == source)
    if text:
        words = pl.Series([format_slice(k) for k in shown["slice"]], dtype=pl.String)
        wanted = text.lower()
        shown = shown.filter(
            pl.col("slice").str.to_lowercase().str.contains(wanted, literal=True)
            | words.str.to_lowercase().str.contains(wanted, literal=True)
        )
    return IncidentTables(shown.filter(pl.col("alerted")), shown.filter(~pl.col("alerted")))


def within_filters(incidents: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """The incidents whose slice does not name another value of a dimension the
    ``filters`` narrow (a slice that does not name the dimension stays: it holds them).

    >>> found = pl.DataFrame({"slice": ["region=FL", "region=CA|platform=web", "kind=login"]})
    >>> within_filters(found, Filters(region=("FL",)))["slice"].to_list()
    ['region=FL', 'kind=login']
    """
    keep = [
        pl.col("slice").str.extract(rf"(?:^|\|){dim}=([^|]*)").is_in(list(chosen)).fill_null(True)
        for dim in DIMENSIONS
        if (chosen := filters.where(dim))
    ]
    return incidents.filter(*keep) if keep else incidents


_SOURCE_WORDS = {"cases": "Cases", "events": "Events", "detections": "Automated detections"}
_FREQ_WORDS = {"daily": "Daily", "weekly": "Weekly"}


def incident_rows(incidents: pl.DataFrame) -> pl.DataFrame:
    """The incidents with the columns of :data:`TABLE_COLUMNS` and :data:`QUIET_COLUMNS`
    in words added: the slice as ``Other · OB-GYN``, the days as ``16–22 Nov``, whether
    it is still open, the score (−log10 p) as a number. Needs ``last_day``
    (:func:`incident_tables`); ``ongoing`` (:func:`current_only`) is optional.

    >>> t = datetime(2026, 11, 16)
    >>> found = pl.DataFrame({"slice": ["category=other|specialty=obgyn"], "source": ["cases"],
    ...     "freq": ["weekly"], "start": [t], "end": [t], "last_day": [date(2026, 11, 22)],
    ...     "peak_value": [12.0], "peak_expected": [3.0], "score": [7.25], "ongoing": [True],
    ...     "direction": ["up"], "explained_by": [None], "suppressed": [False]})
    >>> incident_rows(found).select(TABLE_COLUMNS).row(0)
    ('Other · OB-GYN', 'Cases', 'Weekly', '16–22 Nov', 'Ongoing', 12.0, 3.0, 7.25)
    >>> incident_rows(found).select("Move", "Explained by", "Dismissed earlier").row(0)
    ('Rise', '', False)
    """
    keys = incidents["slice"].to_list()
    days = [
        format_days(first.date(), last)
        for first, last in zip(incidents["start"], incidents["last_day"], strict=True)
    ]
    ongoing = pl.col("ongoing") if "ongoing" in incidents.columns else pl.lit(False)
    optional = {
        "direction": pl.String,
        "explained_by": pl.String,
        "suppressed": pl.Boolean,
    }
    missing = [
        pl.lit(None, dtype).alias(c) for c, dtype in optional.items() if c not in incidents.columns
    ]
    return incidents.with_columns(missing).with_columns(
        pl.Series("Slice", [format_slice(k) for k in keys], dtype=pl.String),
        pl.col("source").replace_strict(_SOURCE_WORDS, default=pl.col("source")).alias("Source"),
        pl.col("freq").replace_strict(_FREQ_WORDS, default=pl.col("freq")).alias("Scale"),
        pl.Series("Days", days, dtype=pl.String),
        pl.when(ongoing)
        .then(pl.lit(humanise("ongoing")))
        .otherwise(pl.lit(humanise("ended")))
        .alias("Status"),
        pl.col("peak_value").cast(pl.Float64).alias("Peak"),
        pl.col("peak_expected").cast(pl.Float64).alias("Expected"),
        pl.col("score").cast(pl.Float64).alias("Score"),
        pl.when(pl.col("direction") == "down")
        .then(pl.lit(humanise("fall")))
        .otherwise(pl.lit(humanise("rise")))
        .alias("Move"),
        pl.col("explained_by").cast(pl.String).fill_null("").alias("Explained by"),
        pl.col("suppressed").fill_null(False).alias("Dismissed earlier"),
    )


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

    Points beyond :data:`HOLD` noise standard deviations are kept out of the noise
    estimate of the points after them: without that, an alert's own residual widened
    the band for weeks after it, and a rise that went on after the alert was no longer
    flagged on the chart (issue 18).

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
    freq = "weekly" if incident.freq == "weekly" else "daily"
    name, params = detector_spec(freq)
    held = (name, {**params, "hold": HOLD})  # the alert does not widen its own band
    if freq == "weekly":
        series = anomalies.weekly_sums(series.with_columns(slice=pl.lit("one")))
    return anomalies.score_series(
        series.select("ts", "value"), detector=held, false_alerts=budget, per_days=30.0
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
    its expected value and band, whether that is significant (its p-value is
    :func:`incident_note`'s), the detector and what it compares with.

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
    Tue 14 Apr 2026: 6 cases against 0.5 expected (96.8% band 0–3), a rise of 5.5, significant.
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
    p = "" if row.get("p_value") is None else f", {significance(float(row['p_value']))}"
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


def incident_note(series: pl.DataFrame, peak: datetime) -> str:
    """The number behind the significance word of :func:`incident_reason`, for a
    tooltip: the p-value of the peak and its score (``−log10 p``).

    >>> peak = datetime(2026, 4, 14)
    >>> print(incident_note(pl.DataFrame({"ts": [peak], "p_value": [2e-6]}), peak))
    ... # doctest: +NORMALIZE_WHITESPACE
    p < 0.001 (score 5.7 = −log10 p); significant means below 0.05 after the scan's
    false-discovery control.
    """
    found = series.filter(pl.col("ts") == peak) if "p_value" in series.columns else series.clear()
    if found.is_empty() or found["p_value"][0] is None:
        return significance_note(None)
    p = float(found["p_value"][0])
    score = f"{-math.log10(p):.1f}" if p > 0 else "above 300"
    return (
        f"{significance_note(p)} (score {score} = −log10 p); significant means below 0.05 "
        "after the scan's false-discovery control."
    )


def root_cause_rows(explained: pl.DataFrame, *, top: int = 10) -> pl.DataFrame:
    """The values that stand out (:func:`analytics.metrics.rootcause.explain`'s
    selected ones), labelled in words (``Region: FL``) with their ``change``, for a bar
    chart; empty when no single value stands out."""
    best = explained.filter(pl.col("selected")).head(top)
    labels = [f"{humanise(d)}: {humanise(v)}" for d, v in best.select("dimension", "value").rows()]
    return pl.DataFrame(
        {"value": labels, "change": best["change"]},
        schema={"value": pl.String, "change": pl.Float64},
    )


def cause_table(explained: pl.DataFrame) -> pl.DataFrame:
    """The values that stand out, in words, one row each: ``What`` (the dimension),
    ``Value``, ``Share of the change``, ``Usual share``, ``Actual`` and ``Expected``.

    >>> cells = pl.DataFrame({"region": ["FL", "TX"], "actual": [120.0, 80.0],
    ...                       "expected": [10.0, 90.0]})
    >>> cause_table(rootcause.explain(cells, dims=["region"])).row(0)
    ('Region', 'FL', '110%', '10%', 120.0, 10.0)
    """
    best = explained.filter(pl.col("selected"))
    return pl.DataFrame(
        {
            "What": [humanise(d) for d in best["dimension"]],
            "Value": [humanise(v) for v in best["value"]],
            "Share of the change": [format_share(x) for x in best["share"]],
            "Usual share": [format_share(x) for x in best["expected_share"]],
            "Actual": best["actual"],
            "Expected": best["expected"],
        },
        schema={
            "What": pl.String,
            "Value": pl.String,
            "Share of the change": pl.String,
            "Usual share": pl.String,
            "Actual": pl.Float64,
            "Expected": pl.Float64,
        },
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def cause_words(explained: pl.DataFrame, *, unit: str = "cases", top: int = 3) -> str:
    """What explains the change, in words: the values that stand out in the best ``top``
    dimensions, each with its share of the change against its usual share; or that no
    single value stands out (the change is spread like the usual mix), naming the
    dimensions looked at.

    >>> cells = pl.DataFrame({"region": ["FL", "FL", "TX", "TX"],
    ...     "platform": ["ios", "web", "ios", "web"], "actual": [60.0, 60.0, 40.0, 40.0],
    ...     "expected": [5.0, 5.0, 45.0, 45.0]})
    >>> print(cause_words(rootcause.explain(cells, dims=["region", "platform"])))
    ... # doctest: +NORMALIZE_WHITESPACE
    FL (region) stands out: 110% of the change against a usual 10% of cases (120 against
    10 expected). No single platform stands out.
    >>> new = cells.with_columns(expected=pl.when(pl.col("region") == "FL").then(0.0)
    ...     .otherwise(pl.col("expected")))
    >>> print(cause_words(rootcause.explain(new, dims=["region"])))
    FL (region) stands out: 109% of the change, none expected: all 120 are new.
    >>> even = cells.with_columns(actual=pl.col("expected") * 2)
    >>> print(cause_words(rootcause.explain(even, dims=["region", "platform"])))
    ... # doctest: +NORMALIZE_WHITESPACE
    No single value stands out: every region and platform moved in about its usual
    proportion.
    """
    dims = explained["dimension"].unique(maintain_order=True).to_list()
    chosen = explained.filter(pl.col("selected") & (pl.col("dimension_rank") <= top))
    if chosen.is_empty():
        if not dims:
            return rootcause.NOTHING
        return (
            "No single value stands out: every "
            f"{_and([humanise(d).lower() for d in dims])} moved in about its usual proportion."
        )
    sentences = []
    for dimension in chosen["dimension"].unique(maintain_order=True).to_list():
        part = chosen.filter(pl.col("dimension") == dimension)
        names = [humanise(v) for v in part["value"]]
        verb = "stands out" if len(names) == 1 else "stand out"
        share, usual = float(part["share"].sum()), float(part["expected_share"].sum())
        actual, expected = float(part["actual"].sum()), float(part["expected"].sum())
        against = (
            f", none expected: all {actual:,.0f} {'is' if actual == 1 else 'are'} new"
            if round(expected) == 0
            else f" against a usual {format_share(usual)} of {unit} "
            f"({actual:,.0f} against {expected:,.0f} expected)"
        )
        sentences.append(
            f"{_and(names)} ({dimension.replace('_', ' ')}) {verb}: {format_share(share)} of the "
            f"change{against}."
        )
    quiet = [d for d in dims if d not in set(chosen["dimension"].to_list())]
    if quiet:
        sentences.append(f"No single {_and([d.replace('_', ' ') for d in quiet])} stands out.")
    return " ".join(sentences)


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
    """The cases underneath a case-slice incident (its days), newest first, each with its
    description masked as the Case Explorer masks it (:mod:`analytics.access.privacy`)."""
    access.require(role, "cases")
    if incident.source != "cases":
        return pl.DataFrame()
    first, last = incident_days(incident)
    after = last + timedelta(days=1)
    cases = _cases(engine, start=first, end=after, dims=parse_slice(incident.slice))
    found = (
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
    return found.join(_descriptions(engine, found["id"].to_list()), on="id", how="left")


#: Case ids per query when reading descriptions (below every database's parameter limit).
_CHUNK = 900


def _descriptions(engine: Engine, ids: list[int]) -> pl.DataFrame:
    """``id`` and ``description`` (masked) of the cases ``ids``."""
    frames = [pl.DataFrame(schema={"id": pl.Int64, "description": pl.String})]
    with engine.connect() as conn:
        for i in range(0, len(ids), _CHUNK):
            query = select(Case.id, Case.description).where(Case.id.in_(ids[i : i + _CHUNK]))
            frames.append(
                pl.DataFrame(
                    [tuple(r) for r in conn.execute(query)],
                    schema={"id": pl.Int64, "description": pl.String},
                    orient="row",
                )
            )
    found = pl.concat(frames)
    return found.with_columns(privacy.scrub_expr(pl.col("description")))


def cases_on(cases: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """The cases opened on ``days`` (all of them when no day is given)."""
    return cases.filter(pl.col("opened_at").dt.date().is_in(days)) if days else cases


def subjects_of(cases: pl.DataFrame) -> list[int]:
    """The accounts the cases are about, in order, each once."""
    return [int(a) for a in cases["subject_account_id"].drop_nulls().unique().sort().to_list()]


@dataclass(frozen=True)
class Evidence:
    """What the page shows of one incident: its scored ``series`` (with the band), the
    ``reason`` it was raised (with the p-value behind its words in ``reason_note``), its
    root cause (``causes``; in words ``cause_summary``, the values that stand out as
    ``cause_rows`` and ``cause_bars``) and the ``cases`` underneath, descriptions masked."""

    series: pl.DataFrame
    reason: str
    causes: pl.DataFrame
    cause_summary: str
    cause_bars: pl.DataFrame
    cases: pl.DataFrame
    reason_note: str = ""
    cause_rows: pl.DataFrame = field(default_factory=pl.DataFrame)


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
    unit = "events" if incident.source == "events" else "cases"
    return Evidence(
        series=series,
        reason=incident_reason(incident, series),
        causes=causes,
        cause_summary="" if empty else cause_words(causes, unit=unit),
        cause_bars=pl.DataFrame() if empty else root_cause_rows(causes),
        cases=incident_cases(engine, incident, end=end, role=role),
        reason_note=incident_note(series, incident.peak_ts),
        cause_rows=pl.DataFrame() if empty else cause_table(causes),
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
