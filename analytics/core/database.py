"""Connecting to the database: where it is, the writer and read-only engines, and
whole-table reads and writes (row counts, the data set's facts, bulk appends).

:func:`database_url` is the configured database (``LOOKOUT_DATABASE_URL`` or the
embedded SQLite file); :func:`make_engine` opens it for writing, :func:`make_reader`
for reading only (the pages read through one), and :func:`grant_reader` sets up a
PostgreSQL role that may only read. The tables themselves are
:mod:`analytics.core.models`'s.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import create_engine, delete, event, func, insert, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError

from analytics.core.models import TABLES, Base, DatasetMeta

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "DEFAULT_DATABASE_URL",
    "PROJECT_ROOT",
    "QUERY_TIMEOUT_S",
    "bulk_append",
    "bump_data_version",
    "database_url",
    "get_meta",
    "grant_reader",
    "make_engine",
    "make_reader",
    "reader_database_url",
    "safe_url",
    "set_meta",
    "sqlite_path",
    "table_counts",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'data' / 'lookout.db'}"


def database_url() -> str:
    """The configured database URL: ``LOOKOUT_DATABASE_URL`` or the embedded SQLite file."""
    return os.environ.get("LOOKOUT_DATABASE_URL") or DEFAULT_DATABASE_URL


def reader_database_url(url: str | None = None) -> str:
    """The URL a reader of ``url`` (default: the configured database) connects with.

    For the configured database, ``LOOKOUT_READER_DATABASE_URL`` when set: the same
    database signed in as a role that may only read (see :func:`grant_reader`).
    Otherwise ``url`` itself.

    >>> reader_database_url("sqlite:///other.db")
    'sqlite:///other.db'
    """
    url = url or database_url()
    reader = os.environ.get("LOOKOUT_READER_DATABASE_URL")
    return reader if reader and url == database_url() else url


def safe_url(url: str) -> str:
    """Render a database URL with its password hidden.

    >>> safe_url("postgresql+psycopg://lookout:s3cret@db.internal:5432/prod")
    'postgresql+psycopg://lookout:***@db.internal:5432/prod'
    >>> safe_url("sqlite:///data/lookout.db")
    'sqlite:///data/lookout.db'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparseable URL is shown as such
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")  # a writer waits for an import's commit, 60 s at most
    cur.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: :func:`database_url`).

    SQLite gets foreign keys enforced and WAL journaling; the parent folder of a
    SQLite file is created when missing, and a file replaced while the engine runs
    (a backup restored with ``mv``) is reopened at the next checkout.
    """
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if db and db != ":memory:" and not db.startswith("file:"):
            _follow_file(engine, db, checkpoint=True)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


_log = logging.getLogger(__name__)

#: Default longest time a reader's query may run, in seconds.
QUERY_TIMEOUT_S = 30.0


def make_reader(url: str | None = None, *, timeout_s: float = QUERY_TIMEOUT_S) -> Engine:
    """An engine that can only read, and whose queries stop after ``timeout_s``.

    The pages read through one. SQLite opens the file with ``mode=ro`` (a write fails
    with "attempt to write a readonly database"), an authorizer refuses anything but
    reading (``ATTACH``, temporary tables, pragmas that set something: "not authorized
    on a readonly reader"), and a statement still running at its deadline is interrupted;
    ``engine.url`` stays the configured URL. PostgreSQL sessions start with
    ``default_transaction_read_only`` and a ``statement_timeout``; as a session may turn
    the former off, connect as a role that may only read (default URL:
    :func:`reader_database_url`; set-up: :func:`grant_reader`), else a warning is
    logged. Writes (feedback, annotations, users, audit) go through :func:`make_engine`.
    """
    url = url or reader_database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError("a read-only engine needs a SQLite file")
        target = f"file:{quote(str(Path(path).resolve()))}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(target, uri=True, check_same_thread=False)

        engine = create_engine(url, creator=connect, pool_pre_ping=True)
        event.listen(engine, "connect", _sqlite_reader_setup(timeout_s))
        event.listen(engine, "before_cursor_execute", _start_clock)
        event.listen(engine, "handle_error", _explain_refusal)
        _follow_file(engine, path, checkpoint=False)
        return engine
    if url == database_url() and not os.environ.get("LOOKOUT_READER_DATABASE_URL"):
        _log.warning(
            "the reader of %s signs in as the writer's role, which may turn read-only "
            "off; set LOOKOUT_READER_DATABASE_URL (python -m analytics grant-reader)",
            safe_url(url),
        )
    options = str(parsed.query.get("options", "") or "")
    options += f" -c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options.strip()})


def _sqlite_reader_setup(timeout_s: float) -> Callable[[Any, Any], None]:
    def setup(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        clock = {"deadline": math.inf, "timeout": timeout_s}
        record.info["clock"] = clock
        # Called every 20,000 virtual-machine steps: a non-zero answer interrupts.
        dbapi_conn.set_progress_handler(lambda: time.monotonic() > clock["deadline"], 20_000)
        refused: list[str] = []
        record.info["refused"] = refused
        dbapi_conn.set_authorizer(_reader_authorizer(refused))

    return setup


#: What the reader's SQLite connections may do: read, and nothing else.
_READER_ACTIONS = frozenset(
    getattr(sqlite3, f"SQLITE_{name}")
    for name in ("SELECT", "READ", "FUNCTION", "RECURSIVE", "TRANSACTION", "SAVEPOINT")
)
#: Pragmas that only read and that SQLAlchemy's reflection asks (about the table named).
_READER_PRAGMAS = frozenset(
    ("table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list")
)
#: Pragmas that only read when given no value (``PRAGMA read_uncommitted``: the dialect's
#: isolation level).
_READER_QUERIES = frozenset(
    ("read_uncommitted", "data_version", "schema_version", "user_version", "page_count",
     "page_size", "freelist_count", "journal_mode", "database_list", "compile_options",
     "encoding", "foreign_keys", "query_only")
)  # fmt: skip
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in ("INSERT", "UPDATE", "DELETE", "ATTACH", "DETACH", "PRAGMA", "ALTER_TABLE",
                 "CREATE_TABLE", "CREATE_TEMP_TABLE", "CREATE_INDEX", "CREATE_TEMP_INDEX",
                 "CREATE_VIEW", "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_TEMP_TRIGGER",
                 "CREATE_VTABLE", "DROP_TABLE", "DROP_TEMP_TABLE", "DROP_INDEX",
                 "DROP_TEMP_INDEX", "DROP_VIEW", "DROP_TEMP_VIEW", "DROP_TRIGGER",
                 "DROP_TEMP_TRIGGER", "DROP_VTABLE", "REINDEX", "ANALYZE")
}  # fmt: skip


def _reader_authorizer(refused: list[str]) -> Callable[..., int]:
    """SQLite's authorizer for a reader: reads pass, anything else is refused (and noted).

    ``mode=ro`` already keeps the file from changing; this also refuses what it lets
    through: ``ATTACH`` (which creates a database file), the temporary database, and
    pragmas that set something.
    """

    def authorize(
        action: int, arg1: str | None, arg2: str | None, db_name: str | None, _trigger: Any
    ) -> int:
        if action in _READER_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and db_name == "main":
            # Asked when FTS5 declares its table's columns, which changes nothing. SQLite
            # itself refuses to change sqlite_master without writable_schema (a pragma
            # refused here), and mode=ro refuses to change any page of the file.
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg1 is not None:
            name = arg1.lower()
            if name in _READER_PRAGMAS or (name in _READER_QUERIES and arg2 is None):
                return sqlite3.SQLITE_OK
        what = _ACTION_NAMES.get(action, f"action {action}")
        if not refused:  # the first refusal of the statement is the one to tell
            refused.append(" ".join(str(a) for a in (what, arg1, arg2) if a is not None))
        return sqlite3.SQLITE_DENY

    return authorize


def _explain_refusal(context: Any) -> BaseException | None:
    """A reader's authorizer refusal, raised as SQLite's own read-only error with its reason."""
    orig = context.original_exception
    if not isinstance(orig, sqlite3.DatabaseError) or str(orig) != "not authorized":
        return None
    refused = context.connection.info.get("refused") if context.connection else None
    if not refused:
        return None
    reason = sqlite3.OperationalError(f"not authorized on a readonly reader: {refused[0]}")
    return OperationalError(context.statement, context.parameters, reason)


def grant_reader(engine: Engine, role: str, *, password: str | None = None) -> str:
    """Let PostgreSQL role ``role`` read the schema ``engine`` works in, and nothing more.

    Creates the login role when missing (with ``password``, if given; an existing one
    gets the new password), then grants ``CONNECT`` on the database, ``USAGE`` on the
    schema and ``SELECT`` on its tables, now and on those ``engine``'s role makes later
    (``ALTER DEFAULT PRIVILEGES``): run it as the role that runs ``init-db``. Names
    are quoted as identifiers, the password as a literal. A role that is a superuser
    or may create roles or databases, or ``engine``'s own role, is refused. Returns
    the schema. Point ``LOOKOUT_READER_DATABASE_URL`` at the same database as ``role``.

    >>> grant_reader(make_engine("sqlite://"), "lookout_reader")
    Traceback (most recent call last):
    ValueError: database roles are PostgreSQL's; the SQLite reader is read-only by itself
    """
    if engine.dialect.name != "postgresql":
        raise ValueError(
            "database roles are PostgreSQL's; the SQLite reader is read-only by itself"
        )
    from psycopg import sql

    who = sql.Identifier(role)
    with engine.begin() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        # One grant at a time: concurrent GRANTs on one database can fail with
        # "tuple concurrently updated".
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('lookout grant-reader'))")
        cur.execute("SELECT current_database(), current_schema(), current_user")
        ((database, schema, me),) = cur.fetchall()
        cur.execute(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = %s",
            (role,),
        )
        found = cur.fetchone()
        if role == me or (found is not None and found[0]):
            raise ValueError(f"role {role!r} may do more than read: choose another")
        verb = "CREATE" if found is None else "ALTER"
        if found is None or password is not None:
            login = sql.SQL("{} ROLE {} LOGIN").format(sql.SQL(verb), who)
            if password is not None:
                login = sql.SQL("{} PASSWORD {}").format(login, sql.Literal(password))
            cur.execute(login)
        for grant in (
            "GRANT CONNECT ON DATABASE {database} TO {who}",
            "GRANT USAGE ON SCHEMA {schema} TO {who}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {who}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {who}",
        ):
            cur.execute(
                sql.SQL(grant).format(
                    database=sql.Identifier(database), schema=sql.Identifier(schema), who=who
                )
            )
        cur.close()
    return str(schema)


def _file_id(path: str) -> tuple[int, int] | None:
    """The (device, inode) of the file at ``path`` now, or None when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _follow_file(engine: Engine, path: str, *, checkpoint: bool) -> None:
    """Reconnect ``engine``'s pooled connections once the SQLite file at ``path`` is replaced.

    A connection keeps the file it opened, even after ``mv backup.db lookout.db`` put
    another in its place: what it wrote afterwards went nowhere. Each connection
    remembers the (device, inode) it opened; at checkout a different one (or no file)
    closes every idle connection of the pool and reconnects this one. The old file's
    write-ahead log stays beside the new file under the same name, so it is emptied
    first (checkpointed into the old file) lest its pages be read as the new file's: a
    writer does it itself; a reader, which cannot, has this process's writers of the
    file do it. A connection in use while the file is replaced finishes on the old file.
    """

    writers = _WRITERS.setdefault(str(Path(path).resolve()), weakref.WeakSet())
    if checkpoint:
        writers.add(engine)

    def remember(_dbapi_conn: Any, record: Any) -> None:
        record.info["file_id"] = _file_id(path)

    def check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        opened = record.info.get("file_id")
        if opened is None or _file_id(path) == opened:
            return
        if checkpoint:
            # Busy or not in WAL mode: closing is then all that is left to do.
            with contextlib.suppress(sqlite3.Error):
                dbapi_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:  # a reader cannot checkpoint: this process's writers of the file do it first
            for writer in list(writers):
                if writer.pool.checkedin():  # type: ignore[attr-defined]
                    writer.connect().close()
        engine.pool.dispose()  # idle connections on the old file, closed before a new one opens
        raise InvalidatePoolError(f"{path} was replaced")

    event.listen(engine, "connect", remember)
    event.listen(engine, "checkout", check)


#: The writer engines of each SQLite file in this process (see :func:`_follow_file`).
_WRITERS: dict[str, weakref.WeakSet[Engine]] = {}


def _start_clock(conn: Any, *_args: Any) -> None:
    clock = conn.info.get("clock")
    if clock is not None:
        clock["deadline"] = time.monotonic() + clock["timeout"]
    conn.info.get("refused", []).clear()


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every Lookout table (0 where the table does not exist yet)."""
    existing = set(inspect(engine).get_table_names())
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for name, model in TABLES.items():
            if name in existing:
                counts[name] = int(
                    conn.execute(select(func.count()).select_from(model)).scalar_one()
                )
            else:
                counts[name] = 0
    return counts


def get_meta(engine: Engine, key: str) -> Any | None:
    """Read a JSON value from ``dataset_meta`` (None when absent)."""
    if "dataset_meta" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        raw = conn.execute(select(DatasetMeta.value).where(DatasetMeta.key == key)).scalar()
    return None if raw is None else json.loads(raw)


def set_meta(engine: Engine, key: str, value: Any) -> None:
    """Write a JSON value to ``dataset_meta``, replacing any previous one."""

    with engine.begin() as conn:
        conn.execute(delete(DatasetMeta).where(DatasetMeta.key == key))
        conn.execute(insert(DatasetMeta).values(key=key, value=json.dumps(value)))


def bump_data_version(engine: Engine, *, events_rewritten: bool) -> dict[str, int]:
    """Record that the data changed, so snapshots of it know they are stale.

    ``events_rewritten`` says existing event rows changed or were replaced (a re-seed,
    an import that updated events): a snapshot must then rebuild its events rather
    than append the new ones. Returns the new version, e.g. ``{"version": 3, "events": 1}``.
    """
    current = get_meta(engine, "data_version") or {"version": 0, "events": 0}
    current = {
        "version": int(current.get("version", 0)) + 1,
        "events": int(current.get("events", 0)) + int(events_rewritten),
    }
    set_meta(engine, "data_version", current)
    return current


def sqlite_path(engine: Engine) -> str | None:
    """The file behind a SQLite engine (None for other databases and in-memory SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    return db if db and db != ":memory:" and not db.startswith("file:") else None


def _for_sqlite(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetimes as the text SQLAlchemy's SQLite dialect stores; booleans as 0/1."""
    import polars as pl  # only bulk appends need it

    return frame.with_columns(
        [
            pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
            for c, t in frame.schema.items()
            if isinstance(t, pl.Datetime)
        ]
        + [pl.col(c).cast(pl.Int8) for c, t in frame.schema.items() if t == pl.Boolean]
    )


def bulk_append(engine: Engine, table: str, frame: pl.DataFrame) -> int:
    """Append a frame to a table by the fastest path the dialect offers.

    SQLite: Arrow ingest through ADBC (one transaction). PostgreSQL: ``COPY``
    from CSV written by Polars. Any other dialect: SQLAlchemy ``executemany``.
    The frame's columns must be named as the table's. Returns the rows written.
    """
    if frame.is_empty():
        return 0
    path = sqlite_path(engine)
    if path is not None:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        # ADBC links its own copy of SQLite: two copies of the library must never
        # hold the same file open in one process, or POSIX locks are lost.
        engine.dispose()
        with adbc_sqlite.connect(path, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.adbc_ingest(table, _for_sqlite(frame).to_arrow(), mode="append")
            cur.close()
        return frame.height
    if engine.dialect.name == "postgresql":
        from psycopg import sql

        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns))
        )
        buf = io.BytesIO()
        frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f")
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[attr-defined]
                copy.write(buf.getvalue())
            raw.commit()
        finally:
            raw.close()
        return frame.height
    target = Base.metadata.tables[table]
    with engine.begin() as conn:
        for batch in frame.iter_slices(10_000):
            conn.execute(insert(target), batch.to_dicts())
    return frame.height
