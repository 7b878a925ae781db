"""Copying a team's own database through its source map (issue 20, items 3 and 5): the copy
equals the same data converted by hand and imported, new rows only by the watermark,
rows that map to nothing are quarantined with their reasons, the team's database is never
written, and another tool's export imports through a map."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from typer.testing import CliRunner

from analytics.core import database, models
from analytics.demo.helpdesk import build_helpdesk, helpdesk_map, lookout_files
from analytics.sources import ingest, mapped, sourcemap
from analytics.sources.ingest_checks import column_specs
from analytics.sources.sourcemap import ColumnMap, EntityMap, ValueMap

TABLES = ("accounts", "cases", "events")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory, small_demo_file: Path) -> str:
    return f"sqlite:///{small_demo_file}"


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request: pytest.FixtureRequest, demo_url: str) -> tuple[str, dict[str, pl.DataFrame]]:
    """The team's helpdesk database (SQLite or PostgreSQL) holding the small demo."""
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    if request.param == "sqlite":  # the Lookout fixture's file: the team gets its own
        url = url.replace("lookout.db", "helpdesk.db")
    return url, build_helpdesk(url, demo_url)


def _lookout(path: Path) -> Engine:
    engine = database.make_engine(f"sqlite:///{path}")
    models.init_db(engine)
    return engine


def _rows(engine: Engine, table: str) -> pl.DataFrame:
    with engine.connect() as conn:
        return pl.read_database(f"SELECT * FROM {table} ORDER BY id", conn)


def _map(tmp_path: Path, url: str) -> sourcemap.SourceMap:
    path = tmp_path / "helpdesk.toml"
    path.write_text(helpdesk_map(url), encoding="utf-8")
    return sourcemap.load_map(path)


def _fingerprint(url: str) -> Any:
    """What a write would change: the SQLite file's bytes, or PostgreSQL's row versions."""
    if make_url(url).get_backend_name() == "sqlite":
        return hashlib.sha256(Path(make_url(url).database or "").read_bytes()).hexdigest()
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {
            name: conn.execute(text(f"SELECT count(*), max(xmin::text) FROM {name}")).one()
            for name in ("users", "tickets", "activity")
        }
    engine.dispose()
    return found


def test_the_copy_equals_the_same_data_imported(
    team: tuple[str, dict[str, pl.DataFrame]], tmp_path: Path
) -> None:
    url, frames = team
    smap = _map(tmp_path, url)
    before = _fingerprint(url)
    source = sourcemap.connect(mapped.source_url(smap))
    copied = _lookout(tmp_path / "copied.db")
    done = {
        s.entity: s.imported for s in mapped.sync(copied, smap, source, quarantine_dir=tmp_path)
    }
    source.dispose()
    imported = _lookout(tmp_path / "imported.db")
    files = lookout_files(frames, tmp_path)
    by_hand = {t: ingest.import_file(imported, t, files[t]) for t in TABLES}
    for table in TABLES:
        assert _rows(copied, table).equals(_rows(imported, table)), table
        assert (done[table].inserted, done[table].quarantined) == (
            by_hand[table].inserted,
            by_hand[table].quarantined,
        )
    # One ticket in 97 carries a tag the map does not know: kept, with the reason, as the
    # team wrote it (their priority, status and channel words).
    assert (
        done["cases"].quarantined
        == frames["tickets"].filter(pl.col("tags").str.contains("fake-9star")).height
        > 0
    )
    assert done["cases"].quarantine_path is not None
    with done["cases"].quarantine_path.open(newline="") as handle:
        first = next(csv.DictReader(handle))
    ticket = frames["tickets"].filter(pl.col("ticket_id") == int(first["id"])).row(0, named=True)
    assert first["reason"].startswith("category: 'fake-9star' is not one of fake_review, ")
    assert (first["category"], first["severity"], first["status"], first["source"]) == (
        ticket["tags"],
        str(ticket["priority"]),
        ticket["state"],
        ticket["channel"],
    )
    assert oct(done["cases"].quarantine_path.stat().st_mode & 0o777) == "0o600"
    assert _fingerprint(url) == before  # the team's database was only read


