"""Small-cell suppression: hide counts below a threshold, and enough others to protect them.

:func:`suppress` hides every count below :data:`SUPPRESSION_THRESHOLD` (primary
suppression) and, in a table published with its exact total, the smallest shown cells
too until the hidden cells are at least two and add up to at least the threshold
(complementary suppression), so the total minus the shown cells pins no hidden cell.
Hidden cells read :data:`SUPPRESSED_TEXT`, small or not. The product brief
(:mod:`analytics.reports.disclosure`) publishes its counts through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

__all__ = ["SUPPRESSED_TEXT", "SUPPRESSION_THRESHOLD", "TOTAL_LABEL", "suppress"]

#: Counts below this are suppressed (the product brief's guarantee).
SUPPRESSION_THRESHOLD = 10
#: How a suppressed cell reads: the same for a small cell and for one hidden to protect
#: it (a complementary cell may be large), so the marker says nothing about its size.
SUPPRESSED_TEXT = "hidden"
#: The label of a total row: the exact total of every cell, hidden ones included
#: (itself hidden when below the threshold).
TOTAL_LABEL = "Total"


def suppress(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    threshold: int = SUPPRESSION_THRESHOLD,
    label: str | None = None,
) -> pl.DataFrame:
    """Hide small counts, and with a published total enough others to protect them.

    Every cell of ``columns`` below ``threshold`` (zero included) becomes null (primary
    suppression); a brief's table (:class:`analytics.reports.model.Table`) shows it as
    :data:`SUPPRESSED_TEXT`. With ``label`` (a text column) each column is one published
    table with its exact total, added as a last row labelled :data:`TOTAL_LABEL`; then, when
    any cell is hidden, the smallest shown cells are hidden too (complementary suppression,
    ties by label) until at least two are hidden and the hidden cells add up to at least
    ``threshold``. The total minus the shown cells is then the sum of two or more hidden
    cells, at least ``threshold``: each hidden cell could be anything from 0 to that sum. A
    total below ``threshold`` is hidden (and so is every cell under it). Each column is
    decided from its own values only, whatever the row order, so the same counts are always
    suppressed the same way.

    Parameters
    ----------
    frame
        One row per cell, ``columns`` non-negative integer counts (no nulls).
    columns
        The count columns to suppress, each a table of its own.
    threshold
        The smallest count shown.
    label
        A text column naming the cells; with it, a total row and complementary
        suppression. Without it no total is published and only small cells are hidden.

    Examples
    --------
    >>> cells = pl.DataFrame({"category": ["spam", "other", "fraud"], "cases": [120, 4, 35]})
    >>> suppress(cells, ["cases"], label="category").rows()
    [('spam', 120), ('other', None), ('fraud', None), ('Total', 159)]
    >>> suppress(cells, ["cases"])["cases"].to_list()
    [120, None, 35]
    >>> suppress(cells, ["cases"], threshold=50)["cases"].to_list()
    [120, None, None]
    """
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, not {threshold}")
    missing = [c for c in [*columns, *([label] if label else [])] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {frame.columns}")
    if any(frame[c].null_count() for c in columns):
        raise ValueError(f"columns {list(columns)} must hold counts, not nulls")
    names = [str(v) for v in frame[label]] if label else list(range(frame.height))
    hidden = frame.with_columns(
        pl.Series(
            c,
            [
                None if hide else value
                for value, hide in zip(
                    frame[c].to_list(),
                    _hidden(frame[c].to_list(), names, threshold=threshold, total=bool(label)),
                    strict=True,
                )
            ],
            dtype=frame.schema[c],
        )
        for c in columns
    )
    if label is None:
        return hidden
    hidden = hidden.with_columns(pl.col(label).cast(pl.String))
    total = pl.DataFrame(
        {
            label: [TOTAL_LABEL],
            **{c: [_at_least(int(frame[c].sum()), threshold)] for c in columns},
        }
    )
    return pl.concat([hidden, total], how="diagonal_relaxed").select(frame.columns)


def _hidden(
    values: Sequence[int], names: Sequence[object], *, threshold: int, total: bool
) -> list[bool]:
    """Which cells of one table to hide: below ``threshold``, and with a published
    ``total`` the smallest others (ties by name) until at least two are hidden that add
    up to at least ``threshold``.

    >>> _hidden([120, 4, 35, 30], "abcd", threshold=10, total=True)
    [False, True, False, True]
    >>> _hidden([120, 4, 6, 30], "abcd", threshold=10, total=True)
    [False, True, True, False]
    >>> _hidden([12, 0, 0], "abc", threshold=10, total=True)
    [True, True, True]
    >>> _hidden([120, 4, 35, 30], "abcd", threshold=10, total=False)
    [False, True, False, False]
    """
    hide = [v < threshold for v in values]
    if not total or not any(hide):
        return hide
    for i in sorted(range(len(values)), key=lambda i: (values[i], str(names[i]))):
        small = [v for v, h in zip(values, hide, strict=True) if h]
        if len(small) >= 2 and sum(small) >= threshold:
            break
        hide[i] = True
    return hide


def _at_least(value: float | None, threshold: int = SUPPRESSION_THRESHOLD) -> Any:
    """``value`` when it is at least ``threshold``, else None (hidden)."""
    return value if value is not None and value >= threshold else None
