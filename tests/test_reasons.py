"""Each detector's alert says, in its own words and numbers, why it fired."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analytics.detectors import from_spec


def _frame(values: np.ndarray, step: timedelta) -> pl.DataFrame:
    ts = [datetime(2026, 1, 1) + step * i for i in range(values.size)]
    return pl.DataFrame({"ts": ts, "value": values})


def _noise(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 5.0, n)


def _record() -> np.ndarray:
    values = _noise(5000)
    values[4500] = 200.0
    return values


def _count_spike() -> np.ndarray:
    values = np.random.default_rng(2).poisson(20.0, 200).astype(float)
    values[150] = 70.0
    return values


@pytest.mark.parametrize(
    ("name", "values", "step", "opening"),
    [
        ("range", _record(), timedelta(minutes=5), "new high: beyond the highest of the recent"),
        ("spike", _record(), timedelta(minutes=5), "spike up: 200.0 against"),
        ("counts", _count_spike(), timedelta(days=1), "count up beyond its negative-binomial"),
    ],
)
def test_an_alert_names_its_detector_in_words_and_numbers(name, values, step, opening):
    frame = _frame(values, step)
    alerts = from_spec((name, {"per_days": 365.0})).fit(frame).detect(frame).filter("alert")
    assert alerts.height == 1, alerts.select("ts", "reason")
    reason = alerts["reason"][0]
    assert reason.startswith(opening), reason
    assert "expected" in reason and ", p = " in reason


def test_a_four_hour_level_shift_names_its_span():
    # Four 90-minute bumps of 3 scales, then one of three hours: only the median of
    # the last four hours shows it (the ensemble's second level member).
    values = np.random.default_rng(0).normal(10.0, 1.0, 12 * 24 * 14)
    for at in (1000, 1700, 2400, 3100):
        values[at : at + 18] += 3.0
    values[3700:3736] += 3.0
    frame = _frame(values, timedelta(minutes=5))
    alerts = from_spec(("ensemble", {})).fit(frame).detect(frame).filter("alert")
    level = alerts.filter(pl.col("detector") == "level 4h")
    assert level.height == 1, alerts.select("ts", "detector")
    reason = level["reason"][0]
    assert reason.startswith("level shift up: the last 4 hours' median "), reason
    assert "noise scales from the median of the two days before (limit " in reason
    assert ", p = " in reason
