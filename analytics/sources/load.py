"""Loading: the frames the analytics work on, through the Parquet snapshot or by SQL pushdown.

The weekly page never scans raw event rows. It works on a
:class:`~analytics.sources.frames.Cube`:

- ``exposure``: the daily exposure cube, day x kind x region x platform x the
  target provider's specialty -> events (bookings, reviews and messages);
- ``active``: distinct active accounts per week under the filters;
- ``cases``: the narrow case rows that distinct counts and percentiles need;
- ``annotations``: the known events.

Two ways build the same cube (tested equal):

(a) **snapshot** (default for the embedded SQLite database): Polars over a columnar
    copy of the database (:mod:`analytics.sources.snapshot`). The snapshot records a
    fingerprint of the database; a stale snapshot is refreshed
    (:mod:`analytics.sources.snapshot_refresh`: new events are appended, cases and
    accounts re-read), not trusted. A snapshot whose files cannot be read
    (:class:`~analytics.sources.snapshot.SnapshotBroken`) is rebuilt whole by its next
    refresh; a folder that cannot be written raises
    :class:`~analytics.sources.snapshot.SnapshotUnwritable`. With the default loader
    (``loader=None``) either makes the reads fall back to (b).
(b) **pushdown** (default for any other database, :mod:`analytics.sources.pushdown`):
    SQLAlchemy Core queries in which the filters and the first aggregation run in the
    database.

``LOOKOUT_LOADER=snapshot|pushdown`` overrides the choice.

With a ClickHouse warehouse (``LOOKOUT_WAREHOUSE_URL``, :mod:`analytics.sources.warehouse`)
pushdown is the default loader and its queries go to the warehouse (cases, events and
accounts there; the annotations stay Lookout's); the snapshot loader is unchanged.

With a source map (``LOOKOUT_SOURCE_MAP``, :func:`~analytics.sources.mapped.active_map`)
the snapshot is built from the copy of their data in Lookout's database
(:func:`~analytics.sources.mapped.sync`), and pushdown sends the mapped SELECT to their
database (:mod:`analytics.sources.mapped_pushdown`); the annotations stay Lookout's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal, TypeVar

import polars as pl
from sqlalchemy import Engine

from analytics.core.filters import Filters
from analytics.sources import mapped, mapped_pushdown, warehouse
from analytics.sources.frames import Cube
from analytics.sources.pushdown import (
    WAREHOUSE_TABLES,
    cube_from_database,
    database_tables,
    events_daily_from_database,
)
from analytics.sources.snapshot import (
    SnapshotBroken,
    SnapshotError,
    bypass_snapshot,
    cube_from_snapshot,
    events_daily_from_snapshot,
    mark_broken,
    read_state,
    snapshot_bypassed,
    snapshot_damage,
    snapshot_dir,
    snapshot_is_fresh,
    snapshot_tables,
)
from analytics.sources.snapshot_refresh import refresh

__all__ = ["events_daily", "load_cube", "loader_for", "snapshot_frames"]

_T = TypeVar("_T")


def loader_for(engine: Engine, *, root: Path | None = None) -> Literal["snapshot", "pushdown"]:
    """The default loader: snapshot for SQLite, pushdown elsewhere and whenever a warehouse
    is set (``LOOKOUT_WAREHOUSE_URL``); ``LOOKOUT_LOADER`` wins,
    and a snapshot bypassed in this process
    (:func:`~analytics.sources.snapshot.bypass_snapshot`) gives pushdown.

    >>> from sqlalchemy import create_engine
    >>> loader_for(create_engine("sqlite://"))
    'snapshot'
    >>> engine = create_engine("sqlite://")
    >>> bypass_snapshot(engine, SnapshotBroken(Path("x"), "cases.parquet is missing"))
    >>> loader_for(engine)
    'pushdown'
    >>> bypass_snapshot(engine, None)
    >>> loader_for(engine)
    'snapshot'
    """
    chosen = os.environ.get("LOOKOUT_LOADER", "").strip().lower()
    if chosen not in ("snapshot", "pushdown"):
        sqlite = engine.dialect.name == "sqlite" and warehouse.warehouse_url() is None
        chosen = "snapshot" if sqlite else "pushdown"
    if chosen == "snapshot" and snapshot_bypassed(engine, root=root) is not None:
        return "pushdown"
    return chosen  # type: ignore[return-value]


def _either(
    engine: Engine,
    loader: Literal["snapshot", "pushdown"] | None,
    root: Path | None,
    *,
    snapshot: Callable[[Path], _T],
    pushdown: Callable[[], _T],
) -> _T:
    """Read through the snapshot or by pushdown. With the default loader (``None``) a
    snapshot that cannot be used is bypassed (marked for a rebuild) and the database read
    instead; a loader asked for by name raises the
    :class:`~analytics.sources.snapshot.SnapshotError`."""
    if (loader or loader_for(engine, root=root)) == "snapshot":
        try:
            return snapshot(_ready(engine, root=root))
        except SnapshotError as exc:
            if loader is not None:
                raise
            _fall_back(engine, exc, root=root)
    return pushdown()


def _ready(engine: Engine, *, root: Path | None) -> Path:
    """The snapshot folder, refreshed first when stale or broken (a refresh rebuilds a
    snapshot with a missing, unreadable or misshapen file)."""
    folder = snapshot_dir(engine, root=root)
    state = read_state(folder)
    if not snapshot_is_fresh(engine, root=root) or snapshot_damage(folder, state or {}):
        refresh(engine, root=root)
    return folder


def _fall_back(engine: Engine, problem: SnapshotError, *, root: Path | None) -> None:
    bypass_snapshot(engine, problem, root=root)
    if isinstance(problem, SnapshotBroken):
        mark_broken(problem.folder, problem.reason)


def load_cube(
    engine: Engine,
    filters: Filters,
    *,
    loader: Literal["snapshot", "pushdown"] | None = None,
    root: Path | None = None,
) -> Cube:
    """Load the cube for ``filters`` (which must have a date range).

    The snapshot loader refreshes a missing, stale or broken snapshot first. With the
    default loader, a snapshot that cannot be used is read around (see :func:`_either`).
    """
    lo, hi = filters.window()
    t0 = time.perf_counter()
    cube = _either(
        engine,
        loader,
        root,
        snapshot=lambda folder: cube_from_snapshot(folder, filters, lo, hi),
        pushdown=lambda: _pushdown_cube(engine, filters),
    )
    cube.timings["load"] = time.perf_counter() - t0
    return cube


def events_daily(
    engine: Engine,
    *,
    start: date,
    end: date,
    loader: Literal["snapshot", "pushdown"] | None = None,
    root: Path | None = None,
) -> pl.DataFrame:
    """Events of every kind per day, region and platform for days in ``[start, end)``.

    Columns ``day``, ``kind``, ``region``, ``platform``, ``events``; the snapshot's
    precomputed table, or one GROUP BY in the database.
    """
    return _either(
        engine,
        loader,
        root,
        snapshot=lambda folder: events_daily_from_snapshot(folder, start, end),
        pushdown=lambda: _pushdown_events_daily(engine, start, end),
    )


def _pushdown_cube(engine: Engine, filters: Filters) -> Cube:
    """By pushdown: to the warehouse when one is set, else through the active source map
    to their database, else Lookout's."""
    lo, hi = filters.window()
    wh = warehouse.active_warehouse()
    if wh is not None:
        return cube_from_database(engine, filters, lo, hi, source=wh, tables=WAREHOUSE_TABLES)
    smap = mapped.active_map()
    if smap is not None:
        return mapped_pushdown.cube_through_map(engine, smap, filters, lo, hi)
    return cube_from_database(engine, filters, lo, hi)


def _pushdown_events_daily(engine: Engine, start: date, end: date) -> pl.DataFrame:
    wh = warehouse.active_warehouse()
    if wh is not None:
        return events_daily_from_database(wh, start, end)
    smap = mapped.active_map()
    if smap is not None:
        return mapped_pushdown.events_daily_through_map(smap, start, end)
    return events_daily_from_database(engine, start, end)


def snapshot_frames(engine: Engine, *, root: Path | None = None) -> dict[str, pl.LazyFrame]:
    """The snapshot's raw tables as lazy frames (``events``, ``accounts``, ``cases``),
    refreshed first when stale; for analyses that need rows, such as account scoring.

    When the snapshot cannot be used (bypassed, unwritable, or a file fails its check)
    the same frames come from the database, read when collected, and the snapshot is
    bypassed until it is rebuilt.
    """
    if snapshot_bypassed(engine, root=root) is None:
        try:
            return snapshot_tables(_ready(engine, root=root))
        except SnapshotError as exc:
            _fall_back(engine, exc, root=root)
    return database_tables(engine)
