"""Reading a team's database through a source map: the copy (``sync``) and pushdown.

The medium demo (``data/lookout.db``) is written into the helpdesk's tables
(:mod:`analytics.demo.helpdesk`: ``users``, ``tickets``, ``activity``) on SQLite (a file
in a temporary folder) and on PostgreSQL (a schema of its own, dropped at the end), and
read through its map (:func:`~analytics.demo.helpdesk.helpdesk_map`). For each:

- the first full :func:`~analytics.sources.mapped.sync` into a fresh SQLite Lookout
  database, timed per entity (rows read per second, through the importer); a second
  sync with nothing new (the watermark read); a sync after 10,000 new activity rows;
- the weekly page's cube (the demo's last full ISO week, a 26-week window, no
  filters): ``load_cube(loader="pushdown")`` with ``LOOKOUT_SOURCE_MAP`` set (their
  database, through the map), cold (the first call in a fresh process, imports not
  counted) and warm (median of 3 more calls in that process), against
  ``load_cube(loader="snapshot")`` on the copy (its first call builds the snapshot;
  warm: median of 3).

The helpdesk is written by a bulk path of this module (``sqlite3`` ``executemany`` of
tuples; PostgreSQL ``COPY``) from :func:`~analytics.demo.helpdesk.helpdesk_frames`:
``build_helpdesk`` inserts one dict per row through SQLAlchemy, which is slow for 2M rows.

Run one cube load by hand: ``python -m bench.sources LOADER LOOKOUT_URL START END ROOT``
(with ``LOOKOUT_SOURCE_MAP`` set).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from analytics.core import database
from analytics.core.models import init_db
from analytics.demo import helpdesk
from analytics.sources import mapped, sourcemap
from analytics.sources.ingest_checks import ImportRejected
from bench.harness import Table, median, run_child, seconds

__all__ = ["NEW_ACTIVITY", "SCHEMA", "last_full_week", "run"]

#: Activity rows added before the third sync.
NEW_ACTIVITY = 10_000
#: The PostgreSQL schema the helpdesk is written into (dropped at the end).
SCHEMA = "bench_helpdesk"
_ENTITIES = ("accounts", "cases", "events")
#: The statement time limit of the reruns when Lookout's reader (30 s) stops one.
LONG_LIMIT_S = 600.0


def last_full_week(last_day: date) -> tuple[date, date, date]:
    """The last ISO week that ends on or before ``last_day`` (a day with data), and the
    26-week window ending with it: ``(start, end, week)``, ``end`` included.

    >>> last_full_week(date(2026, 12, 5))  # a Saturday
    (datetime.date(2026, 6, 1), datetime.date(2026, 11, 29), datetime.date(2026, 11, 23))
    >>> last_full_week(date(2026, 11, 29))[1]  # a Sunday: its week is complete
    datetime.date(2026, 11, 29)
    """
    end = last_day - timedelta(days=(last_day.isoweekday() % 7))
    return end - timedelta(days=26 * 7 - 1), end, end - timedelta(days=6)


def _last_day(lookout_url: str) -> date:
    engine = create_engine(lookout_url)
    try:
        with engine.connect() as conn:
            last = conn.execute(text("SELECT max(ts) FROM events")).scalar()
    finally:
        engine.dispose()
    return date.fromisoformat(str(last)[:10])


# --- writing the helpdesk -----------------------------------------------------------------
def _write_sqlite(path: Path, frames: dict[str, pl.DataFrame], *, create: bool) -> None:
    conn = sqlite3.connect(path)
    try:
        if create:
            for ddl in helpdesk.DDL:
                conn.execute(ddl)
        for name, frame in frames.items():
            marks = ", ".join("?" for _ in frame.columns)
            statement = f"INSERT INTO {name} ({', '.join(frame.columns)}) VALUES ({marks})"
            conn.executemany(statement, frame.iter_rows())
        conn.commit()
    finally:
        conn.close()


def _psycopg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _write_postgres(url: str, frames: dict[str, pl.DataFrame], *, create: bool) -> None:
    import psycopg

    with psycopg.connect(_psycopg_conninfo(url)) as conn:
        if create:
            for ddl in helpdesk.DDL:
                conn.execute(ddl)
        for name, frame in frames.items():
            columns = ", ".join(frame.columns)
            with conn.cursor().copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(frame.write_csv(include_header=False))
        conn.execute("ANALYZE")


def _team_url(admin: str) -> str:
    """The admin URL whose sessions read and write the schema :data:`SCHEMA`."""
    return (
        make_url(admin)
        .update_query_dict({"options": f"-csearch_path={SCHEMA}"})
        .render_as_string(hide_password=False)
    )


def _schema(admin: str, *, drop_only: bool = False) -> None:
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            if not drop_only:
                conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    finally:
        engine.dispose()


# --- the copy -----------------------------------------------------------------------------
@contextmanager
def _timed_copies() -> Iterator[dict[str, float]]:
    """Time each entity's copy inside :func:`~analytics.sources.mapped.sync`."""
    spent: dict[str, float] = {}
    original: Callable[..., Any] = mapped._copy

    def timed(engine: Any, source: Any, entity: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(engine, source, entity, *args)
        finally:
            spent[entity.entity] = time.perf_counter() - start

    mapped._copy = timed  # type: ignore[assignment]
    try:
        yield spent
    finally:
        mapped._copy = original


def _reader(url: str, timeout_s: float | None) -> Engine:
    """Their database read-only: as Lookout connects (``None``: its statement time limit),
    or with a longer limit (on PostgreSQL, read-only by the session's default)."""
    if timeout_s is None:
        return sourcemap.connect(url)
    return database.make_reader(url, timeout_s=timeout_s)


def _fresh(lookout_url: str) -> None:
    path = Path(make_url(lookout_url).database or "")
    path.unlink(missing_ok=True)
    engine = database.make_engine(lookout_url)
    init_db(engine)
    engine.dispose()


def _sync(
    lookout_url: str,
    smap: sourcemap.SourceMap,
    team_url: str,
    folder: Path,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """One sync, timed per entity; ``failed`` holds the reason when it stopped."""
    engine = database.make_engine(lookout_url)
    source = _reader(team_url, timeout_s)
    start = time.perf_counter()
    try:
        with _timed_copies() as spent:
            done = mapped.sync(engine, smap, source, quarantine_dir=folder / "quarantine")
    except ImportRejected as exc:
        return {"total": time.perf_counter() - start, "spent": spent, "failed": str(exc)}
    finally:
        source.dispose()
        engine.dispose()
    total = time.perf_counter() - start
    return {"total": total, "spent": spent, "rows": {s.entity: s.imported for s in done}}


def _cube(
    loader: str,
    lookout_url: str,
    window: tuple[date, date],
    root: Path,
    map_path: Path,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    args = [loader, lookout_url, str(window[0]), str(window[1]), str(root)]
    args += [str(timeout_s)] if timeout_s else []
    try:
        report, _wall = run_child("bench.sources", args, env={mapped.MAP_VARIABLE: str(map_path)})
    except RuntimeError as exc:  # a load that fails is a result too
        return {"failed": _reason(str(exc))}
    return report


def _reason(stderr: str) -> str:
    """The line of a child's error output that says what failed.

    >>> _reason("Traceback\\nsqlalchemy.exc.OperationalError: (x) interrupted\\n(Background on")
    'OperationalError: (x) interrupted'
    """
    lines = [ln for ln in stderr.strip().splitlines() if "Error" in ln and "Background" not in ln]
    line = lines[-1] if lines else stderr.strip().splitlines()[-1]
    return line.rpartition(".")[2][:160] if "exc." in line else line[:160]


def _child(
    loader: str, lookout_url: str, start: str, end: str, root: str, timeout_s: str = ""
) -> None:
    """One process: the cube loaded four times; the first call and the median of the rest
    (with ``timeout_s``, their database's statements may run that long)."""
    from analytics.core.filters import Filters
    from analytics.sources import mapped_pushdown
    from analytics.sources.load import load_cube

    smap = mapped.active_map()
    if timeout_s and smap is not None:
        url = mapped.source_url(smap)
        mapped_pushdown._ENGINES[url] = _reader(url, float(timeout_s))
    engine = database.make_engine(lookout_url)
    filters = Filters(start=date.fromisoformat(start), end=date.fromisoformat(end))
    calls: list[float] = []
    parts: dict[str, float] = {}
    for _ in range(2 if timeout_s else 4):  # a longer limit: the cold call, and one more
        t0 = time.perf_counter()
        cube = load_cube(engine, filters, loader=loader, root=Path(root))  # type: ignore[arg-type]
        calls.append(time.perf_counter() - t0)
        parts = parts or cube.timings
    report = {
        "parts": parts,
        "first": calls[0],
        "warm": median(calls[1:]),
        "calls": len(calls),
        "loader": cube.loader,
        "cases": cube.cases.height,
        "exposure": int(cube.exposure["events"].sum()),
        "active": int(cube.active["accounts"].sum()),
    }
    print(json.dumps(report))


# --- the benchmark ------------------------------------------------------------------------
def _dialect(
    label: str,
    team_url: str,
    frames: dict[str, pl.DataFrame],
    writer: Callable[[dict[str, pl.DataFrame]], None],
    folder: Path,
    window: tuple[date, date],
    sync_table: Table,
    cube_table: Table,
    retry_s: float | None = None,
) -> None:
    map_path = folder / "helpdesk.toml"
    map_path.write_text(helpdesk.helpdesk_map(team_url), encoding="utf-8")
    smap = sourcemap.load_map(map_path)
    lookout_url = f"sqlite:///{folder / 'lookout-copy.db'}"
    _fresh(lookout_url)
    first = _sync(lookout_url, smap, team_url, folder)
    runs = [("first full sync", first)]
    limit = None
    if "failed" in first:  # Lookout's reader stops a statement after its time limit
        limit = LONG_LIMIT_S
        _fresh(lookout_url)
        runs.append((f"first full sync, {limit:.0f} s statement limit", _sync(
            lookout_url, smap, team_url, folder, limit)))  # fmt: skip
    runs.append(("second sync, nothing new", _sync(lookout_url, smap, team_url, folder, limit)))
    activity = frames["activity"].tail(NEW_ACTIVITY)
    shift = int(frames["activity"]["activity_id"].max())  # type: ignore[arg-type]
    writer({"activity": activity.with_columns(pl.col("activity_id") + shift)})
    runs.append(
        (
            f"sync after {NEW_ACTIVITY:,} new activity rows",
            _sync(lookout_url, smap, team_url, folder, limit),
        )
    )
    for what, run in runs:
        for name in _ENTITIES:
            if name not in run.get("rows", {}):
                if name == list(run["spent"])[-1]:  # the entity whose copy stopped
                    sync_table.add(label, what, name, f"**failed** after"
                                   f" {seconds(run['spent'][name])} s: {run['failed']}",
                                   "", "", "")  # fmt: skip
                elif name in run["spent"]:
                    sync_table.add(label, what, name, "copied (then the sync stopped)", "",
                                   seconds(run["spent"][name]), "")  # fmt: skip
                continue
            done = run["rows"][name]
            spent = run["spent"][name]
            sync_table.add(
                label,
                what,
                name,
                f"{done.read:,}",
                f"{done.inserted:,} / {done.updated:,} / {done.unchanged:,} / {done.quarantined:,}",
                seconds(spent),
                f"{done.read / spent:,.0f}" if spent and done.read else "–",
            )
        sync_table.add(label, what, "**all**", "", "", f"**{seconds(run['total'])}**", "")
    root = folder / "snapshots"
    push = _cube("pushdown", lookout_url, window, root, map_path)
    pushes = [("pushdown through the map", push, "cold (first call, fresh process)")]
    if "failed" in push and retry_s:
        longer = _cube("pushdown", lookout_url, window, root, map_path, retry_s)
        pushes.append((f"pushdown, {retry_s:.0f} s statement limit", longer, "cold"))
        push = longer
    snap = _cube("snapshot", lookout_url, window, root, map_path)
    keys = ("cases", "exposure", "active")
    same = all(push.get(k) == snap.get(k) for k in keys) if "cases" in push else None
    for name, report, first_call in (
        *pushes,
        ("snapshot of the copy", snap, "first call: builds the snapshot"),
    ):
        if "failed" in report:
            cube_table.add(label, name, f"**failed**: {report['failed']}", "–", "–", "–", "–")
            continue
        parts = report["parts"]
        cube_table.add(
            label,
            name,
            f"{first_call}: {seconds(report['first'])}",
            " / ".join(seconds(parts.get(k)) for k in ("exposure", "active", "cases")),
            f"**{seconds(report['warm'])}**",
            f"{report['cases']:,} / {report['exposure']:,} / {report['active']:,}",
            {True: "yes", False: "**no**", None: "–"}[same],
        )


def run(lookout_url: str, postgres_admin: str | None) -> list[Table]:
    """Both dialects (PostgreSQL when ``postgres_admin`` is given); two tables."""
    last = _last_day(lookout_url)
    start, end, week = last_full_week(last)
    sync_table = Table(
        "Copying the helpdesk through its map into a fresh SQLite Lookout database (`sync`)",
        ("their database", "run", "entity", "rows read", "inserted / updated / unchanged /"
         " quarantined", "seconds", "rows read/s"),
    )  # fmt: skip
    cube_table = Table(
        f"The weekly cube (week {week}, window {start}..{end}, no filters)",
        ("their database", "loader", "first call s", "first call: exposure / active / cases"
         " queries s", "warm s (median of 3; with a longer limit: 1)",
         "cases / exposure events / active accounts", "same cube"),
    )  # fmt: skip
    t0 = time.perf_counter()
    frames = helpdesk.helpdesk_frames(lookout_url)
    read_s = time.perf_counter() - t0
    sizes = ", ".join(f"{name} {frame.height:,}" for name, frame in frames.items())
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as scratch:
        folder = Path(scratch) / "sqlite"
        folder.mkdir()
        team = folder / "helpdesk.db"
        t0 = time.perf_counter()
        _write_sqlite(team, frames, create=True)
        wrote = time.perf_counter() - t0
        notes = [f"The medium demo in the helpdesk's tables: {sizes} (read and converted in"
                 f" {read_s:.0f} s; written to SQLite in {wrote:.0f} s"]  # fmt: skip
        _dialect(
            "SQLite", f"sqlite:///{team}", frames,
            lambda f: _write_sqlite(team, f, create=False),
            folder, (start, end), sync_table, cube_table,
        )  # fmt: skip
        if postgres_admin:
            folder = Path(scratch) / "postgres"
            folder.mkdir()
            team_url = _team_url(postgres_admin)
            try:
                _schema(postgres_admin)
                t0 = time.perf_counter()
                _write_postgres(team_url, frames, create=True)
                notes[0] += f", to PostgreSQL by COPY in {time.perf_counter() - t0:.0f} s"
                _dialect(
                    "PostgreSQL", team_url, frames,
                    lambda f: _write_postgres(team_url, f, create=False),
                    folder, (start, end), sync_table, cube_table, LONG_LIMIT_S,
                )  # fmt: skip
            finally:
                _schema(postgres_admin, drop_only=True)
    notes[0] += ", untimed in the tables)."
    sync_table.notes += notes + [
        "Each entity's time is its copy: reading through the map, translating, and the"
        " importer's checks and upsert. Accounts have no watermark in the map: every sync"
        " reads them whole.",
    ]
    cube_table.notes.append(
        "Pushdown runs the mapped SELECTs (translation and checks in SQL) on their database;"
        " the snapshot loader reads the copy's Parquet snapshot. Warm pushdown has no cache"
        " of its own: it is the same queries again on a warm database."
    )
    cube_table.notes.append(
        "Lookout reads their database with a 30 s limit per statement (`make_reader`);"
        f" a pushdown that stops there is run again on PostgreSQL with {LONG_LIMIT_S:.0f} s."
    )
    return [sync_table, cube_table]


def main(argv: list[str]) -> int:
    """``python -m bench.sources LOADER LOOKOUT_URL START END ROOT``: one process's loads."""
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("LOOKOUT_QUARANTINE_DIR", str(Path(argv[4]).parent / "quarantine"))
    _child(*argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
