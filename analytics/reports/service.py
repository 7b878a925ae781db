"""The brief's SLA and backlog section: breach rates, response times, open cases by age."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl

from analytics.access.suppression import SUPPRESSION_THRESHOLD, TOTAL_LABEL
from analytics.core import taxonomy
from analytics.core.calendar import WEEK
from analytics.metrics import trends
from analytics.metrics.weekly import WeeklyView
from analytics.present import trend_charts
from analytics.present.formatting import (
    describe_change,
    describe_test,
    format_count,
    format_day,
    format_value,
    significance,
)
from analytics.reports.disclosure import (
    product_backlog,
    product_backlog_sentence,
    product_rates,
)
from analytics.reports.headline import kpi_sentence
from analytics.reports.model import Section, Table
from analytics.sources.frames import Cube

__all__ = ["service_section"]


def service_section(view: WeeklyView, cube: Cube, *, product: bool) -> Section:
    """SLA and backlog: the breach rate, by severity too, response and resolution times,
    and open cases by age; for product only what :mod:`analytics.reports.disclosure`
    allows (a short T&S operations section)."""
    if product:
        return _product_operations(view, cube)
    kpis = {r["key"]: r for r in view.kpis.to_dicts()}
    severity = trends.weekly_metrics(cube, by="severity")
    now = severity.filter(pl.col("week") == view.week)
    before = severity.filter(pl.col("week") == view.week - WEEK)
    overall = trends.weekly_metrics(cube).filter(pl.col("week") == view.week)
    sentences = []
    sla = kpis["sla_breach_rate"]
    due, breached = (int(overall[c].sum()) for c in ("due", "breached"))
    sentences.append(
        kpi_sentence(sla, baseline=False)[:-1] + f"; {breached:,} of {due:,} cases due."
    )
    sentences.append(_severity_sentence(now))
    sentences.append(
        f"Median time to first response {format_value(kpis['ttfr_median_h']['value'], 'hours')} "
        f"({describe_test(kpis['ttfr_median_h']['p_previous'])} against the previous week's "
        f"{format_value(kpis['ttfr_median_h']['previous'], 'hours')}); to resolution "
        f"{format_value(kpis['ttr_median_h']['value'], 'hours')} "
        f"({describe_test(kpis['ttr_median_h']['p_previous'])} against "
        f"{format_value(kpis['ttr_median_h']['previous'], 'hours')})."
    )
    backlog = view.backlog
    sentences.append(_backlog_sentence(backlog, view.week, kpis["backlog"]))
    tables = (
        _sla_table(now, before),
        _backlog_table(backlog, view.week),
    )
    figures = (
        trend_charts.rate_lines(
            view.sla, title="SLA breach rate by severity", y_title="breached", group="severity"
        ),
        trend_charts.backlog_bars(backlog, title="Open backlog by age"),
    )
    return Section("service", "SLA and backlog", tuple(sentences), tables, figures)


_OPERATIONS = ("sla_breach_rate", "ttfr_median_h", "ttr_median_h")


def _product_operations(view: WeeklyView, cube: Cube) -> Section:
    """T&S operations for product, kept short: the SLA breach rate and the median times
    where :func:`analytics.reports.disclosure.product_rates` allows them, and the backlog
    at the week's end; significance in words."""
    rates, _ = product_rates(view, cube)
    shown = {r["key"]: r for r in rates}
    labels = dict(view.kpis.select("key", "label").iter_rows())
    sentences = [_operations_sentence(shown[k]) for k in _OPERATIONS if k in shown]
    left_out = [str(labels[k]).lower() for k in _OPERATIONS if k not in shown and k in labels]
    if left_out:
        sentences.append(
            f"Not shown because fewer than {SUPPRESSION_THRESHOLD} cases lie on one side of "
            "them: " + ", ".join(left_out) + "."
        )
    backlog = product_backlog(view.backlog, view.week)
    sentences.append(product_backlog_sentence(backlog, view.week))
    return Section("service", "T&S operations", tuple(sentences))


def _operations_sentence(row: Mapping[str, Any]) -> str:
    """A KPI in words, its significance without the number.

    >>> _operations_sentence({"label": "SLA breach rate", "unit": "percent", "value": 0.138,
    ...                       "previous": 0.129, "p_previous": 0.567})
    "SLA breach rate: 13.8%, up 0.9 pp on the previous week's 12.9% (not significant)."
    """
    unit = str(row["unit"])
    value, previous = row["value"], row["previous"]
    return (
        f"{row['label']}: {format_value(value, unit)}, {describe_change(value, previous, unit)} "
        f"on the previous week's {format_value(previous, unit)} "
        f"({significance(row['p_previous'])})."
    )


