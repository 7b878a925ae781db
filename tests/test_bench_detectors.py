"""The detector benchmark: its NAB-style scorer on hand-made windows, the folder loader,
and the causality of the reference detectors."""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench import nab

# 100 hourly rows: rows 0-14 are probation (floor(0.15 * 100)), one window over rows 40-49.
TS = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(100)]
WINDOW = [(TS[40], TS[49])]


def sigmoid(y: float) -> float:
    """NAB's scaled sigmoid, written out by hand."""
    return -1.0 if y >= 3 else 2 / (1 + math.exp(5 * y)) - 1


S_START = 2 / (1 + math.exp(-5)) - 1  # an alert at a window's first row: 0.98661...


def alerts_at(*rows: int, n: int = 100) -> list[bool]:
    return [i in rows for i in range(n)]


def one(*rows: int, windows=WINDOW) -> nab.FileScore:
    return nab.score_file(TS, alerts_at(*rows), windows)


def test_probation_is_15_percent_at_most_750():
    assert [nab.probation_rows(n) for n in (100, 1624, 4032, 5000, 10_000)] == [
        15,
        243,
        604,
        750,
        750,
    ]


@pytest.mark.parametrize(
    ("rows", "raw", "normalised"),
    [
        ((40,), S_START, 100.0),  # the window's first row: the most a detection earns
        ((45,), 2 / (1 + math.exp(-20 / 9)) - 1, None),  # y = -(49 - 45) / 9
        ((49,), 0.0, 100 * 1 / (S_START + 1)),  # its last row: detected, but worth nothing
        ((45, 40, 49), S_START, 100.0),  # only the first alert counts
    ],
)
def test_early_alert_earns_more_than_late(rows, raw, normalised):
    s = one(*rows)
    assert (s.tp, s.fn, s.fp, s.fp_points, s.windows) == (1, 0, 0, 0, 1)
    assert s.nab_raw == pytest.approx(raw, abs=1e-12)
    assert (s.nab_null, s.nab_perfect) == (-1.0, pytest.approx(S_START, abs=1e-12))
    table = nab.score({"f/a.csv": s})
    assert table["f1"].to_list() == [1.0, 1.0]
    expected = normalised if normalised is not None else 100 * (raw + 1) / (S_START + 1)
    assert table["nab"].to_list() == pytest.approx([expected] * 2, abs=1e-9)


def test_the_earlier_the_detection_the_more_it_earns():
    early, late = one(41).nab_raw, one(49).nab_raw
    assert early > one(45).nab_raw > late == 0.0


def test_alerts_in_probation_are_ignored():
    # an alert at row 3, and a window entirely in probation (rows 5-9) with an alert in it
    windows = [(TS[5], TS[9]), *WINDOW]
    s = nab.score_file(TS, alerts_at(3, 7, 14), windows)
    assert (s.probation, s.windows, s.tp, s.fn, s.fp, s.fp_points) == (15, 1, 0, 1, 0, 0)
    assert s.nab_raw == -1.0
    table = nab.score({"f/a.csv": s}).row(0, named=True)
    assert (table["precision"], table["recall"], table["f1"], table["nab"]) == (None, 0, 0, 0)
    # the same alert one row after probation is a false positive, at full price
    s = nab.score_file(TS, alerts_at(15), windows)
    assert (s.fp, s.fp_points) == (1, 1)
    assert s.nab_raw == pytest.approx(-1.0 + 0.11 * sigmoid((15 - 9) / 4), abs=1e-12)


def test_a_run_of_false_alerts_is_one_false_positive_but_each_row_costs():
    s = one(40, 60, 61, 62, 70, 80, 81)
    assert (s.tp, s.fn, s.fp, s.fp_points) == (1, 0, 3, 6)
    costs = [sigmoid((row - 49) / 9) for row in (60, 61, 62, 70, 80, 81)]
    assert s.nab_raw == pytest.approx(S_START + 0.11 * sum(costs), abs=1e-12)
    row = nab.score({"f/a.csv": s}).row(0, named=True)
    assert (row["precision"], row["recall"], row["f1"]) == (0.25, 1.0, 0.4)  # 2/(2+3+0)
    assert row["false_alerts_per_series"] == 3.0
    # a run is cut by the window: alerts on both sides of it are two runs
    assert one(38, 39, 40, 50, 51).fp == 2
    # the variant charging NAB's cost once per run: the first row of each
    per_run = nab.score_file(TS, alerts_at(40, 60, 61, 62, 70, 80, 81), WINDOW, charge="run")
    costs = [sigmoid((row - 49) / 9) for row in (60, 70, 80)]
    assert per_run.nab_raw == pytest.approx(S_START + 0.11 * sum(costs), abs=1e-12)
    assert (per_run.fp, per_run.fp_points) == (3, 6)


