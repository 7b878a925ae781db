"""Vectorised draws the demo generator is built from: Poisson grids, per-row choices,
account pools, stable hashes, and codes turned into labels and timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from analytics.demo.tuning import HOURS

__all__ = [
    "Pool",
    "choice_rows",
    "code_labels",
    "draw",
    "hex_strings",
    "sample_days",
    "splitmix64",
    "time_of_day",
    "timestamp",
]


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed, well-mixed 64-bit hash of integers (stable across library versions)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex_strings(x: np.ndarray) -> pl.Series:
    """Hex strings (16 characters) of unsigned 64-bit integers, vectorised."""
    buf = pa.py_buffer(np.ascontiguousarray(x.astype(">u8")).tobytes())
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), len(x), [None, buf])
    return pl.Series(arr).cast(pl.Binary).bin.encode("hex")


def choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, draw an index from the distribution ``probs[rows[i]]`` (vectorised)."""
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(len(rows))
    out = (u[:, None] > cum[rows]).sum(axis=1)
    picked: np.ndarray = np.minimum(out, probs.shape[1] - 1)
    return picked


def draw(rng: np.random.Generator, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """Poisson counts for every cell of the rate grid ``lam``, expanded to one row per draw.

    Returns the grid coordinates of each drawn row, one array per axis of ``lam``.
    """
    counts = rng.poisson(lam).ravel()
    flat = np.repeat(np.arange(counts.size), counts)
    return np.unravel_index(flat, lam.shape)


def sample_days(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Continuous day offsets in [0, len(weights)) with density proportional to weights."""
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, np.arange(len(weights) + 1))


class Pool:
    """Accounts of one kind, indexed by (region, created day) for vectorised picks."""

    def __init__(self, ids: np.ndarray, region: np.ndarray, created: np.ndarray) -> None:
        key = region.astype(float) * 10_000 + created + 5_000
        order = np.argsort(key, kind="stable")
        self.ids = ids[order]
        self.key = key[order]
        g = np.argsort(created, kind="stable")
        self.g_ids = ids[g]
        self.g_created = created[g]

    def pick(
        self,
        rng: np.random.Generator,
        day: np.ndarray,
        region: np.ndarray | None = None,
        skew: float = 1.5,
    ) -> np.ndarray:
        """An account created before ``day`` (in ``region`` when given); older ones favoured."""
        u = rng.random(len(day)) ** skew
        g_hi = np.searchsorted(self.g_created, day, side="right")
        g_pick = self.g_ids[np.minimum((u * g_hi).astype(np.int64), len(self.g_ids) - 1)]
        if region is None:
            return np.where(g_hi > 0, g_pick, self.g_ids[0])
        lo = np.searchsorted(self.key, region.astype(float) * 10_000, side="left")
        hi = np.searchsorted(self.key, region.astype(float) * 10_000 + day + 5_000, side="right")
        n = hi - lo
        r_pick = self.ids[np.minimum(lo + (u * n).astype(np.int64), len(self.ids) - 1)]
        return np.where(n > 0, r_pick, np.where(g_hi > 0, g_pick, self.g_ids[0]))


def code_labels(col: str, labels: Any) -> pl.Expr:
    """Map integer codes in ``col`` to their labels, vectorised."""
    labels = list(labels)
    return pl.col(col).replace_strict(list(range(len(labels))), labels, return_dtype=pl.String)


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day, following the diurnal profile."""
    hour = rng.choice(24, n, p=HOURS)
    return hour * 3600 + rng.uniform(0, 3600, n)


def timestamp(start: datetime, col: str) -> pl.Expr:
    """Seconds since the window start -> naive UTC datetime (microseconds)."""
    return (pl.lit(start) + pl.duration(microseconds=(pl.col(col) * 1e6).round())).alias(
        col.removesuffix("_s") + "_at"
    )
