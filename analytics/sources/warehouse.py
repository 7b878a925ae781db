"""The ClickHouse warehouse: Lookout's analytic tables on a columnar engine, loaded from
Lookout's database, read by the pushdown loader, searched by its text index.

``LOOKOUT_WAREHOUSE_URL`` (a ``clickhousedb://`` URL of clickhouse-connect's SQLAlchemy
dialect) names the warehouse: ``clickhousedb://user:pw@host:8123/db`` for a server, or
``clickhousedb://?interface=chdb&path=/abs/dir`` for chdb, ClickHouse's engine in the
process (what the tests run on: the same SQL a server runs). :func:`warehouse_engine`
adds ``join_use_nulls=1`` (ClickHouse's LEFT JOIN otherwise gives 0 and '' for a
missing row, not NULL); settings go in the URL's query.

What lives where, and why:

- the warehouse holds the **analytic tables**, ``accounts``, ``events`` and ``cases``
  (DDL in :mod:`analytics.sources.clickhouse_ddl`: MergeTree, ordered by time,
  partitioned by month), copied from Lookout's database by :func:`load`;
- **Lookout's own tables** (users, audit log, feedback, incidents, known events,
  subscriptions, the outbox...) stay in ``LOOKOUT_DATABASE_URL`` (SQLite or
  PostgreSQL): they are updated in place with version checks inside transactions
  (a sign-in's failed-login count, an incident's state, a verdict), which ClickHouse's
  asynchronous mutations do not offer; and chdb lets one process at a time open a data
  folder, so the app and the command line could not share it. The append-only audit
  log would fit ClickHouse, but writing it beside the others in one place keeps one
  transaction per action. The known events (annotations) are therefore read from
  Lookout's database, as pushdown through a source map reads them.

:func:`load` copies accounts and cases whole (into a staging table swapped in by
``EXCHANGE TABLES``, so readers never see a half-loaded table) and the events
incrementally: rows whose id is above the warehouse's highest, each with its target
account's specialty (so the cube needs no join; see
:mod:`analytics.sources.clickhouse_ddl`). A rewritten event history (a re-seed, an
import that updated events: see :func:`analytics.core.database.bump_data_version`),
events that disappeared, an account that changed specialty, or ``full=True`` reload the
events whole; so does a warehouse made before a column was added (its table is emptied
when the column is added). Events come from Lookout's Parquet snapshot
when it is fresh (no second read of the database), else from the database in id
ranges; accounts and cases always from the database (the snapshot keeps neither the
case descriptions that search needs nor the accounts' other columns). Everything goes
in through ``insert_arrow`` in batches: no row is handled by Python. An account's display
name and e-mail are not copied. Run one load at a time (the command line's
``warehouse load``, or ``seed`` and ``import``, which load after themselves, as a copy
through a source map that brought rows does: ``sources sync``, ``watch`` and the app's
background copy, a ``sources sync`` process). chdb is for
tests and one machine: its folder is open to one process at a time, so the command line
cannot load it while the app has it open (a clear one-line error says so); a ClickHouse
server has no such limit.

With a warehouse set, ``LOOKOUT_LOADER`` defaults to pushdown and
:mod:`analytics.sources.load` sends the cube's and the daily events' queries there.

Search (:func:`search_condition`): a word is ``hasToken`` on ``lowerUTF8(description)``,
which the ``text`` skip index answers; a phrase is all its tokens plus a regular
expression for their order; a prefix a regular expression. ``index=False`` gives the
``ILIKE`` fallback (a server without the text index). Unlike SQLite's and PostgreSQL's
indexes, ClickHouse's does not stem: ``refunds`` does not find ``refund``. The Case
Explorer's list (:func:`analytics.sources.cases.search_cases`) counts, filters, sorts and
pages the warehouse's cases with it when a warehouse is set; a case's page and the
accounts' stay on Lookout's database (no names, e-mails or case actions here).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Engine,
    and_,
    create_engine,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from analytics.core.models import Account, Case
from analytics.sources.clickhouse_ddl import (
    PROJECTIONS,
    TEXT_INDEX,
    UPGRADES,
    create_statements,
)
from analytics.sources.fingerprint import fingerprint
from analytics.sources.frames import (
    case_facts,
    conform,
    specialty_moves,
    with_target_specialty,
)
from analytics.sources.search import Term, parse_query
from analytics.sources.snapshot import read_state, snapshot_damage, snapshot_dir, snapshot_is_fresh
from analytics.sources.snapshot_refresh import TableReader

__all__ = [
    "LoadSummary",
    "WarehouseError",
    "active_warehouse",
    "init_warehouse",
    "load",
    "search_case_ids",
    "search_condition",
    "warehouse_engine",
    "warehouse_url",
]

#: Rows per ``insert_arrow`` call.
BATCH_ROWS: Final = 1_000_000
#: Events read from the database per query when the snapshot is not fresh.
_EVENT_CHUNK: Final = 2_000_000
_DIALECT: Final = "clickhousedb"

#: The warehouse's columns as they are inserted (strings for enumerations; see the DDL).
ACCOUNT_COLUMNS: Final[dict[str, Any]] = {
    "id": pl.Int64,
    "kind": pl.String,
    "created_at": pl.Datetime("us"),
    "region": pl.String,
    "specialty": pl.String,
    "verified": pl.Boolean,
    "status": pl.String,
}
EVENT_COLUMNS: Final[dict[str, Any]] = {
    "id": pl.Int64,
    "ts": pl.Datetime("us"),
    "account_id": pl.Int64,
    "kind": pl.String,
    "platform": pl.String,
    "region": pl.String,
    "device_hash": pl.String,
    "ip_hash": pl.String,
    "target_account_id": pl.Int64,
    "rating": pl.Int16,
    "specialty": pl.String,
}
CASE_COLUMNS: Final[dict[str, Any]] = {
    "id": pl.Int64,
    "opened_at": pl.Datetime("us"),
    "source": pl.String,
    "category": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "region": pl.String,
    "platform": pl.String,
    "subject_account_id": pl.Int64,
    "reporter_account_id": pl.Int64,
    "assignee": pl.String,
    "description": pl.String,
    "first_response_at": pl.Datetime("us"),
    "resolved_at": pl.Datetime("us"),
    "resolution": pl.String,
    "appealed_at": pl.Datetime("us"),
    "appeal_outcome": pl.String,
    "specialty": pl.String,
    "repeat_offender": pl.Boolean,
}


class WarehouseError(RuntimeError):
    """A warehouse that cannot be used; the message is one line, without a password."""


_ENGINES: dict[str, Engine] = {}
# clickhouse-connect logs a failed request before raising it: the error is reported once,
# as one line, by the caller (a handler here keeps Python's last-resort one quiet).
logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())


def warehouse_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``LOOKOUT_WAREHOUSE_URL`` (of ``environ``, default the process's), or None when it
    is unset or blank."""
    env = os.environ if environ is None else environ
    return (env.get("LOOKOUT_WAREHOUSE_URL") or "").strip() or None