def test_false_alert_just_after_a_window_is_cheaper_than_far_away():
    just_after, three_widths, far, before_any = one(50), one(76), one(95), one(20)
    assert just_after.fp == far.fp == before_any.fp == 1
    assert just_after.nab_raw == pytest.approx(-1 + 0.11 * sigmoid(1 / 9), abs=1e-12)
    assert 0.11 * sigmoid(1 / 9) == pytest.approx(-0.029794, abs=1e-6)
    assert three_widths.nab_raw == pytest.approx(-1.11, abs=1e-12)  # (76 - 49) / 9 = 3
    assert far.nab_raw == pytest.approx(-1.11, abs=1e-12)
    assert before_any.nab_raw == pytest.approx(-1.11, abs=1e-12)  # no window before it
    assert just_after.nab_raw > one(52).nab_raw > far.nab_raw


def test_false_alert_is_priced_from_the_closest_window_before_it():
    windows = [(TS[30], TS[34]), (TS[60], TS[69])]  # widths 5 and 10
    s = nab.score_file(TS, alerts_at(30, 36, 60), windows)
    assert (s.tp, s.fn, s.fp) == (2, 0, 1)
    assert s.nab_raw == pytest.approx(2 * S_START + 0.11 * sigmoid((36 - 34) / 4), abs=1e-12)


def test_one_row_window_counts_as_its_own_start():
    s = nab.score_file(TS, alerts_at(40, 41), [(TS[40], TS[40])])
    assert (s.tp, s.fp) == (1, 1)
    assert s.nab_raw == pytest.approx(S_START + 0.11 * sigmoid(1.0), abs=1e-12)


def test_never_alerting_scores_0_and_perfect_100_over_files():
    two = [(TS[20], TS[29]), (TS[70], TS[89])]
    files = {"a/x.csv": WINDOW, "a/y.csv": two, "b/z.csv": []}
    never = {name: nab.score_file(TS, alerts_at(), w) for name, w in files.items()}
    firsts = {"a/x.csv": (40,), "a/y.csv": (20, 70), "b/z.csv": ()}
    perfect = {name: nab.score_file(TS, alerts_at(*firsts[name]), w) for name, w in files.items()}
    never_t, perfect_t = nab.score(never), nab.score(perfect)
    assert never_t["group"].to_list() == ["a", "b", "overall"]
    assert never_t["nab"].to_list() == [0.0, None, 0.0]
    assert never_t["windows"].to_list() == [3, 0, 3]
    assert never_t["f1"].to_list() == [0.0, None, 0.0]
    assert perfect_t["nab"].to_list() == [100.0, None, 100.0]
    assert perfect_t["f1"].to_list() == [1.0, None, 1.0]
    assert perfect_t["nab_raw"].to_list() == pytest.approx([3 * S_START, 0.0, 3 * S_START])


def test_score_sums_counts_over_files_before_dividing():
    # file a: one window missed, one run of two false alerts; file b: early detection
    a = nab.score_file(TS, alerts_at(90, 91), WINDOW)
    b = nab.score_file(TS, alerts_at(40), WINDOW)
    c = nab.score_file(TS, alerts_at(60), [])
    table = nab.score({"f/a.csv": a, "f/b.csv": b, "g/c.csv": c})
    overall = table.row(-1, named=True)
    assert (overall["tp"], overall["fn"], overall["fp"], overall["fp_points"]) == (1, 1, 2, 3)
    assert (overall["precision"], overall["recall"]) == (1 / 3, 0.5)
    assert overall["f1"] == pytest.approx(0.4)  # 2 / (2 + 2 + 1)
    raw = -1 - 0.22 + S_START - 0.11
    assert overall["nab_raw"] == pytest.approx(raw, abs=1e-12)
    assert overall["nab"] == pytest.approx(100 * (raw + 2) / (2 * S_START + 2), abs=1e-9)
    assert overall["false_alerts_per_series"] == pytest.approx(2 / 3)
    g = table.row(1, named=True)
    assert (g["precision"], g["recall"], g["nab"], g["nab_raw"]) == (0.0, None, None, -0.11)


def test_alerts_as_series_with_nulls_and_wrong_length():
    s = nab.score_file(pl.Series(TS), pl.Series([None] * 40 + [True] + [None] * 59), WINDOW)
    assert s.tp == 1
    with pytest.raises(ValueError, match="99 alerts for 100 timestamps"):
        nab.score_file(TS, alerts_at(n=99), WINDOW)


