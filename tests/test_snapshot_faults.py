"""A broken or unwritable snapshot: the reads fall back to the database with the same
numbers, the next refresh rebuilds the snapshot, and every page still renders, with a
banner that blames the snapshot (never the database) and no traceback."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from analytics.core import database
from analytics.core.filters import Filters
from analytics.core.models import Case
from analytics.sources import load
from analytics.sources.load import load_cube
from analytics.sources.snapshot import (
    SnapshotBroken,
    SnapshotUnwritable,
    snapshot_bypassed,
    snapshot_dir,
    snapshot_is_fresh,
    snapshot_problem,
)
from analytics.sources.snapshot_refresh import refresh
from tests.helpers import SMALL_DEMO_END, open_page

END = SMALL_DEMO_END
WINDOW = Filters(start=END - timedelta(days=84), end=END - timedelta(days=1))
DAYS = dict(start=WINDOW.start, end=END)


@pytest.fixture
def seeded(small_engine):
    """The shared small demo on SQLite, then on PostgreSQL: these tests break snapshots
    (under their own ``root``), never the database."""
    return small_engine


@pytest.fixture
def seeded_sqlite(small_db):
    """The shared small demo on SQLite (read only, as :func:`seeded`)."""
    engine = database.make_engine(small_db)
    yield engine
    engine.dispose()


def _same_as_pushdown(engine, *, root: Path, loader=None) -> None:
    """The cubes (one reading the event parts: a region filter) and the daily events
    read through ``loader`` equal the database's."""
    for filters in (WINDOW, replace(WINDOW, region=("FL", "CA"))):
        snap = load_cube(engine, filters, loader=loader, root=root)
        push = load_cube(engine, filters, loader="pushdown")
        assert snap.cases.height > 0 and snap.active.height > 0
        for name in ("cases", "exposure", "active", "annotations"):
            assert_frame_equal(getattr(snap, name), getattr(push, name))
    assert_frame_equal(
        load.events_daily(engine, loader=loader, root=root, **DAYS),
        load.events_daily(engine, loader="pushdown", **DAYS),
    )


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not parquet " * 50)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_columns(path: Path) -> None:
    pl.DataFrame({"id": [1, 2], "other": ["a", "b"]}).write_parquet(path)


def _scramble_the_middle(path: Path) -> None:
    """Zero the data pages but keep the footer: the schema reads, the rows do not."""
    data = path.read_bytes()
    half = len(data) // 2
    path.write_bytes(data[:4] + b"\0" * half + data[4 + half :])


