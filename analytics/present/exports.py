"""CSV that is safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some spreadsheets skip before one of those) is read by Excel, LibreOffice and
Google Sheets as a formula: ``=cmd|' /C calc'!A0`` typed as a sign-in name, a case
description or a note would run when an admin opens the exported audit log. Every CSV
Lookout writes for people goes through :func:`to_csv`, and every table shown with a
download button in its toolbar through :func:`neutralise`: such cells get a leading
apostrophe (the rule spreadsheets themselves use to mean "this is text", as OWASP
recommends). Numbers stay numbers: only text columns are touched.
"""

from __future__ import annotations

import polars as pl

__all__ = ["FORMULA_STARTS", "neutralise", "to_csv"]

#: First characters that make a spreadsheet read a cell as a formula (with their
#: full-width forms, which some spreadsheets fold to the ASCII ones).
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula
    prefixed by an apostrophe; other cells and columns unchanged.

    >>> names = ["=cmd|' /C calc'!A0", "ann", "-1+2", None]
    >>> frame = pl.DataFrame({"name": names, "n": [-1, 2, 3, 4]})
    >>> neutralise(frame).to_dict(as_series=False)
    {'name': ["'=cmd|' /C calc'!A0", 'ann', "'-1+2", None], 'n': [-1, 2, 3, 4]}
    """
    text = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    ]
    if not text:
        return frame
    risky = "^[" + "".join(FORMULA_STARTS).replace("-", r"\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(name).cast(pl.String).str.contains(risky))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in text
    )


def to_csv(frame: pl.DataFrame) -> str:
    """``frame`` as CSV text, formula cells neutralised (:func:`neutralise`).

    >>> print(to_csv(pl.DataFrame({"user": ["@SUM(A1:A9)", "bob"], "logins": [1, 2]})), end="")
    user,logins
    '@SUM(A1:A9),1
    bob,2
    """
    return neutralise(frame).write_csv()
