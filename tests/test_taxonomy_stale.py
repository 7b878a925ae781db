"""A taxonomy changed in the source map while the app runs: the frames' types are fixed
when the process starts, so the pages keep the old one; every page then says to restart
(``taxonomy.stale``, shown by the readiness banner) instead of silently using it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analytics.core import taxonomy
from tests.test_taxonomy import HELPDESK_TOML


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = 1_800_000_000 + bump  # a new modification time for every version
    os.utime(path, (stamp, stamp))


def test_a_changed_taxonomy_asks_for_a_restart(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / f"map-{tmp_path.name}.toml"  # a path of its own: read once per path
    _write(path, HELPDESK_TOML, 0)
    monkeypatch.setenv(taxonomy.MAP_VARIABLE, str(path))
    started = taxonomy.active()  # what the process started with
    assert started.category_names[0] == "fraud"
    assert taxonomy.stale() is None
    _write(
        path, HELPDESK_TOML.replace("[taxonomy.categories.misc]", "[taxonomy.categories.other]"), 1
    )
    assert taxonomy.stale() == taxonomy.STALE_NOTE
    assert taxonomy.active() is started  # the pages keep the one in force
    _write(path, HELPDESK_TOML, 2)  # put back as it was: nothing to say
    assert taxonomy.stale() is None


@pytest.mark.parametrize("broken", ["[taxonomy", "[taxonomy.categories.x]\nexposure = 3\n"])
def test_a_map_that_cannot_be_read_says_nothing_here(tmp_path: Path, monkeypatch, broken) -> None:
    path = tmp_path / "map.toml"
    _write(path, HELPDESK_TOML, 0)
    monkeypatch.setenv(taxonomy.MAP_VARIABLE, str(path))
    taxonomy.active()
    _write(path, broken, 1)  # checking the map reports it, with its line
    assert taxonomy.stale() is None
    path.unlink()
    assert taxonomy.stale() is None


def test_the_banner_says_it(own_small_db: str, tmp_path: Path, monkeypatch) -> None:
    from ui import data

    path = tmp_path / f"map-{tmp_path.name}.toml"
    _write(path, HELPDESK_TOML, 0)
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", own_small_db)  # its own: readiness may copy
    monkeypatch.setenv(taxonomy.MAP_VARIABLE, str(path))
    monkeypatch.setenv("LOOKOUT_SYNC_EVERY", "999999")
    taxonomy.active()
    _write(path, HELPDESK_TOML.replace("sla_hours = 1\n", "sla_hours = 2\n"), 1)
    state, notice = data.readiness()
    assert state == "ok" and taxonomy.STALE_NOTE in notice
