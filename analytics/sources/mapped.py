"""Reading a team's own database through its source map, and copying it into Lookout's.

With ``LOOKOUT_SOURCE_MAP=path`` (:func:`active_map`), Lookout's cases, events and
accounts come from the team's database (:func:`source_url`: the map's ``[source] url``,
or ``LOOKOUT_SOURCE_URL``), read only through a :func:`~analytics.sources.sourcemap.connect`
engine. :func:`sync` copies them into Lookout's database incrementally: for an entity
with a ``watermark`` (their column that grows with every new or changed row) only the
rows at or above the highest value already copied are read again; the others are read
whole, and rows that did not change are left alone. Each batch goes through the
importer (:func:`~analytics.sources.ingest.import_rows`): the same checks, upsert by id
and quarantine, so a row whose value maps to nothing is kept with its reason, never
dropped. The copy then feeds the Parquet snapshot and every page as imported data does.
Lookout's own tables (users, audit, feedback, incidents, annotations) stay in Lookout's
database and are never written to theirs.

Their values become ours by the value maps (:func:`translate`): a value listed in the
map becomes what it maps to, one already in Lookout's vocabulary stays, an ignored one
becomes empty, and any other is kept as it is, so the importer's check rejects the row
naming it. For a column that holds several joined values (``split``, tags), the row
takes the first entry of the value map, in the file's order, that is among its values,
then the first of its values that is already one of ours.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import polars as pl
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    func,
    literal_column,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import Label

from analytics.core import database
from analytics.sources.ingest import (
    ImportSummary,
    check_quarantine_target,
    default_quarantine,
    import_rows,
    read_rows,
)
from analytics.sources.ingest_checks import ROW, ColumnSpec, ImportRejected
from analytics.sources.sourcemap import (
    TODO,
    EntityMap,
    MapError,
    SourceMap,
    ValueMap,
    load_map,
    source_of,
    source_table,
)

__all__ = [
    "MAP_VARIABLE",
    "SyncSummary",
    "active_map",
    "import_mapped",
    "mapped_select",
    "read_entity",
    "source_url",
    "sync",
    "translate",
    "value_priority",
]

MAP_VARIABLE: Final = "LOOKOUT_SOURCE_MAP"
"""The environment variable naming the active source map."""
URL_VARIABLE: Final = "LOOKOUT_SOURCE_URL"
"""Overrides the map's ``[source] url``."""
BATCH_ROWS: Final = 100_000
"""Rows read from their database and imported at a time."""
_STATE_KEY: Final = "source_sync"
#: Parents first, so that foreign keys find their rows.
_ORDER: Final = ("accounts", "cases", "events")


def active_map() -> SourceMap | None:
    """The source map ``LOOKOUT_SOURCE_MAP`` names, or None when it is not set.

    Raises :class:`~analytics.sources.sourcemap.MapError` for a map that cannot be used.

    >>> import os
    >>> os.environ.pop("LOOKOUT_SOURCE_MAP", None) and None
    >>> active_map() is None
    True
    """
    path = os.environ.get(MAP_VARIABLE, "").strip()
    if not path:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return load_map(path)  # says why it cannot be read
    return _loaded(path, found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=8)
def _loaded(path: str, _mtime_ns: int, _size: int) -> SourceMap:
    """A map read once per version of its file (a changed file is read again)."""
    return load_map(path)


def source_url(smap: SourceMap, url: str | None = None) -> str:
    """Their database's URL: ``url`` if given, else ``LOOKOUT_SOURCE_URL``, else the map's
    ``[source] url``; ``env:NAME`` reads it from the variable ``NAME``.

    >>> from analytics.sources.sourcemap import SourceMap
    >>> os.environ["HELPDESK_URL"] = "sqlite:///helpdesk.db"
    >>> source_url(SourceMap(Path("m.toml"), (), url="env:HELPDESK_URL"))
    'sqlite:///helpdesk.db'
    >>> source_url(SourceMap(Path("m.toml"), ()))
    Traceback (most recent call last):
    ...
    analytics.sources.sourcemap.MapError: m.toml:1: the map has no [source] url and \
LOOKOUT_SOURCE_URL is not set: say where their database is
    """
    given = url or os.environ.get(URL_VARIABLE, "").strip() or smap.url
    if not given:
        raise MapError(
            [
                f"{smap.where(1)}: the map has no [source] url and {URL_VARIABLE} is not set: "
                "say where their database is"
            ]
        )
    if given.startswith("env:"):
        name = given[4:].strip()
        value = os.environ.get(name, "").strip()
        if not value:
            raise MapError([f"{smap.where(1)}: source.url reads ${name}, which is not set"])
        return value
    return given


