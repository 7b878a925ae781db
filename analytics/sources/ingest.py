"""Import a CSV or Parquet file into a table: read it, upsert the good rows, quarantine the bad.

Accounts, events, cases, case actions and annotations can be imported. A file is read
with every column as text, checked column by column in Polars (presence, types,
vocabularies, lengths, ranges, foreign keys, duplicate ids:
:mod:`analytics.sources.ingest_checks`), and split in two: the good rows are upserted
by ``id`` in one transaction, the bad rows go to a quarantine CSV with the 1-based
data row number and every reason that applies. Problems with the file as a whole
(unknown table, missing or unreadable file, wrong format, missing or unknown columns)
raise :class:`~analytics.sources.ingest_checks.ImportRejected` with a one-line message
and change nothing.

The write transaction is kept short, so that sign-ins and audit rows written
meanwhile wait a moment instead of failing ("database is locked" on SQLite):
reading, checking, the foreign-key look-ups and telling new, changed and
unchanged rows apart all happen before it, and the rows to write are loaded
into a temporary staging table (private to the connection; on SQLite it does
not take the database's write lock). The write transaction then re-checks the
foreign keys against the staging table (a parent removed meanwhile sends its
rows to the quarantine), inserts the new ids and updates the changed rows with
two set-based statements, writes the quarantine file and commits. SQLite's write
lock is taken at its start (``BEGIN IMMEDIATE``); on PostgreSQL the table is
locked against other writers (readers go on).

Conventions:

- an empty field is a missing value; rows whose every field is empty (blank
  lines) are skipped and not counted;
- columns absent from the file are left as they are on update and are NULL on
  insert (only nullable columns may be absent);
- timestamps are ISO 8601 (``T`` or space, optional seconds and fraction,
  optional ``Z`` or ``+hh:mm`` offset); offsets are converted to UTC and the
  value is stored naive; a timestamp without an offset is taken as UTC;
- messages and reasons name the column and the problem; nothing here prints or
  logs row contents;
- the quarantine file holds raw rows (emails included): it is created afresh with
  mode 0600 and moved into place; a symbolic link at its path is refused, never
  followed.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl
from sqlalchemy import (
    BigInteger,
    Enum,
    MetaData,
    String,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.schema import Column

from analytics.core import database
from analytics.sources.ingest_checks import (
    LOOKUP_CHUNK,
    REASON,
    ROW,
    ColumnSpec,
    ImportRejected,
    add_file_reasons,
    check_header,
    check_values,
    column_specs,
    orm_table,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "import_rows",
    "check_quarantine_target",
    "default_quarantine",
    "read_rows",
    "BATCH_SIZE",
    "ImportSummary",
    "import_file",
]

BATCH_SIZE: Final = 5_000
"""Rows per ``executemany`` call when loading the staging table."""

_EXISTS: Final = "__exists"
_OLD: Final = "__old"


@dataclass(frozen=True)
class ImportSummary:
    """What an import did; ``read == inserted + updated + unchanged + quarantined``.

    Examples
    --------
    >>> s = ImportSummary("accounts", read=3, inserted=2, updated=0, unchanged=0, quarantined=1,
    ...                   quarantine_path=Path("a.quarantine.csv"))
    >>> s.describe()
    'accounts: read 3, inserted 2, updated 0, unchanged 0, quarantined 1 (see a.quarantine.csv)'
    """

    table: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    quarantine_path: Path | None

    def describe(self) -> str:
        """The summary as one readable line."""
        line = (
            f"{self.table}: read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, quarantined {self.quarantined}"
        )
        return f"{line} (see {self.quarantine_path})" if self.quarantine_path else line


def import_file(
    engine: Engine, table: str, path: Path | str, *, quarantine: Path | str | None = None
) -> ImportSummary:
    """Upsert the rows of a CSV or Parquet file into ``table`` by id; quarantine bad rows.

    Parameters
    ----------
    engine
        Database with the Lookout schema (see :func:`analytics.core.models.init_db`).
    table
        One of :data:`~analytics.sources.ingest_checks.IMPORTABLE_TABLES`.
    path
        A ``.csv`` or ``.parquet`` file whose columns are named as in the table;
        ``id`` and every non-nullable column are required.
    quarantine
        Where to write the rejected rows; default ``<stem>.quarantine.csv`` next
        to ``path``. Written only when at least one row is rejected, with mode
        0600 (it holds raw rows); a symbolic link there is refused, not followed.

    Returns
    -------
    ImportSummary
        Rows read, inserted (new id), updated (some value changed), unchanged
        and quarantined.

    Raises
    ------
    ImportRejected
        For a problem with the file as a whole, or when the write transaction fails;
        nothing is written then.

    Examples
    --------
    >>> import tempfile
    >>> from analytics.core import models
    >>> folder = Path(tempfile.mkdtemp())
    >>> engine = database.make_engine(f"sqlite:///{folder / 'doc.db'}")
    >>> _ = models.init_db(engine)
    >>> _ = (folder / "notes.csv").write_text(
    ...     "id,start_at,kind,title,created_by\\n"
    ...     "1,2024-07-04,holiday,Independence Day,ana\\n"
    ...     "2,someday,holiday,Labor Day,ana\\n"
    ... )
    >>> import_file(engine, "annotations", folder / "notes.csv").describe()
    ... # doctest: +ELLIPSIS
    'annotations: read 2, inserted 1, ... quarantined 1 (see .../notes.quarantine.csv)'
    >>> import_file(engine, "annotations", folder / "notes.csv").unchanged
    1
    >>> engine.dispose()
    >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    columns = column_specs(table)
    target = Path(quarantine) if quarantine is not None else default_quarantine(path)
    check_quarantine_target(target, path)
    return import_rows(engine, table, _load(path, columns), quarantine=target)


