"""The ``python -m analytics`` command line.

Every command reports bad input as a one-line message on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import suppress
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine

from analytics.core import database, models
from analytics.core.models import Role
from analytics.sources import (
    ingest,
    ingest_checks,
    load,
    mapped,
    snapshot_refresh,
    sourcemap,
    warehouse,
)

__all__ = ["app", "main", "fail"]

app = typer.Typer(
    name="analytics",
    help="Lookout: Trust & Safety trend analytics. Database set-up, demo data, import.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Lookout: Trust & Safety trend analytics. The database URL comes from LOOKOUT_DATABASE_URL."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("init-db")
def init_db_cmd() -> None:
    """Create the schema in the configured database (idempotent)."""
    url = database.database_url()
    try:
        created = models.init_db(database.make_engine(url))
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(
            f"cannot initialise {database.safe_url(url)}: {type(exc).__name__}: {_first_line(exc)}"
        )
    if created:
        typer.echo(f"created tables: {', '.join(created)} in {database.safe_url(url)}")
    else:
        typer.echo(f"schema up to date in {database.safe_url(url)}")


class ScaleName(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"


@app.command()
def seed(
    scale: Annotated[ScaleName, typer.Option(help="Data volume.")] = ScaleName.medium,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and end, same data.")] = 7,
    days: Annotated[int, typer.Option(help="Days of history.", min=1)] = 730,
    end: Annotated[
        str | None, typer.Option(help="The window ends at the start of this date (YYYY-MM-DD).")
    ] = None,
    manifest: Annotated[
        Path, typer.Option(help="Where to write the ground-truth manifest (JSON).")
    ] = database.PROJECT_ROOT / "data" / "ground_truth.json",
    force: Annotated[bool, typer.Option(help="Replace data that is not demo data.")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only seed when the database has no data.")
    ] = False,
) -> None:
    """Fill the database with realistic demo data and its ground-truth manifest."""
    from analytics import demo

    end_date = _parse_date(end) if end else None
    if os.environ.get(mapped.MAP_VARIABLE, "").strip():
        if not if_empty:
            fail(
                f"{mapped.MAP_VARIABLE} is set: Lookout's data comes from the team's database "
                "through the map (python -m analytics sources sync); unset it to seed the demo"
            )
        typer.echo(f"{mapped.MAP_VARIABLE} is set: copying through the map, not seeding the demo")
        sources_sync(map_file=None, url=None, full=False, quarantine_dir=None)
        return
    url = database.database_url()
    engine = _engine_or_fail(url)
    if if_empty and demo.database_state(engine) != "empty":
        typer.echo(f"{database.safe_url(url)} already holds data; not seeding.")
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("generating", total=None)

        def step(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        try:
            truth = demo.seed_database(
                engine,
                scale=scale.value,
                seed=seed,
                days=days,
                end=end_date,
                force=force,
                progress=step,
            )
        except (demo.SeedRefused, ValueError) as exc:
            fail(str(exc))
    try:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(truth, indent=1))
    except OSError as exc:
        fail(f"cannot write manifest {manifest}: {exc.strerror or exc}")
    rows = truth["dataset"]["rows"]
    typer.echo(
        f"seeded {scale.value} demo into {database.safe_url(url)}: "
        + ", ".join(f"{n:,} {t}" for t, n in rows.items())
        + f"; manifest {manifest}"
    )
    _refresh_snapshot(engine)
    _load_warehouse(engine)


@app.command("example-helpdesk")
def example_helpdesk(
    out_dir: Annotated[
        Path, typer.Option(help="Where to write helpdesk.db and helpdesk.toml.")
    ] = database.PROJECT_ROOT / "data" / "helpdesk",
    end: Annotated[
        str | None, typer.Option(help="The demo ends at the start of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Write a team's own database to try a source map on: the small demo in a helpdesk's
    tables (tickets, activity, users) and words, and the map that reads it."""
    from analytics.demo import helpdesk

    end_date = _parse_date(end) if end else None
    try:
        team, smap, own = helpdesk.write_example(out_dir, end=end_date)
    except (FileExistsError, OSError) as exc:
        fail(str(exc) if isinstance(exc, FileExistsError) else f"cannot write {out_dir}: {exc}")
    typer.echo(
        f"wrote {team} (tickets, activity, users), its map {smap} and {own}, a map that "
        "keeps the helpdesk's own categories and priorities"
    )


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--end: {text!r} is not a date (YYYY-MM-DD)")


