"""The cube loaders: snapshot and pushdown agree, refreshes are incremental and exact."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import select, update

from analytics import demo
from analytics.core import database
from analytics.core.filters import Filters, parse_filters
from analytics.core.models import Case, Event
from analytics.sources import load
from analytics.sources.frames import Cube
from analytics.sources.load import load_cube
from analytics.sources.snapshot import SNAPSHOT_FORMAT, snapshot_dir, snapshot_is_fresh
from analytics.sources.snapshot_refresh import refresh
from tests.helpers import SMALL_DEMO_END

END = SMALL_DEMO_END
WINDOW = Filters(start=END - timedelta(days=84), end=END - timedelta(days=1))
#: When :func:`_append_a_day` resolves a case of the old data.
RESOLVED = datetime.combine(END, time(12))
FILTER_SETS = [
    WINDOW,
    Filters(start=WINDOW.start, end=WINDOW.end, category=("fake_review", "spam"), region=("FL",)),
    Filters(start=WINDOW.start, end=WINDOW.end, specialty=("dermatology", "dentistry")),
    Filters(
        start=END - timedelta(days=54),
        end=WINDOW.end,
        platform=("ios",),
        severity=("high", "critical"),
        source=("user_report",),
    ),
]


@pytest.fixture
def seeded(engine):
    """A private small demo, for the tests that write to it; the others read the shared
    one (``small_engine``)."""
    demo.seed_database(engine, scale="small", seed=7, days=240, end=END)
    return engine


def _assert_same(a: Cube, b: Cube) -> None:
    for name in ("cases", "exposure", "active", "annotations"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_row_order=True)
    assert a.as_of == b.as_of


@pytest.mark.parametrize("filters", FILTER_SETS, ids=["all", "cat+region", "specialty", "mixed"])
def test_snapshot_and_pushdown_give_the_same_cube(small_engine, filters, tmp_path):
    snap = load_cube(small_engine, filters, loader="snapshot", root=tmp_path)
    push = load_cube(small_engine, filters, loader="pushdown")
    assert snap.loader == "snapshot" and push.loader == "pushdown"
    assert snap.cases.height > 0 and snap.exposure.height > 0 and snap.active.height > 0
    _assert_same(snap, push)


def test_filters_restrict_every_frame(small_engine, tmp_path):
    cube = load_cube(small_engine, FILTER_SETS[1], loader="snapshot", root=tmp_path)
    assert set(cube.cases["category"].cast(pl.String)) == {"fake_review", "spam"}
    assert set(cube.cases["region"].cast(pl.String)) == {"FL"}
    assert set(cube.exposure["region"].cast(pl.String)) == {"FL"}
    everything = load_cube(small_engine, WINDOW, loader="snapshot", root=tmp_path)
    assert cube.active["accounts"].sum() < everything.active["accounts"].sum()


def test_cases_include_older_cases_still_open_in_the_window(small_engine, tmp_path):
    lo, _ = WINDOW.window()
    cube = load_cube(small_engine, WINDOW, loader="snapshot", root=tmp_path)
    older = cube.cases.filter(pl.col("opened_at") < lo)
    assert older.height > 0
    assert older.filter(pl.col("resolved_at") < lo).is_empty()


def _append_a_day(engine) -> tuple[int, int]:
    """Copy the last day's events and cases one day later with new ids."""
    with engine.connect() as conn:
        events = pl.read_database(select(Event), conn)
        cases = pl.read_database(select(Case), conn)
    engine.dispose()  # bulk_append may use a second SQLite library: no connection may stay open
    last = events["ts"].cast(pl.Datetime("us")).max() - timedelta(days=1)
    day = timedelta(days=1)
    new_events = (
        events.with_columns(pl.col("ts").cast(pl.Datetime("us")))
        .filter(pl.col("ts") > last)
        .with_columns(
            pl.col("ts") + day,
            pl.col("id") + events["id"].max(),
        )
    )
    dt_cols = ["opened_at", "first_response_at", "resolved_at", "appealed_at"]
    new_cases = (
        cases.with_columns(pl.col(c).cast(pl.Datetime("us")) for c in dt_cols)
        .filter(pl.col("opened_at") > last)
        .with_columns(*(pl.col(c) + day for c in dt_cols), pl.col("id") + cases["id"].max())
    )
    database.bulk_append(engine, "events", new_events)
    database.bulk_append(engine, "cases", new_cases)
    with engine.begin() as conn:  # a case of the old data gets resolved
        conn.execute(
            update(Case)
            .where(Case.id == int(cases.filter(pl.col("resolved_at").is_null())["id"][0]))
            .values(resolved_at=RESOLVED, resolution="warning", status="resolved")
        )
    database.bump_data_version(engine, events_rewritten=False)
    return new_events.height, new_cases.height


def _snapshot_frames(folder: Path) -> dict[str, pl.DataFrame]:
    return {
        "events": pl.read_parquet(folder / "events" / "*.parquet").sort("id"),
        "cases": pl.read_parquet(folder / "cases.parquet"),
        "accounts": pl.read_parquet(folder / "accounts.parquet"),
        "exposure": pl.read_parquet(folder / "exposure.parquet"),
        "annotations": pl.read_parquet(folder / "annotations.parquet"),
        "active": pl.read_parquet(folder / "active.parquet"),
        "events_daily": pl.read_parquet(folder / "events_daily.parquet"),
    }


