"""Root-cause attribution of analytics.metrics.rootcause, checked on cubes worked out by hand.

The cube: 3 regions × 4 categories × 2 platforms = 24 cells, each expected at 10, so
F = 240, every region expects 80, every category 60 and every platform 120. A culprit
is planted by multiplying the actual value of some cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.metrics.rootcause import NOTHING, explain, summary

REGIONS = ("CA", "FL", "TX")
CATEGORIES = ("fake_review", "harassment", "payment_fraud", "spam")
PLATFORMS = ("ios", "web")
DIMS = ("region", "category", "platform")
BASE = 10.0


def js(p: float, q: float) -> float:
    """One value's Jensen-Shannon term, written out independently of the module."""

    def term(x: float, y: float) -> float:
        return x * math.log(2 * x / (x + y)) if x > 0 else 0.0

    return 0.5 * (term(p, q) + term(q, p))


def cube(factor: Callable[[str, str, str], float]) -> pl.DataFrame:
    """The 24-cell cube, expected 10 everywhere, actual 10 × ``factor(cell)``."""
    cells = [(r, c, p) for r in REGIONS for c in CATEGORIES for p in PLATFORMS]
    return pl.DataFrame(
        {
            "region": [r for r, _, _ in cells],
            "category": [c for _, c, _ in cells],
            "platform": [p for _, _, p in cells],
            "actual": [BASE * factor(*cell) for cell in cells],
            "expected": [BASE] * len(cells),
        }
    )


def rows(out: pl.DataFrame, dimension: str) -> pl.DataFrame:
    return out.filter(pl.col("dimension") == dimension)


def row(out: pl.DataFrame, dimension: str, value: str) -> dict[str, object]:
    return out.filter((pl.col("dimension") == dimension) & (pl.col("value") == value)).row(
        0, named=True
    )


# --------------------------------------------------------------------------- the two rules


def test_a_region_whose_share_jumps_from_10_to_60_percent_is_named() -> None:
    # Expected: FL 10 of 100 (10%), TX 90; actual: FL 120 of 200 (60%), TX 80.
    # A - F = 100; EP_FL = 110/100 = 1.1 (more than the whole rise: TX fell), EP_TX = -0.1.
    # Surprise: S_FL = js(0.1, 0.6), S_TX = js(0.9, 0.4). The platforms rose evenly
    # (each 50 -> 100): EP = 0.5 = their usual share, surprise 0: not named.
    cells = pl.DataFrame(
        {
            "region": ["FL", "FL", "TX", "TX"],
            "platform": ["ios", "web", "ios", "web"],
            "actual": [60.0, 60.0, 40.0, 40.0],
            "expected": [5.0, 5.0, 45.0, 45.0],
        }
    )
    out = explain(cells, dims=["region", "platform"])
    expected = pl.DataFrame(
        {
            "dimension": ["region", "region", "platform", "platform"],
            "value": ["FL", "TX", "ios", "web"],
            "actual": [120.0, 80.0, 100.0, 100.0],
            "expected": [10.0, 90.0, 50.0, 50.0],
            "change": [110.0, -10.0, 50.0, 50.0],
            "share": [1.1, -0.1, 0.5, 0.5],
            "expected_share": [0.1, 0.9, 0.5, 0.5],
            "actual_share": [0.6, 0.4, 0.5, 0.5],
            "surprise": [js(0.1, 0.6), js(0.9, 0.4), 0.0, 0.0],
            "selected": [True, False, False, False],
            "dimension_rank": pl.Series([1, 1, None, None], dtype=pl.Int64),
            "dimension_surprise": [js(0.1, 0.6), js(0.1, 0.6), None, None],
        }
    )
    assert_frame_equal(out, expected, check_exact=False, rel_tol=1e-12)
    assert js(0.1, 0.6) == pytest.approx(0.09906, abs=1e-5)
    assert summary(out) == (
        "+100 cases vs expected (+100%); region=FL explains 110% of the change "
        "(actual 120 vs expected 10; usually 10% of cases)."
    )


def test_a_uniform_rise_names_nothing() -> None:
    # Every cell × 1.5: every value's share of the change is its usual share, its share
    # of the total does not move (surprise 0). Adtributor would report whole dimensions
    # here (all the platforms "explain 100%"); nothing stands out.
    out = explain(cube(lambda r, c, p: 1.5), dims=DIMS)
    assert out["share"].to_list() == pytest.approx(out["expected_share"].to_list(), abs=1e-12)
    assert out["surprise"].to_list() == pytest.approx([0.0] * out.height, abs=1e-15)
    assert not out["selected"].any()
    assert out["dimension_rank"].null_count() == out.height
    assert summary(out) == NOTHING


