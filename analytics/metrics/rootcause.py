"""Root-cause attribution of a flagged aggregate, after Adtributor.

When a total (cases on a flagged day, say) is far from its forecast, :func:`explain`
says which values of which dimensions account for the gap. It follows Adtributor
(Bhagwan et al., "Adtributor: Revenue Debugging in Advertising Systems", NSDI 2014).
The input is one row per leaf cell (category × region × platform, for example) with
the ``actual`` value and the ``expected`` (forecast) value. For every value ``v`` of
every dimension, with ``A_v``, ``F_v`` its actual and expected sums and ``A``, ``F``
the totals:

- **explanatory power** (``share``) ``EP_v = (A_v - F_v) / (A - F)`` is the part of the
  total change that happens in ``v``. The shares of one dimension sum to 1. A value
  that moved against the total has a negative share.
- **surprise** ``S_v = ½ (p log(2p / (p + q)) + q log(2q / (p + q)))`` with
  ``p = F_v / F`` and ``q = A_v / A`` is ``v``'s term of the Jensen-Shannon divergence
  between the expected and the actual mix. It is large when ``v``'s share of the
  total moved, whatever the size of ``v``.

Per dimension, values are taken in order of surprise, skipping those whose share is
at most ``min_share``, until their shares add up to ``coverage`` or ``max_values``
are taken. A dimension whose kept values reach ``coverage`` is a *candidate*. Its
surprise is the sum of its kept values' surprise. Candidates are ranked by surprise.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = ["explain", "summary"]

#: The value that stands for a missing (null) dimension value.
NONE_VALUE = "(none)"
_SCHEMA: dict[str, pl.DataType] = {
    "dimension": pl.String(),
    "value": pl.String(),
    "actual": pl.Float64(),
    "expected": pl.Float64(),
    "change": pl.Float64(),
    "share": pl.Float64(),
    "surprise": pl.Float64(),
    "selected": pl.Boolean(),
    "dimension_rank": pl.Int64(),
    "dimension_surprise": pl.Float64(),
}
_MEASURES = ("actual", "expected")
_NOTHING = "No single dimension explains the change."
# Relative tolerance: totals closer than this count as equal (rounding noise, not change).
_TIE = 1e-12


def _check(
    frame: pl.DataFrame, dims: Sequence[str], min_share: float, coverage: float, max_values: int
) -> list[str]:
    """Validated dimension names; ``ValueError`` for unusable arguments."""
    if isinstance(dims, str):
        raise ValueError("dims must be a sequence of column names, not a single string")
    names = list(dims)
    if not names or len(set(names)) != len(names):
        raise ValueError("dims must name at least one column, each once")
    missing = [c for c in (*names, *_MEASURES) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {', '.join(missing)}")
    if set(names) & set(_MEASURES):
        raise ValueError("actual and expected are measures, not dimensions")
    if not 0 <= min_share < 1:
        raise ValueError(f"min_share must be in [0, 1), not {min_share}")
    if not coverage > 0:
        raise ValueError(f"coverage must be positive, not {coverage}")
    if max_values < 1:
        raise ValueError(f"max_values must be at least 1, not {max_values}")
    return names


def _xlog(x: pl.Expr, y: pl.Expr) -> pl.Expr:
    """``x * log(2x / (x + y))`` with ``0 * log(0) = 0`` (``x, y >= 0``)."""
    return pl.when(x > 0).then(x * (2 * x / (x + y)).log()).otherwise(0.0)


def _proportion(part: str) -> pl.Expr:
    """A value's proportion of its dimension's total; 0 when the total is not positive."""
    total = pl.col(part).sum().over("dimension")
    return pl.when(total > 0).then(pl.col(part).clip(lower_bound=0.0) / total).otherwise(0.0)


def _attribution() -> list[pl.Expr]:
    """``change``, ``share`` and ``surprise`` of each (dimension, value) row."""
    change = pl.col("actual") - pl.col("expected")
    total_a, total_f = pl.col("actual").sum(), pl.col("expected").sum()
    total = (total_a - total_f).over("dimension")
    still = total.abs() <= _TIE * (total_a.abs() + total_f.abs()).over("dimension")
    p, q = _proportion("expected"), _proportion("actual")
    surprise = (0.5 * (_xlog(p, q) + _xlog(q, p))).clip(lower_bound=0.0)
    return [
        change.alias("change"),
        pl.when(still).then(None).otherwise(change / total).alias("share"),
        surprise.alias("surprise"),
    ]


def _selection(*, min_share: float, coverage: float, max_values: int) -> list[pl.Expr]:
    """``selected`` and ``dimension_surprise``, on rows sorted by surprise per dimension.

    A value is kept when its share exceeds ``min_share``, it is among the first
    ``max_values`` such values, and the values kept before it fall short of
    ``coverage``. A dimension is a candidate when its kept shares reach ``coverage``.
    """
    eligible = (pl.col("share") > min_share).fill_null(False)
    gain = pl.when(eligible).then(pl.col("share")).otherwise(0.0)
    before = gain.cum_sum().over("dimension") - gain
    kept = (
        eligible
        & (before < coverage * (1 - _TIE))
        & (eligible.cum_sum().over("dimension") <= max_values)
    )
    covered = pl.when(kept).then(pl.col("share")).otherwise(0.0).sum().over("dimension")
    candidate = covered >= coverage * (1 - _TIE)
    kept_surprise = pl.when(kept).then(pl.col("surprise")).otherwise(0.0).sum().over("dimension")
    return [
        (kept & candidate).alias("selected"),
        pl.when(candidate).then(kept_surprise).otherwise(None).alias("dimension_surprise"),
    ]


def _ranked(values: pl.LazyFrame, order: list[str]) -> pl.LazyFrame:
    """Number the candidate dimensions by surprise (ties in the order of ``dims``)."""
    position = pl.col("dimension").replace_strict(
        order, list(range(len(order))), return_dtype=pl.Int64
    )
    values = values.with_columns(_order=position)
    ranks = (
        values.filter(pl.col("dimension_surprise").is_not_null())
        .group_by("dimension", "_order")
        .agg(pl.col("dimension_surprise").first())
        .sort(["dimension_surprise", "_order"], descending=[True, False])
        .select("dimension", dimension_rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    )
    return values.join(ranks, on="dimension", how="left").sort(
        ["dimension_rank", "_order", "surprise", "value"],
        descending=[False, False, True, False],
        nulls_last=True,
    )


def explain(
    frame: pl.DataFrame,
    *,
    dims: Sequence[str],
    min_share: float = 0.1,
    coverage: float = 0.67,
    max_values: int = 3,
) -> pl.DataFrame:
    """Which values of which dimensions explain the gap between actual and expected.

    Parameters
    ----------
    frame
        One row per leaf cell: the ``dims`` columns (text, enum or categorical; a null
        counts as the value ``"(none)"``) and the numeric columns ``actual`` and
        ``expected``. Null measures count as 0. Negative measures count as 0 in the
        surprise.
    dims
        The dimension columns to attribute the change to.
    min_share
        A value is considered only if its share of the change exceeds this. This keeps
        values that moved against the total, or hardly moved, out of the explanation.
    coverage
        The share of the change a dimension's kept values must reach together.
    max_values
        At most this many values are kept per dimension.

    Returns
    -------
    pl.DataFrame
        One row per (dimension, value), including values that were not selected:
        ``dimension``, ``value``, ``actual``, ``expected``, ``change`` (actual minus
        expected), ``share`` (explanatory power, null when actual equals expected in
        total), ``surprise`` (at least 0, always finite), ``selected`` (kept by a
        candidate dimension), ``dimension_rank`` (1 for the best candidate, null for
        other dimensions) and ``dimension_surprise`` (null for non-candidates). Rows
        are sorted by rank (candidates first), by dimension for non-candidates, then
        by surprise (highest first) and value.

    Examples
    --------
    FL tripled, TX held steady. TX's smaller part of the mix is surprising too, but
    it explains none of the change. The change is spread evenly over the platforms,
    so platform is a candidate as well, but without any surprise:

    >>> cells = pl.DataFrame(
    ...     {
    ...         "region": ["FL", "FL", "TX", "TX"],
    ...         "platform": ["ios", "web", "ios", "web"],
    ...         "actual": [30.0, 30.0, 10.0, 10.0],
    ...         "expected": [10.0, 10.0, 10.0, 10.0],
    ...     }
    ... )
    >>> out = explain(cells, dims=["region", "platform"])
    >>> out.select("dimension", "value", "share", "selected", "dimension_rank").rows()
    [('region', 'TX', 0.0, False, 1), ('region', 'FL', 1.0, True, 1), \
('platform', 'ios', 0.5, True, 2), ('platform', 'web', 0.5, True, 2)]
    >>> out["surprise"].round(4).to_list()
    [0.0212, 0.0126, 0.0, 0.0]
    """
    order = _check(frame, dims, min_share, coverage, max_values)
    if frame.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    cells = frame.lazy().select(
        *(pl.col(d).cast(pl.String).fill_null(NONE_VALUE) for d in order),
        *(pl.col(m).cast(pl.Float64).fill_null(0.0) for m in _MEASURES),
    )
    values = (
        cells.unpivot(on=order, index=_MEASURES, variable_name="dimension", value_name="value")
        .group_by("dimension", "value")
        .agg(pl.col(m).sum() for m in _MEASURES)
        .with_columns(_attribution())
        .sort(["dimension", "surprise", "value"], descending=[False, True, False])
        .with_columns(_selection(min_share=min_share, coverage=coverage, max_values=max_values))
    )
    return _ranked(values, order).select(list(_SCHEMA)).collect()


def _number(x: float) -> str:
    """A count without decimals, anything else with one: ``1,234``, ``40.5``."""
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def summary(explained: pl.DataFrame, *, top: int = 3, unit: str = "cases") -> str:
    """One sentence with the numbers of :func:`explain`'s best candidate dimensions.

    Parameters
    ----------
    explained
        The output of :func:`explain`.
    top
        How many candidate dimensions to mention.
    unit
        What the measure counts, for the wording.

    Examples
    --------
    >>> cells = pl.DataFrame(
    ...     {
    ...         "region": ["FL", "FL", "TX", "TX"],
    ...         "platform": ["ios", "web", "ios", "web"],
    ...         "actual": [30.0, 30.0, 10.0, 10.0],
    ...         "expected": [10.0, 10.0, 10.0, 10.0],
    ...     }
    ... )
    >>> summary(explain(cells, dims=["region", "platform"]))
    '+40 cases vs expected (+100%); region=FL explains 100% of the change \
(actual 60 vs expected 20), then platform=ios + web 100%.'
    >>> summary(explain(cells.head(0), dims=["region"]))
    'No single dimension explains the change.'
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    chosen = explained.filter(pl.col("selected") & (pl.col("dimension_rank") <= top))
    if chosen.is_empty():
        return _NOTHING
    parts = (
        chosen.group_by("dimension_rank")
        .agg(
            pl.col("dimension").first(),
            pl.col("value"),
            pl.col("share", "actual", "expected").sum(),
        )
        .sort("dimension_rank")
    )
    labels = [
        f"{d}={' + '.join(v)}" for d, v in zip(parts["dimension"], parts["value"], strict=True)
    ]
    shares = [f"{s:.0%}" for s in parts["share"]]
    first = parts.row(0, named=True)
    total_a, total_f = (
        explained.filter(pl.col("dimension") == first["dimension"])
        .select(pl.col("actual").sum(), pl.col("expected").sum())
        .row(0)
    )
    lead = f"{'+' if total_a >= total_f else '-'}{_number(abs(total_a - total_f))} {unit}"
    lead += " vs expected" + (f" ({(total_a - total_f) / total_f:+.0%})" if total_f > 0 else "")
    verb = "explains" if len(first["value"]) == 1 else "explain"
    text = (
        f"{lead}; {labels[0]} {verb} {shares[0]} of the change "
        f"(actual {_number(first['actual'])} vs expected {_number(first['expected'])})"
    )
    rest = [f"{label} {share}" for label, share in zip(labels[1:], shares[1:], strict=True)]
    return f"{text}, then {_and(rest)}." if rest else f"{text}."
