"""A copy through a source map loads the warehouse too: ``sources sync``, ``watch`` (which
copies first) and the app's background copy (a ``sources sync`` process) load
``LOOKOUT_WAREHOUSE_URL`` after a copy that brought rows, so the warehouse never lags
Lookout's database; a failed load is one line (exit 1; on the page, a banner naming no
database). On chdb, in a database of its own of the process's folder (``chdb_path``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from analytics.cli import app
from analytics.core import database, models
from analytics.demo.helpdesk import build_helpdesk, helpdesk_map
from analytics.sources import mapped, warehouse
from tests.helpers import HANG_S, open_page
from tests.test_warehouse import _new_database
from ui import data

TABLES = ("accounts", "cases", "events")


def _warehouse_counts(wh: Engine) -> dict[str, int]:
    with wh.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count() FROM {t}")).scalar_one()) for t in TABLES}


def _lookout_counts(url: str) -> dict[str, int]:
    engine = database.make_engine(url)
    counts = database.table_counts(engine)
    engine.dispose()
    return {t: counts[t] for t in TABLES}


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def helpdesk(tmp_path: Path, small_demo_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The team's helpdesk database (``python -m analytics example-helpdesk``'s) and its
    map set, an empty Lookout database; the team's URL."""
    team = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    build_helpdesk(team, f"sqlite:///{small_demo_file}")
    path = tmp_path / "helpdesk.toml"
    path.write_text(helpdesk_map(team), encoding="utf-8")
    monkeypatch.setenv(mapped.MAP_VARIABLE, str(path))
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'lookout.db'}")
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    monkeypatch.setenv("LOOKOUT_QUARANTINE_DIR", str(tmp_path))
    monkeypatch.delenv("LOOKOUT_LOADER", raising=False)
    return team