def test_a_tripled_region_is_the_only_candidate() -> None:
    # FL's 8 cells go 10 -> 30: A_FL = 240, F_FL = 80; A = 400, A - F = 160.
    # EP_FL = 1 against a usual 1/3; CA, TX: 0. Categories rise evenly (EP = 1/4 = p)
    # and platforms too (EP = 1/2 = p): neither names a value.
    out = explain(cube(lambda r, c, p: 3.0 if r == "FL" else 1.0), dims=DIMS)
    region = rows(out, "region")
    assert region.select("value", "change", "selected", "dimension_rank").rows() == [
        ("FL", 160.0, True, 1),
        ("CA", 0.0, False, 1),
        ("TX", 0.0, False, 1),
    ]
    assert region["surprise"].to_list() == pytest.approx(
        [js(1 / 3, 3 / 5), js(1 / 3, 1 / 5), js(1 / 3, 1 / 5)], rel=1e-12
    )
    assert region["dimension_surprise"].to_list() == pytest.approx([js(1 / 3, 3 / 5)] * 3)
    assert not out.filter(pl.col("dimension") != "region")["selected"].any()
    assert summary(out) == (
        "+160 cases vs expected (+67%); region=FL explains 100% of the change "
        "(actual 240 vs expected 80; usually 33% of cases)."
    )


def test_single_cell_ranks_the_most_surprising_dimension_first() -> None:
    # Only FL × fake_review × ios goes 10 -> 70: A = 300, A - F = 60, and the cell's value
    # in every dimension takes 100% of the change. Ranking is by surprise:
    #   category fake_review: p = 60/240 = 1/4, q = 120/300 = 2/5  -> 0.00873
    #   region FL:            p = 80/240 = 1/3, q = 140/300 = 7/15 -> 0.00558
    #   platform ios:         p = 120/240 = 1/2, q = 180/300 = 3/5 -> 0.00228
    out = explain(
        cube(lambda r, c, p: 7.0 if (r, c, p) == ("FL", "fake_review", "ios") else 1.0),
        dims=DIMS,
    )
    chosen = out.filter("selected")
    assert chosen.select("dimension", "value", "change", "share", "dimension_rank").rows() == [
        ("category", "fake_review", 60.0, 1.0, 1),
        ("region", "FL", 60.0, 1.0, 2),
        ("platform", "ios", 60.0, 1.0, 3),
    ]
    assert chosen["dimension_surprise"].to_list() == pytest.approx(
        [js(1 / 4, 2 / 5), js(1 / 3, 7 / 15), js(1 / 2, 3 / 5)], rel=1e-12
    )
    assert summary(out, top=2) == (
        "+60 cases vs expected (+25%); category=fake_review explains 100% of the change "
        "(actual 120 vs expected 60; usually 25% of cases), then region=FL 100%."
    )


def test_a_value_taking_only_its_usual_share_is_not_named() -> None:
    # FL × 3 and TX × 2: EP_FL = 160/240 = 2/3 against a usual 1/3: named.
    # EP_TX = 80/240 = 1/3, exactly its usual share (q_TX = 160/480 = 1/3, surprise 0):
    # Adtributor would add it to reach 67% coverage; it does not stand out.
    out = explain(cube(lambda r, c, p: {"FL": 3.0, "TX": 2.0}.get(r, 1.0)), dims=DIMS)
    region = rows(out, "region")
    assert dict(region.select("value", "selected").rows()) == {
        "FL": True,
        "CA": False,
        "TX": False,
    }
    assert row(out, "region", "TX")["share"] == pytest.approx(1 / 3, rel=1e-12)
    assert row(out, "region", "TX")["surprise"] == pytest.approx(0.0, abs=1e-15)
    assert summary(out, top=1) == (
        "+240 cases vs expected (+100%); region=FL explains 67% of the change "
        "(actual 240 vs expected 80; usually 33% of cases)."
    )


def test_a_small_shift_of_the_mix_is_below_the_surprise_threshold() -> None:
    # A: 30 -> 34 of 100 -> 110. EP_A = 4/10 = 0.4 against a usual 0.3 (ten points more),
    # but its share of the total hardly moves (30% -> 30.9%): surprise 4e-5 < 0.001.
    cells = pl.DataFrame({"g": ["A", "B"], "actual": [34.0, 76.0], "expected": [30.0, 70.0]})
    out = explain(cells, dims=["g"])
    assert row(out, "g", "A")["surprise"] == pytest.approx(js(0.3, 34 / 110), rel=1e-12)
    assert row(out, "g", "A")["surprise"] < 1e-4
    assert not out["selected"].any()
    assert explain(cells, dims=["g"], min_surprise=0.0).filter("selected")["value"].to_list() == [
        "A"
    ]


