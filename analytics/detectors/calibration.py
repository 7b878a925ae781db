"""Calibrated p-values: each series judged against its own past, whatever its noise.

- :func:`conformal_pvalues`: the tail probability of each point's statistic among the
  same series' earlier statistics (rank-based, over a trailing window), with a
  generalised Pareto tail fitted to the largest past values where the ranks run out.
- :func:`record_tail`: beyond the largest past statistic, a Pareto tail from the
  empirical ``1 / (n + 1)`` (a floor under the fitted tail, or in its place).
- :func:`point_alpha`: the user's budget ("about one false alert per series per N
  days") as a per-point level, from the series' sampling step.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import bottleneck as bn
import numpy as np

from analytics.detectors._grid import in_threads

__all__ = ["conformal_pvalues", "judged_cells", "point_alpha", "record_tail"]

#: Statistics are clipped to this magnitude (an infinite or huge value ranks first
#: anyway, and a bounded one keeps the tail fit finite).
_CAP = 1e6


def point_alpha(false_alerts: float, per_days: float, step: timedelta, gap: int = 0) -> float:
    """The per-point level that gives ``false_alerts`` per ``per_days`` days on noise.

    Alerting points within ``gap`` points of each other form one incident, so the
    level ``a`` solves ``a (1 - a) ** gap = budget per point`` (independent points
    open an incident when none of the ``gap`` before them alerted).

    Parameters
    ----------
    false_alerts, per_days
        The budget: about ``false_alerts`` false alerts per series every ``per_days``
        days.
    step
        The spacing of the series' points.
    gap
        The merging gap of the incident rule, in points.

    Examples
    --------
    >>> point_alpha(1.0, 30, timedelta(days=1))
    0.03333333333333333
    >>> round(point_alpha(1.0, 30, timedelta(minutes=5)), 7)
    0.0001157
    >>> round(point_alpha(1.0, 30, timedelta(days=1), gap=3), 4)
    0.0374
    """
    if false_alerts <= 0 or per_days <= 0:
        raise ValueError("the budget needs a positive number of alerts and of days")
    budget = min(0.2, false_alerts / max(timedelta(days=per_days) / step, 1.0))
    lo, hi = budget, 1.0 / (gap + 1)  # a (1 - a) ** gap increases up to 1 / (gap + 1)
    if hi * (1.0 - hi) ** gap <= budget:
        return float(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * (1.0 - mid) ** gap < budget else (lo, mid)
    return float(lo)


def conformal_pvalues(
    stat: np.ndarray,
    *,
    window: int,
    min_history: int,
    refresh: int = 16,
    tail: float = 0.05,
    min_tail: int = 10,
    level: float | np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Upper-tail p-value of each cell of a (series x time) grid among its row's past.

    ``p = (1 + #past >= x) / (1 + n)`` over the last ``window`` non-missing cells
    before the cell's block (blocks of ``refresh`` columns share a reference set). It
    is exactly calibrated when the statistics of a row are exchangeable, whatever their
    distribution. Beyond the ``k``-th largest past value (``k`` = ``tail`` of the past,
    at least ``min_tail``) the p-value comes from a generalised Pareto tail fitted to
    those ``k`` exceedances (probability-weighted moments), so that levels smaller than
    ``1 / n`` are reachable. NaN where the cell is missing or its row has fewer than
    ``min_history`` past values. With ``level`` (one per row, or one for all) it also
    returns the grid of critical values: the statistic whose p-value is ``level``
    against the same reference (the edge of the band). With ``reference`` (a grid of
    the same shape, NaN where it has nothing) each cell is ranked among that grid's
    earlier cells instead of its own statistic's.

    The rows are ranked once (each value replaced by its rank in its row, so that all
    rows fit in one sorted integer array) and each block's reference set is kept sorted
    by merging the next block into it, rather than sorted again.

    Examples
    --------
    One hundred past values 1..100: 50.5 is exceeded by half of them; 100.5 by none,
    and the tail fitted to the ten largest puts it at 0.039:

    >>> past = np.arange(1.0, 101.0)
    >>> p = conformal_pvalues(np.array([np.r_[past, 100.5, 50.5]]), window=200,
    ...                       min_history=50, refresh=100)
    >>> p[0, 100:].round(3).tolist()
    [0.039, 0.505]
    """
    n_series, width = stat.shape
    levels = np.broadcast_to(np.asarray(1.0 if level is None else level, float), (n_series,))
    x = np.clip(stat, -_CAP, _CAP)
    past = None if reference is None else np.clip(reference, -_CAP, _CAP)
    blocks = _Blocks(
        x if past is None else past,
        window=window,
        refresh=refresh,
        min_history=min_history,
        tail=tail,
        min_tail=min_tail,
        levels=levels,
    )
    out = np.full(stat.shape, np.nan)
    busy = np.arange(n_series)
    if level is None:  # rows with nothing to judge cost nothing
        busy = np.flatnonzero(~np.isnan(x).all(axis=1))
        x, levels, blocks = x[busy], levels[busy], blocks.subset(busy)
        past = None if past is None else past[busy]
    sorted_past = _SortedPast(blocks)
    chunks = _chunks(len(busy), width)
    in_threads(
        lambda rows: sorted_past.fill(rows, x[rows], None if past is None else past[rows]), chunks
    )
    sigma, xi, edge = _tails(blocks, sorted_past, levels, min_tail)

    def assemble(rows: slice) -> None:
        out[busy[rows]] = _assemble(blocks, sorted_past, x[rows], sigma, xi, rows, min_tail)

    in_threads(assemble, chunks)
    if level is None:
        return out
    crit = np.broadcast_to(edge[:, :, None], (*edge.shape, refresh))
    return out, crit.reshape(n_series, edge.shape[1] * refresh)[:, :width]