def test_a_second_copy_reads_only_what_is_new(
    team: tuple[str, dict[str, pl.DataFrame]], tmp_path: Path
) -> None:
    url, frames = team
    smap = _map(tmp_path, url)
    source = sourcemap.connect(url)
    copied = _lookout(tmp_path / "copied.db")
    mapped.sync(copied, smap, source, quarantine_dir=tmp_path)
    writer = create_engine(url)
    last = frames["activity"].row(-1, named=True)
    ticket = frames["tickets"].filter(pl.col("state") == "new").row(0, named=True)
    with writer.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO activity (activity_id, occurred_at, actor_id, action, client, "
                "country, device, ip) VALUES (:i, :t, :a, 'log_in', 'iphone', 'NY', 'd', 'p')"
            ),
            [
                {"i": last["activity_id"] + n, "t": "2026-04-01T09:00:00-05:00", "a": 1}
                for n in (1, 2)
            ],
        )
        conn.execute(
            text(
                "UPDATE tickets SET state = 'solved', "
                "updated = (SELECT max(updated) FROM tickets) + 60 WHERE ticket_id = :i"
            ),
            {"i": ticket["ticket_id"]},
        )
    writer.dispose()
    again = {s.entity: s for s in mapped.sync(copied, smap, source, quarantine_dir=tmp_path)}
    source.dispose()
    # Events: only the rows at or above the last watermark (the last one again, and two new).
    assert (again["events"].imported.read, again["events"].imported.inserted) == (3, 2)
    assert again["events"].since == last["activity_id"]
    # Cases: the changed ticket, and the others whose watermark is the same as the top.
    assert again["cases"].imported.updated == 1
    assert again["cases"].imported.read < frames["tickets"].height
    # Accounts have no watermark: read whole, nothing changed.
    assert again["accounts"].imported.unchanged == frames["users"].height
    with copied.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM cases WHERE id = :i"), {"i": ticket["ticket_id"]}
        ).scalar()
        new = conn.execute(
            text("SELECT ts FROM events WHERE id = :i"), {"i": last["activity_id"] + 1}
        ).scalar()
    assert status == "resolved"
    assert str(new).startswith("2026-04-01 14:00:00")


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    from analytics.cli import app

    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_sync_and_seed_on_the_command_line(
    team: tuple[str, dict[str, pl.DataFrame]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, frames = team
    path = tmp_path / "helpdesk.toml"
    path.write_text(helpdesk_map(url), encoding="utf-8")
    lookout = f"sqlite:///{tmp_path / 'copied.db'}"
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", lookout)
    monkeypatch.setenv("LOOKOUT_LOADER", "pushdown")
    monkeypatch.setenv(mapped.MAP_VARIABLE, str(path))
    # `make run` seeds only an empty database: with a map it copies through the map instead.
    code, out, err = _cli("seed", "--if-empty")
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == "LOOKOUT_SOURCE_MAP is set: copying through the map, not seeding the demo"
    users = frames["users"].height
    assert (
        lines[1]
        == f"accounts: read {users}, inserted {users}, updated 0, unchanged 0, quarantined 0"
    )
    assert lines[3].startswith(f"events: read {frames['activity'].height}, inserted ")
    # Seeding the demo on top of the team's data is refused.
    code, _, err = _cli("seed")
    assert code == 2 and "LOOKOUT_SOURCE_MAP is set" in err
    code, out, err = _cli("sources", "sync")
    assert code == 0 and "events: read 1, inserted 0, updated 0, unchanged 1" in out


def test_bad_maps_and_urls_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'lookout.db'}")
    monkeypatch.delenv(mapped.MAP_VARIABLE, raising=False)
    monkeypatch.delenv(mapped.URL_VARIABLE, raising=False)
    code, _, err = _cli("sources", "sync")
    assert (code, err) == (2, "error: give --map or set LOOKOUT_SOURCE_MAP\n")
    path = tmp_path / "m.toml"
    path.write_text(helpdesk_map(dialect="sqlite"), encoding="utf-8")
    code, _, err = _cli("sources", "sync", "--map", str(path))
    assert code == 2
    assert err == (
        f"error: {path}:1: the map has no [source] url and LOOKOUT_SOURCE_URL is not set: "
        "say where their database is\n"
    )
    monkeypatch.setenv("HELPDESK_URL", "")
    path.write_text('[source]\nurl = "env:HELPDESK_URL"\n' + helpdesk_map(dialect="sqlite"))
    code, _, err = _cli("sources", "sync", "--map", str(path))
    assert (code, err) == (
        2,
        f"error: {path}:1: source.url reads $HELPDESK_URL, which is not set\n",
    )
    path.write_text('[source]\nurl = 5\nhost = "x"\n' + helpdesk_map(dialect="sqlite"))
    code, _, err = _cli("sources", "sync", "--map", str(path))
    assert code == 2
    assert err.splitlines() == [
        f"{path}:3: source: unknown key `host` (a source has url)",
        f"{path}:2: source.url: give their database's URL, or env:NAME to read it from a variable",
    ]
    missing = tmp_path / "nowhere" / "team.db"
    code, _, err = _cli("sources", "sync", "--map", str(path.with_name("n.toml")))
    assert code == 2 and "cannot read the map" in err
    path.write_text(helpdesk_map(dialect="sqlite"))
    code, _, err = _cli("sources", "sync", "--map", str(path), "--url", f"sqlite:///{missing}")
    assert code == 2 and err.startswith("error: cannot open sqlite:///")


# --- another tool's export, through a map -------------------------------------------------


def test_an_export_imports_through_a_map(
    tmp_path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = build_helpdesk(f"sqlite:///{tmp_path / 'team.db'}", demo_url)
    files = lookout_files(frames, tmp_path)
    by_map = _lookout(tmp_path / "by_map.db")
    by_hand = _lookout(tmp_path / "by_hand.db")
    # Their export: the users and tickets tables as CSV, header and all in their words.
    users = tmp_path / "users-export.csv"
    frames["users"].write_csv(users)
    tickets = tmp_path / "tickets-export.csv"
    frames["tickets"].write_csv(tickets)
    smap = _map(tmp_path, "sqlite:///unused.db")
    assert mapped.import_mapped(by_map, "accounts", users, smap).inserted == 5000
    done = mapped.import_mapped(by_map, "cases", tickets, smap)
    ingest.import_file(by_hand, "accounts", files["accounts"])
    expected = ingest.import_file(by_hand, "cases", files["cases"])
    assert (done.read, done.inserted, done.quarantined) == (
        expected.read,
        expected.inserted,
        expected.quarantined,
    )
    assert _rows(by_map, "cases").equals(_rows(by_hand, "cases"))
    # The quarantine holds the export's own rows (their header), numbered as in the file.
    assert done.quarantine_path == tmp_path / "tickets-export.quarantine.csv"
    with done.quarantine_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["row", "reason", "ticket_id", "created"]
    first = frames["tickets"].row(int(rows[0]["row"]) - 1, named=True)
    assert rows[0]["ticket_id"] == str(first["ticket_id"]) and "fake-9star" in first["tags"]
    # Again: nothing new, nothing lost.
    again = mapped.import_mapped(by_map, "cases", tickets, smap)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, expected.inserted)


def test_an_export_that_does_not_fit_the_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookout = tmp_path / "lookout.db"
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{lookout}")
    path = tmp_path / "m.toml"
    path.write_text(helpdesk_map(dialect="sqlite"), encoding="utf-8")
    export = tmp_path / "tickets.csv"
    export.write_text("ticket_id,created\n1,1700000000\n", encoding="utf-8")
    code, _, err = _cli("import", "cases", str(export), "--map", str(path))
    assert code == 2
    assert err.startswith("error: tickets.csv: the map's cases columns do not run on this file: ")
    assert "no such column" in err
    code, _, err = _cli("import", "case_actions", str(export), "--map", str(path))
    assert (code, err) == (
        2,
        f"error: {path}: the map does not declare case_actions ([case_actions])\n",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[cases]\nfrom = 5\n", encoding="utf-8")
    code, _, err = _cli("import", "cases", str(export), "--map", str(bad))
    assert code == 2 and err.startswith(f"{bad}:2: cases: `from` must name their table")
    assert not lookout.exists() or _rows(_lookout(lookout), "cases").is_empty()


# --- the value rule -----------------------------------------------------------------------

_OURS = ("fake_review", "harassment", "spam", "other")
_THEIRS = ("fake-5star", "abuse", "spam", "vip", "misc", "odd", "other", "x-y")


def _by_hand(items: list[str], values: dict[str, str], ignore: set[str]) -> str | None:
    """The rule, told plainly: the map's entries in its order, then ours, then the first
    value that is neither ignored nor known."""
    present = {i.strip() for i in items if i.strip()}
    for theirs, ours in values.items():
        if theirs in present and theirs not in ignore:
            return ours
    for choice in column_specs("cases")[3].choices:
        if choice in present and choice not in values and choice not in ignore:
            return choice
    rest = [i.strip() for i in items if i.strip() and i.strip() not in ignore]
    rest = [i for i in rest if i not in values and i not in column_specs("cases")[3].choices]
    return rest[0] if rest else None


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(st.sampled_from(_THEIRS + ("", " spam ")), max_size=4), max_size=6),
    values=st.dictionaries(st.sampled_from(_THEIRS), st.sampled_from(_OURS), max_size=5),
    ignore=st.sets(st.sampled_from(_THEIRS), max_size=3),
)
def test_tags_translate_by_the_rule(
    rows: list[list[str]], values: dict[str, str], ignore: set[str]
) -> None:
    specs = tuple(column_specs("cases"))
    assert specs[3].name == "category"
    entity = EntityMap(
        "cases",
        "tickets",
        1,
        1,
        (ColumnMap("category", "tags", 1),),
        {"category": ValueMap("category", values, frozenset(ignore), ",")},
        specs,
    )
    joined = [",".join(r) if r else None for r in rows]
    got = mapped.translate(
        pl.DataFrame({"category": joined}, schema={"category": pl.String}), entity
    )
    expected = [_by_hand(r, values, ignore) if r else None for r in rows]
    assert got.get_column("category").to_list() == expected


