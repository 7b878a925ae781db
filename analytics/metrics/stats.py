"""Significance tests for counts and rates, vectorised over numpy arrays.

Every test is exact and two-sided by doubling the smaller tail ("central" method),
so that a whole column of slices is tested in one call.

``scipy.stats`` (about a second to import) is imported inside each test, so that
importing this module (for :data:`ALPHA`, say) costs nothing. The distributions are
scipy.stats' own: the public ``scipy.special.bdtr``/``bdtrc`` are not the code
``scipy.stats.binom`` runs (a private boost function) and differ from it in the last
bits for most inputs (and give NaN below zero); the hypergeometric tails and
Mann-Whitney have no public function outside ``scipy.stats``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ALPHA", "duration_test", "fdr", "poisson_test", "proportion_test"]

#: The significance level used across Lookout.
ALPHA = 0.05

_Array = npt.ArrayLike


def _two_sided(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    p: np.ndarray = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return p


def poisson_test(x1: _Array, t1: _Array, x0: _Array, t0: _Array) -> np.ndarray:
    """Exact test that two Poisson counts share a rate, given their exposures.

    Conditional on the total ``x1 + x0``, ``x1`` is binomial with probability
    ``t1 / (t1 + t0)`` under the null hypothesis. Use ``t1 = 1, t0 = 4`` to test a
    week against the sum of the four weeks before it, or exposures (bookings,
    active accounts) to test prevalence. Returns two-sided p-values; 1.0 where there
    is nothing to test (no events, or an exposure of zero).

    >>> poisson_test([30, 10, 0], [1, 1, 1], [10, 10, 0], [1, 1, 1]).round(4)
    array([0.0022, 1.    , 1.    ])
    """
    from scipy import stats

    x1, t1, x0, t0 = (np.asarray(a, dtype=float) for a in (x1, t1, x0, t0))
    n = x1 + x0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = t1 / (t1 + t0)
    ok = (n > 0) & (t1 > 0) & (t0 > 0) & np.isfinite(p)
    p = np.where(ok, p, 0.5)
    lower = stats.binom.cdf(x1, n, p)
    upper = stats.binom.sf(x1 - 1, n, p)
    return np.where(ok, _two_sided(lower, upper), 1.0)


def proportion_test(a1: _Array, n1: _Array, a0: _Array, n0: _Array) -> np.ndarray:
    """Fisher's exact test that two proportions ``a1/n1`` and ``a0/n0`` are equal.

    Returns two-sided p-values; 1.0 where either group is empty.

    >>> [round(float(p), 4) for p in proportion_test([45, 5], [100, 10], [20, 5], [100, 10])]
    [0.0003, 1.0]
    """
    from scipy import stats

    a1, n1, a0, n0 = (np.asarray(a, dtype=float) for a in (a1, n1, a0, n0))
    ok = (n1 > 0) & (n0 > 0)
    total, hits = n1 + n0, a1 + a0
    lower = stats.hypergeom.cdf(a1, total, hits, n1)
    upper = stats.hypergeom.sf(a1 - 1, total, hits, n1)
    return np.where(ok, _two_sided(lower, upper), 1.0)


def duration_test(x: _Array, y: _Array) -> float:
    """Mann-Whitney U test that two samples of durations come from one distribution.

    Suited to medians of skewed, long-tailed times (first response, resolution).
    Returns the two-sided p-value; 1.0 when either sample is empty.

    >>> round(duration_test([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]), 4)
    0.0079
    >>> duration_test([], [1.0])
    1.0
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return 1.0
    from scipy import stats

    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def fdr(p_values: _Array) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) for many simultaneous tests.

    >>> fdr([0.01, 0.04, 0.03, 0.5]).round(3)
    array([0.04 , 0.053, 0.053, 0.5  ])
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    from scipy import stats

    return np.asarray(stats.false_discovery_control(p, method="bh"))
