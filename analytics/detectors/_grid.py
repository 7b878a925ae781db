"""Frames of many series laid out as (series x time step) grids, and back.

A frame has ``ts`` (Datetime), ``value`` (Float64) and optionally ``series`` (String;
one series when absent). Each series' step is the median spacing of its points; series
sharing a step share one grid, where a point's column is the number of steps since its
series' first point (so a gap shifts nothing and a missing point is an empty NaN cell).
Detectors compute on the grids with whole-array NumPy/bottleneck operations: no Python
loop per series, only one per distinct step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import polars as pl

SERIES = "series"
_T = TypeVar("_T")

#: Largest grid a frame may lay out, as a multiple of its points (beyond it the
#: timestamps are too irregular for a fixed-step model).
_SLACK = 8


@dataclass(frozen=True)
class Grid:
    """Series sharing one step, on a (series x time step) grid.

    ``values`` is the grid (NaN where no point); ``rows`` the input row of each laid-out
    point and ``cells`` its flat index in the grid; ``names`` the series of each grid
    row; ``step`` the spacing of the points.
    """

    values: np.ndarray
    rows: np.ndarray
    cells: np.ndarray
    names: list[str]
    step: timedelta

    def take(self, grid: np.ndarray) -> np.ndarray:
        """The cells of ``grid`` (same shape as :attr:`values`) at the laid-out points."""
        cells: np.ndarray = grid.reshape(-1)[self.cells]
        return cells


def keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with a String ``series`` column (``""`` when absent) and Float64 values.

    >>> from datetime import datetime
    >>> keyed(pl.DataFrame({"ts": [datetime(2026, 1, 1)], "value": [1]})).row(0)
    ('', datetime.datetime(2026, 1, 1, 0, 0), 1.0)
    """
    missing = {"ts", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"the frame lacks the columns {sorted(missing)}")
    if not frame.schema["ts"].is_temporal():
        raise ValueError("ts must be a Datetime column")
    series = pl.col(SERIES).cast(pl.String) if SERIES in frame.columns else pl.lit("")
    return frame.select(
        series.fill_null("").alias(SERIES),
        pl.col("ts").cast(pl.Datetime("us")),
        pl.col("value").cast(pl.Float64).fill_nan(None),
    )


def layout(frame: pl.DataFrame) -> list[Grid]:
    """Lay the series of a keyed frame out on one grid per distinct step.

    Rows with a null ``ts`` are left out (they get no score). A duplicated timestamp
    keeps its last row.

    >>> from datetime import datetime, timedelta
    >>> ts = [datetime(2026, 1, 1) + timedelta(days=d) for d in (0, 1, 2, 4)]
    >>> grids = layout(keyed(pl.DataFrame({"ts": ts, "value": [1.0, 2.0, 3.0, 5.0]})))
    >>> grids[0].values.tolist(), grids[0].step
    ([[1.0, 2.0, 3.0, nan, 5.0]], datetime.timedelta(days=1))
    """
    base = frame.with_row_index("_row").filter(pl.col("ts").is_not_null())
    if base.is_empty():
        return []
    # Series as codes in sorted order of their names, then rows by series and time
    # (stable: of duplicated timestamps the last row is laid out last and kept).
    names = base[SERIES].unique().sort()
    code = base[SERIES].cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)
    ts = base["ts"].dt.epoch("us").to_numpy()
    order = _by_series_and_time(code, ts)
    rows = base["_row"].to_numpy().astype(np.int64)
    values = base["value"].fill_null(np.nan).to_numpy()
    if order is not None:
        code, ts, rows, values = code[order], ts[order], rows[order], values[order]
    # Each series' step: the median of its positive gaps (a day when it has none).
    same = code[1:] == code[:-1]
    gap = np.diff(ts)
    valid = same & (gap > 0)
    medians = (
        pl.DataFrame({"code": code[1:][valid], "gap": gap[valid]})
        .group_by("code")
        .agg(pl.col("gap").median())
    )
    step_of = (
        pl.DataFrame({"code": np.arange(len(names))})
        .join(medians, on="code", how="left", maintain_order="left")["gap"]
        .fill_null(86_400_000_000)
        .round()
        .cast(pl.Int64)
        .to_numpy()
    )
    starts = np.flatnonzero(np.r_[True, ~same])
    first = np.zeros(len(names), np.int64)
    first[code[starts]] = ts[starts]  # the earliest point of each series
    _, at = np.unique(step_of, return_index=True)
    grids = []
    for step_us in step_of[np.sort(at)]:  # steps in order of their first series
        members = np.flatnonzero(step_of == step_us)
        inside = slice(None) if len(at) == 1 else step_of[code] == step_us
        place = np.zeros(len(names), np.int64)
        place[members] = np.arange(len(members))  # each series' row in this grid
        row = place[code[inside]]
        col = (
            (pl.Series(ts[inside] - first[code[inside]]) / int(step_us))
            .round()
            .cast(pl.Int64)
            .to_numpy()
        )
        n_series, width = len(members), int(col.max()) + 1
        if n_series * width > _SLACK * len(row) + 1_000_000:
            raise ValueError(
                "the timestamps are not at a regular frequency: "
                f"{len(row):,} points would span {n_series * width:,} time steps"
            )
        cells = row * width + col
        flat = np.full(n_series * width, np.nan)
        flat[cells] = values[inside]
        grids.append(
            Grid(
                values=flat.reshape(n_series, width),
                rows=rows[inside],
                cells=cells,
                names=names.gather(members).to_list(),
                step=timedelta(microseconds=int(step_us)),
            )
        )
    return grids


def _by_series_and_time(code: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """The stable order of rows by series code, then time (``None``: already so)."""
    span = int(ts.max()) - int(ts.min()) + 1
    if span * (int(code.max()) + 1) >= 2**62:
        return np.lexsort((ts, code))
    key = code * span + (ts - ts.min())
    return None if bool((key[1:] >= key[:-1]).all()) else np.argsort(key, kind="stable")


def periods(step: timedelta, width: int) -> list[int]:
    """Seasonal cycles (in points) worth trying for a step: daily and weekly cycles for
    sub-daily data, weekly for daily data, none for coarser data; only cycles that fit
    at least twice in ``width`` points.

    >>> periods(timedelta(hours=1), 2000), periods(timedelta(days=1), 30)
    ([24, 168], [7])
    """
    out = []
    for unit in (timedelta(days=1), timedelta(weeks=1)):
        points = unit / step
        if points >= 2 and abs(points - round(points)) < 1e-6 and 2 * round(points) <= width:
            out.append(round(points))
    return out


def in_threads(work: Callable[[_T], None], parts: list[_T]) -> None:
    """Run ``work`` on every part, on a few threads when there are several (NumPy's
    sorts and bottleneck's moving windows let go of the interpreter). ``work`` must not
    itself call :func:`in_threads` (the pool is shared: nested waits could starve it).

    >>> done = []
    >>> in_threads(done.append, [1, 2, 3]); sorted(done)
    [1, 2, 3]
    """
    if len(parts) <= 1:
        for part in parts:
            work(part)
        return
    list(_pool().map(work, parts))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
