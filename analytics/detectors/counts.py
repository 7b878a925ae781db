"""The count model: negative-binomial noise around a causal robust seasonal baseline.

The detector of Lookout's slice scan (daily and weekly case and event counts), in the
registry as ``counts`` (:class:`CountDetector`). It is the fast one: a compiled moving
median per window on a (series x time) grid, and the tail probabilities of each count
under a negative binomial whose over-dispersion is estimated from the series' own past
residuals, so its scale adapts. The general detectors (``spike``, ``shift``, ``stuck``,
``ensemble``) rank every point among the series' own past instead, which holds on any
noise but costs about 20 times as much; the scan of 10,000 slices x 730 days must stay
100 times faster than a per-series STL loop, and on count series the negative binomial
is calibrated (tests/test_detectors.py checks it on over-dispersed and small counts).

- **seasonal baseline, causal and robust**: a seasonal offset per phase (weekday for
  daily data; hour of day or of week for sub-daily data) is the median, over the
  previous ``seasons`` occurrences of that phase, of the value minus the mean of the
  period before it; the level is the median of the previous period's de-seasonalised
  values. ``expected = level + offset``. Every statistic uses only earlier points, so
  a verdict is what an alert would have seen, a spike never sits in its own baseline,
  and medians keep it out of the next ones. After a sustained level shift the level
  median catches up within half a period: the shift is one short incident, then the
  baseline has adapted.
- **count-aware noise**: series of non-negative integers are judged with a negative
  binomial (Poisson with over-dispersion, estimated robustly from past residuals);
  other series with a robust Gaussian (median absolute deviation of past residuals).
- **scores**: ``score = -log10(p)`` of the more extreme tail; ``lower``/``upper`` are
  the central ``1 - alpha`` band of the noise model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Literal

import bottleneck as _bn
import numpy as np
import polars as pl

from analytics.detectors.estimator import BaseDetector, Direction

__all__ = ["CountDetector", "infer_period", "score_frame"]

_KEY = "_series"


def infer_period(ts: pl.Series) -> tuple[int, timedelta]:
    """The seasonal period in points, and the spacing of the points.

    Daily (or coarser) data: a week; sub-daily data: a week when the series spans at
    least three weeks, otherwise a day.

    >>> from datetime import datetime
    >>> daily = pl.Series([datetime(2026, 1, d) for d in range(1, 30)])
    >>> infer_period(daily)
    (7, datetime.timedelta(days=1))
    >>> hourly = pl.datetime_range(datetime(2026, 1, 1), datetime(2026, 1, 5), "1h", eager=True)
    >>> infer_period(hourly)
    (24, datetime.timedelta(seconds=3600))
    """
    micros = ts.drop_nulls().sort().dt.epoch("us")
    gaps = micros.diff().drop_nulls()
    gaps = gaps.filter(gaps > 0)
    if gaps.is_empty():
        return 1, timedelta(days=1)
    step = timedelta(microseconds=float(gaps.median()))  # type: ignore[arg-type]
    if step >= timedelta(days=1):
        return max(1, round(timedelta(weeks=1) / step)) if step < timedelta(weeks=1) else 1, step
    span = timedelta(microseconds=float(micros.max() - micros.min()))  # type: ignore[operator,arg-type]
    unit = timedelta(weeks=1) if span >= timedelta(weeks=3) else timedelta(days=1)
    return max(1, round(unit / step)), step


def _is_sorted(frame: pl.DataFrame) -> bool:
    """True when rows are ordered by series, then time (checked in one pass)."""
    key, ts = pl.col(_KEY), pl.col("ts")
    later = (key > key.shift()) | ((key == key.shift()) & (ts > ts.shift()))
    return bool(frame.select(later.slice(1).all()).item()) if frame.height > 1 else True


#: Largest grid (series x time steps) a scan may lay out, as a multiple of its points:
#: beyond it the timestamps are too irregular for a fixed-frequency model.
_GRID_SLACK = 8


def _grid(base: pl.DataFrame, period: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Each row's point index in its series and cell in a (series x time step) grid,
    and the grid's shape.

    Rows must be sorted by series, then time. A point's index comes from its timestamp
    (so a gap shifts nothing): the steps since its series' first point, a step being the
    median spacing between rows (the jumps between series are too few to move it). A
    missing point is an empty cell, so every rolling window below spans a fixed
    stretch of time. The width is a whole number of cycles.
    """
    key, ts = pl.col(_KEY), pl.col("ts")
    gap = ts.diff()
    cols = base.select(
        new=(key != key.shift()).fill_null(True),
        us=ts.dt.epoch("us"),
        step=gap.filter(gap > timedelta(0)).dt.total_microseconds().median(),
    )
    new = cols["new"].to_numpy()
    micros = cols["us"].to_numpy()
    step = cols["step"][0] or 1
    first = np.maximum.accumulate(np.where(new, np.arange(new.size), 0))
    steps = np.rint((micros - micros[first]) / step).astype(np.int64)
    rows = np.cumsum(new) - 1
    n_series = int(rows[-1]) + 1
    width = -(-(int(steps.max()) + 1) // period) * period
    if n_series * width > _GRID_SLACK * base.height + 1_000_000:
        raise ValueError(
            "the timestamps are not at a regular frequency: "
            f"{base.height:,} points would span {n_series * width:,} time steps"
        )
    return steps, rows * width + steps, n_series, width


def _moving(
    grid: np.ndarray, how: Literal["mean", "median"], window: int, least: int
) -> np.ndarray:
    """Moving mean or median over the previous ``window`` cells along axis 1 (NaN cells
    skipped; NaN where fewer than ``least`` are present), strictly before each cell."""
    window = max(1, min(window, grid.shape[1]))
    move = _bn.move_mean if how == "mean" else _bn.move_median
    lagged = np.empty_like(grid)
    lagged[:, :1] = np.nan
    lagged[:, 1:] = grid[:, :-1]
    moved: np.ndarray = move(lagged, window, min_count=min(least, window), axis=1)
    return moved


def _baseline(
    base: pl.DataFrame, *, period: int, seasons: int, count: bool
) -> dict[str, np.ndarray]:
    """Each row's point index in its series (``_n``), ``expected`` and the noise scale
    (``_dispersion`` for counts, else ``_scale``), from its series' past only.

    The series are laid out on a (series x time) grid and every window is a bottleneck
    moving statistic along time (a compiled double-heap median), no Python loop per
    series. Blocks of series run on threads: numpy and bottleneck release the GIL.
    """
    noise = "_dispersion" if count else "_scale"
    if base.is_empty():
        return {"_n": np.empty(0, np.int64), "expected": np.empty(0), noise: np.empty(0)}
    steps, cell, n_series, width = _grid(base, period)
    flat = np.full(n_series * width, np.nan)
    flat[cell] = base["value"].fill_null(np.nan).to_numpy()
    value = flat.reshape(n_series, width)
    expected, scale = np.empty_like(value), np.empty_like(value)

    def block(rows: slice) -> None:
        expected[rows], scale[rows] = _baseline_block(
            value[rows], period=period, seasons=seasons, count=count
        )

    blocks = [slice(i, i + _BLOCK) for i in range(0, n_series, _BLOCK)]
    if len(blocks) == 1:
        block(blocks[0])
    else:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(block, blocks))
    return {"_n": steps, "expected": expected.ravel()[cell], noise: scale.ravel()[cell]}


