"""The demo's accounts: patients, providers and practices, the ring's fresh accounts
among them, and the sanctions their cases end in."""

from __future__ import annotations

import numpy as np
import polars as pl
from faker import Faker

from analytics.core.models import SPECIALTIES, US_STATES, AccountKind
from analytics.demo.calendar import DAY, Calendar
from analytics.demo.sampling import code_labels, sample_days
from analytics.demo.tuning import PLATFORMS, POP, Scale

__all__ = ["account_status", "draw_accounts"]


def _names(seed: int) -> tuple[np.ndarray, np.ndarray]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    first = sorted({fake.first_name() for _ in range(600)})
    last = sorted({fake.last_name() for _ in range(600)})
    return np.array(first), np.array(last)


def draw_accounts(
    rng: np.random.Generator, sc: Scale, cal: Calendar, ring_start: int, seed: int
) -> pl.DataFrame:
    """Every account: all but the ring drawn by kind, age and state, then the ring's
    Florida accounts, created a few days before ``ring_start``; names from Faker seeded
    by ``seed``. Keeps the integer codes (``kind_i``, ``region_i``, ...), ``created_day``
    and ``is_ring`` that the later draws read."""
    n = sc.accounts - sc.ring
    kind = rng.choice(3, n, p=[0.88, 0.10, 0.02])
    pre = rng.random(n) < np.where(kind == 0, 0.4, 0.7)
    created = np.where(pre, -rng.uniform(0, 3 * 365, n), sample_days(rng, cal.growth, n))
    region = rng.choice(len(US_STATES), n, p=POP)
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
        kind=code_labels("kind_i", [k.value for k in AccountKind]),
        created_at=pl.lit(start) + pl.duration(seconds=(pl.col("created_day") * DAY).round()),
        region=code_labels("region_i", US_STATES),
        specialty=pl.when(pl.col("kind_i") > 0).then(code_labels("specialty_i", SPECIALTIES)),
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
        platform=code_labels("platform_i", PLATFORMS),
    )


def account_status(acc: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
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
