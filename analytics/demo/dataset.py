"""One whole demo data set in memory: every table drawn in a fixed order from one seed.

Everything is drawn from generators seeded by ``seed``, in a fixed order, so the same
seed and end date give the same data. Events are generated lazily, chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl

from analytics.core import models
from analytics.demo.accounts import account_status, draw_accounts
from analytics.demo.calendar import DAY, scenario_days, window_calendar
from analytics.demo.cases import case_actions, draw_cases
from analytics.demo.events import base_events, event_actors, event_frame, extra_events
from analytics.demo.scenarios import build_annotations, build_manifest, draw_scenarios
from analytics.demo.tuning import SCALES

__all__ = ["MIN_DAYS", "DemoData", "generate"]


MIN_DAYS = 240


@dataclass
class DemoData:
    """A generated demo: small tables in memory, events as a stream of chunks."""

    accounts: pl.DataFrame
    cases: pl.DataFrame
    case_actions: pl.DataFrame
    annotations: pl.DataFrame
    manifest: dict[str, Any]
    event_chunks: Callable[[], Iterator[pl.DataFrame]]
    n_event_chunks: int
    info: dict[str, Any] = field(default_factory=dict)


def _columns(table: str) -> list[str]:
    return [c.name for c in models.Base.metadata.tables[table].columns]


def generate(*, scale: str, seed: int, days: int = 730, end: date | None = None) -> DemoData:
    """Generate the demo data set in memory (events lazily, chunk by chunk).

    Parameters
    ----------
    scale : one of ``SCALES`` ("small", "medium", "large").
    seed : random seed; the same seed and end date give the same data.
    days : length of the window in days (at least 240, so every scenario fits).
    end : the window ends at midnight UTC at the start of this date (default today).

    >>> d = generate(scale="small", seed=1, days=240, end=date(2026, 1, 1))
    >>> d.accounts.columns[:3], d.manifest["scenarios"][0]["kind"]
    (['id', 'kind', 'created_at'], 'fake_review_ring')
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    if days < MIN_DAYS:
        raise ValueError(f"--days must be at least {MIN_DAYS} so that every scenario fits")
    end = end or datetime.now(UTC).date()
    sc = SCALES[scale]
    cal = window_calendar(end, days)
    rng = np.random.default_rng(seed)
    acc = draw_accounts(rng, sc, cal, scenario_days(cal)["fake_review_ring"], seed)
    scen = draw_scenarios(rng, sc, cal, acc)
    cases = draw_cases(rng, sc, cal, scen, acc, np.random.default_rng([seed, 1]))
    acc = account_status(acc, cases)
    actions = case_actions(cases)
    annotations = build_annotations(cal, scen)
    act = event_actors(acc)
    extra = extra_events(np.random.default_rng([seed, 3]), sc, cal, scen, act, acc, cases)
    extra_day = np.floor(extra["ts_s"] / DAY)
    chunks = [(d0, min(d0 + sc.chunk_days, days)) for d0 in range(0, days, sc.chunk_days)]

    def event_chunks() -> Iterator[pl.DataFrame]:
        next_id = 1
        for i, (d0, d1) in enumerate(chunks):
            base = base_events(np.random.default_rng([seed, 2, i]), sc, cal, scen, act, d0, d1)
            sel = (extra_day >= d0) & (extra_day < d1)
            block = {k: np.concatenate([base[k], extra[k][sel]]) for k in base}
            frame = event_frame(cal, block, next_id)
            next_id += frame.height
            yield frame

    meta = {
        "scale": scale,
        "seed": seed,
        "days": days,
        "end": end.isoformat(),
        "window_start": cal.start.isoformat(),
        "generator": "analytics.demo",
    }
    manifest = build_manifest(cal, scen, cases, annotations, meta)
    return DemoData(
        accounts=acc.select(_columns("accounts")),
        cases=cases.select(_columns("cases")),
        case_actions=actions,
        annotations=annotations.select(_columns("annotations")),
        manifest=manifest,
        event_chunks=event_chunks,
        n_event_chunks=len(chunks),
        info=meta,
    )
