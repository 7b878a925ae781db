"""Weekly Trends page benchmarks: cold and warm page, snapshot refresh, PostgreSQL, pandas.

Targets (issue), on the large demo (1M accounts, 20.5M events, 1M cases):

- the page's full computation in a fresh process (stored data to every number on the
  page) within 3 s; warm (cached) within 200 ms;
- an incremental refresh after a day of new data within 10 s;
- the full snapshot build and the pushdown path on PostgreSQL measured and reported;
- the same computations written in pandas (:mod:`bench.pandas_trends`), run side by
  side: Lookout at least 5x faster.

The page is the last complete ISO week (2026-W47) of a 26-week window, for all data
and for one filter set. Fresh-process runs go through :mod:`bench.page`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select

from analytics.core import database
from analytics.core.models import Case, Event
from analytics.sources.snapshot import snapshot_dir, snapshot_is_fresh
from analytics.sources.snapshot_refresh import refresh
from bench import postgres
from bench.harness import Table, median, run_child, seconds

__all__ = ["PARTS", "SCENARIOS", "Scenario", "append_day", "differences", "run"]

#: The benchmarks of this module, in the order they run.
PARTS: tuple[str, ...] = ("cold", "pandas", "warm", "refresh", "postgres")
START, END, WEEK = date(2026, 5, 25), date(2026, 11, 22), date(2026, 11, 16)
COLD_TARGET, WARM_TARGET, REFRESH_TARGET, RATIO_TARGET = 3.0, 0.2, 10.0, 5.0


@dataclass(frozen=True)
class Scenario:
    """One filter set of the page."""

    label: str
    filters: dict[str, list[str]] = field(default_factory=dict)

    def args(self) -> list[str]:
        """Command-line arguments of :mod:`bench.page` for this page and filter set.

        >>> Scenario("FL", {"region": ["FL"]}).args()[-2:]
        ['--filter', 'region=FL']
        """
        out = ["--start", str(START), "--end", str(END), "--week", str(WEEK)]
        for dim, values in self.filters.items():
            out += ["--filter", f"{dim}={','.join(values)}"]
        return out


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("all data"),
    Scenario("fake_review in FL", {"category": ["fake_review"], "region": ["FL"]}),
)


@dataclass
class Runs:
    """Repeated fresh-process runs of one page computation."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)

    def add(self, module: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Run the child once more and keep its report and wall time."""
        report, wall = run_child(module, args, env=env)
        self.reports.append(report)
        self.walls.append(wall)

    def total(self) -> float:
        """Median time from spawning the process to the page's last number."""
        return self.part("total")

    def wall(self) -> float:
        """Median wall time from spawning the process to its exit."""
        return median(self.walls)

    def part(self, key: str) -> float:
        """Median of one part of the child's own breakdown."""
        return median(r[key] for r in self.reports)

    def checks(self) -> dict[str, Any]:
        """The key numbers of the first run."""
        return dict(self.reports[0]["checks"])


def _met(value: float, target: float, *, at_least: bool = False) -> str:
    """Whether a measurement meets its target (at most, or ``at_least``)."""
    return "yes" if (value >= target if at_least else value <= target) else "**no**"


def differences(ours: Any, theirs: Any, *, path: str = "") -> list[str]:
    """Where two reports of key numbers differ (floats to 1e-9 relative).

    >>> differences({"a": [1, 2.0], "b": {"c": None}}, {"a": [1, 2.0 + 1e-12], "b": {"c": None}})
    []
    >>> differences({"a": [1, 2], "b": {"c": 1}}, {"a": [1, 3], "b": {"c": 1.5}})
    ['a[1]: 2 != 3', 'b.c: 1 != 1.5']
    """
    if isinstance(ours, dict) and isinstance(theirs, dict):
        prefix = f"{path}." if path else ""
        out = [f"{prefix}{k}: missing" for k in ours.keys() ^ theirs.keys()]
        for key in ours.keys() & theirs.keys():
            out += differences(ours[key], theirs[key], path=f"{prefix}{key}")
        return sorted(out)
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} values != {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for d in differences(a, b, path=f"{path}[{i}]")]  # fmt: skip
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        if math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12):
            return []
    elif ours == theirs:
        return []
    return [f"{path}: {ours} != {theirs}"]


def _agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    diff = differences(ours, theirs)
    if not diff:
        weeks = len(ours.get("weeks", []))
        return f"equal ({weeks} weeks; cases, accounts, exposures, rates, backlog, KPIs)"
    return f"**DIFFER** ({len(diff)}): " + "; ".join(diff[:3])


# --------------------------------------------------------------------------- cold + pandas