def _severity_sentence(now: pl.DataFrame) -> str:
    parts = [
        f"{row['severity']} {format_value(row['sla_breach_rate'], 'percent')} "
        f"({row['breached']:,} of {row['due']:,})"
        for row in now.sort(_urgency()).to_dicts()
    ]
    targets = ", ".join(
        f"{s.sla_hours:g} h {s.name}" for s in reversed(taxonomy.active().severities)
    )
    return f"Breach rate by severity (first-response SLA {targets}): " + "; ".join(parts) + "."


def _urgency() -> pl.Expr:
    """Severities most urgent first (those outside the taxonomy last)."""
    names = taxonomy.active().severity_names[::-1]
    return (
        pl.col("severity")
        .cast(pl.String)
        .replace_strict(_order(names), default=len(names), return_dtype=pl.Int64)
    )


def _sla_table(now: pl.DataFrame, before: pl.DataFrame) -> Table:
    joined = now.join(
        before.select("severity", prev_rate="sla_breach_rate", prev_due="due"),
        on="severity",
        how="left",
    ).sort(_urgency())
    frame = joined.select(
        pl.col("severity").alias("Severity"),
        pl.col("due").alias("Cases due"),
        pl.col("breached").alias("Breached"),
        pl.col("sla_breach_rate").alias("Breach rate"),
        pl.col("prev_rate").alias("Previous week"),
    )
    return Table(
        "SLA breach rate by severity",
        frame,
        {"Breach rate": "percent", "Previous week": "percent"},
    )


def _backlog_table(backlog: pl.DataFrame, week: date) -> Table:
    """Open cases by age at the week's end and a week earlier, with a total row."""
    frame = _with_total(_backlog_pair(backlog, week), ["this", "previous"], label="age_bucket")
    names = {"age_bucket": "Age", "this": "Open at week end", "previous": "A week earlier"}
    return Table("Open backlog by age", frame.rename(names))


def _backlog_sentence(backlog: pl.DataFrame, week: date, kpi: Mapping[str, Any]) -> str:
    """The leadership brief's backlog sentence: open cases at the week's end against a
    week earlier (the product brief's is
    :func:`analytics.reports.disclosure.product_backlog_sentence`)."""
    end = week + timedelta(days=6)
    pair = _backlog_pair(backlog, week)
    now, before = (float(pair[c].sum()) for c in ("this", "previous"))
    old = float(pair.filter(pl.col("age_bucket").is_in(trends.AGE_BUCKETS[3:]))["this"].sum())
    share = f" ({old / now:.0%})" if now else ""
    return (
        f"Open backlog at the end of {format_day(end)}: {format_count(now)} cases, "
        f"{describe_change(now, before, 'count')} on the week before's {format_count(before)} "
        f"({describe_test(kpi['p_previous'])}); {format_count(old)}{share} open more than 7 days."
    )


def _backlog_pair(backlog: pl.DataFrame, week: date) -> pl.DataFrame:
    """Open cases by age at the week's end (``this``) and a week earlier (``previous``)."""
    end = week + timedelta(days=6)
    now = backlog.filter(pl.col("week_end") == end).select("age_bucket", this="open")
    before = backlog.filter(pl.col("week_end") == end - WEEK).select("age_bucket", previous="open")
    return now.join(before, on="age_bucket", how="left", maintain_order="left")


def _with_total(frame: pl.DataFrame, columns: Sequence[str], *, label: str) -> pl.DataFrame:
    """``frame`` and a ``Total`` row of each column's sum (leadership tables: nothing hidden).

    >>> _with_total(pl.DataFrame({"k": ["a", "b"], "n": [3, 4]}), ["n"], label="k").rows()
    [('a', 3), ('b', 4), ('Total', 7)]
    """
    frame = frame.with_columns(pl.col(label).cast(pl.String))
    total = frame.select(pl.lit(TOTAL_LABEL).alias(label), *[pl.col(c).sum() for c in columns])
    return pl.concat([frame, total], how="diagonal_relaxed").select(frame.columns)


def _order(values: Sequence[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}