def test_incremental_refresh_equals_a_full_rebuild(seeded, tmp_path):
    first = refresh(seeded, root=tmp_path / "inc")
    assert first.mode == "full"
    assert refresh(seeded, root=tmp_path / "inc").mode == "fresh"
    n_events, n_cases = _append_a_day(seeded)
    assert n_events > 0 and n_cases > 0
    assert not snapshot_is_fresh(seeded, root=tmp_path / "inc")
    step = refresh(seeded, root=tmp_path / "inc")
    assert step.mode == "incremental"
    assert step.new_events == n_events
    assert snapshot_is_fresh(seeded, root=tmp_path / "inc")
    full = refresh(seeded, root=tmp_path / "full")
    assert full.mode == "full"
    inc_frames = _snapshot_frames(snapshot_dir(seeded, root=tmp_path / "inc"))
    full_frames = _snapshot_frames(snapshot_dir(seeded, root=tmp_path / "full"))
    for name, frame in full_frames.items():
        assert_frame_equal(inc_frames[name], frame, check_row_order=True)
    resolved = inc_frames["cases"].filter(pl.col("resolved_at") == RESOLVED)
    assert resolved.height == 1


def test_a_reseed_rebuilds_and_a_rewritten_event_forces_a_full_refresh(seeded, tmp_path):
    refresh(seeded, root=tmp_path)
    demo.seed_database(seeded, scale="small", seed=12, days=240, end=END)
    again = refresh(seeded, root=tmp_path)
    assert again.mode == "full"
    fresh = load_cube(seeded, WINDOW, loader="snapshot", root=tmp_path)
    _assert_same(fresh, load_cube(seeded, WINDOW, loader="pushdown"))
    database.bump_data_version(seeded, events_rewritten=True)
    assert refresh(seeded, root=tmp_path).mode == "full"


def test_a_stale_or_damaged_snapshot_is_rebuilt_not_trusted(small_engine, tmp_path):
    refresh(small_engine, root=tmp_path)
    folder = snapshot_dir(small_engine, root=tmp_path)
    (folder / "state.json").write_text("{not json")
    assert not snapshot_is_fresh(small_engine, root=tmp_path)
    cube = load_cube(small_engine, WINDOW, loader="snapshot", root=tmp_path)
    assert json.loads((folder / "state.json").read_text())["format"] == SNAPSHOT_FORMAT
    _assert_same(cube, load_cube(small_engine, WINDOW, loader="pushdown"))


def test_each_database_has_its_own_snapshot(tmp_path):
    a = database.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    b = database.make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    pg = database.make_engine("postgresql+psycopg://u:secret@host/db")
    dirs = {snapshot_dir(e, root=tmp_path) for e in (a, b, pg)}
    assert len(dirs) == 3
    assert "secret" not in "".join(str(d) for d in dirs)


def test_loader_choice(monkeypatch):
    sqlite = database.make_engine("sqlite://")
    pg = database.make_engine("postgresql+psycopg://u@host/db")
    assert load.loader_for(sqlite) == "snapshot"
    assert load.loader_for(pg) == "pushdown"
    monkeypatch.setenv("LOOKOUT_LOADER", "pushdown")
    assert load.loader_for(sqlite) == "pushdown"


def test_an_empty_database_loads_an_empty_cube(engine, tmp_path):
    for loader in ("snapshot", "pushdown"):
        cube = load_cube(engine, WINDOW, loader=loader, root=tmp_path)  # type: ignore[arg-type]
        assert cube.cases.is_empty() and cube.exposure.is_empty() and cube.active.is_empty()
        assert cube.as_of is None


def test_parse_filters_keeps_good_values_and_explains_the_rest():
    f, notes = parse_filters(
        {
            "category": "spam, spam,fake_review,'; DROP TABLE cases;--",
            "region": "fl,FL",
            "start": "2026-11-30",
            "end": "2026-11-01",
            "platform": "",
        }
    )
    assert f.category == ("spam", "fake_review")
    assert f.region == ("FL",)
    assert f.start is None and f.end is None
    assert len(notes) == 3
    assert any("DROP TABLE" in n for n in notes)
    assert any("ends before it starts" in n for n in notes)


def test_window_covers_whole_weeks():
    lo, hi = Filters(start=date(2026, 11, 22), end=date(2026, 11, 22)).window()
    assert (lo, hi) == (datetime(2026, 11, 16), datetime(2026, 11, 23))
    with pytest.raises(ValueError, match="start and an end"):
        Filters().window()


def test_daily_events_of_every_kind_agree_between_loaders(small_engine, tmp_path):
    args = dict(start=WINDOW.start, end=END)
    snap = load.events_daily(small_engine, loader="snapshot", root=tmp_path, **args)
    push = load.events_daily(small_engine, loader="pushdown", **args)
    assert snap.height > 0 and "login_failed" in set(snap["kind"].cast(pl.String))
    assert_frame_equal(snap, push)
