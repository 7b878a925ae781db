"""The app, page by page, through Streamlit's AppTest against real databases."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from analytics.core import database
from tests.helpers import app_as

ROOT = Path(__file__).resolve().parent.parent


def _run(monkeypatch, url: str) -> AppTest:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    at = app_as()
    return at.run()


def test_home_shows_counts_range_and_masked_url(monkeypatch, small_db: str) -> None:
    at = _run(monkeypatch, small_db)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    counts = database.table_counts(database.make_engine(small_db))
    assert metrics["Accounts"] == f"{counts['accounts']:,}"
    assert metrics["Events"] == f"{counts['events']:,}"
    assert metrics["Cases"] == f"{counts['cases']:,}"
    dates = next(c.value for c in at.caption if c.value.startswith("Events from "))
    assert dates.startswith("Events from 3 Sep 2025 00:02 UTC to 30 Apr 2026 23:57 UTC;")
    assert at.code[0].value == small_db


def test_home_hides_the_password(monkeypatch, pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter2@")
    at = _run(monkeypatch, url)
    assert not at.exception
    assert "hunter2" not in at.code[0].value and "***" in at.code[0].value


def test_home_with_empty_database_gives_guidance(monkeypatch, tmp_path) -> None:
    at = _run(monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}")
    assert not at.exception
    assert "python -m analytics seed" in at.info[0].value


def test_home_with_unreachable_database_shows_banner(monkeypatch) -> None:
    at = _run(monkeypatch, "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert not at.exception
    assert "Cannot read the database" in at.error[0].value
    assert "secret" not in at.error[0].value


def test_home_states_freshness(monkeypatch, small_db: str) -> None:
    at = _run(monkeypatch, small_db)
    assert any(c.value.startswith("Freshness: the newest record is") for c in at.caption)
