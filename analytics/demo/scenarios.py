"""The five injected scenarios: who and when, their annotations, and the ground truth.

A fake-review ring, an account-takeover wave, a new scam, a policy change and an
ingestion outage. :func:`draw_scenarios` picks their days and accounts;
:func:`build_annotations` writes the known events (holidays, the policy change, a
product launch); :func:`build_manifest` records what was injected, where and when, so
that the evaluation can score the detectors against it. The scenarios' cases and
events themselves are drawn in :mod:`analytics.demo.cases` and
:mod:`analytics.demo.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from analytics.core.models import AnnotationKind, Category
from analytics.demo.calendar import Calendar, scenario_days
from analytics.demo.tuning import Scale

__all__ = ["Scenarios", "build_annotations", "build_manifest", "draw_scenarios"]


@dataclass
class Scenarios:
    """The scenarios' start days (from the window's start), the ring's accounts and the
    providers it targets, the takeover's victims, and the policy and launch effects."""

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


def draw_scenarios(
    rng: np.random.Generator, sc: Scale, cal: Calendar, acc: pl.DataFrame
) -> Scenarios:
    """Where and on whom the scenarios happen: the days of :func:`scenario_days`, up to four
    established Florida providers for the ring, and the takeover's victims among the
    patients who joined more than 60 days before it."""
    idx = scenario_days(cal)
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
    return Scenarios(
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


def build_annotations(cal: Calendar, scen: Scenarios) -> pl.DataFrame:
    """The known events: US holidays, the harassment policy change and the messaging
    launch, numbered in order of start."""
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


def _iso(cal: Calendar, day: float) -> str:
    return (cal.start + timedelta(days=day)).isoformat()


def build_manifest(
    cal: Calendar,
    scen: Scenarios,
    cases: pl.DataFrame,
    annotations: pl.DataFrame,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The ground truth: ``meta`` (the data set) and, for each scenario, its kind,
    description, dates, slices, and the accounts and cases it involves."""

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
