"""The Emerging Threats page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from streamlit.testing.v1 import AppTest

from analytics.core import database
from analytics.core.calendar import parse_week
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.views import emerging
from tests.helpers import open_page
from tests.page_checks import NONE, headers_fit, rendered_text, tables_say_no_none

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
    # The topic is named by its phrase, with a capital (the id only in the small print).
    assert top["name"] == emerging.topic_name(top["label"]) == view.topic(chosen).name
    assert [h.value for h in at.subheader][0] == top["name"]
    assert not top["name"].startswith("Topic ")
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
    row = first.dataframe[0].value.iloc[3]
    other = int(row["cluster_id"])
    at = _page(monkeypatch, small_db, **{"emerging.cluster": str(other)})
    assert not at.exception
    assert at.subheader[0].value == row["name"]


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
    # No week within 12 of it (the data start 16 weeks around) has a ring either: the
    # review ring starts in February.
    assert any(re.fullmatch(r"No ring in the \d+ weeks around this one either\.", m.value)
               for m in at.markdown)  # fmt: skip


# --------------------------------------------------------------- plain words (issue 18)


def test_topics_are_named_by_their_phrase_on_the_table_the_story_and_the_map(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    table = at.dataframe[0]
    topics = table.value
    assert list(table.proto.column_order)[0] == "name"  # the name leads; no bare id shown
    assert "cluster_id" not in table.proto.column_order
    assert (topics["name"] == topics["label"].map(emerging.topic_name)).all()
    top = topics.iloc[0]
    assert top["status"] == "New" and top["name"] == emerging.topic_name(top["label"])
    # The map names the emerging topic (and at most 6 in all) beside its bubble, on
    # boxes that do not meet; the other bubbles name it on hover.
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "emerging_map"]
    spec = json.loads(chart.proto.spec)
    labels = [a["text"].replace("<br>", " ") for a in spec["layout"].get("annotations", [])]
    assert top["name"] in labels and 1 <= len(labels) <= 6
    emerging_names = set(topics.loc[topics["status"] != "", "name"])
    assert emerging_names <= set(labels)  # every emerging topic is named
    hovers = [h for trace in spec["data"] for h in trace["hovertext"]]
    assert len(hovers) == len(topics) and any(top["name"] in h for h in hovers)
    # Long text wraps (rows of three lines) and every header is whole.
    assert table.proto.row_height > 64
    headers_fit(at)
    tables_say_no_none(at)
    assert not [t for t in rendered_text(at) if NONE.search(t)]


def _rings_of(url: str, monday: date) -> int:
    engine = database.make_engine(url)
    try:
        found = emerging.ring_view(
            engine, as_of=datetime.combine(monday, datetime.min.time()) + timedelta(days=7),
            role=Role.associate,
        )  # fmt: skip
    finally:
        engine.dispose()
    return found.rings.height


def test_a_week_without_rings_names_the_weeks_that_have_them(monkeypatch, small_db):
    # The default week (20-26 Apr 2026) has no ring; the review ring is of Feb to April.
    at = _page(monkeypatch, small_db)
    assert not at.exception
    assert any("No ring of three or more" in i.value for i in at.info)
    hint = next(m.value for m in at.markdown if m.value.startswith("Rings found in the weeks of"))
    named = re.findall(r"(\d+ \w{3}) \((\d+)\)", hint)
    assert len(named) == 6  # the six nearest weeks that have rings
    links = {
        lk.proto.label: dict(parse_qsl(lk.proto.query_string))
        for lk in at.get("page_link")
        if lk.proto.page == "emerging" and lk.proto.label.startswith("Week of ")
    }
    assert len(links) == len(named)
    counts = dict(named)
    for label, params in links.items():
        monday = parse_week(params["week"])
        day = f"{monday.day} {monday:%b}"
        assert label.startswith(f"Week of {monday.day}") and day in counts
        # Each week named really has that many rings, found apart from the page.
        assert _rings_of(small_db, monday) == int(counts.pop(day)) > 0
    assert not counts  # one link per week named
    # A week between them that is not named has none; and a link opens its week's rings.
    assert "9 Mar" not in hint and _rings_of(small_db, date(2026, 3, 9)) == 0
    week = next(iter(links.values()))["week"]
    ringed = _page(monkeypatch, small_db, week=week)
    assert not ringed.exception
    assert any("ring_id" in d.value.columns for d in ringed.dataframe)
    headers_fit(ringed)
    tables_say_no_none(ringed)
    assert not [t for t in rendered_text(ringed) if NONE.search(t)]
