"""Evaluation of the anomaly scan against the demo's ground truth (the manifest).

Every slice the scan covers (case volume by one and two dimensions, daily and weekly;
events of every kind overall, by region and by platform, daily and weekly) is scored
over the whole history. Incidents are then matched to the injected scenarios: an
incident matches a scenario when its slice shares a dimension with one of the
scenario's slices, agrees on every dimension they share, and overlaps the scenario's
dates (a week of slack after the end, four weeks after an open-ended start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine

from analytics.core.filters import Filters
from analytics.core.slices import parse_slice
from analytics.detectors import clusters, rings
from analytics.detectors.account_features import account_features
from analytics.detectors.account_scores import precision_at_k, score_accounts
from analytics.sources import load
from analytics.sources.pushdown import case_texts

__all__ = [
    "WARM_UP_DAYS",
    "account_table",
    "emerging_replay",
    "match_scenarios",
    "ring_recovery",
    "scenario_table",
]

#: Days at the start of the history during which no series can alert yet.
WARM_UP_DAYS = 42

_AFTER = timedelta(days=7)
_OPEN_ENDED = timedelta(days=28)


def _compatible(incident: Mapping[str, str], scenario: Mapping[str, str]) -> bool:
    shared = set(incident) & set(scenario)
    return bool(shared) and all(incident[k] == scenario[k] for k in shared)


def _contains(incident: Mapping[str, str], scenario: Mapping[str, str]) -> bool:
    """The incident's slice is an aggregate over the scenario's: no dimension disagrees."""
    return all(scenario.get(k, v) == v for k, v in incident.items() if k in scenario) and not (
        set(incident) & set(scenario)
    )


def match_scenarios(
    incidents: pl.DataFrame, scenarios: Sequence[Mapping[str, Any]]
) -> pl.DataFrame:
    """Each incident with the scenario it matches (``scenario``, null when none).

    >>> inc = pl.DataFrame({"slice": ["kind=review_posted|region=FL", "region=TX"],
    ...     "start": [datetime(2026, 9, 10)] * 2, "end": [datetime(2026, 9, 11)] * 2,
    ...     "freq": ["daily"] * 2})
    >>> truth = [{"kind": "fake_review_ring", "start": "2026-09-10T00:00:00",
    ...     "end": "2026-09-22T00:00:00", "slices": [{"region": "FL",
    ...     "event_kind": "review_posted"}]}]
    >>> match_scenarios(inc, truth)["scenario"].to_list()
    ['fake_review_ring', None]
    """
    names: list[str | None] = []
    echoes: list[str | None] = []
    for row in incidents.select("slice", "start", "end", "freq").iter_rows(named=True):
        names.append(_scenario_of(row, scenarios))
        echoes.append(_scenario_of(row, scenarios, echo=True))
    return incidents.with_columns(
        scenario=pl.Series(names, dtype=pl.String),
        echo_of=pl.Series(echoes, dtype=pl.String),
    )


def _scenario_of(
    row: Mapping[str, Any], scenarios: Sequence[Mapping[str, Any]], *, echo: bool = False
) -> str | None:
    """The scenario an incident detects; with ``echo``, the one whose dates it overlaps
    on a slice that contains the scenario's (an aggregate such as "all" or "platform=web"
    that moved because the scenario did)."""
    piece = parse_slice(row["slice"])
    span = timedelta(days=7 if row["freq"] == "weekly" else 1)
    for scenario in scenarios:
        begin = datetime.fromisoformat(scenario["start"])
        finish = (
            datetime.fromisoformat(scenario["end"]) + _AFTER
            if scenario.get("end")
            else begin + _OPEN_ENDED
        )
        if not (row["start"] < finish and row["end"] + span > begin - timedelta(days=1)):
            continue
        for wanted in scenario.get("slices") or [scenario.get("slice") or {}]:
            renamed = {("kind" if k == "event_kind" else k): v for k, v in wanted.items()}
            if _compatible(piece, renamed) or (echo and _contains(piece, renamed)):
                return str(scenario["kind"])
    return None


def scenario_table(
    matched: pl.DataFrame, scenarios: Sequence[Mapping[str, Any]], *, days: int
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Per scenario: detected or not (or explained, or not alerted, as it must be).

    Returns the table and the summary: precision (alerted incidents that match a
    scenario), recall (detectable scenarios detected) and unexplained false alerts per
    90 days.
    """
    alerted = matched.filter("alerted")
    rows = []
    detectable = detected = 0
    for scenario in scenarios:
        kind = str(scenario["kind"])
        mine = matched.filter(pl.col("scenario") == kind)
        mine_alerted = mine.filter("alerted")
        if kind == "policy_change":
            ok = mine_alerted.is_empty()
            verdict = (
                f"explained ({mine.height - mine_alerted.height} incident(s) explained)"
                if ok
                else f"ALERTED {mine_alerted.height} time(s)"
            )
        elif kind == "ingestion_outage":
            rises = mine_alerted.filter(pl.col("direction") == "up")
            falls = mine_alerted.filter(pl.col("direction") == "down")
            ok = rises.is_empty()
            verdict = "not alerted as a spike" if ok else f"ALERTED {rises.height} time(s)"
            if not falls.is_empty():
                first = falls.sort("start").row(0, named=True)
                verdict += f"; the missing data alerted as a fall ({first['slice']})"
        else:
            detectable += 1
            ok = not mine_alerted.is_empty()
            detected += ok
            if ok:
                first = mine_alerted.sort("start").row(0, named=True)
                lag = (first["start"] - datetime.fromisoformat(scenario["start"])).days
                verdict = f"detected day {lag} ({first['slice']}, {first['freq']})"
            else:
                verdict = "MISSED"
        rows.append({"scenario": kind, "ok": ok, "result": verdict, "incidents": mine.height})
    false_alerts = alerted.filter(pl.col("scenario").is_null(), pl.col("echo_of").is_null()).height
    echoes = alerted.filter(pl.col("scenario").is_null(), pl.col("echo_of").is_not_null()).height
    summary = {
        "precision": (alerted.height - false_alerts - echoes) / alerted.height
        if alerted.height
        else 1.0,
        "recall": detected / detectable if detectable else 1.0,
        "alerts": float(alerted.height),
        "false_alerts": float(false_alerts),
        "echo_alerts": float(echoes),
        "false_per_90_days": false_alerts / (days / 90),
    }
    return pl.DataFrame(rows), summary


