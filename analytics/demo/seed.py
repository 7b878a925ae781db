"""Writing the demo into a database: refuse to overwrite real data, replace the demo
tables, bulk-load them, build the indexes and store the ground truth."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex

from analytics.core import database, models
from analytics.demo.dataset import generate

__all__ = ["SeedRefused", "database_state", "seed_database"]


_DEMO_TABLES = ("case_actions", "events", "cases", "annotations", "feedback", "accounts")


class SeedRefused(Exception):
    """The database holds data that is not the demo's; seeding would destroy it."""


def database_state(engine: Engine) -> str:
    """``"empty"``, ``"demo"`` (only demo data) or ``"data"`` (holds non-demo data)."""
    counts = database.table_counts(engine)
    if not any(counts[t] for t in ("accounts", "events", "cases")):
        return "empty"
    if database.get_meta(engine, "demo") is not None and not database.get_meta(
        engine, "non_demo_data"
    ):
        return "demo"
    return "data"


def _recreate_tables(engine: Engine) -> None:
    """Drop and re-create the demo tables, without secondary indexes (added after load)."""
    meta = models.Base.metadata
    tables = [meta.tables[t] for t in _DEMO_TABLES]
    with engine.begin() as conn:
        meta.drop_all(conn, tables=tables + [meta.tables["dataset_meta"]])
    models.init_db(engine)
    models.drop_search_index(engine)
    with engine.begin() as conn:
        for t in tables:
            for ix in t.indexes:
                ix.drop(conn)


def _create_indexes(engine: Engine) -> None:
    indexes = [ix for t in _DEMO_TABLES for ix in models.Base.metadata.tables[t].indexes]
    path = database.sqlite_path(engine)
    if path is None:
        with engine.begin() as conn:
            for ix in indexes:
                ix.create(conn, checkfirst=True)
        return
    # SQLite: build the indexes outside WAL (each page written once), then back to WAL.
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # Leaving WAL needs sole access; when another process has the file open, stay.
        with contextlib.suppress(sqlite3.OperationalError):
            con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=OFF")
        for ix in indexes:
            con.execute(str(CreateIndex(ix, if_not_exists=True).compile(dialect=engine.dialect)))
        with contextlib.suppress(sqlite3.OperationalError):
            con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def seed_database(
    engine: Engine,
    *,
    scale: str = "medium",
    seed: int = 7,
    days: int = 730,
    end: date | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Replace the demo tables with freshly generated demo data; returns the manifest.

    Refuses (``SeedRefused``) when the database holds non-demo data, unless ``force``.
    The audit log and users are kept. The manifest is stored in ``dataset_meta``
    under ``ground_truth`` so that evaluation always reads the truth of this database.
    """
    models.init_db(engine)
    if database_state(engine) == "data" and not force:
        raise SeedRefused(
            f"{database.safe_url(str(engine.url))} holds data that is not the demo's; "
            "refusing to overwrite it (use --force to replace it with demo data)"
        )
    say = progress or (lambda step, done, total: None)
    data = generate(scale=scale, seed=seed, days=days, end=end)
    total = 5 + data.n_event_chunks
    say("preparing tables", 0, total)
    _recreate_tables(engine)
    written: dict[str, int] = {}
    for i, name in enumerate(("accounts", "cases", "case_actions", "annotations")):
        say(f"writing {name}", i + 1, total)
        written[name] = database.bulk_append(engine, name, getattr(data, name))
    written["events"] = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i, chunk in enumerate(data.event_chunks()):
            if pending is not None:
                written["events"] += pending.result()
            say("writing events", 5 + i, total)
            pending = pool.submit(database.bulk_append, engine, "events", chunk)
        if pending is not None:
            written["events"] += pending.result()
    say("building indexes", total - 1, total)
    _create_indexes(engine)
    models.build_search_index(engine)
    data.manifest["dataset"]["rows"] = written
    database.set_meta(engine, "demo", data.info)
    database.set_meta(engine, "ground_truth", data.manifest)
    database.bump_data_version(engine, events_rewritten=True)
    say("done", total, total)
    return data.manifest