def mapped_select(entity: EntityMap, *, since: Any = None) -> Select[Any]:
    """Their rows with our column names, values as they are in their database; with
    ``since``, only rows whose watermark is at or above it.

    >>> from analytics.sources.sourcemap import ColumnMap, EntityMap
    >>> e = EntityMap("accounts", "users", 1, 2, (ColumnMap("id", "uid", 3),), {}, (),
    ...               watermark="changed")
    >>> " ".join(str(mapped_select(e, since=5)).split())
    'SELECT uid AS id FROM users AS src WHERE changed >= :changed_1'
    """
    columns: list[Label[Any]] = [
        literal_column(c.theirs).label(c.ours) for c in entity.columns if c.theirs != TODO
    ]
    statement = select(*columns).select_from(source_of(entity))
    if since is not None and entity.watermark:
        statement = statement.where(literal_column(entity.watermark) >= since)
    return statement


def translate(frame: pl.DataFrame, entity: EntityMap) -> pl.DataFrame:
    """Their values as ours (see the module's rules), every column as text, as the
    importer reads a file.

    >>> from analytics.sources.sourcemap import ColumnMap, EntityMap, ValueMap
    >>> from analytics.sources.ingest_checks import column_specs
    >>> e = EntityMap("cases", "t", 1, 1, (ColumnMap("category", "tags", 1),),
    ...     {"category": ValueMap("category", {"abuse": "harassment", "5star": "fake_review"},
    ...                           frozenset({"vip"}), ",")}, tuple(column_specs("cases")))
    >>> tags = ["vip, 5star", "abuse,5star", "spam,vip", "vip", "odd"]
    >>> translate(pl.DataFrame({"category": tags}), e)["category"].to_list()
    ['fake_review', 'harassment', 'spam', None, 'odd']
    """
    specs = {s.name: s for s in entity.specs}
    columns = []
    for name in frame.columns:
        value = _as_text(pl.col(name), frame.schema[name])
        if name in entity.values and name in specs:
            value = _mapped(value, entity.values[name], specs[name])
        columns.append(value.alias(name))
    return frame.select(columns)


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return column.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Date):
        return column.dt.strftime("%Y-%m-%d")
    return column.cast(pl.String)


def value_priority(vmap: ValueMap, spec: ColumnSpec) -> tuple[list[str], list[str]]:
    """Their values in priority order and ours for each: the map's entries in its order,
    then ours as they are: the order :func:`translate` and pushdown through a map
    (:mod:`analytics.sources.mapped_pushdown`) both use.

    >>> spec = ColumnSpec("severity", "enum", False, choices=("high", "low"))
    >>> value_priority(ValueMap("severity", {"p1": "high", "p9": "low"}, frozenset({"p9"})), spec)
    (['p1', 'high', 'low'], ['high', 'high', 'low'])
    """
    keys = [k for k in vmap.values if k not in vmap.ignore]
    ours = [vmap.values[k] for k in keys]
    for choice in spec.choices:
        if choice not in vmap.values and choice not in vmap.ignore:
            keys.append(choice)
            ours.append(choice)
    return keys, ours


def _mapped(value: pl.Expr, vmap: ValueMap, spec: ColumnSpec) -> pl.Expr:
    keys, ours = value_priority(vmap, spec)
    ignored = list(vmap.ignore)
    if vmap.split is None:
        known = value.replace_strict(keys, ours, default=None, return_dtype=pl.String)
        return pl.when(value.is_in(ignored)).then(None).otherwise(pl.coalesce(known, value))
    items = value.str.split(vmap.split).list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
    )
    priority = items.list.eval(
        pl.element().replace_strict(
            keys, list(range(len(keys))), default=None, return_dtype=pl.Int64
        )
    ).list.min()
    best = priority.replace_strict(
        list(range(len(keys))), ours, default=None, return_dtype=pl.String
    )
    unknown = items.list.eval(pl.element().filter(~pl.element().is_in(keys + ignored)))
    return pl.coalesce(best, unknown.list.first())


