"""Root-cause attribution of a flagged aggregate, after Adtributor.

When a total (cases on a flagged day, say) is far from its forecast, :func:`explain`
says which values of which dimensions stand out in the gap. It follows Adtributor
(Bhagwan et al., "Adtributor: Revenue Debugging in Advertising Systems", NSDI 2014).
The input is one row per leaf cell (category × region × platform, for example) with
the ``actual`` value and the ``expected`` (forecast) value. For every value ``v`` of
every dimension, with ``A_v``, ``F_v`` its actual and expected sums and ``A``, ``F``
the totals:

- **explanatory power** (``share``) ``EP_v = (A_v - F_v) / (A - F)`` is the part of the
  total change that happens in ``v``. The shares of one dimension sum to 1. A value
  that moved against the total has a negative share.
- **usual share** (``expected_share``) ``p = F_v / F``, and ``actual_share``
  ``q = A_v / A``.
- **surprise** ``S_v = ½ (p log(2p / (p + q)) + q log(2q / (p + q)))`` is ``v``'s term
  of the Jensen-Shannon divergence between the expected and the actual mix. It is
  large when ``v``'s share of the total moved, whatever the size of ``v``.

A value *stands out* when it takes more of the change than its usual share: its share
of the change exceeds ``min_share``, exceeds its usual share by ``min_excess``, and its
surprise is at least ``min_surprise``. This is where the method departs from the paper,
which keeps the most surprising values until they cover ``coverage`` of the change
whatever their surprise: a rise spread evenly over web, iOS and Android would be
"explained" there by all three (each has the share of the change it has of the total,
so together they explain 100%, and say nothing). Here it is explained by none of them.
Since the shares of the change and the usual shares of a dimension both sum to 1, the
values that take more than their usual share can never be all of a dimension: a whole
dimension is never the explanation.

Per dimension, values that stand out are taken in order of surprise until their shares
of the change reach ``coverage`` or ``max_values`` are taken. A dimension with at least
one such value is a *candidate*; its surprise is the sum of its kept values' surprise.
Candidates are ranked by surprise. With no candidate, no single value stands out: the
change is spread over every dimension like the usual mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = ["NOTHING", "explain", "summary"]

#: The value that stands for a missing (null) dimension value.
NONE_VALUE = "(none)"
#: What :func:`summary` says when no value stands out.
NOTHING = "No single value stands out: the change is spread like the usual mix."
_SCHEMA: dict[str, pl.DataType] = {
    "dimension": pl.String(),
    "value": pl.String(),
    "actual": pl.Float64(),
    "expected": pl.Float64(),
    "change": pl.Float64(),
    "share": pl.Float64(),
    "expected_share": pl.Float64(),
    "actual_share": pl.Float64(),
    "surprise": pl.Float64(),
    "selected": pl.Boolean(),
    "dimension_rank": pl.Int64(),
    "dimension_surprise": pl.Float64(),
}
_MEASURES = ("actual", "expected")
# Relative tolerance: totals closer than this count as equal (rounding noise, not change).
_TIE = 1e-12


def _check(
    frame: pl.DataFrame,
    dims: Sequence[str],
    *,
    min_share: float,
    min_excess: float,
    min_surprise: float,
    coverage: float,
    max_values: int,
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
    if not 0 < min_excess < 1:
        raise ValueError(f"min_excess must be in (0, 1), not {min_excess}")
    if not min_surprise >= 0:
        raise ValueError(f"min_surprise must not be negative, not {min_surprise}")
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
    total = pl.col(part).clip(lower_bound=0.0).sum().over("dimension")
    return pl.when(total > 0).then(pl.col(part).clip(lower_bound=0.0) / total).otherwise(0.0)


def _attribution() -> list[pl.Expr]:
    """``change``, ``share``, the usual and actual shares and ``surprise`` of each
    (dimension, value) row."""
    change = pl.col("actual") - pl.col("expected")
    total_a, total_f = pl.col("actual").sum(), pl.col("expected").sum()
    total = (total_a - total_f).over("dimension")
    still = total.abs() <= _TIE * (total_a.abs() + total_f.abs()).over("dimension")
    p, q = _proportion("expected"), _proportion("actual")
    surprise = (0.5 * (_xlog(p, q) + _xlog(q, p))).clip(lower_bound=0.0)
    return [
        change.alias("change"),
        pl.when(still).then(None).otherwise(change / total).alias("share"),
        p.alias("expected_share"),
        q.alias("actual_share"),
        surprise.alias("surprise"),
    ]


def _selection(
    *, min_share: float, min_excess: float, min_surprise: float, coverage: float, max_values: int
) -> list[pl.Expr]:
    """``selected`` and ``dimension_surprise``, on rows sorted by surprise per dimension.

    A value is kept when it stands out (its share of the change exceeds ``min_share``
    and its usual share by ``min_excess``, its surprise reaches ``min_surprise``), it is
    among the first ``max_values`` such values, and the values kept before it fall short
    of ``coverage``. A dimension is a candidate when it keeps a value, but never all of
    its values.
    """
    share = pl.col("share")
    stands_out = (
        (share > min_share)
        & (share - pl.col("expected_share") >= min_excess * (1 - _TIE))
        & (pl.col("surprise") >= min_surprise)
    ).fill_null(False)
    gain = pl.when(stands_out).then(share).otherwise(0.0)
    before = gain.cum_sum().over("dimension") - gain
    kept = (
        stands_out
        & (before < coverage * (1 - _TIE))
        & (stands_out.cum_sum().over("dimension") <= max_values)
    )
    count = kept.sum().over("dimension")
    candidate = (count > 0) & (count < pl.len().over("dimension"))
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
    min_excess: float = 0.1,
    min_surprise: float = 0.001,
    coverage: float = 0.67,
    max_values: int = 3,
) -> pl.DataFrame:
    """Which values of which dimensions stand out in the gap between actual and expected.

    Parameters
    ----------
    frame
        One row per leaf cell: the ``dims`` columns (text, enum or categorical; a null
        counts as the value ``"(none)"``) and the numeric columns ``actual`` and
        ``expected``. Null measures count as 0. Negative measures count as 0 in the
        shares and the surprise.
    dims
        The dimension columns to attribute the change to.
    min_share
        A value stands out only if its share of the change exceeds this (values that
        moved against the total, or hardly moved, never do).
    min_excess
        ... and only if its share of the change exceeds its usual share by this much
        (0.1: ten points): it took more of the change than its usual part of the total.
    min_surprise
        ... and only if its surprise reaches this (the Jensen-Shannon term of a share
        moving from 30% to 35% is about 0.001).
    coverage
        Values that stand out are kept, most surprising first, until their shares of
        the change reach this together.
    max_values
        At most this many values are kept per dimension.

    Returns
    -------
    pl.DataFrame
        One row per (dimension, value), including values that were not selected:
        ``dimension``, ``value``, ``actual``, ``expected``, ``change`` (actual minus
        expected), ``share`` (of the change; null when actual equals expected in total),
        ``expected_share`` and ``actual_share`` (of the dimension's expected and actual
        totals), ``surprise`` (at least 0, always finite), ``selected`` (kept by a
        candidate dimension), ``dimension_rank`` (1 for the best candidate, null for
        other dimensions) and ``dimension_surprise`` (null for non-candidates). Rows
        are sorted by rank (candidates first), by dimension for non-candidates, then
        by surprise (highest first) and value.

    Examples
    --------
    FL's share of cases jumps from 10% to 60% while the platforms rise evenly: FL is
    named, no platform is (each took the share of the change it has of the total):

    >>> cells = pl.DataFrame(
    ...     {
    ...         "region": ["FL", "FL", "TX", "TX"],
    ...         "platform": ["ios", "web", "ios", "web"],
    ...         "actual": [60.0, 60.0, 40.0, 40.0],
    ...         "expected": [5.0, 5.0, 45.0, 45.0],
    ...     }
    ... )
    >>> out = explain(cells, dims=["region", "platform"])
    >>> out.select("dimension", "value", "share", "expected_share", "selected").rows()
    [('region', 'FL', 1.1, 0.1, True), ('region', 'TX', -0.1, 0.9, False), \
('platform', 'ios', 0.5, 0.5, False), ('platform', 'web', 0.5, 0.5, False)]
    >>> out["surprise"].round(4).to_list(), out["dimension_rank"].to_list()
    ([0.0991, 0.0493, 0.0, 0.0], [1, 1, None, None])
    """
    order = _check(
        frame,
        dims,
        min_share=min_share,
        min_excess=min_excess,
        min_surprise=min_surprise,
        coverage=coverage,
        max_values=max_values,
    )
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
        .with_columns(
            _selection(
                min_share=min_share,
                min_excess=min_excess,
                min_surprise=min_surprise,
                coverage=coverage,
                max_values=max_values,
            )
        )
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
    ...         "actual": [60.0, 60.0, 40.0, 40.0],
    ...         "expected": [5.0, 5.0, 45.0, 45.0],
    ...     }
    ... )
    >>> summary(explain(cells, dims=["region", "platform"]))
    '+100 cases vs expected (+100%); region=FL explains 110% of the change \
(actual 120 vs expected 10; usually 10% of cases).'
    >>> summary(explain(cells.head(0), dims=["region"]))
    'No single value stands out: the change is spread like the usual mix.'
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    chosen = explained.filter(pl.col("selected") & (pl.col("dimension_rank") <= top))
    if chosen.is_empty():
        return NOTHING
    parts = (
        chosen.group_by("dimension_rank")
        .agg(
            pl.col("dimension").first(),
            pl.col("value"),
            pl.col("share", "actual", "expected", "expected_share").sum(),
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
        f"(actual {_number(first['actual'])} vs expected {_number(first['expected'])}; "
        f"usually {first['expected_share']:.0%} of {unit})"
    )
    rest = [f"{label} {share}" for label, share in zip(labels[1:], shares[1:], strict=True)]
    return f"{text}, then {_and(rest)}." if rest else f"{text}."