# --- the folder loader -------------------------------------------------------------


def make_folder(root: Path, files: dict[str, str], windows: object) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if windows is not None:
        (root / "windows.json").write_text(
            windows if isinstance(windows, str) else json.dumps(windows)
        )
    return root


CSV = "timestamp,value\n2026-01-01 00:00:00,1.5\n2026-01-01 01:00:00,2\n2026-01-01 02:00:00,3\n"


def test_load_reads_families_files_and_windows(tmp_path):
    root = make_folder(
        tmp_path,
        {"web/a.csv": CSV, "web/b.csv": CSV, "db/c.csv": CSV},
        {
            "web/a.csv": [["2026-01-01 01:00:00.000000", "2026-01-01 02:00:00"]],
            "web/b.csv": [],
            "db/c.csv": [],
        },
    )
    series = nab.load(root)
    assert [(s.family, s.name) for s in series] == [
        ("db", "db/c.csv"),
        ("web", "web/a.csv"),
        ("web", "web/b.csv"),
    ]
    assert series[1].windows == ((datetime(2026, 1, 1, 1), datetime(2026, 1, 1, 2)),)
    assert series[1].frame.schema == pl.Schema({"ts": pl.Datetime("us"), "value": pl.Float64})
    assert series[1].frame["value"].to_list() == [1.5, 2.0, 3.0]


@pytest.mark.parametrize(
    ("files", "windows", "message"),
    [
        ({"f/a.csv": CSV}, None, "no windows.json"),
        ({"f/a.csv": CSV}, "{not json", "not valid JSON"),
        ({"f/a.csv": CSV}, ["f/a.csv"], "must be an object"),
        ({"f/a.csv": CSV}, {"f/a.csv": [["2026-01-01"]]}, "list of [start, end]"),
        ({"f/a.csv": CSV}, {"f/a.csv": [["yesterday", "today"]]}, "not ISO 8601"),
        ({"f/a.csv": CSV}, {"f/a.csv": [["2026-01-02", "2026-01-01"]]}, "starts after it ends"),
        (
            {"f/a.csv": CSV},
            {"f/a.csv": [["2026-01-01", "2026-01-03"], ["2026-01-02", "2026-01-04"]]},
            "overlapping windows",
        ),
        ({"f/a.csv": CSV, "f/b.csv": CSV}, {"f/a.csv": []}, "f/b.csv has no entry"),
        ({"f/a.csv": CSV}, {"f/a.csv": [], "f/z.csv": []}, "names f/z.csv"),
        ({"a.csv": CSV}, {"a.csv": []}, "no CSV files in family subfolders"),
        ({"f/a.csv": "time,value\n2026-01-01,1\n"}, {"f/a.csv": []}, "missing column(s) timestamp"),
        ({"f/a.csv": "timestamp,value\nnoon,1\n"}, {"f/a.csv": []}, "unparseable timestamp"),
        ({"f/a.csv": "timestamp,value\n2026-01-01,x\n"}, {"f/a.csv": []}, "unparseable"),
        (
            {"f/a.csv": "timestamp,value\n2026-01-02,1\n2026-01-01,2\n"},
            {"f/a.csv": []},
            "timestamps must be sorted",
        ),
    ],
)
def test_load_refuses_a_malformed_folder_in_one_line(tmp_path, files, windows, message):
    root = make_folder(tmp_path, files, windows)
    with pytest.raises(nab.FolderError) as caught:
        nab.load(root)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(str(root))


def test_load_refuses_a_missing_folder(tmp_path):
    with pytest.raises(nab.FolderError, match="not a folder"):
        nab.load(tmp_path / "absent")


def test_repeated_timestamps_are_scored_by_row():
    # NAB's own files repeat a timestamp (a clock change); the scorer counts rows
    ts = TS[:50] + [TS[49]] * 5 + TS[50:95]
    s = nab.score_file(ts, alerts_at(52), WINDOW)
    assert (s.tp, s.fp) == (1, 0)  # row 52 has the window's end timestamp: inside
    assert np.isclose(s.nab_raw, sigmoid(-(54 - 52) / 14))


# --- the detectors and the benchmark ---------------------------------------------------