def import_rows(
    engine: Engine,
    table: str,
    raw: pl.DataFrame,
    *,
    quarantine: Path,
    original: pl.DataFrame | None = None,
) -> ImportSummary:
    """Upsert rows already read as text into ``table`` by id; quarantine the bad ones.

    The part of :func:`import_file` after reading: ``raw`` has a ``__row`` column (the
    1-based row number the quarantine file reports) and, as nullable text, columns named
    as in the table (a subset; ``id`` and every non-nullable column present). The
    same checks, upsert and quarantine guarantees apply; reading through a source map
    (:mod:`analytics.sources.mapped`) imports its rows this way. ``original``, when given,
    holds the rows as they were before a map converted them (same ``__row`` numbers):
    the quarantine file shows those.
    """
    columns = column_specs(table)
    target = quarantine
    top_before = _max_id(engine, table)
    present = [c for c in columns if c.name in raw.columns]
    checked = check_values(raw, present)
    with engine.connect() as conn:  # reads only: no write lock is held here
        checked = add_file_reasons(conn, checked, present, table=table)
        good = checked.filter(pl.col(REASON).is_null()).drop(REASON)
        changed = _changed_rows(conn, orm_table(table), good)
        conn.rollback()
        shown = raw if original is None else original
        bad = _quarantine_rows(shown, checked)
        written = _write(conn, orm_table(table), changed, present, quarantine=(shown, bad, target))
    bad = written.bad
    if written.inserted or written.updated:
        database.set_meta(engine, "non_demo_data", True)
        # Events are append-only for snapshots: changed rows, or new rows below the
        # highest id a snapshot has seen, make snapshots rebuild their events.
        below = top_before is not None and min(written.ids, default=top_before + 1) <= top_before
        database.bump_data_version(
            engine, events_rewritten=table == "events" and bool(written.updated or below)
        )
    return ImportSummary(
        table=table,
        read=raw.height,
        inserted=written.inserted,
        updated=written.updated,
        unchanged=good.height - changed.height,
        quarantined=bad.height,
        quarantine_path=target if bad.height else None,
    )


def _max_id(engine: Engine, table: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(func.max(orm_table(table).c.id))).scalar()


def default_quarantine(path: Path) -> Path:
    return path.with_name(f"{path.stem}.quarantine.csv")


# --- reading ----------------------------------------------------------------------------------


def _load(path: Path, columns: list[ColumnSpec]) -> pl.DataFrame:
    """Read the file as text, check its header, number the rows and drop blank ones."""
    return read_rows(path, columns)


