"""Database readers into Polars: ``pl.read_database`` (SQLAlchemy), connectorx and ADBC.

Reads the whole events table of the medium demo (2M rows; the columns the snapshot
copies) on SQLite and PostgreSQL, each reader in its own fresh process: connectorx
and ADBC link their own SQLite library, and two copies of it must never hold one file
open in one process. ``analytics.sources.snapshot_refresh`` copies the database into the
snapshot through connectorx; this benchmark is what that choice rests on.

Run one read by hand: ``python -m bench.readers READER URL``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import polars as pl
from sqlalchemy import select

from analytics.core import database
from analytics.core.models import Event
from bench import postgres
from bench.harness import Table, median, peak_rss_mib, run_child, seconds

__all__ = ["READERS", "read", "run"]

#: Reader name -> what it is, as shown in the table.
READERS: dict[str, str] = {
    "sqlalchemy": "`pl.read_database` (SQLAlchemy)",
    "connectorx": '`pl.read_database_uri(engine="connectorx")`',
    "connectorx-2": "connectorx, `partition_on=id`, 2 partitions",
    "adbc": '`pl.read_database_uri(engine="adbc")`',
}
_COLUMNS = (
    "id",
    "ts",
    "account_id",
    "kind",
    "platform",
    "region",
    "target_account_id",
    "device_hash",
    "ip_hash",
)


def _uri(url: str, reader: str) -> str:
    """The URI connectorx or ADBC expect for a SQLAlchemy URL.

    >>> _uri("sqlite:///data/x.db", "adbc").endswith("/data/x.db")
    True
    >>> _uri("postgresql+psycopg://u@h:5432/d", "connectorx")
    'postgresql://u@h:5432/d'
    """
    engine = database.make_engine(url)
    path = database.sqlite_path(engine)
    if path is not None:
        # connectorx: sqlite:// + absolute path; Polars strips "sqlite:///" for ADBC.
        return ("sqlite:///" if reader == "adbc" else "sqlite://") + str(Path(path).resolve())
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def read(reader: str, url: str) -> pl.DataFrame:
    """Read the events table with one reader."""
    engine = database.make_engine(url)
    stmt = select(*[getattr(Event, c) for c in _COLUMNS])
    if reader == "sqlalchemy":
        with engine.connect() as conn:
            return pl.read_database(stmt, conn, infer_schema_length=None)
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    engine.dispose()
    if reader == "adbc":
        return pl.read_database_uri(sql, _uri(url, reader), engine="adbc")
    if reader == "connectorx-2":
        return pl.read_database_uri(
            sql, _uri(url, reader), engine="connectorx", partition_on="id", partition_num=2
        )
    return pl.read_database_uri(sql, _uri(url, reader), engine="connectorx")


def _with_datetimes(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as datetimes (SQLite hands text to connectorx and ADBC)."""
    if frame.schema["ts"] == pl.String:
        ts = pl.col("ts").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
        return frame.with_columns(ts)
    return frame


def _child(reader: str, url: str) -> None:
    start = time.perf_counter()
    frame = read(reader, url)
    done = time.perf_counter()
    _with_datetimes(frame)
    parsed = time.perf_counter()
    report = {
        "read": done - start,
        "parse": parsed - done,
        "rows": frame.height,
        "ts": str(frame.schema["ts"]),
        "peak_mib": peak_rss_mib(),
    }
    print(json.dumps(report))


def run(sqlite_url: str, postgres_admin: str | None, *, repeat: int) -> Table:
    """Every reader on SQLite (and PostgreSQL, medium demo seeded when missing)."""
    table = Table(
        "Readers: the events table (medium demo) into Polars",
        (
            "database",
            "reader",
            "read s",
            "rows/s",
            "+ ts to datetime s",
            "peak RSS MiB",
            "ts",
            "runs",
        ),  # fmt: skip
    )
    targets = [("SQLite", sqlite_url)]
    if postgres_admin:
        url = postgres.ensure_database(postgres_admin, "lookout_bench_medium")
        seeded = postgres.ensure_seeded(url, "medium")
        if seeded is not None:
            table.notes.append(f"PostgreSQL medium demo seeded first ({seeded:.0f} s, untimed).")
        targets.append(("PostgreSQL", url))
    for label, url in targets:
        totals: dict[str, float] = {}
        for reader, title in READERS.items():
            runs = 1 if reader == "sqlalchemy" else repeat  # ~15-30 s a read: once is enough
            reports = [run_child("bench.readers", [reader, url])[0] for _ in range(runs)]
            read_s = median(r["read"] for r in reports)
            totals[title] = median(r["read"] + r["parse"] for r in reports)
            table.add(
                label,
                title,
                seconds(read_s),
                f"{reports[0]['rows'] / read_s / 1e6:.2f} M",
                seconds(totals[title]),
                f"{median(r['peak_mib'] for r in reports):.0f}",
                reports[0]["ts"].split("(")[0],
                runs,
            )
        ranked = sorted(totals, key=totals.__getitem__)
        gap = totals[ranked[1]] / totals[ranked[0]] - 1
        table.notes.append(
            f"Fastest on {label} (read + timestamps): {ranked[0]}; next {ranked[1]},"
            f" {gap:.0%} slower."
        )
    table.notes.append(
        "Median of the runs, each in a fresh process; time from the query to a Polars"
        " frame (imports and process start excluded). Rows: " + ", ".join(_COLUMNS) + "."
    )
    return table


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
