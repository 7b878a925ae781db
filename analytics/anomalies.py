"""Anomaly scoring: one series (:func:`score_series`) or every slice at once (:func:`scan`).

The model, the same for one series and for thousands (one vectorised Polars pass,
series told apart by a key, never a Python loop per series):

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
from datetime import date, datetime, timedelta
from itertools import combinations
from typing import Literal

import bottleneck as _bn
import numpy as np
import polars as pl
from scipy import stats as _stats

__all__ = [
    "DISMISSING",
    "SCAN_DIMS",
    "daily_slices",
    "event_slices",
    "infer_period",
    "scan",
    "scan_both_ways",
    "score_frame",
    "score_series",
    "slice_key",
    "weekly_sums",
]

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


def score_series(
    frame: pl.DataFrame,
    *,
    period: int | None = None,
    seasons: int = 6,
    alpha: float = 0.001,
    count: bool | None = None,
    direction: Literal["both", "up", "down"] = "both",
) -> pl.DataFrame:
    """Score every point of one series against its causal seasonal baseline.

    Parameters
    ----------
    frame
        Columns ``ts`` (Datetime) and ``value`` (Float64), sorted by ``ts``, at a
        regular frequency; missing points (absent rows or null values) are tolerated.
    period
        Points per seasonal cycle (default: :func:`infer_period`).
    seasons
        How many past cycles the seasonal offsets are the median of.
    alpha
        Two-sided level of the band and of ``is_anomaly``.
    count
        Judge the values as counts (negative binomial); default: when every value is a
        non-negative integer.
    direction
        Which deviations are anomalies: ``"up"``, ``"down"`` or ``"both"``.

    Returns
    -------
    pl.DataFrame
        The input rows plus ``expected``, ``lower``, ``upper``, ``p_value``, ``score``
        (``-log10 p``), ``direction`` ("up"/"down"), ``status`` ("ok", "anomaly",
        "insufficient data") and ``is_anomaly``.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> days = [datetime(2026, 1, 1) + timedelta(days=i) for i in range(56)]
    >>> values = [20.0 + (5 if i % 7 in (5, 6) else 0) for i in range(56)]
    >>> values[50] = 60.0
    >>> out = score_series(pl.DataFrame({"ts": days, "value": values}))
    >>> out.filter("is_anomaly")["ts"].to_list() == [days[50]]
    True
    """
    if frame.is_empty():
        return frame.with_columns(
            pl.lit(None, pl.Float64).alias(c)
            for c in ("expected", "lower", "upper", "p_value", "score")
        ).with_columns(
            direction=pl.lit(None, pl.String),
            status=pl.lit(None, pl.String),
            is_anomaly=pl.lit(None, pl.Boolean),
        )
    if period is None:
        period, _ = infer_period(frame["ts"])
    if count is None:
        values = frame["value"].drop_nulls()
        count = bool(values.len()) and bool(((values >= 0) & (values == values.round())).all())
    keyed = frame.with_columns(pl.lit(0).alias(_KEY))
    scored = score_frame(
        keyed, period=period, seasons=seasons, alpha=alpha, count=count, direction=direction
    )
    return scored.drop(_KEY)


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
    return move(lagged, window, min_count=min(least, window), axis=1)


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
    value: np.ndarray, *, period: int, seasons: int, count: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Expected values and noise scale for a (series x time) block of :func:`_baseline`."""
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
            return expected, np.clip(_moving(terms, "mean", window, least), 0.0, 10.0)
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
    alpha: float,
    band: bool,
    tails: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower tail probabilities (and the band) of a count under its model.

    Poisson where the over-dispersion is negligible, negative binomial elsewhere (its
    special functions are slow for huge sizes, and equal the Poisson's there). Only
    the ``tails`` asked for are computed, and only beyond one standard deviation; the
    others stay at 1.
    """
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
            lower[mask] = _chunked(model.ppf, np.full(v.size, alpha / 2), *args)
            upper[mask] = _chunked(model.ppf, np.full(v.size, 1 - alpha / 2), *args)
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


# --------------------------------------------------------------------------- the scan

#: Dimensions the scan slices case volume by (one and two levels deep).
SCAN_DIMS: tuple[str, ...] = ("category", "region", "platform", "source", "specialty")
#: Verdicts that dismiss an incident's pattern for its slice.
DISMISSING = ("expected", "not_useful")


def slice_key(values: dict[str, str]) -> str:
    """A stable text key for a slice: ``"all"`` or ``"category=spam|region=FL"``.

    >>> slice_key({"region": "FL", "category": "spam"})
    'category=spam|region=FL'
    >>> slice_key({})
    'all'
    """
    return "|".join(f"{k}={values[k]}" for k in sorted(values)) or "all"


def daily_slices(
    cases: pl.DataFrame,
    *,
    start: date,
    end: date,
    dims: tuple[str, ...] = SCAN_DIMS,
    depth: int = 2,
) -> pl.DataFrame:
    """New cases per day for every slice one to ``depth`` dimensions deep, and overall.

    Every slice gets every day of ``[start, end)``, zero-filled. Columns: ``slice``
    (:func:`slice_key`), the dimension columns (null where not part of the slice),
    ``ts`` (Datetime, midnight) and ``value`` (Float64).

    >>> from datetime import datetime
    >>> cases = pl.DataFrame({"opened_at": [datetime(2026, 1, 1, 9)], "category": ["spam"],
    ...                       "region": ["FL"]})
    >>> out = daily_slices(cases, start=date(2026, 1, 1), end=date(2026, 1, 3),
    ...                    dims=("category", "region"), depth=1)
    >>> out.sort("slice", "ts").select("slice", "value").rows()
    [('all', 1.0), ('all', 0.0), ('category=spam', 1.0), ('category=spam', 0.0), ('region=FL', 1.0), ('region=FL', 0.0)]
    """  # noqa: E501
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    frame = (
        cases.lazy()
        .filter(pl.col("opened_at") >= lo, pl.col("opened_at") < hi)
        .select(
            pl.col("opened_at").dt.truncate("1d").alias("ts"),
            *[pl.col(d).cast(pl.String) for d in dims],
        )
    )
    pieces = [frame.group_by("ts").agg(value=pl.len()).with_columns(slice=pl.lit("all"))]
    for k in range(1, depth + 1):
        for combo in combinations(dims, k):
            key = pl.concat_str([pl.lit(f"{d}=") + pl.col(d) for d in sorted(combo)], separator="|")
            pieces.append(
                frame.filter(*[pl.col(d).is_not_null() for d in combo])
                .group_by("ts", *combo)
                .agg(value=pl.len())
                .with_columns(slice=key)
            )
    counts = pl.concat(pieces, how="diagonal").collect()
    days = pl.DataFrame({"ts": pl.datetime_range(lo, hi, "1d", closed="left", eager=True)})
    slices = counts.select("slice", *dims).unique("slice")
    grid = slices.join(days, how="cross")
    return (
        grid.join(counts.select("slice", "ts", "value"), on=["slice", "ts"], how="left")
        .with_columns(pl.col("value").fill_null(0).cast(pl.Float64))
        .sort("slice", "ts")
    )


def event_slices(
    events: pl.DataFrame,
    *,
    start: date,
    end: date,
    dims: tuple[str, ...] = ("region", "platform"),
) -> pl.DataFrame:
    """Daily events per kind, overall and by one dimension, zero-filled, for the scan.

    ``events`` is :func:`analytics.load.events_daily` output. Slices are keyed like
    ``"kind=review_posted|region=FL"``; columns as :func:`daily_slices` plus ``kind``.

    >>> from datetime import date
    >>> ev = pl.DataFrame({"day": [date(2026, 1, 1)], "kind": ["login_failed"],
    ...                    "region": ["FL"], "platform": ["web"], "events": [3]})
    >>> out = event_slices(ev, start=date(2026, 1, 1), end=date(2026, 1, 2))
    >>> sorted(zip(out["slice"], out["value"]))
    [('kind=login_failed', 3.0), ('kind=login_failed|platform=web', 3.0), ('kind=login_failed|region=FL', 3.0)]
    """  # noqa: E501
    lo = datetime.combine(start, datetime.min.time())
    hi = datetime.combine(end, datetime.min.time())
    frame = (
        events.lazy()
        .select(
            pl.col("day").cast(pl.Datetime("us")).alias("ts"),
            pl.col("kind").cast(pl.String),
            *[pl.col(d).cast(pl.String) for d in dims],
            pl.col("events").cast(pl.Float64),
        )
        .filter(pl.col("ts") >= lo, pl.col("ts") < hi)
    )
    pieces = [
        frame.group_by("ts", "kind")
        .agg(value=pl.col("events").sum())
        .with_columns(slice=pl.lit("kind=") + pl.col("kind"))
    ]
    for d in dims:
        pieces.append(
            frame.group_by("ts", "kind", d)
            .agg(value=pl.col("events").sum())
            .with_columns(slice=pl.lit("kind=") + pl.col("kind") + pl.lit(f"|{d}=") + pl.col(d))
        )
    counts = pl.concat(pieces, how="diagonal").collect()
    days = pl.DataFrame({"ts": pl.datetime_range(lo, hi, "1d", closed="left", eager=True)})
    slices = counts.select("slice", "kind", *dims).unique("slice")
    return (
        slices.join(days, how="cross")
        .join(counts.select("slice", "ts", "value"), on=["slice", "ts"], how="left")
        .with_columns(pl.col("value").fill_null(0.0))
        .sort("slice", "ts")
    )


def weekly_sums(series: pl.DataFrame) -> pl.DataFrame:
    """Daily slice series summed per ISO week (``ts`` = the Monday); partial weeks dropped.

    >>> from datetime import datetime, timedelta
    >>> days = [datetime(2026, 1, 5) + timedelta(days=i) for i in range(10)]
    >>> daily = pl.DataFrame({"slice": "all", "ts": days, "value": [1.0] * 10})
    >>> weekly_sums(daily).select("ts", "value").rows()
    [(datetime.datetime(2026, 1, 5, 0, 0), 7.0)]
    """
    dims = [c for c in series.columns if c in (*SCAN_DIMS, "kind")]
    return (
        series.group_by("slice", pl.col("ts").dt.truncate("1w"))
        .agg(*[pl.col(d).first() for d in dims], value=pl.col("value").sum(), _days=pl.len())
        .filter(pl.col("_days") == 7)
        .drop("_days")
        .sort("slice", "ts")
    )


def _fdr_by_day(scored: pl.DataFrame, *, level: float) -> pl.DataFrame:
    """Benjamini-Hochberg q-values across the slices tested on each day.

    Only p-values at or below ``level`` can be discoveries at that level, and they
    rank before every other test of their day, so only they are sorted; the others
    get ``q_value`` 1 (exact q-values of discoveries are unchanged by this).
    """
    m = scored.group_by("ts").agg(_m=pl.col("p_value").is_not_null().sum())
    candidates = (
        scored.select("ts", "p_value")
        .with_row_index("_i")
        .filter(pl.col("p_value") <= level)
        .join(m, on="ts")
        .sort("ts", "p_value")
        .with_columns(_rank=pl.int_range(1, pl.len() + 1).over("ts"))
        .with_columns(_raw=pl.col("p_value") * pl.col("_m") / pl.col("_rank"))
        .select(
            "_i",
            q=pl.col("_raw").reverse().cum_min().reverse().over("ts").clip(upper_bound=1.0),
        )
    )
    q = np.ones(scored.height)
    q[candidates["_i"].to_numpy()] = candidates["q"].to_numpy()
    return scored.with_columns(q_value=pl.when(pl.col("p_value").is_not_null()).then(pl.Series(q)))


def scan(
    series: pl.DataFrame,
    *,
    annotations: pl.DataFrame | None = None,
    feedback: pl.DataFrame | None = None,
    metric: str = "new_cases",
    direction: Literal["up", "down"] = "up",
    fdr: float = 0.01,
    seasons: int = 6,
    period: int = 7,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Score every slice's daily series in one pass; group alerts into incidents.

    Parameters
    ----------
    series
        From :func:`daily_slices`: ``slice``, dimension columns, ``ts``, ``value``.
    annotations
        Known events (``start_at``, ``end_at``, ``title``, ``category``, ``region``):
        incidents overlapping one that concerns their slice are *explained*, not alerted.
    feedback
        Associates' verdicts (``metric``, ``slice_key``, ``alert_start``, ``verdict``,
        ``value_at_feedback``): a pattern dismissed as expected or not useful is not
        raised again for that slice unless its peak grows by half.
    metric, direction
        The metric's name, and which way is bad (volumes: up; e.g. proactive rate: down).
    fdr
        False discovery rate controlled across the slices tested each day.
    period
        Points per seasonal cycle: 7 for daily series, 1 for weekly sums
        (:func:`weekly_sums`), which catch slower, steadier rises.

    Returns
    -------
    (points, incidents)
        ``points``: every point with ``expected``, ``lower``, ``upper``, ``p_value``,
        ``q_value``, ``score``, ``status`` and ``alert``. ``incidents``: one row per run of
        consecutive alerted days of a slice, with ``start``, ``end``, ``days``,
        ``peak_ts``, ``peak_value``, ``peak_expected``, ``score``, ``state`` (open while
        its last day is the newest scanned), ``explained_by``, ``suppressed`` and
        ``alerted`` (neither explained nor suppressed).
    """
    keyed = series.rename({"slice": _KEY})
    scored = score_frame(
        keyed,
        period=period,
        seasons=seasons,
        count=True,
        direction=direction,
        band=False,
    )
    scored = _fdr_by_day(scored, level=fdr).rename({_KEY: "slice"})
    alert = (pl.col("q_value") < fdr) & (pl.col("status") != "insufficient data")
    points = scored.with_columns(alert=alert.fill_null(False))  # still by slice, then time
    incidents = _incidents(points, metric=metric)
    incidents = _explain(incidents, annotations, span=timedelta(days=7 if period == 1 else 1))
    incidents = _suppress(incidents, feedback, metric=metric)
    return points, incidents


def scan_both_ways(
    series: pl.DataFrame,
    *,
    annotations: pl.DataFrame | None = None,
    feedback: pl.DataFrame | None = None,
    metric: str = "new_cases",
    alert_on: Literal["up", "down"] = "up",
    fdr: float = 0.01,
    seasons: int = 6,
    period: int = 7,
) -> pl.DataFrame:
    """Incidents both ways: moves in the ``alert_on`` direction alert; the others are
    found with their own false discovery control and shown, never alerted (a fall in
    abuse volume is news, not an alarm; a fall in the proactive rate would alert).
    """
    found = []
    for way in ("up", "down"):
        _, incidents = scan(
            series,
            annotations=annotations,
            feedback=feedback,
            metric=metric,
            direction=way,
            fdr=fdr,
            seasons=seasons,
            period=period,
        )
        if way != alert_on:
            incidents = incidents.with_columns(alerted=pl.lit(False))
        found.append(incidents)
    return pl.concat(found, how="diagonal_relaxed").sort("score", descending=True)


def _incidents(points: pl.DataFrame, *, metric: str) -> pl.DataFrame:
    newest = points["ts"].max()
    # Rows run by slice, then time: a run starts where the previous row is not an
    # alert of the same slice. Run numbers are global, so no per-slice window is needed.
    same_slice = (pl.col("slice") == pl.col("slice").shift(1)).fill_null(False)
    continues = pl.col("alert").shift(1, fill_value=False) & same_slice
    started = pl.col("alert") & ~continues
    runs = points.with_columns(_run=started.cast(pl.Int64).cum_sum()).filter("alert")
    dims = [c for c in points.columns if c in (*SCAN_DIMS, "kind")]
    return (
        runs.group_by("_run", "slice")
        .agg(
            *[pl.col(d).first() for d in dims],
            start=pl.col("ts").min(),
            end=pl.col("ts").max(),
            days=pl.len(),
            peak_ts=pl.col("ts").sort_by("score").last(),
            peak_value=pl.col("value").sort_by("score").last(),
            peak_expected=pl.col("expected").sort_by("score").last(),
            direction=pl.col("direction").sort_by("score").last(),
            score=pl.col("score").max(),
        )
        .drop("_run")
        .with_columns(
            metric=pl.lit(metric),
            state=pl.when(pl.col("end") == pl.lit(newest, dtype=pl.Datetime("us")))
            .then(pl.lit("open"))
            .otherwise(pl.lit("closed")),
        )
        .sort("score", descending=True)
    )


def _explain(
    incidents: pl.DataFrame, annotations: pl.DataFrame | None, *, span: timedelta
) -> pl.DataFrame:
    """Name the known event that overlaps each incident and concerns its slice.

    A note about a category or region explains that slice; a note about everything
    (a launch, an outage) explains any slice; a holiday explains only a fall.
    """
    if annotations is None or annotations.is_empty() or incidents.is_empty():
        return incidents.with_columns(explained_by=pl.lit(None, pl.String))
    notes = annotations.select(
        pl.col("start_at").dt.truncate("1d").alias("_a_start"),
        pl.col("end_at").alias("_a_end"),
        pl.col("title").alias("_title"),
        pl.col("category").cast(pl.String).alias("_a_category"),
        pl.col("region").cast(pl.String).alias("_a_region"),
        (
            pl.col("kind").cast(pl.String) == "holiday"
            if "kind" in annotations.columns
            else pl.lit(False)
        ).alias("_holiday"),
    )
    cat = pl.col("category") if "category" in incidents.columns else pl.lit(None, pl.String)
    reg = pl.col("region") if "region" in incidents.columns else pl.lit(None, pl.String)
    # A categorised note (a policy change) explains its category from its start on.
    ongoing = pl.col("_a_category").is_not_null() & pl.col("_a_end").is_null()
    finish = pl.coalesce(pl.col("_a_end"), pl.col("_a_start") + timedelta(days=1))
    overlaps = (pl.col("_a_start") < pl.col("end") + span) & ((finish > pl.col("start")) | ongoing)
    concerns = (
        (pl.col("_a_category").is_null() | (pl.col("_a_category") == cat))
        & (pl.col("_a_region").is_null() | (pl.col("_a_region") == reg))
        & (~pl.col("_holiday") | (pl.col("direction") == "down"))
    )
    matched = (
        incidents.with_row_index("_i")
        .join(notes, how="cross")
        .filter(overlaps & concerns.fill_null(False))
        .group_by("_i")
        .agg(explained_by=pl.col("_title").first())
    )
    return incidents.with_row_index("_i").join(matched, on="_i", how="left").drop("_i")


def _suppress(
    incidents: pl.DataFrame, feedback: pl.DataFrame | None, *, metric: str
) -> pl.DataFrame:
    """Mark incidents whose pattern was dismissed for their slice and has not grown."""
    if feedback is None or feedback.is_empty() or incidents.is_empty():
        suppressed = incidents.with_columns(suppressed=pl.lit(False))
    else:
        dismissed = (
            feedback.filter(
                pl.col("metric") == metric, pl.col("verdict").cast(pl.String).is_in(DISMISSING)
            )
            .group_by("slice_key")
            .agg(_since=pl.col("alert_start").min(), _at=pl.col("value_at_feedback").max())
            .rename({"slice_key": "slice"})
        )
        suppressed = (
            incidents.join(dismissed, on="slice", how="left")
            .with_columns(
                suppressed=(
                    (pl.col("start") >= pl.col("_since"))
                    & (pl.col("peak_value") <= 1.5 * pl.col("_at").fill_null(float("inf")))
                ).fill_null(False)
            )
            .drop("_since", "_at")
        )
    return suppressed.with_columns(alerted=pl.col("explained_by").is_null() & ~pl.col("suppressed"))
