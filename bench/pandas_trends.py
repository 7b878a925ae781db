"""The Weekly Trends page written the way an analyst would in pandas, for comparison.

Same stored input as Lookout's snapshot loader: the snapshot's raw event parts
(``events/part-*.parquet``) and its case file (``cases.parquet``). Not the
pre-aggregated exposure cube: exposures and active accounts are computed here from
raw events. Plain pandas throughout (``read_parquet`` with a time filter, boolean
masks, ``groupby``, ``unstack``, ``rolling``), with scipy for the tests, vectorised
the way a careful analyst would write them. The definitions are those documented in
:mod:`analytics.metrics.trends`; the benchmark checks that the key numbers come out equal.

Nothing from :mod:`analytics` is imported, so that a fresh process pays only for
pandas, numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["PandasPage", "read_inputs", "weekly_page"]

ALPHA = 0.05
EXPOSURE_KINDS = ["booking_created", "review_posted", "message_sent"]
VIOLATIONS = [
    "warning",
    "content_removed",
    "account_suspended",
    "account_banned",
    "referred_externally",
]
AUTOMATED = ["automated_rule", "ml_model"]
SLA_HOURS = {"critical": 2.0, "high": 12.0, "medium": 48.0, "low": 120.0}
EXPOSURE_OF = {
    "fake_review": "review_posted",
    "review_extortion": "review_posted",
    "fraudulent_booking": "booking_created",
    "no_show_abuse": "booking_created",
    "payment_fraud": "booking_created",
    "harassment": "message_sent",
    "hate_speech": "message_sent",
    "spam": "message_sent",
    "off_platform_solicitation": "message_sent",
    "health_info_exposure": "message_sent",
    "impersonation": "active_accounts",
    "credential_misrepresentation": "active_accounts",
    "account_takeover": "active_accounts",
    "other": "active_accounts",
}
CASE_DIMS = ["category", "region", "platform", "severity", "source", "specialty"]
EVENT_DIMS = ["region", "platform", "specialty"]
AGE_BINS = [-np.inf, 1, 3, 7, 30, np.inf]
AGE_LABELS = ["< 1 day", "1–3 days", "3–7 days", "7–30 days", "> 30 days"]
WEEK = pd.Timedelta(days=7)


@dataclass
class PandasPage:
    """Every number of the page, as pandas frames."""

    weekly: pd.DataFrame
    exposure: pd.DataFrame
    kpis: pd.DataFrame
    daily: pd.DataFrame
    categories: pd.DataFrame
    sla: pd.DataFrame
    backlog: pd.DataFrame
    prevalence: pd.DataFrame
    movers: pd.DataFrame


def read_inputs(
    snapshot: Path, *, start: date, end: date, filters: dict[str, list[str]]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Read the cases and the events since the window's start, then apply the filters.

    The time filter goes into the Parquet read; the dimension filters are applied
    after ``as_of`` (the newest record: last event or case opened) is known.
    Returns ``(cases, events, as_of)``: the events of the window, and the cases opened
    in it or still open at its start (the backlog).
    """
    lo, hi = _window(start, end)
    cases = pd.read_parquet(snapshot / "cases.parquet")
    events = pd.read_parquet(
        snapshot / "events",
        columns=["ts", "account_id", "kind", "region", "platform", "specialty"],
        filters=[("ts", ">=", lo)],
    )
    as_of = max(events["ts"].max(), cases["opened_at"].max())
    events = events[events["ts"] < hi]
    still_open = cases["resolved_at"].isna() | (cases["resolved_at"] >= lo)
    cases = cases[(cases["opened_at"] < hi) & ((cases["opened_at"] >= lo) | still_open)]
    for dim, values in filters.items():
        cases = cases[cases[dim].isin(values)]
        if dim in EVENT_DIMS:
            events = events[events[dim].isin(values)]
    return cases, events, as_of


