"""The Parquet snapshot on disk: where it lives, its state and damage, why it cannot be used,
and the frames read from it.

A snapshot is a columnar copy of one database under ``data/snapshots/<key>/`` (the key
is a hash of the database URL, so another ``LOOKOUT_DATABASE_URL`` never reads it):
the accounts, cases and annotations, the events in Parquet parts, the aggregates derived
from them, and ``state.json`` (format, the database's fingerprint, the event parts).
:mod:`analytics.sources.snapshot_refresh` writes it; :mod:`analytics.sources.load` reads
through it or around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from analytics.core import database
from analytics.core.filters import DIMENSIONS, Filters
from analytics.sources.fingerprint import fingerprint, fingerprint_as_of
from analytics.sources.frames import (
    ACCOUNT_COLUMNS,
    ACTIVE_COLUMNS,
    ANNOTATION_COLUMNS,
    CASE_COLUMNS,
    EVENT_COLUMNS,
    EVENTS_DAILY_COLUMNS,
    EXPOSURE_COLUMNS,
    Cube,
    active_from_events,
    empty_frame,
)

__all__ = [
    "SNAPSHOT_FORMAT",
    "SnapshotBroken",
    "SnapshotError",
    "SnapshotUnwritable",
    "bypass_snapshot",
    "cube_from_snapshot",
    "snapshot_damage",
    "events_daily_from_snapshot",
    "mark_broken",
    "read_state",
    "snapshot_bypassed",
    "snapshot_dir",
    "snapshot_is_fresh",
    "snapshot_problem",
    "snapshot_tables",
    "write_state",
]

#: The layout's version: bump when the snapshot gains or changes a file.
SNAPSHOT_FORMAT = 2
_ROOT = database.PROJECT_ROOT / "data" / "snapshots"


class SnapshotError(RuntimeError):
    """A snapshot that cannot be used; ``reason`` says why, naming no path but the
    snapshot's own folder name (the hash key).

    >>> print(SnapshotBroken(Path("/srv/snapshots/3f2a"), "cases.parquet is missing"))
    the snapshot 3f2a is broken: cases.parquet is missing
    """

    what = "cannot be used"

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(folder, reason)
        self.folder, self.reason = folder, reason

    def __str__(self) -> str:
        return f"the snapshot {self.folder.name} {self.what}: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Streamlit caches it)
        return type(self), (self.folder, self.reason)


class SnapshotBroken(SnapshotError):
    """A file of the snapshot is missing, unreadable or of the wrong shape; the next
    :func:`~analytics.sources.snapshot_refresh.refresh` rebuilds the snapshot whole."""

    what = "is broken"


class SnapshotUnwritable(SnapshotError, OSError):
    """The snapshot folder cannot be created or written (an ``OSError`` too)."""

    what = "cannot be written"

    @classmethod
    def from_os_error(cls, folder: Path, exc: OSError) -> SnapshotUnwritable:
        """The error for ``exc``, told without its path: "Not a directory", "Read-only
        file system"...

        >>> denied = PermissionError(13, "Permission denied", "/srv/snapshots/3f2a/x")
        >>> print(SnapshotUnwritable.from_os_error(Path("/srv/snapshots/3f2a"), denied))
        the snapshot 3f2a cannot be written: Permission denied
        """
        return cls(folder, exc.strerror or type(exc).__name__)


#: Snapshots this process reads around (by pushdown) until a refresh succeeds.
_BYPASSED: dict[Path, SnapshotError] = {}


def bypass_snapshot(
    engine: Engine, problem: SnapshotError | None, *, root: Path | None = None
) -> None:
    """Read ``engine``'s database by pushdown in this process while its snapshot has
    ``problem``; ``None`` reads the snapshot again. A successful
    :func:`~analytics.sources.snapshot_refresh.refresh` clears it.

    >>> from sqlalchemy import create_engine
    >>> engine = create_engine("sqlite://")
    >>> bypass_snapshot(engine, SnapshotBroken(Path("x"), "cases.parquet is missing"))
    >>> str(snapshot_bypassed(engine))
    'the snapshot x is broken: cases.parquet is missing'
    >>> bypass_snapshot(engine, None)
    >>> snapshot_bypassed(engine) is None
    True
    """
    folder = snapshot_dir(engine, root=root)
    if problem is None:
        _BYPASSED.pop(folder, None)
    else:
        _BYPASSED[folder] = problem


def snapshot_bypassed(engine: Engine, *, root: Path | None = None) -> SnapshotError | None:
    """Why this process reads around ``engine``'s snapshot, or None (see
    :func:`bypass_snapshot`)."""
    return _BYPASSED.get(snapshot_dir(engine, root=root))


def snapshot_dir(engine: Engine, *, root: Path | None = None) -> Path:
    """The snapshot folder of a database: a hash of its URL under ``data/snapshots``,
    without the user and password, so the pages' read-only role and the writer that
    refreshes the snapshot (``LOOKOUT_READER_DATABASE_URL``) share one folder.

    >>> from sqlalchemy import create_engine
    >>> a = snapshot_dir(create_engine("sqlite:///a.db"), root=Path("/tmp/s"))
    >>> b = snapshot_dir(create_engine("sqlite:///b.db"), root=Path("/tmp/s"))
    >>> a != b and a.parent == b.parent == Path("/tmp/s")
    True
    >>> writer = create_engine("postgresql+psycopg://lookout:pw@db:5432/prod")
    >>> reader = create_engine("postgresql+psycopg://lookout_reader:other@db:5432/prod")
    >>> snapshot_dir(writer, root=Path("/s")) == snapshot_dir(reader, root=Path("/s"))
    True
    """
    u = engine.url  # URL.set(username=None) would keep the user: build it without one
    bare = URL.create(u.drivername, host=u.host, port=u.port, database=u.database, query=u.query)
    url = bare.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite" and database.sqlite_path(engine):
        url = "sqlite:///" + str(Path(database.sqlite_path(engine) or "").resolve())
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    base = root or Path(os.environ.get("LOOKOUT_SNAPSHOT_DIR") or _ROOT)
    return base / key


def read_state(folder: Path) -> dict[str, Any] | None:
    """The snapshot's ``state.json``, or None when it is missing, unreadable or of
    another :data:`SNAPSHOT_FORMAT`."""
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("format") == SNAPSHOT_FORMAT else None


def snapshot_is_fresh(engine: Engine, *, root: Path | None = None) -> bool:
    """True when the snapshot exists, is not marked broken and its fingerprint matches
    the database's."""
    state = read_state(snapshot_dir(engine, root=root))
    return (
        state is not None
        and not state.get("broken")
        and state["fingerprint"] == fingerprint(engine)
    )