def _checked_url(url: str) -> str:
    """The URL with ``join_use_nulls=1``; a :class:`WarehouseError` when it is not a
    ClickHouse URL.

    >>> _checked_url("clickhousedb://?interface=chdb&path=/tmp/wh")
    'clickhousedb://?interface=chdb&join_use_nulls=1&path=%2Ftmp%2Fwh'
    >>> _checked_url("postgresql://u:secret@db/x")
    Traceback (most recent call last):
    ...
    analytics.sources.warehouse.WarehouseError: LOOKOUT_WAREHOUSE_URL must be a clickhousedb:// URL (ClickHouse through clickhouse-connect), not postgresql://u:***@db/x
    """  # noqa: E501
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WarehouseError(
            "LOOKOUT_WAREHOUSE_URL is not a database URL: expected "
            "clickhousedb://user:pw@host:8123/db or clickhousedb://?interface=chdb&path=/abs/dir"
        ) from None
    if parsed.drivername != _DIALECT:
        raise WarehouseError(
            f"LOOKOUT_WAREHOUSE_URL must be a {_DIALECT}:// URL (ClickHouse through "
            f"clickhouse-connect), not {parsed.render_as_string(hide_password=True)}"
        )
    if "join_use_nulls" not in parsed.query:
        parsed = parsed.update_query_dict({"join_use_nulls": "1"})
    return parsed.render_as_string(hide_password=False)


def warehouse_engine(url: str) -> Engine:
    """An engine on the warehouse at ``url``, one per URL for the life of the process
    (chdb lets one process open a data folder; its threads share it). Raises
    :class:`WarehouseError` for a URL that is not ClickHouse's."""
    checked = _checked_url(url)
    if checked not in _ENGINES:
        try:
            _ENGINES[checked] = create_engine(checked)
        except (NoSuchModuleError, ImportError) as exc:
            raise WarehouseError(
                f"cannot use {_DIALECT}:// ({exc}): install clickhouse-connect (requirements.txt)"
            ) from None
    return _ENGINES[checked]


