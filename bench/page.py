"""The Weekly Trends page computed once in a fresh process, timed from the process's start.

Run by :mod:`bench.trends`, never imported by it: ``python -m bench.page MODE ...``
prints one JSON line with the timings (seconds) and the key numbers to compare.

``total`` runs from the moment the parent spawned this process (``BENCH_SPAWNED_AT``)
to the last number computed; the key numbers gathered afterwards are not timed.

Modes:

- ``lookout``: ``load_cube`` (``--loader snapshot|pushdown``) then ``weekly_view``; the
  libraries the page imports on first use (:data:`FIRST_USE`: ``scipy.stats``, for the
  KPI tests) are imported and timed apart, after the page's own imports, so that
  ``compute`` is computing; the report names the heavy packages loaded by the imports
  and any package first loaded while loading and computing;
- ``pandas``: :mod:`bench.pandas_trends` over the snapshot folder ``--snapshot``;
- ``warm``: load and compute wrapped in ``streamlit.cache_data`` (bare mode), timing
  the first call, the cached calls and uncached recomputations in this one process.

Only the standard library is imported at the top, so that the report can split the
time into interpreter start-up, imports, loading and computing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from datetime import date
from typing import Any

_STARTED = time.time()

#: Imported by the page's computation on first use (:mod:`analytics.metrics.stats`).
FIRST_USE: tuple[str, ...] = ("scipy.stats",)
#: Packages worth naming when a page loads them (a tenth of a second to seconds each).
HEAVY: tuple[str, ...] = (
    "adbc_driver_manager", "argon2", "bottleneck", "connectorx", "numpy", "pandas", "plotly",
    "polars", "psycopg", "pyarrow", "scipy", "sklearn", "sqlalchemy", "statsmodels",
    "streamlit",
)  # fmt: skip


def _packages(names: set[str]) -> list[str]:
    """The top-level packages of some module names, sorted.

    >>> _packages({"scipy.stats", "scipy", "polars.io", "json"})
    ['json', 'polars', 'scipy']
    """
    return sorted({name.partition(".")[0] for name in names})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.page")
    parser.add_argument("mode", choices=["lookout", "pandas", "warm"])
    parser.add_argument("--database", help="database URL (lookout, warm)")
    parser.add_argument("--loader", default="snapshot", choices=["snapshot", "pushdown"])
    parser.add_argument("--snapshot", help="snapshot folder (pandas)")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--week", type=date.fromisoformat, required=True)
    parser.add_argument("--filter", action="append", default=[], help="dim=v1,v2")
    parser.add_argument("--repeat", type=int, default=7, help="cached calls (warm)")
    return parser


def _filters(items: list[str]) -> dict[str, list[str]]:
    """``["region=FL,CA"]`` -> ``{"region": ["FL", "CA"]}``.

    >>> _filters(["category=fake_review", "region=FL,CA"])
    {'category': ['fake_review'], 'region': ['FL', 'CA']}
    """
    out: dict[str, list[str]] = {}
    for item in items:
        dim, _, values = item.partition("=")
        out[dim] = values.split(",")
    return out


def _clean(values: list[Any]) -> list[Any]:
    """JSON-safe numbers: NaN and None both become None."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def lookout(args: argparse.Namespace) -> dict[str, Any]:
    """Time the page's imports, its first-use imports, ``load_cube`` and ``weekly_view``;
    then gather the key numbers and the packages loaded."""
    t0 = time.time()
    import polars as pl

    from analytics.core import database
    from analytics.core.filters import Filters
    from analytics.metrics.weekly import weekly_view
    from analytics.sources.load import load_cube

    t1 = time.time()
    imported = set(sys.modules)
    for name in FIRST_USE:
        importlib.import_module(name)
    t_first = time.time()
    ready = set(sys.modules)
    dims = {k: tuple(v) for k, v in _filters(args.filter).items()}
    filters = Filters(start=args.start, end=args.end, **dims)
    engine = database.make_engine(args.database)
    cube = load_cube(engine, filters, loader=args.loader)
    t2 = time.time()
    view = weekly_view(cube, week=args.week)
    t3 = time.time()
    loaded = {
        "imports": [p for p in _packages(imported) if p in HEAVY],
        "first_use": list(FIRST_USE),
        "computing": sorted(set(_packages(set(sys.modules))) - set(_packages(ready))),
    }
    exposure = (
        cube.exposure.group_by(pl.col("day").dt.truncate("1w").alias("week"), "kind")
        .agg(pl.col("events").sum())
        .with_columns(pl.col("kind").cast(pl.String))
    )
    weeks = view.weekly["week"]
    backlog = view.backlog.group_by("week_end").agg(pl.col("open").sum()).sort("week_end")
    checks = {
        "weeks": [str(w) for w in weeks],
        "new_cases": view.weekly["new_cases"].to_list(),
        "active_accounts": view.weekly["exposure"].to_list(),
        "action_rate": _clean(view.weekly["action_rate"].to_list()),
        "backlog": backlog["open"].to_list(),
        "exposure": {
            kind: [
                int(exposure.filter(pl.col("week") == w, pl.col("kind") == kind)["events"].sum())
                for w in weeks
            ]
            for kind in ("booking_created", "review_posted", "message_sent")
        },
        "kpi_value": dict(zip(view.kpis["key"], _clean(view.kpis["value"].to_list()), strict=True)),
        "kpi_previous": dict(
            zip(view.kpis["key"], _clean(view.kpis["previous"].to_list()), strict=True)
        ),
    }
    return {
        "imports": t1 - t0,
        "first_use": t_first - t1,
        "load": t2 - t_first,
        "compute": t3 - t2,
        "done_at": t3,
        "load_parts": cube.timings,
        "cases": cube.cases.height,
        "loaded": loaded,
        "checks": checks,
    }


