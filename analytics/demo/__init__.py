"""Realistic demo data with ground truth, generated vectorised.

The demo is a two-year (by default) history of a healthcare marketplace:
patients, providers and practices across US states, their events (the exposure)
and the Trust & Safety cases raised about them. It has growth, weekly
seasonality, US holidays, Poisson noise, reporting delays, category mixes that
differ by region and platform, long-tailed handling times, SLA breaches and
appeals, and five injected scenarios recorded in a ground-truth manifest.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``, in a
fixed order, so the same seed and end date give the same data.

The window is the ``days`` whole days that end at midnight (UTC) at the start
of ``end``: with ``end=2026-11-24`` the newest event is on 2026-11-23.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import holidays as holidays_lib
import numpy as np
import polars as pl
import pyarrow as pa
from faker import Faker
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex

from analytics.core import db
from analytics.core.db import (
    SPECIALTIES,
    US_STATES,
    AccountKind,
    ActionKind,
    AnnotationKind,
    AppealOutcome,
    CaseSource,
    CaseStatus,
    Category,
    EventKind,
    Platform,
    Resolution,
    Severity,
)
from analytics.demo import narratives as nv

__all__ = [
    "SCALES",
    "Scale",
    "DemoData",
    "generate",
    "scenario_dates",
    "seed_database",
    "database_state",
    "SeedRefused",
]

DAY = 86_400
MIN_DAYS = 240


@dataclass(frozen=True)
class Scale:
    """Sizes of one demo scale (totals over the default 730 days)."""

    accounts: int
    events: int
    cases: int
    ring: int
    ato_attempts: int
    ato_victims: int
    scam_peak: float
    chunk_days: int


SCALES: dict[str, Scale] = {
    "small": Scale(5_000, 50_000, 6_000, 12, 600, 20, 4.0, 730),
    "medium": Scale(100_000, 2_000_000, 100_000, 40, 8_000, 240, 14.0, 183),
    "large": Scale(1_000_000, 20_000_000, 1_000_000, 150, 60_000, 1_500, 80.0, 61),
}

# Approximate state populations (millions): where accounts live.
_POP = np.array(
    [
        5.0,
        0.7,
        7.2,
        3.0,
        39.5,
        5.8,
        3.6,
        1.0,
        0.7,
        21.5,
        10.7,
        1.5,
        1.8,
        12.8,
        6.8,
        3.2,
        2.9,
        4.5,
        4.7,
        1.4,
        6.2,
        7.0,
        10.1,
        5.7,
        3.0,
        6.2,
        1.1,
        2.0,
        3.1,
        1.4,
        9.3,
        2.1,
        20.2,
        10.4,
        0.8,
        11.8,
        4.0,
        4.2,
        13.0,
        1.1,
        5.1,
        0.9,
        6.9,
        29.1,
        3.3,
        0.6,
        8.6,
        7.7,
        1.8,
        5.9,
        0.6,
    ]
)
_POP = _POP / _POP.sum()

_KINDS = [k.value for k in EventKind]
_CATS = [c.value for c in Category]
_SOURCES = [s.value for s in CaseSource]
_USER, _PROVIDER, _RULE, _MODEL, _INTERNAL = (
    _SOURCES.index(s)
    for s in ("user_report", "provider_report", "automated_rule", "ml_model", "internal_escalation")
)
_AUTOMATED = [_RULE, _MODEL]
_SEVS = [s.value for s in Severity]
_PLATFORMS = [p.value for p in Platform]
_RESOLUTIONS = [r.value for r in Resolution]

# Per event kind: share of base events, weekday profile (Mon..Sun), holiday factor,
# and who does it (patient / any / provider).
_EVENT_MIX: dict[str, tuple[float, tuple[float, ...], float, str]] = {
    "login": (0.30, (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.9), 0.85, "any"),
    "login_failed": (0.03, (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.9), 0.85, "any"),
    "booking_created": (0.15, (1.25, 1.2, 1.2, 1.15, 1.1, 0.6, 0.5), 0.45, "patient"),
    "booking_cancelled": (0.03, (1.25, 1.2, 1.2, 1.15, 1.1, 0.6, 0.5), 0.5, "patient"),
    "no_show": (0.012, (1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.5), 0.5, "patient"),
    "review_posted": (0.06, (1.0, 1.0, 1.0, 1.0, 0.95, 1.05, 1.0), 0.9, "patient"),
    "message_sent": (0.37, (1.15, 1.15, 1.1, 1.1, 1.05, 0.75, 0.7), 0.7, "any"),
    "profile_updated": (0.04, (1.2, 1.2, 1.2, 1.2, 1.1, 0.55, 0.55), 0.6, "provider"),
    "payment_failed": (0.008, (1.2, 1.2, 1.2, 1.1, 1.1, 0.7, 0.6), 0.6, "patient"),
}
_TARGETED = {"booking_created", "booking_cancelled", "no_show", "review_posted"}

# UTC hour-of-day weights (US daytime falls in the UTC afternoon and evening).
_HOURS = np.array(
    [
        6,
        5,
        4,
        3,
        2,
        1.5,
        1,
        1,
        1,
        1.2,
        1.5,
        2,
        3,
        4.5,
        6,
        7,
        7.5,
        7.5,
        7,
        7,
        7,
        7,
        6.5,
        6,
    ],
    dtype=float,
)
_HOURS = _HOURS / _HOURS.sum()

# Per category: share of cases, source mix, severity mix, platform mix.
_CASE_MIX: dict[str, tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "fake_review": (0.12, (0.25, 0.25, 0.15, 0.33, 0.02), (0.3, 0.5, 0.17, 0.03), (0.4, 0.3, 0.3)),
    "review_extortion": (0.03, (0.2, 0.65, 0.0, 0.1, 0.05), (0.1, 0.5, 0.3, 0.1), (0.5, 0.3, 0.2)),
    "harassment": (0.12, (0.7, 0.15, 0.03, 0.1, 0.02), (0.2, 0.45, 0.28, 0.07), (0.3, 0.4, 0.3)),
    "hate_speech": (0.04, (0.5, 0.1, 0.1, 0.28, 0.02), (0.1, 0.4, 0.4, 0.1), (0.35, 0.35, 0.3)),
    "spam": (0.14, (0.3, 0.1, 0.35, 0.25, 0.0), (0.65, 0.3, 0.05, 0.0), (0.3, 0.2, 0.5)),
    "fraudulent_booking": (
        0.07,
        (0.1, 0.45, 0.25, 0.17, 0.03),
        (0.2, 0.5, 0.25, 0.05),
        (0.6, 0.2, 0.2),
    ),
    "no_show_abuse": (
        0.08,
        (0.05, 0.6, 0.33, 0.02, 0.0),
        (0.6, 0.35, 0.05, 0.0),
        (0.4, 0.35, 0.25),
    ),
    "impersonation": (0.04, (0.55, 0.3, 0.0, 0.1, 0.05), (0.1, 0.4, 0.4, 0.1), (0.5, 0.3, 0.2)),
    "credential_misrepresentation": (
        0.03,
        (0.3, 0.2, 0.2, 0.0, 0.3),
        (0.05, 0.35, 0.45, 0.15),
        (0.8, 0.1, 0.1),
    ),
    "account_takeover": (
        0.05,
        (0.55, 0.0, 0.3, 0.13, 0.02),
        (0.0, 0.2, 0.55, 0.25),
        (0.5, 0.3, 0.2),
    ),
    "payment_fraud": (
        0.06,
        (0.35, 0.1, 0.25, 0.28, 0.02),
        (0.05, 0.35, 0.45, 0.15),
        (0.6, 0.2, 0.2),
    ),
    "health_info_exposure": (
        0.03,
        (0.6, 0.1, 0.05, 0.2, 0.05),
        (0.0, 0.2, 0.5, 0.3),
        (0.5, 0.3, 0.2),
    ),
    "off_platform_solicitation": (
        0.07,
        (0.45, 0.05, 0.2, 0.28, 0.02),
        (0.35, 0.5, 0.13, 0.02),
        (0.45, 0.3, 0.25),
    ),
    "other": (0.12, (0.75, 0.15, 0.02, 0.03, 0.05), (0.45, 0.45, 0.09, 0.01), (0.45, 0.3, 0.25)),
}
_PROVIDER_SUBJECT = {
    "credential_misrepresentation": 1.0,
    "off_platform_solicitation": 0.7,
    "impersonation": 0.2,
    "health_info_exposure": 0.3,
}
# Weekday profile of case intake by source: people report less at weekends.
_SOURCE_WEEK = {
    "user_report": (1.08, 1.05, 1.05, 1.03, 1.0, 0.92, 0.87),
    "provider_report": (1.25, 1.2, 1.2, 1.15, 1.1, 0.55, 0.55),
    "automated_rule": (1, 1, 1, 1, 1, 1, 1),
    "ml_model": (1, 1, 1, 1, 1, 1, 1),
    "internal_escalation": (1.3, 1.3, 1.25, 1.25, 1.2, 0.35, 0.35),
}
_REPORT_DELAY_DAYS = {
    "user_report": 0.8,
    "provider_report": 1.5,
    "automated_rule": 0.02,
    "ml_model": 0.05,
    "internal_escalation": 2.0,
}
# Time to first response (median hours) and to resolution (median days) by severity.
_FIRST_RESPONSE_H = {"low": 40.0, "medium": 16.0, "high": 4.0, "critical": 0.75}
_RESOLVE_D = {"low": 2.0, "medium": 1.5, "high": 1.2, "critical": 0.7}
_NO_VIOLATION = {
    "user_report": 0.45,
    "provider_report": 0.40,
    "automated_rule": 0.35,
    "ml_model": 0.22,
    "internal_escalation": 0.12,
}
# Action mix given a violation: warning, content_removed, suspended, banned, referred.
_ACTIONS = {
    "low": (0.45, 0.45, 0.07, 0.01, 0.02),
    "medium": (0.30, 0.45, 0.18, 0.04, 0.03),
    "high": (0.10, 0.35, 0.35, 0.15, 0.05),
    "critical": (0.05, 0.20, 0.35, 0.30, 0.10),
}
_CATEGORY_REGION_TILT = 0.35


def scenario_dates(end: date, days: int) -> dict[str, date]:
    """Start dates of the injected scenarios for a window ending at ``end``.

    >>> d = scenario_dates(date(2026, 11, 24), 730)
    >>> d["new_scam"], d["policy_change"]
    (datetime.date(2026, 10, 25), datetime.date(2026, 6, 27))
    """
    return {
        "ingestion_outage": end - timedelta(days=200),
        "policy_change": end - timedelta(days=150),
        "fake_review_ring": end - timedelta(days=75),
        "account_takeover_wave": end - timedelta(days=40),
        "new_scam": end - timedelta(days=30),
        "product_launch": end - timedelta(days=min(400, days - 30)),
    }


@dataclass
class DemoData:
    """A generated demo: small tables in memory, events as a stream of chunks."""

    accounts: pl.DataFrame
    cases: pl.DataFrame
    case_actions: pl.DataFrame
    annotations: pl.DataFrame
    manifest: dict[str, Any]
    event_chunks: Callable[[], Iterator[pl.DataFrame]]
    n_event_chunks: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Calendar:
    start: datetime
    days: int
    dow: np.ndarray
    holiday: np.ndarray
    growth: np.ndarray
    holiday_names: list[tuple[int, str]]

    @property
    def end_s(self) -> float:
        return float(self.days * DAY)


def _calendar(end: date, days: int) -> _Calendar:
    start = datetime(end.year, end.month, end.day) - timedelta(days=days)
    day_dates = [start.date() + timedelta(days=i) for i in range(days)]
    us = holidays_lib.country_holidays("US", years=range(start.year, end.year + 1))
    hol = np.array([d in us for d in day_dates])
    names = [(i, str(us.get(d))) for i, d in enumerate(day_dates) if d in us]
    dow = np.array([d.weekday() for d in day_dates])
    t = np.arange(days) / max(days - 1, 1)
    growth = 0.75 + 0.5 * t  # the marketplace grows by two thirds over the window
    return _Calendar(start, days, dow, hol, growth, names)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed, well-mixed 64-bit hash of integers (stable across library versions)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hex(x: np.ndarray) -> pl.Series:
    """Hex strings (16 characters) of unsigned 64-bit integers, vectorised."""
    buf = pa.py_buffer(np.ascontiguousarray(x.astype(">u8")).tobytes())
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), len(x), [None, buf])
    return pl.Series(arr).cast(pl.Binary).bin.encode("hex")


def _choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, draw an index from the distribution ``probs[rows[i]]`` (vectorised)."""
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(len(rows))
    out = (u[:, None] > cum[rows]).sum(axis=1)
    return np.minimum(out, probs.shape[1] - 1)