def hourly(n: int, *, seed: int = 1) -> pl.DataFrame:
    """A daily cycle with noise, a spike and a level shift."""
    rng = np.random.default_rng(seed)
    h = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.5, n)
    values[n // 2] += 30
    values[2 * n // 3 :] += 6
    ts = [datetime(2026, 1, 1) + timedelta(hours=int(i)) for i in h]
    return pl.DataFrame({"ts": ts, "value": values})


@pytest.mark.parametrize("name", ["median_mad", "seasonal_naive"])
def test_references_are_causal(name):
    from bench.detectors import REFERENCES

    detect = REFERENCES[name]
    full = hourly(900)
    flags = detect(full)
    assert flags.dtype == np.bool_ and flags.shape == (900,)
    assert flags[450]  # the spike
    for cut in (300, 451, 620, 899):
        np.testing.assert_array_equal(detect(full.head(cut)), flags[:cut])


def test_references_find_a_spike_and_spare_a_flat_or_short_series():
    from bench.detectors import median_mad, seasonal_naive

    flat = hourly(200).with_columns(value=pl.lit(5.0))
    assert not median_mad(flat).any() and not seasonal_naive(flat).any()
    assert not median_mad(hourly(20)).any()  # fewer past points than the minimum
    assert seasonal_naive(hourly(900))[450]


def install_fake_detectors(monkeypatch):
    """A stand-in ``analytics.detectors`` with one estimator of each output kind."""
    import types

    class Predicts:
        def fit(self, frame):
            self.level_ = frame["value"].median()
            return self

        def predict(self, frame):
            return frame["value"] > 3 * self.level_

    class Scores(Predicts):
        predict = None  # type: ignore[assignment]

        def score_samples(self, frame):
            return frame.with_columns(p_value=pl.lit(0.5), alert=pl.col("value") > 3 * self.level_)

    del Scores.predict
    fake = types.ModuleType("analytics.detectors")
    fake.DETECTORS = {"predicts": Predicts, "scores": Scores, "median_mad": Predicts}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "analytics.detectors", fake)


def test_registered_estimators_join_the_references(monkeypatch):
    from bench import detectors

    install_fake_detectors(monkeypatch)
    found = detectors.available()
    assert list(found) == [
        "median_mad",
        "seasonal_naive",
        "lookout",
        "predicts",
        "scores",
        "detectors.median_mad",
    ]
    frame = hourly(300)
    expected = (frame["value"] > 3 * frame["value"].median()).to_numpy()
    np.testing.assert_array_equal(found["predicts"](frame), expected)
    np.testing.assert_array_equal(found["scores"](frame), expected)


def test_run_scores_any_folder_and_writes_markdown_and_json(tmp_path, monkeypatch):
    from bench import detectors

    install_fake_detectors(monkeypatch)
    frame = hourly(900)
    csv = frame.with_columns(timestamp=pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"))
    for family, name in [("web", "a.csv"), ("web", "b.csv"), ("quiet", "c.csv")]:
        (tmp_path / "in" / family).mkdir(parents=True, exist_ok=True)
        csv.select("timestamp", "value").write_csv(tmp_path / "in" / family / name)
    spike = [[str(frame["ts"][445]), str(frame["ts"][460])]]
    windows = {"web/a.csv": spike, "web/b.csv": spike, "quiet/c.csv": []}
    (tmp_path / "in" / "windows.json").write_text(json.dumps(windows))

    tables = detectors.run(tmp_path / "in", ["median_mad", "predicts"], out=tmp_path / "out")
    assert [t.title.split(": ")[1] for t in tables] == [
        "quiet (1 files, 0 windows)",
        "web (2 files, 2 windows)",
        "overall (3 files, 2 windows)",
    ]
    assert [row[0] for row in tables[-1].rows] == ["median_mad", "predicts"]
    assert tables[1].rows[0][1:3] == ("2", "0")  # median_mad finds both spikes
    report = json.loads((tmp_path / "out" / "detectors.json").read_text())
    assert {r["group"] for r in report["groups"]} == {"quiet", "web", "overall"}
    assert len(report["files"]) == 6
    assert "| detector | TP |" in (tmp_path / "out" / "detectors.md").read_text()
    with pytest.raises(KeyError, match="unknown detector nope"):
        detectors.run(tmp_path / "in", ["nope"], out=None)


def test_cli_says_in_one_line_what_is_wrong_with_a_folder(tmp_path, monkeypatch, capsys):
    from bench.__main__ import main

    monkeypatch.setattr(sys, "argv", ["bench", "detectors", "--nab", str(tmp_path)])
    assert main() == 2
    assert (
        capsys.readouterr().err
        == f"{tmp_path}: no windows.json (it maps family/file.csv to [[start, end], ...])\n"
    )
