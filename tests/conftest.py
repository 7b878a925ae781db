"""Shared fixtures: a fresh SQLite file and a private PostgreSQL schema per test, and the
small demo seeded once per test process, shared by the tests that only read it.

The shared demo (:func:`small_db`, :func:`small_pg`, :func:`small_engine`) must not be
written to: a page view that opens a case appends to the audit log, a verdict to the
feedback table, a sign-in to the users. Such tests take a private copy
(:func:`own_small_db`, or :func:`tests.helpers.copy_small_demo` for a module's copy).
Each shared demo checks at the end of the session that no test changed it.

Under ``pytest -n 2`` every worker is its own process with its own temporary folder, so
each builds its own shared demo (seeding the small demo takes about a second).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine, make_url

from analytics.core import models
from analytics.core.database import make_engine
from analytics.core.models import init_db
from tests.helpers import copy_small_demo, seed_small_demo, small_demo

PG_URL = os.environ.get(
    "LOOKOUT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_configure(config) -> None:
    """Snapshots of test databases go to a private folder, never to data/snapshots."""
    os.environ["LOOKOUT_SNAPSHOT_DIR"] = tempfile.mkdtemp(prefix="lookout-snapshots-")


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required when CI is set: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


@contextmanager
def _private_schema() -> Iterator[str]:
    """A URL whose search_path is a new, private schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        _pg_unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'lookout.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a new, private schema, dropped afterwards."""
    with _private_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


# --------------------------------------------------------------------------- the small demo


def _contents(url: str) -> dict[str, Any]:
    """What a test that writes would change: the rows of every table, and the metadata."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            counts = {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in models.Base.metadata.sorted_tables
            }
            meta = dict(
                conn.execute(select(models.DatasetMeta.key, models.DatasetMeta.value)).all()
            )
    finally:
        engine.dispose()
    return {"counts": counts, "meta": meta}


@contextmanager
def _unchanged(url: str, name: str) -> Iterator[str]:
    """Yield ``url``; afterwards, fail if any test wrote to the database behind it."""
    before = _contents(url)
    yield url
    after = _contents(url)
    changed = sorted(k for k in before["counts"] if before["counts"][k] != after["counts"][k])
    changed += ["dataset_meta"] if before["meta"] != after["meta"] else []
    assert not changed, (
        f"a test wrote to the shared {name} ({', '.join(changed)}): tests that write "
        "take a private copy (own_small_db)"
    )


@pytest.fixture(scope="session")
def small_demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo (:func:`tests.helpers.small_demo`) in a SQLite file, seeded once per
    test process. Read it through :func:`small_db`, or copy it."""
    folder = tmp_path_factory.mktemp("small-demo")
    small_demo(folder)
    return folder / "lookout.db"


@pytest.fixture(scope="session")
def small_db(small_demo_file: Path) -> Iterator[str]:
    """URL of the small demo in SQLite, shared by every test that only reads it."""
    with _unchanged(f"sqlite:///{small_demo_file}", "small demo in SQLite") as url:
        yield url


@pytest.fixture
def own_small_db(small_demo_file: Path, tmp_path: Path) -> str:
    """URL of a private copy of the small demo in SQLite, for a test that writes to it."""
    return copy_small_demo(small_demo_file, tmp_path)


@pytest.fixture(scope="session")
def small_pg() -> Iterator[str]:
    """URL of the small demo in a private PostgreSQL schema, seeded once per test process
    and shared by every test that only reads it."""
    with _private_schema() as url:
        seed_small_demo(url)
        with _unchanged(url, "small demo in PostgreSQL"):
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def small_engine(request) -> Iterator[Engine]:
    """An engine on the shared small demo: each test using this runs once on SQLite and
    once on PostgreSQL. Read only."""
    url = request.getfixturevalue("small_db" if request.param == "sqlite" else "small_pg")
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test process's chdb data folder: chdb opens one folder per process, so every
    ClickHouse test of a worker shares it (each in a database of its own)."""
    return tmp_path_factory.mktemp("chdb")
