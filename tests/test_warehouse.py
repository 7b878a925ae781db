"""The ClickHouse warehouse, on chdb (ClickHouse's engine in the process, behind the same
client and SQL a server gets): loading, the pushdown cube, search, bad URLs.

chdb opens one data folder per process, so every test here shares one folder per test
process (each xdist worker has its own) and each test module loads its own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from analytics.cli import app
from analytics.core import database
from analytics.core.filters import Filters
from analytics.core.models import Case
from analytics.sources import ingest, load, pushdown, search, warehouse
from analytics.sources.clickhouse_ddl import PROJECTIONS
from analytics.sources.load import load_cube
from analytics.sources.snapshot_refresh import refresh
from tests.helpers import SMALL_DEMO_END
from tests.test_load import _append_a_day, _assert_same

END = SMALL_DEMO_END
WINDOW = Filters(start=END - timedelta(days=84), end=END - timedelta(days=1))
FILTER_SETS = [
    WINDOW,
    Filters(start=WINDOW.start, end=WINDOW.end, category=("fake_review",)),
    Filters(start=WINDOW.start, end=WINDOW.end, region=("FL", "TX"), platform=("ios",)),
    Filters(start=WINDOW.start, end=WINDOW.end, severity=("high",)),
    Filters(
        start=END - timedelta(days=54),
        end=WINDOW.end,
        specialty=("dermatology", "dentistry"),
        source=("user_report",),
    ),
]


def _new_database(chdb_path: Path) -> Engine:
    """An engine on a new, empty database of the process's chdb folder."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    base = warehouse.warehouse_engine(f"clickhousedb://?interface=chdb&path={chdb_path}")
    with base.connect() as conn:
        warehouse._client(conn).command(f"CREATE DATABASE {name}")
    return warehouse.warehouse_engine(
        f"clickhousedb://?interface=chdb&path={chdb_path}&database={name}"
    )


@pytest.fixture(scope="module")
def loaded(chdb_path: Path, small_db: str) -> Iterator[tuple[Engine, Engine]]:
    """Lookout's small demo (SQLite) and a warehouse database loaded from it."""
    lookout = database.make_engine(small_db)
    wh = _new_database(chdb_path)
    summary = warehouse.load(lookout, wh)
    # From the database, or from its snapshot when another test has built it.
    assert summary.mode == "full" and summary.source in ("database", "snapshot")
    assert summary.new_events == summary.events > 0
    yield lookout, wh
    lookout.dispose()


@pytest.fixture
def on_warehouse(loaded, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Lookout's engine, with LOOKOUT_WAREHOUSE_URL naming the loaded warehouse."""
    lookout, wh = loaded
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string(hide_password=False))
    monkeypatch.delenv("LOOKOUT_LOADER", raising=False)
    return lookout


@pytest.mark.parametrize(
    "filters", FILTER_SETS, ids=["all", "category", "region+platform", "severity", "mixed"]
)
def test_the_warehouse_cube_equals_the_snapshot_cube(on_warehouse, filters, tmp_path):
    snap = load_cube(on_warehouse, filters, loader="snapshot", root=tmp_path)
    push = load_cube(on_warehouse, filters)  # a warehouse makes pushdown the default
    assert snap.loader == "snapshot" and push.loader == "pushdown"
    assert snap.cases.height > 0 and snap.exposure.height > 0 and snap.active.height > 0
    _assert_same(snap, push)


def test_events_per_day_from_the_warehouse(on_warehouse, tmp_path):
    args = {"start": END - timedelta(days=120), "end": END}
    snap = load.events_daily(on_warehouse, loader="snapshot", root=tmp_path, **args)
    push = load.events_daily(on_warehouse, loader="pushdown", **args)
    assert snap.height > 0
    assert_frame_equal(snap, push)


