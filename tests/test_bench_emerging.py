"""The emerging-topic replay benchmark: loading, ground truth and scores on hand-made
streams with exact expected values."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from bench import emerging
from bench.emerging import StreamError, label_days, load, replay, score, surges
from tests.helpers import HANG_S

DAY0 = date(2026, 1, 1)


def _write(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    path = tmp_path / "stream.csv"
    frame = pl.DataFrame(rows, schema=["id", "opened_at", "text", "kind"], orient="row")
    frame.write_csv(path)
    return path


def _stream(tmp_path: Path) -> emerging.Stream:
    """``a``: one item a day for 60 days; ``b``: three a day on days 45-47 only."""
    rows = []
    for d in range(60):
        rows.append((f"a{d}", f"{DAY0 + timedelta(days=d)}T09:00:00", f"routine {d}", "a"))
    for d in (45, 46, 47):
        for k in range(3):
            when = f"{DAY0 + timedelta(days=d)}T1{k}:00:00Z"
            rows.append((f"b{d}{k}", when, f"new scam wording {k}", "b"))
    return load(_write(tmp_path, rows), ["kind"])


def test_a_stream_loads_with_any_iso_time_and_drops_rows_without_time_or_text(tmp_path):
    rows = [
        ("1", "2026-01-01T10:00:00", "naive", "x"),
        ("2", "2026-01-01T10:00:00Z", "utc", "x"),
        ("3", "2026-01-01T12:00:00+02:00", "offset", "x"),
        ("4", "yesterday", "no time", "x"),
        ("5", "2026-01-01T10:00:00", "  ", "x"),
    ]
    stream = load(_write(tmp_path, rows), ["kind"])
    assert stream.dropped == 2
    assert stream.items["opened_at"].to_list() == [datetime(2026, 1, 1, 10)] * 3
    assert stream.items["source_id"].to_list() == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("content", "labels", "message"),
    [
        (None, ["kind"], "no such file"),
        ("id,opened_at,text\n1,2026-01-01,x\n", ["kind"], "missing column(s) kind"),
        ("id,opened_at,text,kind\n1,never,x,a\n", ["kind"], "no row has both"),
        ("id,opened_at,text,kind\n1,2026-01-01,x,a\n", [], "at least one label"),
    ],
)
def test_a_stream_that_cannot_be_replayed_is_refused_in_one_line(
    tmp_path, content, labels, message
):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(StreamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(path, labels)


def test_the_ground_truth_follows_the_readme_rule(tmp_path):
    stream = _stream(tmp_path)
    daily = label_days(stream, "kind").filter(pl.col("day") == DAY0 + timedelta(days=47))
    b = daily.filter(pl.col("value") == "b").row(0, named=True)
    a = daily.filter(pl.col("value") == "a").row(0, named=True)
    assert (b["recent"], b["expected"], b["surging"]) == (9, 0.0, True)
    assert (a["recent"], a["expected"], a["surging"], a["grew"]) == (7, 7.0, False, False)
    events = surges(stream)
    assert events.rows() == [
        ("kind", "b", DAY0 + timedelta(days=47), DAY0 + timedelta(days=51))
    ]  # no wave: 16 recent against 7 expected is not 3x


def _flagging(day: date, kind: str):
    def detector(window: pl.DataFrame, as_of: datetime) -> list[list[int]]:
        if as_of.date() != day + timedelta(days=1):
            return []
        recent = window.filter(pl.col("opened_at") >= as_of - timedelta(days=7))
        return [[i for i, t in zip(recent["id"], recent["text"], strict=True) if kind in t]]

    return detector


def test_scores_on_a_hand_made_replay(tmp_path):
    stream = _stream(tmp_path)
    scam, _, _ = replay(stream, _flagging(DAY0 + timedelta(days=48), "scam"))
    routine, days, timings = replay(stream, _flagging(DAY0 + timedelta(days=40), "routine"))
    assert days[0] == DAY0 + timedelta(days=35) and days[-1] == DAY0 + timedelta(days=59)
    assert len(timings) == len(days) == 25
    flags = pl.concat([scam, routine.with_columns(pl.col("flag") + 1)])
    result = score(stream, flags, days=days)
    assert result["surges"] == 1 and result["caught"] == 1 and result["recall"] == 1.0
    assert result["median_delay"] == 1.0  # onset day 47, flagged at the end of day 48
    assert result["flags"] == 2 and result["flags_per_day"] == 2 / 25
    # Quiet days: the 20 replayed days outside the surge (days 47-51); one flag on them.
    assert result["quiet_flags_per_day"] == 1 / 20
    assert result["grew"] == 0.5  # the scam grew; the routine topic did not
    assert result["waves"] == 0 and result["waves_caught"] == 0


def test_a_flag_mostly_of_other_items_does_not_match_a_surge(tmp_path):
    stream = _stream(tmp_path)
    # Day 48: the 7 routine items of the week and the 3 scam items whose text ends in 0.
    flagged = _flagging(DAY0 + timedelta(days=48), "routine")
    scam_zero = _flagging(DAY0 + timedelta(days=48), "wording 0")

    def mixed(window: pl.DataFrame, as_of: datetime) -> list[list[int]]:
        both = flagged(window, as_of) + scam_zero(window, as_of)
        return [sum(both, [])] if both else []

    flags, days, _ = replay(stream, mixed)
    dominant = emerging._dominant(stream, flags, "kind").row(0, named=True)
    assert (dominant["value"], dominant["share"]) == ("a", 0.7)
    assert score(stream, flags, days=days)["caught"] == 0


@pytest.mark.slow
def test_the_command_refuses_bad_arguments_with_exit_2(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bench", "emerging", *args],
            capture_output=True,
            text=True,
            timeout=HANG_S,
            check=False,
        )

    missing = run("--csv", str(tmp_path / "none.csv"), "--labels", "kind")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unpaired = run("--csv", str(tmp_path / "none.csv"))
    assert unpaired.returncode == 2 and "one --labels" in unpaired.stderr
    assert "Traceback" not in missing.stderr + unpaired.stderr