def test_decrease_keeps_the_signs() -> None:
    # FL halves: A_FL = 40 vs F_FL = 80; A = 200, A - F = -40. EP_FL = -40 / -40 = 1.
    # Categories: A = 2·(10 + 5 + 10) = 50 vs 60, change -10, EP = -10 / -40 = 1/4 = p.
    out = explain(cube(lambda r, c, p: 0.5 if r == "FL" else 1.0), dims=DIMS)
    fl = row(out, "region", "FL")
    assert (fl["change"], fl["share"], fl["selected"], fl["dimension_rank"]) == (
        -40.0,
        1.0,
        True,
        1,
    )
    assert fl["surprise"] == pytest.approx(js(1 / 3, 1 / 5), rel=1e-12)
    assert row(out, "category", "spam")["change"] == -10.0
    assert row(out, "category", "spam")["share"] == 0.25
    assert not row(out, "category", "spam")["selected"]
    assert summary(out, top=1) == (
        "-40 cases vs expected (-17%); region=FL explains 100% of the change "
        "(actual 40 vs expected 80; usually 33% of cases)."
    )


def test_value_moving_against_the_total_is_not_selected() -> None:
    # FL × 3 (+160) and CA halved (-40): A - F = 120, EP_FL = 4/3, EP_CA = -1/3, EP_TX = 0.
    out = explain(cube(lambda r, c, p: {"FL": 3.0, "CA": 0.5}.get(r, 1.0)), dims=DIMS)
    region = rows(out, "region")
    assert dict(region.select("value", "share").rows()) == pytest.approx(
        {"FL": 4 / 3, "CA": -1 / 3, "TX": 0.0}, rel=1e-12
    )
    assert region.filter("selected")["value"].to_list() == ["FL"]


# --------------------------------------------------------------------------- edge cases


def test_no_change_in_total_gives_null_shares_and_no_candidate() -> None:
    # +20 in one FL cell, -10 in each of two TX cells: A = F = 240, so EP is undefined.
    def moved(r: str, c: str, p: str) -> float:
        return {
            ("FL", "spam", "ios"): 3.0,
            ("TX", "spam", "web"): 0.0,
            ("TX", "spam", "ios"): 0.0,
        }.get((r, c, p), 1.0)

    out = explain(cube(moved), dims=DIMS)
    assert out["share"].null_count() == out.height
    assert not out["selected"].any()
    assert (
        out["dimension_rank"].null_count() == out["dimension_surprise"].null_count() == out.height
    )
    assert out["surprise"].is_finite().all()
    assert row(out, "region", "FL")["change"] == 20.0
    assert summary(out) == NOTHING


def test_new_value_with_zero_expected_has_finite_surprise() -> None:
    # A new region NV: actual 50, expected 0. A = 290, F = 240, A - F = 50, EP_NV = 1.
    # p_NV = 0, q_NV = 50/290 = 5/29, so S_NV = ½ · q · log(2q / q) = ½ · (5/29) · log 2.
    new = pl.DataFrame(
        {
            "region": ["NV"],
            "category": ["spam"],
            "platform": ["web"],
            "actual": [50.0],
            "expected": [0.0],
        }
    )
    out = explain(pl.concat([cube(lambda r, c, p: 1.0), new]), dims=DIMS)
    nv = row(out, "region", "NV")
    assert nv["surprise"] == pytest.approx(0.5 * 5 / 29 * math.log(2), rel=1e-12)
    assert (nv["share"], nv["expected_share"], nv["selected"]) == (1.0, 0.0, True)
    assert row(out, "region", "FL")["surprise"] == pytest.approx(js(1 / 3, 80 / 290), rel=1e-12)
    assert out["surprise"].is_finite().all()


def test_zero_totals_stay_finite() -> None:
    cells = pl.DataFrame(
        {"region": ["FL", "TX"], "actual": [5.0, 0.0], "expected": [0.0, 0.0]}
    )  # nothing expected at all: p = 0 for every value
    out = explain(cells, dims=["region"])
    assert out.select("value", "share", "selected").rows() == [
        ("FL", 1.0, True),
        ("TX", 0.0, False),
    ]
    assert out["surprise"].to_list() == pytest.approx([0.5 * math.log(2), 0.0], abs=1e-15)
    nothing = explain(cells.with_columns(actual=pl.lit(0.0)), dims=["region"])
    assert nothing["surprise"].to_list() == [0.0, 0.0]
    assert nothing["share"].null_count() == 2


def test_a_dimension_of_one_value_is_never_the_explanation() -> None:
    # Everything on web: web takes 100% of the change, as it always does.
    cells = pl.DataFrame(
        {"region": ["FL", "TX"], "platform": ["web", "web"], "actual": [30.0, 10.0],
         "expected": [10.0, 10.0]}
    )  # fmt: skip
    out = explain(cells, dims=["region", "platform"])
    assert out.filter("selected").select("dimension", "value").rows() == [("region", "FL")]
    assert row(out, "platform", "web")["dimension_rank"] is None