def read_rows(path: Path, columns: list[ColumnSpec] | None = None) -> pl.DataFrame:
    """A CSV or Parquet file as nullable text, its names stripped, its data rows numbered
    in ``__row`` from 1, blank rows dropped (:class:`ImportRejected` for an unreadable file,
    or one whose header does not fit ``columns``, or that repeats a name).
    """
    frame = _read(path)
    names = [name.strip() for name in frame.columns]
    if columns is not None:
        check_header(names, columns)
    elif len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ImportRejected(f"{path.name}: duplicate columns: {', '.join(twice)}")
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    text = [pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in frame.columns]
    frame = frame.select(text).with_row_index(ROW, offset=1)
    blank = pl.all_horizontal(pl.exclude(ROW).is_null())
    return frame.filter(~blank).with_columns(pl.col(ROW).cast(pl.Int64))


def _read(path: Path) -> pl.DataFrame:
    """Every column of a CSV or Parquet file as nullable text."""
    readers: dict[str, Callable[[Path], pl.DataFrame]] = {
        ".csv": _read_csv,
        ".parquet": _read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ImportRejected(f"{path}: wrong format, expected a .csv or .parquet file")
    if not path.exists():
        raise ImportRejected(f"{path}: no such file")
    if not path.is_file():
        raise ImportRejected(f"{path}: not a file")
    try:
        return reader(path)
    except OSError as exc:
        raise ImportRejected(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        raise ImportRejected(f"{path}: empty file, no header row") from None
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        # Polars' own message may quote row content: say what is wrong without it.
        message = str(exc)
        if "utf-8" in message.lower():
            problem = "not UTF-8 text"
        elif "more fields" in message:
            problem = "a row has more fields than the header"
        else:
            problem = "malformed CSV (an unterminated quote?)"
        raise ImportRejected(f"{path}: cannot parse CSV: {problem}") from None


def _read_parquet(path: Path) -> pl.DataFrame:
    """Read with pyarrow, check the column types, then convert: Polars' own reader panics
    (printing a Rust backtrace) on some valid files, e.g. a fixed-offset time zone."""
    import pyarrow as pa  # only Parquet imports need it (a third of a second to import)
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, ValueError):
        raise ImportRejected(f"{path}: cannot parse Parquet: not a valid Parquet file") from None
    if not table.column_names:
        raise ImportRejected(f"{path}: empty file, no columns")
    names = table.column_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ImportRejected(f"duplicate columns: {', '.join(duplicated)}")
    table = pa.table([_arrow_plain(n, table.column(n)) for n in names], names=names)
    try:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame.select(_as_text(name, dtype) for name, dtype in frame.schema.items())
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        problem = type(exc).__name__
        raise ImportRejected(f"{path}: cannot convert the Parquet columns ({problem})") from None


def _arrow_plain(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column Polars can turn into text: time zones made UTC (same instants),
    dictionaries decoded; anything that is not a number, a boolean, text, a date or a
    timestamp is refused."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        return _arrow_plain(name, column.cast(kind.value_type))
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp(kind.unit, tz="UTC")) if kind.tz else column
    plain = (
        pa.types.is_integer(kind)
        or pa.types.is_float32(kind)
        or pa.types.is_float64(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_date(kind)
        or pa.types.is_null(kind)
    )
    if not plain:
        raise ImportRejected(f"column {name}: unsupported Parquet type {kind}")
    return column


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column read from Parquet as text; timestamps as ISO 8601 in UTC."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Date):
        return col.dt.to_string("%Y-%m-%d")
    return col.cast(pl.String)


# --- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    """What the write transaction did: counts, the written ids, every quarantined row."""

    inserted: int
    updated: int
    ids: list[int]
    bad: pl.DataFrame


def _changed_rows(conn: Connection, table: Table, good: pl.DataFrame) -> pl.DataFrame:
    """The good rows (with ``__row``) whose id is new or whose values differ from the stored row."""
    if good.is_empty():
        return good
    values = good.drop(ROW)
    status = _classify(values, _fetch_existing(conn, table, values))
    return good.filter(status != "same")


def _write(
    conn: Connection,
    table: Table,
    rows: pl.DataFrame,
    columns: list[ColumnSpec],
    *,
    quarantine: tuple[pl.DataFrame, pl.DataFrame, Path],
) -> _Written:
    """Stage ``rows``, then write them and the quarantine file in one short transaction.

    ``quarantine`` is the raw file, its rejected rows so far and the quarantine path.
    Rows whose parent row disappeared since the first check join the rejected ones.
    """
    raw, bad, target = quarantine
    if rows.is_empty():  # nothing to write: no write transaction at all
        if bad.height:
            _write_quarantine(bad, target)
        return _Written(0, 0, [], bad)
    staging = _stage(conn, table, rows)
    try:
        _begin_write(conn, table)
        late = _late_reference_reasons(conn, staging, columns, table=table)
        bad = _with_late_rows(raw, bad, late)
        kept = rows.filter(~pl.col(ROW).is_in(late.get_column(ROW).implode()))
        updated = _merge(conn, table, staging, [c for c in rows.columns if c != ROW])
        if bad.height:
            _write_quarantine(bad, target)
        conn.commit()
    except IntegrityError as exc:
        conn.rollback()
        problem = type(exc.orig).__name__ if exc.orig is not None else "IntegrityError"
        raise ImportRejected(
            f"{table.name}: the database refused the rows ({problem}; did another import or "
            "a clean-up run at the same time?); nothing was imported, try again"
        ) from None
    finally:
        _drop_staging(conn, staging)
    return _Written(kept.height - updated, updated, kept.get_column("id").to_list(), bad)


def _stage(conn: Connection, table: Table, rows: pl.DataFrame) -> Table:
    """A temporary table, private to ``conn``, holding ``rows``; committed before returning.

    Temporary tables live outside the main database, so loading one takes no lock that
    a sign-in or an audit write would wait for. Enumerations are staged as text (they
    are cast back when written).
    """
    name = f"import_{table.name}_{uuid.uuid4().hex[:12]}"
    staging = Table(
        name,
        MetaData(),
        Column(ROW, BigInteger, nullable=False),
        *(
            Column(c, _staged_type(table.c[c]), primary_key=c == "id")
            for c in rows.columns
            if c != ROW
        ),
        prefixes=["TEMPORARY"],
    )
    staging.create(conn)
    conn.commit()
    try:
        for batch in _batches(rows):
            conn.execute(insert(staging), batch)
        conn.commit()
    except BaseException:
        conn.rollback()
        _drop_staging(conn, staging)
        raise
    return staging


def _staged_type(col: Column[Any]) -> Any:
    return String() if isinstance(col.type, Enum) else col.type


def _drop_staging(conn: Connection, staging: Table) -> None:
    conn.rollback()
    staging.drop(conn, checkfirst=True)
    conn.commit()


def _begin_write(conn: Connection, table: Table) -> None:
    """Start the write transaction: SQLite takes its write lock now (waiting its busy
    timeout for another writer), so that the re-check and the writes see one state;
    PostgreSQL keeps other writers of ``table`` out until the commit, readers go on."""
    conn.rollback()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        name = conn.dialect.identifier_preparer.format_table(table)
        conn.exec_driver_sql("LOCK TABLE " + name + " IN SHARE ROW EXCLUSIVE MODE")


def _late_reference_reasons(
    conn: Connection, staging: Table, columns: list[ColumnSpec], *, table: Table
) -> pl.DataFrame:
    """``__row`` and ``__reason`` of staged rows whose parent row is gone; removed from staging.

    The first check ran before the write transaction; a parent deleted since then would
    make the database refuse the whole import, so such rows go to the quarantine instead.
    """
    reasons: list[pl.DataFrame] = []
    for spec in columns:
        if spec.references is None or spec.name not in staging.c:
            continue
        value = staging.c[spec.name]
        parent = orm_table(spec.references)
        missing = and_(value.is_not(None), ~exists().where(parent.c.id == value))
        if parent.name == table.name:  # a reference into the same table: staged rows count
            other = staging.alias("other")
            missing = and_(missing, ~exists().where(other.c.id == value))
        found = conn.execute(select(staging.c[ROW], value).where(missing)).all()
        if found:
            conn.execute(delete(staging).where(missing))
            reasons.append(
                pl.DataFrame(
                    [(r, f"{spec.name}: {v} not found in {spec.references}") for r, v in found],
                    schema={ROW: pl.Int64, REASON: pl.String},
                    orient="row",
                )
            )
    if not reasons:
        return pl.DataFrame(schema={ROW: pl.Int64, REASON: pl.String})
    every = pl.concat(reasons)
    return every.group_by(ROW, maintain_order=True).agg(pl.col(REASON).str.join("; "))


def _with_late_rows(raw: pl.DataFrame, bad: pl.DataFrame, late: pl.DataFrame) -> pl.DataFrame:
    """The rejected rows, with the late ones added, in file order."""
    if late.is_empty():
        return bad
    return pl.concat([bad, _quarantine_rows(raw, late)]).sort("row")


def _merge(conn: Connection, table: Table, staging: Table, names: list[str]) -> int:
    """Insert the staged rows with new ids, update the others; returns how many were updated."""
    if not names:
        return 0
    source = {n: _from_staging(staging.c[n], table.c[n]) for n in names}
    stored = exists().where(table.c.id == staging.c.id)
    updated = conn.execute(select(func.count()).select_from(staging).where(stored)).scalar_one()
    new_rows = select(*source.values()).where(~stored)
    conn.execute(insert(table).from_select(names, new_rows))
    if updated:
        others = {n: expr for n, expr in source.items() if n != "id"}
        if others:
            conn.execute(update(table).values(others).where(table.c.id == staging.c.id))
    return int(updated)


def _from_staging(staged: Column[Any], target: Column[Any]) -> ColumnElement[Any]:
    """A staged value as the target column's type (enumerations were staged as text)."""
    if isinstance(target.type, Enum):
        return cast(staged, target.type).label(target.name)
    return staged.label(target.name)


def _fetch_existing(conn: Connection, table: Table, good: pl.DataFrame) -> pl.DataFrame:
    """The stored rows with the ids of ``good``, in the same columns and dtypes."""
    columns = [
        type_coerce(table.c[name], String()).label(name)  # the plain value, not the StrEnum
        if isinstance(table.c[name].type, Enum)
        else table.c[name]
        for name in good.columns
    ]
    ids = good.get_column("id").to_list()
    rows: list[Any] = []
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        rows.extend(conn.execute(select(*columns).where(table.c.id.in_(chunk))).all())
    return pl.DataFrame(rows, schema=good.schema, orient="row")


def _classify(good: pl.DataFrame, existing: pl.DataFrame) -> pl.Series:
    """``insert`` (new id), ``update`` (some value differs) or ``same`` for every good row."""
    stored = existing.with_columns(pl.lit(True).alias(_EXISTS))
    joined = good.join(stored, on="id", how="left", suffix=_OLD, maintain_order="left")
    others = [c for c in good.columns if c != "id"]
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(c + _OLD)) for c in others])
    status = (
        pl.when(pl.col(_EXISTS).is_null())
        .then(pl.lit("insert"))
        .when(differs)
        .then(pl.lit("update"))
        .otherwise(pl.lit("same"))
    )
    return joined.select(status.alias("status")).get_column("status")


