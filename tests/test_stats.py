"""Significance tests of analytics.metrics.stats against independent scipy computations
and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import false_discovery_control, mannwhitneyu

from analytics.metrics.stats import duration_test, fdr, poisson_test, proportion_test
from tests.helpers import central_p, fisher_central_p

# --------------------------------------------------------------------------- poisson_test


@pytest.mark.parametrize(
    ("x1", "t1", "x0", "t0"),
    [
        (30, 1, 10, 1),  # a week tripling: 30 of 40 at probability 1/2
        (5, 1, 20, 4),  # a week against four: 5 of 25 at 1/5, right on expectation
        (12, 1, 12, 4),  # three times the weekly mean: 12 of 24 at 1/5
        (3, 100, 7, 300),  # exposures: 3 of 10 at 100/400
        (1, 1, 9, 1),  # a drop: the lower tail is the smaller one
    ],
)
def test_poisson_test_matches_binomial_test(x1: int, t1: float, x0: int, t0: float) -> None:
    expected = central_p(x1, x1 + x0, t1 / (t1 + t0))
    assert poisson_test([x1], [t1], [x0], [t0])[0] == pytest.approx(expected, rel=1e-9)


def test_poisson_test_by_hand() -> None:
    # 0 of 5 at 1/2: lower tail P(X <= 0) = 1/32, upper tail 1, so p = 2/32
    # 3 of 3 at 1/2: upper tail P(X >= 3) = 1/8, so p = 1/4
    # 5 of 10 at 1/2: both tails exceed 1/2, so p is capped at 1
    p = poisson_test([0, 3, 5], [1, 1, 1], [5, 0, 5], [1, 1, 1])
    assert p.tolist() == pytest.approx([2 / 32, 1 / 4, 1.0], rel=1e-12)


def test_poisson_test_is_vectorised() -> None:
    x1, x0 = np.array([30, 5, 3]), np.array([10, 20, 7])
    t1, t0 = np.array([1.0, 1.0, 100.0]), np.array([1.0, 4.0, 300.0])
    p = poisson_test(x1, t1, x0, t0)
    assert p.shape == (3,)
    expected = [
        central_p(int(a), int(a + b), s / (s + u))
        for a, b, s, u in zip(x1, x0, t1, t0, strict=True)
    ]
    assert p.tolist() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("x1", "t1", "x0", "t0"),
    [
        (0, 1, 0, 1),  # no events at all
        (0, 1, 0, 4),
        (5, 0, 3, 1),  # no exposure in the current period
        (5, 1, 3, 0),  # no exposure in the reference period
        (5, 0, 3, 0),  # neither
        (4, float("nan"), 2, 1),  # an unknown exposure
    ],
)
def test_poisson_test_nothing_to_test_gives_one(x1: int, t1: float, x0: int, t0: float) -> None:
    assert poisson_test([x1], [t1], [x0], [t0]).tolist() == [1.0]


@given(
    st.integers(0, 300),
    st.integers(0, 300),
    st.floats(0.5, 1e6, allow_nan=False, allow_infinity=False),
)
def test_poisson_test_bounded_and_symmetric_with_equal_exposures(
    x1: int, x0: int, t: float
) -> None:
    p = poisson_test([x1], [t], [x0], [t])[0]
    swapped = poisson_test([x0], [t], [x1], [t])[0]
    assert 0.0 <= p <= 1.0
    assert swapped == pytest.approx(p, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------- proportion_test


@pytest.mark.parametrize(
    ("a1", "n1", "a0", "n0"),
    [
        (45, 100, 20, 100),
        (5, 10, 5, 10),  # identical: p is 1
        (0, 10, 6, 10),
        (3, 7, 9, 12),
        (12, 30, 2, 4),
        (1, 50, 1, 3),
    ],
)
def test_proportion_test_matches_fisher_exact(a1: int, n1: int, a0: int, n0: int) -> None:
    expected = fisher_central_p(a1, n1, a0, n0)
    assert proportion_test([a1], [n1], [a0], [n0])[0] == pytest.approx(expected, rel=1e-9)


def test_proportion_test_by_hand() -> None:
    # 2 of 2 against 0 of 2: of the C(4, 2) = 6 equally likely ways to place the 2 hits,
    # one puts both in the first group (P = 1/6), so the two-sided p is 2/6.
    assert proportion_test([2], [2], [0], [2])[0] == pytest.approx(2 / 6, rel=1e-12)


@pytest.mark.parametrize(
    ("a1", "n1", "a0", "n0"),
    [
        (0, 0, 3, 10),  # empty current group
        (3, 10, 0, 0),  # empty reference group
        (0, 0, 0, 0),
        (0, 10, 0, 10),  # no hits at all
        (10, 10, 10, 10),  # all hits
    ],
)
def test_proportion_test_nothing_to_test_gives_one(a1: int, n1: int, a0: int, n0: int) -> None:
    assert proportion_test([a1], [n1], [a0], [n0]).tolist() == [1.0]


@st.composite
def _groups(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1, n0 = draw(st.integers(0, 80)), draw(st.integers(0, 80))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n0)), n0


@given(_groups())
def test_proportion_test_bounded_and_symmetric(groups: tuple[int, int, int, int]) -> None:
    a1, n1, a0, n0 = groups
    p = proportion_test([a1], [n1], [a0], [n0])[0]
    swapped = proportion_test([a0], [n0], [a1], [n1])[0]
    assert 0.0 <= p <= 1.0
    assert swapped == pytest.approx(p, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------- duration_test


def test_duration_test_by_hand() -> None:
    # Every x below every y: U = 0, and exactly 2 of the C(10, 5) = 252 equally likely
    # orderings are as extreme (all below or all above), so the exact p is 2/252.
    assert duration_test([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]) == pytest.approx(2 / 252)


def test_duration_test_ignores_nan() -> None:
    with_nan = duration_test([1, 2, math.nan, 3, 4, 5], [math.nan, 10, 11, 12, 13, 14])
    assert with_nan == pytest.approx(2 / 252)


def test_duration_test_matches_scipy_with_ties() -> None:
    x, y = [1.0, 1.0, 1.0, 5.0, 2.5, 7.0], [3.0, 3.0, 8.0, 12.0, 1.0]
    expected = mannwhitneyu(x, y, alternative="two-sided").pvalue
    assert duration_test(x, y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("x", "y"),
    [([], [1.0, 2.0]), ([1.0, 2.0], []), ([], []), ([math.nan, math.nan], [1.0, 2.0])],
)
def test_duration_test_empty_sample_gives_one(x: list[float], y: list[float]) -> None:
    assert duration_test(x, y) == 1.0


# --------------------------------------------------------------------------- fdr


def test_fdr_by_hand() -> None:
    # ranks of 0.01, 0.04, 0.03, 0.5 are 1, 3, 2, 4 of m = 4; p * m / rank gives
    # 0.04, 0.0533, 0.06, 0.5, then the running minimum from the largest rank down:
    # rank 2 takes min(0.06, 0.0533) = 0.0533
    q = fdr([0.01, 0.04, 0.03, 0.5])
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5], rel=1e-12)


def test_fdr_matches_scipy() -> None:
    p = [0.001, 0.2, 0.03, 0.03, 0.9, 0.04, 1.0, 0.0]
    assert fdr(p).tolist() == pytest.approx(list(false_discovery_control(p, method="bh")))


def test_fdr_edge_cases() -> None:
    assert fdr([]).shape == (0,)
    assert fdr([0.3]).tolist() == [0.3]  # one test: nothing to adjust