def test_null_dimension_values_become_none() -> None:
    cells = pl.DataFrame(
        {
            "region": ["FL", None, None],
            "platform": ["ios", "web", None],
            "actual": [10.0, 30.0, 20.0],
            "expected": [10.0, 10.0, 10.0],
        }
    )
    out = explain(cells, dims=["region", "platform"])
    assert row(out, "region", "(none)")["actual"] == 50.0
    assert row(out, "region", "(none)")["share"] == 1.0
    assert row(out, "platform", "(none)")["expected"] == 10.0
    assert out["value"].null_count() == 0


def test_categorical_and_enum_dimensions_and_integer_measures() -> None:
    cells = pl.DataFrame(
        {
            "region": pl.Series(["FL", "TX"], dtype=pl.Categorical),
            "platform": pl.Series(["ios", "web"], dtype=pl.Enum(["ios", "web", "android"])),
            "actual": [30, 10],
            "expected": [10, 10],
        }
    )
    out = explain(cells, dims=["region", "platform"])
    assert out.schema["value"] == pl.String
    assert out.schema["actual"] == pl.Float64
    assert out.filter("selected").select("dimension", "value").rows() == [
        ("region", "FL"),
        ("platform", "ios"),
    ]


def test_empty_input_returns_the_schema() -> None:
    empty = cube(lambda r, c, p: 1.0).head(0)
    out = explain(empty, dims=DIMS)
    assert out.is_empty()
    assert out.schema == pl.Schema(
        {
            "dimension": pl.String,
            "value": pl.String,
            "actual": pl.Float64,
            "expected": pl.Float64,
            "change": pl.Float64,
            "share": pl.Float64,
            "expected_share": pl.Float64,
            "actual_share": pl.Float64,
            "surprise": pl.Float64,
            "selected": pl.Boolean,
            "dimension_rank": pl.Int64,
            "dimension_surprise": pl.Float64,
        }
    )
    assert summary(out) == NOTHING


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dims": "region"}, "single string"),
        ({"dims": []}, "at least one"),
        ({"dims": ["region", "region"]}, "at least one"),
        ({"dims": ["state"]}, "no column"),
        ({"dims": ["region", "actual"]}, "measures"),
        ({"dims": ["region"], "min_share": -0.1}, "min_share"),
        ({"dims": ["region"], "min_excess": 0.0}, "min_excess"),
        ({"dims": ["region"], "min_surprise": -1.0}, "min_surprise"),
        ({"dims": ["region"], "coverage": 0.0}, "coverage"),
        ({"dims": ["region"], "max_values": 0}, "max_values"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        explain(cube(lambda r, c, p: 1.0), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

# Quarter-steps are exact in binary, so sums and differences carry no rounding error.
_amounts = st.integers(min_value=0, max_value=400).map(lambda n: n / 4)
_cells = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from(["x", "y"]),
        _amounts,
        _amounts,
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(cells=_cells, coverage=st.sampled_from([0.5, 0.67, 0.9]), max_values=st.integers(1, 3))
def test_shares_sum_to_one_and_no_dimension_is_explained_whole(
    cells: list[tuple[str | None, str, float, float]], coverage: float, max_values: int
) -> None:
    frame = pl.DataFrame(
        cells, schema=["region", "platform", "actual", "expected"], orient="row"
    ).with_columns(pl.col("actual", "expected").cast(pl.Float64))
    out = explain(frame, dims=["region", "platform"], coverage=coverage, max_values=max_values)
    total_a, total_f = frame["actual"].sum(), frame["expected"].sum()
    per_dim = out.group_by("dimension").agg(
        pl.col("actual", "expected").sum(),
        share=pl.col("share").sum(),
        n_kept=pl.col("selected").sum(),
        n_values=pl.len(),
        ranks=pl.col("dimension_rank").n_unique(),
    )
    assert per_dim["actual"].to_list() == [total_a] * 2
    assert per_dim["expected"].to_list() == [total_f] * 2
    if total_a != total_f:
        assert per_dim["share"].to_list() == pytest.approx([1.0, 1.0], abs=1e-9)
    else:
        assert out["share"].null_count() == out.height
        assert not out["selected"].any()
    assert (out["surprise"] >= 0).all() and out["surprise"].is_finite().all()
    assert per_dim["ranks"].to_list() == [1, 1]
    for n_kept, n_values in per_dim.select("n_kept", "n_values").rows():
        assert n_kept <= max_values
        assert n_kept == 0 or n_kept < n_values  # never a whole dimension
    kept = out.filter("selected")
    assert (kept["share"] > 0.1).all()
    assert (kept["share"] - kept["expected_share"] >= 0.1 - 1e-9).all()
    assert (kept["surprise"] >= 0.001).all()
    assert kept["dimension_rank"].null_count() == 0