def weekly_page(
    cases: pd.DataFrame,
    events: pd.DataFrame,
    *,
    start: date,
    end: date,
    week: date,
    as_of: pd.Timestamp,
) -> PandasPage:
    """Compute the page: weekly KPIs and tests, series, backlog, prevalence and movers."""
    lo, hi = _window(start, end)
    this = pd.Timestamp(week)
    weeks = pd.date_range(lo, min(hi - pd.Timedelta(days=1), as_of.normalize()), freq="W-MON")
    raw = cases
    cases = _flags(cases, as_of)
    in_window = cases[cases["week"].isin(weeks)]
    events = events.assign(week=_monday(events["ts"]))

    active = events.groupby("week")["account_id"].nunique().reindex(weeks, fill_value=0)
    exposure = (
        events[events["kind"].isin(EXPOSURE_KINDS)]
        .groupby(["week", "kind"], observed=True)
        .size()
        .unstack("kind")
        .reindex(index=weeks, columns=EXPOSURE_KINDS, fill_value=0)
        .fillna(0)
        .astype("int64")
    )
    weekly = _weekly(in_window, "week").reindex(weeks)
    weekly[_COUNTS] = weekly[_COUNTS].fillna(0).astype("int64")
    weekly["exposure"] = active
    weekly = _rates(weekly)

    backlog = _backlog(cases, weeks, as_of)
    weekly["backlog"] = backlog.sum(axis=1).reindex(weeks + pd.Timedelta(days=6)).to_numpy()
    # Earlier weeks as they stood the same time after their own end (as Lookout does).
    aged = [(weekly, cases)]
    for k in range(1, 5):
        at = as_of - k * WEEK
        old = _flags(_as_known(raw, at), at)
        old_weekly = _weekly(old[old["week"].isin(weeks)], "week").reindex(weeks)
        old_weekly[_COUNTS] = old_weekly[_COUNTS].fillna(0).astype("int64")
        old_weekly["exposure"] = active
        old_weekly = _rates(old_weekly)
        old_backlog = _backlog(old, weeks, at)
        old_weekly["backlog"] = (
            old_backlog.sum(axis=1).reindex(weeks + pd.Timedelta(days=6)).to_numpy()
        )
        aged.append((old_weekly, old))
    return PandasPage(
        weekly=weekly,
        exposure=exposure,
        kpis=_kpis(aged, this),
        daily=_daily(cases, weeks, as_of),
        categories=_by(in_window, "category", weeks, active, exposure),
        sla=_by(in_window, "severity", weeks, active, exposure)[["sla_breach_rate"]],
        backlog=backlog,
        prevalence=_prevalence(in_window, this, active, exposure),
        movers=_movers(cases, this),
    )


# --------------------------------------------------------------------------- helpers