def test_the_active_map_follows_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mapped.MAP_VARIABLE, raising=False)
    assert mapped.active_map() is None
    path = tmp_path / "m.toml"
    path.write_text(helpdesk_map("sqlite:///team.db"), encoding="utf-8")
    monkeypatch.setenv(mapped.MAP_VARIABLE, str(path))
    smap = mapped.active_map()
    assert smap is not None and smap.url == "sqlite:///team.db"
    monkeypatch.setenv(mapped.URL_VARIABLE, "sqlite:///other.db")
    assert mapped.source_url(smap) == "sqlite:///other.db"
    assert os.environ[mapped.MAP_VARIABLE] == str(path)


def test_the_copy_never_mixes_with_the_demo(
    tmp_path: Path, small_demo_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import copy_small_demo

    demo = copy_small_demo(small_demo_file, tmp_path)
    path = tmp_path / "helpdesk.toml"
    team = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    build_helpdesk(team, f"sqlite:///{small_demo_file}")
    path.write_text(helpdesk_map(team), encoding="utf-8")
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", demo)
    before = _rows(database.make_engine(demo), "cases")
    code, _, err = _cli("sources", "sync", "--map", str(path))
    assert code == 1
    assert err == (
        f"error: {demo} holds the demo data: the team's rows would mix with it; point "
        "LOOKOUT_DATABASE_URL at a database of their own\n"
    )
    assert _rows(database.make_engine(demo), "cases").equals(before)


def test_a_draft_says_where_it_reads_and_keeps_passwords_out(pg_url: str, tmp_path: Path) -> None:
    team = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    create_engine(team).dispose()
    with create_engine(team).begin() as conn:
        conn.execute(text("CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, created BIGINT)"))
    code, out, _ = _cli("sources", "init", "--url", team)
    assert code == 0
    assert f'\n[source]\nurl = "{team}"\n\n[cases]\nfrom = "tickets"\n' in out
    # Trust authentication takes any password: the URL has one, the draft must not.
    secret = make_url(pg_url).set(password="s3cret-pass")
    code, out, err = _cli("sources", "init", "--url", secret.render_as_string(hide_password=False))
    assert code == 0, err
    assert "s3cret-pass" not in out
    assert '\nurl = "env:LOOKOUT_SOURCE_URL"\n' in out
    assert f"# {secret.render_as_string(hide_password=True)}: its password stays out" in out


def test_a_watch_pass_copies_first(
    tmp_path: Path, small_demo_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    frames = build_helpdesk(team, f"sqlite:///{small_demo_file}")
    path = tmp_path / "helpdesk.toml"
    path.write_text(helpdesk_map(team), encoding="utf-8")
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'lookout.db'}")
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    monkeypatch.setenv("LOOKOUT_QUARANTINE_DIR", str(tmp_path))
    monkeypatch.setenv(mapped.MAP_VARIABLE, str(path))
    code, out, err = _cli("watch")
    assert code == 0, err
    lines = out.splitlines()
    users = frames["users"].height
    assert (
        lines[0]
        == f"accounts: read {users}, inserted {users}, updated 0, unchanged 0, quarantined 0"
    )
    assert lines[2].startswith(f"events: read {frames['activity'].height}, inserted ")
    # A broken map: the pass says why and stops before scoring stale data.
    path.write_text(helpdesk_map(team).replace('from = "activity"', 'from = "activities"'))
    code, out, err = _cli("watch")
    assert code == 1
    assert err.startswith("error: the copy through the source map failed: events: their database ")
    assert "no such table: activities" in err
