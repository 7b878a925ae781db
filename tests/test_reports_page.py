"""The Reports page through Streamlit's AppTest, on the small demo in SQLite."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from tests.helpers import open_page

ROOT = Path(__file__).resolve().parent.parent


def _page(monkeypatch, url: str, **params: str) -> AppTest:
    return open_page(monkeypatch, url, "pages/reports.py", params=params)


def _shown(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [t.value for t in at.text]
    parts += [c.value for c in at.caption]
    for frame in at.dataframe:
        parts += frame.value.astype(str).to_numpy().ravel().tolist()
    return "\n".join(parts)


def test_the_leadership_brief_of_the_scam_week(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, week="2026-W17")
    assert not at.exception
    titles = [h.value for h in at.subheader]
    assert titles[0] == "Headline" and "Top movers" in titles
    shown = _shown(at)
    assert "insurance" in shown or "verification" in shown  # the emerging scam topic
    # Its significant mover, in words ("Other: 40 cases against a 4-week mean ..."),
    # never as a key.
    assert "category=other" not in shown
    assert re.search(r"Other(?: · [A-Z][\w -]*)?: [\d,]+ cases against a 4\\?-week mean", shown)
    downloads = {b.proto.label for b in at.get("download_button")}
    assert downloads == {"Download HTML", "Download Markdown"}
    assert "2026-W17 (leadership)" in at.caption[0].value


def test_the_product_brief_hides_text_ids_and_small_counts(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, week="2026-W08", **{"reports.audience": "product"})
    assert not at.exception
    assert "2026-W08 (product)" in at.caption[0].value
    shown = _shown(at)
    assert "hidden" in shown
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        texts = conn.execute(select(models.Case.description)).scalars().all()
    engine.dispose()
    assert not any(t[:40] in shown for t in texts)
    truth = database.get_meta(database.make_engine(small_db), "ground_truth")
    ring = next(s for s in truth["scenarios"] if s["kind"] == "fake_review_ring")
    assert not any(str(a) in shown.split() for a in ring["account_ids"])
    for frame in at.dataframe:
        for column in frame.value.columns:
            assert "account" not in column.lower() and "case id" not in column.lower()


def test_a_note_opens_the_brief_as_plain_text(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db)
    note = "Escalate the <b>FL</b> ring to legal. **now**"
    at.text_area(key="reports_note").set_value(note).run()
    assert not at.exception
    assert at.text[0].value == note
    assert not any("<b>" in m.value for m in at.markdown)


def test_a_bad_audience_in_the_url_falls_back_to_leadership(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, **{"reports.audience": "<script>"})
    assert not at.exception
    assert any("Ignored audience" in w.value for w in at.warning)
    assert "(leadership)" in at.caption[0].value


def test_the_product_brief_says_the_sidebar_filters_are_not_applied(monkeypatch, small_db) -> None:
    at = _page(
        monkeypatch,
        small_db,
        week="2026-W17",
        platform="ios",
        region="FL",
        **{"reports.audience": "product"},
    )
    assert not at.exception
    notes = [i.value for i in at.info]
    assert notes == [
        "The product brief always covers the whole platform; the sidebar filters "
        "(region FL; platform ios) are not applied to it."
    ]
    shown = _shown(at)
    assert "New cases: 111," in shown  # the whole platform's total, not iOS in Florida's
    assert "filters: all data" in at.caption[0].value


def test_the_preview_shows_the_q_values_behind_each_verdict(monkeypatch, small_db) -> None:
    """The preview has no hover: each verdict carries the numbers behind it (the HTML
    brief's hover text) in its cell."""
    at = _page(monkeypatch, small_db, week="2026-W17")
    assert not at.exception
    tables = [f.value for f in at.dataframe if "Significance" in f.value.columns]
    assert len(tables) >= 2  # the headline KPIs and the movers, at least
    cells = [c for frame in tables for c in frame["Significance"]]
    verdict = r"(not )?significant( \(vs [^)]+\))?"
    number = r"[pq] [=<] [\d.]+ vs (previous week|4-week mean)"
    shape = rf"{verdict} \({number}(, {number})*\)"
    assert [c for c in cells if not re.fullmatch(shape, c)] == []
