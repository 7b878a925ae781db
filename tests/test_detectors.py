"""Calibrated detectors behind a registry (analytics.detectors, issue 15)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analytics.detectors import DETECTORS, from_spec, point_alpha, to_spec

START = datetime(2026, 1, 5)


def _frame(values: np.ndarray, step: timedelta = timedelta(hours=1)) -> pl.DataFrame:
    ts = [START + i * step for i in range(len(values))]
    return pl.DataFrame({"ts": ts, "value": np.asarray(values, dtype=float)})


def _noise(n: int = 600, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 5.0, n)


def _spike() -> np.ndarray:
    v = _noise()
    v[450] = 170.0
    return v


def _dip() -> np.ndarray:
    v = _noise()
    v[450] = 30.0
    return v


def _shift() -> np.ndarray:
    v = _noise()
    v[400:] += 25.0
    return v


def _daily() -> np.ndarray:
    # A daily cycle of 40 around 100, with a value normal at the peak placed in a trough.
    t = np.arange(24 * 30)
    v = 100 + 40 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(4).normal(0, 2, t.size)
    trough = 24 * 25 + 18
    v[trough] = 140.0
    return v


def _flat_then_jump() -> np.ndarray:
    v = np.full(500, 45.0)
    v[420] = 60.0
    return v


QUIET = {"per_days": 365.0}
CASES: list = [
    # (detector, params, series, expected incident openings or a (lo, hi) range for one)
    ("spike", QUIET, _spike, [450]),
    ("spike", QUIET, _dip, [450]),
    ("spike", {**QUIET, "direction": "up"}, _dip, []),
    ("spike", {**QUIET, "direction": "down"}, _dip, [450]),
    # Passes since the tail may not claim a value rarer than the past shows (it was a
    # known false alert on day 12 as the daily model took over).
    ("spike", QUIET, _daily, [24 * 25 + 18]),
    ("spike", QUIET, lambda: np.full(500, 45.0), []),
    pytest.param(
        "spike",
        QUIET,
        _flat_then_jump,
        [420],
        marks=pytest.mark.xfail(reason="known: off a flat line p = 1/(n+1), above small budgets"),
    ),
    ("shift", QUIET, _shift, (400, 410)),
    ("ensemble", {"per_days": 90.0}, _spike, [450]),
    ("ensemble", QUIET, _shift, (400, 410)),
    ("ensemble", QUIET, lambda: _noise(seed=7), []),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), CASES)
def test_detector_cases(name, params, series, expected):
    frame = _frame(series())
    opened = from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list()
    if isinstance(expected, tuple):
        assert len(opened) == 1 and expected[0] <= opened[0] <= expected[1], opened
    else:
        assert opened == expected


def test_a_level_shift_is_one_incident_and_says_which_detector_fired():
    frame = _frame(_shift())
    out = from_spec(("ensemble", QUIET)).fit(frame).detect(frame)
    assert out["alert"].sum() == 1
    assert out["incident"].drop_nulls().n_unique() == 1
    alert = out.filter("alert").row(0, named=True)
    assert alert["detector"] in ("spike", "shift")
    assert alert["p_value"] < 10 ** -alert["threshold"]
    assert alert["reason"].split()[0] in ("spike", "level")
    assert "expected" in alert["reason"]


def test_a_spike_does_not_enter_its_own_baseline():
    clean, spiked = _noise(), _spike()
    det = from_spec(("spike", QUIET))
    a = det.fit(_frame(clean)).detect(_frame(clean))
    b = det.fit(_frame(spiked)).detect(_frame(spiked))
    # The spike's own expectation, and the next ones, barely move.
    assert abs(a["expected"][450] - b["expected"][450]) < 1e-9
    assert (a["expected"] - b["expected"]).slice(451, 20).abs().max() < 2.0
    assert b["value"][450] > b["upper"][450]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_flags_on_a_prefix_do_not_change_when_later_data_arrives(name):
    values = _spike()
    values[300:] += 15.0
    full, prefix = _frame(values), _frame(values[:420])
    det = from_spec((name, {}))
    a = det.fit(full).detect(full).head(420)
    b = det.fit(prefix).detect(prefix)
    assert a["alert"].to_list() == b["alert"].to_list()
    assert np.allclose(a["p_value"].fill_null(-1).to_numpy(), b["p_value"].fill_null(-1).to_numpy())


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_registry_round_trip_gives_the_same_scores(name):
    frame = _frame(_spike())
    det = DETECTORS[name](false_alerts=2.0, per_days=14.0)
    spec = to_spec(det)
    assert spec[0] == name and spec[1]["per_days"] == 14.0
    again = from_spec(spec)
    assert again.get_params() == det.get_params()
    assert np.array_equal(
        det.fit(frame).score_samples(frame), again.fit(frame).score_samples(frame)
    )


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_estimator_shape(name):
    frame = _frame(_spike())
    det = DETECTORS[name]()
    with pytest.raises(RuntimeError, match="not fitted"):
        det.score_samples(frame)
    assert det.fit(frame) is det
    assert det.alpha_[""] == pytest.approx(det.alpha_[""]) and det.steps_[""] == timedelta(hours=1)
    scores, decision = det.score_samples(frame), det.decision_function(frame)
    assert scores.shape == decision.shape == (frame.height,)
    # The threshold is the budget's level (the ensemble's: its judging member's share).
    gaps = scores - decision
    assert (gaps >= -np.log10(det.alpha_[""]) - 1e-9).all()
    flags = det.predict(frame)
    assert flags.dtype == pl.Boolean and flags.len() == frame.height
    with pytest.raises(ValueError, match="unknown parameter"):
        det.set_params(nope=1)
    with pytest.raises(ValueError, match="unknown detector"):
        from_spec(("nope", {}))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_many_series_at_once_score_as_each_alone(name):
    # Different lengths, a gap, an unsorted frame: scored together as each alone.
    a, b = _frame(_spike()), _frame(_shift()[:500])
    b = b.filter(~pl.int_range(pl.len()).is_between(100, 110))
    both = pl.concat(
        [a.with_columns(series=pl.lit("a")), b.with_columns(series=pl.lit("b"))]
    ).sample(fraction=1.0, shuffle=True, seed=1)
    det = from_spec((name, {}))
    together = det.fit(both).detect(both).sort("series", "ts")
    for key, alone in (("a", a), ("b", b)):
        own = det.fit(alone).detect(alone)
        part = together.filter(pl.col("series") == key)
        assert part["alert"].to_list() == own["alert"].to_list()
        assert np.allclose(
            part["p_value"].fill_null(-1).to_numpy(), own["p_value"].fill_null(-1).to_numpy()
        )


def _families(n_series: int, n_points: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (n_series, n_points)
    return {
        "gaussian": rng.normal(100, 10, shape),
        "student-t 3": 100 + 10 * rng.standard_t(3, shape),
        "log-normal": rng.lognormal(3, 1, shape),
        "over-dispersed counts": rng.negative_binomial(2, 2 / 22, shape).astype(float),
        "small counts": rng.poisson(1.0, shape).astype(float),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["spike", "ensemble"])
def test_false_alerts_on_noise_match_the_budget_within_a_factor_of_two(name):
    n_series, n_points = 1000, 400
    ts = [START + timedelta(days=i) for i in range(n_points)]
    keys = np.repeat(np.arange(n_series).astype(str), n_points)
    det = from_spec((name, {"false_alerts": 1.0, "per_days": 30.0}))
    for family, values in _families(n_series, n_points).items():
        frame = pl.DataFrame({"series": keys, "ts": ts * n_series, "value": values.ravel()})
        out = det.fit(frame).detect(frame)
        judged_days = out["p_value"].is_not_null().sum()  # daily points
        per_30_days = out["alert"].sum() / judged_days * 30.0
        assert 0.5 <= per_30_days <= 2.0, (family, per_30_days)


def test_the_budget_is_converted_from_the_sampling_step():
    assert point_alpha(1.0, 30, timedelta(days=1)) == pytest.approx(1 / 30)
    assert point_alpha(2.0, 7, timedelta(hours=1)) == pytest.approx(2 / 168)
    with pytest.raises(ValueError):
        point_alpha(0.0, 30, timedelta(days=1))


def test_the_tail_never_claims_a_value_rarer_than_the_past_shows():
    # A spike that recurred ten times in 300 past points is about 1 in 30, not rarer,
    # however light the tail fitted to the rest.
    from analytics.detectors import conformal_pvalues

    past = np.random.default_rng(5).normal(0.0, 1.0, 300)
    past[::30] = 50.0
    p = conformal_pvalues(np.r_[past, 50.0][None, :], window=400, min_history=50, refresh=300)
    assert p[0, -1] == pytest.approx(11 / 301)


def _volatile() -> np.ndarray:
    v = _noise(700, seed=3)
    v[450:] = 100.0 + (v[450:] - 100.0) * 4.0  # the same level, four times the spread
    return v


def test_a_rise_of_volatility_is_one_incident_of_the_volatility_cusum():
    frame = _frame(_volatile())
    out = from_spec(("shift", QUIET)).fit(frame).detect(frame).with_row_index().filter("alert")
    assert out["index"].to_list() == [454] and out["detector"][0] == "volatility"
    assert out["reason"][0].startswith("volatility rise")
    off = from_spec(("shift", {**QUIET, "volatility": None})).fit(frame).detect(frame)
    assert "volatility" not in off["detector"].to_list()


def test_the_ensemble_reports_a_volatility_rise_and_checks_its_shares():
    frame = _frame(_volatile())
    out = from_spec(("ensemble", QUIET)).fit(frame).detect(frame).filter("alert")
    assert out.height >= 1 and set(out["detector"]) <= {"spike", "volatility"}
    with pytest.raises(ValueError, match="shift_share"):
        from_spec(("ensemble", {"shift_share": 1.5})).fit(frame).detect(frame)


def _drops_to_zero() -> np.ndarray:
    v = _noise(700, seed=8)
    v[500:560] = 0.0
    return v


def _stuck() -> np.ndarray:
    v = _noise(700, seed=9)
    v[500:540] = v[499]
    return v


def _often_flat() -> np.ndarray:
    # Every 50 points the value holds for 30: a hold of 30 is this series' habit.
    v = _noise(700, seed=10)
    for start in range(0, 700, 50):
        v[start : start + 30] = v[start]
    return v


def _often_zero() -> np.ndarray:
    v = _noise(700, seed=11)
    for start in range(0, 700, 40):
        v[start : start + 15] = 0.0
    return v


STUCK_CASES: list = [
    # (params, series, expected incident openings)
    # (a run never seen before opens an incident within a few points)
    ({}, _drops_to_zero, (500, 506)),
    ({"same_value": True}, _stuck, (500, 506)),
    ({}, _stuck, []),  # a stuck value far from zero is judged only with same_value
    ({"same_value": True}, _often_flat, []),
    ({}, _often_zero, []),
    ({"same_value": True}, lambda: np.full(600, 45.0), []),  # never changed: not judged
    ({}, lambda: np.zeros(600), []),
]


@pytest.mark.parametrize(("params", "series", "expected"), STUCK_CASES)
def test_stuck_cases(params, series, expected):
    frame = _frame(series())
    opened = from_spec(("stuck", {**QUIET, **params})).fit(frame).predict(frame)
    if isinstance(expected, tuple):
        assert len(opened.arg_true()) == 1 and expected[0] <= opened.arg_true()[0] <= expected[1]
    else:
        assert opened.arg_true().to_list() == expected


def test_the_ensemble_opens_one_incident_when_a_series_falls_to_zero():
    frame = _frame(_drops_to_zero())
    out = from_spec(("ensemble", QUIET)).fit(frame).detect(frame).with_row_index()
    alerts = out.filter("alert")
    assert alerts.height == 1 and 500 <= alerts["index"][0] <= 506, alerts
    assert alerts["reason"][0] != ""


def test_a_fall_to_zero_says_so_in_numbers():
    frame = _frame(_drops_to_zero())
    out = from_spec(("stuck", QUIET)).fit(frame).detect(frame).filter("alert")
    assert out["detector"].to_list() == ["zero"]
    assert out["reason"][0].startswith("fall to zero: ")


# ---------------------------------------------------------------------------
# Block means (analytics.detectors.blocks): a drift or a cluster of bursts that no
# single point shows, on the hourly means of a 5-minute series.

FIVE_MINUTES = timedelta(minutes=5)
TWO_WEEKS = 12 * 24 * 14  # 5-minute points


def _hours_drift() -> np.ndarray:
    # Two hours one noise scale higher: every point within the noise, the hours not.
    v = np.random.default_rng(0).normal(10.0, 1.0, TWO_WEEKS)
    v[3000:3024] += 1.0
    return v


def _burst_cluster() -> np.ndarray:
    # A server idle between single-point bursts (one every 3 hours), then an hour
    # with a burst every 10 minutes, each no larger than the usual ones.
    rng = np.random.default_rng(1)
    v = 1.0 + rng.exponential(0.05, TWO_WEEKS)
    bursts = np.arange(100, TWO_WEEKS, 12 * 3)
    v[bursts] += rng.uniform(4.0, 6.0, bursts.size)
    v[3002:3014:2] = 5.0
    return v


BLOCK_CASES: list = [
    # (detector, params, series, expected incident openings or a (lo, hi) range for one)
    ("block", {}, _hours_drift, [3011]),
    ("spike", {}, _hours_drift, []),
    ("ensemble", {}, _hours_drift, (3000, 3023)),
    ("ensemble", {"block_share": 0.0, "level_share": 0.0}, _hours_drift, []),
    ("block", {}, _burst_cluster, [3011]),
    ("ensemble", {}, _burst_cluster, (3000, 3023)),
    ("ensemble", {"block_share": 0.0, "level_share": 0.0}, _burst_cluster, []),
    ("block", {}, lambda: np.random.default_rng(2).normal(10.0, 1.0, TWO_WEEKS), []),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), BLOCK_CASES)
def test_block_cases(name, params, series, expected):
    frame = _frame(series(), FIVE_MINUTES)
    opened = from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list()
    if isinstance(expected, tuple):
        assert len(opened) == 1 and expected[0] <= opened[0] <= expected[1], opened
    else:
        assert opened == expected


def test_blocks_are_idle_on_hourly_and_daily_series():
    for step in (timedelta(hours=1), timedelta(days=1)):
        frame = _frame(_spike(), step)
        out = from_spec(("block", {})).fit(frame).detect(frame)
        assert out["p_value"].null_count() == frame.height and not out["alert"].any()


def test_an_unusual_hour_says_which_detector_fired():
    frame = _frame(_hours_drift(), FIVE_MINUTES)
    out = from_spec(("ensemble", {})).fit(frame).detect(frame).filter("alert")
    assert out["detector"].to_list() == ["block"]
    assert out["p_value"][0] < 10 ** -out["threshold"][0]


# ------------------------------------------------------ fast paths against plain loops
# The detectors' grid functions are written for speed (ranks merged block by block,
# shared moving windows); these check them against the plain per-row definitions.


def _plain_pvalues(stat, past, *, window, min_history, refresh, level, tail=None, min_tail=10):
    """Per row and block: (1 + #past >= x) / (1 + n) over the window, the ``need``-th
    largest past value as the critical value, and (with ``tail``) the fitted tail."""
    from analytics.detectors.calibration import _gpd_pwm

    p = np.full(stat.shape, np.nan)
    crit = np.full(stat.shape, np.nan)
    levels = np.broadcast_to(level, stat.shape[:1])
    for i in range(stat.shape[0]):
        for start in range(0, stat.shape[1], refresh):
            ref = np.sort(past[i, max(0, start - window) : start])
            ref = ref[~np.isnan(ref)]
            n = len(ref)
            if n < max(min_history, 1):
                continue
            need = int(np.floor(levels[i] * (1 + n))) - 1
            cells = slice(start, start + refresh)
            crit[i, cells] = np.inf if need < 1 else ref[max(n - need, 0)]
            for j in range(start, min(start + refresh, stat.shape[1])):
                if not np.isnan(stat[i, j]):
                    p[i, j] = (1 + np.sum(ref >= stat[i, j])) / (1 + n)
            k = min(max(int(np.ceil(tail * n)), min_tail), n - 1) if tail else 0
            if tail is None or k < min_tail:
                continue
            u = ref[n - k - 1]
            sigma, xi = (v[0] for v in _gpd_pwm((ref[n - k :] - u)[None, :], np.array([k])))
            for j in range(start, min(start + refresh, stat.shape[1])):
                excess = stat[i, j] - u
                if excess > 0 and sigma > 0:
                    s = (
                        (1 + xi * excess / sigma) ** (-1 / xi)
                        if xi >= 1e-6
                        else np.exp(-excess / sigma)
                    )
                    shown = p[i, j] if np.sum(ref >= stat[i, j]) > 0 else 0.0
                    p[i, j] = min(1.0, max(k / (1 + n) * max(s, 1e-300), shown))
    return p, crit


def _grid(rng, shape, kind):
    g = rng.poisson(2.0, shape).astype(float) if kind == "ties" else rng.standard_normal(shape)
    g[rng.random(shape) < 0.1] = np.nan
    return g


@pytest.mark.parametrize("seed", range(6))
def test_conformal_ranks_match_a_plain_loop(seed):
    from analytics.detectors.calibration import conformal_pvalues

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(20, 120)))
    stat = _grid(rng, shape, "ties" if seed % 2 else "normal")
    past = None if seed % 3 else _grid(rng, shape, "ties")
    options = {"window": int(rng.choice([15, 40, 500])), "min_history": 5, "refresh": seed + 1}
    level = rng.uniform(0.01, 0.4, shape[0])
    # min_tail beyond the width: ranks only, no fitted tail
    p, crit = conformal_pvalues(stat, reference=past, level=level, min_tail=1000, **options)
    expected_p, expected_crit = _plain_pvalues(
        stat, stat if past is None else past, level=level, **options
    )
    np.testing.assert_array_equal(p, expected_p)
    np.testing.assert_array_equal(crit, expected_crit)


@pytest.mark.parametrize("seed", range(4))
def test_conformal_tail_matches_a_plain_loop(seed):
    from analytics.detectors.calibration import conformal_pvalues

    rng = np.random.default_rng(seed)
    stat = np.abs(rng.standard_t(3, (3, 150)))
    stat[rng.random(stat.shape) < 0.05] = np.nan
    options = {"window": 60 if seed % 2 else 500, "min_history": 30, "refresh": 7}
    p = conformal_pvalues(stat, tail=0.1, min_tail=5, **options)
    expected, _ = _plain_pvalues(stat, stat, level=0.05, tail=0.1, min_tail=5, **options)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=0)


def test_conformal_rows_without_queries_change_nothing_and_judged_marks_history():
    from analytics.detectors.calibration import conformal_pvalues, judged_cells

    rng = np.random.default_rng(7)
    stat = rng.poisson(1.0, (8, 200)).astype(float)
    past = _grid(rng, stat.shape, "ties")
    options = {"window": 120, "min_history": 40, "reference": past}
    full = conformal_pvalues(stat, **options)
    sparse = stat.copy()
    sparse[::2] = np.nan  # rows with nothing to judge are skipped
    part = conformal_pvalues(sparse, **options)
    np.testing.assert_array_equal(part[1::2], full[1::2])
    assert np.isnan(part[::2]).all()
    np.testing.assert_array_equal(judged_cells(past, window=120, min_history=40), ~np.isnan(full))


# ---------------------------------------------------------------------------
# Quiet hours (analytics.detectors.hours): a jump at night judged against the nights,
# not against the day's larger swings.


def _quiet_nights() -> np.ndarray:
    # Sixty days of hourly noise four times wider from 9:00 to 17:00, and a jump of
    # 14 at 3:00 on day 50: within the day's swings, far beyond the nights'.
    t = np.arange(24 * 60)
    day = (t % 24 >= 9) & (t % 24 < 17)
    v = 100.0 + np.random.default_rng(3).normal(0.0, 1.0, t.size) * np.where(day, 4.0, 1.0)
    v[24 * 50 + 3] += 14.0
    return v


QUIET_HOURS_CASES: list = [
    # (detector, params, series, expected incident openings)
    ("spike", {"per_days": 90.0}, _quiet_nights, [24 * 50 + 3]),
    ("spike", {"per_days": 90.0, "quiet_days": None}, _quiet_nights, []),
    ("ensemble", {"per_days": 90.0}, _quiet_nights, [24 * 50 + 3]),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), QUIET_HOURS_CASES)
def test_quiet_hours_cases(name, params, series, expected):
    frame = _frame(series())
    assert from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list() == expected


def test_quiet_hours_never_widen_the_scale_and_skip_daily_series():
    from analytics.detectors.hours import quiet_hours

    resid = _quiet_nights()[None, :] - 100.0
    factor = quiet_hours(resid, 24, days=14, half=1)
    assert factor.min() == 0.5 and factor.max() == 1.0 and (factor[:, :48] == 1.0).all()
    daily = _frame(_spike(), timedelta(days=1))
    spike = from_spec(("spike", {})).fit(daily).detect(daily)
    plain = from_spec(("spike", {"quiet_days": None})).fit(daily).detect(daily)
    assert spike["p_value"].equals(plain["p_value"])


# ---------------------------------------------------------------------------
# Level shifts (analytics.detectors.levels): the last hour's median against the two days
# before it, so that a shift larger than any before is found after an earlier one.


def _spike_then_shifts() -> np.ndarray:
    # A spike of 60 scales as the level rises by 3 (day 3), then a rise of 12 more
    # (day 10): every later jump is small beside the spike.
    v = np.random.default_rng(0).normal(10.0, 1.0, TWO_WEEKS)
    v[900] += 60.0
    v[901:] += 3.0
    v[2880:] += 12.0
    return v


LEVEL_CASES: list = [
    # (detector, params, series, expected incident openings or a (lo, hi) range for one)
    ("level", {}, _spike_then_shifts, (2880, 2891)),
    ("spike", {}, _spike_then_shifts, [900]),
    ("level", {}, lambda: np.random.default_rng(2).normal(10.0, 1.0, TWO_WEEKS), []),
    ("level", {}, _hours_drift, (3000, 3023)),  # the two hours higher by one scale
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), LEVEL_CASES)
def test_level_cases(name, params, series, expected):
    frame = _frame(series(), FIVE_MINUTES)
    opened = from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list()
    if isinstance(expected, tuple):
        assert len(opened) == 1 and expected[0] <= opened[0] <= expected[1], opened
    else:
        assert opened == expected


def test_the_ensemble_reports_a_second_larger_shift_as_level():
    frame = _frame(_spike_then_shifts(), FIVE_MINUTES)
    out = from_spec(("ensemble", {})).fit(frame).detect(frame).filter("alert")
    assert out["detector"].to_list() == ["spike", "level"]
    opened = frame.with_row_index().join(out.select("ts"), on="ts")["index"].to_list()
    assert opened[0] == 900 and 2880 <= opened[1] <= 2891


def test_levels_are_idle_on_hourly_series_and_on_a_quantised_jitter():
    frame = _frame(_spike())
    out = from_spec(("level", {})).fit(frame).detect(frame)
    assert out["p_value"].null_count() == frame.height and not out["alert"].any()
    # Values on a grid of 0.5 around a level: the hour's median flips by one step
    # now and then, which is the series' resolution, not a shift.
    jitter = np.round(np.random.default_rng(5).normal(10.0, 0.3, TWO_WEEKS) * 2) / 2
    frame = _frame(jitter, FIVE_MINUTES)
    assert not from_spec(("level", {})).fit(frame).predict(frame).any()


# ---------------------------------------------------------------------------
# Records (analytics.detectors.ranges): a value beyond the range of the last two weeks,
# by more of it than the series' earlier records, found on a bursty series whose bursts
# of every size leave the spike detector no rare scale.


def _bursts(record: float = 150.0, sign: float = 1.0) -> np.ndarray:
    # 150 bursts of 0-100 on a floor of 1 (the largest first, before any point is
    # judged), then one of ``record`` near the end.
    rng = np.random.default_rng(5)
    v = rng.normal(1.0, 0.1, TWO_WEEKS)
    at = rng.choice(TWO_WEEKS - 200, 150, replace=False)
    v[at] += sign * rng.uniform(0, 100, 150)
    v[5] += sign * 100.0
    v[TWO_WEEKS - 100] += sign * record
    return v


RANGE_CASES: list = [
    # (detector, params, series, expected incident openings)
    ("range", {}, _bursts, [TWO_WEEKS - 100]),
    ("range", {}, lambda: _bursts(sign=-1.0), [TWO_WEEKS - 100]),
    ("range", {"direction": "up"}, lambda: _bursts(sign=-1.0), []),
    ("range", {}, lambda: _bursts(80.0), []),  # inside the range: not a record
    ("spike", {}, _bursts, []),
    ("range", {}, lambda: np.random.default_rng(2).normal(10.0, 1.0, TWO_WEEKS), []),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), RANGE_CASES)
def test_range_cases(name, params, series, expected):
    frame = _frame(series(), FIVE_MINUTES)
    assert from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list() == expected


def test_the_ensemble_reports_a_record_burst_as_range():
    frame = _frame(_bursts(), FIVE_MINUTES)
    out = from_spec(("ensemble", {})).fit(frame).detect(frame).with_row_index().filter("alert")
    assert out.filter(pl.col("detector") == "range")["index"].to_list() == [TWO_WEEKS - 100]


# ---------------------------------------------------------------------------
# The spike scale's floor (sixth round): the trailing scale never drops below the median
# absolute residual of the last 2,000 points, so the return of the usual noise after a
# quiet spell is not a spike.


def _quiet_spell() -> np.ndarray:
    rng = np.random.default_rng(3)
    v = rng.normal(100.0, 5.0, TWO_WEEKS)
    v[2500:2800] = rng.normal(100.0, 0.2, 300)  # a quiet spell, then the usual noise again
    return v


def _quiet_spell_then_spike() -> np.ndarray:
    v = _quiet_spell()
    v[3500] += 60.0
    return v


FLOOR_CASES: list = [
    # (detector, params, series, expected incident openings)
    ("spike", {}, _quiet_spell, []),
    ("spike", {"scale_floor": None}, _quiet_spell, [2800]),
    ("spike", {}, _quiet_spell_then_spike, [3500]),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), FLOOR_CASES)
def test_scale_floor_cases(name, params, series, expected):
    frame = _frame(series(), FIVE_MINUTES)
    assert from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list() == expected


# ---------------------------------------------------------------------------
# Seventh round: beyond the largest past score a Pareto tail (calibration.record_tail),
# and the level member over four hours as well as one.


def _daily_spikes(last: float) -> np.ndarray:
    # Spikes of 29-31 scales every 290 points, then one of ``last`` near the end.
    rng = np.random.default_rng(1)
    v = rng.normal(10.0, 1.0, TWO_WEEKS)
    at = np.arange(150, TWO_WEEKS - 300, 290)
    v[at] += 30.0 + rng.uniform(-1.0, 1.0, at.size)
    v[TWO_WEEKS - 100] += last
    return v


RECORD_CASES: list = [
    # (detector, params, series, expected incident openings)
    # Records among spikes of one height by a hair were rare only to the fitted tail.
    ("spike", {}, lambda: _daily_spikes(31.5), [150]),
    ("spike", {"record_index": None}, lambda: _daily_spikes(31.5), [150, 3340, 3630]),
    ("spike", {}, lambda: _daily_spikes(60.0), [150, TWO_WEEKS - 100]),
]


@pytest.mark.parametrize(("name", "params", "series", "expected"), RECORD_CASES)
def test_record_cases(name, params, series, expected):
    frame = _frame(series(), FIVE_MINUTES)
    assert from_spec((name, params)).fit(frame).predict(frame).arg_true().to_list() == expected


def test_the_record_tail_is_a_floor_or_a_replacement_beyond_the_largest_past_value():
    from analytics.detectors.calibration import conformal_pvalues, record_tail

    stat = np.array([np.r_[np.arange(1.0, 101.0), 101.0, 200.0]])
    p, crit = conformal_pvalues(stat, window=200, min_history=50, refresh=100, level=0.001)
    floor, _ = record_tail(p, crit, stat, window=200, index=8.0, level=0.001, refresh=100)
    assert floor[0, 100] >= (100 / 101) ** 8 / 101 and floor[0, 100] >= p[0, 100]
    np.testing.assert_array_equal(floor[0, :100], p[0, :100])  # within the past: the ranks
    swap, edge = record_tail(
        p, crit, stat, window=200, index=8.0, level=0.001, refresh=100, least=150.0, replace=True
    )
    assert swap[0, 101] == pytest.approx((150 / 200) ** 8 / 101)
    assert swap[0, 100] == p[0, 100]  # below the raised record: the fitted tail
    # The statistic whose tail probability is the level: 150 (101 x 0.001) ** (-1/8).
    assert edge[0, 101] == pytest.approx(150 * 0.101 ** (-1 / 8))


def _bumps(last: int) -> np.ndarray:
    # Bumps of 3 scales for 90 minutes, four times, then one for ``last`` points.
    v = np.random.default_rng(0).normal(10.0, 1.0, TWO_WEEKS)
    for at in (1000, 1700, 2400, 3100):
        v[at : at + 18] += 3.0
    v[3700 : 3700 + last] += 3.0
    return v


def test_the_ensemble_finds_a_three_hour_bump_over_four_hours():
    frame = _frame(_bumps(36), FIVE_MINUTES)
    out = from_spec(("ensemble", {})).fit(frame).detect(frame).with_row_index().filter("alert")
    assert out.select("index", "detector").rows() == [(1002, "shift"), (3724, "level 4h")]
    assert out["reason"][1].startswith("level shift up: the last 4 hours' median")
    hour = from_spec(("ensemble", {"level_minutes": (60.0,)})).fit(frame).predict(frame)
    assert hour.arg_true().to_list() == [1002]


def test_a_level_shift_under_half_a_scale_never_alerts():
    from analytics.detectors import LevelDetector
    from analytics.detectors._grid import keyed, layout

    grid = layout(keyed(_frame(_bumps(36), FIVE_MINUTES)))[0]
    alpha = np.array([1e-3])
    out = LevelDetector()._score_grid(grid.values, grid.step, alpha)
    plain = LevelDetector(min_shift=0.0)._score_grid(grid.values, grid.step, alpha)
    small = (out["stat"] < 0.5) & ~np.isnan(out["p_value"])
    assert small.sum() > 1000 and (out["p_value"][small] == 1.0).all()
    assert (plain["p_value"][small] < 1.0).any()
    big = ~small & ~np.isnan(out["p_value"])
    np.testing.assert_array_equal(out["p_value"][big], plain["p_value"][big])
