"""Detector benchmark: alerts on labelled real series, scored by :mod:`bench.nab`.

``python -m bench detectors [--nab DIR] [--detector NAME ...]`` runs every detector
over every file of a folder in NAB's layout (default ``../shared/benchmarks/nab-dev``)
and prints, per family and overall, the window counts, precision, recall, F1, the NAB
standard score, false alerts per series and the detector's seconds; the tables also go
to ``data/bench/detectors.md`` and ``.json`` (with per-file rows).

Detectors, each a function ``frame (ts, value) -> one bool per row``, held the same
for every file (no per-file tuning):

- ``median_mad`` (reference): robust z-score of each point against the median and
  median absolute deviation of the previous :data:`WINDOW` points; alert when
  ``|z| > 3.5`` (Iglewicz and Hoaglin's cut-off for the modified z-score).
- ``seasonal_naive`` (reference): the value minus the value one season earlier (a day
  for sub-daily data, a week for daily data, found from the timestamps), its robust
  z-score against the previous :data:`WINDOW` residuals; alert when ``|z| > 3.5``.
- ``lookout``: the product's ``analytics.detectors.anomalies.score_series(frame)["alert"]`` with
  its defaults (the point that opens each incident: the alert a person receives).
- every estimator registered in ``analytics.detectors.DETECTORS`` when that package
  imports: ``cls()``, ``fit(frame)`` then ``predict(frame)`` (or
  ``score_samples(frame)["alert"]``) on the whole series; it must keep its own
  predictions causal.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from bench import nab
from bench.harness import Table, machine

__all__ = [
    "DEFAULT_FOLDER",
    "REFERENCES",
    "WINDOW",
    "available",
    "median_mad",
    "robust_z",
    "run",
    "season_of",
    "seasonal_naive",
]

Detector = Callable[[pl.DataFrame], np.ndarray]

#: The folder scored by default, relative to the repository.
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nab-dev"
#: Past points the references' robust statistics are taken over (a day of 5-minute data).
WINDOW = 288
_MIN_PERIODS = 30
_THRESHOLD = 3.5
_MAD_SCALE = 1.4826  # MAD of a normal sample is 0.6745 sigma
_MEAN_AD_SCALE = 1.2533  # mean absolute deviation: 0.7979 sigma


def robust_z(
    values: np.ndarray, *, window: int = WINDOW, min_periods: int = _MIN_PERIODS
) -> np.ndarray:
    """Each point's modified z-score against the ``window`` points before it.

    ``z = (x - median) / (1.4826 MAD)`` of the trailing points (never the point itself);
    when the MAD is 0 the scale is ``1.2533`` times the mean absolute deviation, and when
    that is 0 too (a flat past) ``z`` is 0 for the same value and infinite otherwise.
    ``NaN`` until ``min_periods`` past values are known; ``NaN`` values are skipped.

    >>> x = np.array([10.0, 11, 9, 10, 11, 9, 10, 30])
    >>> robust_z(x, window=6, min_periods=3).round(1).tolist()
    [nan, nan, nan, 0.0, 1.3, -0.7, 0.0, 13.5]
    """
    x = np.asarray(values, dtype=float)
    padded = np.concatenate([np.full(window, np.nan), x[:-1]]) if x.size else x
    past = sliding_window_view(padded, window) if x.size else np.empty((0, window))
    known = np.count_nonzero(~np.isnan(past), axis=1)
    z = np.full(x.size, np.nan)
    rows = np.flatnonzero((known >= min_periods) & ~np.isnan(x))
    if rows.size == 0:
        return z
    block = past[rows]
    centre = np.nanmedian(block, axis=1)
    spread = np.abs(block - centre[:, None])
    scale = _MAD_SCALE * np.nanmedian(spread, axis=1)
    scale = np.where(scale > 0, scale, _MEAN_AD_SCALE * np.nanmean(spread, axis=1))
    diff = x[rows] - centre
    with np.errstate(divide="ignore", invalid="ignore"):
        z[rows] = np.where(diff == 0, 0.0, diff / scale)
    return z


def median_mad(frame: pl.DataFrame, *, threshold: float = _THRESHOLD) -> np.ndarray:
    """Reference: alert where the trailing median + MAD z-score exceeds ``threshold``.

    >>> from datetime import datetime, timedelta
    >>> values = [10.0 + (i % 3) for i in range(60)] + [40.0]
    >>> ts = [datetime(2026, 1, 1) + timedelta(minutes=5 * i) for i in range(61)]
    >>> np.flatnonzero(median_mad(pl.DataFrame({"ts": ts, "value": values}))).tolist()
    [60]
    """
    z = robust_z(frame["value"].cast(pl.Float64).fill_null(np.nan).to_numpy())
    return np.nan_to_num(np.abs(z), nan=0.0) > threshold


def season_of(ts: pl.Series) -> timedelta | None:
    """The season of a series from its median spacing: a day for sub-daily data, a
    week for daily data, none for coarser data.

    >>> from datetime import datetime
    >>> season_of(pl.Series([datetime(2026, 1, 1, h) for h in range(5)]))
    datetime.timedelta(days=1)
    """
    gaps = ts.diff().drop_nulls()
    gaps = gaps.filter(gaps > timedelta(0))
    if gaps.is_empty():
        return None
    step: timedelta = gaps.median()  # type: ignore[assignment]
    if step < timedelta(days=1):
        return timedelta(days=1)
    return timedelta(weeks=1) if step < timedelta(weeks=1) else None


def seasonal_naive(frame: pl.DataFrame, *, threshold: float = _THRESHOLD) -> np.ndarray:
    """Reference: alert where the value minus the value one season earlier is far from
    the past residuals (robust z-score over :data:`WINDOW` of them, ``> threshold``).

    The earlier value is the row whose timestamp is one season before, within half the
    median spacing (none: no residual, no alert).

    >>> from datetime import datetime, timedelta
    >>> ts = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(24 * 5)]
    >>> noise = np.random.default_rng(0).normal(0, 0.1, 24 * 5)
    >>> values = [float(h % 24) + noise[h] for h in range(24 * 5)]
    >>> values[100] += 5
    >>> np.flatnonzero(seasonal_naive(pl.DataFrame({"ts": ts, "value": values}))).tolist()
    [100]
    """
    season = season_of(frame["ts"])
    base = frame.select(pl.col("ts"), pl.col("value").cast(pl.Float64))
    if season is None:
        return np.zeros(frame.height, dtype=bool)
    step: timedelta = base["ts"].diff().drop_nulls().median()  # type: ignore[assignment]
    before = base.with_columns(back=pl.col("ts") - season).join_asof(
        base.rename({"ts": "back", "value": "earlier"}),
        on="back",
        strategy="nearest",
        tolerance=step / 2,
        check_sortedness=False,
    )
    residual = (before["value"] - before["earlier"]).fill_null(np.nan).to_numpy()
    z = robust_z(residual)
    return np.nan_to_num(np.abs(z), nan=0.0) > threshold


def lookout(frame: pl.DataFrame) -> np.ndarray:
    """The product's detector with its defaults: ``score_series(frame)["alert"]``."""
    from analytics.detectors.anomalies import score_series

    flags = score_series(frame.select("ts", pl.col("value").cast(pl.Float64)))["alert"]
    return flags.fill_null(False).to_numpy()


