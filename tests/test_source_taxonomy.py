"""A team that keeps its own taxonomy (issue 20, item 2, end to end): the helpdesk's map
declares its own categories (``fake-reviews``, ``booking-fraud``, ``misc`` as the
catch-all...), its channels as case sources and its priorities p4 to p1 with their SLAs;
copied through that map, every page runs on it in plain words and speaks in its
categories, and the brief's SLA sentence uses its priorities. Each run is a process of its
own with ``LOOKOUT_SOURCE_MAP`` set, as the app is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.core.database import PROJECT_ROOT
from analytics.demo.helpdesk import build_helpdesk, helpdesk_map
from tests.helpers import HANG_S

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("source_taxonomy")]


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def own_taxonomy(tmp_path_factory: pytest.TempPathFactory, small_demo_file: Path) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("own_taxonomy")
    team = f"sqlite:///{folder / 'helpdesk.db'}"
    build_helpdesk(team, f"sqlite:///{small_demo_file}")
    path = folder / "helpdesk.toml"
    path.write_text(helpdesk_map(team, own_taxonomy=True), encoding="utf-8")
    env = {
        **os.environ,
        "LOOKOUT_DATABASE_URL": f"sqlite:///{folder / 'lookout.db'}",
        "LOOKOUT_SOURCE_MAP": str(path),
        "LOOKOUT_SYNC_EVERY": "86400",
        "LOOKOUT_QUARANTINE_DIR": str(folder),
        "LOOKOUT_SNAPSHOT_DIR": str(folder / "snapshots"),
    }
    out = _run(env, "-m", "analytics", "seed", "--if-empty")
    assert "cases: read 2131, inserted 2131, updated 0, unchanged 0, quarantined 0" in out
    return env


def test_every_page_speaks_the_teams_taxonomy(own_taxonomy: dict[str, str]) -> None:
    shown = json.loads(_run(own_taxonomy, "-m", "tests.taxonomy_walk"))
    for path, page in shown.items():
        assert page["exceptions"] == [], path
        assert page["offences"] == [], path
    # The category filter offers the team's categories, in its order, and only those.
    home = shown["pages/home.py"]["texts"]
    start = home.index("Fake reviews")
    assert home[start : start + 8] == [
        "Fake reviews",
        "Abuse",
        "Spam",
        "Booking fraud",
        "Account security",
        "Payments",
        "Privacy",
        "Misc",
    ]
    assert "P1" in home and "Web form" in home
    everything = " ".join(t for page in shown.values() for t in page["texts"])
    for ours in ("Fake review ", "Harassment", "Payment fraud", "Critical"):
        assert ours not in everything, ours
    # Emerging topics are found in the team's catch-all.
    emerging = " ".join(shown["pages/emerging.py"]["texts"])
    assert "in category Misc" in emerging


def test_the_brief_uses_the_teams_priorities(own_taxonomy: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "brief.md"
    _run(
        own_taxonomy,
        "-m", "analytics", "report", "--week", "2026-W17", "--audience", "leadership",
        "--format", "md", "--out", str(out),
    )  # fmt: skip
    brief = out.read_text(encoding="utf-8")
    assert re.search(r"first\\?-response SLA 2 h p1, 12 h p2, 48 h p3, 120 h p4\)", brief)
    assert re.search(r"\n\| p1 \| \d+ \| \d+ \|", brief)  # the table by severity
    assert "Critical" not in brief and "critical" not in brief
