"""The Emerging Threats page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from analytics.core import database
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.views import emerging
from tests.helpers import open_page

ROOT = Path(__file__).resolve().parent.parent


def _page(monkeypatch, url: str, **params: str) -> AppTest:
    return open_page(monkeypatch, url, "pages/emerging.py", params=params)


def test_the_page_ranks_topics_and_lists_the_cases_of_one(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    topics = at.dataframe[0].value
    # Exactly the topics of the 90 days before the default week's end (2026-W17 ends
    # Monday 27 April at midnight), and below, every case of the chosen one.
    engine = database.make_engine(small_db)
    try:
        view = emerging.emerging_view(
            engine, Filters(), as_of=datetime(2026, 4, 27), role=Role.associate
        )
    finally:
        engine.dispose()
    assert sorted(topics["cluster_id"]) == sorted(view.clusters["cluster_id"].to_list())
    # Emerging topics come first, and the new scam's vocabulary leads the small demo.
    assert topics["status"].iloc[0] == "New"
    assert "insurance" in topics["terms"].iloc[0] or "verification" in topics["terms"].iloc[0]
    assert {"spark", "mix", "example", "label", "summary", "first_flagged"} <= set(topics.columns)
    # Every emerging topic says in one sentence what changed; the others are not marked.
    top = topics.iloc[0]
    assert f"{int(top['recent_count'])} cases in the last 7 days against" in top["summary"]
    assert set(topics["status"]) <= {"New", "Growing again", ""}
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["New topics emerging"]) == (topics["status"] == "New").sum()
    assert int(metrics["Growing again"]) == (topics["status"] == "Growing again").sum()
    chosen = int(topics["cluster_id"].iloc[0])
    assert at.query_params["emerging.cluster"] == str(chosen)
    assert any(f"Topic {chosen}: {top['label']}" == h.value for h in at.subheader)
    # The chosen topic's story: new, since when, the sentence, and its daily history.
    story = next(m.value for m in at.markdown if m.value.startswith("**New, emerging"))
    assert top["summary"] in story
    # The scam's recent cases split into strands, each with its count.
    strands = next(m.value for m in at.markdown if m.value.startswith("**Its strands"))
    assert re.search(r"\(\d+ cases\)", strands)
    assert "emerging_topic_history" in {c.key for c in at.get("plotly_chart")}
    cases = at.dataframe[1].value
    assert cases["case_id"].tolist() == view.topic_cases(chosen)["case_id"].to_list()
    # Descriptions are masked: no email address or phone number is shown.
    text = " ".join(cases["description"].astype(str))
    assert "@" not in text and "555-" not in text
    assert "emerging_map" in {c.key for c in at.get("plotly_chart")}


def test_a_link_reproduces_the_selected_topic(monkeypatch, small_db):
    first = _page(monkeypatch, small_db)
    other = int(first.dataframe[0].value["cluster_id"].iloc[3])
    at = _page(monkeypatch, small_db, **{"emerging.cluster": str(other)})
    assert not at.exception
    assert any(f"Topic {other}:" in h.value for h in at.subheader)


def test_a_bad_cluster_in_the_url_falls_back_to_the_top_topic(monkeypatch, small_db):
    at = _page(monkeypatch, small_db, **{"emerging.cluster": "<script>"})
    assert not at.exception
    top = int(at.dataframe[0].value["cluster_id"].iloc[0])
    assert at.query_params["emerging.cluster"] == str(top)


def _ring_truth(url: str) -> list[int]:
    engine = database.make_engine(url)
    try:
        truth = database.get_meta(engine, "ground_truth")
    finally:
        engine.dispose()
    (ring,) = [s for s in truth["scenarios"] if s["kind"] == "fake_review_ring"]
    return sorted(ring["account_ids"])


def test_the_ring_week_shows_the_review_ring_with_its_members_and_cases(monkeypatch, small_db):
    # The small demo's review ring starts on 15 Feb 2026; week 8 is its first full week.
    at = _page(monkeypatch, small_db, week="2026-W08")
    assert not at.exception
    rings = next(
        d.value for d in at.dataframe if "ring_id" in d.value.columns and "size" in d.value.columns
    )
    top = rings.iloc[0]
    assert bool(top["is_growing"]) and int(top["size"]) == 12
    assert at.query_params["emerging.ring"] == str(int(top["ring_id"]))
    members = next(d.value for d in at.dataframe if "age_days" in d.value.columns)
    assert sorted(members["account_id"].astype(int)) == _ring_truth(small_db)
    assert "emerging_ring_network" in {c.key for c in at.get("plotly_chart")}
    cases = at.dataframe[-1].value
    assert set(cases["subject_account_id"].astype(int)) <= set(_ring_truth(small_db))
    text = " ".join(cases["description"].astype(str))
    assert "@" not in text and "555-" not in text


def test_a_week_without_rings_says_so(monkeypatch, small_db):
    at = _page(monkeypatch, small_db, week="2025-W40")
    assert not at.exception
    assert any("No ring" in i.value for i in at.info)
