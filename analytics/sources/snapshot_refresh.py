"""Refreshing the Parquet snapshot from the database: new event parts, the tables re-read,
the derived aggregates, all under a lock.

The snapshot records a fingerprint of the database; a stale snapshot is refreshed
incrementally (new events are appended, cases and accounts re-read), a broken one is
rebuilt whole.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine, func, select
from sqlalchemy.sql import Select

from analytics.core import database
from analytics.core.models import Annotation, Event
from analytics.sources.fingerprint import fingerprint
from analytics.sources.frames import (
    ACCOUNT_COLUMNS,
    ACTIVE_COLUMNS,
    ANNOTATION_COLUMNS,
    CASE_COLUMNS,
    EVENT_COLUMNS,
    EVENTS_DAILY_COLUMNS,
    EXPOSURE_COLUMNS,
    active_from_events,
    case_facts,
    conform,
    empty_frame,
    events_daily_from_events,
    exposure_from_events,
    specialty_moves,
    with_target_specialty,
)
from analytics.sources.pushdown import ACCOUNTS_QUERY, CASES_QUERY
from analytics.sources.snapshot import (
    SNAPSHOT_FORMAT,
    SnapshotError,
    SnapshotUnwritable,
    bypass_snapshot,
    read_state,
    snapshot_damage,
    snapshot_dir,
    write_state,
)

__all__ = ["RefreshSummary", "TableReader", "refresh"]

_EVENT_CHUNK = 2_000_000


@dataclass(frozen=True)
class RefreshSummary:
    """What a snapshot refresh did."""

    folder: Path
    mode: Literal["fresh", "full", "incremental"]
    new_events: int
    events: int
    cases: int
    seconds: float
    #: What was wrong with the snapshot when a refresh rebuilt it, if anything.
    repaired: str | None = None

    def describe(self) -> str:
        """One line for the CLI."""
        if self.mode == "fresh":
            return f"snapshot {self.folder} is up to date"
        why = f" (rebuilt: {self.repaired})" if self.repaired else ""
        return (
            f"{self.mode} refresh of {self.folder}{why}: {self.new_events:,} new events "
            f"({self.events:,} in all), {self.cases:,} cases, {self.seconds:.1f} s"
        )


def refresh(engine: Engine, *, full: bool = False, root: Path | None = None) -> RefreshSummary:
    """Bring the snapshot of ``engine``'s database up to date.

    Events are append-only: new ones (id above the snapshot's highest) are added as a
    new Parquet part and the exposure cube is recomputed from their first day on.
    Accounts, cases and annotations are re-read whole. A full rebuild happens when
    there is no snapshot, when ``full`` is set, when events were rewritten (re-seed,
    or an import that updated existing events), when events disappeared, or when a
    file of the snapshot is broken (see :func:`~analytics.sources.snapshot.snapshot_problem`;
    ``repaired`` says which). Raises :class:`~analytics.sources.snapshot.SnapshotUnwritable`
    when the folder cannot be written.
    """
    t0 = time.perf_counter()
    folder = snapshot_dir(engine, root=root)
    try:
        with _locked(folder):
            summary = _refresh_locked(engine, folder, full=full)
    except SnapshotError:
        raise
    except OSError as exc:
        raise SnapshotUnwritable.from_os_error(folder, exc) from exc
    bypass_snapshot(engine, None, root=root)
    return replace(summary, seconds=time.perf_counter() - t0)


def _refresh_locked(engine: Engine, folder: Path, *, full: bool) -> RefreshSummary:
    fp = fingerprint(engine)
    state = read_state(folder)
    damage = None if state is None else snapshot_damage(folder, state)
    if state is not None and damage is None and state["fingerprint"] == fp and not full:
        return RefreshSummary(folder, "fresh", 0, state["events"], state["cases"], 0.0)
    old_fp = state["fingerprint"] if state else {}
    rewritten = _rewrites(old_fp) != _rewrites(fp)
    old_max = (old_fp.get("events") or [None])[0]
    new_max = (fp.get("events") or [None])[0]
    full = (
        full
        or state is None
        or damage is not None
        or rewritten
        or old_max is None
        or new_max is None
        or new_max < old_max
    )
    reader = _Reader(engine)
    accounts = reader.accounts()
    # The events keep their target's specialty: an account that changed specialty makes
    # the events be copied again (a changed account is not a rewrite of the events).
    before = folder / "accounts.parquet"
    if not full and before.is_file() and specialty_moves(pl.read_parquet(before), accounts):
        full = True
    _write(accounts, folder / "accounts.parquet")
    _write(reader.annotations(), folder / "annotations.parquet")
    _write(case_facts(reader.cases(), accounts), folder / "cases.parquet")
    parts = folder / "events"
    if full:
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        since = None
    else:
        since = old_max
    new_events, first_day = _append_events(reader, parts, accounts, since)
    _refresh_derived(folder, parts, full=full, first_day=first_day)
    names = sorted(p.name for p in parts.glob("*.parquet"))
    n_events = (
        pl.scan_parquet(parts / "*.parquet").select(pl.len()).collect().item() if names else 0
    )
    n_cases = pl.scan_parquet(folder / "cases.parquet").select(pl.len()).collect().item()
    write_state(
        folder,
        {
            "format": SNAPSHOT_FORMAT,
            "database": database.safe_url(engine.url.render_as_string(hide_password=False)),
            "refreshed_at": datetime.now().isoformat(timespec="seconds"),
            "fingerprint": fp,
            "events": n_events,
            "cases": int(n_cases),
            "parts": names,
        },
    )
    mode: Literal["full", "incremental"] = "full" if full else "incremental"
    return RefreshSummary(folder, mode, new_events, n_events, int(n_cases), 0.0, damage)


def _rewrites(fp: Mapping[str, Any]) -> int:
    """How many times events were rewritten (0 before any data version was recorded)."""
    return int((fp.get("data_version") or {}).get("events") or 0)


def _write(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file atomically (readers never see half a file)."""
    tmp = path.with_suffix(".tmp")
    frame.write_parquet(tmp, statistics=True)
    tmp.replace(path)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Reader:
    """Reads whole tables or id ranges with the fastest reader the database allows.

    connectorx for SQLite and PostgreSQL, events split in two id partitions read in
    parallel (measured fastest on both, see ``bench/readers.py``: ADBC returns SQLite
    timestamps as text, SQLAlchemy is 5-6x slower); ``pl.read_database`` through
    SQLAlchemy on any other dialect.
    connectorx links its own SQLite: the engine's pooled connections are closed first
    so two copies of the library never hold the file open together.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.uri: str | None = None
        path = database.sqlite_path(engine)
        if path is not None:
            self.uri = "sqlite://" + str(Path(path).resolve())
        elif engine.dialect.name == "postgresql":
            url = engine.url.set(drivername="postgresql")
            self.uri = url.render_as_string(hide_password=False)

    def query(
        self,
        stmt: Select[*tuple[Any, ...]],
        columns: Mapping[str, Any],
        *,
        partition_on: str | None = None,
    ) -> pl.DataFrame:
        if self.uri is None:
            frame = pl.read_database(stmt, self.engine, infer_schema_length=None)
        else:
            sql = str(stmt.compile(self.engine, compile_kwargs={"literal_binds": True}))
            if self.uri.startswith("sqlite"):
                self.engine.dispose()
            frame = pl.read_database_uri(
                sql,
                self.uri,
                engine="connectorx",
                partition_on=partition_on,
                partition_num=2 if partition_on else None,
            )
        if frame.is_empty():
            return empty_frame(columns)
        return conform(frame, columns)

    def accounts(self) -> pl.DataFrame:
        return self.query(ACCOUNTS_QUERY, ACCOUNT_COLUMNS)

    def annotations(self) -> pl.DataFrame:
        cols = [getattr(Annotation, c) for c in ANNOTATION_COLUMNS]
        return self.query(select(*cols).order_by(Annotation.start_at), ANNOTATION_COLUMNS)

    def cases(self) -> pl.DataFrame:
        return self.query(CASES_QUERY, CASE_COLUMNS)

    def events(self, lo: int | None, hi: int) -> pl.DataFrame:
        cols = [getattr(Event, c) for c in EVENT_COLUMNS if c != "specialty"]
        stmt = select(*cols).where(Event.id <= hi)
        if lo is not None:
            stmt = stmt.where(Event.id > lo)
        return self.query(stmt, EVENT_COLUMNS, partition_on="id")

    def max_event_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(Event.id))).scalar()

    def min_event_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(Event.id))).scalar()


#: The reader, for the warehouse's load (:mod:`analytics.sources.warehouse`).
TableReader = _Reader


def _append_events(
    reader: _Reader, parts: Path, accounts: pl.DataFrame, since: int | None
) -> tuple[int, date | None]:
    """Copy events with id above ``since`` into new parts; return the count and first day."""
    top = reader.max_event_id()
    if top is None or (since is not None and top <= since):
        return 0, None
    lo = since if since is not None else (reader.min_event_id() or 1) - 1
    existing = len(list(parts.glob("*.parquet")))
    total, first_day = 0, None
    while lo < top:
        hi = min(lo + _EVENT_CHUNK, top)
        chunk = reader.events(lo, hi)
        lo = hi
        if chunk.is_empty():
            continue
        chunk = conform(
            with_target_specialty(chunk, accounts),
            EVENT_COLUMNS,
        ).sort("ts")
        _write(chunk, parts / f"part-{existing:05d}.parquet")
        existing += 1
        total += chunk.height
        day = chunk["ts"].min().date()  # type: ignore[union-attr]
        first_day = day if first_day is None else min(first_day, day)
    return total, first_day


#: Aggregates kept beside the events: file, schema, how to build it from events, the
#: column that orders it in time, and whether it counts per week (so that an update
#: recomputes from the Monday of the first new day).
_DERIVED: tuple[
    tuple[str, Mapping[str, Any], Callable[[pl.LazyFrame], pl.DataFrame], str, bool], ...
] = (
    ("exposure.parquet", EXPOSURE_COLUMNS, exposure_from_events, "day", False),
    ("events_daily.parquet", EVENTS_DAILY_COLUMNS, events_daily_from_events, "day", False),
    ("active.parquet", ACTIVE_COLUMNS, active_from_events, "week", True),
)


def _refresh_derived(folder: Path, parts: Path, *, full: bool, first_day: date | None) -> None:
    """Rebuild each aggregate of :data:`_DERIVED` in full, or from the first new day on
    (keeping the days, or weeks, before it)."""
    events = pl.scan_parquet(parts / "*.parquet") if any(parts.glob("*.parquet")) else None
    for name, columns, build, key, weekly in _DERIVED:
        path = folder / name
        if events is None:
            _write(empty_frame(columns), path)
        elif full or not path.exists():
            _write(build(events), path)
        elif first_day is not None:
            since = first_day - timedelta(days=first_day.weekday()) if weekly else first_day
            fresh = build(
                events.filter(pl.col("ts") >= datetime.combine(since, datetime.min.time()))
            )
            kept = pl.read_parquet(path).filter(pl.col(key) < since)
            _write(pl.concat([kept, fresh]).sort(pl.all()), path)