#: The detectors the benchmark always has.
REFERENCES: dict[str, Detector] = {
    "median_mad": median_mad,
    "seasonal_naive": seasonal_naive,
    "lookout": lookout,
}


def _estimator(cls: type) -> Detector:
    """A registered estimator as a detector: fit on the series, then its alerts."""

    def detect(frame: pl.DataFrame) -> np.ndarray:
        model = cls().fit(frame)
        if hasattr(model, "predict"):
            out: Any = model.predict(frame)
        else:
            out = model.score_samples(frame)["alert"]
        return pl.Series(out).cast(pl.Boolean).fill_null(False).to_numpy()

    return detect


def available() -> dict[str, Detector]:
    """The references, then every estimator of ``analytics.detectors.DETECTORS``
    (when that package imports; otherwise a note on standard error)."""
    found = dict(REFERENCES)
    try:
        from analytics.detectors import DETECTORS  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        if exc.name not in ("analytics.detectors", None):
            print(f"analytics.detectors does not import ({exc}): references only", file=sys.stderr)
        return found
    for name, cls in DETECTORS.items():
        found[name if name not in found else f"detectors.{name}"] = _estimator(cls)
    return found


def _timed(detect: Detector, series: nab.Labelled) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    flags = np.asarray(detect(series.frame), dtype=bool)
    return flags, time.perf_counter() - start


