"""The demo's cases and their handling timelines.

Base intake by day, category and source (weekday and holiday effects, the policy
change), the scenarios' cases, subjects and reporters, handling times, outcomes and
appeals, the ingestion outage, and the actions that follow from the timestamps.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analytics.core.models import US_STATES, ActionKind, AppealOutcome, CaseStatus
from analytics.demo.calendar import DAY, Calendar
from analytics.demo.narratives import describe
from analytics.demo.sampling import Pool, choice_rows, code_labels, draw, time_of_day, timestamp
from analytics.demo.scenarios import Scenarios
from analytics.demo.tuning import (
    ACTIONS,
    AUTOMATED,
    CASE_MIX,
    CATEGORY_REGION_TILT,
    CATS,
    FIRST_RESPONSE_H,
    INTERNAL,
    MODEL,
    NO_VIOLATION,
    PLATFORMS,
    POP,
    PROVIDER,
    PROVIDER_SUBJECT,
    REPORT_DELAY_DAYS,
    RESOLUTIONS,
    RESOLVE_D,
    RULE,
    SEVS,
    SOURCE_WEEK,
    SOURCES,
    USER,
    Scale,
)

__all__ = ["case_actions", "draw_cases"]


def _base_cases(
    rng: np.random.Generator, sc: Scale, cal: Calendar, scen: Scenarios
) -> dict[str, np.ndarray]:
    share = np.array([CASE_MIX[c][0] for c in CATS])
    share /= share.sum()
    srcmix = np.array([CASE_MIX[c][1] for c in CATS])
    srcmix /= srcmix.sum(axis=1, keepdims=True)
    week = np.array([SOURCE_WEEK[s] for s in SOURCES])
    week /= week.mean(axis=1, keepdims=True)
    human = np.array(
        [s in ("user_report", "provider_report", "internal_escalation") for s in SOURCES]
    )
    per_day = sc.cases / 730.0
    day_f = cal.growth[:, None] * week.T[cal.dow]  # (D, S)
    day_f = np.where(cal.holiday[:, None] & human[None, :], day_f * 0.7, day_f)
    lam = per_day * day_f[:, None, :] * (share[:, None] * srcmix)[None, :, :]  # (D, C, S)
    harass = CATS.index("harassment")
    lam[scen.policy :, harass, :] *= scen.policy_factor
    day, cat, src = draw(rng, lam)
    delay = np.array([REPORT_DELAY_DAYS[s] for s in SOURCES])[src]
    opened = day * DAY + time_of_day(rng, len(day)) + rng.exponential(delay) * DAY
    return {"opened_s": opened, "cat": cat, "src": src}


def _assign_slices(
    rng: np.random.Generator, c: dict[str, np.ndarray], seed_tilt: np.random.Generator
) -> None:
    tilt = seed_tilt.lognormal(0, CATEGORY_REGION_TILT, (len(CATS), len(US_STATES)))
    region_p = POP[None, :] * tilt
    sev_p = np.array([CASE_MIX[k][2] for k in CATS])
    plat_p = np.array([CASE_MIX[k][3] for k in CATS])
    c["region"] = choice_rows(rng, region_p, c["cat"])
    c["sev"] = choice_rows(rng, sev_p, c["cat"])
    c["platform"] = choice_rows(rng, plat_p, c["cat"])


def _scenario_cases(
    rng: np.random.Generator,
    sc: Scale,
    scen: Scenarios,
    acc: pl.DataFrame,
    prov: Pool,
    pat: Pool,
) -> dict[str, np.ndarray]:
    fl = US_STATES.index("FL")
    parts: list[dict[str, np.ndarray]] = []
    # 1. Reports about the fake-review ring, a few days after its burst begins.
    n = max(3, round(sc.ring * 0.8))
    src = rng.choice(
        [
            PROVIDER,
            MODEL,
            USER,
        ],
        n,
        p=[0.4, 0.35, 0.25],
    )
    opened = (scen.ring + rng.uniform(4, 20, n)) * DAY
    reporter = np.where(
        src == PROVIDER,
        rng.choice(scen.ring_targets, n),
        np.where(src == USER, pat.pick(rng, opened / DAY, np.full(n, fl)), -1),
    )
    parts.append(
        {
            "opened_s": opened,
            "cat": np.full(n, CATS.index("fake_review")),
            "src": src,
            "region": np.full(n, fl),
            "sev": rng.choice([1, 2], n, p=[0.6, 0.4]),
            "platform": np.full(n, 2),
            "subject": rng.choice(scen.ring_ids, n),
            "reporter": reporter,
            "tag": np.full(n, 1),
        }
    )
    # 2. Account takeovers and the payment fraud that follows them.
    v = scen.ato_victims
    reg = acc["region_i"].to_numpy()[v - 1]
    k = rng.random(len(v)) < 0.7
    n = int(k.sum())
    src = np.where(rng.random(n) < 0.6, USER, RULE)
    parts.append(
        {
            "opened_s": (scen.ato + 1.5 + rng.exponential(2.0, n)) * DAY,
            "cat": np.full(n, CATS.index("account_takeover")),
            "src": src,
            "region": reg[k],
            "sev": rng.choice([2, 3], n, p=[0.6, 0.4]),
            "platform": rng.choice(3, n),
            "subject": v[k],
            "reporter": np.where(src == USER, v[k], -1),
            "tag": np.full(n, 2),
        }
    )
    k = rng.random(len(v)) < 0.4
    n = int(k.sum())
    src = np.where(rng.random(n) < 0.5, MODEL, USER)
    parts.append(
        {
            "opened_s": (scen.ato + rng.uniform(3, 12, n)) * DAY,
            "cat": np.full(n, CATS.index("payment_fraud")),
            "src": src,
            "region": reg[k],
            "sev": rng.choice([2, 3], n, p=[0.7, 0.3]),
            "platform": np.zeros(n, int),
            "subject": v[k],
            "reporter": np.where(src == USER, v[k], -1),
            "tag": np.full(n, 2),
        }
    )
    # 3. The new insurance-verification call scam: filed under "other", growing for 3 weeks.
    span = np.arange(scen.scam, scen.scam + 30)
    lam = sc.scam_peak * np.minimum((span - scen.scam + 1) / 21.0, 1.0)
    cnt = rng.poisson(lam)
    day = np.repeat(span, cnt)
    n = len(day)
    opened = day * DAY + time_of_day(rng, n)
    region = rng.choice(len(US_STATES), n, p=POP)
    src = rng.choice([USER, PROVIDER, INTERNAL], n, p=[0.85, 0.1, 0.05])
    parts.append(
        {
            "opened_s": opened,
            "cat": np.full(n, CATS.index("other")),
            "src": src,
            "region": region,
            "sev": rng.choice([1, 2], n, p=[0.5, 0.5]),
            "platform": rng.choice(3, n, p=[0.3, 0.4, 0.3]),
            "subject": prov.pick(rng, day.astype(float), region),
            "reporter": np.where(src == USER, pat.pick(rng, day.astype(float), region), -1),
            "tag": np.full(n, 3),
        }
    )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _pick_subjects(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    acc: pl.DataFrame,
    pat: Pool,
    prov: Pool,
) -> None:
    n = len(c["cat"])
    day = c["opened_s"] / DAY
    p_prov = np.array([PROVIDER_SUBJECT.get(k, 0.0) for k in CATS])[c["cat"]]
    is_prov = rng.random(n) < p_prov
    subject = np.where(is_prov, prov.pick(rng, day, c["region"]), pat.pick(rng, day, c["region"]))
    # Repeat offenders: a small pool of early accounts behind a fifth of the cases.
    early = acc.filter((pl.col("kind") == "patient") & (pl.col("created_day") < 0))["id"]
    offenders = np.sort(rng.choice(early.to_numpy(), max(5, len(early) // 60), replace=False))
    repeat = (rng.random(n) < 0.2) & ~is_prov
    subject = np.where(repeat, rng.choice(offenders, n), subject)
    regions = acc["region_i"].to_numpy()
    c["region"] = regions[subject - 1]
    c["subject"] = subject
    # Reporters: users and providers; a handful of noisy reporters file many reports.
    noisy = np.sort(rng.choice(early.to_numpy(), 20, replace=False))
    user = c["src"] == USER
    provr = c["src"] == PROVIDER
    rep_user = np.where(rng.random(n) < 0.08, rng.choice(noisy, n), pat.pick(rng, day, c["region"]))
    rep_prov = prov.pick(rng, day, c["region"])
    c["reporter"] = np.where(user, rep_user, np.where(provr, rep_prov, -1))
    c["tag"] = np.zeros(n, int)


def _handling(rng: np.random.Generator, c: dict[str, np.ndarray], now_s: float) -> None:
    """First response, resolution, outcome and appeal of every case (vectorised)."""
    n = len(c["cat"])
    sev = c["sev"]
    fr_med = np.array([FIRST_RESPONSE_H[s] for s in SEVS])[sev] * 3600
    first = c["opened_s"] + fr_med * rng.lognormal(0, 1.0, n)
    res_med = np.array([RESOLVE_D[s] for s in SEVS])[sev] * DAY
    resolved = first + res_med * rng.lognormal(0, 1.2, n)
    p_nv = np.array([NO_VIOLATION[s] for s in SOURCES])[c["src"]]
    violation = rng.random(n) >= p_nv
    action = choice_rows(rng, np.array([ACTIONS[s] for s in SEVS]), sev) + 1
    resolution = np.where(violation, action, 0)  # index into RESOLUTIONS
    appealable = np.isin(resolution, [2, 3, 4])
    appealed = appealable & (rng.random(n) < 0.12)
    appeal_at = resolved + rng.exponential(3.0, n) * DAY
    decided_at = appeal_at + rng.exponential(5.0, n) * DAY
    automated = np.isin(c["src"], AUTOMATED)
    overturned = rng.random(n) < np.where(automated, 0.32, 0.2)
    c["first_s"] = np.where(first < now_s, first, np.nan)
    c["resolved_s"] = np.where(resolved < now_s, resolved, np.nan)
    c["resolution"] = np.where(resolved < now_s, resolution, -1)
    appealed &= appeal_at < now_s
    c["appeal_s"] = np.where(appealed, appeal_at, np.nan)
    c["decided_s"] = np.where(appealed & (decided_at < now_s), decided_at, np.nan)
    c["appeal"] = np.where(
        ~appealed, -1, np.where(decided_at >= now_s, 0, np.where(overturned, 2, 1))
    )
    c["assignee"] = np.where(first < now_s, rng.integers(0, 30, n), -1)


def draw_cases(
    rng: np.random.Generator,
    sc: Scale,
    cal: Calendar,
    scen: Scenarios,
    acc: pl.DataFrame,
    tilt_rng: np.random.Generator,
) -> pl.DataFrame:
    """Every case: base intake and the scenarios' cases, less the ingestion outage, in
    order of opening, with handling, description and labels. Keeps the working columns
    (``opened_s``, ``tag``, ...) that the events and the manifest read."""
    is_pat = (acc["kind"] == "patient").to_numpy()
    ring = acc["is_ring"].to_numpy()
    ids, reg, cre = acc["id"].to_numpy(), acc["region_i"].to_numpy(), acc["created_day"].to_numpy()
    pat = Pool(ids[is_pat & ~ring], reg[is_pat & ~ring], cre[is_pat & ~ring])
    prov = Pool(ids[~is_pat], reg[~is_pat], cre[~is_pat])
    base = _base_cases(rng, sc, cal, scen)
    _assign_slices(rng, base, tilt_rng)
    _pick_subjects(rng, base, acc, pat, prov)
    extra = _scenario_cases(rng, sc, scen, acc, prov, pat)
    c = {k: np.concatenate([base[k], extra[k]]) for k in extra}
    keep = c["opened_s"] < cal.end_s
    # 5. The ingestion outage: a day of automated-rule cases never arrived.
    day = np.floor(c["opened_s"] / DAY)
    keep &= ~((day == scen.outage) & (c["src"] == RULE))
    c = {k: v[keep] for k, v in c.items()}
    order = np.lexsort((c["subject"], c["opened_s"]))
    c = {k: v[order] for k, v in c.items()}
    _handling(rng, c, cal.end_s)
    n = len(order)
    frame = pl.DataFrame(c).with_columns(id=pl.arange(1, n + 1, dtype=pl.Int64))
    prov_names = acc.filter(pl.col("kind") != "patient")["display_name"].to_numpy()
    subj_name = acc["display_name"].to_numpy()[c["subject"] - 1]
    subj_is_prov = ~is_pat[c["subject"] - 1]
    names = pl.DataFrame(
        {
            "provider": np.where(
                subj_is_prov, subj_name, prov_names[rng.integers(0, len(prov_names), n)]
            ),
            "person": acc["display_name"].to_numpy()[rng.integers(0, acc.height, n)],
            "email": acc["email"].to_numpy()[rng.integers(0, acc.height, n)],
        }
    )
    frame = frame.with_columns(description=describe(rng, frame, names))
    first = pl.col("first_s").is_not_nan()
    res = pl.col("resolved_s").is_not_nan()
    return frame.with_columns(
        timestamp(cal.start, "opened_s"),
        pl.when(first).then(timestamp(cal.start, "first_s")).alias("first_response_at"),
        pl.when(res).then(timestamp(cal.start, "resolved_s")).alias("resolved_at"),
        pl.when(pl.col("appeal_s").is_not_nan())
        .then(timestamp(cal.start, "appeal_s"))
        .alias("appealed_at"),
        pl.when(pl.col("decided_s").is_not_nan())
        .then(timestamp(cal.start, "decided_s"))
        .alias("decided_at"),
        source=code_labels("src", SOURCES),
        category=code_labels("cat", CATS),
        severity=code_labels("sev", SEVS),
        status=pl.when(res)
        .then(pl.lit(CaseStatus.resolved.value))
        .when(first)
        .then(pl.lit(CaseStatus.in_review.value))
        .otherwise(pl.lit(CaseStatus.open.value)),
        region=code_labels("region", US_STATES),
        platform=code_labels("platform", PLATFORMS),
        subject_account_id=pl.col("subject").cast(pl.Int64),
        reporter_account_id=pl.when(pl.col("reporter") > 0).then(pl.col("reporter")).cast(pl.Int64),
        assignee=pl.when(pl.col("assignee") >= 0).then(
            pl.format("associate-{}", pl.col("assignee").cast(pl.String).str.zfill(2))
        ),
        resolution=pl.when(pl.col("resolution") >= 0).then(code_labels("resolution", RESOLUTIONS)),
        appeal_outcome=pl.when(pl.col("appeal") >= 0).then(
            code_labels("appeal", [a.value for a in AppealOutcome])
        ),
    )


def case_actions(cases: pl.DataFrame) -> pl.DataFrame:
    """The handling timeline of every case, derived from its timestamps."""
    base = cases.select(
        "id",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "appealed_at",
        "decided_at",
        "assignee",
        "resolution",
        "appeal_outcome",
        "severity",
    )
    who = pl.col("assignee")
    parts = [
        base.filter(pl.col("first_response_at").is_not_null()).select(
            case_id="id",
            ts=pl.col("opened_at") + (pl.col("first_response_at") - pl.col("opened_at")) / 3,
            actor=who,
            action=pl.lit(ActionKind.assigned.value),
            detail=pl.lit(None, pl.String),
        ),
        base.filter(pl.col("first_response_at").is_not_null()).select(
            case_id="id",
            ts="first_response_at",
            actor=who,
            action=pl.lit(ActionKind.first_response.value),
            detail=pl.lit(None, pl.String),
        ),
        base.filter(
            pl.col("first_response_at").is_not_null()
            & pl.col("severity").is_in(["high", "critical"])
            & (pl.col("id").hash(7) % 100 < 6)
        ).select(
            case_id="id",
            ts=pl.col("first_response_at") + pl.duration(hours=1),
            actor=who,
            action=pl.lit(ActionKind.escalated.value),
            detail=pl.lit("escalated to senior review"),
        ),
        base.filter(pl.col("resolved_at").is_not_null()).select(
            case_id="id",
            ts="resolved_at",
            actor=who,
            action=pl.lit(ActionKind.resolved.value),
            detail="resolution",
        ),
        base.filter(pl.col("appealed_at").is_not_null()).select(
            case_id="id",
            ts="appealed_at",
            actor=pl.lit("appeals"),
            action=pl.lit(ActionKind.appeal_opened.value),
            detail=pl.lit(None, pl.String),
        ),
        base.filter(pl.col("decided_at").is_not_null()).select(
            case_id="id",
            ts="decided_at",
            actor=pl.lit("appeals"),
            action=pl.lit(ActionKind.appeal_decided.value),
            detail="appeal_outcome",
        ),
    ]
    out = pl.concat(parts).with_columns(
        pl.col("ts").dt.cast_time_unit("us"), pl.col("actor").fill_null("triage")
    )
    out = out.sort("ts", "case_id", "action")
    return out.with_columns(id=pl.arange(1, out.height + 1, dtype=pl.Int64)).select(
        "id", "case_id", "ts", "actor", "action", "detail"
    )
