"""The Emerging Threats page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import small_demo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> str:
    return small_demo(tmp_path_factory.mktemp("emerging"))


def _page(monkeypatch, url: str, **params: str) -> AppTest:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("pages/emerging.py")
    return at.run()


def test_the_page_ranks_topics_and_lists_the_cases_of_one(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    topics = at.dataframe[0].value
    assert topics.shape[0] >= 5
    # Emerging topics come first, and the new scam's vocabulary leads the small demo.
    assert topics["is_emerging"].iloc[0]
    assert "insurance" in topics["terms"].iloc[0] or "verification" in topics["terms"].iloc[0]
    assert {"spark", "mix", "example"} <= set(topics.columns)
    chosen = int(topics["cluster_id"].iloc[0])
    assert at.query_params["cluster"] == str(chosen)
    assert any(f"Topic {chosen}:" in h.value for h in at.subheader)
    cases = at.dataframe[1].value
    assert cases.shape[0] >= 1
    # Descriptions are masked: no email address or phone number is shown.
    text = " ".join(cases["description"].astype(str))
    assert "@" not in text and "555-" not in text
    assert "emerging_map" in {c.key for c in at.get("plotly_chart")}


def test_a_link_reproduces_the_selected_topic(monkeypatch, small_db):
    first = _page(monkeypatch, small_db)
    other = int(first.dataframe[0].value["cluster_id"].iloc[3])
    at = _page(monkeypatch, small_db, cluster=str(other))
    assert not at.exception
    assert any(f"Topic {other}:" in h.value for h in at.subheader)


def test_a_bad_cluster_in_the_url_falls_back_to_the_top_topic(monkeypatch, small_db):
    at = _page(monkeypatch, small_db, cluster="<script>")
    assert not at.exception
    top = int(at.dataframe[0].value["cluster_id"].iloc[0])
    assert at.query_params["cluster"] == str(top)