def emerging_replay(
    engine: Engine,
    scenarios: Sequence[Mapping[str, Any]],
    *,
    before: int = 28,
    history: timedelta = timedelta(days=90),
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Replay :func:`analytics.detectors.clusters.find_emerging` day by day around the new scam.

    ``as_of`` runs from ``before`` days before the scam's start to its end. Returns the
    emerging clusters of every day (``as_of``, ``cluster_id``, ``top_terms``,
    ``recent_count``, ``scenario``: the injected scenario most of its recent cases
    belong to, or null) and a summary: ``detection_day`` (days from the start to the
    first ``as_of`` with an emerging cluster holding most of the scam's cases so far),
    ``share`` (that cluster's share of them), ``share_at_end`` (the same, on the last
    day), and ``unmatched`` (emerging clusters matching no scenario, counted once per
    cluster and day).
    """
    scam = next((s for s in scenarios if s["kind"] == "new_scam"), None)
    summary: dict[str, Any] = {"detection_day": None, "share": None, "share_at_end": None}
    if scam is None:
        return pl.DataFrame(), {**summary, "unmatched": 0}
    start = datetime.fromisoformat(scam["start"])
    end = datetime.fromisoformat(scam["end"] or scam["start"])
    first = start - timedelta(days=before)
    cases = case_texts(engine, Filters(), start=first - history, end=end)
    owner = pl.DataFrame(
        [(cid, str(s["kind"])) for s in scenarios for cid in s.get("case_ids") or []],
        schema={"case_id": pl.Int64, "scenario": pl.String},
        orient="row",
    ).unique("case_id")
    scam_ids = pl.Series(scam["case_ids"], dtype=pl.Int64)
    days, found = (end - first).days, []
    for offset in range(days + 1):
        as_of = first + timedelta(days=offset)
        flagged, members = clusters.find_emerging(cases, as_of=as_of, history=history)
        emerging = flagged.filter("is_emerging")
        recent = members.filter("recent").join(owner, on="case_id", how="left")
        matched = (
            recent.group_by("cluster_id")
            .agg(pl.col("scenario").drop_nulls().mode().first(), _n=pl.len(),
                 _hit=pl.col("scenario").is_not_null().sum())
            .with_columns(
                scenario=pl.when(pl.col("_hit") * 2 > pl.col("_n")).then("scenario")
            )
        )  # fmt: skip
        found.append(
            emerging.join(matched.select("cluster_id", "scenario"), on="cluster_id", how="left")
            .select("cluster_id", "top_terms", "recent_count", "scenario")
            .with_columns(as_of=pl.lit(as_of))
        )
        so_far = members.filter(pl.col("case_id").is_in(scam_ids.implode()))
        if so_far.is_empty():
            continue
        best = so_far.group_by("cluster_id").len().sort("len", "cluster_id").row(-1)
        share = best[1] / so_far.height
        if offset == days:
            summary["share_at_end"] = share
        if (
            summary["detection_day"] is None
            and share > 0.5
            and best[0] in set(emerging["cluster_id"].to_list())
        ):
            summary["detection_day"] = (as_of - start).days
            summary["share"] = share
    table = pl.concat(found, how="diagonal_relaxed")
    summary["unmatched"] = table.filter(pl.col("scenario").is_null()).height
    return table, summary


def account_table(
    engine: Engine, scenarios: Sequence[Mapping[str, Any]], *, k: int = 50
) -> pl.DataFrame:
    """Precision@k of account scoring for the ring, the takeover wave and both.

    The window runs from the first to the last of the scenarios that name accounts.
    """
    named = [s for s in scenarios if s.get("account_ids")]
    if not named:
        return pl.DataFrame(
            schema={"accounts": pl.String, "truth": pl.Int64, "precision": pl.Float64}
        )
    start = min(datetime.fromisoformat(s["start"]) for s in named)
    end = max(datetime.fromisoformat(s["end"] or s["start"]) for s in named)
    frames = load.snapshot_frames(engine)
    features = account_features(
        frames["events"],
        frames["accounts"].collect(),
        frames["cases"].collect(),
        start=start,
        end=end,
    )
    scored = score_accounts(features)
    groups = [(str(s["kind"]), set(s["account_ids"])) for s in named]
    groups.append((" + ".join(g for g, _ in groups), set().union(*(ids for _, ids in groups))))
    return pl.DataFrame(
        [
            {
                "accounts": name,
                "truth": len(ids),
                "precision": precision_at_k(scored, ids, k=k),
            }
            for name, ids in groups
        ]
    )


def ring_recovery(
    engine: Engine,
    scenarios: Sequence[Mapping[str, Any]],
    *,
    window: timedelta = timedelta(days=14),
) -> pl.DataFrame:
    """How much of the fake-review ring :func:`analytics.detectors.rings.find_rings` recovers.

    Rings are found over ``window`` as of three moments of the ring scenario: its start
    (its accounts have been logging in from the shared devices for six days), a week
    into the burst and its end. Per moment: ``truth`` (the ring's accounts), ``rings``
    found and ``flagged`` (growing), ``recovered`` (the share of the ring's accounts in
    the single flagged ring holding most of them; 0 when none is flagged; target at least
    0.9), ``best_size`` and ``purity`` (that ring's size and its share of ring accounts),
    ``found_in_one`` (the same share over all rings, flagged or not) and
    ``false_flagged`` (flagged rings holding none of the ring's accounts). Empty without
    the scenario.
    """
    schema: dict[str, Any] = {
        "moment": pl.String,
        "as_of": pl.Datetime("us"),
        "truth": pl.Int64,
        "rings": pl.Int64,
        "flagged": pl.Int64,
        "recovered": pl.Float64,
        "best_size": pl.Int64,
        "purity": pl.Float64,
        "found_in_one": pl.Float64,
        "false_flagged": pl.Int64,
    }
    ring = next((s for s in scenarios if s["kind"] == "fake_review_ring"), None)
    if ring is None or not ring.get("account_ids"):
        return pl.DataFrame(schema=schema)
    truth = pl.Series(ring["account_ids"], dtype=pl.Int64).unique()
    start = datetime.fromisoformat(ring["start"])
    end = datetime.fromisoformat(ring["end"] or ring["start"])
    people, cases = rings.ring_facts(engine)
    rows = []
    for moment, as_of in (
        ("start", start),
        ("start + 7 days", start + timedelta(days=7)),
        ("end", end),
    ):
        links = rings.ring_links(engine, start=as_of - 2 * window, end=as_of)
        found, members = rings.find_rings(
            links, as_of=as_of, window=window, accounts=people, cases=cases
        )
        hits = members.group_by("ring_id").agg(
            hits=pl.col("account_id").is_in(truth.implode()).sum().cast(pl.Int64)
        )
        table = found.join(hits, on="ring_id", how="left").sort(
            ["hits", "score", "ring_id"], descending=[True, True, False]
        )
        flagged = table.filter("is_growing")
        best = flagged.row(0, named=True) if flagged.height else None
        rows.append(
            {
                "moment": moment,
                "as_of": as_of,
                "truth": truth.len(),
                "rings": table.height,
                "flagged": flagged.height,
                "recovered": best["hits"] / truth.len() if best else 0.0,
                "best_size": best["size"] if best else None,
                "purity": best["hits"] / best["size"] if best else None,
                "found_in_one": (table.select(pl.col("hits").max()).item() or 0) / truth.len(),
                "false_flagged": flagged.filter(pl.col("hits") == 0).height,
            }
        )
    return pl.DataFrame(rows, schema=schema)
