"""analytics.metrics.nowcast: projections of the week in progress, exact on hand-built
frames and tested against the final values of the small demo replayed as of mid-week."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.core import database
from analytics.core.filters import Filters
from analytics.metrics import nowcast, trends, weekly
from analytics.metrics.trends import example_cube
from analytics.sources import load
from analytics.sources.frames import Cube

MONDAY = date(2026, 11, 30)


def _history(method: str, at_age: list[float], final: list[float], dens=None) -> pl.DataFrame:
    n = len(at_age)
    den_at, den_final = dens or (at_age, final)
    return pl.DataFrame(
        {
            "target": [MONDAY] * n,
            "key": ["m"] * n,
            "method": [method] * n,
            "at_age": at_age,
            "final": final,
            "den_at_age": [float(d) for d in den_at],
            "den_final": [float(d) for d in den_final],
        }
    )


def _current(so_far: float, *, provisional: bool = True) -> pl.DataFrame:
    return pl.DataFrame(
        {"target": [MONDAY], "key": ["m"], "so_far": [so_far], "provisional": [provisional]}
    )


def test_a_count_is_moved_by_the_median_ratio_with_a_prediction_range() -> None:
    # Four earlier weeks had 50%, 40%, 60% and 80% of their final count at this age.
    history = _history("ratio", [50.0, 40.0, 60.0, 80.0], [100.0] * 4)
    out = nowcast.project(history, _current(30.0), level=0.6)
    expected = pl.DataFrame(
        {
            "target": [MONDAY],
            "key": ["m"],
            "so_far": [30.0],
            "projected": [30.0 * (2.0 + 100 / 60) / 2],  # the median of 2.5, 2, 1.67, 1.25
            # ranks (n + 1) p = 1 and 4: the smallest and largest ratio
            "low": [30.0 * 1.25],
            "high": [30.0 * 2.5],
            "completeness": [0.55],
            "complete": [False],
            "weeks": pl.Series([4], dtype=pl.UInt32),
        }
    )
    assert_frame_equal(out, expected)


def test_a_rate_is_shifted_and_kept_between_zero_and_one() -> None:
    # The rate rose by 10, 12 and 14 points between this age and the end.
    history = _history(
        "shift", [0.10, 0.08, 0.06], [0.20, 0.20, 0.20], dens=([40, 50, 60], [100, 100, 100])
    )
    out = nowcast.project(history, _current(0.95), level=0.5).row(0, named=True)
    assert out["projected"] == 1.0  # 0.95 + 0.12, held at 100%
    out = nowcast.project(history, _current(0.05), level=0.5).row(0, named=True)
    assert out["projected"] == pytest.approx(0.17)
    assert (out["low"], out["high"]) == (pytest.approx(0.15), pytest.approx(0.19))
    assert out["completeness"] == 0.5 and out["complete"] is False


def test_a_level_keeps_its_value_and_takes_the_counts_range() -> None:
    history = _history("level", [50.0, 40.0, 60.0], [100.0] * 3)
    out = nowcast.project(history, _current(58.0), level=0.5).row(0, named=True)
    assert out["projected"] == 58.0
    assert out["low"] == pytest.approx(58.0 * (100 / 60) / 2.0)
    assert out["high"] == pytest.approx(58.0 * 2.5 / 2.0)


def test_too_few_earlier_weeks_give_no_projection() -> None:
    history = _history("ratio", [50.0, 40.0], [100.0, 100.0])
    out = nowcast.project(history, _current(30.0)).row(0, named=True)
    assert out["projected"] is None and out["completeness"] is None
    assert out["complete"] is False  # unfinished and unknown: not drawn as real
    out = nowcast.project(history, _current(30.0, provisional=False)).row(0, named=True)
    assert out["complete"] is True


def test_a_count_of_zero_so_far_is_not_projected() -> None:
    history = _history("ratio", [5.0, 4.0, 6.0], [100.0] * 3)
    out = nowcast.project(history, _current(0.0)).row(0, named=True)
    assert out["projected"] is None and out["complete"] is False


def test_complete_enough_from_ninety_percent() -> None:
    history = _history("ratio", [90.0, 89.0, 95.0], [100.0] * 3)
    assert nowcast.project(history, _current(80.0))["complete"].to_list() == [True]
    history = _history("ratio", [89.0, 88.0, 95.0], [100.0] * 3)
    assert nowcast.project(history, _current(80.0))["complete"].to_list() == [False]


def test_weekly_metrics_at_an_age_see_each_week_as_it_stood() -> None:
    cube = example_cube()
    # One day after each Monday: case 1 (Mon 09:00) is open, not yet responded to or
    # resolved; case 2 (Wednesday) and case 3 (the next Tuesday 09:00) have not arrived.
    out = trends.weekly_metrics(cube, age=timedelta(days=1))
    assert out.select("week", "new_cases", "resolved", "responded").rows() == [
        (date(2026, 11, 9), 1, 0, 0),  # its response came on Tuesday at 09:00
        (date(2026, 11, 16), 0, 0, 0),
    ]
    assert trends.weekly_metrics(cube)["resolved"].to_list() == [2, 0]


# --------------------------------------------------------------------------- the small demo


def _replayed(cube: Cube, cut: datetime) -> Cube:
    """The cube as it stood at ``cut``: the cases opened by then, their states then."""
    seen = trends.as_it_stood(cube.cases.lazy(), pl.lit(cut)).collect()
    exposure = cube.exposure.filter(pl.col("day") < cut.date())
    return replace(cube, cases=seen, exposure=exposure, as_of=cut, memo={})


@pytest.fixture(scope="module")
def demo_cube(small_db: str) -> Cube:
    engine = database.make_engine(small_db)
    try:
        return load.load_cube(
            engine, Filters(start=date(2025, 12, 1), end=date(2026, 4, 30)), loader="pushdown"
        )
    finally:
        engine.dispose()


def test_a_mid_week_projection_holds_the_final_value(demo_cube: Cube) -> None:
    """The small demo replayed as of Thursday noon of a past week: the week's new cases,
    projected from how the weeks before it filled in, hold its final count in their range
    and are closer to it than the count so far."""
    monday = date(2026, 4, 13)
    cut = datetime(2026, 4, 16, 12)
    out = nowcast.weekly_nowcast(_replayed(demo_cube, cut))
    final = trends.weekly_metrics(demo_cube).filter(pl.col("week") == monday)
    row = out.filter(pl.col("week") == monday, pl.col("key") == "new_cases").row(0, named=True)
    truth = float(final["new_cases"][0])
    assert row["complete"] is False
    assert row["low"] <= truth <= row["high"]
    assert abs(row["projected"] - truth) < abs(row["so_far"] - truth)
    seen = trends.weekly_metrics(_replayed(demo_cube, cut)).filter(pl.col("week") == monday)
    assert row["so_far"] == float(seen["new_cases"][0])


def test_replayed_projections_beat_the_values_so_far(demo_cube: Cube) -> None:
    """Over every mid-week moment of 8 past weeks, the projections of values not yet
    complete are nearer their final values than the values so far, and most final values
    fall in the projected range."""
    final = trends.weekly_metrics(demo_cube)
    rows = []
    for monday in final["week"].to_list()[-10:-2]:
        for hours in (36, 84, 132, 228):
            cut = datetime.combine(monday, datetime.min.time()) + timedelta(hours=hours)
            out = nowcast.weekly_nowcast(_replayed(demo_cube, cut)).filter(
                pl.col("week") == monday, ~pl.col("complete"), pl.col("key") != "prevalence"
            )
            rows.append(out)
    tall = final.unpivot(index="week", on=list(nowcast.SERIES), variable_name="key")
    both = (
        pl.concat(rows)
        .join(tall.rename({"value": "final"}), on=["week", "key"])
        .drop_nulls(["projected", "final"])
    )
    error = (both["projected"] - both["final"]).abs().median()
    so_far = (both["so_far"] - both["final"]).abs().median()
    inside = both.select(pl.col("final").is_between(pl.col("low"), pl.col("high")).mean()).item()
    assert both.height > 100
    assert error < so_far
    assert inside >= 0.6


def test_the_week_in_progress_is_projected_and_untested(demo_cube: Cube) -> None:
    cut = datetime(2026, 4, 2, 12)
    view = weekly.weekly_view(_replayed(demo_cube, cut), week=date(2026, 3, 30))
    cards = {r["key"]: r for r in view.kpis.to_dicts()}
    assert cards["new_cases"]["complete"] is False
    assert cards["new_cases"]["projected"] > cards["new_cases"]["value"]
    assert cards["new_cases"]["p_previous"] is None and cards["new_cases"]["p_baseline"] is None
    assert not cards["new_cases"]["significant"] and not cards["new_cases"]["significant_baseline"]
    assert cards["backlog"]["complete"] is True and cards["backlog"]["p_previous"] is not None
    series = view.series("new_cases").filter(pl.col("week") == date(2026, 3, 30)).row(0, named=True)
    assert series["complete"] is False and series["projected"] == cards["new_cases"]["projected"]
    # the week before, ended and old enough, is drawn and tested as a real value
    before = weekly.weekly_view(_replayed(demo_cube, cut), week=date(2026, 3, 23))
    assert before.kpis.filter(pl.col("key") == "new_cases")["complete"].to_list() == [True]


def test_the_unfinished_day_is_projected_from_the_same_hours_of_earlier_days(
    demo_cube: Cube,
) -> None:
    cut = datetime(2026, 4, 2, 12)
    today = nowcast.daily_nowcast(_replayed(demo_cube, cut)).row(0, named=True)
    opened = demo_cube.cases["opened_at"]
    so_far = opened.is_between(datetime(2026, 4, 2), cut).sum()
    assert today["day"] == date(2026, 4, 2) and today["so_far"] == so_far
    assert today["weeks"] == 28  # the 28 days before it
    assert today["complete"] is False and today["projected"] > so_far
