"""A scorer for labelled anomaly windows, after the Numenta Anomaly Benchmark (NAB).

Anyone can score a detector's alerts on a folder in NAB's layout: family subfolders
of CSV files with the columns ``timestamp`` and ``value``, and a ``windows.json``
mapping ``family/file.csv`` to its labelled anomaly windows ``[[start, end], ...]``
(an empty list: no anomaly). :func:`load` reads such a folder, :func:`score_file`
scores one file's alerts, :func:`score` sums file scores per family and overall.

The rules (from ``../shared/benchmarks/nab-dev/README.md``; where it is silent, as
NAB's own scorer does):

- **Probation**: the first 15% of a file's rows, at most 750 (NAB:
  ``min(floor(0.15 n), 0.15 * 5000)``), are not scored: alerts there are ignored, and a
  window with no row after probation is not scored at all (NAB drops such windows too).
- **Window metric**: a scored window with at least one alert inside is a true positive,
  otherwise a false negative; each maximal run of consecutive alerting (scored) rows
  outside every window is one false positive. Precision, recall and F1 are computed
  from the counts summed over files.
- **NAB score** (standard profile ``A_TP = 1``, ``A_FN = 1``, ``A_FP = 0.11``), with
  the scaled sigmoid ``S(y) = 2 / (1 + exp(5 y)) - 1`` (NAB: ``-1`` once ``y >= 3``):

  - only the first alert in a window counts: ``+A_TP * S(y)`` with ``y = -(end - i) /
    (width - 1)`` in rows, so ``y = -1`` at the window's first row (``S = 0.9866``)
    and ``0`` at its last (``S = 0``), as the folder's README states. (NAB's current
    sweeper shifts ``y`` by one row and divides by ``S(-1)`` so the first row earns
    exactly 1; after normalisation the difference is a fraction of a point.) A window
    of one row counts as its own start (``y = -1``);
  - a missed window costs ``A_FN``;
  - every alerting row outside the windows (NAB charges rows, not runs) costs
    ``A_FP * S(d)``, which is negative: ``d`` is its distance after the end of the
    closest window before it, in that window's width minus one row, as NAB computes
    it; with no window before it, full price ``-A_FP``. Just after a window an alert
    is nearly free, three widths later it costs the full ``A_FP``;
  - normalised per group of files: ``100 * (raw - null) / (perfect - null)``, where
    ``null = -A_FN * windows`` is the detector that never alerts and ``perfect`` the one
    alerting at the first scored row of every window and nowhere else. A group
    without any window has no normalised score (``None``): only its raw cost.

Examples
--------
>>> from datetime import datetime, timedelta
>>> ts = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(100)]
>>> alerts = [h == 40 for h in range(100)]
>>> one = score_file(ts, alerts, [(ts[40], ts[49])])
>>> one.tp, one.fn, one.fp, round(one.nab_raw, 4)
(1, 0, 0, 0.9866)
>>> score({"fam/a.csv": one}).select("group", "f1", "nab").rows()
[('fam', 1.0, 100.0), ('overall', 1.0, 100.0)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "STANDARD",
    "FileScore",
    "FolderError",
    "Labelled",
    "Profile",
    "load",
    "probation_rows",
    "scaled_sigmoid",
    "score",
    "score_file",
]

Window = tuple[datetime, datetime]


class FolderError(ValueError):
    """A folder that is not in NAB's layout; the message is one line naming the problem."""


@dataclass(frozen=True)
class Profile:
    """Weights of a NAB profile: reward of a detected window, costs of a false alert
    and of a missed window."""

    a_tp: float = 1.0
    a_fp: float = 0.11
    a_fn: float = 1.0


#: NAB's standard profile.
STANDARD = Profile()


@dataclass(frozen=True)
class Labelled:
    """One labelled series of a folder: ``family``, ``name`` (``family/file.csv``),
    ``frame`` (columns ``ts``, ``value``) and ``windows``."""

    family: str
    name: str
    frame: pl.DataFrame
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class FileScore:
    """One file's counts and NAB parts (see the module's rules).

    ``fp`` counts runs of false alerts (window metric), ``fp_points`` alerting rows;
    ``nab_raw`` is the file's raw NAB sum, ``nab_null`` and ``nab_perfect`` the sums of
    the never-alerting and the perfect detector on it.
    """

    rows: int
    probation: int
    windows: int
    tp: int
    fn: int
    fp: int
    fp_points: int
    nab_raw: float
    nab_null: float
    nab_perfect: float


