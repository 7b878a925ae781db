"""The Weekly Trends page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import distinct, func, select
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from analytics.core.models import Case
from tests.helpers import open_page

ROOT = Path(__file__).resolve().parent.parent
# The small demo ends 2026-05-01 00:00 (a Friday): 2026-W18 is in progress, so the
# page opens on 2026-W17 (Monday 20 April).
WEEK = (datetime(2026, 4, 20), datetime(2026, 4, 27))


def _count(url: str, *where, what=None, week=WEEK) -> int:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            select(what if what is not None else func.count()).where(
                Case.opened_at >= week[0], Case.opened_at < week[1], *where
            )
        ).scalar_one()
    engine.dispose()
    return int(n)


def _page(monkeypatch, url: str, **params: str) -> AppTest:
    return open_page(monkeypatch, url, "pages/trends.py", params=params)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_page_renders_the_week_with_cards_charts_and_movers(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["New cases"] == f"{_count(small_db):,}"
    assert {"Proactive rate", "SLA breach rate", "Open backlog", "Repeat offenders"} <= set(metrics)
    assert at.selectbox(key="filter_week").value == date(2026, 4, 20)
    assert {c.key for c in at.get("plotly_chart")} == {
        "daily",
        "weekly",
        "heatmap",
        "sla",
        "durations",
        "backlog",
        "proactive",
        "prevalence",
    }
    assert len(at.dataframe) == 1
    # The New cases card's delta: this week's count minus last week's, counted apart.
    change = _count(small_db) - _count(small_db, week=(datetime(2026, 4, 13), WEEK[0]))
    delta = next(m.delta for m in at.metric if m.label == "New cases")
    number, _, verdict = delta.partition(" · ")
    assert number == f"{'+' if change >= 0 else '-'}{abs(change):,}"
    assert verdict in ("significant", "noise")


def test_a_filter_change_changes_the_numbers_and_the_url(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    before = _metrics(at)["New cases"]
    at.multiselect(key="filter_category").set_value(["spam"]).run()
    assert not at.exception
    after = _metrics(at)["New cases"]
    assert after == f"{_count(small_db, Case.category == 'spam'):,}"
    assert after != before
    assert at.query_params["category"] == "spam"


def test_query_params_round_trip(monkeypatch, small_db):
    at = _page(
        monkeypatch,
        small_db,
        week="2026-W16",
        category="spam,harassment",
        region="CA",
        **{"trends.count": "subjects"},
    )
    assert not at.exception
    assert not at.warning
    assert at.selectbox(key="filter_week").value == date(2026, 4, 13)
    assert at.multiselect(key="filter_category").value == ["spam", "harassment"]
    assert at.multiselect(key="filter_region").value == ["CA"]
    expected = _count(
        small_db,
        Case.category.in_(["spam", "harassment"]),
        Case.region == "CA",
        what=func.count(distinct(Case.subject_account_id)),
        week=(datetime(2026, 4, 13), datetime(2026, 4, 20)),
    )
    assert _metrics(at)["New cases"] == f"{expected:,}"
    for key, value in (("week", "2026-W16"), ("region", "CA"), ("trends.count", "subjects")):
        assert at.query_params[key] == value


def test_invalid_query_params_are_dropped_with_a_note(monkeypatch, small_db):
    at = _page(monkeypatch, small_db, category="spam,<script>", week="2026-W99", region="ZZ")
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "Ignored category '<script>'" in notes
    assert "Ignored region 'ZZ'" in notes
    assert "Ignored week" in notes
    assert at.multiselect(key="filter_category").value == ["spam"]
    assert at.selectbox(key="filter_week").value == date(2026, 4, 20)


def test_an_empty_selection_shows_an_empty_state(monkeypatch, small_db):
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        used = set(conn.execute(select(Case.region, Case.category).distinct()).all())
    engine.dispose()
    region, category = next(
        (r, c)
        for r in models.US_STATES
        for c in ("hate_speech", "credential_misrepresentation")
        if (r, c) not in used
    )
    at = _page(monkeypatch, small_db, region=region, category=category)
    assert not at.exception
    assert "No cases match these filters" in at.info[0].value