def test_an_empty_warehouse_gives_an_empty_cube(chdb_path, small_db, monkeypatch) -> None:
    wh = _new_database(chdb_path)
    assert set(warehouse.init_warehouse(wh)) >= {"accounts", "events", "cases"}
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    lookout = database.make_engine(small_db)
    cube = load_cube(lookout, WINDOW)
    assert cube.cases.is_empty() and cube.exposure.is_empty() and cube.active.is_empty()
    assert cube.as_of is None and cube.annotations.height > 0  # known events are Lookout's
    lookout.dispose()


def _table(wh: Engine, name: str) -> pl.DataFrame:
    with wh.connect() as conn:
        arrow = warehouse._client(conn).query_arrow(f"SELECT * FROM {name} ORDER BY id")
    return pl.from_arrow(arrow)  # type: ignore[return-value]


def test_an_incremental_load_equals_a_full_load(chdb_path, own_small_db, tmp_path, monkeypatch):
    lookout = database.make_engine(own_small_db)
    incremental = _new_database(chdb_path)
    warehouse.load(lookout, incremental, root=tmp_path)
    new_events, new_cases = _append_a_day(lookout)
    refresh(lookout, root=tmp_path)  # the next load reads the new events from the snapshot
    summary = warehouse.load(lookout, incremental, root=tmp_path)
    assert (summary.mode, summary.source, summary.new_events) == (
        "incremental",
        "snapshot",
        new_events,
    )
    whole = _new_database(chdb_path)
    assert warehouse.load(lookout, whole, full=True).mode == "full"
    for name in ("accounts", "events", "cases"):
        assert_frame_equal(_table(incremental, name), _table(whole, name))
    assert _table(whole, "cases").height == summary.cases
    # and the cube over the new day still equals the snapshot's
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", incremental.url.render_as_string())
    window = Filters(start=END - timedelta(days=30), end=END)
    _assert_same(
        load_cube(lookout, window, loader="snapshot", root=tmp_path),
        load_cube(lookout, window, loader="pushdown"),
    )
    # a rewritten event history reloads the events whole
    database.bump_data_version(lookout, events_rewritten=True)
    again = warehouse.load(lookout, incremental, root=tmp_path)
    assert (again.mode, again.new_events) == ("full", again.events)
    assert_frame_equal(_table(incremental, "events"), _table(whole, "events"))
    lookout.dispose()


def _move_the_most_targeted_account(lookout: Engine, tmp_path: Path) -> tuple[str, str]:
    """Give the account most events target another specialty, through the importer (as
    a team's accounts file would); return its old and new specialty."""
    with lookout.connect() as conn:
        events = pl.read_database("SELECT target_account_id FROM events", conn)
        accounts = pl.read_database("SELECT * FROM accounts", conn)
    top = events.drop_nulls().group_by("target_account_id").len().sort("len").row(-1)[0]
    row = accounts.filter(pl.col("id") == top)
    old = row["specialty"].item()
    new = next(s for s in ("dentistry", "optometry") if s != old)
    row.with_columns(specialty=pl.lit(new)).write_csv(tmp_path / "moved.csv")
    summary = ingest.import_file(lookout, "accounts", tmp_path / "moved.csv")
    assert summary.updated == 1
    return old, new


def test_an_account_that_changes_specialty_reloads_the_events(
    chdb_path, own_small_db, tmp_path, monkeypatch
):
    """The events carry their target's specialty in the warehouse and in the snapshot:
    when a target changes specialty, both copy the events again, and every reader's
    cube counts its exposures under the new specialty."""
    lookout = database.make_engine(own_small_db)
    wh = _new_database(chdb_path)
    warehouse.load(lookout, wh, root=tmp_path)
    refresh(lookout, root=tmp_path)
    old, new = _move_the_most_targeted_account(lookout, tmp_path)
    assert refresh(lookout, root=tmp_path).mode == "full"
    summary = warehouse.load(lookout, wh, root=tmp_path)
    assert (summary.mode, summary.new_events) == ("full", summary.events)
    windows = [Filters(start=WINDOW.start, end=WINDOW.end, specialty=(s,)) for s in (old, new)]
    # Lookout's own database, read live, is the reference
    live = [load_cube(lookout, w, loader="pushdown") for w in windows]
    assert all(cube.exposure.height > 0 for cube in live)
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    for window, want in zip(windows, live, strict=True):
        _assert_same(load_cube(lookout, window, loader="snapshot", root=tmp_path), want)
        _assert_same(load_cube(lookout, window, loader="pushdown"), want)
    lookout.dispose()