def _engine_or_fail(url: str) -> Engine:
    try:
        engine = database.make_engine(url)
        models.init_db(engine)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(f"cannot open {database.safe_url(url)}: {type(exc).__name__}: {_first_line(exc)}")
    return engine


@app.command("import")
def import_cmd(
    table: Annotated[
        str, typer.Argument(help="accounts, events, cases, case_actions or annotations.")
    ],
    file: Annotated[
        Path, typer.Argument(help="A .csv or .parquet file, columns named as in the table.")
    ],
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Where to write rejected rows (default: FILE with .quarantine.csv)."),
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="A source map: FILE is another tool's export, read through the map's "
            "TABLE entity (its expressions are SQLite's).",
        ),
    ] = None,
) -> None:
    """Upsert rows from a CSV or Parquet file by id; rejected rows go to a quarantine CSV."""
    smap = _load_map_or_exit(map_file) if map_file is not None else None
    engine = _engine_or_fail(database.database_url())
    try:
        if smap is None:
            summary = ingest.import_file(engine, table, file, quarantine=quarantine)
        else:
            summary = mapped.import_mapped(engine, table, file, smap, quarantine=quarantine)
    except ingest_checks.ImportRejected as exc:
        fail(str(exc))
    typer.echo(summary.describe())
    if summary.inserted or summary.updated:
        _refresh_after_import(engine)
    engine.dispose()


def _refresh_after_import(engine: Engine, *, then_load: bool = True) -> None:
    """Refresh the snapshot after an import; a failure is a warning, the rows are in.
    Then (``then_load``) load the warehouse when one is set."""
    if load.loader_for(engine) != "snapshot":
        if then_load:
            _load_warehouse(engine)
        return
    try:
        typer.echo(snapshot_refresh.refresh(engine).describe())
    except Exception as exc:  # noqa: BLE001 - the import succeeded: warn in one line
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        typer.echo(
            f"warning: the rows were imported, but refreshing the Parquet snapshot failed "
            f"({type(exc).__name__}: {reason[:200]}); it will be rebuilt on the next read, "
            "or run `python -m analytics refresh --full`",
            err=True,
        )
    if then_load:
        _load_warehouse(engine)


@app.command()
def refresh(
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild the snapshot from scratch.")
    ] = False,
) -> None:
    """Bring the Parquet snapshot of the configured database up to date."""
    engine = _engine_or_fail(database.database_url())
    try:
        summary = snapshot_refresh.refresh(engine, full=full)
    except OSError as exc:
        fail(f"cannot write the snapshot: {exc.strerror or exc}")
    typer.echo(summary.describe())


