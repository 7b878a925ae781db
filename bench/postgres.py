"""PostgreSQL for the benchmarks: is the server there, and dedicated demo databases on it.

Each benchmark database is its own database (not a schema), so that its URL carries
no ``options`` and the loaders can use their fastest reader (connectorx).
"""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from analytics import demo
from analytics.core import database

__all__ = ["DEMO", "ensure_database", "ensure_multiplied", "ensure_seeded", "reachable"]

#: The demo data the local SQLite files hold; the benchmark databases get the same.
_SEED, _DAYS, _END = 7, 730, date(2026, 11, 24)
DEMO: dict[str, object] = {"seed": _SEED, "days": _DAYS, "end": _END.isoformat()}


def reachable(url: str) -> bool:
    """True when a PostgreSQL server answers at ``url`` within a few seconds."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(select(1))
    except OperationalError:
        return False
    finally:
        engine.dispose()
    return True


def ensure_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url`` if missing; return its URL."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not found:
                quoted = engine.dialect.identifier_preparer.quote(name)
                conn.execute(text("CREATE DATABASE " + quoted))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def ensure_seeded(url: str, scale: str) -> float | None:
    """Seed the demo at ``scale`` into ``url`` unless it already holds exactly that demo.

    Returns the seconds spent seeding, or None when the data was already there.
    Never overwrites a database holding non-demo data (``SeedRefused``).
    """
    engine = database.make_engine(url)
    try:
        info = database.get_meta(engine, "demo") if demo.database_state(engine) == "demo" else None
        wanted = dict(DEMO, scale=scale)
        if info is not None and all(info.get(k) == v for k, v in wanted.items()):
            return None
        start = time.perf_counter()
        demo.seed_database(
            engine,
            scale=scale,
            seed=_SEED,
            days=_DAYS,
            end=_END,
        )
        return time.perf_counter() - start
    finally:
        engine.dispose()


#: Columns holding an id of each table, by table: offset per copy by that table's top id.
_SHIFTED: dict[str, dict[str, str]] = {
    "accounts": {"id": "accounts"},
    "events": {"id": "events", "account_id": "accounts", "target_account_id": "accounts"},
    "cases": {"id": "cases", "subject_account_id": "accounts", "reporter_account_id": "accounts"},
}


def ensure_multiplied(
    admin_url: str, source: str, name: str, times: int
) -> tuple[str, float | None]:
    """Database ``name``: a copy of database ``source`` whose accounts, events and cases
    are there ``times`` times, ids and account ids offset per copy by each table's top
    id (as :mod:`bench.warehouse` multiplies the ClickHouse warehouse, so the numbers
    agree). Made unless ``name`` already holds that; returns its URL and the seconds
    spent (None when it was there).

    The copy is made from ``source`` as a template; the rows are added with the
    foreign-key triggers off (the copies are consistent by construction) and the
    secondary indexes dropped, then rebuilt, except the case descriptions' full-text
    index, which the cube does not read. Case actions are not multiplied.
    """
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    marker = {"from": source, "times": times}
    if _has_database(admin_url, name):
        engine = database.make_engine(url)
        try:
            if database.get_meta(engine, "bench_multiplied") == marker:
                return url, None
        finally:
            engine.dispose()
    start = time.perf_counter()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quote = admin.dialect.identifier_preparer.quote
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(source)}"))
    finally:
        admin.dispose()
    engine = database.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            indexes = conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:t) "
                    "AND indexname NOT LIKE 'pk_%'"
                ),
                {"t": list(_SHIFTED)},
            ).all()
            for index, _ in indexes:
                conn.execute(text(f"DROP INDEX {quote(index)}"))
            top = {
                t: int(conn.execute(text(f"SELECT max(id) FROM {t}")).scalar_one())
                for t in _SHIFTED
            }
            for k in range(1, times):
                for table, shifted in _SHIFTED.items():
                    cols = [
                        c
                        for (c,) in conn.execute(
                            text(
                                "SELECT column_name FROM information_schema.columns "
                                "WHERE table_name = :t ORDER BY ordinal_position"
                            ),
                            {"t": table},
                        )
                    ]
                    exprs = [f"{c} + {k * top[shifted[c]]}" if c in shifted else c for c in cols]
                    conn.execute(
                        text(
                            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
                            f"FROM {table} WHERE id <= {top[table]}"
                        )
                    )
            for _, ddl in indexes:
                if "to_tsvector" not in ddl:
                    conn.execute(text(ddl))
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        database.set_meta(engine, "bench_multiplied", marker)
        database.bump_data_version(engine, events_rewritten=True)
    finally:
        engine.dispose()
    return url, time.perf_counter() - start


def _has_database(admin_url: str, name: str) -> bool:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                ).scalar()
            )
    finally:
        engine.dispose()