def _ensure_snapshot(url: str) -> str:
    """Bring the snapshot up to date before timing, so no cold run includes a rebuild."""
    engine = database.make_engine(url)
    try:
        if snapshot_is_fresh(engine):
            return "The snapshot was up to date before the runs."
        summary = refresh(engine)
        return f"The snapshot was refreshed before the runs (untimed): {summary.describe()}."
    finally:
        engine.dispose()


def cold_and_pandas(
    url: str, *, repeat: int, pandas: bool
) -> tuple[Table, Table | None, dict[str, dict[str, Any]], list[str]]:
    """The page in fresh processes, Lookout (and pandas, interleaved run by run).

    Returns the cold table, the comparison table (None without pandas), Lookout's key
    numbers per scenario and the mismatches found.
    """
    note = _ensure_snapshot(url)
    engine = database.make_engine(url)
    folder = str(snapshot_dir(engine))
    engine.dispose()
    cold = Table(
        f"Weekly Trends page, cold (fresh process, snapshot loader, {_name(url)})",
        ("filters", "total s", "start-up", "imports", "first-use imports", "load", "compute",
         "to exit s", "peak RSS MiB", f"≤ {COLD_TARGET:.0f} s"),
    )  # fmt: skip
    cold.notes += [
        f"Median of {repeat} fresh processes (`python -m bench.page lookout`). Total: from"
        " spawning the process to the page's last number (start-up + imports + first-use"
        " imports + load + compute); to exit: wall time until the process has exited (adds"
        " teardown and gathering the numbers compared below). Each part is the median of its"
        " own. Imports: the page's modules; first-use imports: what its computation imports"
        " when first called (named below), timed apart.",
        f"Page: week {WEEK} of the window {START}..{END} (26 weeks): KPIs with tests, weekly"
        " series, daily volume, categories, SLA, backlog, durations, prevalence, movers.",
        note,
    ]
    versus = Table(
        "Weekly Trends page, Lookout vs pandas (fresh process each, same snapshot files)",
        ("filters", "Lookout s", "pandas s", "pandas read", "pandas compute",
         "pandas / Lookout", "excl. start-up+imports", f"≥ {RATIO_TARGET:.0f}x", "numbers"),
    )  # fmt: skip
    versus.notes += [
        f"Median of {repeat} runs each, interleaved; times from spawning the process to the"
        " page's last number. pandas reads the raw event parts"
        " (time filter pushed into `read_parquet`) and cases.parquet, not the exposure cube.",
        "The last column compares weeks, new cases, active accounts, exposures per kind,"
        " action rate and backlog per week, and every KPI's value and previous value.",
    ]
    numbers: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for scenario in SCENARIOS:
        ours, theirs = Runs(), Runs()
        for _ in range(repeat):
            ours.add("bench.page", ["lookout", "--database", url, *scenario.args()])
            if pandas:
                theirs.add("bench.page", ["pandas", "--snapshot", folder, *scenario.args()])
        total = ours.total()
        cold.add(
            scenario.label,
            seconds(total),
            seconds(ours.part("startup")),
            seconds(ours.part("imports")),
            seconds(ours.part("first_use")),
            seconds(ours.part("load")),
            seconds(ours.part("compute")),
            seconds(ours.wall()),
            f"{ours.part('peak_mib'):.0f}",
            _met(total, COLD_TARGET),
        )
        numbers[scenario.label] = ours.checks()
        if scenario is SCENARIOS[0]:
            cold.notes.append(_loaded(ours.reports[0]["loaded"]))
        if not pandas:
            continue
        inner = ours.part("load") + ours.part("compute")
        inner_pd = theirs.part("load") + theirs.part("compute")
        agreement = _agreement(ours.checks(), theirs.checks())
        if agreement.startswith("**DIFFER"):
            problems.append(f"pandas vs Lookout, {scenario.label}: {agreement}")
        versus.add(
            scenario.label,
            seconds(total),
            seconds(theirs.total()),
            seconds(theirs.part("load")),
            seconds(theirs.part("compute")),
            f"{theirs.total() / total:.1f}x",
            f"{inner_pd / inner:.1f}x",
            _met(theirs.total() / total, RATIO_TARGET, at_least=True),
            agreement,
        )
    return cold, (versus if pandas else None), numbers, problems


def _loaded(loaded: dict[str, list[str]]) -> str:
    """A note naming the heavy packages loaded by the page's imports, its first-use
    imports, and any package first loaded while loading and computing.

    >>> _loaded({"imports": ["numpy", "polars"], "first_use": ["scipy.stats"], "computing": []})
    'Loaded by the imports: numpy, polars; first use: scipy.stats; first loaded while loading and computing: none.'
    """  # noqa: E501
    return (
        f"Loaded by the imports: {', '.join(loaded['imports'])}; first use:"
        f" {', '.join(loaded['first_use'])}; first loaded while loading and computing:"
        f" {', '.join(loaded['computing']) or 'none'}."
    )