def _batches(rows: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, rows.height, BATCH_SIZE):
        yield rows.slice(start, BATCH_SIZE).to_dicts()


# --- quarantine -----------------------------------------------------------------------------


def _quarantine_rows(raw: pl.DataFrame, checked: pl.DataFrame) -> pl.DataFrame:
    """``row``, ``reason`` and the original text of every rejected row, in file order."""
    reasons = checked.select(ROW, REASON).filter(pl.col(REASON).is_not_null())
    originals = [c for c in raw.columns if c != ROW]
    return (
        reasons.join(raw, on=ROW, how="inner")
        .sort(ROW)
        .select(pl.col(ROW).alias("row"), pl.col(REASON).alias("reason"), *originals)
    )


def check_quarantine_target(target: Path, path: Path) -> None:
    """Refuse a quarantine path that is the input file or a symbolic link (never followed)."""
    if target.is_symlink():
        raise ImportRejected(
            f"{target}: the quarantine path is a symbolic link; refusing to follow it "
            "(remove it or give another --quarantine path)"
        )
    if target.resolve() == path.resolve():
        raise ImportRejected(f"{target}: the quarantine file cannot be the input file")


def _write_quarantine(bad: pl.DataFrame, target: Path) -> None:
    """Write the rejected rows to a new file only the owner can read (0600), then move it
    to ``target``: the move replaces a file or link at ``target`` and never follows one."""
    check_quarantine_target(target, Path(os.devnull))
    temporary: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp opens with O_CREAT | O_EXCL (and O_NOFOLLOW where there is one), mode 0600
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        with os.fdopen(handle, "wb") as out:
            bad.write_csv(out)
        os.replace(temporary, target)
        temporary = None
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        raise ImportRejected(f"{target}: cannot write the quarantine file: {reason}") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