def _unwritable_root(tmp_path: Path) -> Path:
    """A snapshot root under a regular file: no one, root included, can create it."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the snapshot folder's parent should be")
    return blocker / "snapshots"


DAMAGE = {
    "garbage part": ("events/part-00000.parquet", _garbage, "is not a readable Parquet file"),
    "truncated part": ("events/part-00000.parquet", _truncate, "is not a readable Parquet file"),
    "missing part": ("events/part-00000.parquet", Path.unlink, "is missing"),
    "wrong schema": ("cases.parquet", _wrong_columns, "does not have the expected columns"),
    "missing file": ("exposure.parquet", Path.unlink, "is missing"),
    "stray part": ("events/part-00009.parquet", _wrong_columns, "is not part of the snapshot"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_found_and_the_next_refresh_rebuilds_the_snapshot(
    seeded_sqlite, tmp_path, kind
):
    refresh(seeded_sqlite, root=tmp_path)
    name, damage, says = DAMAGE[kind]
    damage(snapshot_dir(seeded_sqlite, root=tmp_path) / name)
    problem = snapshot_problem(seeded_sqlite, root=tmp_path)
    assert isinstance(problem, SnapshotBroken)
    assert problem.reason == f"{name} {says}"
    assert str(tmp_path) not in str(problem)
    summary = refresh(seeded_sqlite, root=tmp_path)
    assert (summary.mode, summary.repaired) == ("full", problem.reason)
    assert "rebuilt" in summary.describe()
    assert snapshot_problem(seeded_sqlite, root=tmp_path) is None
    _same_as_pushdown(seeded_sqlite, root=tmp_path, loader="snapshot")


def test_a_garbage_part_gives_the_same_numbers_as_pushdown(seeded, tmp_path, monkeypatch):
    """On SQLite and PostgreSQL: the default loader rebuilds the snapshot and reads it."""
    monkeypatch.setenv("LOOKOUT_LOADER", "snapshot")
    refresh(seeded, root=tmp_path)
    _garbage(snapshot_dir(seeded, root=tmp_path) / "events" / "part-00000.parquet")
    _same_as_pushdown(seeded, root=tmp_path)
    assert snapshot_problem(seeded, root=tmp_path) is None
    assert refresh(seeded, root=tmp_path).mode == "fresh"


def test_a_file_that_fails_to_read_raises_snapshot_broken_and_is_read_around(
    seeded_sqlite, tmp_path
):
    engine = seeded_sqlite
    refresh(engine, root=tmp_path)
    _scramble_the_middle(snapshot_dir(engine, root=tmp_path) / "cases.parquet")
    assert snapshot_problem(engine, root=tmp_path) is None  # the footer is sound
    with pytest.raises(SnapshotBroken, match="a file cannot be read"):
        load_cube(engine, WINDOW, loader="snapshot", root=tmp_path)
    assert snapshot_bypassed(engine, root=tmp_path) is None
    # The default loader reads the database instead and marks the snapshot broken...
    _same_as_pushdown(engine, root=tmp_path)
    assert isinstance(snapshot_bypassed(engine, root=tmp_path), SnapshotBroken)
    assert load.loader_for(engine, root=tmp_path) == "pushdown"
    assert not snapshot_is_fresh(engine, root=tmp_path)
    # ...so that the next refresh rebuilds it, and it is read again.
    summary = refresh(engine, root=tmp_path)
    assert summary.mode == "full" and summary.repaired
    assert snapshot_bypassed(engine, root=tmp_path) is None
    _same_as_pushdown(engine, root=tmp_path, loader="snapshot")


def test_an_unwritable_snapshot_folder_raises_one_clear_error_and_is_read_around(seeded, tmp_path):
    root = _unwritable_root(tmp_path)
    problem = snapshot_problem(seeded, root=root)
    assert isinstance(problem, SnapshotUnwritable)
    with pytest.raises(SnapshotUnwritable) as raised:
        refresh(seeded, root=root)
    assert isinstance(raised.value, OSError)  # the CLI reports OSErrors in one line
    assert str(raised.value) == str(problem)
    assert str(raised.value).endswith("cannot be written: Not a directory")
    assert str(tmp_path) not in str(raised.value)
    with pytest.raises(SnapshotUnwritable):
        load_cube(seeded, WINDOW, loader="snapshot", root=root)
    _same_as_pushdown(seeded, root=root)
    frames = load.snapshot_frames(seeded, root=root)
    accounts = frames["accounts"].collect()
    cases = frames["cases"].collect()
    with seeded.connect() as conn:
        assert cases.height == conn.execute(select(func.count()).select_from(Case)).scalar()
    assert accounts.height > 0 and cases["repeat_offender"].any()
    assert frames["events"].select(pl.len()).collect().item() > 0


def test_snapshot_errors_survive_a_cache(tmp_path):
    error = SnapshotUnwritable(tmp_path / "abc", "Read-only file system")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is SnapshotUnwritable and str(copy) == str(error)


# --------------------------------------------------------------------------- the pages

#: Every page that reads the data, the role that may open it and what it must show.
PAGES = {
    "trends": ("pages/trends.py", "associate"),
    "anomalies": ("pages/anomalies.py", "associate"),
    "emerging": ("pages/emerging.py", "associate"),
    "cases": ("pages/cases.py", "associate"),
    "reports": ("pages/reports.py", "leadership"),
}
WEEK = (datetime(2026, 4, 20), datetime(2026, 4, 27))  # the week the trends page opens on


def _new_cases(url: str, *where) -> str:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).where(Case.opened_at >= WEEK[0], Case.opened_at < WEEK[1], *where)
        ).scalar_one()
    engine.dispose()
    return f"{n:,}"


def _banners(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "Reading the database directly" in w.value]


def _assert_fine(at: AppTest) -> None:
    """No traceback, no error banner, nothing that blames the database."""
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    assert not [w.value for w in at.warning if "LOOKOUT_DATABASE_URL" in w.value]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_works_with_an_unwritable_snapshot_folder(
    monkeypatch, tmp_path, own_small_db, page
):
    url = own_small_db  # a URL of its own: no page result cached by another test
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(_unwritable_root(tmp_path)))
    script, role = PAGES[page]
    at = open_page(monkeypatch, url, script, role=role)
    _assert_fine(at)
    banners = _banners(at)
    assert len(banners) == 1
    assert "cannot be written: Not a directory" in banners[0]
    assert str(tmp_path) not in banners[0]
    if page == "trends":
        assert {m.label: m.value for m in at.metric}["New cases"] == _new_cases(url)
    if page == "cases":
        assert at.dataframe and len(at.dataframe[0].value) == 50  # a full first page


def _built_snapshot(monkeypatch, tmp_path: Path, url: str) -> tuple[str, Path]:
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    engine = database.make_engine(url)
    folder = refresh(engine).folder
    engine.dispose()
    return url, folder


def test_a_page_on_a_broken_part_reads_the_database_and_the_snapshot_rebuilds_itself(
    monkeypatch, tmp_path, own_small_db
):
    from ui import data

    url, folder = _built_snapshot(monkeypatch, tmp_path, own_small_db)
    _garbage(folder / "events" / "part-00000.parquet")
    # A region filter makes the page count active accounts from the event parts.
    at = open_page(monkeypatch, url, "pages/trends.py", params={"region": "FL"})
    florida = _new_cases(url, Case.region == "FL")
    rebuild = data._REBUILDS.get(url, ("", None))[1]
    try:
        _assert_fine(at)
        banners = _banners(at)
        assert len(banners) == 1
        assert f"the snapshot {folder.name} is broken" in banners[0]
        assert "events/part-00000.parquet is not a readable Parquet file" in banners[0]
        assert str(tmp_path) not in banners[0]
        assert {m.label: m.value for m in at.metric}["New cases"] == florida
    finally:
        assert rebuild is not None and rebuild.wait() == 0  # a background rebuild: wait here
    engine = database.make_engine(url)
    assert snapshot_problem(engine) is None and snapshot_is_fresh(engine)
    engine.dispose()
    at.run()
    _assert_fine(at)
    assert not _banners(at)
    assert {m.label: m.value for m in at.metric}["New cases"] == florida
    assert snapshot_bypassed(database.make_engine(url)) is None


def test_a_corrupt_cases_file_is_blamed_on_the_snapshot_not_the_database(
    monkeypatch, tmp_path, own_small_db
):
    from ui import data

    url, folder = _built_snapshot(monkeypatch, tmp_path, own_small_db)
    _scramble_the_middle(folder / "cases.parquet")  # found only when the rows are read
    at = open_page(monkeypatch, url, "pages/trends.py")
    _assert_fine(at)
    banners = _banners(at)
    assert len(banners) == 1 and f"the snapshot {folder.name} is broken" in banners[0]
    assert {m.label: m.value for m in at.metric}["New cases"] == _new_cases(url)
    rebuild = data._REBUILDS.get(url, ("", None))[1]
    if rebuild is not None:
        assert rebuild.wait() == 0
    else:
        engine = database.make_engine(url)
        assert isinstance(snapshot_problem(engine), SnapshotBroken)  # marked for the rebuild
        engine.dispose()