@app.command()
def evaluate() -> None:
    """Score the anomaly scan against the demo's injected scenarios (the manifest)."""
    from analytics.demo import evaluation
    from analytics.views import anomalies

    engine = _engine_or_fail(database.database_url())
    truth = database.get_meta(engine, "ground_truth")
    if not truth:
        fail("this database has no ground truth: seed the demo first (python -m analytics seed)")
    start = date.fromisoformat(truth["dataset"]["window_start"][:10])
    end = date.fromisoformat(truth["dataset"]["end"])
    incidents = anomalies.scan_history(engine, start=start, end=end)
    matched = evaluation.match_scenarios(incidents, truth["scenarios"])
    days = (end - start).days - evaluation.WARM_UP_DAYS
    table, summary = evaluation.scenario_table(matched, truth["scenarios"], days=days)
    typer.echo(f"Slice scan over {(end - start).days} days ({start} to {end}):")
    typer.echo("| scenario | ok | result |\n| --- | --- | --- |")
    for row in table.iter_rows(named=True):
        typer.echo(f"| {row['scenario']} | {'yes' if row['ok'] else 'NO'} | {row['result']} |")
    typer.echo(
        f"alerted incidents {summary['alerts']:.0f}; precision {summary['precision']:.2f}; "
        f"recall {summary['recall']:.2f}; unexplained false alerts {summary['false_alerts']:.0f} "
        f"({summary['false_per_90_days']:.1f} per 90 days; target at most 5); "
        f"aggregates moved by a scenario {summary['echo_alerts']:.0f}"
    )
    typer.echo("\nAccount scoring (precision@50; target at least 0.8 for ring and takeover):")
    typer.echo("| accounts | in truth | precision@50 |\n| --- | --- | --- |")
    for row in evaluation.account_table(engine, truth["scenarios"]).iter_rows(named=True):
        typer.echo(f"| {row['accounts']} | {row['truth']} | {row['precision']:.2f} |")
    _echo_emerging(*evaluation.emerging_replay(engine, truth["scenarios"]))
    typer.echo(
        "\nRings of linked accounts (14-day window; flagged = growing; target: recovered "
        "at least 0.9 while the ring grows):"
    )
    typer.echo(
        "| as of | moment | rings | flagged | recovered | best ring size | purity "
        "| in one ring (flagged or not) | false flagged |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for row in evaluation.ring_recovery(engine, truth["scenarios"]).iter_rows(named=True):
        purity = "-" if row["purity"] is None else f"{row['purity']:.2f}"
        typer.echo(
            f"| {row['as_of']:%Y-%m-%d} | {row['moment']} | {row['rings']} | {row['flagged']} "
            f"| {row['recovered']:.2f} | {row['best_size'] or '-'} | {purity} "
            f"| {row['found_in_one']:.2f} | {row['false_flagged']} |"
        )


@app.command()
def report(
    week: Annotated[str | None, typer.Option(help="The ISO week, e.g. 2026-W47.")] = None,
    audience: Annotated[
        str | None,
        typer.Option(
            help="leadership (every number with its test) or product (aggregates only, "
            "counts below 10 suppressed)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="The file to write.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="html (one self-contained file) or md (Markdown).")
    ] = "html",
    note: Annotated[
        str | None, typer.Option(help="A line of context shown at the top of the brief.")
    ] = None,
) -> None:
    """Write the weekly brief of a week: headline KPIs, movers, anomalies, emerging threats,
    SLA and backlog, known events."""
    from analytics import reports
    from analytics.core.calendar import parse_week

    if not week:
        fail("--week is required: an ISO week such as 2026-W47")
    try:
        monday = parse_week(week)
    except ValueError as exc:
        fail(f"--week: {exc}")
    if audience not in reports.AUDIENCES:
        given = "is required" if not audience else f"{audience[:20]!r} is unknown"
        fail(f"--audience {given}: choose {' or '.join(reports.AUDIENCES)}")
    if fmt not in ("html", "md"):
        fail(f"--format {fmt[:20]!r} is unknown: choose html or md")
    if out is None:
        fail("--out is required: the file to write")
    _check_writable(out)
    url = database.database_url()
    engine = _engine_or_fail(url)
    try:
        brief = reports.build_brief(
            engine,
            week=monday,
            audience=cast(reports.Audience, audience),
            note=note,
            role=Role.admin,  # the operator at the server's console
        )
    except Exception as exc:  # noqa: BLE001 - reported as one line
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        fail(f"cannot build the brief from {database.safe_url(url)}: {reason}")
    text = reports.render_html(brief) if fmt == "html" else reports.render_markdown(brief)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    engine.dispose()
    empty = "" if brief.has_data else " (no data for that week)"
    typer.echo(
        f"wrote the {audience} brief for {brief.label}{empty} to {out} "
        f"({fmt}, {len(text.encode()):,} bytes) from {database.safe_url(url)}"
    )


def _check_writable(path: Path) -> None:
    """Fail early, before the brief is computed, when ``path`` cannot be written."""
    if path.is_dir():
        fail(f"cannot write {path}: it is a folder; give a file name")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        fail(f"cannot write {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        fail(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"cannot write {path}: permission denied")


def _echo_emerging(table: Any, summary: dict[str, Any]) -> None:
    """The narrative-cluster part of ``evaluate``."""
    typer.echo("\nEmerging narrative clusters, replayed day by day around the new scam:")
    day, share, end = summary["detection_day"], summary["share"], summary["share_at_end"]
    typer.echo("| measure | value | target |\n| --- | --- | --- |")
    typer.echo(f"| days from the scam's start to its cluster flagged | {day} | at most 7 |")
    shown = "-" if share is None else f"{share:.0%}"
    typer.echo(f"| share of its cases so far in that cluster | {shown} | at least 80% |")
    shown = "-" if end is None else f"{end:.0%}"
    typer.echo(f"| share of all its cases in one cluster on its last day | {shown} | |")
    unmatched = summary["unmatched"]
    typer.echo(f"| emerging clusters matching no scenario (cluster-days) | {unmatched} | report |")
    if summary["unmatched"]:
        for row in table.filter(table["scenario"].is_null()).iter_rows(named=True):
            terms = ", ".join(row["top_terms"])
            typer.echo(f"  {row['as_of']:%Y-%m-%d}: {row['recent_count']} recent cases ({terms})")


def _refresh_snapshot(engine: Engine) -> None:
    """After seed and import: refresh the snapshot when the database is read through one."""
    if load.loader_for(engine) != "snapshot":
        return
    try:
        typer.echo(snapshot_refresh.refresh(engine).describe())
    except OSError as exc:
        fail(f"data written, but the snapshot could not be refreshed: {exc.strerror or exc}")


def _load_warehouse(engine: Engine) -> None:
    """After seed and import: load the warehouse when ``LOOKOUT_WAREHOUSE_URL`` is set,
    from the snapshot (refreshed first for SQLite) or the database. A failure is one line
    and exit status 1: the data is written, the warehouse is behind."""
    failed = _warehouse_failure(engine)
    if failed is not None:
        fail(failed, code=1)


def _warehouse_failure(engine: Engine) -> str | None:
    """Load the warehouse when one is set (its summary on stdout); None, or why it failed
    as one line."""
    url = warehouse.warehouse_url()
    if url is None:
        return None
    try:
        wh = warehouse.warehouse_engine(url)
        if engine.dialect.name == "sqlite" and load.loader_for(engine) != "snapshot":
            with suppress(Exception):  # then the load reads the database instead
                snapshot_refresh.refresh(engine)
        typer.echo(warehouse.load(engine, wh).describe())
    except Exception as exc:  # noqa: BLE001 - the data is written: say so in one line
        return (
            f"data written, but loading the warehouse failed ({_first_line(exc)[:300]}); "
            "run `python -m analytics warehouse load`"
        )
    return None


#: Lookout's ``dataset_meta`` key set while a copy's rows are not in the warehouse yet.
_WAREHOUSE_BEHIND = "source_sync_warehouse_behind"


def _warehouse_after_copy(engine: Engine, summaries: list[mapped.SyncSummary]) -> str | None:
    """After a copy through a source map, with ``LOOKOUT_WAREHOUSE_URL`` set: load the
    warehouse when the copy brought rows (inserted or updated), or when the load after an
    earlier copy failed (the warehouse is still behind). None, or why it failed (one line);
    the next copy loads again."""
    if warehouse.warehouse_url() is None:
        return None
    brought = any(s.imported.inserted or s.imported.updated for s in summaries)
    if not brought and not database.get_meta(engine, _WAREHOUSE_BEHIND):
        return None
    database.set_meta(engine, _WAREHOUSE_BEHIND, True)
    failed = _warehouse_failure(engine)
    if failed is None:
        database.set_meta(engine, _WAREHOUSE_BEHIND, False)
    return failed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


warehouse_app = typer.Typer(
    help="The ClickHouse warehouse of LOOKOUT_WAREHOUSE_URL: create its tables, load it.",
    no_args_is_help=True,
)
app.add_typer(warehouse_app, name="warehouse")


def _warehouse_or_fail() -> Engine:
    url = warehouse.warehouse_url()
    if url is None:
        fail(
            "LOOKOUT_WAREHOUSE_URL is not set (clickhousedb://user:pw@host:8123/db, or "
            "clickhousedb://?interface=chdb&path=/abs/dir)"
        )
    try:
        return warehouse.warehouse_engine(url)
    except warehouse.WarehouseError as exc:
        fail(str(exc))


@warehouse_app.command("init")
def warehouse_init() -> None:
    """Create the warehouse's tables (idempotent)."""
    wh = _warehouse_or_fail()
    try:
        tables = warehouse.init_warehouse(wh)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    typer.echo(f"warehouse {wh.url.render_as_string(hide_password=True)}: {', '.join(tables)}")


@warehouse_app.command("load")
def warehouse_load(
    full: Annotated[bool, typer.Option("--full", help="Reload the events whole.")] = False,
) -> None:
    """Copy accounts and cases, and the new events, from Lookout's database into the warehouse."""
    wh = _warehouse_or_fail()
    engine = _engine_or_fail(database.database_url())
    try:
        summary = warehouse.load(engine, wh, full=full)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(f"loading the warehouse failed: {type(exc).__name__}: {_first_line(exc)[:300]}")
    typer.echo(summary.describe())


users_app = typer.Typer(help="Local accounts: add, remove, list, set-role.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _password(given: str | None) -> str | None:
    """The password: from --password-stdin's line, else asked twice at the terminal."""
    if given is not None:
        return given
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        fail("the two passwords differ")
    return str(first)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (an email for the identity provider).")],
    role: Annotated[str, typer.Option("--role", help="admin, leadership, associate or product.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    oidc: Annotated[
        bool, typer.Option("--oidc", help="No password: signs in through the identity provider.")
    ] = False,
) -> None:
    """Add a user (the password is hashed with argon2id; never echoed or logged)."""
    from analytics import access

    try:
        access.role_of(role)
    except ValueError as exc:
        fail(str(exc))
    password = None
    if not oidc:
        password = _password(sys.stdin.readline().rstrip("\n") if password_stdin else None)
    engine = _engine_or_fail(database.database_url())
    try:
        access.add_user(engine, name, role, password)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"added {name!r} as {role}")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a user (their audit rows stay)."""
    from analytics import access

    try:
        access.remove_user(_engine_or_fail(database.database_url()), name)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"removed {name!r}")


@users_app.command("set-role")
def users_set_role(
    name: Annotated[str, typer.Argument()], role: Annotated[str, typer.Argument()]
) -> None:
    """Change a user's role."""
    from analytics import access

    try:
        access.set_role(_engine_or_fail(database.database_url()), name, role)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"{name!r} is now {role}")


@users_app.command("list")
def users_list() -> None:
    """List users: name, role, how they sign in, lock state (never hashes)."""
    from analytics import access

    users = access.list_users(_engine_or_fail(database.database_url()), Role.admin)
    if users.is_empty():
        typer.echo("no users yet: add one with `python -m analytics users add NAME --role ROLE`")
        return
    for row in users.iter_rows(named=True):
        locked = (
            f", locked until {row['locked_until']:%Y-%m-%d %H:%M}" if row["locked_until"] else ""
        )
        typer.echo(f"{row['name']}\t{row['role']}\t{row['sign_in']}{locked}")


@app.command()
def watch(
    every: Annotated[
        str | None,
        typer.Option(help="Loop: one pass every interval (30s, 15m, 1h); default one pass."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Lookout's address for the links in messages (default LOOKOUT_BASE_URL, "
            "else http://localhost:8501).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds a delivery may wait for its receiver.", min=0.1)
    ] = 10.0,
) -> None:
    """Score the newest data, store incidents, queue and send their messages (one pass:
    exit 0 when everything due was delivered or nothing was due; --every loops)."""
    import time

    from analytics.alerts import watch as watching

    try:
        interval = watching.parse_every(every) if every is not None else None
    except ValueError as exc:
        fail(str(exc))
    link = (base_url or watching.base_url()).rstrip("/")
    if not link.startswith(("http://", "https://")):
        fail(f"--base-url is an http:// or https:// address, not {link[:40]!r}")
    engine = _engine_or_fail(database.database_url())
    while True:
        code = _watch_pass(engine, base_url=link, timeout_s=timeout)
        if interval is None:
            raise typer.Exit(code)
        time.sleep(interval.total_seconds())


def _copy_first(engine: Engine) -> int:
    """With ``LOOKOUT_SOURCE_MAP`` set, copy the team's new rows before a watch pass scores
    them (its summary on stdout), then load the warehouse when one is set and the copy
    brought rows; 0, or 1 with a one-line reason (the pass is skipped)."""
    try:
        smap = mapped.active_map()
        if smap is None:
            return 0
        source = sourcemap.connect(mapped.source_url(smap), timeout_s=sourcemap.COPY_TIMEOUT_S)
        try:
            summaries = mapped.sync(engine, smap, source)
            for summary in summaries:
                typer.echo(summary.describe())
        finally:
            source.dispose()
    except (sourcemap.MapError, ingest_checks.ImportRejected) as exc:
        typer.echo(f"error: the copy through the source map failed: {exc}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - reported as one line
        typer.echo(
            f"error: the copy through the source map failed: {type(exc).__name__}: "
            f"{_first_line(exc)}",
            err=True,
        )
        return 1
    failed = _warehouse_after_copy(engine, summaries)
    if failed is not None:  # the pass would score the warehouse's stale rows
        typer.echo(f"error: {failed}", err=True)
        return 1
    return 0


def _watch_pass(engine: Engine, *, base_url: str, timeout_s: float) -> int:
    """One pass of ``watch``: its summary on stdout; 0, or 1 with a one-line reason."""
    from analytics.alerts import watch as watching

    copied = _copy_first(engine)
    if copied:
        return copied
    try:
        report = watching.run_once(engine, base_url=base_url, timeout_s=timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        typer.echo(f"error: the pass stopped: {type(exc).__name__}: {_first_line(exc)}", err=True)
        return 1
    typer.echo(report.summary())
    if report.failed:
        typer.echo(
            f"error: {report.failed} message(s) failed for good (their reasons are on the "
            "Admin page)",
            err=True,
        )
        return 1
    if report.retrying:
        typer.echo(
            f"error: {report.retrying} message(s) not delivered yet; the next pass retries them",
            err=True,
        )
        return 1
    return 0


@app.command("grant-reader")
def grant_reader_cmd(
    role: Annotated[str, typer.Argument(help="The PostgreSQL login role that may only read.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the role's password from stdin.")
    ] = False,
) -> None:
    """Create (or update) a PostgreSQL role that may only read Lookout's schema."""
    url = database.database_url()
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        schema = database.grant_reader(database.make_engine(url), role, password=password)
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(
            f"cannot grant {role!r} in {database.safe_url(url)}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        )
    typer.echo(
        f"{role} may read schema {schema} of {database.safe_url(url)}; set "
        f"LOOKOUT_READER_DATABASE_URL to this database's URL signing in as {role}"
    )


subscriptions_app = typer.Typer(
    help="Who is told of incidents, and how: add, list, remove, test.", no_args_is_help=True
)
app.add_typer(subscriptions_app, name="subscriptions")
_BASE_URL = "http://localhost:8501"


@subscriptions_app.command("add")
def subscriptions_add(
    name: Annotated[str, typer.Argument(help="A name for it (letters, digits, . _ -).")],
    webhook: Annotated[
        str | None, typer.Option(help="A signed JSON webhook: its URL, or env:NAME.")
    ] = None,
    slack: Annotated[
        str | None, typer.Option(help="A Slack-compatible incoming webhook: URL or env:NAME.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="An email address.")] = None,
    what: Annotated[
        list[str] | None,
        typer.Option(
            help="What to be told of (repeat): anomalies (each new, reopened or unsnoozed "
            "incident), emerging (new emerging topics), rings (growing rings), escalations "
            "(associates' escalations to leadership), digest (the weekly brief, Monday 08:00 "
            "in --timezone)."
        ),
    ] = None,
    min_severity: Annotated[str, typer.Option(help="low, medium or high.")] = "low",
    direction: Annotated[str, typer.Option(help="up, down or both.")] = "both",
    role: Annotated[
        str, typer.Option(help="Whose view messages are written for (product: no counts).")
    ] = "leadership",
    slices: Annotated[
        str | None,
        typer.Option(
            help="Only these slices: category=spam,region=FL; series=cases, events or "
            "detections picks what was scanned."
        ),
    ] = None,
    digest_hours: Annotated[
        int | None, typer.Option(help="Group into a digest every N hours (default: at once).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="The subscriber's time zone.")] = "UTC",
) -> None:
    """Add a subscription; a URL goes to the secrets file, never to the database."""
    from analytics.alerts import secrets, subscriptions

    targets = {"webhook": webhook, "slack": slack, "email": email}
    given = [(k, v) for k, v in targets.items() if v is not None]
    if len(given) != 1:
        fail("give exactly one of --webhook URL, --slack URL or --email ADDRESS")
    channel, target = given[0]
    engine = _engine_or_fail(database.database_url())
    try:
        added = subscriptions.add(
            engine, name=name, channel=channel, target=target, what=what or ["anomalies"],
            min_severity=min_severity, direction=direction, role=role, slices=slices,
            digest_hours=digest_hours, timezone=timezone,
            created_by=os.environ.get("USER") or "unknown",
        )  # fmt: skip
    except (subscriptions.SubscriptionError, secrets.SecretError) as exc:
        fail(str(exc))
    row = added.row
    how = f"a digest every {row['digest_hours']} h" if row["digest_hours"] else "each at once"
    where = row["address"] or row["secret_ref"]
    typer.echo(
        f"added {name!r}: {row['channel']} to {where}, {row['what']} at {row['min_severity']} "
        f"severity or above, {row['direction']}, for {row['role']}, {how}"
    )
    if added.signing_key:
        stored = added.signing_ref or ""
        typer.echo(
            f"signing key (shown once; the receiver verifies X-Lookout-Signature with it): "
            f"{added.signing_key}"
        )
        if stored.startswith("env:"):
            typer.echo(f"set it in the environment as {stored.removeprefix('env:')}")


@subscriptions_app.command("list")
def subscriptions_list() -> None:
    """List subscriptions: name, channel, where its secret lives (never the secret), what."""
    from analytics.alerts import subscriptions

    found = subscriptions.list_subscriptions(_engine_or_fail(database.database_url()))
    if found.is_empty():
        typer.echo(
            "no subscriptions yet: add one with `python -m analytics subscriptions add NAME "
            "--slack URL`"
        )
        return
    for row in found.iter_rows(named=True):
        how = f"digest every {row['digest_hours']} h" if row["digest_hours"] else "at once"
        typer.echo(
            f"{row['name']}\t{row['channel']}\t{row['address'] or row['secret_ref']}\t"
            f"{row['what']}\t{row['min_severity']}+\t{row['direction']}\t{row['role']}\t"
            f"{row['slices'] or 'every slice'}\t{how}"
        )


@subscriptions_app.command("remove")
def subscriptions_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a subscription, its queued messages and its secrets."""
    from analytics.alerts import subscriptions

    engine = _engine_or_fail(database.database_url())
    try:
        subscriptions.remove(engine, name, by=os.environ.get("USER") or "unknown")
    except subscriptions.SubscriptionError as exc:
        fail(str(exc))
    typer.echo(f"removed {name!r}")


@subscriptions_app.command("test")
def subscriptions_test(
    name: Annotated[str, typer.Argument()],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Lookout's address (default LOOKOUT_BASE_URL)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the receiver.", min=0.1)
    ] = 10.0,
) -> None:
    """Send a test message now; exit 1 with the reason when it was not delivered."""
    from analytics.alerts import subscriptions

    engine = _engine_or_fail(database.database_url())
    link = base_url or os.environ.get("LOOKOUT_BASE_URL") or _BASE_URL
    try:
        subscriptions.get(engine, name)
    except subscriptions.SubscriptionError as exc:
        fail(str(exc))
    try:
        subscriptions.test(engine, name, base_url=link, timeout_s=timeout)
    except subscriptions.SubscriptionError as exc:
        fail(str(exc), code=1)
    typer.echo(f"sent a test message to {name!r}")


sources_app = typer.Typer(
    help="A team's own database through a source map: check, sync, init.", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")


def _source_engine(url: str, *, timeout_s: float = database.QUERY_TIMEOUT_S) -> Engine:
    """A read-only engine on the team's database, or a one-line error."""

    try:
        engine = sourcemap.connect(url, timeout_s=timeout_s)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(f"cannot open {database.safe_url(url)}: {type(exc).__name__}: {_first_line(exc)}")
    return engine


def _load_map_or_exit(map_file: Path | None) -> sourcemap.SourceMap:
    """The map at ``map_file`` (default: ``LOOKOUT_SOURCE_MAP``); its problems and exit 2."""
    try:
        smap = sourcemap.load_map(map_file) if map_file is not None else mapped.active_map()
    except sourcemap.MapError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    if smap is None:
        fail(f"give --map or set {mapped.MAP_VARIABLE}")
    return smap


def _map_url(smap: sourcemap.SourceMap, url: str | None, *, default: str | None = None) -> str:
    """Their database's URL (``--url``, ``LOOKOUT_SOURCE_URL``, the map's), or exit 2."""
    try:
        return mapped.source_url(smap, url)
    except sourcemap.MapError as exc:
        if default is not None:
            return default
        fail(str(exc))


@sources_app.command("check")
def sources_check(
    map_file: Annotated[
        Path | None,
        typer.Option("--map", help="The source map (TOML; default: LOOKOUT_SOURCE_MAP)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="The team's database (default: LOOKOUT_SOURCE_URL, the map's [source] url, "
            "else LOOKOUT_DATABASE_URL)."
        ),
    ] = None,
) -> None:
    """Run a map against the team's database, read-only: exit 0 only when it is usable."""
    smap = _load_map_or_exit(map_file)
    engine = _source_engine(_map_url(smap, url, default=database.database_url()))
    try:
        report = sourcemap.check_map(engine, smap)
    finally:
        engine.dispose()
    for line in report.facts:
        typer.echo(line)
    for line in report.problems:
        typer.echo(line, err=True)
    if not report.usable:
        n = len(report.problems)
        typer.echo(f"the map is not usable yet: {n} problem{'' if n == 1 else 's'}", err=True)
        raise typer.Exit(2)
    typer.echo("the map is usable")


@sources_app.command("sync")
def sources_sync(
    map_file: Annotated[
        Path | None,
        typer.Option("--map", help="The source map (TOML; default: LOOKOUT_SOURCE_MAP)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="The team's database (default: LOOKOUT_SOURCE_URL or the map's)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Read every row again, not only the new ones.")
    ] = False,
    quarantine_dir: Annotated[
        Path | None,
        typer.Option(help="Where rejected rows go (default: data/quarantine)."),
    ] = None,
) -> None:
    """Copy the team's rows through the map into Lookout's database (new rows only when the
    map gives a watermark), then into the warehouse (LOOKOUT_WAREHOUSE_URL) when the copy
    brought rows; their database is only read. Exit 1 when a write or the load fails."""
    smap = _load_map_or_exit(map_file)
    source = _source_engine(_map_url(smap, url), timeout_s=sourcemap.COPY_TIMEOUT_S)
    engine = _engine_or_fail(database.database_url())
    try:
        summaries = mapped.sync(engine, smap, source, quarantine_dir=quarantine_dir, full=full)
        for summary in summaries:
            typer.echo(summary.describe())
    except ingest_checks.ImportRejected as exc:
        fail(str(exc), code=1)
    finally:
        source.dispose()
    _refresh_after_import(engine, then_load=False)
    failed = _warehouse_after_copy(engine, summaries)
    engine.dispose()
    if failed is not None:
        fail(failed, code=1)


def _with_source(draft: str, url: str) -> str:
    """The draft with a ``[source]`` table before its first entity: the URL itself, or, when
    it holds a password, a reference to an environment variable (no secret in the file)."""
    from sqlalchemy.engine import make_url

    if make_url(url).password is None:
        table = f'[source]\nurl = "{url}"\n\n'
    else:
        table = (
            f"[source]\n# {database.safe_url(url)}: its password stays out of this file;\n"
            "# set LOOKOUT_SOURCE_URL (or the variable named here) to the whole URL\n"
            'url = "env:LOOKOUT_SOURCE_URL"\n\n'
        )
    first = draft.find("\n[")
    return draft + "\n" + table if first < 0 else draft[: first + 1] + table + draft[first + 1 :]


@sources_app.command("init")
def sources_init(
    url: Annotated[str, typer.Option(help="The team's database.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the draft (default: standard output).")
    ] = None,
) -> None:
    """Draft a source map from the database's tables, for the team to edit."""

    engine = _source_engine(url)
    try:
        draft = _with_source(sourcemap.draft_map(engine), url)
    finally:
        engine.dispose()
    if out is None:
        typer.echo(draft, nl=False)
        return
    if out.exists():
        fail(f"{out} exists; not overwriting it")
    try:
        out.write_text(draft, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"wrote a draft map to {out}: replace each TODO, then run sources check")


def main() -> None:
    """Run the CLI; unexpected errors become a one-line message."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        typer.echo(f"error: {type(exc).__name__}: {_first_line(exc)}", err=True)
        sys.exit(1)
