"""Run the benchmarks and print one Markdown table of results per benchmark.

Usage: ``python -m bench [BENCHMARK ...] [--sqlite URL] [--postgres URL | --skip-postgres]``.

Benchmarks: ``cold``, ``pandas``, ``warm``, ``refresh``, ``postgres`` (together:
``trends``, the Weekly Trends page), ``readers``, ``anomalies``, ``clusters`` (on the
medium demo), ``rings`` (on the large demo), ``seeding``, ``browser`` (each page's first
render in a new browser session, the Reports audience switch and the HTML brief, in
Chromium, on ``--readers-sqlite``), ``detectors`` (alerts scored on
labelled series: ``--nab DIR``, ``--detector NAME``) and ``emerging`` (emerging topics
replayed on labelled text streams: ``--csv FILE --labels a,b``, ``--every N``) and
``sources`` (the medium demo in a helpdesk's tables, copied and read by pushdown through
its source map, on SQLite and PostgreSQL) and ``warehouse`` (the page's cube by pushdown
to ClickHouse (chdb) against PostgreSQL pushdown and the snapshot, at the large demo and at
5x it, and the warehouse's import; not in ``make bench``); ``all`` runs every one.
Without any, all but ``seeding`` run (``make bench``). PostgreSQL parts run when the
server answers at ``--postgres``, and are skipped otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from bench import (
    anomalies,
    browser,
    clusters,
    detectors,
    emerging,
    postgres,
    readers,
    rings,
    seeding,
    sources,
    trends,
    warehouse,
)
from bench.harness import Table, seconds

_GROUPS: dict[str, tuple[str, ...]] = {
    "trends": trends.PARTS,
    "all": (
        *trends.PARTS,
        "readers",
        "anomalies",
        "clusters",
        "rings",
        "seeding",
        "detectors",
        "emerging",
        "browser",
        "sources",
        "warehouse",
    ),
}
_CHOICES = (*_GROUPS["all"], *_GROUPS)
_DEFAULT = ("trends", "readers", "anomalies", "clusters", "rings")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(_CHOICES)} (default: {' '.join(_DEFAULT)})",
    )
    parser.add_argument(
        "--sqlite",
        default="sqlite:///data/large.db",
        help="database of the Weekly Trends benchmarks (default: the large demo)",
    )
    parser.add_argument(
        "--readers-sqlite",
        default="sqlite:///data/lookout.db",
        help="database of the readers benchmark (default: the medium demo)",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL URL the benchmark databases are created from ('' to skip)",
    )
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL rows")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per timing")
    parser.add_argument("--scale", default="large", choices=["small", "medium", "large"],
                        help="scale of the seeding benchmark")  # fmt: skip
    parser.add_argument("--nab", default=str(detectors.DEFAULT_FOLDER), metavar="DIR",
                        help="labelled folder in NAB's layout (detectors benchmark)")  # fmt: skip
    parser.add_argument("--detector", action="append", metavar="NAME",
                        help="detector to score (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--csv", action="append", metavar="FILE",
                        help="labelled text stream to replay (emerging; repeatable; "
                             "default: the text-dev streams)")  # fmt: skip
    parser.add_argument("--labels", action="append", metavar="A,B",
                        help="its label columns, one --labels per --csv")  # fmt: skip
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="replay every N-th day (emerging; default 1)")  # fmt: skip
    return parser


def _chosen(names: list[str]) -> list[str]:
    """Expand groups; keep the canonical order.

    >>> _chosen(["readers", "trends"])[:2]
    ['cold', 'pandas']
    >>> _chosen([]) == _chosen(["trends", "readers", "anomalies", "clusters", "rings"])
    True
    """
    wanted = {p for name in (names or _DEFAULT) for p in _GROUPS.get(name, (name,))}
    return [p for p in _GROUPS["all"] if p in wanted]


def _missing(url: str, scale: str) -> str | None:
    """Why a SQLite benchmark database cannot be used (None when it can)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or Path(parsed.database or "").is_file():
        return None
    return (
        f"{url} does not exist; seed it first: LOOKOUT_DATABASE_URL={url} "
        f"python -m analytics seed --scale {scale} --end 2026-11-24"
    )


