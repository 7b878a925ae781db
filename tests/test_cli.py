"""The command line as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.core import database
from tests.helpers import HANG_S

ROOT = Path(__file__).resolve().parent.parent
# Each test starts the command line in a new Python process (seconds of imports each).
pytestmark = pytest.mark.slow


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOOKOUT_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "analytics", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_help_lists_the_commands() -> None:
    done = _cli("sqlite://", "--help")
    assert done.returncode == 0
    for command in ("init-db", "seed", "import"):
        assert command in done.stdout


def test_init_db_twice(sqlite_url: str) -> None:
    first = _cli(sqlite_url, "init-db")
    assert first.returncode == 0 and "created tables" in first.stdout
    second = _cli(sqlite_url, "init-db")
    assert second.returncode == 0 and "up to date" in second.stdout


def test_seed_writes_manifest_and_respects_if_empty(db_url: str, tmp_path: Path) -> None:
    manifest = tmp_path / "truth.json"
    args = ["--scale", "small", "--days", "240", "--end", "2026-05-01", "--seed", "3"]
    done = _cli(db_url, "seed", *args, "--manifest", str(manifest))
    assert done.returncode == 0, done.stderr
    truth = json.loads(manifest.read_text())
    assert [s["kind"] for s in truth["scenarios"]] == [
        "fake_review_ring",
        "account_takeover_wave",
        "new_scam",
        "policy_change",
        "ingestion_outage",
    ]
    assert truth == database.get_meta(database.make_engine(db_url), "ground_truth")
    again = _cli(db_url, "seed", "--if-empty", *args, "--manifest", str(tmp_path / "x.json"))
    assert again.returncode == 0 and "not seeding" in again.stdout
    assert not (tmp_path / "x.json").exists()


def test_seed_refuses_non_demo_data(sqlite_url: str, tmp_path: Path) -> None:
    args = ["--scale", "small", "--days", "240", "--manifest", str(tmp_path / "t.json")]
    assert _cli(sqlite_url, "seed", *args).returncode == 0
    database.set_meta(database.make_engine(sqlite_url), "non_demo_data", True)
    assert "--force" in _one_line_error(_cli(sqlite_url, "seed", *args))
    assert _cli(sqlite_url, "seed", *args, "--force").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--end", "2026-13-01"], "is not a date"),
        (["--days", "30"], "at least 240"),
        (["--manifest", "/proc/forbidden/truth.json", "--days", "240"], "cannot write manifest"),
    ],
)
def test_seed_bad_input_is_one_line(sqlite_url: str, args: list[str], message: str) -> None:
    line = _one_line_error(_cli(sqlite_url, "seed", "--scale", "small", *args))
    assert message in line


def test_unreachable_database_is_one_line() -> None:
    line = _one_line_error(_cli("postgresql+psycopg://u:topsecret@127.0.0.1:1/x", "init-db"))
    assert "topsecret" not in line and "***" in line


def test_seed_builds_the_snapshot_and_refresh_keeps_it_fresh(sqlite_url: str, tmp_path: Path):
    args = ["--scale", "small", "--days", "240", "--manifest", str(tmp_path / "t.json")]
    seeded = _cli(sqlite_url, "seed", *args)
    assert seeded.returncode == 0, seeded.stderr
    assert "full refresh of" in seeded.stdout
    again = _cli(sqlite_url, "refresh")
    assert again.returncode == 0 and again.stdout.strip().endswith("is up to date")
    full = _cli(sqlite_url, "refresh", "--full")
    assert full.returncode == 0 and full.stdout.startswith("full refresh of")


def test_refresh_into_an_unwritable_folder_is_one_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LOOKOUT_SNAPSHOT_DIR", str(blocker / "snapshots"))
    line = _one_line_error(_cli(sqlite_url, "refresh"))
    assert "cannot write the snapshot" in line


def test_evaluate_reports_every_scenario(sqlite_url: str, tmp_path: Path) -> None:
    args = ["--scale", "small", "--days", "240", "--manifest", str(tmp_path / "t.json")]
    assert _cli(sqlite_url, "seed", *args).returncode == 0
    done = _cli(sqlite_url, "evaluate")
    assert done.returncode == 0, done.stderr
    for kind in (
        "fake_review_ring",
        "account_takeover_wave",
        "new_scam",
        "policy_change",
        "ingestion_outage",
    ):
        assert f"| {kind} |" in done.stdout
    assert "per 90 days" in done.stdout
    assert "| fake_review_ring + account_takeover_wave |" in done.stdout


def test_evaluate_without_ground_truth_is_one_line(sqlite_url: str) -> None:
    assert "seed the demo first" in _one_line_error(_cli(sqlite_url, "evaluate"))


def test_a_product_brief_of_a_running_week_is_refused(small_db: str, tmp_path: Path) -> None:
    """The small demo ends on a Friday: its last week is still being counted, and two
    product briefs of it read on two days could be subtracted (issue 14, item 2)."""
    url = small_db
    out = tmp_path / "brief.html"
    done = _cli(url, "report", "--week", "2026-W18", "--audience", "product", "--out", str(out))
    assert done.returncode == 2
    assert "complete weeks only" in _one_line_error(done)
    assert not out.exists()
    done = _cli(url, "report", "--week", "2026-W17", "--audience", "product", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.exists()