def _draw(rng: np.random.Generator, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """Poisson counts for every cell of the rate grid ``lam``, expanded to one row per draw.

    Returns the grid coordinates of each drawn row, one array per axis of ``lam``.
    """
    counts = rng.poisson(lam).ravel()
    flat = np.repeat(np.arange(counts.size), counts)
    return np.unravel_index(flat, lam.shape)


def _sample_days(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Continuous day offsets in [0, len(weights)) with density proportional to weights."""
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, np.arange(len(weights) + 1))


class _Pool:
    """Accounts of one kind, indexed by (region, created day) for vectorised picks."""

    def __init__(self, ids: np.ndarray, region: np.ndarray, created: np.ndarray) -> None:
        key = region.astype(float) * 10_000 + created + 5_000
        order = np.argsort(key, kind="stable")
        self.ids = ids[order]
        self.key = key[order]
        g = np.argsort(created, kind="stable")
        self.g_ids = ids[g]
        self.g_created = created[g]

    def pick(
        self,
        rng: np.random.Generator,
        day: np.ndarray,
        region: np.ndarray | None = None,
        skew: float = 1.5,
    ) -> np.ndarray:
        """An account created before ``day`` (in ``region`` when given); older ones favoured."""
        u = rng.random(len(day)) ** skew
        g_hi = np.searchsorted(self.g_created, day, side="right")
        g_pick = self.g_ids[np.minimum((u * g_hi).astype(np.int64), len(self.g_ids) - 1)]
        if region is None:
            return np.where(g_hi > 0, g_pick, self.g_ids[0])
        lo = np.searchsorted(self.key, region.astype(float) * 10_000, side="left")
        hi = np.searchsorted(self.key, region.astype(float) * 10_000 + day + 5_000, side="right")
        n = hi - lo
        r_pick = self.ids[np.minimum(lo + (u * n).astype(np.int64), len(self.ids) - 1)]
        return np.where(n > 0, r_pick, np.where(g_hi > 0, g_pick, self.g_ids[0]))


# --------------------------------------------------------------------------- accounts


def _names(seed: int) -> tuple[np.ndarray, np.ndarray]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    first = sorted({fake.first_name() for _ in range(600)})
    last = sorted({fake.last_name() for _ in range(600)})
    return np.array(first), np.array(last)


def _accounts(
    rng: np.random.Generator, sc: Scale, cal: _Calendar, ring_start: int, seed: int
) -> pl.DataFrame:
    n = sc.accounts - sc.ring
    kind = rng.choice(3, n, p=[0.88, 0.10, 0.02])
    pre = rng.random(n) < np.where(kind == 0, 0.4, 0.7)
    created = np.where(pre, -rng.uniform(0, 3 * 365, n), _sample_days(rng, cal.growth, n))
    region = rng.choice(len(US_STATES), n, p=_POP)
    ring_created = ring_start - rng.uniform(1, 7, sc.ring)
    kind = np.concatenate([kind, np.zeros(sc.ring, dtype=kind.dtype)])
    created = np.concatenate([created, ring_created])
    region = np.concatenate([region, np.full(sc.ring, US_STATES.index("FL"))])
    is_ring = np.concatenate([np.zeros(n, bool), np.ones(sc.ring, bool)])
    total = len(kind)
    order = np.argsort(created, kind="stable")
    kind, created, region, is_ring = kind[order], created[order], region[order], is_ring[order]
    specialty_idx = rng.integers(0, len(SPECIALTIES), total)
    verified = rng.random(total) < np.where(kind == 0, 0.6, 0.85)
    verified &= ~is_ring
    platform = rng.choice(3, total, p=[0.45, 0.35, 0.20])
    platform = np.where(is_ring, 2, platform)
    first, last = _names(seed)
    fi, li = rng.integers(0, len(first), total), rng.integers(0, len(last), total)
    suffixes = np.array(
        [
            "Family Practice",
            "Dental Group",
            "Medical Center",
            "Health Partners",
            "Clinic",
            "Wellness",
            "Care Associates",
        ]
    )
    domains = np.array(["example.com", "mail.example.org", "inbox.example.net", "example.org"])
    num = rng.integers(1, 999, total)
    df = pl.DataFrame(
        {
            "id": np.arange(1, total + 1, dtype=np.int64),
            "kind_i": kind,
            "created_day": created,
            "region_i": region,
            "first": first[fi],
            "last": last[li],
            "suffix": suffixes[rng.integers(0, len(suffixes), total)],
            "domain": domains[rng.integers(0, len(domains), total)],
            "num": num,
            "specialty_i": specialty_idx,
            "verified": verified,
            "platform_i": platform,
            "is_ring": is_ring,
        }
    )
    start = cal.start
    return df.with_columns(
        kind=_labels("kind_i", [k.value for k in AccountKind]),
        created_at=pl.lit(start) + pl.duration(seconds=(pl.col("created_day") * DAY).round()),
        region=_labels("region_i", US_STATES),
        specialty=pl.when(pl.col("kind_i") > 0).then(_labels("specialty_i", SPECIALTIES)),
        status=pl.lit("active"),
        display_name=pl.when(pl.col("kind_i") == 0)
        .then(pl.concat_str("first", pl.lit(" "), "last"))
        .when(pl.col("kind_i") == 1)
        .then(pl.concat_str(pl.lit("Dr. "), "first", pl.lit(" "), "last"))
        .otherwise(pl.concat_str("last", pl.lit(" "), "suffix")),
        email=pl.concat_str(
            pl.col("first").str.to_lowercase(),
            pl.lit("."),
            pl.col("last").str.to_lowercase(),
            pl.col("num").cast(pl.String),
            pl.lit("@"),
            "domain",
        ).str.replace_all(r"[^a-z0-9.@]", ""),
        platform=_labels("platform_i", _PLATFORMS),
    )


def _labels(col: str, labels: Any) -> pl.Expr:
    """Map integer codes in ``col`` to their labels, vectorised."""
    labels = list(labels)
    return pl.col(col).replace_strict(list(range(len(labels))), labels, return_dtype=pl.String)


# --------------------------------------------------------------------------- scenarios


@dataclass
class _Scen:
    outage: int
    policy: int
    ring: int
    ato: int
    scam: int
    launch: int
    ring_ids: np.ndarray
    ring_targets: np.ndarray
    ato_victims: np.ndarray
    policy_factor: float = 1.5
    launch_factor: float = 1.15


def _day_index(cal: _Calendar, d: date) -> int:
    return (datetime(d.year, d.month, d.day) - cal.start).days


def _scenario_days(cal: _Calendar) -> dict[str, int]:
    """Day index (from the window start) of each scenario's start."""
    end = (cal.start + timedelta(days=cal.days)).date()
    return {k: _day_index(cal, v) for k, v in scenario_dates(end, cal.days).items()}


def _scenarios(rng: np.random.Generator, sc: Scale, cal: _Calendar, acc: pl.DataFrame) -> _Scen:
    idx = _scenario_days(cal)
    ring_ids = acc.filter(pl.col("is_ring"))["id"].to_numpy()
    fl = acc.filter(
        (pl.col("kind") == "provider") & (pl.col("region") == "FL") & (pl.col("created_day") < 0)
    )["id"].to_numpy()
    ring_targets = rng.choice(fl, size=min(4, len(fl)), replace=False)
    victims_pool = acc.filter(
        (pl.col("kind") == "patient")
        & (pl.col("created_day") < idx["account_takeover_wave"] - 60)
        & ~pl.col("is_ring")
    )["id"].to_numpy()
    victims = np.sort(rng.choice(victims_pool, size=sc.ato_victims, replace=False))
    return _Scen(
        outage=idx["ingestion_outage"],
        policy=idx["policy_change"],
        ring=idx["fake_review_ring"],
        ato=idx["account_takeover_wave"],
        scam=idx["new_scam"],
        launch=idx["product_launch"],
        ring_ids=ring_ids,
        ring_targets=np.sort(ring_targets),
        ato_victims=victims,
    )


def _tod(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day, following the diurnal profile."""
    hour = rng.choice(24, n, p=_HOURS)
    return hour * 3600 + rng.uniform(0, 3600, n)


# --------------------------------------------------------------------------- cases


def _base_cases(
    rng: np.random.Generator, sc: Scale, cal: _Calendar, scen: _Scen
) -> dict[str, np.ndarray]:
    share = np.array([_CASE_MIX[c][0] for c in _CATS])
    share /= share.sum()
    srcmix = np.array([_CASE_MIX[c][1] for c in _CATS])
    srcmix /= srcmix.sum(axis=1, keepdims=True)
    week = np.array([_SOURCE_WEEK[s] for s in _SOURCES])
    week /= week.mean(axis=1, keepdims=True)
    human = np.array(
        [s in ("user_report", "provider_report", "internal_escalation") for s in _SOURCES]
    )
    per_day = sc.cases / 730.0
    day_f = cal.growth[:, None] * week.T[cal.dow]  # (D, S)
    day_f = np.where(cal.holiday[:, None] & human[None, :], day_f * 0.7, day_f)
    lam = per_day * day_f[:, None, :] * (share[:, None] * srcmix)[None, :, :]  # (D, C, S)
    harass = _CATS.index("harassment")
    lam[scen.policy :, harass, :] *= scen.policy_factor
    day, cat, src = _draw(rng, lam)
    delay = np.array([_REPORT_DELAY_DAYS[s] for s in _SOURCES])[src]
    opened = day * DAY + _tod(rng, len(day)) + rng.exponential(delay) * DAY
    return {"opened_s": opened, "cat": cat, "src": src}


def _assign_slices(
    rng: np.random.Generator, c: dict[str, np.ndarray], seed_tilt: np.random.Generator
) -> None:
    tilt = seed_tilt.lognormal(0, _CATEGORY_REGION_TILT, (len(_CATS), len(US_STATES)))
    region_p = _POP[None, :] * tilt
    sev_p = np.array([_CASE_MIX[k][2] for k in _CATS])
    plat_p = np.array([_CASE_MIX[k][3] for k in _CATS])
    c["region"] = _choice_rows(rng, region_p, c["cat"])
    c["sev"] = _choice_rows(rng, sev_p, c["cat"])
    c["platform"] = _choice_rows(rng, plat_p, c["cat"])


def _scenario_cases(
    rng: np.random.Generator,
    sc: Scale,
    scen: _Scen,
    acc: pl.DataFrame,
    prov: _Pool,
    pat: _Pool,
) -> dict[str, np.ndarray]:
    fl = US_STATES.index("FL")
    parts: list[dict[str, np.ndarray]] = []
    # 1. Reports about the fake-review ring, a few days after its burst begins.
    n = max(3, round(sc.ring * 0.8))
    src = rng.choice(
        [
            _PROVIDER,
            _MODEL,
            _USER,
        ],
        n,
        p=[0.4, 0.35, 0.25],
    )
    opened = (scen.ring + rng.uniform(4, 20, n)) * DAY
    reporter = np.where(
        src == _PROVIDER,
        rng.choice(scen.ring_targets, n),
        np.where(src == _USER, pat.pick(rng, opened / DAY, np.full(n, fl)), -1),
    )
    parts.append(
        {
            "opened_s": opened,
            "cat": np.full(n, _CATS.index("fake_review")),
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
    src = np.where(rng.random(n) < 0.6, _USER, _RULE)
    parts.append(
        {
            "opened_s": (scen.ato + 1.5 + rng.exponential(2.0, n)) * DAY,
            "cat": np.full(n, _CATS.index("account_takeover")),
            "src": src,
            "region": reg[k],
            "sev": rng.choice([2, 3], n, p=[0.6, 0.4]),
            "platform": rng.choice(3, n),
            "subject": v[k],
            "reporter": np.where(src == _USER, v[k], -1),
            "tag": np.full(n, 2),
        }
    )
    k = rng.random(len(v)) < 0.4
    n = int(k.sum())
    src = np.where(rng.random(n) < 0.5, _MODEL, _USER)
    parts.append(
        {
            "opened_s": (scen.ato + rng.uniform(3, 12, n)) * DAY,
            "cat": np.full(n, _CATS.index("payment_fraud")),
            "src": src,
            "region": reg[k],
            "sev": rng.choice([2, 3], n, p=[0.7, 0.3]),
            "platform": np.zeros(n, int),
            "subject": v[k],
            "reporter": np.where(src == _USER, v[k], -1),
            "tag": np.full(n, 2),
        }
    )
    # 3. The new insurance-verification call scam: filed under "other", growing for 3 weeks.
    span = np.arange(scen.scam, scen.scam + 30)
    lam = sc.scam_peak * np.minimum((span - scen.scam + 1) / 21.0, 1.0)
    cnt = rng.poisson(lam)
    day = np.repeat(span, cnt)
    n = len(day)
    opened = day * DAY + _tod(rng, n)
    region = rng.choice(len(US_STATES), n, p=_POP)
    src = rng.choice([_USER, _PROVIDER, _INTERNAL], n, p=[0.85, 0.1, 0.05])
    parts.append(
        {
            "opened_s": opened,
            "cat": np.full(n, _CATS.index("other")),
            "src": src,
            "region": region,
            "sev": rng.choice([1, 2], n, p=[0.5, 0.5]),
            "platform": rng.choice(3, n, p=[0.3, 0.4, 0.3]),
            "subject": prov.pick(rng, day.astype(float), region),
            "reporter": np.where(src == _USER, pat.pick(rng, day.astype(float), region), -1),
            "tag": np.full(n, 3),
        }
    )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _pick_subjects(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    acc: pl.DataFrame,
    pat: _Pool,
    prov: _Pool,
) -> None:
    n = len(c["cat"])
    day = c["opened_s"] / DAY
    p_prov = np.array([_PROVIDER_SUBJECT.get(k, 0.0) for k in _CATS])[c["cat"]]
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
    user = c["src"] == _USER
    provr = c["src"] == _PROVIDER
    rep_user = np.where(rng.random(n) < 0.08, rng.choice(noisy, n), pat.pick(rng, day, c["region"]))
    rep_prov = prov.pick(rng, day, c["region"])
    c["reporter"] = np.where(user, rep_user, np.where(provr, rep_prov, -1))
    c["tag"] = np.zeros(n, int)


def _handling(rng: np.random.Generator, c: dict[str, np.ndarray], now_s: float) -> None:
    """First response, resolution, outcome and appeal of every case (vectorised)."""
    n = len(c["cat"])
    sev = c["sev"]
    fr_med = np.array([_FIRST_RESPONSE_H[s] for s in _SEVS])[sev] * 3600
    first = c["opened_s"] + fr_med * rng.lognormal(0, 1.0, n)
    res_med = np.array([_RESOLVE_D[s] for s in _SEVS])[sev] * DAY
    resolved = first + res_med * rng.lognormal(0, 1.2, n)
    p_nv = np.array([_NO_VIOLATION[s] for s in _SOURCES])[c["src"]]
    violation = rng.random(n) >= p_nv
    action = _choice_rows(rng, np.array([_ACTIONS[s] for s in _SEVS]), sev) + 1
    resolution = np.where(violation, action, 0)  # index into _RESOLUTIONS
    appealable = np.isin(resolution, [2, 3, 4])
    appealed = appealable & (rng.random(n) < 0.12)
    appeal_at = resolved + rng.exponential(3.0, n) * DAY
    decided_at = appeal_at + rng.exponential(5.0, n) * DAY
    automated = np.isin(c["src"], _AUTOMATED)
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


def _descriptions(rng: np.random.Generator, c: pl.DataFrame, names: pl.DataFrame) -> pl.Series:
    """Free text per case: voice by source, parts drawn per row, slots filled vectorised."""
    n = c.height

    def bank(table: dict[str, tuple[str, ...]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        flat: list[str] = []
        off: list[int] = []
        ln: list[int] = []
        for k in _CATS:
            off.append(len(flat))
            ln.append(len(table[k]))
            flat.extend(table[k])
        return flat, np.array(off), np.array(ln)

    def pick(options: tuple[str, ...] | list[str]) -> pl.Series:
        return pl.Series(
            np.array(options, dtype=object)[rng.integers(0, len(options), n)], dtype=pl.String
        )

    cat = c["cat"].to_numpy()
    core_flat, core_off, core_len = bank(nv.CORE)
    sys_flat, sys_off, sys_len = bank(nv.SYSTEM_CORE)
    core = np.array(core_flat, dtype=object)[
        core_off[cat] + (rng.random(n) * core_len[cat]).astype(int)
    ]
    sys_core = np.array(sys_flat, dtype=object)[
        sys_off[cat] + (rng.random(n) * sys_len[cat]).astype(int)
    ]
    scam = np.array(nv.SCAM_CORE, dtype=object)[rng.integers(0, len(nv.SCAM_CORE), n)]
    src = c["src"].to_numpy()
    tag = c["tag"].to_numpy()
    system = np.isin(src, _AUTOMATED) & (tag != 3)
    associate = ~system & ((src == _INTERNAL) | (rng.random(n) < 0.2)) & (tag != 3)
    with_pii = ~system & (rng.random(n) < 0.35)
    area = rng.choice([212, 213, 305, 312, 404, 415, 512, 602, 617, 702, 813, 904], n)
    line = rng.integers(100, 10_000, n)
    phone_fmt = rng.integers(0, 3, n)
    frame = pl.DataFrame(
        {
            "opener": pick(nv.REPORTER_OPENERS),
            "aopen": pick(nv.ASSOCIATE_OPENERS),
            "sopen": pick(nv.SYSTEM_OPENERS),
            "core": pl.Series(core, dtype=pl.String),
            "sys": pl.Series(sys_core, dtype=pl.String),
            "scam": pl.Series(scam, dtype=pl.String),
            "detail": pick(nv.DETAIL),
            "sdetail": pick(nv.SCAM_DETAIL),
            "pii": pick(nv.PII_SENTENCES),
            "closer": pick(nv.CLOSERS),
            "system": system,
            "associate": associate,
            "with_pii": with_pii,
            "tag": tag,
            "area": area,
            "line": line,
            "phone_fmt": phone_fmt,
            "amount": rng.choice([25, 40, 50, 75, 100, 150, 200, 250, 300, 500, 1200], n),
            "k": rng.integers(2, 31, n),
            "when": pick(
                (
                    "yesterday",
                    "last week",
                    "on Monday",
                    "two days ago",
                    "this morning",
                    "over the weekend",
                    "last month",
                    "on Friday",
                )
            ),
        }
    ).hstack(names)

    def cap(e: pl.Expr) -> pl.Expr:
        return pl.concat_str(e.str.slice(0, 1).str.to_uppercase(), e.str.slice(1))

    body = pl.when(pl.col("tag") == 3).then(pl.col("scam")).otherwise(pl.col("core"))
    detail = pl.when(pl.col("tag") == 3).then(pl.col("sdetail")).otherwise(pl.col("detail"))
    opener = pl.when(pl.col("associate")).then(pl.col("aopen")).otherwise(pl.col("opener"))
    run_on = opener.str.ends_with(", ") | opener.str.ends_with(" and ")
    human = pl.concat_str(
        opener,
        pl.when(run_on).then(body).otherwise(cap(body)),
        pl.lit(". "),
        detail,
        pl.when(pl.col("with_pii")).then(pl.col("pii")).otherwise(pl.lit("")),
        pl.col("closer"),
    )
    text = (
        pl.when(pl.col("system"))
        .then(pl.concat_str(pl.col("sopen"), pl.col("sys"), pl.lit(".")))
        .otherwise(human)
    )
    phone = (
        pl.when(pl.col("phone_fmt") == 0)
        .then(pl.format("({}) 555-{}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
        .when(pl.col("phone_fmt") == 1)
        .then(pl.format("{}-555-{}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
        .otherwise(pl.format("+1 {} 555 {}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
    )
    out = frame.select(
        cap(text.str.strip_chars())
        .str.replace_all("{provider}", pl.col("provider"), literal=True)
        .str.replace_all("{name}", pl.col("person"), literal=True)
        .str.replace_all("{email}", pl.col("email"), literal=True)
        .str.replace_all("{phone}", phone, literal=True)
        .str.replace_all("{amount}", pl.format("${}", "amount"), literal=True)
        .str.replace_all("{n}", pl.col("k").cast(pl.String), literal=True)
        .str.replace_all("{when}", pl.col("when"), literal=True)
        .str.replace_all("  ", " ", literal=True)
        .str.replace_all(r" \.", ".")
        .alias("description")
    )
    return out["description"]


def _ts(start: datetime, col: str) -> pl.Expr:
    """Seconds since the window start -> naive UTC datetime (microseconds)."""
    return (pl.lit(start) + pl.duration(microseconds=(pl.col(col) * 1e6).round())).alias(
        col.removesuffix("_s") + "_at"
    )


def _cases(
    rng: np.random.Generator,
    sc: Scale,
    cal: _Calendar,
    scen: _Scen,
    acc: pl.DataFrame,
    tilt_rng: np.random.Generator,
) -> pl.DataFrame:
    is_pat = (acc["kind"] == "patient").to_numpy()
    ring = acc["is_ring"].to_numpy()
    ids, reg, cre = acc["id"].to_numpy(), acc["region_i"].to_numpy(), acc["created_day"].to_numpy()
    pat = _Pool(ids[is_pat & ~ring], reg[is_pat & ~ring], cre[is_pat & ~ring])
    prov = _Pool(ids[~is_pat], reg[~is_pat], cre[~is_pat])
    base = _base_cases(rng, sc, cal, scen)
    _assign_slices(rng, base, tilt_rng)
    _pick_subjects(rng, base, acc, pat, prov)
    extra = _scenario_cases(rng, sc, scen, acc, prov, pat)
    c = {k: np.concatenate([base[k], extra[k]]) for k in extra}
    keep = c["opened_s"] < cal.end_s
    # 5. The ingestion outage: a day of automated-rule cases never arrived.
    day = np.floor(c["opened_s"] / DAY)
    keep &= ~((day == scen.outage) & (c["src"] == _RULE))
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
    frame = frame.with_columns(description=_descriptions(rng, frame, names))
    first = pl.col("first_s").is_not_nan()
    res = pl.col("resolved_s").is_not_nan()
    return frame.with_columns(
        _ts(cal.start, "opened_s"),
        pl.when(first).then(_ts(cal.start, "first_s")).alias("first_response_at"),
        pl.when(res).then(_ts(cal.start, "resolved_s")).alias("resolved_at"),
        pl.when(pl.col("appeal_s").is_not_nan())
        .then(_ts(cal.start, "appeal_s"))
        .alias("appealed_at"),
        pl.when(pl.col("decided_s").is_not_nan())
        .then(_ts(cal.start, "decided_s"))
        .alias("decided_at"),
        source=_labels("src", _SOURCES),
        category=_labels("cat", _CATS),
        severity=_labels("sev", _SEVS),
        status=pl.when(res)
        .then(pl.lit(CaseStatus.resolved.value))
        .when(first)
        .then(pl.lit(CaseStatus.in_review.value))
        .otherwise(pl.lit(CaseStatus.open.value)),
        region=_labels("region", US_STATES),
        platform=_labels("platform", _PLATFORMS),
        subject_account_id=pl.col("subject").cast(pl.Int64),
        reporter_account_id=pl.when(pl.col("reporter") > 0).then(pl.col("reporter")).cast(pl.Int64),
        assignee=pl.when(pl.col("assignee") >= 0).then(
            pl.format("associate-{}", pl.col("assignee").cast(pl.String).str.zfill(2))
        ),
        resolution=pl.when(pl.col("resolution") >= 0).then(_labels("resolution", _RESOLUTIONS)),
        appeal_outcome=pl.when(pl.col("appeal") >= 0).then(
            _labels("appeal", [a.value for a in AppealOutcome])
        ),
    )


def _case_actions(cases: pl.DataFrame) -> pl.DataFrame:
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


# --------------------------------------------------------------------------- events

_RING_DEVICE_BASE = 7_000_000_000_000
_ATTACKER_BASE = 8_000_000_000_000
_PUBLIC_IP_BASE = 9_000_000_000_000


@dataclass
class _Actors:
    region: np.ndarray
    platform: np.ndarray
    patients: _Pool
    anyone: _Pool
    providers: _Pool
    established: _Pool


def _actors(acc: pl.DataFrame) -> _Actors:
    ids, reg, cre = acc["id"].to_numpy(), acc["region_i"].to_numpy(), acc["created_day"].to_numpy()
    kind = acc["kind_i"].to_numpy()
    ring = acc["is_ring"].to_numpy()
    pat = (kind == 0) & ~ring
    est = (kind == 1) & (cre < 0)
    return _Actors(
        region=reg,
        platform=acc["platform_i"].to_numpy(),
        patients=_Pool(ids[pat], reg[pat], cre[pat]),
        anyone=_Pool(ids[~ring], reg[~ring], cre[~ring]),
        providers=_Pool(ids[kind > 0], reg[kind > 0], cre[kind > 0]),
        established=_Pool(ids[est], reg[est], np.full(int(est.sum()), -1.0)),
    )


def _device(account: np.ndarray, k: np.ndarray) -> np.ndarray:
    return _splitmix64(account.astype(np.uint64) * np.uint64(4) + k.astype(np.uint64))


def _ip(rng: np.random.Generator, account: np.ndarray) -> np.ndarray:
    n = len(account)
    own = _splitmix64(
        account.astype(np.uint64) * np.uint64(16)
        + np.uint64(1 << 40)
        + rng.integers(0, 4, n).astype(np.uint64)
    )
    public = _splitmix64(np.uint64(_PUBLIC_IP_BASE) + rng.integers(0, 200, n).astype(np.uint64))
    return np.where(rng.random(n) < 0.01, public, own)


def _event_block(
    rng: np.random.Generator,
    act: _Actors,
    ts_s: np.ndarray,
    kind: np.ndarray,
    account: np.ndarray,
    *,
    target: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    device: np.ndarray | None = None,
    ip: np.ndarray | None = None,
    platform: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    n = len(ts_s)
    if platform is None:
        home = act.platform[account - 1]
        platform = np.where(rng.random(n) < 0.85, home, rng.integers(0, 3, n))
    if device is None:
        device = _device(account, rng.choice(3, n, p=[0.8, 0.15, 0.05]))
    return {
        "ts_s": ts_s.astype(float),
        "account": account.astype(np.int64),
        "kind_i": kind.astype(np.int64),
        "platform_i": platform.astype(np.int64),
        "region_i": act.region[account - 1].astype(np.int64),
        "dev": device.astype(np.uint64),
        "ip": (_ip(rng, account) if ip is None else ip).astype(np.uint64),
        "target": (np.full(n, -1) if target is None else target).astype(np.int64),
        "rating": (np.zeros(n) if rating is None else rating).astype(np.int64),
    }


def _base_events(
    rng: np.random.Generator,
    sc: Scale,
    cal: _Calendar,
    scen: _Scen,
    act: _Actors,
    d0: int,
    d1: int,
) -> dict[str, np.ndarray]:
    kinds = list(_EVENT_MIX)
    share = np.array([_EVENT_MIX[k][0] for k in kinds])
    share /= share.sum()
    week = np.array([_EVENT_MIX[k][1] for k in kinds])
    week /= week.mean(axis=1, keepdims=True)
    hol = np.array([_EVENT_MIX[k][2] for k in kinds])
    per_day = sc.events * 0.94 / 730.0
    days = np.arange(d0, d1)
    lam = per_day * cal.growth[days, None] * share[None, :] * week.T[cal.dow[days]]
    lam = np.where(cal.holiday[days, None], lam * hol[None, :], lam)
    lam[days >= scen.launch, kinds.index("message_sent")] *= scen.launch_factor
    day_rel, k = _draw(rng, lam)
    day = days[day_rel]
    ts = day * DAY + _tod(rng, len(day))
    group = np.array([_EVENT_MIX[x][3] for x in kinds])[k]
    dayf = ts / DAY
    account = np.where(
        group == "patient",
        act.patients.pick(rng, dayf),
        np.where(group == "provider", act.providers.pick(rng, dayf), act.anyone.pick(rng, dayf)),
    )
    kind = np.array([_KINDS.index(x) for x in kinds])[k]
    targeted = np.isin(kind, [_KINDS.index(x) for x in _TARGETED])
    target = np.where(
        targeted,
        act.established.pick(rng, np.zeros(len(ts)), act.region[account - 1], skew=2.5),
        -1,
    )
    rating = np.where(
        kind == _KINDS.index("review_posted"),
        rng.choice([1, 2, 3, 4, 5], len(ts), p=[0.07, 0.05, 0.09, 0.24, 0.55]),
        0,
    )
    return _event_block(rng, act, ts, kind, account, target=target, rating=rating)


def _per_account_day(
    rng: np.random.Generator, days: np.ndarray, accounts: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(``rate``) draws for every (day, account): the day and account of each draw."""
    d, a = _draw(rng, np.full((len(days), len(accounts)), rate))
    return days[d], accounts[a]


def _extra_events(
    rng: np.random.Generator,
    sc: Scale,
    cal: _Calendar,
    scen: _Scen,
    act: _Actors,
    acc: pl.DataFrame,
    cases: pl.DataFrame,
) -> dict[str, np.ndarray]:
    K = _KINDS.index  # noqa: N806
    blocks: list[dict[str, np.ndarray]] = []
    ring_dev = _splitmix64(np.uint64(_RING_DEVICE_BASE) + np.arange(3, dtype=np.uint64))
    ring_ip = _splitmix64(np.uint64(_RING_DEVICE_BASE) + np.arange(100, 102, dtype=np.uint64))
    # Sign-ups of the accounts created inside the window.
    new = acc.filter(pl.col("created_day") >= 0)
    ids = new["id"].to_numpy()
    is_ring = np.isin(ids, scen.ring_ids)
    blocks.append(
        _event_block(
            rng,
            act,
            new["created_day"].to_numpy() * DAY,
            np.full(len(ids), K("signup")),
            ids,
            device=np.where(
                is_ring, rng.choice(ring_dev, len(ids)), _device(ids, np.zeros(len(ids)))
            ),
            ip=np.where(is_ring, rng.choice(ring_ip, len(ids)), _ip(rng, ids)),
        )
    )
    # A report_filed event behind every user or provider report.
    rep = cases.filter(pl.col("reporter_account_id").is_not_null())
    opened = rep["opened_s"].to_numpy() - rng.uniform(5, 300, rep.height)
    blocks.append(
        _event_block(
            rng,
            act,
            np.maximum(opened, 0),
            np.full(rep.height, K("report_filed")),
            rep["reporter_account_id"].to_numpy(),
            target=rep["subject_account_id"].to_numpy(),
        )
    )
    # 1. The fake-review ring: bursts of 5-star reviews from shared devices for 12 days.
    day, acct = _per_account_day(rng, np.arange(scen.ring, scen.ring + 12), scen.ring_ids, 1.6)
    n = len(acct)
    blocks.append(
        _event_block(
            rng,
            act,
            day * DAY + _tod(rng, n),
            np.full(n, K("review_posted")),
            acct,
            target=rng.choice(scen.ring_targets, n),
            rating=np.full(n, 5),
            device=rng.choice(ring_dev, n),
            ip=rng.choice(ring_ip, n),
            platform=np.full(n, 2),
        )
    )
    day, acct = _per_account_day(rng, np.arange(scen.ring - 6, scen.ring + 12), scen.ring_ids, 1.0)
    n = len(acct)
    blocks.append(
        _event_block(
            rng,
            act,
            day * DAY + _tod(rng, n),
            np.full(n, K("login")),
            acct,
            device=rng.choice(ring_dev, n),
            ip=rng.choice(ring_ip, n),
            platform=np.full(n, 2),
        )
    )
    # 2. Account takeover: credential stuffing from a few IPs, then takeovers and fraud.
    att_dev = _splitmix64(np.uint64(_ATTACKER_BASE) + np.arange(8, dtype=np.uint64))
    att_ip = _splitmix64(np.uint64(_ATTACKER_BASE) + np.arange(100, 106, dtype=np.uint64))
    n = sc.ato_attempts
    targets = act.patients.pick(rng, np.full(n, float(scen.ato)), skew=1.0)
    v = scen.ato_victims
    targets = np.concatenate([targets, np.repeat(v, 3)])
    n = len(targets)
    blocks.append(
        _event_block(
            rng,
            act,
            (scen.ato + rng.uniform(0, 1.5, n)) * DAY,
            np.full(n, K("login_failed")),
            targets,
            device=rng.choice(att_dev, n),
            ip=rng.choice(att_ip, n),
            platform=np.zeros(n),
        )
    )
    m = len(v)
    take = (scen.ato + rng.uniform(0.5, 3, m)) * DAY
    for kind, lag, reps in (
        ("login", 0.0, 3),
        ("profile_updated", 0.05, 1),
        ("payment_failed", 2.0, 2),
        ("booking_created", 1.0, 1),
    ):
        t = np.repeat(take, reps) + rng.uniform(lag, lag + 6, m * reps) * DAY
        blocks.append(
            _event_block(
                rng,
                act,
                t,
                np.full(m * reps, K(kind)),
                np.repeat(v, reps),
                device=rng.choice(att_dev, m * reps),
                ip=rng.choice(att_ip, m * reps),
                platform=np.zeros(m * reps),
                target=(
                    act.established.pick(
                        rng, np.zeros(m * reps), act.region[np.repeat(v, reps) - 1]
                    )
                    if kind == "booking_created"
                    else None
                ),
            )
        )
    out = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    keep = (out["ts_s"] >= 0) & (out["ts_s"] < cal.end_s)
    return {k: a[keep] for k, a in out.items()}


def _event_frame(cal: _Calendar, e: dict[str, np.ndarray], id0: int) -> pl.DataFrame:
    order = np.lexsort((e["kind_i"], e["account"], e["ts_s"]))
    e = {k: v[order] for k, v in e.items()}
    n = len(order)
    df = pl.DataFrame(
        {
            "id": np.arange(id0, id0 + n, dtype=np.int64),
            "ts_s": e["ts_s"],
            "account_id": e["account"],
            "kind_i": e["kind_i"],
            "platform_i": e["platform_i"],
            "region_i": e["region_i"],
            "target": e["target"],
            "rating": e["rating"],
        }
    )
    return df.select(
        "id",
        _ts(cal.start, "ts_s").alias("ts"),
        "account_id",
        _labels("kind_i", _KINDS).alias("kind"),
        _labels("platform_i", _PLATFORMS).alias("platform"),
        _labels("region_i", US_STATES).alias("region"),
        device_hash=_hex(e["dev"]),
        ip_hash=_hex(e["ip"]),
        target_account_id=pl.when(pl.col("target") > 0).then(pl.col("target")),
        rating=pl.when(pl.col("rating") > 0).then(pl.col("rating").cast(pl.Int16)),
    )


# --------------------------------------------------------------------------- assembly


def _annotations(cal: _Calendar, scen: _Scen) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for day, name in cal.holiday_names:
        rows.append(
            {
                "start_at": cal.start + timedelta(days=day),
                "end_at": cal.start + timedelta(days=day + 1),
                "kind": AnnotationKind.holiday.value,
                "title": name,
                "description": "US public holiday: lower booking and report volumes.",
                "category": None,
                "region": None,
            }
        )
    rows.append(
        {
            "start_at": cal.start + timedelta(days=scen.policy),
            "end_at": None,
            "kind": AnnotationKind.policy_change.value,
            "title": "Harassment policy expanded",
            "description": "Community Standards now cover hostile messages sent after a cancelled "
            "appointment; harassment reports are expected to rise by about half.",
            "category": Category.harassment.value,
            "region": None,
        }
    )
    rows.append(
        {
            "start_at": cal.start + timedelta(days=scen.launch),
            "end_at": None,
            "kind": AnnotationKind.product_launch.value,
            "title": "Secure messaging v2 launched",
            "description": "New in-app messaging for patients and practices; message volume up.",
            "category": None,
            "region": None,
        }
    )
    df = pl.DataFrame(
        rows,
        schema_overrides={
            "category": pl.String,
            "region": pl.String,
            "end_at": pl.Datetime("us"),
            "start_at": pl.Datetime("us"),
        },
    )
    return df.sort("start_at").with_columns(
        id=pl.arange(1, df.height + 1, dtype=pl.Int64), created_by=pl.lit("demo")
    )


def _iso(cal: _Calendar, day: float) -> str:
    return (cal.start + timedelta(days=day)).isoformat()


def _manifest(
    cal: _Calendar, scen: _Scen, cases: pl.DataFrame, annotations: pl.DataFrame, meta: dict
) -> dict[str, Any]:
    def case_ids(tag: int, category: str | None = None) -> list[int]:
        f = cases.filter(pl.col("tag") == tag)
        if category:
            f = f.filter(pl.col("category") == category)
        return f["id"].to_list()

    policy_ann = annotations.filter(pl.col("kind") == "policy_change")["id"].item()
    scam = cases.filter(pl.col("tag") == 3)
    return {
        "dataset": meta,
        "scenarios": [
            {
                "kind": "fake_review_ring",
                "description": "New accounts sharing 3 devices post bursts of 5-star reviews for "
                "a handful of Florida providers for 12 days; reports follow.",
                "start": _iso(cal, scen.ring),
                "end": _iso(cal, scen.ring + 12),
                "slice": {"region": "FL", "event_kind": "review_posted"},
                "slices": [
                    {"region": "FL", "event_kind": "review_posted"},
                    {"region": "FL", "category": "fake_review"},
                ],
                "account_ids": sorted(scen.ring_ids.tolist()),
                "target_provider_ids": scen.ring_targets.tolist(),
                "case_ids": case_ids(1),
            },
            {
                "kind": "account_takeover_wave",
                "description": "Credential stuffing (a spike of failed logins from a few IPs), "
                "then takeovers of some accounts, payment failures and fraud cases.",
                "start": _iso(cal, scen.ato),
                "end": _iso(cal, scen.ato + 14),
                "slice": {"event_kind": "login_failed"},
                "slices": [
                    {"event_kind": "login_failed"},
                    {"event_kind": "login"},
                    {"event_kind": "profile_updated"},
                    {"event_kind": "payment_failed"},
                    {"category": "account_takeover"},
                    {"category": "payment_fraud"},
                ],
                "account_ids": scen.ato_victims.tolist(),
                "case_ids": case_ids(2),
            },
            {
                "kind": "new_scam",
                "description": "Fake insurance-verification calls: a new scam with its own "
                "vocabulary, filed under 'other', growing over three weeks.",
                "start": _iso(cal, scen.scam),
                "end": _iso(cal, min(scen.scam + 30, cal.days)),
                "slice": {"category": "other"},
                "slices": [{"category": "other"}],
                "terms": ["insurance", "verification", "member id", "gift card", "coverage"],
                "account_ids": [],
                "case_ids": scam["id"].to_list(),
            },
            {
                "kind": "policy_change",
                "description": "Harassment policy expanded: harassment volume steps up by half "
                "from this date. Annotated, so it must be explained, not alerted.",
                "start": _iso(cal, scen.policy),
                "end": None,
                "slice": {"category": "harassment"},
                "slices": [{"category": "harassment"}],
                "effect": scen.policy_factor,
                "annotation_id": policy_ann,
                "account_ids": [],
                "case_ids": [],
            },
            {
                "kind": "ingestion_outage",
                "description": "A day of automated_rule cases never arrived: a drop in the data, "
                "not in abuse. It must not be alerted as an abuse spike.",
                "start": _iso(cal, scen.outage),
                "end": _iso(cal, scen.outage + 1),
                "slice": {"source": "automated_rule"},
                "slices": [{"source": "automated_rule"}],
                "account_ids": [],
                "case_ids": [],
            },
        ],
    }


def _account_status(acc: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """Accounts suspended or banned by a case outcome that was not overturned."""
    final = (
        cases.filter(
            pl.col("resolution").is_in(["account_suspended", "account_banned"])
            & (pl.col("appeal_outcome").fill_null("") != "overturned")
        )
        .group_by("subject_account_id")
        .agg(banned=(pl.col("resolution") == "account_banned").any())
        .select(
            id="subject_account_id",
            new_status=pl.when("banned").then(pl.lit("banned")).otherwise(pl.lit("suspended")),
        )
    )
    return (
        acc.join(final, on="id", how="left")
        .with_columns(status=pl.coalesce("new_status", "status"))
        .drop("new_status")
    )


def _columns(table: str) -> list[str]:
    return [c.name for c in db.Base.metadata.tables[table].columns]


def generate(*, scale: str, seed: int, days: int = 730, end: date | None = None) -> DemoData:
    """Generate the demo data set in memory (events lazily, chunk by chunk).

    Parameters
    ----------
    scale : one of ``SCALES`` ("small", "medium", "large").
    seed : random seed; the same seed and end date give the same data.
    days : length of the window in days (at least 240, so every scenario fits).
    end : the window ends at midnight UTC at the start of this date (default today).

    >>> d = generate(scale="small", seed=1, days=240, end=date(2026, 1, 1))
    >>> d.accounts.columns[:3], d.manifest["scenarios"][0]["kind"]
    (['id', 'kind', 'created_at'], 'fake_review_ring')
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    if days < MIN_DAYS:
        raise ValueError(f"--days must be at least {MIN_DAYS} so that every scenario fits")
    end = end or datetime.now(UTC).date()
    sc = SCALES[scale]
    cal = _calendar(end, days)
    rng = np.random.default_rng(seed)
    acc = _accounts(rng, sc, cal, _scenario_days(cal)["fake_review_ring"], seed)
    scen = _scenarios(rng, sc, cal, acc)
    cases = _cases(rng, sc, cal, scen, acc, np.random.default_rng([seed, 1]))
    acc = _account_status(acc, cases)
    actions = _case_actions(cases)
    annotations = _annotations(cal, scen)
    act = _actors(acc)
    extra = _extra_events(np.random.default_rng([seed, 3]), sc, cal, scen, act, acc, cases)
    extra_day = np.floor(extra["ts_s"] / DAY)
    chunks = [(d0, min(d0 + sc.chunk_days, days)) for d0 in range(0, days, sc.chunk_days)]

    def event_chunks() -> Iterator[pl.DataFrame]:
        next_id = 1
        for i, (d0, d1) in enumerate(chunks):
            base = _base_events(np.random.default_rng([seed, 2, i]), sc, cal, scen, act, d0, d1)
            sel = (extra_day >= d0) & (extra_day < d1)
            block = {k: np.concatenate([base[k], extra[k][sel]]) for k in base}
            frame = _event_frame(cal, block, next_id)
            next_id += frame.height
            yield frame

    meta = {
        "scale": scale,
        "seed": seed,
        "days": days,
        "end": end.isoformat(),
        "window_start": cal.start.isoformat(),
        "generator": "analytics.demo",
    }
    manifest = _manifest(cal, scen, cases, annotations, meta)
    return DemoData(
        accounts=acc.select(_columns("accounts")),
        cases=cases.select(_columns("cases")),
        case_actions=actions,
        annotations=annotations.select(_columns("annotations")),
        manifest=manifest,
        event_chunks=event_chunks,
        n_event_chunks=len(chunks),
        info=meta,
    )


# --------------------------------------------------------------------------- seeding

_DEMO_TABLES = ("case_actions", "events", "cases", "annotations", "feedback", "accounts")


class SeedRefused(Exception):
    """The database holds data that is not the demo's; seeding would destroy it."""


def database_state(engine: Engine) -> str:
    """``"empty"``, ``"demo"`` (only demo data) or ``"data"`` (holds non-demo data)."""
    counts = db.table_counts(engine)
    if not any(counts[t] for t in ("accounts", "events", "cases")):
        return "empty"
    if db.get_meta(engine, "demo") is not None and not db.get_meta(engine, "non_demo_data"):
        return "demo"
    return "data"


def _recreate_tables(engine: Engine) -> None:
    """Drop and re-create the demo tables, without secondary indexes (added after load)."""
    meta = db.Base.metadata
    tables = [meta.tables[t] for t in _DEMO_TABLES]
    with engine.begin() as conn:
        meta.drop_all(conn, tables=tables + [meta.tables["dataset_meta"]])
    db.init_db(engine)
    db.drop_search_index(engine)
    with engine.begin() as conn:
        for t in tables:
            for ix in t.indexes:
                ix.drop(conn)


def _create_indexes(engine: Engine) -> None:
    indexes = [ix for t in _DEMO_TABLES for ix in db.Base.metadata.tables[t].indexes]
    path = db.sqlite_path(engine)
    if path is None:
        with engine.begin() as conn:
            for ix in indexes:
                ix.create(conn, checkfirst=True)
        return
    # SQLite: build the indexes outside WAL (each page written once), then back to WAL.
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # Leaving WAL needs sole access; when another process has the file open, stay.
        with contextlib.suppress(sqlite3.OperationalError):
            con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=OFF")
        for ix in indexes:
            con.execute(str(CreateIndex(ix, if_not_exists=True).compile(dialect=engine.dialect)))
        with contextlib.suppress(sqlite3.OperationalError):
            con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def seed_database(
    engine: Engine,
    *,
    scale: str = "medium",
    seed: int = 7,
    days: int = 730,
    end: date | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Replace the demo tables with freshly generated demo data; returns the manifest.

    Refuses (``SeedRefused``) when the database holds non-demo data, unless ``force``.
    The audit log and users are kept. The manifest is stored in ``dataset_meta``
    under ``ground_truth`` so that evaluation always reads the truth of this database.
    """
    db.init_db(engine)
    if database_state(engine) == "data" and not force:
        raise SeedRefused(
            f"{db.safe_url(str(engine.url))} holds data that is not the demo's; "
            "refusing to overwrite it (use --force to replace it with demo data)"
        )
    say = progress or (lambda step, done, total: None)
    data = generate(scale=scale, seed=seed, days=days, end=end)
    total = 5 + data.n_event_chunks
    say("preparing tables", 0, total)
    _recreate_tables(engine)
    written: dict[str, int] = {}
    for i, name in enumerate(("accounts", "cases", "case_actions", "annotations")):
        say(f"writing {name}", i + 1, total)
        written[name] = db.bulk_append(engine, name, getattr(data, name))
    written["events"] = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i, chunk in enumerate(data.event_chunks()):
            if pending is not None:
                written["events"] += pending.result()
            say("writing events", 5 + i, total)
            pending = pool.submit(db.bulk_append, engine, "events", chunk)
        if pending is not None:
            written["events"] += pending.result()
    say("building indexes", total - 1, total)
    _create_indexes(engine)
    db.build_search_index(engine)
    data.manifest["dataset"]["rows"] = written
    db.set_meta(engine, "demo", data.info)
    db.set_meta(engine, "ground_truth", data.manifest)
    db.bump_data_version(engine, events_rewritten=True)
    say("done", total, total)
    return data.manifest
