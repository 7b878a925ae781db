"""The readers can only read: a PostgreSQL role that may only SELECT, a SQLite authorizer."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from analytics.core import database, models
from analytics.core.models import Account, Case, DatasetMeta
from analytics.sources.cases import CaseQuery, search_cases
from analytics.views.overview import dataset_overview
from tests.helpers import HANG_S

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------ PostgreSQL


@pytest.fixture
def pg_writer(pg_url) -> Iterator[str]:
    engine = database.make_engine(pg_url)
    models.init_db(engine)
    engine.dispose()
    return pg_url


@pytest.fixture
def reader_role(pg_writer) -> Iterator[str]:
    """A unique role name (roles are cluster-wide), dropped with its grants afterwards."""
    role = f"lookout_reader_{uuid.uuid4().hex[:10]}"
    yield role
    engine = database.make_engine(pg_writer)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lookout grant-reader'))"))
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    engine.dispose()


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def _turn_read_only_off_and_insert(reader) -> None:
    with reader.connect() as conn:
        conn.exec_driver_sql("SET default_transaction_read_only = off")
        conn.commit()
        conn.execute(insert(DatasetMeta).values(key="intruder", value="1"))
        conn.commit()


def test_the_configured_postgresql_reader_signs_in_as_a_role_that_may_only_read(
    monkeypatch, pg_writer, reader_role
) -> None:
    writer = database.make_engine(pg_writer)
    assert database.grant_reader(writer, reader_role).startswith("t_")
    with writer.begin() as conn:  # a table made after the grant can be read too
        conn.exec_driver_sql("CREATE TABLE later (id integer)")
        conn.execute(insert(DatasetMeta).values(key="seen", value='"yes"'))
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", pg_writer)
    monkeypatch.setenv("LOOKOUT_READER_DATABASE_URL", _as(pg_writer, reader_role))
    reader = database.make_reader()  # as the pages make it
    try:
        assert reader.url.username == reader_role
        assert database.get_meta(reader, "seen") == "yes"
        assert database.table_counts(reader)["cases"] == 0
        with reader.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM later").scalar_one() == 0
        with pytest.raises(DBAPIError, match="permission denied"):
            _turn_read_only_off_and_insert(reader)
        for statement in ("CREATE TABLE intruder (id integer)", "DELETE FROM cases"):
            with pytest.raises(DBAPIError, match="permission denied"), reader.connect() as c:
                c.exec_driver_sql("SET default_transaction_read_only = off")
                c.commit()
                c.exec_driver_sql(statement)
                c.commit()
    finally:
        reader.dispose()
    assert database.get_meta(writer, "intruder") is None
    writer.dispose()


def test_the_writers_role_as_reader_could_write(pg_writer) -> None:
    """Why the separate role: read-only is only a session default the session may undo."""
    reader = database.make_reader(pg_writer)
    try:
        _turn_read_only_off_and_insert(reader)
        assert database.get_meta(reader, "intruder") == 1
    finally:
        reader.dispose()


def test_grant_reader_refuses_a_role_that_may_do_more(pg_writer) -> None:
    writer = database.make_engine(pg_writer)
    for role in ("postgres", make_url(pg_writer).username or "postgres"):
        with pytest.raises(ValueError, match="may do more than read"):
            database.grant_reader(writer, role)
    writer.dispose()


def test_grant_reader_quotes_the_role_and_password(pg_writer, reader_role) -> None:
    role = f'{reader_role}"; DROP TABLE cases; --'
    writer = database.make_engine(pg_writer)
    try:
        database.grant_reader(writer, role, password="it's; DROP TABLE cases")
        with writer.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Case)).scalar_one() == 0
            assert conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    finally:
        with writer.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lookout grant-reader'))"))
            quoted = role.replace('"', '""')
            conn.execute(text(f'DROP OWNED BY "{quoted}"'))
            conn.execute(text(f'DROP ROLE "{quoted}"'))
        writer.dispose()


@pytest.mark.slow
def test_grant_reader_command(pg_writer, reader_role) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "grant-reader", reader_role, "--password-stdin"],
        cwd=ROOT,
        env={**os.environ, "LOOKOUT_DATABASE_URL": pg_writer},
        input="a long reader password\n",
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert reader_role in done.stdout and "LOOKOUT_READER_DATABASE_URL" in done.stdout
    assert "a long reader password" not in done.stdout + done.stderr
    reader = database.make_reader(_as(pg_writer, reader_role))  # trust auth: no password asked
    try:
        assert database.table_counts(reader)["events"] == 0
    finally:
        reader.dispose()


# ---------------------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_reader(sqlite_url):
    engine = database.make_engine(sqlite_url)
    models.init_db(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Account).values(
                id=1, kind="patient", created_at=datetime(2025, 1, 1), region="CA",
                verified=True, status="active", display_name="A",
            )
        )  # fmt: skip
        conn.execute(
            insert(Case).values(
                id=1, opened_at=datetime(2026, 1, 1), source="user_report", category="spam",
                severity="low", status="open", region="CA", platform="web",
                subject_account_id=1, description="refund scam by text message",
            )
        )  # fmt: skip
    engine.dispose()
    reader = database.make_reader(sqlite_url)
    yield reader
    reader.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH DATABASE '{folder}/made.db' AS made",
        "CREATE TEMP TABLE scratch (id INTEGER)",
        "CREATE TEMP VIEW v AS SELECT 1",
        "INSERT INTO dataset_meta (key, value) VALUES ('intruder', '1')",
        "CREATE TABLE intruder (id INTEGER)",
        "PRAGMA writable_schema = ON",
        "PRAGMA query_only = OFF",
        "PRAGMA journal_mode = DELETE",
        "UPDATE sqlite_master SET sql = 'x' WHERE name = 'cases'",
    ],
)
def test_the_sqlite_reader_refuses_anything_but_reading(sqlite_reader, statement) -> None:
    folder = Path(sqlite_reader.url.database).parent
    refused = pytest.raises(OperationalError, match="readonly|may not be modified")
    with refused, sqlite_reader.connect() as conn:
        conn.exec_driver_sql(statement.format(folder=folder))
        conn.commit()
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".db") == ["lookout.db"]
    with sqlite_reader.connect() as conn:  # the connection still reads, and only the file
        assert conn.exec_driver_sql("SELECT count(*) FROM cases").scalar_one() == 1
        assert [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]


def test_the_sqlite_reader_still_reads_searches_and_reflects(sqlite_reader) -> None:
    page = search_cases(sqlite_reader, CaseQuery(text="refund"), role="associate")
    assert page.total == 1
    assert search_cases(sqlite_reader, CaseQuery(text="nothing"), role="associate").total == 0
    assert database.table_counts(sqlite_reader)["cases"] == 1
    assert dataset_overview(sqlite_reader).first_case == datetime(2026, 1, 1)
    with sqlite_reader.connect() as conn:
        got = conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT sum(i) FROM n"
        )
        assert got.scalar_one() == 6