def _seeding(scale: str, pg: str | None) -> Table:
    table = Table(f"Seeding the {scale} demo (fresh process)", ("database", "seconds",
                  "peak RSS MiB", "rows"))  # fmt: skip
    for row in seeding.run(scale=scale, postgres=pg):
        table.add(row["name"], seconds(row["seconds"], 1), f"{row['peak_mib']:.0f}", row["rows"])
    return table


def _emerging(args: argparse.Namespace) -> Table:
    """The emerging replay of ``--csv``/``--labels`` (or of the text-dev streams)."""
    csv, labels = args.csv or [], args.labels or []
    if len(csv) != len(labels):
        raise emerging.StreamError("give one --labels a,b for each --csv FILE")
    if args.every < 1:
        raise emerging.StreamError("--every must be 1 or more")
    streams = [
        (Path(f), [x.strip() for x in names.split(",") if x.strip()])
        for f, names in zip(csv, labels, strict=True)
    ]
    return emerging.run(streams or None, every=args.every)


def main() -> int:
    """Run the chosen benchmarks; exit 1 when a check failed."""
    args = _parser().parse_args()
    unknown = [n for n in args.benchmarks if n not in _CHOICES]
    if unknown:
        _parser().error(f"unknown benchmark {', '.join(unknown)}; choose from {_CHOICES}")
    parts = _chosen(args.benchmarks)
    needs = [
        (args.sqlite, "large", set(trends.PARTS)),
        (args.readers_sqlite, "medium", {"readers", "clusters"}),
    ]
    for url, scale, users in needs:
        if users & set(parts) and (why := _missing(url, scale)):
            print(why, file=sys.stderr)
            return 2
    pg: str | None = None if args.skip_postgres else (args.postgres or None)
    if pg and not postgres.reachable(pg):
        print(f"PostgreSQL does not answer at {pg}: PostgreSQL rows skipped.", file=sys.stderr)
        pg = None
    problems: list[str] = []
    trend_parts = [p for p in parts if p in trends.PARTS]
    if trend_parts:
        tables, problems = trends.run(
            trend_parts, sqlite_url=args.sqlite, postgres_url=pg, repeat=args.repeat
        )
        for table in tables:
            print(table.markdown(), end="\n\n", flush=True)
    if "readers" in parts:
        print(readers.run(args.readers_sqlite, pg, repeat=args.repeat).markdown(), end="\n\n")
    if "anomalies" in parts:
        print(anomalies.run().markdown(), end="\n\n", flush=True)
    if "clusters" in parts:
        print(clusters.run(args.readers_sqlite).markdown(), end="\n\n", flush=True)
    if "rings" in parts:
        print(rings.run(args.sqlite, repeat=args.repeat).markdown(), end="\n\n", flush=True)
    if "seeding" in parts:
        print(_seeding(args.scale, pg).markdown(), end="\n\n")
    if "detectors" in parts:
        try:
            scored = detectors.run(args.nab, args.detector)
        except (detectors.nab.FolderError, KeyError) as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        for table in scored:
            print(table.markdown(), end="\n\n", flush=True)
    if "browser" in parts:
        for table in browser.run(args.readers_sqlite, repeat=min(args.repeat, 2)):
            print(table.markdown(), end="\n\n", flush=True)
    if "sources" in parts:
        if _missing(args.readers_sqlite, "medium"):
            print(f"{args.readers_sqlite} does not exist; make it with: make seed", file=sys.stderr)
            return 2
        for table in sources.run(args.readers_sqlite, pg):
            print(table.markdown(), end="\n\n", flush=True)
    if "warehouse" in parts:
        if why := _missing(args.sqlite, "large"):
            print(why, file=sys.stderr)
            return 2
        pg_db = postgres.ensure_database(pg, warehouse.PG_DATABASE) if pg else None
        if pg_db:
            postgres.ensure_seeded(pg_db, "large")
        tables, found = warehouse.run(
            args.sqlite, pg_db, folder=warehouse.FOLDER, repeat=args.repeat
        )
        for table in tables:
            print(table.markdown(), end="\n\n", flush=True)
        problems += found
    if "emerging" in parts:
        try:
            print(_emerging(args).markdown(), end="\n\n", flush=True)
        except emerging.StreamError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