def active_warehouse() -> Engine | None:
    """The engine of ``LOOKOUT_WAREHOUSE_URL``, or None when no warehouse is set."""
    url = warehouse_url()
    return None if url is None else warehouse_engine(url)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _client(conn: Connection) -> Any:
    """clickhouse-connect's client behind a SQLAlchemy connection (``query_arrow``,
    ``insert_arrow``, ``command``)."""
    return conn.connection.dbapi_connection.client  # type: ignore[union-attr]


def init_warehouse(engine: Engine) -> list[str]:
    """Create the warehouse's tables (idempotent); return the tables it has. Raises
    :class:`WarehouseError` (one line) when the warehouse cannot be reached."""
    try:
        with engine.connect() as conn:
            client = _client(conn)
            for statement in create_statements():
                client.command(statement)
            _upgrade(client)
            rows = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
            return sorted(r[0] for r in rows.result_rows)
    except Exception as exc:  # noqa: BLE001 - any driver error, as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if engine.url.query.get("interface") == "chdb" and "Unable to open" in first:
            first = (
                "chdb cannot open its folder: one process at a time may (is the app or "
                "another command using it?)"
            )
        raise WarehouseError(f"cannot use the warehouse {_where(engine)}: {first[:300]}") from None


def _upgrade(client: Any) -> None:
    """Add the columns a warehouse made by an older Lookout lacks (:data:`UPGRADES`), and
    empty the table they were added to: the next load copies its rows again, whole. Add
    the events' projections it lacks, and the cases' token index on the expression the
    search uses (the first release built it on ``lower``, which no search used), and
    build them for the rows already there."""
    have = {
        (t, c)
        for t, c in client.query(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase()"
        ).result_rows
    }
    for table, column, kind in UPGRADES:
        if (table, column) not in have:
            client.command(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
            client.command(f"TRUNCATE TABLE {table}")
    index = client.query(
        "SELECT expr FROM system.data_skipping_indices WHERE database = currentDatabase() "
        "AND table = 'cases' AND name = 'ix_cases_description'"
    ).result_rows
    if [r[0] for r in index] != [TEXT_INDEX.split(" TYPE ", 1)[0]]:
        client.command("ALTER TABLE cases DROP INDEX IF EXISTS ix_cases_description")
        client.command(f"ALTER TABLE cases ADD INDEX ix_cases_description {TEXT_INDEX}")
        client.command(
            "ALTER TABLE cases MATERIALIZE INDEX ix_cases_description",
            settings={"mutations_sync": 2},
        )
    built = {
        r[0]
        for r in client.query(
            "SELECT name FROM system.projections WHERE database = currentDatabase() "
            "AND table = 'events'"
        ).result_rows
    }
    for name, query in PROJECTIONS.items():
        if name not in built:
            client.command(f"ALTER TABLE events ADD PROJECTION IF NOT EXISTS {name} ({query})")
            client.command(
                f"ALTER TABLE events MATERIALIZE PROJECTION {name}",
                settings={"mutations_sync": 2},
            )


@dataclass(frozen=True)
class LoadSummary:
    """What a warehouse load did."""

    mode: Literal["full", "incremental"]
    #: Where the events came from: the fresh Parquet snapshot, or the database.
    source: Literal["snapshot", "database"]
    new_events: int
    events: int
    cases: int
    accounts: int
    seconds: float

    def describe(self) -> str:
        """One line for the command line.

        >>> LoadSummary("incremental", "snapshot", 5, 105, 7, 3, 0.25).describe()
        'incremental warehouse load (events from the snapshot): 5 new events (105 in all), 7 cases, 3 accounts, 0.2 s'
        """  # noqa: E501
        return (
            f"{self.mode} warehouse load (events from the {self.source}): "
            f"{self.new_events:,} new events ({self.events:,} in all), {self.cases:,} cases, "
            f"{self.accounts:,} accounts, {self.seconds:.1f} s"
        )


def load(
    lookout: Engine,
    warehouse: Engine,
    *,
    full: bool = False,
    root: Path | None = None,
    batch_rows: int = BATCH_ROWS,
) -> LoadSummary:
    """Copy Lookout's analytic tables from ``lookout`` into ``warehouse`` (see the module
    docstring): accounts and cases whole, events incrementally unless ``full``, the
    history was rewritten, or events disappeared. ``root``: the snapshots' folder."""
    t0 = time.perf_counter()
    init_warehouse(warehouse)
    fp = fingerprint(lookout)
    rewrites = int((fp.get("data_version") or {}).get("events") or 0)
    top = (fp.get("events") or [None])[0]
    with warehouse.connect() as conn:
        client = _client(conn)
        last = client.query(
            "SELECT events_rewrites FROM lookout_loads ORDER BY loaded_at DESC LIMIT 1"
        ).result_rows
        have = client.query("SELECT maxOrNull(id) FROM events").result_rows[0][0]
        full = (
            full
            or not last
            or int(last[0][0]) != rewrites
            or (have is not None and (top is None or int(top) < int(have)))
        )
        since = None if full else have
        reader = TableReader(lookout)
        accounts = reader.query(
            select(*[getattr(Account, c) for c in ACCOUNT_COLUMNS]), ACCOUNT_COLUMNS
        )
        cases = _with_case_facts(
            reader.query(select(*[getattr(Case, c) for c in _STORED_CASE_COLUMNS]), CASE_COLUMNS),
            accounts,
        )
        before = pl.from_arrow(client.query_arrow("SELECT id, specialty FROM accounts"))
        assert isinstance(before, pl.DataFrame)
        moved = specialty_moves(before, accounts)
        _replace(client, "accounts", accounts, batch_rows)
        _replace(client, "cases", cases, batch_rows)
        if moved and not full:  # the events carry their target's specialty
            full, since = True, None
        fresh = snapshot_is_fresh(lookout, root=root)
        folder = snapshot_dir(lookout, root=root)
        if fresh and snapshot_damage(folder, read_state(folder) or {}) is not None:
            fresh = False
        chunks = (
            _snapshot_events(folder, since) if fresh else _database_events(lookout, since, accounts)
        )
        target = "events__loading" if full else "events"
        if full:
            _staging(client, "events")
        new_events = 0
        for chunk in chunks:
            new_events += _insert(client, target, chunk, batch_rows)
        if full:
            _swap(client, "events")
        counts = client.query(
            "SELECT (SELECT count() FROM events), (SELECT maxOrNull(id) FROM events)"
        ).result_rows[0]
        mode: Literal["full", "incremental"] = "full" if full else "incremental"
        row = [datetime.now(UTC), mode, counts[1], rewrites, counts[0], cases.height]
        client.insert(
            "lookout_loads",
            [[*row, accounts.height]],
            column_names=[
                "loaded_at", "mode", "max_event_id", "events_rewrites", "events", "cases",
                "accounts",
            ],
        )  # fmt: skip
    return LoadSummary(
        mode,
        "snapshot" if fresh else "database",
        new_events,
        int(counts[0]),
        cases.height,
        accounts.height,
        time.perf_counter() - t0,
    )


#: The cases' columns read from Lookout's database (the others are derived at load).
_STORED_CASE_COLUMNS: Final = [c for c in CASE_COLUMNS if c not in ("specialty", "repeat_offender")]


def _with_case_facts(cases: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """``cases`` with the subject's specialty and the repeat-offender flag, derived as the
    snapshot derives them (:func:`~analytics.sources.frames.case_facts`)."""
    facts = case_facts(cases, accounts).select(
        "id", pl.col("specialty").cast(pl.String), "repeat_offender"
    )
    stored = cases.drop("specialty", "repeat_offender", strict=False)
    return stored.join(facts, on="id", how="left", maintain_order="left")


def _snapshot_events(folder: Path, since: int | None) -> Iterator[pl.DataFrame]:
    """The snapshot's event parts in id order (each part is one id range), the rows with
    id above ``since``."""
    for part in sorted((folder / "events").glob("*.parquet")):
        scan = pl.scan_parquet(part)
        if since is not None:
            scan = scan.filter(pl.col("id") > since)
        yield scan.select(list(EVENT_COLUMNS)).sort("id").collect()


def _database_events(
    engine: Engine, since: int | None, accounts: pl.DataFrame
) -> Iterator[pl.DataFrame]:
    """Events with id above ``since`` read from the database in id ranges (the
    snapshot's reader: connectorx for SQLite and PostgreSQL), with their target's
    specialty from ``accounts``."""
    reader = TableReader(engine)
    top = reader.max_event_id()
    if top is None or (since is not None and top <= since):
        return
    lo = since if since is not None else (reader.min_event_id() or 1) - 1
    while lo < top:
        hi = min(lo + _EVENT_CHUNK, top)
        chunk = with_target_specialty(reader.events(lo, hi), accounts)
        yield chunk.select(list(EVENT_COLUMNS)).sort("id")
        lo = hi


def _insert(client: Any, table: str, frame: pl.DataFrame, batch_rows: int) -> int:
    """Insert ``frame`` (cast to the warehouse's columns) through Arrow, in batches."""
    columns = {"accounts": ACCOUNT_COLUMNS, "events": EVENT_COLUMNS, "cases": CASE_COLUMNS}
    frame = conform(frame, columns[table.removesuffix("__loading")])
    for offset in range(0, frame.height, batch_rows):
        client.insert_arrow(table, frame.slice(offset, batch_rows).to_arrow())
    return frame.height


def _staging(client: Any, table: str) -> None:
    client.command(f"DROP TABLE IF EXISTS {table}__loading")
    client.command(f"CREATE TABLE {table}__loading AS {table}")


def _swap(client: Any, table: str) -> None:
    """Swap the loaded staging table in, atomically, and drop the old rows."""
    client.command(f"EXCHANGE TABLES {table} AND {table}__loading")
    client.command(f"DROP TABLE {table}__loading")


def _replace(client: Any, table: str, frame: pl.DataFrame, batch_rows: int) -> None:
    """Replace a whole table's rows: load a staging copy, then swap it in."""
    _staging(client, table)
    _insert(client, f"{table}__loading", frame, batch_rows)
    _swap(client, table)


# --------------------------------------------------------------------------- search

_TEXT = func.lowerUTF8(Case.description)
_OTHER = r"[^\pL\pN]"


def _pattern(term: Term) -> str:
    r"""The RE2 pattern of a phrase or prefix on the lower-cased text: the words in order,
    separated by anything but letters and digits, starting (and unless a prefix, ending)
    at a word's edge.

    >>> _pattern(Term(("gift", "card")))
    '(^|[^\\pL\\pN])gift[^\\pL\\pN]+card($|[^\\pL\\pN])'
    >>> _pattern(Term(("verif",), prefix=True))
    '(^|[^\\pL\\pN])verif'
    """
    body = f"{_OTHER}+".join(re.escape(w) for w in term.words)
    return f"(^|{_OTHER}){body}" + ("" if term.prefix else f"($|{_OTHER})")


def _term(term: Term, *, index: bool) -> ColumnElement[bool]:
    if not index:
        escaped = " ".join(term.words).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # ClickHouse's LIKE escapes with a backslash by default (and takes no ESCAPE clause)
        return Case.description.ilike(f"%{escaped}%")
    if len(term.words) == 1 and not term.prefix:
        return func.hasToken(_TEXT, term.words[0], type_=Boolean)
    tokens = term.words if not term.prefix else term.words[:-1]
    regex = func.match(_TEXT, _pattern(term), type_=Boolean)
    if not tokens:
        return regex
    return and_(func.hasAllTokens(_TEXT, list(tokens), type_=Boolean), regex)


def search_condition(text: str, *, index: bool = True) -> ColumnElement[bool] | None:
    """The condition on the warehouse's ``cases`` that the search ``text`` asks for
    (the search box's syntax, :func:`analytics.sources.search.parse_query`), or None when
    it asks for nothing. ``index=False``: ``ILIKE`` on every term (substrings).

    >>> search_condition(" -- ") is None
    True
    >>> "hasToken" in str(search_condition("refund -spam"))
    True
    >>> "LIKE" in str(search_condition("refund", index=False))
    True
    """
    groups = parse_query(text)
    if not groups:
        return None
    wanted = [or_(*(_term(t, index=index) for t in g)) for g in groups if not g[0].exclude]
    unwanted = [not_(_term(g[0], index=index)) for g in groups if g[0].exclude]
    return and_(*wanted, *unwanted)


def search_case_ids(warehouse: Engine, text: str, *, index: bool = True) -> list[int]:
    """The ids of the warehouse's cases that the search ``text`` finds, ascending."""
    condition = search_condition(text, index=index)
    if condition is None:
        return []
    with warehouse.connect() as conn:
        rows = conn.execute(select(Case.id.label("id")).where(condition).order_by(Case.id))
        return [int(r[0]) for r in rows]