#: Series per block of :func:`_baseline` (a block's grids stay in cache-friendly sizes).
_BLOCK = 1024


def _baseline_block(
    value: np.ndarray, *, period: int, seasons: int, count: bool, hold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Expected values and noise scale for a (series x time) block of :func:`_baseline`.

    ``hold`` (counts only): points whose residual lies more than ``hold`` noise standard
    deviations from the expectation are kept out of the over-dispersion of the points
    after them, so an alert does not widen the band that judges what follows it.
    """
    n_series, width = value.shape
    # Counts are modelled on the square-root scale (Anscombe), where a weekly pattern
    # is close to additive whatever the level; other metrics on their own scale.
    y = np.sqrt(value + 0.375) if count else value
    # Mean of the period before each point: the level, free of the seasonal pattern (a
    # spike in it moves a few of the raw offsets below, and their median ignores them).
    period_mean = _moving(y, "mean", period, max(1, period // 2))
    if period > 1:
        # Seasonal offset: median of (value - period level) at the same phase over the
        # last `seasons` cycles (cycles on axis 1 once each row is cut into cycles).
        cycles = (y - period_mean).reshape(n_series, width // period, period)
        offset = _moving(cycles, "median", seasons, max(1, seasons // 2))
        offset = offset.reshape(n_series, width)
        known = np.where(np.isnan(offset), 0.0, offset)
    else:
        known = np.zeros_like(y)
    level = _moving(y - known, "median", max(2 * period, 3), max(2, period // 2))
    expected = level + known
    if count:
        # fmax: with no level yet the expectation is 0 (its residuals are then large,
        # which keeps the first dispersion estimates wide, not narrow).
        expected = np.maximum(np.fmax(expected, 0.0) ** 2 - 0.375, 0.0)
    # Residuals count for the noise model only once the seasonal offsets exist.
    resid = value - expected
    if period > 1:
        resid[np.isnan(offset)] = np.nan
    window, least = max(8 * period, 28), max(4, period)
    with np.errstate(invalid="ignore"):
        if count:
            mu = np.fmax(expected, 0.5)  # fmax: a missing expectation gives 0.5
            # Method-of-moments over-dispersion, var = mu + phi * mu^2: the mean over
            # the window (bursts are what it must capture), each term capped so that
            # one spike cannot blind the series for long.
            terms = np.clip((resid**2 - mu) / mu**2, -1.0, 25.0)
            phi = np.clip(_moving(terms, "mean", window, least), 0.0, 10.0)
            if hold is not None:
                z = np.abs(resid) / np.sqrt(mu + np.nan_to_num(phi) * mu**2)
                held = np.where(z > hold, np.nan, terms)
                phi = np.clip(_moving(held, "mean", window, least), 0.0, 10.0)
            return expected, phi
        return expected, _moving(np.abs(resid) * 1.4826, "median", window, least)


def score_frame(
    frame: pl.DataFrame,
    *,
    period: int,
    seasons: int = 6,
    alpha: float = 0.001,
    count: bool = True,
    direction: Literal["both", "up", "down"] = "both",
    band: bool = True,
    presorted: bool = False,
) -> pl.DataFrame:
    """:func:`score_series` for many series at once, told apart by the ``_series`` column.

    Rows are sorted by series and time first, unless ``presorted`` says they are.

    ``band=False`` skips ``lower``/``upper`` (null then): discrete quantiles are the
    slowest part, and a scan needs only the p-values.

    Every series must share the spacing of its points; each is scored only against its
    own past. The baseline is computed for all series at once on a (series x time)
    grid (:func:`_baseline`); the tails on whole columns.
    """
    base = frame.with_columns(pl.col("value").cast(pl.Float64).fill_nan(None))
    if not presorted and not _is_sorted(base):
        base = base.sort(_KEY, "ts")
    history = max(3 * period, 2 * seasons, 8)
    columns = _baseline(base, period=period, seasons=seasons, count=count)
    base = base.with_columns(
        pl.Series(name, values).fill_nan(None)
        if values.dtype.kind == "f"
        else pl.Series(name, values)
        for name, values in columns.items()
    )
    if count:
        base = base.with_columns(pl.col("_dispersion").fill_null(0.0))
    return _tails(base, count=count, alpha=alpha, direction=direction, history=history, band=band)


def _count_tails(
    value: np.ndarray,
    mean: np.ndarray,
    phi: np.ndarray,
    *,
    alpha: float | np.ndarray,
    band: bool,
    tails: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower tail probabilities (and the central ``1 - alpha`` band, ``alpha``
    one for all or one per count) of a count under its model.

    Poisson where the over-dispersion is negligible, negative binomial elsewhere (its
    special functions are slow for huge sizes, and equal the Poisson's there). Only
    the ``tails`` asked for are computed; without a band, only beyond one standard
    deviation (the others stay at 1).
    """
    from scipy import stats as _stats  # about a second: only when counts are judged

    n = value.shape[0]
    up = np.ones(n) if "up" in tails else np.empty(0)
    down = np.ones(n) if "down" in tails else np.empty(0)
    lower = np.full(n, np.nan) if band else np.empty(0)
    upper = np.full(n, np.nan) if band else np.empty(0)
    # Screening: within one standard deviation of the mean, a count's tail probability
    # is far above any alerting level (the right tail of a count is heavier than the
    # normal's, so p > 0.16); those points keep p = 1 and skip the special functions.
    z = (value - mean) / np.sqrt(mean + phi * mean**2)
    wanted = np.ones(n, dtype=bool) if band else np.zeros(n, dtype=bool)
    level = np.broadcast_to(np.asarray(alpha, dtype=float), (n,))
    if "up" in tails:
        wanted |= z >= 1.0
    if "down" in tails:
        wanted |= z <= -1.0
    plain = phi < 1e-6
    for mask, dist in ((plain & wanted, "poisson"), (~plain & wanted, "nbinom")):
        if not mask.any():
            continue
        v = value[mask]
        if dist == "poisson":
            args: tuple[np.ndarray, ...] = (mean[mask],)
            model = _stats.poisson
        else:
            size = 1.0 / phi[mask]
            args = (size, size / (size + mean[mask]))
            model = _stats.nbinom
        if "up" in tails:
            up[mask] = _chunked(model.sf, v - 1, *args)
        if "down" in tails:
            down[mask] = _chunked(model.cdf, v, *args)
        if band:
            lower[mask] = _chunked(model.ppf, level[mask] / 2, *args)
            upper[mask] = _chunked(model.ppf, 1 - level[mask] / 2, *args)
    return up, down, lower, upper


def _chunked(fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``fn(*arrays)`` elementwise, on one thread per core for long arrays (scipy's
    special functions release the GIL)."""
    size = arrays[0].size
    workers = os.cpu_count() or 1
    if workers == 1 or size < 100_000:
        return np.asarray(fn(*arrays), dtype=float)
    bounds = np.linspace(0, size, workers + 1).astype(int)
    parts = [
        tuple(a[lo:hi] for a in arrays) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(lambda part: fn(*part), parts))).astype(float)


def _tails(
    base: pl.DataFrame,
    *,
    band: bool = True,
    count: bool,
    alpha: float,
    direction: Literal["both", "up", "down"],
    history: int,
) -> pl.DataFrame:
    """p-values, band and verdicts from the noise model (scipy on whole columns)."""
    from scipy import stats as _stats

    tails = ("up", "down") if direction == "both" else (direction,)
    if count and not band:
        return _verdicts(
            base.with_columns(_p=_screened_tail(base, tails)),
            count=count,
            alpha=alpha,
            direction=direction,
            history=history,
            band=band,
            lower=np.empty(0),
            upper=np.empty(0),
        )
    value = base["value"].fill_null(np.nan).to_numpy().astype(float)
    mu = base["expected"].fill_null(np.nan).to_numpy().astype(float)
    if count:
        mean = np.maximum(np.nan_to_num(mu, nan=0.0), 0.5)
        phi = base["_dispersion"].to_numpy().astype(float)
        up, down, lower, upper = _count_tails(
            np.nan_to_num(value, nan=0.0), mean, phi, alpha=alpha, band=band, tails=tails
        )
    else:
        scale = base["_scale"].fill_null(np.nan).to_numpy().astype(float)
        scale = np.where(scale > 0, scale, np.nan)
        z = (value - mu) / scale
        up, down = _stats.norm.sf(z), _stats.norm.cdf(z)
        half = _stats.norm.isf(alpha / 2) * scale
        lower, upper = mu - half, mu + half
    tail = up if direction == "up" else down if direction == "down" else 2 * np.minimum(up, down)
    return _verdicts(
        base.with_columns(_p=pl.Series(tail).fill_nan(None).clip(upper_bound=1.0).fill_null(1.0)),
        count=count,
        alpha=alpha,
        direction=direction,
        history=history,
        band=band,
        lower=lower,
        upper=upper,
    )


def _screened_tail(base: pl.DataFrame, tails: tuple[str, ...]) -> pl.Series:
    """The tail p-value of each count, computed only beyond one standard deviation.

    The screen runs in Polars; only the few candidate points reach scipy (see
    :func:`_count_tails` for why the others keep p = 1).
    """
    mean = pl.max_horizontal(pl.col("expected").fill_null(0.0), pl.lit(0.5))
    z = (pl.col("value").fill_null(0.0) - mean) / (mean + pl.col("_dispersion") * mean**2).sqrt()
    screen = pl.lit(False)
    if "up" in tails:
        screen = screen | (z >= 1.0)
    if "down" in tails:
        screen = screen | (z <= -1.0)
    picked = (
        base.with_row_index("_i")
        .filter(screen)
        .select("_i", pl.col("value").fill_null(0.0), mean.alias("_mean"), "_dispersion")
    )
    up, down, _, _ = _count_tails(
        picked["value"].to_numpy(),
        picked["_mean"].to_numpy(),
        picked["_dispersion"].to_numpy(),
        alpha=0.5,
        band=False,
        tails=tails,
    )
    tail = up if tails == ("up",) else down if tails == ("down",) else 2 * np.minimum(up, down)
    p = np.ones(base.height)
    p[picked["_i"].to_numpy()] = np.minimum(tail, 1.0)
    return pl.Series("_p", p).fill_nan(1.0)


def _verdicts(
    base: pl.DataFrame,
    *,
    count: bool,
    alpha: float,
    direction: Literal["both", "up", "down"],
    history: int,
    band: bool,
    lower: np.ndarray,
    upper: np.ndarray,
) -> pl.DataFrame:
    """Band, p-value, score, direction and status columns from ``_p``."""
    ready = pl.col("_n") >= history
    ready &= pl.col("expected").is_not_null() & pl.col("value").is_not_null()
    if not count:
        ready &= pl.col("_scale").is_not_null() & (pl.col("_scale") > 0)
    p = pl.col("_p")
    flagged = ready & (p < alpha)
    missing = pl.lit(None, pl.Float64)
    out = base.with_columns(
        _lower=pl.Series(lower).fill_nan(None) if band else missing,
        _upper=pl.Series(upper).fill_nan(None) if band else missing,
    ).with_columns(
        lower=pl.when(ready).then(pl.col("_lower")),
        upper=pl.when(ready).then(pl.col("_upper")),
        p_value=pl.when(ready).then(p),
        score=pl.when(ready).then(-(p.clip(lower_bound=1e-300).log10())),
        direction=pl.when(pl.col("value") >= pl.col("expected"))
        .then(pl.lit("up"))
        .otherwise(pl.lit("down")),
        is_anomaly=flagged.fill_null(False),
        status=pl.when(~ready.fill_null(False))
        .then(pl.lit("insufficient data"))
        .when(flagged)
        .then(pl.lit("anomaly"))
        .otherwise(pl.lit("ok")),
    )
    return out.drop(pl.selectors.starts_with("_").exclude(_KEY))


# --------------------------------------------------------------------------- the estimator


def _period_for(step: timedelta) -> int:
    """Points per cycle from the sampling step alone (so that a verdict does not change
    when later data arrives): a week for daily data, a day for sub-daily data, none for
    weekly or coarser data.

    >>> _period_for(timedelta(days=1)), _period_for(timedelta(minutes=5))
    (7, 288)
    """
    if step >= timedelta(days=1):
        return max(1, round(timedelta(weeks=1) / step)) if step < timedelta(weeks=1) else 1
    return max(1, round(timedelta(days=1) / step))


class CountDetector(BaseDetector):
    """Counts against a causal robust seasonal baseline, with negative-binomial noise.

    The model of the module docstring as an estimator. ``period`` points per cycle
    (default: a week for daily data, a day for sub-daily data, none for weekly data);
    ``count`` judges the values as counts (default: when every value is a non-negative
    integer), else with a robust Gaussian. The band is the central
    ``1 - alpha`` interval of the noise model at the budget's per-point level.

    Parameters
    ----------
    false_alerts, per_days, direction, gap : as :class:`SpikeDetector`.
    period : points per seasonal cycle (``None``: from the sampling step).
    seasons : past cycles the seasonal offsets are the median of.
    count : judge the values as counts (``None``: when all are non-negative integers).
    hold : for counts, keep points more than ``hold`` noise standard deviations from
        their expectation out of the noise estimate of the points after them (``None``,
        the default and the scan's choice: every point counts). An incident's chart uses
        it so that its alert does not widen the band that judges its continuation.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> days = [datetime(2026, 1, 1) + timedelta(days=i) for i in range(84)]
    >>> values = [20.0 + (5 if i % 7 in (5, 6) else 0) for i in range(84)]
    >>> values[70] = 60.0
    >>> frame = pl.DataFrame({"ts": days, "value": values})
    >>> CountDetector().fit(frame).predict(frame).arg_true().to_list()
    [70]
    """

    name = "counts"

    def __init__(
        self,
        *,
        false_alerts: float = 1.0,
        per_days: float = 14.0,
        direction: Direction = "both",
        period: int | None = None,
        seasons: int = 6,
        count: bool | None = None,
        gap: int = 36,
        hold: float | None = None,
    ) -> None:
        self.false_alerts = false_alerts
        self.per_days = per_days
        self.direction = direction
        self.period = period
        self.seasons = seasons
        self.count = count
        self.gap = gap
        self.hold = hold

    def _is_count(self, values: np.ndarray) -> bool:
        if self.count is not None:
            return bool(self.count)
        known = values[~np.isnan(values)]
        return bool(known.size) and bool(np.all((known >= 0) & (known == np.round(known))))

    def _score_grid(self, y: np.ndarray, step: timedelta, alpha: np.ndarray) -> dict[str, Any]:
        from scipy import stats as _stats

        n_series, width = y.shape
        period = self.period or _period_for(step)
        padded = -(-width // period) * period
        grid = np.full((n_series, padded), np.nan)
        grid[:, :width] = y
        count = self._is_count(y)
        expected, noise = _baseline_block(
            grid, period=period, seasons=self.seasons, count=count, hold=self.hold
        )
        expected, noise = expected[:, :width], noise[:, :width]
        history = max(3 * period, 2 * self.seasons, 8)
        index = np.broadcast_to(np.arange(width), y.shape)
        first = np.argmax(~np.isnan(y), axis=1)[:, None]  # a series' first point
        ready = (index - first >= history) & ~np.isnan(y) & ~np.isnan(expected)
        level = np.broadcast_to(alpha[:, None], y.shape)
        tails = ("up", "down") if self.direction == "both" else (self.direction,)
        half = level / 2 if self.direction == "both" else level
        if count:
            # One-sided: the whole level on the watched side (the band's alpha is split).
            two_sided = level if self.direction == "both" else 2 * level
            up, down, lower, upper = (
                part.reshape(y.shape) if part.size else np.ones(y.shape)
                for part in _count_tails(
                    np.nan_to_num(y, nan=0.0).ravel(),
                    np.maximum(np.nan_to_num(expected, nan=0.0), 0.5).ravel(),
                    np.nan_to_num(noise, nan=0.0).ravel(),
                    alpha=np.ascontiguousarray(two_sided).ravel(),
                    band=True,
                    tails=tails,
                )
            )
        else:
            scale = np.where(noise > 0, noise, np.nan)
            z = (y - expected) / scale
            up, down = _stats.norm.sf(z), _stats.norm.cdf(z)
            width_ = _stats.norm.isf(half) * scale
            lower, upper = expected - width_, expected + width_
        p = (
            up
            if self.direction == "up"
            else down
            if self.direction == "down"
            else 2 * np.minimum(up, down)
        )
        p = np.where(ready, np.clip(p, 0.0, 1.0), np.nan)
        return {
            "detector_names": ["counts"],
            "which": np.zeros(y.shape),
            "expected": expected,
            "lower": np.where(ready, lower, np.nan) if self.direction != "up" else np.nan,
            "upper": np.where(ready, upper, np.nan) if self.direction != "down" else np.nan,
            "p_value": p,
            "threshold": -np.log10(alpha)[:, None],
            "stat": np.nan,
            "limit": np.nan,
        }

    def score_frame(self, frame: pl.DataFrame, *, period: int, band: bool = False) -> pl.DataFrame:
        """The fast path of the slice scan: :func:`score_frame` with this detector's
        parameters on a frame keyed by ``_series`` (one step for all series)."""
        return score_frame(
            frame,
            period=self.period or period,
            seasons=self.seasons,
            count=True if self.count is None else self.count,
            direction=self.direction,
            band=band,
        )