def _evaluate(
    name: str, detect: Detector, series: Sequence[nab.Labelled]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One detector over every file: its per-group scores plus seconds, and per file."""
    results: dict[str, nab.FileScore] = {}
    per_run: dict[str, nab.FileScore] = {}
    spent: dict[str, float] = {}
    if series:
        detect(series[0].frame.head(500))  # imports and caches out of the timings
    for s in series:
        flags, seconds = _timed(detect, s)
        results[s.name] = nab.score_file(s.frame["ts"], flags, s.windows)
        per_run[s.name] = nab.score_file(s.frame["ts"], flags, s.windows, charge="run")
        spent[s.name] = seconds
    files = pl.DataFrame({"name": list(spent), "seconds": list(spent.values())})
    times = pl.concat(
        [
            files.group_by(group=pl.col("name").str.split("/").list.first()).agg(
                pl.col("seconds").sum()
            ),
            files.select(group=pl.lit("overall"), seconds=pl.col("seconds").sum()),
        ]
    )
    per_file = pl.DataFrame(
        [{"detector": name, "name": n, **vars(r), "seconds": spent[n]} for n, r in results.items()]
    )
    return (
        nab.score(results)
        .join(times, on="group", how="left", maintain_order="left")
        .join(
            nab.score(per_run).select("group", nab_per_run="nab"),
            on="group",
            how="left",
            maintain_order="left",
        )
        .select(pl.lit(name).alias("detector"), pl.all())
    ), per_file


def _cell(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _tables(scores: pl.DataFrame, folder: Path) -> list[Table]:
    groups = scores["group"].unique(maintain_order=True).to_list()
    tables = []
    for group in [*sorted(g for g in groups if g != "overall"), "overall"]:
        rows = scores.filter(pl.col("group") == group)
        files, windows = rows["files"][0], rows["windows"][0]
        table = Table(
            f"Detectors on {folder.name}: {group} ({files} files, {windows} windows)",
            ("detector", "TP", "FN", "FP", "precision", "recall", "F1", "NAB standard",
             "NAB, FP per run", "false alerts per series", "seconds"),
        )  # fmt: skip
        for r in rows.iter_rows(named=True):
            nab_cell = _cell(r["nab"], 1) if r["nab"] is not None else f"– (raw {r['nab_raw']:.1f})"
            table.add(r["detector"], r["tp"], r["fn"], r["fp"], _cell(r["precision"]),
                      _cell(r["recall"]), _cell(r["f1"]), nab_cell, _cell(r["nab_per_run"], 1),
                      _cell(r["false_alerts_per_series"], 1), _cell(r["seconds"]))  # fmt: skip
        tables.append(table)
    tables[-1].notes += [
        "FP: runs of consecutive false alerts (window metric). NAB standard charges A_FP for "
        "every alerting row outside the windows, as NAB does; 'NAB, FP per run' charges only "
        "the first row of each run (a variant, not NAB).",
        "NAB standard: 0 = never alerting, 100 = alerting at the start of every window "
        "and nowhere else; a family without windows has only a raw (negative) NAB cost.",
    ]
    return tables


def run(
    folder: str | Path = DEFAULT_FOLDER,
    names: Iterable[str] | None = None,
    *,
    out: str | Path | None = "data/bench",
) -> list[Table]:
    """Score the chosen detectors (default: all available) on a folder; one table per
    family and one overall. Writes ``detectors.md`` and ``detectors.json`` to ``out``.

    Raises
    ------
    bench.nab.FolderError
        The folder is not in NAB's layout.
    KeyError
        An unknown detector name.
    """
    root = Path(folder)
    series = nab.load(root)
    detectors = available()
    chosen = list(names or detectors)
    if unknown := [n for n in chosen if n not in detectors]:
        raise KeyError(f"unknown detector {', '.join(unknown)}; choose from {list(detectors)}")
    evaluated = [_evaluate(n, detectors[n], series) for n in chosen]
    scores = pl.concat([groups for groups, _ in evaluated])
    tables = _tables(scores, root)
    if out is not None:
        target = Path(out)
        target.mkdir(parents=True, exist_ok=True)
        (target / "detectors.md").write_text("\n\n".join(t.markdown() for t in tables) + "\n")
        report = {
            "folder": str(root.resolve()),
            "machine": machine(),
            "groups": scores.to_dicts(),
            "files": pl.concat([files for _, files in evaluated]).to_dicts(),
        }
        (target / "detectors.json").write_text(json.dumps(report, indent=1) + "\n")
    return tables
