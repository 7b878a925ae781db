"""The Weekly Trends page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import distinct, func, select
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from analytics.core.filters import Filters
from analytics.core.models import Case
from analytics.views import trends as trend_view
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
    assert delta == f"{'+' if change >= 0 else '-'}{abs(change):,} vs last week"


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


def _traces(at: AppTest, key: str) -> list[dict]:
    (chart,) = [c for c in at.get("plotly_chart") if c.key == key]
    return json.loads(chart.proto.spec)["data"]


def test_every_card_gives_its_verdict_against_last_week_and_the_4_week_mean(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    verdicts = [c.value for c in at.caption if "4-week mean (" in c.value]
    # W17 is complete: the cards whose values are complete enough carry a verdict on both
    # baselines, the others their projection; none says "noise".
    projected = [c.value for c in at.caption if c.value.startswith("So far.")]
    assert len(verdicts) + len(projected) == 11
    assert verdicts and all(
        v.startswith(("**Significant** vs ", "Not significant vs last week or"))
        and "4-week mean" in v
        for v in verdicts
    )
    assert not [m for m in at.metric if m.delta and "noise" in m.delta]


def test_the_week_in_progress_shows_so_far_and_projected_and_is_not_tested(monkeypatch, small_db):
    # The small demo ends Friday 1 May 00:00: W18 has four of its seven days.
    at = _page(monkeypatch, small_db, week="2026-W18")
    assert not at.exception
    so_far = _count(small_db, week=(datetime(2026, 4, 27), datetime(2026, 5, 4)))
    card = next(m for m in at.metric if m.label == "New cases")
    assert card.value == f"{so_far:,}" and not card.delta  # no change, no test
    projected = [c.value for c in at.caption if c.value.startswith("So far. Projected **")]
    assert projected and all("(range " in p and p.endswith("not tested yet.") for p in projected)
    assert "still in progress" in at.info[0].value
    # Its movers are listed untested, without q-values.
    movers = at.dataframe[0].value
    assert set(movers["against"]) == {"not tested"} and "q" not in movers.columns
    # The weekly chart draws W18 as a projection with its range, never as a real value.
    traces = _traces(at, "weekly")
    line = next(t for t in traces if t["name"] == "weekly value")
    assert not any(str(x).startswith("2026-04-27") for x in line["x"])
    mark = next(t for t in traces if t["name"] == "projected")
    assert [str(x)[:10] for x in mark["x"]] == ["2026-04-27"]
    assert mark["y"][0] > so_far and mark["error_y"]["array"][0] > 0
    assert not any(t["type"] == "bar" for t in traces)
    # The heatmap leaves the unfinished week out rather than drawing a pale column.
    heat = _traces(at, "heatmap")[0]
    assert not any(str(x).startswith("2026-04-27") for x in heat["x"])


def test_the_movers_compare_with_both_baselines_in_words(monkeypatch, small_db):
    at = _page(monkeypatch, small_db)
    assert not at.exception
    table = at.dataframe[0]
    movers = table.value
    assert {"slice", "current", "last_week", "baseline", "against"} <= set(movers.columns)
    assert "q" not in movers.columns  # the verdict in words; the number is in the brief
    assert "share_of_change" not in movers.columns
    assert set(movers["against"]) <= {"both", "last week", "4-week mean", "neither"}
    assert not any("=" in s for s in movers["slice"])  # "Other · OB-GYN", never a key
    for column in ("last_week", "change_week", "change_4w"):  # no blank or "None" cells
        assert movers[column].notna().all()
    assert all(c == "new" or c == "–" or c.endswith("%") for c in movers["change_week"])
    # The words are the tests' verdicts: the same slices, computed apart from the page.
    engine = database.make_engine(small_db)
    view = trend_view.movers(
        engine,
        Filters(start=date(2026, 1, 1), end=date(2026, 4, 30)),
        week=WEEK[0].date(),
        count="cases",
        role="leadership",
    ).head(len(movers))
    engine.dispose()
    assert list(movers["slice"]) == view["slice"].to_list()
    assert list(movers["against"]) == view["against"].to_list()
    assert "4-week mean" in set(movers["against"]) or "both" in set(movers["against"])
    significant = view.filter(pl.col("against") != "neither")
    assert (significant["q"] < 0.05).all()
    assert (view.filter(pl.col("against") == "neither")["q"] >= 0.05).all()