def record_tail(
    p: np.ndarray,
    crit: np.ndarray,
    stat: np.ndarray,
    *,
    window: int,
    index: float,
    level: float | np.ndarray,
    least: float = 0.0,
    replace: bool = False,
    refresh: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """p-values and critical values of :func:`conformal_pvalues` beyond the record.

    ``M`` is the largest statistic in each cell's reference (the ``window`` cells before
    its block of ``refresh``, as :func:`conformal_pvalues` ranks it; raised to ``least``)
    and ``n`` their number. Beyond ``M`` a Pareto tail from the empirical ``1 / (n + 1)``
    gives ``(M / x) ** index / (n + 1)``: with ``replace`` in place of the fitted tail,
    otherwise as a floor under it (the fitted tail may not fall faster: a value just above
    the largest one seen is not much rarer than it). ``crit`` is moved to match at each
    row's ``level``. Cells with ``M <= 0`` or not judged are left as they are.

    >>> past = np.arange(1.0, 101.0)
    >>> stat = np.array([np.r_[past, 200.0]])
    >>> p, crit = conformal_pvalues(stat, window=200, min_history=50, refresh=100, level=0.001)
    >>> q, edge = record_tail(p, crit, stat, window=200, index=2.0, level=0.001, refresh=100)
    >>> round(float(q[0, 100]), 5), round(float(edge[0, 100]), 1)
    (0.00248, 314.7)
    """
    width = stat.shape[1]
    if width == 0:
        return p, crit
    w = max(1, min(window, width))
    top = bn.move_max(stat, w, min_count=1, axis=-1)
    count = bn.move_sum((~np.isnan(stat)).astype(float), w, min_count=1, axis=-1)
    # The reference of a cell ends where its block starts.
    last = np.arange(width) // refresh * refresh - 1
    before = last >= 0
    top = np.where(before, top[:, np.maximum(last, 0)], np.nan)
    count = np.where(before, count[:, np.maximum(last, 0)], np.nan)
    top = np.fmax(top, least) if least > 0 else top
    alpha = np.broadcast_to(np.asarray(level, float).reshape(-1, 1), (stat.shape[0], 1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        beyond = (stat > top) & (top > 0) & ~np.isnan(p)
        law = (top / stat) ** index / (count + 1.0)
        out = np.where(beyond, law if replace else np.fmax(p, law), p)
        # The statistic whose tail probability is the level: M ((n + 1) level) ** (-1/index).
        reach = (count + 1.0) * alpha
        edge = np.where(reach < 1.0, top * reach ** (-1.0 / index), np.nan)
    known = np.isfinite(edge) & (top > 0)
    moved = edge if replace else np.fmax(crit, edge)
    return out, np.where(known, moved, crit)


def judged_cells(
    reference: np.ndarray, *, window: int, min_history: int, refresh: int = 16
) -> np.ndarray:
    """Where :func:`conformal_pvalues` judges a cell against ``reference`` (its row has
    ``min_history`` values in the window before the cell's block), whatever the cell."""
    n_series, width = reference.shape
    blocks = _Blocks(
        reference,
        window=window,
        refresh=refresh,
        min_history=min_history,
        tail=0.0,
        min_tail=0,
        levels=np.ones(n_series),
    )
    return np.repeat(blocks.ok, refresh, axis=1)[:, :width]


#: Cells of the grid handled at once (a few megabytes: the sorted reference sets of a
#: chunk of rows stay in the processor's cache while its blocks are merged in).
_CHUNK_CELLS = 1 << 18


def _chunks(n_series: int, width: int) -> list[slice]:
    step = max(1, _CHUNK_CELLS // max(width, 1))
    return [slice(r, min(r + step, n_series)) for r in range(0, n_series, step)]


class _Blocks:
    """The reference set of each block of a ``past`` grid: its first column ``starts``,
    the window's first column ``los``, the non-missing past values ``n`` (series x
    blocks), which rows are judged (``ok``) and which blocks judge any (``live``), the
    tail size ``k`` and its largest judged value per block (``kmax``), and the rank from
    the top of the empirical critical value at each row's level (``need``)."""

    def __init__(
        self,
        past: np.ndarray,
        *,
        window: int,
        refresh: int,
        min_history: int,
        tail: float,
        min_tail: int,
        levels: np.ndarray,
    ) -> None:
        n_series, width = past.shape
        self.shape = past.shape
        self.refresh = refresh
        self.starts = np.arange(0, width, refresh)
        self.los = np.maximum(self.starts - window, 0)
        known = np.zeros(past.size + 1, np.int64)
        np.cumsum(~np.isnan(past).ravel(), out=known[1:])
        first = np.arange(n_series)[:, None] * width
        self.n = known[first + self.starts] - known[first + self.los]
        self.ok = self.n >= max(min_history, 1)
        self.live = self.ok.any(axis=0)
        k = np.minimum(np.maximum(np.ceil(tail * self.n), min_tail), self.n - 1)
        self.k = k.astype(np.int64)
        self.kmax = np.where(self.ok, self.k, -1).max(axis=0, initial=-1)
        self.need = np.floor(levels[:, None] * (1.0 + self.n)).astype(np.int64) - 1

    def subset(self, rows: np.ndarray) -> _Blocks:
        """The same blocks for the rows ``rows`` only (the tail sizes ``kmax`` stay
        those of all rows)."""
        part = copy.copy(self)
        part.shape = (len(rows), self.shape[1])
        part.n, part.ok, part.k, part.need = (a[rows] for a in (self.n, self.ok, self.k, self.need))
        return part


class _SortedPast:
    """For every judged block: how many past values lie below each query (``below``),
    and the past values the tail and the critical value need (``top``: the ``kmax + 1``
    largest, ``u``: the ``k + 1``-th largest, ``edge``: the ``need``-th largest)."""

    def __init__(self, blocks: _Blocks) -> None:
        n_series, width = blocks.shape
        self.blocks = blocks
        self.below = np.zeros((n_series, width), np.int64)
        self.top = [np.zeros((n_series, kmax + 1)) for kmax in blocks.kmax.tolist()]
        self.u = np.zeros(blocks.n.shape)
        self.edge = np.zeros(blocks.n.shape)

    def fill(self, rows: slice, x: np.ndarray, past: np.ndarray | None) -> None:
        """Rank the rows ``rows`` (their statistics ``x`` and reference ``past``) and
        walk their blocks."""
        blocks, width = self.blocks, x.shape[1]
        keys, values, by_block = _ranks(
            x if past is None else np.concatenate([x, past], axis=1), width, blocks.refresh
        )
        size = blocks.refresh
        offset = 0 if past is None else width  # the reference's first column in ``keys``
        reference = keys[:, offset:]
        first = np.arange(len(keys))[:, None]
        below = np.zeros((len(keys), width), np.int64)  # by block, in order of value
        ordered = reference[:, :0]
        pending = None  # the last block's sorted keys and where they go in ``ordered``
        for b, (start, lo) in enumerate(zip(blocks.starts, blocks.los, strict=True)):
            if lo > 0:  # the window slides: sort it
                ordered = np.sort(reference[:, lo:start], axis=1)
            elif pending is not None:
                ordered = _insert(ordered, *pending)
            elif b > 0:
                cols = by_block[:, offset + start - size : offset + start]
                ordered = _merge(ordered, np.take_along_axis(keys, cols, axis=1))
            pending = None
            if not blocks.live[b]:
                continue
            m = start - lo
            hi = min(start + size, width)
            cells = np.take_along_axis(keys, by_block[:, start:hi], axis=1)
            at = np.searchsorted(ordered.ravel(), cells.ravel()).reshape(cells.shape) - first * m
            below[:, start:hi] = at
            pending = (cells, at) if past is None else None
            n = blocks.n[rows, b]
            kmax = blocks.kmax[b]
            top = n[:, None] - kmax - 1 + np.arange(kmax + 1)[None, :]
            self.top[b][rows] = values[_pick(ordered, top, m)]
            self.u[rows, b] = values[_pick(ordered, n - blocks.k[rows, b] - 1, m)]
            self.edge[rows, b] = values[_pick(ordered, n - blocks.need[rows, b], m)]
        np.put_along_axis(self.below[rows], by_block[:, :width], below, axis=1)


def _pick(ordered: np.ndarray, at: np.ndarray, m: int) -> np.ndarray:
    """The keys at positions ``at`` (clipped to the ``m`` columns) of each row."""
    at = np.minimum(np.maximum(at, 0), m - 1)
    if at.ndim == 1:
        picked: np.ndarray = ordered[np.arange(len(ordered)), at]
        return picked
    return np.take_along_axis(ordered, at, axis=1)


def _ranks(grid: np.ndarray, width: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each cell's key: its row's offset plus the number of values of the row below it
    (equal values share a key; a missing one gets the row's largest key); the flat
    array of values by key (NaN at the missing key); and the columns of each row
    grouped by blocks of ``size`` (those of the first ``width`` columns first), each
    block's in order of value."""
    n_rows, cols = grid.shape
    order = np.argsort(grid, axis=1, kind="stable")  # NaN last
    values = np.full((n_rows, cols + 1), np.nan)
    values[:, :cols] = np.take_along_axis(grid, order, axis=1)
    first = np.arange(n_rows, dtype=np.int64)[:, None] * (cols + 1)
    fresh = np.ones((n_rows, cols), bool)
    np.not_equal(values[:, 1:cols], values[:, : cols - 1], out=fresh[:, 1:])
    start = np.maximum.accumulate(np.where(fresh, first + np.arange(cols), 0).ravel())
    start = np.where(np.isnan(values[:, :cols]), first + cols, start.reshape(n_rows, cols))
    keys = np.empty((n_rows, cols), np.int32 if values.size < 2**31 else np.int64)
    np.put_along_axis(keys, order, start.astype(keys.dtype), axis=1)
    block = np.where(order < width, order // size, (order - width) // size + cols // size + 1)
    small = np.int16 if cols // size + cols // size + 2 < 2**15 else np.int64
    by_block = np.take_along_axis(order, np.argsort(block.astype(small), axis=1, kind="stable"), 1)
    return keys, values.ravel(), by_block


def _merge(ordered: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Merge the sorted rows ``new`` into the sorted rows ``ordered`` (each row's keys
    in its own range, so that the flattened arrays are sorted)."""
    if ordered.shape[1] == 0 or new.shape[1] == 0:
        return new if ordered.shape[1] == 0 else ordered
    first = np.arange(len(ordered))[:, None] * ordered.shape[1]
    at = np.searchsorted(ordered.ravel(), new.ravel()).reshape(new.shape) - first
    return _insert(ordered, new, at)


def _insert(ordered: np.ndarray, new: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Insert the sorted rows ``new`` into the sorted rows ``ordered``, before the
    positions ``at`` of each row."""
    n_rows, m = ordered.shape
    if m == 0:
        return new
    r = new.shape[1]
    dest = (at + np.arange(r) + np.arange(n_rows)[:, None] * (m + r)).ravel()
    out = np.empty(n_rows * (m + r), ordered.dtype)
    keep = np.ones(out.size, bool)
    keep[dest] = False
    out[dest] = new.ravel()
    out[keep] = ordered.ravel()
    return out.reshape(n_rows, m + r)


def _tails(
    blocks: _Blocks, past: _SortedPast, levels: np.ndarray, min_tail: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale and shape of each judged block's tail fit (0 where none) and its critical
    value (NaN where the row is not judged)."""
    sigma, xi = np.zeros(blocks.n.shape), np.zeros(blocks.n.shape)
    edge = np.full(blocks.n.shape, np.nan)
    for b in np.flatnonzero(blocks.live):
        rows = np.flatnonzero(blocks.ok[:, b])
        n, k, kmax, level = blocks.n[rows, b], blocks.k[rows, b], blocks.kmax[b], levels[rows]
        crit = np.where(blocks.need[rows, b] >= 1, past.edge[rows, b], np.inf)
        if kmax >= min_tail:
            used = np.arange(kmax + 1)[None, :] > (kmax - k)[:, None]  # the k largest
            u = past.u[rows, b]
            y = np.where(used, past.top[b][rows] - u[:, None], np.nan)[:, 1:]
            sigma[rows, b], xi[rows, b] = s, shape = _gpd_pwm(y, k)
            ratio = level * (1.0 + n) / np.maximum(k, 1)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                beyond = np.where(
                    np.abs(shape) < 1e-6, -s * np.log(ratio), s / shape * (ratio ** (-shape) - 1)
                )
            crit = np.where((k >= min_tail) & (ratio < 1) & (s > 0), u + beyond, crit)
        edge[rows, b] = crit
    return sigma, xi, edge


def _assemble(
    blocks: _Blocks,
    past: _SortedPast,
    x: np.ndarray,
    sigma: np.ndarray,
    xi: np.ndarray,
    rows: slice,
    min_tail: int,
) -> np.ndarray:
    """The p-values of the rows ``rows``: the rank-based one, or the fitted tail's
    beyond the ``k``-th largest past value (never rarer than the past shows)."""
    n_rows, width = x.shape
    cells = (n_rows, len(blocks.starts), blocks.refresh)  # row, block, column in block
    query = np.full(cells, np.nan)
    query.reshape(n_rows, -1)[:, :width] = x
    below = np.zeros(cells, np.int64)
    below.reshape(n_rows, -1)[:, :width] = past.below[rows]
    n, k, u = blocks.n[rows], blocks.k[rows], past.u[rows]
    at_least = n[:, :, None] - below
    p = (1.0 + at_least) / (1.0 + n[:, :, None])
    excess = query - u[:, :, None]
    with np.errstate(invalid="ignore"):
        fit = np.nonzero((k >= min_tail)[:, :, None] & (excess > 0) & (sigma[rows] > 0)[:, :, None])
    if len(fit[0]):
        e, s, shape = excess[fit], sigma[rows][fit[:2]], xi[rows][fit[:2]]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            survival = np.where(
                np.abs(shape) < 1e-6,
                np.exp(-e / s),
                np.maximum(1 + shape * e / s, 0.0) ** (-1 / shape),
            )
        kept = fit[:2]
        tail_p = (k[kept] / (1.0 + n[kept])) * np.maximum(survival, 1e-300)
        # Never rarer than the past shows: where past values at least as large exist,
        # the tail may not claim less than their share (a spike recurring every day
        # stays as common as it has been, however light the fitted tail).
        p[fit] = np.maximum(tail_p, np.where(at_least[fit] > 0, p[fit], 0.0))
    judged = blocks.ok[rows][:, :, None] & ~np.isnan(query)
    p = np.where(judged, np.clip(p, 0.0, 1.0), np.nan)
    return p.reshape(n_rows, -1)[:, :width]


def _gpd_pwm(y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shape of a generalised Pareto fit to the exceedances of each row
    (ascending, NaN-padded on the left), by probability-weighted moments (Hosking and
    Wallis, 1987), its shape raised by ``1 / sqrt(k)`` and kept within [0, 0.5]: never a
    bounded tail, whose end would make anything beyond it infinitely rare."""
    valid = ~np.isnan(y)
    count = np.sum(valid, axis=1)
    rank = np.cumsum(valid.ravel()).reshape(y.shape)  # 1..k along the valid cells
    rank -= rank[:, :1] - valid[:, :1]
    weight = 1.0 - (rank - 0.35) / np.maximum(count, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        a0 = np.nanmean(y, axis=1) if y.shape[1] else np.zeros(len(k))
        a1 = np.nansum(np.where(np.isnan(y), 0.0, y) * weight, axis=1) / np.maximum(count, 1)
        denom = a0 - 2 * a1
        # The shape is raised by about one standard error: a tail fitted to a
        # hundred points is otherwise too light as often as too heavy, and the
        # too-light fits are the ones that raise false alerts.
        xi = np.clip(2.0 - a0 / denom + 1.0 / np.sqrt(np.maximum(count, 1)), 0.0, 0.5)
        sigma = np.where(denom > 0, 2 * a0 * a1 / denom, a0)
    return np.nan_to_num(sigma, nan=0.0), np.nan_to_num(xi, nan=0.0)
