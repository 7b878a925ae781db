"""The Overview page ("This week") through Streamlit's AppTest, for every role, on the
small demo in SQLite: the week's story as the analytics tell it, with its links and the
p- and q-values on hover; the database's statistics in "About the data"."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from analytics.core.calendar import parse_week
from analytics.reports import build_brief
from analytics.reports.story import WeekStory, week_story
from tests.helpers import open_page

SCAM_WEEK = date(2026, 4, 20)  # 2026-W17, the small demo's default focus week
_CASE_PAGES = {"anomalies", "emerging", "cases"}


def _page(monkeypatch, url: str, role: str, **params: str) -> AppTest:
    return open_page(monkeypatch, url, "pages/home.py", role=role, params=params)


def _story(url: str, role: str, week: date = SCAM_WEEK) -> WeekStory:
    engine = database.make_engine(url)
    try:
        return week_story(engine, week=week, role=role)
    finally:
        engine.dispose()


def _items(at: AppTest) -> list[tuple[str, str]]:
    """Each story item as shown: its sentence (Markdown escapes removed) and its tooltip."""
    return [
        (m.value.split(" · ", 1)[1].replace("\\", ""), m.proto.help)
        for m in at.markdown
        if m.value.startswith(":material/") and "**" in m.value
    ]


def _links(at: AppTest) -> list[tuple[str, str]]:
    """The story's links (page and query), not the menu's."""
    return [
        (p.proto.page, p.proto.query_string)
        for p in at.get("page_link")
        if p.proto.query_string and "week=" in p.proto.query_string
    ]


@pytest.mark.slow
@pytest.mark.parametrize("role", ["leadership", "associate", "product", "admin"])
def test_this_week_tells_the_story_of_the_role(monkeypatch, small_db: str, role: str) -> None:
    at = _page(monkeypatch, small_db, role)
    assert not at.exception
    assert at.title[0].value == "This week · 20–26 Apr 2026"
    story = _story(small_db, role)
    assert story.items, "the scam week has something to tell"
    shown = _items(at)
    assert [text for text, _ in shown] == [i.text for i in story.items]
    assert [note for _, note in shown] == [i.note for i in story.items]
    assert any(note.startswith(("p ", "q ")) for _, note in shown)
    links = _links(at)
    assert [page for page, _ in links] == [Path(i.page).stem for i in story.items]
    assert all("week=2026-W17" in query for _, query in links)
    pages = {page for page, _ in links}
    if role == "product":
        assert pages == {"reports"}
    elif role == "admin":
        assert not pages & _CASE_PAGES
    else:
        assert pages & _CASE_PAGES
    assert "About the data" in [e.label for e in at.expander]


@pytest.mark.slow
def test_product_sees_no_row_counts_small_counts_or_case_text(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, "product")
    assert not at.exception
    labels = {m.label for m in at.metric}
    assert not labels & {"Cases", "Events", "Accounts"}
    assert "Row counts are shown to roles that see unsuppressed aggregates." in [
        c.value for c in at.caption
    ]
    shown = " ".join(m.value for m in [*at.markdown, *at.success])
    assert "incident" not in shown.lower()  # the product brief's headline names none
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        texts = conn.execute(select(models.Case.description)).scalars().all()
    engine.dispose()
    assert not any(t and t in shown for t in texts)


@pytest.mark.slow
@pytest.mark.parametrize("week", ["2026-W17", "2026-W12"])  # topics only; a rise on Reviews
def test_product_reads_the_opening_of_its_brief(monkeypatch, small_db, week: str) -> None:
    at = _page(monkeypatch, small_db, "product", week=week)
    assert not at.exception
    shown = [text for text, _ in _items(at)] + [a.value.replace("\\", "") for a in at.success]
    engine = database.make_engine(small_db)
    try:
        brief = build_brief(engine, week=parse_week(week), audience="product", role="product")
    finally:
        engine.dispose()
    headline = brief.section("headline").sentences
    assert shown and shown == list(headline[: len(shown)])
    assert headline[len(shown)].startswith("New cases: ")
    if week == "2026-W12":
        assert any(text.startswith("Reviews: Fake review rose to ") for text in shown)
    else:
        assert shown[-1].startswith("No product surface changed significantly: ")


@pytest.mark.slow
def test_leadership_sees_the_counts_in_about_the_data(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, "leadership")
    counts = database.table_counts(database.make_engine(small_db))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cases"] == f"{counts['cases']:,}"
    assert metrics["Case actions"] == f"{counts['case_actions']:,}"
    assert at.code[0].value == small_db


@pytest.mark.slow
def test_a_week_in_progress_says_so(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, "leadership", week="2026-W18")
    assert not at.exception
    assert at.title[0].value == "This week · 27 Apr–3 May 2026"
    assert at.info[0].value.startswith("27 Apr–3 May 2026 is still in progress (data up to ")
    product = _page(monkeypatch, small_db, "product", week="2026-W18")
    assert product.title[0].value == "This week · 20–26 Apr 2026"
    assert "product numbers cover complete weeks only" in product.info[0].value