def _name(url: str) -> str:
    if url.startswith("sqlite"):
        return "SQLite " + Path(url.split("///", 1)[-1]).name
    return "PostgreSQL " + url.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- warm


def warm(url: str) -> Table:
    """The page behind ``st.cache_data`` in one process: first call, then cached calls."""
    table = Table(
        f"Weekly Trends page, warm (one process, {_name(url)})",
        ("filters", "first call s", "cached call ms (median)", "cached ms (max)",
         "uncached recompute s", f"≤ {WARM_TARGET * 1000:.0f} ms"),
    )  # fmt: skip
    table.notes.append(
        "`load_cube` + `weekly_view` wrapped in `st.cache_data` (bare mode, memory cache);"
        " cached: median and max of 7 calls after the first; uncached: the same work again"
        " without the cache in the warm process (median of 3)."
    )
    for scenario in SCENARIOS:
        report, _ = run_child("bench.page", ["warm", "--database", url, *scenario.args()])
        table.add(
            scenario.label,
            seconds(report["first"]),
            f"{report['cached'] * 1000:.1f}",
            f"{report['cached_max'] * 1000:.1f}",
            seconds(report["uncached"]),
            _met(report["cached"], WARM_TARGET),
        )
    return table


# --------------------------------------------------------------------------- refresh


def _shift(frame: pl.DataFrame, columns: Sequence[str], id_start: int) -> pl.DataFrame:
    """A copy one day later with new ids from ``id_start`` on (all-null columns as text)."""
    return frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null]
    ).with_columns(
        pl.int_range(id_start, id_start + frame.height, dtype=pl.Int64).alias("id"),
        *[pl.col(c).cast(pl.Datetime("us")) + timedelta(days=1) for c in columns],
    )


def append_day(engine: Any) -> tuple[int, int, date]:
    """Append a copy of the last day's events and cases, one day later, with new ids.

    Bumps the data version (events appended, not rewritten). Returns the events and
    cases added and the new day.
    """
    with engine.connect() as conn:
        last = conn.execute(select(func.max(Event.ts))).scalar_one()
        top_event = conn.execute(select(func.max(Event.id))).scalar_one()
        top_case = conn.execute(select(func.max(Case.id))).scalar_one()
    if isinstance(last, str):
        last = datetime.fromisoformat(last)
    day = datetime.combine(last.date(), datetime.min.time())
    events = pl.read_database(
        select(*Event.__table__.columns).where(Event.ts >= day), engine, infer_schema_length=None
    )
    cases = pl.read_database(
        select(*Case.__table__.columns).where(Case.opened_at >= day),
        engine,
        infer_schema_length=None,
    )
    stamps = ("opened_at", "first_response_at", "resolved_at", "appealed_at")
    new_events = _shift(events, ["ts"], top_event + 1)
    new_cases = _shift(cases, stamps, top_case + 1)
    database.bulk_append(engine, "events", new_events)
    database.bulk_append(engine, "cases", new_cases)
    database.bump_data_version(engine, events_rewritten=False)
    return new_events.height, new_cases.height, day.date() + timedelta(days=1)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def refresh_on_copy(source: Path) -> tuple[Table, list[str]]:
    """Full snapshot build, then an incremental refresh after a day, on a copy of ``source``.

    The copy (``bench_<name>_copy.db`` next to ``source``) and its snapshot folder are
    deleted afterwards.
    """
    copy = source.with_name(f"bench_{source.stem}_copy.db")
    table = Table(
        f"Snapshot refresh (SQLite, copy of {source.name})",
        ("step", "seconds", "mode", "rows", "target"),
    )
    problems: list[str] = []
    start = time.perf_counter()
    shutil.copyfile(source, copy)
    copied = time.perf_counter() - start
    engine = database.make_engine(f"sqlite:///{copy}")
    folder = snapshot_dir(engine)
    try:
        full = refresh(engine)
        table.add("full snapshot build", seconds(full.seconds, 1), full.mode,
                  f"{full.events:,} events, {full.cases:,} cases", "reported")  # fmt: skip
        start = time.perf_counter()
        n_events, n_cases, day = append_day(engine)
        appended = time.perf_counter() - start
        table.add(f"append one day ({day}) via `bulk_append`", seconds(appended, 1), "–",
                  f"{n_events:,} events, {n_cases:,} cases", "–")  # fmt: skip
        inc = refresh(engine)
        ok = inc.mode == "incremental" and inc.new_events == n_events
        table.add("incremental refresh", seconds(inc.seconds, 1), inc.mode,
                  f"{inc.new_events:,} new events", _met(inc.seconds, REFRESH_TARGET)
                  + ("" if ok else " (**not incremental**)"))  # fmt: skip
        if not ok:
            problems.append(f"refresh after one day: {inc.describe()}")
        last_day = pl.read_parquet(folder / "exposure.parquet")["day"].max()
        days = str(last_day)
        if last_day != day:
            problems.append(f"exposure cube ends {days}, not on the new day {day}")
        table.notes.append(
            f"Copy of the file: {copied:.1f} s (untimed). Then `refresh` (full), one day of"
            " events and cases appended (the last day's rows shifted by a day, new ids) and"
            " `bump_data_version(events_rewritten=False)`, then `refresh` again (incremental)."
            f" The exposure cube then ends on {days}."
        )
    finally:
        engine.dispose()
        _remove(copy)
        shutil.rmtree(folder, ignore_errors=True)
    return table, problems


