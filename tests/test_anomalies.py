"""Anomaly scoring: one series and the vectorised scan of many."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.detectors import SpikeDetector, from_spec
from analytics.detectors.anomalies import (
    daily_slices,
    infer_period,
    scan,
    scan_both_ways,
    score_frame,
    score_series,
)

START = datetime(2026, 1, 5)  # a Monday
WEEKLY = [20.0, 22.0, 21.0, 20.0, 19.0, 14.0, 12.0]  # weekday pattern of a count


def _days(n: int) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


def _series(values: list[float] | np.ndarray, ts: list[datetime] | None = None) -> pl.DataFrame:
    values = [float(v) for v in values]
    return pl.DataFrame({"ts": ts or _days(len(values)), "value": values})


def _seasonal(n: int) -> list[float]:
    return [WEEKLY[i % 7] for i in range(n)]


#: The scan's count model with a strict budget (about one false alert per 1,000 days).
COUNTS = ("counts", {"per_days": 1000.0})


def _score(frame: pl.DataFrame, **kwargs) -> pl.DataFrame:
    return score_series(frame, detector=COUNTS, **kwargs)


def _flagged(out: pl.DataFrame) -> list[int]:
    return out.with_row_index("i").filter("is_anomaly")["i"].to_list()


def test_a_spike_is_flagged_once_and_does_not_inflate_the_next_baselines():
    values = _seasonal(84)
    values[60] = 60.0
    out = _score(_series(values))
    assert _flagged(out) == [60]
    assert out["direction"][60] == "up"
    # The days after the spike keep their normal expectation (within one count).
    after = out.slice(61, 7)
    assert (after["expected"] - pl.Series(values[61:68])).abs().max() <= 1.0


def test_a_dip_is_flagged_both_ways_but_not_when_only_rises_matter():
    values = _seasonal(84)
    values[70] = 0.0
    assert _flagged(_score(_series(values))) == [70]
    assert _flagged(_score(_series(values), direction="up")) == []
    assert _score(_series(values))["direction"][70] == "down"


def test_a_level_shift_is_reported_once_then_adopted():
    values = _seasonal(120)
    values[70:] = [2 * v for v in values[70:]]
    flags = _flagged(_score(_series(values)))
    assert flags and flags[0] == 70
    assert flags == list(range(70, 70 + len(flags)))  # one run: a single incident
    assert len(flags) <= 5
    assert all(i < 80 for i in flags)  # adapted: nothing flagged afterwards


def test_missing_points_are_tolerated():
    values = _seasonal(84)
    values[63] = 70.0
    frame = _series(values).with_row_index("i")
    gappy = frame.filter(~pl.col("i").is_in([30, 31, 32, 50])).drop("i")
    gappy = gappy.with_columns(
        pl.when(pl.col("ts") == START + timedelta(days=40))
        .then(float("nan"))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    out = _score(gappy)
    assert out.height == gappy.height
    flagged = out.filter("is_anomaly")["ts"].to_list()
    assert flagged == [START + timedelta(days=63)]


def test_small_counts_use_a_count_model():
    values = [float(i % 2) for i in range(90)]  # 0, 1, 0, 1: a mean of one half
    values[80] = 2.0  # ordinary for such a count
    values[85] = 9.0  # not
    out = _score(_series(values))
    assert _flagged(out) == [85]
    assert out["lower"].drop_nulls().min() >= 0


def test_scores_are_causal():
    values = _seasonal(90)
    values[75] = 50.0
    full = _score(_series(values))
    prefix = _score(_series(values[:76]))
    assert_frame_equal(full.head(76), prefix)


def test_too_little_history_is_insufficient_data_not_an_alert():
    values = _seasonal(40)
    values[3] = 500.0
    out = _score(_series(values))
    assert out["status"][3] == "insufficient data"
    assert not out["is_anomaly"][:21].any()


def test_any_metric_a_gaussian_for_non_counts():
    rng = np.random.default_rng(3)
    values = 10.0 + rng.normal(0, 0.5, 120)
    values[100] = 16.5
    out = _score(_series(values))
    assert 100 in _flagged(out)
    assert len(_flagged(out)) <= 2


def test_sub_daily_data_gets_a_daily_or_weekly_period():
    hours = [START + timedelta(hours=i) for i in range(24 * 10)]
    assert infer_period(pl.Series(hours)) == (24, timedelta(hours=1))
    weeks = [START + timedelta(hours=i) for i in range(24 * 30)]
    assert infer_period(pl.Series(weeks)) == (168, timedelta(hours=1))
    pattern = [10.0 + 8 * np.sin(2 * np.pi * i / 24) for i in range(24 * 10)]
    values = [round(v) for v in pattern]
    values[200] = 60
    out = _score(_series(values, hours))
    assert _flagged(out) == [200]


def test_an_empty_frame_scores_to_an_empty_frame():
    empty = pl.DataFrame(schema={"ts": pl.Datetime("us"), "value": pl.Float64})
    out = _score(empty)
    assert out.is_empty() and {"expected", "score", "is_anomaly"} <= set(out.columns)


def test_many_series_at_once_score_as_each_alone():
    # Enough series for several blocks of the grid (scored on separate threads), in
    # shuffled order, with different lengths: each series' verdicts are its own.
    rng = np.random.default_rng(3)
    frames = []
    for i in range(2100):
        n = 60 + i % 50
        frames.append(_series(rng.poisson(5 + i % 7, n)).with_columns(_series=pl.lit(f"s{i:04d}")))
    together = score_frame(pl.concat(frames).sample(fraction=1.0, seed=1), period=7)
    for i in (0, 1023, 1024, 2099):
        alone = score_series(frames[i].drop("_series"), detector=("counts", {"period": 7}))
        mine = together.filter(pl.col("_series") == f"s{i:04d}").sort("ts")
        columns = ["ts", "value", "expected", "p_value"]
        assert_frame_equal(mine.select(columns), alone.select(columns))


def test_timestamps_that_are_not_regular_are_refused_with_a_message():
    # Points a second apart, then one a year later: a grid at one-second steps would
    # need 31 million cells for 12 points.
    ts = [START + timedelta(seconds=i) for i in range(11)] + [START + timedelta(days=365)]
    with pytest.raises(ValueError, match="not at a regular frequency"):
        _score(_series([1.0] * 12, ts))


# --------------------------------------------------------------------------- the scan


def _noise_slices(n_slices: int, days: int = 150, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=(n_slices, days)).astype(float)
    return pl.DataFrame(
        {
            "slice": np.repeat([f"region=S{i:03d}" for i in range(n_slices)], days),
            "region": np.repeat([f"S{i:03d}" for i in range(n_slices)], days),
            "ts": _days(days) * n_slices,
            "value": counts.ravel(),
        }
    )


@pytest.mark.parametrize("n_slices", [100, 400])
def test_the_scan_controls_false_discoveries_on_pure_noise(n_slices):
    points, incidents = scan(_noise_slices(n_slices))
    tested = points.filter(pl.col("p_value").is_not_null()).height
    # With every null hypothesis true, BH at 1% keeps the family-wise rate near 1% a day:
    # a handful of alerts at most, however many slices are scanned.
    assert points["alert"].sum() <= 0.0005 * tested + 3
    assert (
        incidents.height
        == points.select(
            (pl.col("alert") & ~pl.col("alert").shift(1, fill_value=False).over("slice")).sum()
        ).item()
    )


def test_scan_groups_days_into_incidents_explains_and_suppresses():
    base = _noise_slices(30, days=120, seed=4).with_columns(category=pl.lit("spam", pl.String))
    burst_days = [START + timedelta(days=d) for d in (100, 101, 102)]
    noted_day = START + timedelta(days=90)
    later_day = START + timedelta(days=110)
    bumped = base.with_columns(
        value=pl.when((pl.col("slice") == "region=S001") & pl.col("ts").is_in(burst_days))
        .then(40.0)
        .when((pl.col("slice") == "region=S002") & (pl.col("ts") == noted_day))
        .then(40.0)
        .when((pl.col("slice") == "region=S003") & (pl.col("ts") == later_day))
        .then(40.0)
        .otherwise(pl.col("value"))
    )
    annotations = pl.DataFrame(
        {
            "start_at": [noted_day],
            "end_at": [noted_day + timedelta(days=1)],
            "title": ["Known launch in S002"],
            "category": [None],
            "region": ["S002"],
        },
        schema_overrides={"category": pl.String},
    )
    feedback = pl.DataFrame(
        {
            "metric": ["new_cases"],
            "slice_key": ["region=S003"],
            "alert_start": [START + timedelta(days=60)],
            "verdict": ["not_useful"],
            "value_at_feedback": [35.0],
        }
    )
    _, incidents = scan(bumped, annotations=annotations, feedback=feedback)
    by_slice = {row["slice"]: row for row in incidents.iter_rows(named=True)}
    burst = by_slice["region=S001"]
    assert burst["start"] == burst_days[0] and burst["end"] in burst_days[1:]
    assert burst["days"] >= 2  # one incident for the run, not one alert a day
    assert burst["alerted"] and burst["peak_value"] == 40.0
    assert by_slice["region=S002"]["explained_by"] == "Known launch in S002"
    assert not by_slice["region=S002"]["alerted"]
    assert by_slice["region=S003"]["suppressed"] and not by_slice["region=S003"]["alerted"]
    # The same dismissed pattern, grown past half again its size, is raised again.
    grown = bumped.with_columns(
        value=pl.when((pl.col("slice") == "region=S003") & (pl.col("ts") == later_day))
        .then(80.0)
        .otherwise(pl.col("value"))
    )
    _, again = scan(grown, annotations=annotations, feedback=feedback)
    assert again.filter(pl.col("slice") == "region=S003")["alerted"].to_list() == [True]


def test_daily_slices_complete_the_grid_one_and_two_levels_deep():
    cases = pl.DataFrame(
        {
            "opened_at": [datetime(2026, 1, 1, 9), datetime(2026, 1, 1, 10)],
            "category": ["spam", "spam"],
            "region": ["FL", None],
            "platform": ["web", "ios"],
        }
    )
    out = daily_slices(
        cases,
        start=date(2026, 1, 1),
        end=date(2026, 1, 4),
        dims=("category", "region", "platform"),
        depth=2,
    )
    sizes = out.group_by("slice").agg(pl.len(), pl.col("value").sum()).sort("slice")
    assert set(sizes["len"]) == {3}  # every slice has every day
    totals = dict(zip(sizes["slice"], sizes["value"], strict=True))
    assert totals["all"] == 2.0
    assert totals["category=spam"] == 2.0
    assert totals["region=FL"] == 1.0  # the null region is in no region slice
    assert totals["category=spam|platform=web"] == 1.0
    assert "category=spam|region=FL" in totals
    assert "platform=ios|region=FL" not in totals  # slices are the combinations seen


def test_a_holiday_explains_a_fall_but_not_a_rise():
    base = _noise_slices(20, days=120, seed=5)
    rise_day, fall_day = START + timedelta(days=100), START + timedelta(days=110)
    bumped = base.with_columns(
        value=pl.when((pl.col("slice") == "region=S001") & (pl.col("ts") == rise_day))
        .then(120.0)
        .when(pl.col("ts") == fall_day)
        .then(0.0)
        .otherwise(pl.col("value") + 30.0)  # a high level, so that zero is a fall
    )
    holidays = pl.DataFrame(
        {
            "start_at": [rise_day, fall_day],
            "end_at": [None, None],
            "kind": ["holiday", "holiday"],
            "title": ["Rise day", "Fall day"],
            "category": [None, None],
            "region": [None, None],
        },
        schema_overrides={"category": pl.String, "region": pl.String, "end_at": pl.Datetime},
    )
    _, incidents = scan(bumped, annotations=holidays, direction="up")
    rise = incidents.filter(pl.col("slice") == "region=S001", pl.col("start") == rise_day)
    assert rise["alerted"].to_list() == [True]
    _, falls = scan(bumped, annotations=holidays, direction="down")
    on_fall_day = falls.filter(pl.col("start") == fall_day)
    assert on_fall_day.height > 0
    assert set(on_fall_day["explained_by"]) == {"Fall day"}


def test_falls_are_shown_but_only_rises_alert():
    base = _noise_slices(30, days=120, seed=6).with_columns(pl.col("value") + 20.0)
    rise_day, fall_day = START + timedelta(days=100), START + timedelta(days=110)
    moved = base.with_columns(
        value=pl.when((pl.col("slice") == "region=S001") & (pl.col("ts") == rise_day))
        .then(80.0)
        .when((pl.col("slice") == "region=S002") & (pl.col("ts") == fall_day))
        .then(0.0)
        .otherwise(pl.col("value"))
    )
    incidents = scan_both_ways(moved)
    rise = incidents.filter(pl.col("slice") == "region=S001", pl.col("start") == rise_day)
    fall = incidents.filter(pl.col("slice") == "region=S002", pl.col("start") == fall_day)
    assert rise["direction"].to_list() == ["up"] and rise["alerted"].to_list() == [True]
    assert fall["direction"].to_list() == ["down"] and fall["alerted"].to_list() == [False]
    watched = scan_both_ways(moved, alert_on="down")  # e.g. the proactive rate
    assert watched.filter(pl.col("slice") == "region=S002", pl.col("start") == fall_day)[
        "alerted"
    ].to_list() == [True]


# ------------------------------------------------------- built on the detector registry


def _hourly_noise(n: int = 900, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 5.0, n)


def test_score_series_defaults_to_the_calibrated_ensemble_and_explains_its_alert():
    values = _hourly_noise()
    values[700] = 170.0
    hours = [START + timedelta(hours=i) for i in range(values.size)]
    # 37 days of hourly noise: about 2.6 false alerts at the default budget (one per 14
    # days), about 0.1 at one a year (this seed has one, a 3.9-sigma point at 303).
    out = score_series(_series(values, hours), per_days=365.0)
    alerts = out.with_row_index("i").filter("alert")
    assert 700 in alerts["i"].to_list() and alerts.height <= 2
    alerts = alerts.filter(pl.col("i") == 700)
    by_name = score_series(_series(values, hours), detector=("ensemble", {"per_days": 365.0}))
    assert_frame_equal(out, by_name)
    row = alerts.row(0, named=True)
    assert row["detector"] == "spike" and row["is_anomaly"] and row["status"] == "anomaly"
    assert row["score"] > row["threshold"] and row["reason"].startswith("spike up: 170")
    # Before min_history the ensemble judges nothing; after, every point has a verdict.
    assert out["status"][10] == "insufficient data"
    assert out.filter(pl.col("status") == "anomaly")["incident"].null_count() == 0


def test_score_series_takes_any_registered_detector_and_a_budget():
    values = _hourly_noise()
    values[700] = 170.0
    hours = [START + timedelta(hours=i) for i in range(values.size)]
    frame = _series(values, hours)
    by_spec = score_series(frame, detector=("spike", {"per_days": 30.0}))
    direct = SpikeDetector(per_days=30.0).fit(frame).detect(frame)
    assert np.allclose(by_spec["p_value"].fill_null(-1), direct["p_value"].fill_null(-1))
    # A looser budget lowers the threshold: more points are anomalous.
    loose = score_series(frame, detector=("spike", {}), false_alerts=10.0, per_days=1.0)
    assert loose["threshold"].max() < by_spec["threshold"].min()
    assert loose["is_anomaly"].sum() > by_spec["is_anomaly"].sum()
    with pytest.raises(ValueError, match="unknown detector"):
        score_series(frame, detector=("nope", {}))


def test_the_scan_runs_any_registered_detector_under_the_same_discovery_control():
    base = _noise_slices(40, days=150, seed=8)
    spike_day = START + timedelta(days=120)
    bumped = base.with_columns(
        value=pl.when((pl.col("slice") == "region=S007") & (pl.col("ts") == spike_day))
        .then(30.0)
        .otherwise(pl.col("value"))
    )
    points, incidents = scan(bumped, detector=("spike", {}))
    alerted = incidents.filter("alerted")
    found = alerted.filter(pl.col("slice") == "region=S007")
    assert found["start"].to_list() == [spike_day]
    assert alerted.height <= 2  # BH at 1% a day over 100 judged days: about one false
    # The p-values BH sees are on the budget's scale; every alert is below the level.
    assert points.filter("alert")["p_value"].max() < 0.01


def test_a_slice_alerts_only_within_both_its_budget_and_the_discovery_control():
    # One slice: BH across one test is the p-value itself (1% a day, about one false
    # alert per 100 days of noise); a budget of one false alert per five years is then
    # the stricter gate, and only the planted burst is left.
    values = np.random.default_rng(9).poisson(5.0, 150).astype(float)
    values[119:121] = [11.0, 13.0]
    one = pl.DataFrame(
        {"slice": "region=S000", "region": "S000", "ts": _days(150), "value": values}
    )
    burst = START + timedelta(days=119)
    _, default = scan(one)
    points, strict = scan(one, false_alerts=1.0, per_days=5 * 365.0)
    assert burst in default.filter("alerted")["start"].to_list()
    assert default.filter("alerted").height >= 2  # noise alerts too at 1% a day
    # Strict: the burst's first day (11, p = 0.0008) is within 1% but not within the
    # budget's level (0.0006); its second (13, p = 2e-6) alerts.
    assert strict.filter("alerted")["start"].to_list() == [burst + timedelta(days=1)]
    assert points.filter("alert")["p_value"].max() < 0.001


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "low", "high"),
    [
        ("over-dispersed counts", 0.5, 2.0),
        ("poisson", 0.5, 2.0),
        # Around one a day no count has a tail probability near the level: discreteness
        # makes the count model conservative there (fewer false alerts, never more).
        ("small counts", 0.0, 2.0),
    ],
)
def test_the_count_detector_keeps_its_budget_on_count_noise(family, low, high):
    n_series, n_points = 1000, 400
    rng = np.random.default_rng(0)
    shape = (n_series, n_points)
    values = {
        "over-dispersed counts": rng.negative_binomial(2, 2 / 22, shape),
        "poisson": rng.poisson(20.0, shape),
        "small counts": rng.poisson(1.0, shape),
    }[family].astype(float)
    keys = np.repeat(np.arange(n_series).astype(str), n_points)
    ts = _days(n_points) * n_series
    frame = pl.DataFrame({"series": keys, "ts": ts, "value": values.ravel()})
    out = from_spec(("counts", {"per_days": 30.0})).fit(frame).detect(frame)
    per_30_days = out["alert"].sum() / out["p_value"].is_not_null().sum() * 30.0
    assert low <= per_30_days <= high, per_30_days


# --------------------------------------------------------------------------- the page's rules

from analytics.core.filters import Filters  # noqa: E402
from analytics.metrics.rootcause import explain  # noqa: E402
from analytics.views.anomalies import (  # noqa: E402
    cause_table,
    cause_words,
    current_only,
    incident_rows,
    incident_tables,
    root_cause_rows,
    scan_end,
    within_filters,
)


def _incidents() -> pl.DataFrame:
    t = datetime
    return pl.DataFrame(
        {
            "slice": ["a=1", "b=1", "c=1", "d=1", "e=1", "f=1"],
            "freq": ["daily", "daily", "weekly", "weekly", "daily", "daily"],
            # weeks old; ended on the focus week's Monday; a week ended the Sunday before
            # (not current); one whose week covers the focus week; two still open.
            "start": [t(2026, 11, 2), t(2026, 11, 20), t(2026, 11, 9), t(2026, 11, 23),
                      t(2026, 11, 30), t(2026, 11, 24)],
            "end": [t(2026, 11, 5), t(2026, 11, 23), t(2026, 11, 16), t(2026, 11, 23),
                    t(2026, 12, 5), t(2026, 12, 5)],
        }
    )  # fmt: skip


def test_current_incidents_are_open_or_ended_within_the_focus_week():
    week, end = date(2026, 11, 23), date(2026, 12, 6)
    out = current_only(_incidents(), week=week, end=end)
    assert out.select("slice", "last_day", "ongoing").rows() == [
        ("b=1", date(2026, 11, 23), False),
        ("d=1", date(2026, 11, 29), False),
        ("e=1", date(2026, 12, 5), True),
        ("f=1", date(2026, 12, 5), True),
    ]
    # The latest complete week (or the one in progress) reads to the newest data; an
    # earlier week stops at its end, so nothing after it is seen.
    assert scan_end(week, end) == end
    assert scan_end(date(2026, 11, 30), end) == end
    assert scan_end(date(2026, 11, 16), end) == date(2026, 11, 23)


def test_incident_rows_are_words():
    found = _incidents().with_columns(
        source=pl.lit("events"), peak_value=pl.lit(5.0), peak_expected=pl.lit(1.0),
        score=pl.lit(4.0), direction=pl.lit("down"), explained_by=pl.lit(None, pl.String),
        suppressed=pl.lit(None, pl.Boolean), alerted=pl.lit(True),
        slice=pl.Series(["category=other|specialty=obgyn", "platform=ios", "kind=login_failed",
                         "all", "region=FL", "source=ml_model"]),
    )  # fmt: skip
    rows = incident_rows(incident_tables(found, source="all", text="").alerted)
    assert rows["Slice"].to_list() == [
        "Other · OB-GYN",
        "iOS",
        "Login failed",
        "All",
        "FL",
        "ML model",
    ]
    assert rows["Days"].to_list() == [
        "2–5 Nov",
        "20–23 Nov",
        "9–22 Nov",
        "23–29 Nov",
        "30 Nov–5 Dec",
        "24 Nov–5 Dec",
    ]
    assert set(rows["Status"]) == {"Ended"}  # without ongoing, nothing claims to be open
    assert rows.select("Source", "Scale", "Move", "Explained by", "Dismissed earlier").row(2) == (
        "Events", "Weekly", "Fall", "", False,
    )  # fmt: skip
    # The search finds a slice by its key or by its words, in any case.
    for text in ("obgyn", "OB-GYN", "specialty=obgyn"):
        assert incident_tables(found, source="all", text=text).alerted["slice"].to_list() == [
            "category=other|specialty=obgyn"
        ]


def test_the_sidebar_filters_keep_slices_that_do_not_contradict_them():
    found = pl.DataFrame(
        {"slice": ["region=FL|platform=web", "region=CA", "kind=login", "platform=ios"]}
    )
    kept = within_filters(found, Filters(region=("FL", "TX"), platform=("web",)))
    assert kept["slice"].to_list() == ["region=FL|platform=web", "kind=login"]
    assert within_filters(found, Filters()).height == 4


def test_the_root_cause_in_words_names_the_value_that_stands_out():
    cells = pl.DataFrame(
        {
            "region": ["FL", "FL", "TX", "TX", "CA", "CA"],
            "platform": ["ios", "web"] * 3,
            "actual": [60.0, 60.0, 20.0, 20.0, 20.0, 20.0],
            "expected": [5.0, 5.0, 22.5, 22.5, 22.5, 22.5],
        }
    )
    out = explain(cells, dims=["region", "platform"])
    assert cause_words(out) == (
        "FL (region) stands out: 110% of the change against a usual 10% of cases "
        "(120 against 10 expected). No single platform stands out."
    )
    assert cause_table(out).rows() == [("Region", "FL", "110%", "10%", 120.0, 10.0)]
    assert root_cause_rows(out).rows() == [("Region: FL", 110.0)]
    even = explain(cells.with_columns(actual=pl.col("expected") * 3), dims=["region", "platform"])
    assert cause_words(even, unit="events") == (
        "No single value stands out: every region and platform moved in about its usual proportion."
    )
    assert cause_table(even).is_empty() and root_cause_rows(even).is_empty()


def test_an_alert_does_not_widen_the_band_that_judges_its_continuation():
    """A spike (× 3) on day 70, then six days at × 1.8. Counted into the noise, the spike
    widens the band at once (upper 30 -> 36 -> 35 ...) and the rise that goes on is
    flagged only until day 73; held out of it (the incident chart's setting), the band
    stays as it was and every day of the rise is flagged."""
    values = _seasonal(98)
    for i in range(70, 77):
        values[i] = float(round(values[i] * (3 if i == 70 else 1.8)))
    frame = _series(values)
    spec = {"period": 7, "seasons": 6, "false_alerts": 1.0, "per_days": 30.0}
    counted = score_series(frame, detector=("counts", spec))
    held = score_series(frame, detector=("counts", {**spec, "hold": 4.0}))
    assert _flagged(counted) == [70, 71, 72, 73]
    assert _flagged(held) == list(range(70, 77))
    assert counted["upper"].slice(70, 3).to_list() == [30.0, 36.0, 35.0]
    assert held["upper"].slice(70, 3).to_list() == [30.0, 32.0, 31.0]
    # Before the spike the two agree exactly: nothing was held out yet.
    assert_frame_equal(counted.head(71), held.head(71))