def probation_rows(n: int, *, share: float = 0.15, cap: int = 750) -> int:
    """Rows at the start of a file of ``n`` rows that are not scored.

    >>> probation_rows(4032), probation_rows(10_000), probation_rows(100)
    (604, 750, 15)
    """
    return min(math.floor(share * n), cap)


def scaled_sigmoid(y: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """NAB's ``2 / (1 + exp(5 y)) - 1``, exactly ``-1`` from ``y = 3`` on.

    >>> scaled_sigmoid([-1.0, 0.0, 3.0]).round(5).tolist()
    [0.98661, 0.0, -1.0]
    """
    y = np.asarray(y, dtype=float)
    return np.where(y >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


def _as_datetimes(ts: pl.Series | Sequence[datetime] | npt.NDArray[np.datetime64]) -> np.ndarray:
    if isinstance(ts, pl.Series):
        return ts.cast(pl.Datetime("us")).to_numpy()
    return np.asarray(ts, dtype="datetime64[us]")


def _window_rows(t: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """``(k, 2)`` first and last row of each window (inclusive), windows with rows only."""
    if not windows:
        return np.empty((0, 2), dtype=np.int64)
    bounds = np.asarray(windows, dtype="datetime64[us]").reshape(-1, 2)
    bounds = bounds[np.argsort(bounds[:, 0], kind="stable")]
    if (bounds[:, 0] > bounds[:, 1]).any():
        raise ValueError("a window starts after it ends")
    if (bounds[1:, 0] <= bounds[:-1, 1]).any():
        raise ValueError("windows overlap")
    rows = np.column_stack(
        [np.searchsorted(t, bounds[:, 0], "left"), np.searchsorted(t, bounds[:, 1], "right") - 1]
    )
    return rows[rows[:, 1] >= rows[:, 0]]


def score_file(
    ts: pl.Series | Sequence[datetime] | npt.NDArray[np.datetime64],
    alerts: pl.Series | Sequence[bool] | npt.NDArray[np.bool_],
    windows: Sequence[Window],
    *,
    profile: Profile = STANDARD,
    probation: int | None = None,
    charge: Literal["row", "run"] = "row",
) -> FileScore:
    """Score one file's alerts against its labelled windows.

    Parameters
    ----------
    ts
        The file's timestamps, sorted ascending (repeats allowed: NAB's files have a
        few, and it scores rows).
    alerts
        One flag per row (nulls count as no alert).
    windows
        ``(start, end)`` timestamps, both inclusive; they must not overlap.
    profile
        NAB weights (default: the standard profile).
    probation
        Unscored leading rows (default: :func:`probation_rows` of the file's length).
    charge
        What a false alert's NAB cost is charged for: every alerting ``"row"`` outside
        the windows (NAB), or only the first row of each ``"run"`` of them (the window
        metric's unit; a variant, not NAB).

    Returns
    -------
    FileScore

    Examples
    --------
    A window over rows 40-49 of 100 hourly rows (rows 0-14 are probation); an alert
    at its last row earns nothing, a run of three far-away alerts is one false
    positive but three NAB costs of 0.11:

    >>> from datetime import datetime, timedelta
    >>> ts = [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(100)]
    >>> alerts = [h in (5, 49, 90, 91, 92) for h in range(100)]
    >>> s = score_file(ts, alerts, [(ts[40], ts[49])])
    >>> s.probation, s.tp, s.fn, s.fp, s.fp_points, round(s.nab_raw, 2)
    (15, 1, 0, 1, 3, -0.33)
    """
    t = _as_datetimes(ts)
    flags = (
        alerts.fill_null(False).cast(pl.Boolean).to_numpy()
        if isinstance(alerts, pl.Series)
        else np.asarray(alerts, dtype=bool)
    )
    n = t.shape[0]
    if flags.shape != (n,):
        raise ValueError(f"{flags.shape[0]} alerts for {n} timestamps")
    start = probation_rows(n) if probation is None else probation
    rows = _window_rows(t, windows)
    index = np.arange(n)
    active = flags & (index >= start)
    covering = np.searchsorted(rows[:, 0], index, "right") - 1  # last window starting at or before
    inside = (covering >= 0) & (index <= rows[np.maximum(covering, 0), 1] if rows.size else False)

    scored = rows[rows[:, 1] >= start]
    first_scored = np.maximum(scored[:, 0], start)
    width = scored[:, 1] - scored[:, 0] + 1
    alert_rows = np.flatnonzero(active)
    nxt = np.searchsorted(alert_rows, first_scored)  # the first alert at or after the start
    first_alert = alert_rows[np.minimum(nxt, alert_rows.size - 1)] if alert_rows.size else nxt
    detected = (nxt < alert_rows.size) & (first_alert <= scored[:, 1])
    tp_reward = profile.a_tp * scaled_sigmoid(_position(first_alert, scored[:, 1], width))
    perfect = profile.a_tp * scaled_sigmoid(_position(first_scored, scored[:, 1], width))

    outside = active & ~inside
    starts = outside & ~np.concatenate([[False], outside[:-1]])
    fp_rows = np.flatnonzero(outside)
    charged = fp_rows if charge == "row" else np.flatnonzero(starts)
    distance = np.full(charged.size, 3.0)  # no window before: full price
    before = np.searchsorted(rows[:, 1], charged, "left") - 1
    after = before >= 0
    prev = rows[before[after]]
    distance[after] = (charged[after] - prev[:, 1]) / np.maximum(prev[:, 1] - prev[:, 0], 1)

    null = -profile.a_fn * len(scored)
    return FileScore(
        rows=n,
        probation=start,
        windows=len(scored),
        tp=int(detected.sum()),
        fn=int((~detected).sum()),
        fp=int(starts.sum()),
        fp_points=int(fp_rows.size),
        nab_raw=float(
            tp_reward[detected].sum()
            - profile.a_fn * (~detected).sum()
            + profile.a_fp * scaled_sigmoid(distance).sum()
        ),
        nab_null=float(null),
        nab_perfect=float(perfect.sum()),
    )


def _position(row: np.ndarray, last: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Relative position in a window: -1 at its first row, 0 at its last."""
    return np.where(width > 1, -(last - row) / np.maximum(width - 1, 1), -1.0)


def score(results: Mapping[str, FileScore]) -> pl.DataFrame:
    """Sum file scores per family (the part of the name before ``/``) and overall.

    Parameters
    ----------
    results
        ``{"family/file.csv": FileScore}``.

    Returns
    -------
    pl.DataFrame
        One row per family (sorted) and a last row ``overall``: ``group``, ``files``,
        ``windows``, ``tp``, ``fn``, ``fp`` (runs), ``fp_points``, ``precision``,
        ``recall``, ``f1`` (``None`` where undefined: no alert, no window),
        ``nab`` (normalised; ``None`` without windows), ``nab_raw`` and
        ``false_alerts_per_series`` (``fp`` / ``files``).

    Examples
    --------
    >>> a = FileScore(100, 15, 1, 1, 0, 2, 2, 0.5, -1.0, 0.98)
    >>> b = FileScore(100, 15, 0, 0, 0, 1, 4, -0.44, 0.0, 0.0)
    >>> out = score({"x/a.csv": a, "y/b.csv": b})
    >>> out.select("group", "tp", "fp", "recall", pl.col("nab").round(2)).rows()
    [('x', 1, 2, 1.0, 75.76), ('y', 0, 1, None, None), ('overall', 1, 3, 1.0, 53.54)]
    """
    files = pl.DataFrame(
        [{"name": name, **vars(s)} for name, s in results.items()],
        schema={
            "name": pl.String,
            **{k: pl.Int64 for k in ("rows", "probation", "windows", "tp", "fn", "fp")},
            "fp_points": pl.Int64,
            **{k: pl.Float64 for k in ("nab_raw", "nab_null", "nab_perfect")},
        },
    ).with_columns(group=pl.col("name").str.split("/").list.first())
    sums = [pl.len().cast(pl.Int64).alias("files")] + [
        pl.col(c).sum() for c in ("windows", "tp", "fn", "fp", "fp_points", "nab_raw",
                                  "nab_null", "nab_perfect")]  # fmt: skip
    grouped = pl.concat(
        [
            files.group_by("group").agg(sums).sort("group"),
            files.select(pl.lit("overall").alias("group"), *sums),
        ],
        how="vertical_relaxed",
    )
    tp, fp, fn = pl.col("tp"), pl.col("fp"), pl.col("fn")
    span = pl.col("nab_perfect") - pl.col("nab_null")
    return grouped.select(
        "group",
        "files",
        "windows",
        "tp",
        "fn",
        "fp",
        "fp_points",
        precision=pl.when(tp + fp > 0).then(tp / (tp + fp)),
        recall=pl.when(tp + fn > 0).then(tp / (tp + fn)),
        f1=pl.when(tp + fp + fn > 0).then(2 * tp / (2 * tp + fp + fn)),
        nab=pl.when(span > 0).then(100 * (pl.col("nab_raw") - pl.col("nab_null")) / span),
        nab_raw="nab_raw",
        false_alerts_per_series=fp / pl.col("files"),
    )


def _fail(where: Path | str, why: str) -> FolderError:
    return FolderError(f"{where}: {why}")


def _windows_json(folder: Path) -> dict[str, tuple[Window, ...]]:
    path = folder / "windows.json"
    if not path.is_file():
        raise _fail(folder, "no windows.json (it maps family/file.csv to [[start, end], ...])")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise _fail(path, "must be an object mapping family/file.csv to [[start, end], ...]")
    out: dict[str, tuple[Window, ...]] = {}
    for name, pairs in raw.items():
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs
        ):
            raise _fail(path, f"{name!r} must map to a list of [start, end] timestamp strings")
        try:
            windows = tuple(
                (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in pairs
            )
        except ValueError as exc:
            raise _fail(path, f"{name!r} has a timestamp that is not ISO 8601 ({exc})") from None
        if any(a > b for a, b in windows):
            raise _fail(path, f"{name!r} has a window that starts after it ends")
        ordered = sorted(windows)
        if any(ordered[i][0] <= ordered[i - 1][1] for i in range(1, len(ordered))):
            raise _fail(path, f"{name!r} has overlapping windows")
        out[name] = windows
    return out


def _series(path: Path) -> pl.DataFrame:
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise _fail(path, f"unreadable CSV ({str(exc).splitlines()[0]})") from None
    missing = {"timestamp", "value"} - set(raw.columns)
    if missing:
        raise _fail(path, f"missing column(s) {', '.join(sorted(missing))}")
    try:
        frame = raw.select(
            ts=pl.col("timestamp").str.strip_chars().str.to_datetime(time_unit="us"),
            value=pl.col("value").str.strip_chars().cast(pl.Float64),
        )
    except pl.exceptions.PolarsError as exc:
        raise _fail(path, f"unparseable timestamp or value ({str(exc).splitlines()[0]})") from None
    if frame["ts"].null_count():
        raise _fail(path, "empty timestamp")
    if frame.height and not (frame["ts"].diff().drop_nulls().dt.total_microseconds() >= 0).all():
        raise _fail(path, "timestamps must be sorted ascending")
    return frame


def load(folder: str | Path) -> list[Labelled]:
    """Read a folder in NAB's layout, every file checked against ``windows.json``.

    Parameters
    ----------
    folder
        Holds ``windows.json`` and family subfolders of CSV files (``timestamp`` as
        ISO 8601, naive; ``value`` numeric).

    Returns
    -------
    list[Labelled]
        Sorted by name.

    Raises
    ------
    FolderError
        With a one-line message naming the file and what is wrong.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "fam").mkdir()
    >>> _ = (root / "fam" / "a.csv").write_text("timestamp,value\\n2026-01-01 00:00:00,1\\n")
    >>> _ = (root / "windows.json").write_text('{"fam/a.csv": []}')
    >>> [(s.name, s.frame.height) for s in load(root)]
    [('fam/a.csv', 1)]
    """
    root = Path(folder)
    if not root.is_dir():
        raise _fail(root, "not a folder")
    labels = _windows_json(root)
    found = {p.relative_to(root).as_posix(): p for p in root.glob("*/*.csv")}
    if not found:
        raise _fail(root, "no CSV files in family subfolders (family/file.csv)")
    if unlabelled := sorted(set(found) - set(labels)):
        raise _fail(root, f"{unlabelled[0]} has no entry in windows.json")
    if absent := sorted(set(labels) - set(found)):
        raise _fail(root, f"windows.json names {absent[0]}, which is not a family/file.csv here")
    return [
        Labelled(name.split("/")[0], name, _series(found[name]), labels[name])
        for name in sorted(found)
    ]