@pytest.fixture
def wh(chdb_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A new warehouse database, named by LOOKOUT_WAREHOUSE_URL."""
    engine = _new_database(chdb_path)
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", engine.url.render_as_string(hide_password=False))
    return engine


def _new_rows(team: str) -> int:
    """Two new activity rows and a ticket solved in the team's database; its id."""
    writer = create_engine(team)
    with writer.begin() as conn:
        last = conn.execute(text("SELECT max(activity_id) FROM activity")).scalar_one()
        ticket = conn.execute(
            text("SELECT min(ticket_id) FROM tickets WHERE state = 'new'")
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO activity (activity_id, occurred_at, actor_id, action, client, "
                "country, device, ip) VALUES (:i, :t, 1, 'log_in', 'iphone', 'NY', 'd', 'p')"
            ),
            [{"i": last + n, "t": "2026-04-01T09:00:00-05:00"} for n in (1, 2)],
        )
        conn.execute(
            text(
                "UPDATE tickets SET state = 'solved', "
                "updated = (SELECT max(updated) FROM tickets) + 60 WHERE ticket_id = :i"
            ),
            {"i": ticket},
        )
    writer.dispose()
    return int(ticket)


def _status(wh: Engine, case_id: int) -> str:
    with wh.connect() as conn:
        query = text("SELECT status FROM cases WHERE id = :i")
        return str(conn.execute(query, {"i": case_id}).scalar_one())


def test_sync_loads_the_warehouse_and_the_next_copy_its_new_rows(helpdesk, wh) -> None:
    code, out, err = _cli("sources", "sync")
    assert (code, err) == (0, ""), err
    lookout = _lookout_counts(database.database_url())
    assert min(lookout.values()) > 0
    assert _warehouse_counts(wh) == lookout
    assert out.splitlines()[-1].startswith("full warehouse load (events from the snapshot): ")
    # New rows in the team's database: the next copy brings them into the warehouse too.
    ticket = _new_rows(helpdesk)
    assert _status(wh, ticket) != "resolved"
    code, out, err = _cli("sources", "sync")
    assert (code, err) == (0, ""), err
    assert out.splitlines()[-1].startswith(
        "incremental warehouse load (events from the snapshot): 2 new events"
    )
    again = _lookout_counts(database.database_url())
    assert again["events"] == lookout["events"] + 2
    assert _warehouse_counts(wh) == again
    assert _status(wh, ticket) == "resolved"
    # A copy that brought nothing leaves the warehouse alone.
    code, out, err = _cli("sources", "sync")
    assert (code, err) == (0, "") and "warehouse load" not in out


def test_a_watch_pass_loads_the_warehouse_after_its_copy(helpdesk, wh) -> None:
    code, out, err = _cli("watch")
    assert code == 0, err
    assert any(line.startswith("full warehouse load ") for line in out.splitlines())
    assert _warehouse_counts(wh) == _lookout_counts(database.database_url())
    _new_rows(helpdesk)
    code, out, err = _cli("watch")
    assert code == 0, err
    assert any(line.startswith("incremental warehouse load ") for line in out.splitlines())
    assert _warehouse_counts(wh) == _lookout_counts(database.database_url())


UNREACHABLE = "clickhousedb://u:s3cret@127.0.0.1:9/db"


def test_a_failed_load_is_one_line_and_the_next_copy_loads_again(
    helpdesk, chdb_path, monkeypatch
) -> None:
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", UNREACHABLE)
    code, out, err = _cli("sources", "sync")
    assert code == 1 and out.startswith("accounts: read ")
    assert len(err.strip().splitlines()) == 1 and "s3cret" not in err
    assert err.startswith("error: data written, but loading the warehouse failed (cannot use ")
    assert err.strip().endswith("run `python -m analytics warehouse load`")
    code, _, err = _cli("watch")  # nothing new, but the warehouse is still behind
    assert code == 1 and "loading the warehouse failed" in err and "s3cret" not in err
    # Reachable again: the next copy loads it though it brings nothing new.
    wh = _new_database(chdb_path)
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    code, out, err = _cli("sources", "sync")
    assert (code, err) == (0, ""), err
    assert "inserted 0, updated 0" in out and "full warehouse load" in out
    assert _warehouse_counts(wh) == _lookout_counts(database.database_url())
    code, out, _ = _cli("sources", "sync")
    assert code == 0 and "warehouse load" not in out


def _wait_for_the_copy(url: str) -> int:
    _started, process, _errors = data._SYNCS[url]
    return process.wait(timeout=HANG_S)


@pytest.mark.slow
@pytest.mark.parametrize("held", [False, True], ids=["unreachable", "chdb-held-by-the-app"])
def test_the_apps_copy_tells_a_failed_load_naming_no_database(
    helpdesk, chdb_path, monkeypatch, held: bool
) -> None:
    """The app copies in a ``sources sync`` process: its load's failure is the banner, with
    no address (a server's host; chdb's folder, which the app's own process holds)."""
    if held:
        wh = _new_database(chdb_path)
        warehouse.init_warehouse(wh)
        monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh.url.render_as_string())
    else:
        monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", UNREACHABLE)
    url = database.database_url()
    models.init_db(database.make_engine(url))
    monkeypatch.setenv("LOOKOUT_SYNC_EVERY", "0")
    data._SYNCS.pop(url, None)
    data._SYNC_FAILED.pop(url, None)
    open_page(monkeypatch, url, "pages/home.py", role="product")
    assert _wait_for_the_copy(url) == 1
    at = open_page(monkeypatch, url, "pages/home.py", role="product")
    assert not at.exception
    told = [b.value for b in [*at.info, *at.warning] if "warehouse" in b.value]
    assert len(told) == 1, told
    why = "chdb cannot open its folder: one process at a time may" if held else "OperationalError"
    assert told[0] == (
        "The team's data was copied through the source map, but not into the warehouse "
        "(LOOKOUT_WAREHOUSE_URL); the charts show its last load: loading the warehouse "
        f"failed ({why}); python -m analytics warehouse load says why"
    )
    assert str(chdb_path) not in told[0] and "127.0.0.1" not in told[0]
    assert _lookout_counts(url)["cases"] > 0  # the copy itself landed