# --------------------------------------------------------------------------- PostgreSQL


def on_postgres(
    admin_url: str,
    sqlite_url: str,
    *,
    repeat: int,
    expected: dict[str, dict[str, Any]],
) -> tuple[Table, list[str]]:
    """Snapshot build and pushdown page on PostgreSQL; pushdown on SQLite for reference.

    ``expected`` holds the snapshot loader's key numbers per scenario (may be empty);
    every other path must reproduce them.
    """
    url = postgres.ensure_database(admin_url, "lookout_bench")
    seeded = postgres.ensure_seeded(url, "large")
    table = Table(
        "PostgreSQL: snapshot build and pushdown (large demo)",
        (
            "database",
            "step",
            "filters",
            "total s",
            "load",
            "exposure / active / cases",
            "compute",
            "runs",
            "numbers",
        ),  # fmt: skip
    )
    if seeded is not None:
        table.add(_name(url), "seed the large demo (setup)", "–", seconds(seeded, 0),
                  "–", "–", "–", 1, "–")  # fmt: skip
    problems: list[str] = []
    engine = database.make_engine(url)
    with tempfile.TemporaryDirectory(prefix="lookout-bench-") as root:
        summary = refresh(engine, full=True, root=Path(root))
        engine.dispose()
        table.add(_name(url), "full snapshot build (connectorx)", "–",
                  seconds(summary.seconds, 1), "–", "–", "–", 1,
                  f"{summary.events:,} events, {summary.cases:,} cases")  # fmt: skip
        plans: list[tuple[str, str, int, dict[str, str] | None]] = [
            (url, "pushdown", repeat, None),
            (url, "snapshot", repeat, {"LOOKOUT_SNAPSHOT_DIR": root}),
            (sqlite_url, "pushdown", 1, None),
        ]
        for target, loader, runs, env in plans:
            for scenario in SCENARIOS:
                page = Runs()
                args = ["lookout", "--database", target, "--loader", loader, *scenario.args()]
                for _ in range(runs):
                    page.add("bench.page", args, env=env)
                want = expected.get(scenario.label)
                agreement = _agreement(want, page.checks()) if want else "–"
                if agreement.startswith("**DIFFER"):
                    problems.append(f"{_name(target)} {loader} {scenario.label}: {agreement}")
                step = f"cold page, {loader} loader" + (
                    " (from PG)" if loader == "snapshot" else ""
                )
                parts = " / ".join(
                    seconds(median(r["load_parts"][k] for r in page.reports))
                    for k in ("exposure", "active", "cases")
                )
                table.add(_name(target), step, scenario.label, seconds(page.total()),
                          seconds(page.part("load")), parts, seconds(page.part("compute")),
                          runs, agreement)  # fmt: skip
    table.notes += [
        "Pushdown: filters and the first aggregation run in the database (SQLAlchemy Core);"
        " total runs from spawning a fresh process to the page's last number (median).",
        "Numbers: compared with the snapshot loader on the SQLite file (same demo data).",
    ]
    return table, problems


# --------------------------------------------------------------------------- all


def run(
    parts: Sequence[str], *, sqlite_url: str, postgres_url: str | None, repeat: int
) -> tuple[list[Table], list[str]]:
    """Run the chosen parts of :data:`PARTS`; the tables and any problems found."""
    tables: list[Table] = []
    problems: list[str] = []
    numbers: dict[str, dict[str, Any]] = {}
    if "cold" in parts or "pandas" in parts:
        cold, versus, numbers, found = cold_and_pandas(
            sqlite_url, repeat=repeat, pandas="pandas" in parts
        )
        tables += [cold] if versus is None else [cold, versus]
        problems += found
    if "warm" in parts:
        tables.append(warm(sqlite_url))
    if "refresh" in parts:
        path = database.sqlite_path(database.make_engine(sqlite_url))
        if path is None:
            raise ValueError("the refresh benchmark needs a SQLite file")
        table, found = refresh_on_copy(Path(path))
        tables.append(table)
        problems += found
    if "postgres" in parts and postgres_url:
        table, found = on_postgres(postgres_url, sqlite_url, repeat=repeat, expected=numbers)
        tables.append(table)
        problems += found
    return tables, problems
