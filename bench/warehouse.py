"""The Weekly Trends page's cube on ClickHouse (issue 21): pushdown to the warehouse
against pushdown to PostgreSQL and the Parquet snapshot, at the large demo and at 5x it.

Targets, on this machine: the cube by ClickHouse pushdown at 100M events within 3 s in a
fresh process; at the large demo (20.5M events) at least 5x faster than PostgreSQL
pushdown in the same run.

What runs (each timing in a fresh process, ``python -m bench.warehouse cube``):

1. the warehouse (chdb, ClickHouse's engine in process, in a folder of its own) loaded
   whole from the SQLite demo and its fresh snapshot (``warehouse.load(full=True)``):
   the import throughput;
2. the cube of the page's default window (the 13 ISO weeks ending at the demo's last
   full week) for all data and for one region, by ClickHouse pushdown, PostgreSQL
   pushdown and the snapshot: cold (the first ``load_cube`` of a new process, timed
   from the spawn) and warm (median of 3 more calls in that process, no result cache);
3. the warehouse multiplied to 5x inside ClickHouse (``INSERT ... SELECT`` of the
   accounts, events and cases with their ids and account ids offset per copy), and the
   cube on it again; with PostgreSQL, the large demo's PostgreSQL database multiplied the
   same way (:func:`bench.postgres.ensure_multiplied`, kept between runs) and its snapshot
   built whole, and the cube by PostgreSQL pushdown and by that snapshot at 5x too.

The cube's key numbers (cases, exposures, active accounts) are compared across the
three readers at 20M; at 100M every reader's must be 5x ClickHouse's 20M numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import postgres
from bench.harness import SPAWNED_AT, Table, run_child, seconds

__all__ = ["SCENARIOS", "run"]

#: The page's default window: 13 ISO weeks ending with the demo's last full week (W47).
START, END = date(2026, 8, 24), date(2026, 11, 22)
COLD_TARGET_100M, RATIO_TARGET = 3.0, 5.0
#: Label and filters (``dim=value``) of each case timed.
SCENARIOS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all data", ()),
    ("region FL", ("region=FL",)),
)
_ENV = ("LOOKOUT_WAREHOUSE_URL", "LOOKOUT_LOADER", "LOOKOUT_DATABASE_URL")
#: The PostgreSQL database of the large demo (kept between runs, like ``lookout_bench``).
PG_DATABASE = "lookout_whbench"
#: The PostgreSQL database of the large demo at 5x (made from ``PG_DATABASE``, kept).
PG_DATABASE_5X = "lookout_whbench5x"
#: Where the chdb warehouse is made (emptied first, deleted at the end).
FOLDER = Path(tempfile.gettempdir()) / "lookout-bench-warehouse"


def chdb_url(folder: Path) -> str:
    """The ``clickhousedb://`` URL of a chdb warehouse in ``folder``.

    >>> chdb_url(Path("/tmp/wh"))
    'clickhousedb://?interface=chdb&path=/tmp/wh&join_use_nulls=1'
    """
    return f"clickhousedb://?interface=chdb&path={folder}&join_use_nulls=1"


# --------------------------------------------------------------------------- children


def _child_load(args: argparse.Namespace) -> dict[str, Any]:
    """Load the warehouse whole from ``--database`` (and its snapshot when fresh)."""
    from analytics.core import database
    from analytics.sources import warehouse

    lookout = database.make_engine(args.database)
    wh = warehouse.warehouse_engine(args.warehouse)
    summary = warehouse.load(lookout, wh, full=True)
    return {
        "merge": _merge(wh),
        "seconds": summary.seconds,
        "events": summary.events,
        "cases": summary.cases,
        "accounts": summary.accounts,
        "source": summary.source,
    }


def _child_multiply(args: argparse.Namespace) -> dict[str, Any]:
    """Copy the warehouse's accounts, events and cases ``--times - 1`` more times, ids and
    account ids offset per copy, inside ClickHouse."""
    from analytics.sources import warehouse

    wh = warehouse.warehouse_engine(args.warehouse)
    t0 = time.perf_counter()
    with wh.connect() as conn:
        client = conn.connection.dbapi_connection.client  # type: ignore[union-attr]
        top = {
            t: int(client.query(f"SELECT max(id) FROM {t}").result_rows[0][0])
            for t in ("accounts", "events", "cases")
        }
        shifted = {
            "accounts": {"id": "accounts"},
            "events": {"id": "events", "account_id": "accounts", "target_account_id": "accounts"},
            "cases": {"id": "cases", "subject_account_id": "accounts",
                      "reporter_account_id": "accounts"},
        }  # fmt: skip
        columns = {
            "accounts": warehouse.ACCOUNT_COLUMNS,
            "events": warehouse.EVENT_COLUMNS,
            "cases": warehouse.CASE_COLUMNS,
        }
        for k in range(1, args.times):
            for table, cols in columns.items():
                exprs = [
                    f"{c} + {k * top[shifted[table][c]]}" if c in shifted[table] else c
                    for c in cols
                ]
                client.command(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
                    f"FROM {table} WHERE id <= {top[table]}"
                )
        seconds = time.perf_counter() - t0
        counts = {
            t: int(client.query(f"SELECT count() FROM {t}").result_rows[0][0]) for t in columns
        }
        parts = int(
            client.query(
                "SELECT count() FROM system.parts WHERE active AND table = 'events' "
                "AND database = currentDatabase()"
            ).result_rows[0][0]
        )
    return {"seconds": seconds, "merge": _merge(wh), "parts": parts, **counts}


def _merge(wh: Any) -> float:
    """Merge each table's parts (``OPTIMIZE ... FINAL``): the steady state a server reaches
    by merging in the background. chdb merges only while a process has the folder open, so
    without this the timed processes would share the 2 cores with the merges of the load.
    Returns the seconds it took."""
    t0 = time.perf_counter()
    with wh.connect() as conn:
        client = conn.connection.dbapi_connection.client
        for table in ("accounts", "events", "cases"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
    return time.perf_counter() - t0


def _key_numbers(cube: Any) -> dict[str, Any]:
    """Cases, exposures and active accounts of a cube (to compare readers)."""
    import polars as pl

    exposure = cube.exposure.select(pl.selectors.numeric()).sum().to_dicts()[0]
    active = cube.active.select(pl.selectors.numeric()).sum().to_dicts()[0]
    return {
        "cases": cube.cases.height,
        "exposure": {k: int(v or 0) for k, v in sorted(exposure.items())},
        "active": {k: int(v or 0) for k, v in sorted(active.items())},
    }


def _child_cube(args: argparse.Namespace) -> dict[str, Any]:
    """The cube once (cold) and ``--repeat`` more times (warm) in this process."""
    spawned = float(os.environ.get(SPAWNED_AT) or time.time())
    from analytics.core import database
    from analytics.core.filters import Filters
    from analytics.sources.load import load_cube

    dims: dict[str, tuple[str, ...]] = {}
    for item in args.filter or []:
        dim, _, values = item.partition("=")
        dims[dim] = tuple(values.split(","))
    filters = Filters(start=START, end=END, **dims)
    engine = database.make_engine(args.database)
    t0 = time.perf_counter()
    cube = load_cube(engine, filters, loader=args.loader)
    first = time.perf_counter() - t0
    cold = time.time() - spawned
    warm = []
    for _ in range(args.repeat):
        t1 = time.perf_counter()
        load_cube(engine, filters, loader=args.loader)
        warm.append(time.perf_counter() - t1)
    return {
        "cold": cold,
        "first": first,
        "warm": statistics.median(warm),
        "loader": cube.loader,
        "timings": {k: round(v, 3) for k, v in cube.timings.items()},
        "numbers": _key_numbers(cube),
    }


def _child_snapshot(args: argparse.Namespace) -> dict[str, Any]:
    """Bring ``--database``'s Parquet snapshot up to date (untimed in the cube's figures):
    built whole the first time, kept while the database is unchanged."""
    from analytics.core import database
    from analytics.sources.snapshot_refresh import refresh

    summary = refresh(database.make_engine(args.database))
    return {
        "seconds": summary.seconds,
        "mode": summary.mode,
        "events": summary.events,
        "cases": summary.cases,
    }


def _child(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse")
    parser.add_argument("job", choices=["load", "multiply", "cube", "snapshot"])
    parser.add_argument("--database", default="")
    parser.add_argument("--warehouse", default="")
    parser.add_argument("--loader", choices=["snapshot", "pushdown"], default="pushdown")
    parser.add_argument("--filter", action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--times", type=int, default=5)
    args = parser.parse_args(argv)
    jobs = {
        "load": _child_load,
        "multiply": _child_multiply,
        "cube": _child_cube,
        "snapshot": _child_snapshot,
    }
    print(json.dumps(jobs[args.job](args)))
    return 0


# --------------------------------------------------------------------------- parent


def _split(label: str, report: dict[str, Any]) -> str:
    """A note: where the cold call's time went (the pushdown's queries, or the snapshot).

    >>> _split("x", {"timings": {"exposure": 1.0, "active": 0.5, "cases": 0.25, "load": 1.8}})
    'x: cold call 1.80 s (exposure 1.00 s, active 0.50 s, cases 0.25 s)'
    """
    t = report["timings"]
    parts = ", ".join(f"{k} {t[k]:.2f} s" for k in ("exposure", "active", "cases") if k in t)
    return f"{label}: cold call {t.get('load', 0.0):.2f} s" + (f" ({parts})" if parts else "")


def _ratios(rep: dict[str, Any], ch: dict[str, Any]) -> str:
    """How many times slower ``rep`` is than ClickHouse's ``ch``: cold (from the spawn),
    the cold call alone (without the interpreter's start and imports, which both pay
    alike) and warm.

    >>> _ratios({"cold": 6.0, "first": 5.5, "warm": 5.0}, {"cold": 1.5, "first": 1.0, "warm": 0.5})
    '4.0x cold, 5.5x the call, 10.0x warm'
    """
    cold, call, warm = (rep[k] / ch[k] for k in ("cold", "first", "warm"))
    return f"{cold:.1f}x cold, {call:.1f}x the call, {warm:.1f}x warm"


@dataclass
class Reader:
    """One way of reading the cube: its database, loader and warehouse."""

    name: str
    database: str
    loader: str
    warehouse: str = ""

    def time(self, filters: tuple[str, ...], repeat: int) -> dict[str, Any]:
        """The cube in a fresh process: its report (cold, warm, key numbers)."""
        args = ["cube", "--database", self.database, "--loader", self.loader]
        args += [a for f in filters for a in ("--filter", f)] + ["--repeat", str(repeat)]
        env = {"LOOKOUT_WAREHOUSE_URL": self.warehouse} if self.warehouse else None
        report, _ = run_child("bench.warehouse", args, env=env)
        return report


def run(
    sqlite_url: str, postgres_url: str | None, *, folder: Path, repeat: int = 3, times: int = 5
) -> tuple[list[Table], list[str]]:
    """Every measurement of this module; the tables and the checks that failed.

    ``folder``: where the chdb warehouse is made (emptied first, deleted at the end).
    """
    for name in _ENV:
        os.environ.pop(name, None)
    problems: list[str] = []
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wh = chdb_url(folder)
    try:
        loaded, _ = run_child("bench.warehouse", ["load", "--database", sqlite_url,
                                                  "--warehouse", wh])  # fmt: skip
        imported = Table(
            "Loading the warehouse (chdb) from the large demo, whole, fresh process",
            ("events from", "events", "cases", "accounts", "seconds", "rows/s"),
        )
        rows = loaded["events"] + loaded["cases"] + loaded["accounts"]
        imported.add(loaded["source"], f"{loaded['events']:,}", f"{loaded['cases']:,}",
                     f"{loaded['accounts']:,}", seconds(loaded["seconds"], 1),
                     f"{rows / loaded['seconds']:,.0f}")  # fmt: skip
        imported.notes.append(
            f"Then every table's parts merged (OPTIMIZE ... FINAL, untimed below, not in the"
            f" rate): {loaded['merge']:.1f} s. The cube timings run on merged tables."
        )
        readers = [Reader("ClickHouse pushdown (chdb)", sqlite_url, "pushdown", wh)]
        if postgres_url:
            readers.append(Reader("PostgreSQL pushdown", postgres_url, "pushdown"))
        readers.append(Reader("snapshot (Parquet, SQLite demo)", sqlite_url, "snapshot"))
        cube = Table(
            f"The weekly page's cube, {START}..{END} (13 weeks), large demo",
            ("filters", "reader", "cold s", "of which the call", "warm s",
             "PostgreSQL / ClickHouse", f"≥ {RATIO_TARGET:.0f}x", "numbers"),
        )  # fmt: skip
        base: dict[str, dict[str, Any]] = {}
        for label, filters in SCENARIOS:
            reports = {r.name: r.time(filters, repeat) for r in readers}
            ch = reports[readers[0].name]
            base[label] = ch
            for reader in readers:
                cube.notes.append(_split(f"{label}, {reader.name}", reports[reader.name]))
            for reader in readers:
                rep = reports[reader.name]
                same = rep["numbers"] == ch["numbers"]
                if not same:
                    problems.append(f"{reader.name}, {label}: numbers differ from ClickHouse's")
                ratio = met = ""
                if reader.name.startswith("PostgreSQL"):
                    ratio = _ratios(rep, ch)
                    met = ", ".join(
                        f"{k} {'yes' if rep[k] / ch[k] >= RATIO_TARGET else '**no**'}"
                        for k in ("cold", "first", "warm")
                    ).replace("first", "call")
                cube.add(label, reader.name, seconds(rep["cold"]), seconds(rep["first"]),
                         seconds(rep["warm"]), ratio, met,
                         "equal" if same else "**DIFFER**")  # fmt: skip
        grown, _ = run_child("bench.warehouse", ["multiply", "--warehouse", wh,
                                                 "--times", str(times)])  # fmt: skip
        big = Table(
            f"The same cube at {times}x ({grown['events']:,} events)",
            ("filters", "reader", "cold s", "of which the call", "warm s",
             "PostgreSQL / ClickHouse", f"ClickHouse cold ≤ {COLD_TARGET_100M:.0f} s",
             "numbers"),
        )  # fmt: skip
        big.notes.append(
            f"ClickHouse: made inside ClickHouse in {grown['seconds']:.1f} s: "
            f"{grown['accounts']:,} accounts, {grown['cases']:,} cases, {grown['parts']} active"
            f" parts of events, then merged (OPTIMIZE ... FINAL) in {grown['merge']:.1f} s "
            "before the timings."
        )
        readers5 = readers[:1]
        if postgres_url:
            admin = make_url(postgres_url).set(database="postgres")
            pg5, made = postgres.ensure_multiplied(
                admin.render_as_string(hide_password=False),
                make_url(postgres_url).database or "",
                PG_DATABASE_5X,
                times,
            )
            snap, _ = run_child("bench.warehouse", ["snapshot", "--database", pg5])
            how = "kept from an earlier run" if made is None else f"{made:.0f} s"
            big.notes.append(
                f"PostgreSQL: the large demo's database copied and multiplied the same way "
                f"inside PostgreSQL ({how})"
                f"; indexes rebuilt, except the descriptions' full-text one); its snapshot "
                + (
                    f"built whole from it in {snap['seconds']:.0f} s"
                    if snap["mode"] == "full"
                    else "kept from an earlier run"
                )
                + f" ({snap['events']:,} events)."
            )
            readers5 += [
                Reader("PostgreSQL pushdown", pg5, "pushdown"),
                Reader("snapshot (Parquet, PostgreSQL 5x)", pg5, "snapshot"),
            ]
        for label, filters in SCENARIOS:
            reports = {r.name: r.time(filters, repeat) for r in readers5}
            ch = reports[readers5[0].name]
            want = base[label]["numbers"]
            for reader in readers5:
                rep = reports[reader.name]
                scaled = rep["numbers"]["cases"] == times * want["cases"] and all(
                    rep["numbers"][k][c] == times * v for k in ("exposure", "active")
                    for c, v in want[k].items() if c not in ("week",)
                )  # fmt: skip
                big.notes.append(_split(f"{label}, {reader.name}", rep))
                if not scaled:
                    problems.append(
                        f"{times}x {label}, {reader.name}: not {times}x the 20M numbers"
                    )
                ratio = met = ""
                if reader.name.startswith("PostgreSQL"):
                    ratio = _ratios(rep, ch)
                if reader is readers5[0]:
                    met = "yes" if rep["cold"] <= COLD_TARGET_100M else "**no**"
                big.add(label, reader.name, seconds(rep["cold"]), seconds(rep["first"]),
                        seconds(rep["warm"]), ratio, met,
                        f"{times}x the 20M" if scaled else f"**not {times}x**")  # fmt: skip
        return [imported, cube, big], problems
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(_child())
