"""The app on a team's own database (issue 20): with ``LOOKOUT_SOURCE_MAP`` set, a page
run starts the copy through the map in the background; once it has landed the pages show
the team's data, and a copy that fails says why on the page instead of failing quietly."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from analytics.demo.helpdesk import build_helpdesk, helpdesk_map
from tests.helpers import HANG_S, open_page
from ui import data

pytestmark = pytest.mark.slow


def _wait_for_the_copy(url: str) -> None:
    _started, process, _errors = data._SYNCS[url]
    process.wait(timeout=HANG_S)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_app_copies_through_the_map_and_tells_a_failure(
    tmp_path: Path, small_demo_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    frames = build_helpdesk(team, f"sqlite:///{small_demo_file}")
    path = tmp_path / "helpdesk.toml"
    path.write_text(helpdesk_map(team), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'lookout.db'}"
    models.init_db(database.make_engine(url))
    monkeypatch.setenv("LOOKOUT_SOURCE_MAP", str(path))
    monkeypatch.setenv("LOOKOUT_SYNC_EVERY", "0")
    monkeypatch.setenv("LOOKOUT_QUARANTINE_DIR", str(tmp_path))
    data._SYNCS.pop(url, None)
    data._SYNC_FAILED.pop(url, None)

    # The first run starts the copy; the database is still empty.
    at = open_page(monkeypatch, url, "pages/home.py", role="leadership")
    assert not at.exception
    _wait_for_the_copy(url)
    data._state.clear()
    at = open_page(monkeypatch, url, "pages/home.py", role="leadership")
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    cases = frames["tickets"].height - 22  # the fake-9star tickets are held back
    assert _metrics(at)["Cases"] == f"{cases:,}"
    assert _metrics(at)["Events"] == f"{frames['activity'].height:,}"

    # The map breaks: the next copy fails, and the page says why, with the last copy shown.
    _wait_for_the_copy(url)
    path.write_text(helpdesk_map(team).replace('id = "ticket_id"', 'id = "ticket_number"'))
    open_page(monkeypatch, url, "pages/home.py", role="leadership")
    _wait_for_the_copy(url)
    at = open_page(monkeypatch, url, "pages/home.py", role="leadership")
    assert not at.exception
    told = [w.value for w in at.warning]
    assert len(told) == 1
    assert told[0].startswith(
        "The copy of the team's data through the source map failed; the pages show the last copy. "
    )
    assert "ticket_number" in told[0]
    assert _metrics(at)["Cases"] == f"{cases:,}"


def test_a_record_from_the_future_is_told(
    tmp_path: Path, small_demo_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong time zone in a map dates records after now: the Overview warns, never
    "-4 hours old"."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from tests.helpers import copy_small_demo

    url = copy_small_demo(small_demo_file, tmp_path)
    ahead = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(hours=5, minutes=1)
    engine = database.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET ts = :ts WHERE id = 1"), {"ts": ahead})
    engine.dispose()
    monkeypatch.delenv("LOOKOUT_SOURCE_MAP", raising=False)
    at = open_page(monkeypatch, url, "pages/home.py", role="leadership")
    assert not at.exception
    told = [w.value for w in at.warning if w.value.startswith("Freshness")]
    assert len(told) == 1
    assert told[0].endswith(
        " is dated 5 hours ahead of now: check the time zones of the source or its clocks."
    )
    assert not [c.value for c in at.caption if c.value.startswith("Freshness")]


def test_two_sessions_at_once_start_one_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions are threads of one process: arriving together, they start one copy."""
    import threading

    monkeypatch.setenv("LOOKOUT_SOURCE_MAP", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("LOOKOUT_SYNC_EVERY", "3600")
    url = f"sqlite:///{tmp_path / 'lookout.db'}"
    data._SYNCS.pop(url, None)
    started: list[object] = []
    real = data.subprocess.Popen

    def popen(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - counts the real starts
        started.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(data.subprocess, "Popen", popen)
    gate = threading.Barrier(8)

    def session() -> None:
        gate.wait()
        data._sync_later(url)

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _wait_for_the_copy(url)
    assert len(started) == 1


def test_a_failed_copy_tells_no_database_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every signed-in role reads the banner: the team's database host never shows."""
    path = tmp_path / "helpdesk.toml"
    team = "postgresql+psycopg://team:s3cret@db.internal.example:5999/helpdesk"
    path.write_text(helpdesk_map(team), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'lookout.db'}"
    models.init_db(database.make_engine(url))
    monkeypatch.setenv("LOOKOUT_SOURCE_MAP", str(path))
    monkeypatch.setenv("LOOKOUT_SYNC_EVERY", "0")
    data._SYNCS.pop(url, None)
    data._SYNC_FAILED.pop(url, None)
    open_page(monkeypatch, url, "pages/home.py", role="product")
    _wait_for_the_copy(url)
    at = open_page(monkeypatch, url, "pages/home.py", role="product")
    assert not at.exception
    told = " ".join(i.value for i in at.info)
    assert told.startswith("The copy of the team's data through the source map failed")
    assert "cannot open their database" in told
    assert "db.internal" not in told and "s3cret" not in told and "team:" not in told
