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

__all__ = ["DEMO", "ensure_database", "ensure_seeded", "reachable"]

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