#: The snapshot's files beside the event parts, and their columns.
_FILES: dict[str, Mapping[str, Any]] = {
    "accounts.parquet": ACCOUNT_COLUMNS,
    "annotations.parquet": ANNOTATION_COLUMNS,
    "cases.parquet": CASE_COLUMNS,
    "exposure.parquet": EXPOSURE_COLUMNS,
    "events_daily.parquet": EVENTS_DAILY_COLUMNS,
    "active.parquet": ACTIVE_COLUMNS,
}


def snapshot_damage(folder: Path, state: Mapping[str, Any]) -> str | None:
    """The first thing wrong with a snapshot's files, or None: a mark left by a failed
    read, a file or event part missing, one that is not Parquet (garbage, truncated)
    or whose columns are not the expected ones, or an event part the state does not
    list (left by an interrupted refresh). Reads only the files' footers."""
    if state.get("broken"):
        return str(state["broken"])
    found = sorted(p.name for p in (folder / "events").glob("*.parquet"))
    listed = state.get("parts", found)
    files = dict(_FILES) | {f"events/{name}": EVENT_COLUMNS for name in listed}
    for extra in sorted(set(found) - set(listed)):
        return f"events/{extra} is not part of the snapshot"
    for name, columns in files.items():
        try:
            schema = pl.read_parquet_schema(folder / name)
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, pl.exceptions.PolarsError):
            return f"{name} is not a readable Parquet file"
        if dict(schema) != dict(columns):
            return f"{name} does not have the expected columns"
    return None


def mark_broken(folder: Path, reason: str) -> None:
    """Record in the state that a file could not be read (the next refresh rebuilds);
    a folder that cannot be written keeps no mark."""
    state = read_state(folder)
    if state is not None and not state.get("broken"):
        with suppress(OSError):
            write_state(folder, state | {"broken": reason})


def write_state(folder: Path, state: Mapping[str, Any]) -> None:
    """Replace the snapshot's ``state.json`` atomically."""
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(folder / "state.json")