def _window(start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo = pd.Timestamp(start - timedelta(days=start.weekday()))
    hi = pd.Timestamp(end - timedelta(days=end.weekday()) + timedelta(days=7))
    return lo, hi


def _monday(ts: pd.Series) -> pd.Series:
    return ts.dt.to_period("W").dt.start_time


def _flags(cases: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    c = cases.copy()
    c["week"] = _monday(c["opened_at"])
    c["day"] = c["opened_at"].dt.normalize()
    c["automated"] = c["source"].isin(AUTOMATED)
    c["resolved"] = c["resolved_at"].notna()
    c["violation"] = c["resolution"].isin(VIOLATIONS)
    c["responded"] = c["first_response_at"].notna()
    c["ttfr_h"] = (c["first_response_at"] - c["opened_at"]).dt.total_seconds() / 3600
    c["ttr_h"] = (c["resolved_at"] - c["opened_at"]).dt.total_seconds() / 3600
    waited = (as_of - c["opened_at"]).dt.total_seconds() / 3600
    sla = c["severity"].map(SLA_HOURS).astype(float)
    c["due"] = c["responded"] | (waited > sla)
    c["breached"] = np.where(c["responded"], c["ttfr_h"] > sla, waited > sla)
    c["appealed"] = c["appealed_at"].notna()
    c["appeal_decided"] = c["appeal_outcome"].isin(["upheld", "overturned"])
    c["overturned"] = c["appeal_outcome"] == "overturned"
    c["proactive"] = c["violation"] & c["automated"]
    c["automated_resolved"] = c["resolved"] & c["automated"]
    c["repeat"] = c["repeat_offender"]
    return c


_COUNTS = [
    "cases",
    "resolved",
    "violations",
    "proactive",
    "automated_resolved",
    "responded",
    "due",
    "breached",
    "appealed",
    "appeal_decided",
    "overturned",
    "repeat",
]


def _weekly(cases: pd.DataFrame, *keys: str) -> pd.DataFrame:
    g = cases.groupby(list(keys), observed=True)
    out = g.agg(
        cases=("id", "size"),
        resolved=("resolved", "sum"),
        violations=("violation", "sum"),
        proactive=("proactive", "sum"),
        automated_resolved=("automated_resolved", "sum"),
        responded=("responded", "sum"),
        due=("due", "sum"),
        breached=("breached", "sum"),
        appealed=("appealed", "sum"),
        appeal_decided=("appeal_decided", "sum"),
        overturned=("overturned", "sum"),
        repeat=("repeat", "sum"),
        ttfr_median_h=("ttfr_h", "median"),
        ttr_median_h=("ttr_h", "median"),
    )
    out["ttfr_p90_h"] = g["ttfr_h"].quantile(0.9)
    out["ttr_p90_h"] = g["ttr_h"].quantile(0.9)
    out["new_cases"] = out["cases"]
    return out


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den).where(den > 0)


def _rates(w: pd.DataFrame) -> pd.DataFrame:
    w["prevalence"] = _ratio(w["cases"], w["exposure"]) * 1000
    w["proactive_rate"] = _ratio(w["proactive"], w["violations"])
    w["action_rate"] = _ratio(w["violations"], w["resolved"])
    w["precision"] = _ratio(w["proactive"], w["automated_resolved"])
    w["sla_breach_rate"] = _ratio(w["breached"], w["due"])
    w["appeal_rate"] = _ratio(w["appealed"], w["violations"])
    w["overturn_rate"] = _ratio(w["overturned"], w["appeal_decided"])
    w["repeat_rate"] = _ratio(w["repeat"], w["cases"])
    w["resolved_share"] = _ratio(w["resolved"], w["cases"])
    w["responded_share"] = _ratio(w["responded"], w["cases"])
    return w


def _backlog(cases: pd.DataFrame, weeks: pd.DatetimeIndex, as_of: pd.Timestamp) -> pd.DataFrame:
    """Open cases at each week's end (Sunday label), by age bucket."""
    rows = {}
    for monday in weeks:
        end = monday + WEEK
        if end > as_of + WEEK:
            continue
        is_open = (cases["opened_at"] < end) & (
            cases["resolved_at"].isna() | (cases["resolved_at"] >= end)
        )
        age = (min(end, as_of) - cases.loc[is_open, "opened_at"]).dt.total_seconds() / 86400
        buckets = pd.cut(age, AGE_BINS, labels=AGE_LABELS, right=False)
        rows[end - pd.Timedelta(days=1)] = buckets.value_counts().reindex(AGE_LABELS)
    return pd.DataFrame(rows).T.fillna(0).astype("int64")


def _daily(cases: pd.DataFrame, weeks: pd.DatetimeIndex, as_of: pd.Timestamp) -> pd.DataFrame:
    last = min(weeks.max() + pd.Timedelta(days=6), as_of.normalize())
    days = pd.date_range(weeks.min(), last, freq="D")
    daily = cases.groupby("day").size().reindex(days, fill_value=0).astype(float).to_frame("value")
    daily["avg7"] = daily["value"].rolling(7).mean()
    return daily


def _by(
    cases: pd.DataFrame,
    dim: str,
    weeks: pd.DatetimeIndex,
    active: pd.Series,
    exposure: pd.DataFrame,
) -> pd.DataFrame:
    """Weekly metrics per value of ``dim`` (category: with its own exposure)."""
    w = _weekly(cases, "week", dim)
    values = w.index.get_level_values(dim).unique()
    w = w.reindex(pd.MultiIndex.from_product([weeks, values], names=["week", dim]))
    w[_COUNTS] = w[_COUNTS].fillna(0).astype("int64")
    if dim == "category":
        kinds = exposure.assign(active_accounts=active)
        w["exposure"] = [kinds.at[week, EXPOSURE_OF[value]] for week, value in w.index.to_list()]
    else:
        w["exposure"] = 0
    return _rates(w)


def _prevalence(
    cases: pd.DataFrame, this: pd.Timestamp, active: pd.Series, exposure: pd.DataFrame
) -> pd.DataFrame:
    """Cases per 1,000 of each category's exposure, this week against the week before."""
    kinds = exposure.assign(active_accounts=active)
    counts = (
        cases[cases["week"].isin([this, this - WEEK])]
        .groupby(["category", "week"], observed=True)
        .size()
        .unstack("week")
        .reindex(columns=[this, this - WEEK], fill_value=0)
        .fillna(0)
    )
    out = pd.DataFrame(index=counts.index)
    out["cases"] = counts[this]
    out["prev_cases"] = counts[this - WEEK]
    out["exposure"] = [kinds.at[this, EXPOSURE_OF[c]] for c in out.index]
    out["prev_exposure"] = [kinds.at[this - WEEK, EXPOSURE_OF[c]] for c in out.index]
    out["per_1000"] = _ratio(out["cases"], out["exposure"]) * 1000
    out["prev_per_1000"] = _ratio(out["prev_cases"], out["prev_exposure"]) * 1000
    out["p_value"] = _poisson(
        out["cases"], out["exposure"], out["prev_cases"], out["prev_exposure"]
    )
    out["significant"] = out["p_value"] < ALPHA
    return out.sort_values("per_1000", ascending=False)


# --------------------------------------------------------------------------- tests


def _poisson(x1: Any, t1: Any, x0: Any, t0: Any) -> np.ndarray:
    """Exact conditional test of two Poisson rates (binomial, doubled smaller tail)."""
    x1, t1, x0, t0 = (np.asarray(a, dtype=float) for a in (x1, t1, x0, t0))
    n = x1 + x0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = t1 / (t1 + t0)
    ok = (n > 0) & (t1 > 0) & (t0 > 0) & np.isfinite(p)
    p = np.where(ok, p, 0.5)
    tails = np.minimum(stats.binom.cdf(x1, n, p), stats.binom.sf(x1 - 1, n, p))
    return np.where(ok, np.minimum(1.0, 2 * tails), 1.0)


def _fisher(a1: float, n1: float, a0: float, n0: float) -> float:
    """Fisher's exact test of two proportions (doubled smaller tail)."""
    if n1 <= 0 or n0 <= 0:
        return 1.0
    total, hits = n1 + n0, a1 + a0
    tails = min(
        stats.hypergeom.cdf(a1, total, hits, n1), stats.hypergeom.sf(a1 - 1, total, hits, n1)
    )
    return float(min(1.0, 2 * tails))


def _mann_whitney(x: pd.Series, y: pd.Series) -> float:
    x, y = x.dropna(), y.dropna()
    if x.empty or y.empty:
        return 1.0
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


_KPIS = [  # key, test, numerator, denominator
    ("new_cases", "count", "", ""),
    ("prevalence", "rate", "cases", "exposure"),
    ("proactive_rate", "proportion", "proactive", "violations"),
    ("action_rate", "proportion", "violations", "resolved"),
    ("precision", "proportion", "proactive", "automated_resolved"),
    ("ttfr_median_h", "duration", "", ""),
    ("ttr_median_h", "duration", "", ""),
    ("sla_breach_rate", "proportion", "breached", "due"),
    ("backlog", "count", "", ""),
    ("overturn_rate", "proportion", "overturned", "appeal_decided"),
    ("repeat_rate", "proportion", "repeat", "cases"),
]


def _as_known(cases: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """The raw cases as the database held them at ``at`` (later outcomes unknown)."""
    c = cases.copy()
    late = ~(c["resolved_at"] <= at)
    c.loc[late, "resolved_at"] = pd.NaT
    c.loc[late, "resolution"] = None
    c.loc[~(c["first_response_at"] <= at), "first_response_at"] = pd.NaT
    appeal_late = ~(c["appealed_at"] <= at)
    c.loc[appeal_late, "appealed_at"] = pd.NaT
    c.loc[appeal_late, "appeal_outcome"] = None
    return c


def _kpis(aged: list[tuple[pd.DataFrame, pd.DataFrame]], this: pd.Timestamp) -> pd.DataFrame:
    """Value, previous week, 4-week baseline and p-values of each headline metric.

    ``aged[k]`` is (weekly, flagged cases) as seen ``k`` weeks before the newest record;
    week ``this - k`` is taken from it.
    """
    picked = [w.loc[[this - k * WEEK]] for k, (w, _) in enumerate(aged)]
    now, prev = picked[0], picked[1]
    base = pd.concat(picked[1:])
    cases = pd.concat(
        [c[c["week"] == this - k * WEEK] for k, (_, c) in enumerate(aged)], ignore_index=True
    )
    rows = []
    for key, test, num, den in _KPIS:
        if test == "count":
            x1, x0, xb = now[key].sum(), prev[key].sum(), base[key].sum()
            p_prev = _poisson([x1], [1], [x0], [1])[0]
            p_base = _poisson([x1], [1], [xb], [len(base)])[0]
        elif test == "rate":
            p_prev = _poisson(now[num], now[den], prev[num], prev[den])[0]
            p_base = _poisson(now[num], now[den], [base[num].sum()], [base[den].sum()])[0]
        elif test == "proportion":
            p_prev = _fisher(now[num].sum(), now[den].sum(), prev[num].sum(), prev[den].sum())
            p_base = _fisher(now[num].sum(), now[den].sum(), base[num].sum(), base[den].sum())
        else:
            column = key.split("_")[0] + "_h"
            sample = cases.loc[cases["week"] == this, column]
            p_prev = _mann_whitney(sample, cases.loc[cases["week"] == this - WEEK, column])
            pooled = cases.loc[(cases["week"] < this) & (cases["week"] >= this - 4 * WEEK)]
            p_base = _mann_whitney(sample, pooled[column])
        rows.append(
            {
                "key": key,
                "value": now[key].iloc[0],
                "previous": prev[key].iloc[0],
                "baseline": base[key].mean(),
                "p_previous": p_prev,
                "p_baseline": p_base,
            }
        )
    out = pd.DataFrame(rows).set_index("key")
    out["delta"] = out["value"] - out["previous"]
    out["significant"] = out["p_previous"] < ALPHA
    return out


def _movers(cases: pd.DataFrame, this: pd.Timestamp) -> pd.DataFrame:
    """Every one- and two-dimension slice: this week against the previous, FDR-controlled."""
    two = cases[cases["week"].isin([this, this - WEEK])]
    now = two["week"] == this
    total_change = now.sum() - (~now).sum()
    pieces = []
    for depth in (1, 2):
        for combo in combinations(CASE_DIMS, depth):
            counts = (
                two.assign(now=now)
                .groupby([*combo, "now"], observed=True)
                .size()
                .unstack("now", fill_value=0)
                .reindex(columns=[True, False], fill_value=0)
            )
            counts.columns = ["current", "expected"]
            keys = counts.index.to_frame(index=False).astype(str)
            label = combo[0] + "=" + keys[combo[0]]
            for dim in combo[1:]:
                label = label + " · " + dim + "=" + keys[dim]
            pieces.append(counts.reset_index(drop=True).assign(slice=label, depth=depth))
    movers = pd.concat(pieces, ignore_index=True)
    movers["p_value"] = _poisson(movers["current"], 1, movers["expected"], 1)
    movers["q_value"] = stats.false_discovery_control(movers["p_value"], method="bh")
    movers["abs_change"] = movers["current"] - movers["expected"]
    movers["share_of_change"] = movers["abs_change"] / total_change if total_change else np.nan
    movers["significant"] = movers["q_value"] < ALPHA
    movers["size"] = movers["abs_change"].abs()
    return movers.sort_values(
        ["significant", "size", "depth", "slice"], ascending=[False, False, True, True]
    )
