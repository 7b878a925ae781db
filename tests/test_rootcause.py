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

from analytics.metrics.rootcause import explain, summary

REGIONS = ("CA", "FL", "TX")
CATEGORIES = ("fake_review", "harassment", "payment_fraud", "spam")
PLATFORMS = ("ios", "web")
DIMS = ("region", "category", "platform")
BASE = 10.0
NOTHING = "No single dimension explains the change."


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


# --------------------------------------------------------------------------- planted culprits


def test_region_tripled_is_the_top_dimension() -> None:
    # FL's 8 cells go 10 -> 30: A_FL = 240, F_FL = 80; A = 160 + 240 = 400, A - F = 160.
    # EP_FL = (240 - 80) / 160 = 1, EP_CA = EP_TX = 0.
    # Surprise: p = 80/240 = 1/3 for every region; q_FL = 240/400 = 3/5,
    # q_CA = q_TX = 80/400 = 1/5, so S_FL = 0.0193 > S_CA = S_TX = 0.0084 (CA before TX by
    # name); FL alone covers 100%.
    # Categories: A = 2·(10 + 30 + 10) = 100 vs F = 60 each, EP = 40/160 = 1/4, p = q = 1/4,
    # so surprise 0; three of them cover 75% >= 67%: a candidate without surprise.
    # Platforms: A = 200 vs F = 120, EP = 1/2 each, surprise 0; both cover 100%.
    out = explain(cube(lambda r, c, p: 3.0 if r == "FL" else 1.0), dims=DIMS)
    expected = pl.DataFrame(
        {
            "dimension": ["region"] * 3,
            "value": ["FL", "CA", "TX"],
            "actual": [240.0, 80.0, 80.0],
            "expected": [80.0, 80.0, 80.0],
            "change": [160.0, 0.0, 0.0],
            "share": [1.0, 0.0, 0.0],
            "surprise": [js(1 / 3, 3 / 5), js(1 / 3, 1 / 5), js(1 / 3, 1 / 5)],
            "selected": [True, False, False],
            "dimension_rank": [1, 1, 1],
            "dimension_surprise": [js(1 / 3, 3 / 5)] * 3,
        }
    )
    assert_frame_equal(rows(out, "region"), expected, check_exact=False, rel_tol=1e-12)
    assert out["dimension"].unique(maintain_order=True).to_list() == list(DIMS)
    categories = rows(out, "category")
    assert categories["share"].to_list() == [0.25] * 4
    assert categories["selected"].to_list() == [True, True, True, False]  # max_values = 3
    assert categories["dimension_rank"].to_list() == [2] * 4
    assert categories["dimension_surprise"].to_list() == [0.0] * 4
    assert rows(out, "platform")["selected"].to_list() == [True, True]
    assert summary(out) == (
        "+160 cases vs expected (+67%); region=FL explains 100% of the change "
        "(actual 240 vs expected 80), then category=fake_review + harassment + payment_fraud "
        "75% and platform=ios + web 100%."
    )
    assert summary(out, top=1).endswith("(actual 240 vs expected 80).")


def test_single_cell_ranks_the_most_surprising_dimension_first() -> None:
    # Only FL × fake_review × ios goes 10 -> 70: A = 300, A - F = 60, and the cell's value
    # in every dimension explains 100%. Ranking is by surprise:
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
        "(actual 120 vs expected 60), then region=FL 100%."
    )


def test_two_culprits_in_one_dimension() -> None:
    # FL × 3 and TX × 2: A_FL = 240, A_TX = 160, A_CA = 80; A = 480, A - F = 240.
    # EP_FL = 160/240 = 2/3 (just short of 0.67), EP_TX = 80/240 = 1/3, EP_CA = 0.
    # q_FL = 1/2, q_TX = 1/3 (= p, surprise 0), q_CA = 1/6. Order: CA (skipped), FL, TX.
    # FL alone covers 66.7% < 67%, so TX is kept too: cumulative 100%.
    out = explain(cube(lambda r, c, p: {"FL": 3.0, "TX": 2.0}.get(r, 1.0)), dims=DIMS)
    region = rows(out, "region")
    assert region.select("value", "share", "selected").rows() == [
        ("CA", 0.0, False),
        ("FL", pytest.approx(2 / 3, rel=1e-12), True),
        ("TX", pytest.approx(1 / 3, rel=1e-12), True),
    ]
    assert region["dimension_rank"].to_list() == [1, 1, 1]
    assert region["dimension_surprise"][0] == pytest.approx(js(1 / 3, 1 / 2) + 0.0, rel=1e-12)
    assert summary(out, top=1) == (
        "+240 cases vs expected (+100%); region=FL + TX explain 100% of the change "
        "(actual 400 vs expected 160)."
    )
    # With a lower coverage FL alone is enough.
    lower = explain(
        cube(lambda r, c, p: {"FL": 3.0, "TX": 2.0}.get(r, 1.0)), dims=DIMS, coverage=0.6
    ).filter(pl.col("dimension") == "region")
    assert lower.filter("selected")["value"].to_list() == ["FL"]


def test_decrease_keeps_the_signs() -> None:
    # FL halves: A_FL = 40 vs F_FL = 80; A = 200, A - F = -40. EP_FL = -40 / -40 = 1.
    # Categories: A = 2·(10 + 5 + 10) = 50 vs 60, change -10, EP = -10 / -40 = 1/4.
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
    assert summary(out, top=1) == (
        "-40 cases vs expected (-17%); region=FL explains 100% of the change "
        "(actual 40 vs expected 80)."
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
    assert (nv["share"], nv["selected"]) == (1.0, True)
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
def test_shares_sum_to_one_and_surprise_is_non_negative(
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
        kept=pl.col("share").filter("selected").sum(),
        n_kept=pl.col("selected").sum(),
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
    for kept, n_kept in per_dim.select("kept", "n_kept").rows():
        assert n_kept <= max_values
        assert n_kept == 0 or kept >= coverage - 1e-9
    assert out.filter("selected")["dimension_rank"].null_count() == 0
