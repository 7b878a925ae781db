"""The evaluation against the demo's ground truth, on the small demo."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from analytics import db, demo, evaluation

END = date(2026, 5, 1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('eval') / 'lookout.db'}")
    truth = demo.seed_database(engine, scale="small", seed=7, days=240, end=END)
    yield engine, truth
    engine.dispose()


def test_scenarios_are_matched_and_only_rises_alert(small):
    engine, truth = small
    start = date.fromisoformat(truth["dataset"]["window_start"][:10])
    incidents = evaluation.scan_history(engine, start=start, end=END)
    assert set(incidents["source"]) <= {"cases", "events", "detections"}
    assert {"cases", "events"} <= set(incidents["source"])
    assert set(incidents["freq"]) == {"daily", "weekly"}
    alerted = incidents.filter("alerted")
    # Volumes alert when they rise; automated detections when they fall.
    assert set(alerted.filter(pl.col("source") != "detections")["direction"]) == {"up"}
    assert set(alerted.filter(pl.col("source") == "detections")["direction"]) <= {"down"}
    matched = evaluation.match_scenarios(incidents, truth["scenarios"])
    table, summary = evaluation.scenario_table(
        matched, truth["scenarios"], days=(END - start).days - evaluation.WARM_UP_DAYS
    )
    verdicts = dict(zip(table["scenario"], table["ok"], strict=True))
    assert verdicts["ingestion_outage"] and verdicts["policy_change"]
    assert verdicts["account_takeover_wave"]
    assert 0.0 <= summary["precision"] <= 1.0 and summary["alerts"] >= 1


def test_the_new_scam_emerges_as_one_cluster_within_a_week(small):
    engine, truth = small
    table, summary = evaluation.emerging_replay(engine, truth["scenarios"])
    assert summary["detection_day"] is not None and 0 <= summary["detection_day"] <= 7
    assert summary["share"] >= 0.8
    # Every emerging cluster of the replay is reported, matched to a scenario or not.
    assert summary["unmatched"] == table.filter(pl.col("scenario").is_null()).height
    assert "new_scam" in set(table["scenario"].drop_nulls())
    scam = next(s for s in truth["scenarios"] if s["kind"] == "new_scam")
    flagged = table.filter(pl.col("scenario") == "new_scam")["as_of"].min()
    assert flagged.date() >= date.fromisoformat(scam["start"][:10])  # never before it began