def test_an_up_to_date_warehouse_is_left_as_it_is(chdb_path, small_db) -> None:
    """Creating the tables and loading again rebuilds no index or projection (a rebuild
    rewrites every part of the table: minutes at 100M events)."""
    lookout = database.make_engine(small_db)
    wh = _new_database(chdb_path)
    warehouse.init_warehouse(wh)
    warehouse.load(lookout, wh)
    warehouse.init_warehouse(wh)
    warehouse.load(lookout, wh)
    with wh.connect() as conn:
        rebuilt = (
            warehouse._client(conn)
            .query("SELECT table, command FROM system.mutations WHERE database = currentDatabase()")
            .result_rows
        )
    assert rebuilt == []
    lookout.dispose()


def _uses_projections(wh: Engine, filters: Filters) -> set[str]:
    """The projections ClickHouse reads for the cube's two event queries."""
    lo, hi = filters.window()
    used: set[str] = set()
    with wh.connect() as conn:
        client = warehouse._client(conn)
        for stmt in pushdown._event_queries(filters, lo, hi, pushdown.WAREHOUSE_TABLES):
            compiled = stmt.compile(wh, compile_kwargs={"render_postcompile": True})
            plan = client.query(f"EXPLAIN {compiled}", parameters=compiled.params).result_rows
            used |= {
                n for n in PROJECTIONS for (line,) in plan if f"ReadFromMergeTree ({n})" in line
            }
    return used


@pytest.mark.parametrize(
    "filters", FILTER_SETS, ids=["all", "category", "region+platform", "severity", "mixed"]
)
def test_the_cube_reads_the_events_projections(loaded, filters) -> None:
    """Both event queries of the cube are answered from the projections, not the events."""
    assert _uses_projections(loaded[1], filters) == {"exposure_by_day", "active_by_week"}


def test_a_warehouse_made_before_the_specialty_column_is_upgraded(
    chdb_path, small_db, tmp_path, monkeypatch
):
    """An events table of the first release (no ``specialty``) gets the column and is
    emptied, so the next load copies every event with its target's specialty."""
    lookout = database.make_engine(small_db)
    wh = _new_database(chdb_path)
    warehouse.load(lookout, wh)
    with wh.connect() as conn:
        client = warehouse._client(conn)
        for name in PROJECTIONS:
            client.command(f"ALTER TABLE events DROP PROJECTION {name}")
        client.command("ALTER TABLE events DROP COLUMN specialty")
        client.command("ALTER TABLE cases DROP COLUMN specialty, DROP COLUMN repeat_offender")
        client.command("ALTER TABLE cases DROP INDEX ix_cases_description")  # as first built:
        client.command(
            "ALTER TABLE cases ADD INDEX ix_cases_description lower(description) "
            "TYPE text(tokenizer = splitByNonAlpha) GRANULARITY 1"
        )
        before = client.query("SELECT count() FROM events").result_rows[0][0]
    assert before > 0
    summary = warehouse.load(lookout, wh)
    assert summary.new_events == summary.events == before
    assert _table(wh, "events")["specialty"].null_count() < before
    assert _uses_projections(wh, WINDOW) == {"exposure_by_day", "active_by_week"}
    assert _skip_indexes(wh, "racist") == ["Name: ix_cases_description"]
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    window = FILTER_SETS[-1]
    _assert_same(
        load_cube(lookout, window, loader="snapshot", root=tmp_path), load_cube(lookout, window)
    )
    lookout.dispose()