def snapshot_problem(engine: Engine, *, root: Path | None = None) -> SnapshotError | None:
    """What stops ``engine``'s snapshot from being used, without reading the database:
    :class:`SnapshotUnwritable` when its folder cannot be created or written,
    :class:`SnapshotBroken` when a file is missing, unreadable or of the wrong shape;
    None when it is sound or not built yet. Cheap (file footers and a probe file).

    >>> import tempfile
    >>> from sqlalchemy import create_engine
    >>> blocker = Path(tempfile.mkdtemp()) / "a-file"
    >>> _ = blocker.write_text("not a folder")
    >>> engine = create_engine("sqlite://")
    >>> print(snapshot_problem(engine, root=blocker / "snapshots"))  # doctest: +ELLIPSIS
    the snapshot ... cannot be written: Not a directory
    """
    folder = snapshot_dir(engine, root=root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return SnapshotUnwritable.from_os_error(folder, exc)
    state = read_state(folder)
    found = None if state is None else snapshot_damage(folder, state)
    return SnapshotBroken(folder, found) if found else None


@contextmanager
def _reading(folder: Path) -> Iterator[None]:
    """Turn a failure to read the snapshot's files into :class:`SnapshotBroken`."""
    try:
        yield
    except (pl.exceptions.PolarsError, OSError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        found = snapshot_damage(folder, read_state(folder) or {})
        reason = found or f"a file cannot be read ({type(exc).__name__})"
        raise SnapshotBroken(folder, reason) from exc


def cube_from_snapshot(folder: Path, filters: Filters, lo: datetime, hi: datetime) -> Cube:
    """The cube for ``filters`` over ``[lo, hi)`` from the snapshot's files; a file that
    cannot be read raises :class:`SnapshotBroken`."""
    with _reading(folder):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cases = (
            pl.scan_parquet(folder / "cases.parquet")
            .filter(_case_window(lo, hi), *_filter_exprs(filters, DIMENSIONS))
            .collect()
        )
        timings["cases"] = time.perf_counter() - t0
        event_dims = ("region", "platform", "specialty")
        exposure = (
            pl.scan_parquet(folder / "exposure.parquet")
            .filter(
                pl.col("day") >= lo.date(),
                pl.col("day") < hi.date(),
                *_filter_exprs(filters, event_dims),
            )
            .collect()
        )
        t1 = time.perf_counter()
        timings["exposure"] = t1 - t0 - timings["cases"]
        parts = list((folder / "events").glob("*.parquet"))
        if not any(filters.where(d) for d in event_dims):  # precomputed at refresh
            active = pl.read_parquet(folder / "active.parquet").filter(
                pl.col("week") >= lo.date(), pl.col("week") < hi.date()
            )
        elif parts:
            active = active_from_events(
                pl.scan_parquet(parts).filter(
                    pl.col("ts") >= lo, pl.col("ts") < hi, *_filter_exprs(filters, event_dims)
                )
            )
        else:
            active = empty_frame(ACTIVE_COLUMNS)
        timings["active"] = time.perf_counter() - t1
        annotations = pl.read_parquet(folder / "annotations.parquet")
    state = read_state(folder) or {}
    return Cube(
        filters=filters,
        cases=cases.sort("id"),
        exposure=exposure.sort(pl.all()),
        active=active,
        annotations=annotations,
        as_of=fingerprint_as_of(state.get("fingerprint", {})),
        loader="snapshot",
        timings=timings,
    )


def events_daily_from_snapshot(folder: Path, start: date, end: date) -> pl.DataFrame:
    """The snapshot's events per day, kind, region and platform for days in ``[start, end)``."""
    with _reading(folder):
        return (
            pl.scan_parquet(folder / "events_daily.parquet")
            .filter(pl.col("day") >= start, pl.col("day") < end)
            .collect()
            .sort(pl.all())
        )


def snapshot_tables(folder: Path) -> dict[str, pl.LazyFrame]:
    """The snapshot's raw tables as lazy frames (``events``, ``accounts``, ``cases``);
    raises :class:`SnapshotBroken` when a file fails its check."""
    found = snapshot_damage(folder, read_state(folder) or {})
    if found:
        raise SnapshotBroken(folder, found)
    events = folder / "events"
    return {
        "events": pl.scan_parquet(events / "*.parquet")
        if any(events.glob("*.parquet"))
        else empty_frame(EVENT_COLUMNS).lazy(),
        "accounts": pl.scan_parquet(folder / "accounts.parquet"),
        "cases": pl.scan_parquet(folder / "cases.parquet"),
    }


def _filter_exprs(filters: Filters, dims: tuple[str, ...]) -> list[pl.Expr]:
    return [pl.col(d).is_in(list(filters.where(d))) for d in dims if filters.where(d)]


def _case_window(lo: datetime, hi: datetime) -> pl.Expr:
    """Cases opened in the window, and older cases still open at its start (backlog)."""
    return (pl.col("opened_at") < hi) & (
        (pl.col("opened_at") >= lo)
        | pl.col("resolved_at").is_null()
        | (pl.col("resolved_at") >= lo)
    )