def read_entity(
    engine: Engine, entity: EntityMap, *, since: Any = None, batch_rows: int = BATCH_ROWS
) -> Iterator[pl.DataFrame]:
    """Their rows through the map, translated (:func:`translate`), in batches."""
    for _theirs, ours in _batches(engine, entity, since=since, batch_rows=batch_rows):
        yield ours


def _batches(
    engine: Engine, entity: EntityMap, *, since: Any, batch_rows: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Batches of their rows as text with our column names: as they are, and translated."""
    statement = mapped_select(entity, since=since).execution_options(stream_results=True)
    names = [c.ours for c in entity.columns if c.theirs != TODO]
    with engine.connect() as conn:
        result = conn.execute(statement)
        while rows := result.fetchmany(batch_rows):
            frame = pl.DataFrame(
                [tuple(r) for r in rows],
                schema=names,
                orient="row",
                infer_schema_length=None,
                strict=False,
            )
            theirs = frame.select(_as_text(pl.col(c), frame.schema[c]) for c in frame.columns)
            yield theirs, translate(frame, entity)
        conn.rollback()


@dataclass(frozen=True)
class SyncSummary:
    """What one entity's copy did, with the importer's counts."""

    entity: str
    imported: ImportSummary
    since: Any
    watermark: Any

    def describe(self) -> str:
        """One line: the importer's counts, and from which watermark.

        >>> s = SyncSummary("events", ImportSummary("events", 2, 2, 0, 0, 0, None), 5, 7)
        >>> s.describe()
        'events: read 2, inserted 2, updated 0, unchanged 0, quarantined 0 (new since 5)'
        """
        line = self.imported.describe()
        return f"{line} (new since {self.since})" if self.since is not None else line


def _map_key(smap: SourceMap, url: str) -> str:
    """Changes when the map's text or their database changes: the copy starts again."""
    digest = hashlib.sha256(smap.path.read_bytes())
    digest.update(database.safe_url(url).encode())
    return digest.hexdigest()[:16]


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    return value


def sync(
    engine: Engine,
    smap: SourceMap,
    source: Engine,
    *,
    quarantine_dir: Path | None = None,
    full: bool = False,
) -> list[SyncSummary]:
    """Copy the mapped entities from their database (``source``, read-only) into Lookout's
    (``engine``): accounts, then cases, then events, each through the importer.

    Rows that cannot be imported go to ``<quarantine_dir>/<entity>-<UTC time>.quarantine.csv``
    (default ``LOOKOUT_QUARANTINE_DIR``, else ``data/quarantine``) with their reasons.
    ``full`` reads every row again. Raises
    :class:`~analytics.sources.ingest_checks.ImportRejected` when their database cannot be
    read through the map or a batch cannot be written; the watermarks already saved stay,
    so the next copy resumes there.
    """
    folder = quarantine_dir or Path(
        os.environ.get("LOOKOUT_QUARANTINE_DIR") or database.PROJECT_ROOT / "data" / "quarantine"
    )
    counts = database.table_counts(engine)
    if database.get_meta(engine, "demo") is not None and any(counts[t] for t in _ORDER):
        raise ImportRejected(
            f"{database.safe_url(str(engine.url))} holds the demo data: the team's rows would "
            "mix with it; point LOOKOUT_DATABASE_URL at a database of their own"
        )
    key = _map_key(smap, str(source.url))
    state = database.get_meta(engine, _STATE_KEY) or {}
    if state.get("map") != key or full:
        state = {"map": key, "watermarks": {}}
    state |= {"map_file": smap.path.name, "source": database.safe_url(str(source.url))}
    summaries = []
    for name in _ORDER:
        entity = smap.entity(name)
        if entity is None:
            continue
        since = _from_json(state["watermarks"].get(name)) if entity.watermark else None
        top = _top(source, entity) if entity.watermark else None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = folder / f"{name}-{stamp}.quarantine.csv"
        total = _copy(engine, source, entity, since, target)
        summaries.append(SyncSummary(name, total, since, top))
        if top is not None:
            state["watermarks"][name] = _to_json(top)
            database.set_meta(engine, _STATE_KEY, state)
    state["at"] = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    state["quarantined"] = {s.entity: s.imported.quarantined for s in summaries}
    database.set_meta(engine, _STATE_KEY, state)
    return summaries


def _top(source: Engine, entity: EntityMap) -> Any:
    """The highest watermark now, read before the rows (rows added meanwhile come again)."""
    assert entity.watermark is not None
    highest: Any = func.max(literal_column(entity.watermark))
    statement = select(highest).select_from(source_of(entity))
    with _reading(entity), source.connect() as conn:
        top = conn.execute(statement).scalar()
        conn.rollback()
    return top


@contextmanager
def _reading(entity: EntityMap) -> Iterator[None]:
    """Their database refusing a read through the map, as one line naming the entity."""
    try:
        yield
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(exc).__name__])[0]
        raise ImportRejected(
            f"{entity.entity}: their database cannot be read through the map ({first}); "
            "run python -m analytics sources check"
        ) from None