#: Queries whose words SQLite's stemmer leaves as ClickHouse's index has them.
SEARCHES = [
    "racist",
    "abusive OR racist",
    '"device fingerprints"',
    "staff -abusive",
    "screenshot*",
    '"five-star" burst',
    '"saved card" OR racist',
    "empty lot",
]


@pytest.mark.parametrize("typed", SEARCHES)
def test_search_finds_the_cases_sqlite_finds(loaded, typed: str) -> None:
    lookout, wh = loaded
    condition = search.match_clause(lookout, typed)
    assert condition is not None
    with lookout.connect() as conn:
        expected = [r[0] for r in conn.execute(select(Case.id).where(condition).order_by(Case.id))]
    assert expected
    assert warehouse.search_case_ids(wh, typed) == expected


def _skip_indexes(wh: Engine, typed: str) -> list[str]:
    """The skip indexes ClickHouse uses to answer the search ``typed``."""
    stmt = select(Case.id).where(warehouse.search_condition(typed))
    compiled = stmt.compile(wh, compile_kwargs={"render_postcompile": True})
    with wh.connect() as conn:
        plan = warehouse._client(conn).query(
            f"EXPLAIN indexes = 1 {compiled}", parameters=compiled.params
        )
    lines = [line.strip() for (line,) in plan.result_rows]
    return [lines[i + 1] for i, line in enumerate(lines) if line == "Skip"]


@pytest.mark.parametrize("typed", ["racist", "abusive OR racist", '"device fingerprints"'])
def test_search_reads_the_token_index(loaded, typed: str) -> None:
    assert _skip_indexes(loaded[1], typed) == ["Name: ix_cases_description"]


def test_the_ilike_fallback_finds_substrings(loaded) -> None:
    _, wh = loaded
    indexed = warehouse.search_case_ids(wh, "racist")
    assert set(indexed) <= set(warehouse.search_case_ids(wh, "RACIST", index=False))
    assert warehouse.search_case_ids(wh, " -- ") == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:secret@db/x", "must be a clickhousedb:// URL"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_bad_warehouse_url_is_one_line(url, message, monkeypatch) -> None:
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", url)
    result = CliRunner().invoke(app, ["warehouse", "init"])
    assert result.exit_code == 2
    assert message in result.stderr and "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_warehouse_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", "clickhousedb://u:secret@127.0.0.1:9/db")
    result = CliRunner().invoke(app, ["warehouse", "init"])
    assert result.exit_code == 2
    assert "cannot use the warehouse" in result.stderr and "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_cli_inits_and_loads(chdb_path, own_small_db, monkeypatch) -> None:
    wh = _new_database(chdb_path)
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", own_small_db)
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    runner = CliRunner()
    init = runner.invoke(app, ["warehouse", "init"])
    assert init.exit_code == 0 and "events" in init.stdout
    first = runner.invoke(app, ["warehouse", "load"])
    assert first.exit_code == 0 and first.stdout.startswith("full warehouse load")
    second = runner.invoke(app, ["warehouse", "load"])
    assert (
        second.exit_code == 0
        and "incremental" in second.stdout
        and " 0 new events" in second.stdout
    )


def test_seed_loads_the_warehouse_after_itself(chdb_path, tmp_path, monkeypatch) -> None:
    wh = _new_database(chdb_path)
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'seeded.db'}")
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    runner = CliRunner()
    args = ["--scale", "small", "--days", "240", "--end", "2026-05-01"]
    seeded = runner.invoke(app, ["seed", *args, "--manifest", str(tmp_path / "m.json")])
    assert seeded.exit_code == 0, seeded.stderr
    line = seeded.stdout.strip().splitlines()[-1]
    assert line.startswith("full warehouse load (events from the snapshot)")
    events = _table(wh, "events").height
    assert f"{events:,} new events" in line and events > 0