def pandas(args: argparse.Namespace) -> dict[str, Any]:
    """Time imports, reading and computing of the pandas version; then the key numbers."""
    t0 = time.time()
    from pathlib import Path

    from bench import pandas_trends as pt

    t1 = time.time()
    cases, events, as_of = pt.read_inputs(
        Path(args.snapshot), start=args.start, end=args.end, filters=_filters(args.filter)
    )
    t2 = time.time()
    page = pt.weekly_page(
        cases, events, start=args.start, end=args.end, week=args.week, as_of=as_of
    )
    t3 = time.time()
    weekly, kpis = page.weekly, page.kpis
    checks = {
        "weeks": [str(w.date()) for w in weekly.index],
        "new_cases": [int(v) for v in weekly["new_cases"]],
        "active_accounts": [int(v) for v in weekly["exposure"]],
        "action_rate": _clean([float(v) for v in weekly["action_rate"]]),
        "backlog": [int(v) for v in page.backlog.sum(axis=1)],
        "exposure": {kind: [int(v) for v in page.exposure[kind]] for kind in page.exposure},
        "kpi_value": dict(zip(kpis.index, _clean([float(v) for v in kpis["value"]]), strict=True)),
        "kpi_previous": dict(
            zip(kpis.index, _clean([float(v) for v in kpis["previous"]]), strict=True)
        ),
    }
    return {
        "imports": t1 - t0,
        "load": t2 - t1,
        "compute": t3 - t2,
        "done_at": t3,
        "cases": len(cases),
        "checks": checks,
    }


def warm(args: argparse.Namespace) -> dict[str, Any]:
    """Time the page behind ``st.cache_data``: first call, cached calls, recomputations."""
    import statistics

    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # quiet "No runtime found"
    import streamlit as st

    from analytics.core import database
    from analytics.core.filters import Filters
    from analytics.metrics.weekly import WeeklyView, weekly_view
    from analytics.sources.load import load_cube

    def compute(url: str, filters: Filters, week: date) -> WeeklyView:
        return weekly_view(load_cube(database.make_engine(url), filters), week=week)

    cached = st.cache_data(max_entries=8, show_spinner=False)(compute)
    dims = {k: tuple(v) for k, v in _filters(args.filter).items()}
    filters = Filters(start=args.start, end=args.end, **dims)

    def timed(fn: Any) -> float:
        start = time.perf_counter()
        fn(args.database, filters, args.week)
        return time.perf_counter() - start

    first = timed(cached)
    hits = [timed(cached) for _ in range(args.repeat)]
    misses = [timed(compute) for _ in range(3)]
    return {
        "first": first,
        "cached": statistics.median(hits),
        "cached_max": max(hits),
        "uncached": statistics.median(misses),
    }


def main() -> None:
    """Parse the arguments, run the mode and print its JSON report."""
    args = _parser().parse_args()
    report = {"lookout": lookout, "pandas": pandas, "warm": warm}[args.mode](args)
    spawned = os.environ.get("BENCH_SPAWNED_AT")
    report["startup"] = _STARTED - float(spawned) if spawned else None
    if spawned and "done_at" in report:  # process start to the last number of the page
        report["total"] = report["done_at"] - float(spawned)
    from bench.harness import peak_rss_mib

    report["peak_mib"] = peak_rss_mib()
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