def _copy(
    engine: Engine, source: Engine, entity: EntityMap, since: Any, target: Path
) -> ImportSummary:
    counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0, "quarantined": 0}
    where: Path | None = None
    offset = 0
    batches = _batches(source, entity, since=since, batch_rows=BATCH_ROWS)
    while True:
        with _reading(entity):
            batch = next(batches, None)
        if batch is None:
            break
        theirs, ours = batch
        numbers = pl.int_range(offset + 1, offset + ours.height + 1, dtype=pl.Int64).alias(ROW)
        offset += ours.height
        part = target if where is None else target.with_name(f"{target.stem}-{offset}.csv")
        done = import_rows(
            engine,
            entity.entity,
            ours.with_columns(numbers),
            quarantine=part,
            original=theirs.with_columns(numbers),
        )
        for field_name in counts:
            counts[field_name] += getattr(done, field_name)
        where = where or done.quarantine_path
    return ImportSummary(entity.entity, quarantine_path=where, **counts)


def import_mapped(
    engine: Engine,
    table: str,
    path: Path | str,
    smap: SourceMap,
    *,
    quarantine: Path | str | None = None,
) -> ImportSummary:
    """Import another tool's export (CSV or Parquet) through the map's ``table`` entity.

    The file is read as text and becomes, for the map, the table its ``from`` names (or
    ``export`` when ``from`` is a SELECT) in an in-memory SQLite database, so the map's
    expressions are SQLite's (``datetime(created, 'unixepoch')``). Its rows are then
    converted and imported as :func:`~analytics.sources.ingest.import_file` does: a
    rejected row goes to the quarantine file (default ``<stem>.quarantine.csv``) as it
    was in the file, with the row number and every reason.

    Raises
    ------
    ImportRejected
        For a problem with the file as a whole, an entity the map does not declare, or
        an expression that fails on the file; nothing is written then.
    """
    path = Path(path)
    entity = smap.entity(table)
    if entity is None:
        raise ImportRejected(f"{smap.path}: the map does not declare {table} ([{table}])")
    target = Path(quarantine) if quarantine is not None else default_quarantine(path)
    check_quarantine_target(target, path)
    original = read_rows(path)
    name = source_table(entity) or "export"
    memory = create_engine("sqlite://")
    try:
        staged = Table(
            name,
            MetaData(),
            Column(ROW, Integer),
            *[Column(c, Text) for c in original.columns if c != ROW],
        )
        staged.create(memory)
        with memory.begin() as conn:
            if original.height:
                conn.execute(staged.insert(), original.to_dicts())
        plain = replace(entity, source=name)
        statement = mapped_select(plain).add_columns(literal_column(f'src."{ROW}"').label(ROW))
        try:
            with memory.connect() as conn:
                converted = pl.read_database(statement, conn, infer_schema_length=None)
        except Exception as exc:  # noqa: BLE001 - the map's expressions on their file
            orig = getattr(exc, "orig", None) or exc
            raise ImportRejected(
                f"{path.name}: the map's {table} columns do not run on this file: "
                f"{str(orig).strip().splitlines()[0]}"
            ) from None
    finally:
        memory.dispose()
    rows = translate(converted.drop(ROW), entity).with_columns(converted.get_column(ROW))
    return import_rows(engine, table, rows, quarantine=target, original=original)
