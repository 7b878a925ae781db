"""Import accounts, events, cases, case actions and annotations from CSV or Parquet.

A file is read with every column as text, checked column by column in Polars
(presence, types, vocabularies, lengths, ranges, foreign keys, duplicate ids),
and split in two: the good rows are upserted by ``id`` in one transaction, the
bad rows go to a quarantine CSV with the 1-based data row number and every
reason that applies. Problems with the file as a whole (unknown table, missing
or unreadable file, wrong format, missing or unknown columns) raise
:class:`ImportRejected` with a one-line message and change nothing.

Conventions:

- an empty field is a missing value; rows whose every field is empty (blank
  lines) are skipped and not counted;
- columns absent from the file are left as they are on update and are NULL on
  insert (only nullable columns may be absent);
- timestamps are ISO 8601 (``T`` or space, optional seconds and fraction,
  optional ``Z`` or ``+hh:mm`` offset); offsets are converted to UTC and the
  value is stored naive; a timestamp without an offset is taken as UTC;
- messages and reasons name the column and the problem; nothing here prints or
  logs row contents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.schema import Column

from analytics import db

__all__ = [
    "BATCH_SIZE",
    "IMPORTABLE_TABLES",
    "ImportRejected",
    "ImportSummary",
    "import_file",
]

IMPORTABLE_TABLES: Final[tuple[str, ...]] = (
    "accounts",
    "events",
    "cases",
    "case_actions",
    "annotations",
)
"""Tables a file may be imported into; ``feedback`` and ``audit_log`` are written by the app."""

BATCH_SIZE: Final = 5_000
"""Rows per ``executemany`` call when writing (all batches share one transaction)."""

_LOOKUP_CHUNK: Final = 1_000  # ids per ``IN (...)`` query
_SHOWN_CHARS: Final = 40  # characters of a bad value quoted in a reason
_EARLIEST: Final = datetime(1990, 1, 1)
_END: Final = datetime(2101, 1, 1)  # exclusive: 2100 is the last accepted year
_STATE_COLUMNS: Final = frozenset({"region"})
_VALUE_RANGES: Final[dict[tuple[str, str], tuple[int, int]]] = {("events", "rating"): (1, 5)}
_INT_BOUNDS: Final = {
    16: (-(2**15), 2**15 - 1),
    32: (-(2**31), 2**31 - 1),
    64: (-(2**63), 2**63 - 1),
}
_BOOLEANS: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_INTEGER = r"^[+-]?[0-9]+(?:\.0*)?$"
_ISO_8601 = (
    r"^(?<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?<hour>[0-9]{2}):(?<minute>[0-9]{2})"
    r"(?::(?<second>[0-9]{2})(?<fraction>\.[0-9]{1,9})?)?"
    r"(?:[Zz]|(?<sign>[+-])(?<off_hour>[0-9]{2})(?::?(?<off_minute>[0-9]{2}))?)?)?$"
)
_DUPLICATED_HEADER = re.compile(r"^(?P<name>.+)_duplicated_[0-9]+$")

_ROW: Final = "__row"
_REASONS: Final = "__reasons"
_REASON: Final = "__reason"
_EXISTS: Final = "__exists"
_OLD: Final = "__old"

_Kind = Literal["int", "bool", "float", "datetime", "enum", "state", "text"]


class ImportRejected(Exception):
    """The file as a whole cannot be imported; the message is one line and names no row content.

    Examples
    --------
    >>> str(ImportRejected("data.txt: wrong format, expected a .csv or .parquet file"))
    'data.txt: wrong format, expected a .csv or .parquet file'
    """


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


@dataclass(frozen=True)
class _Column:
    """How one table column is parsed and checked."""

    name: str
    kind: _Kind
    nullable: bool
    length: int | None = None
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None
    references: str | None = None


def import_file(
    engine: Engine, table: str, path: Path | str, *, quarantine: Path | str | None = None
) -> ImportSummary:
    """Upsert the rows of a CSV or Parquet file into ``table`` by id; quarantine bad rows.

    Parameters
    ----------
    engine
        Database with the Lookout schema (see :func:`analytics.db.init_db`).
    table
        One of :data:`IMPORTABLE_TABLES`.
    path
        A ``.csv`` or ``.parquet`` file whose columns are named as in the table;
        ``id`` and every non-nullable column are required.
    quarantine
        Where to write the rejected rows; default ``<stem>.quarantine.csv`` next
        to ``path``. Written only when at least one row is rejected.

    Returns
    -------
    ImportSummary
        Rows read, inserted (new id), updated (some value changed), unchanged
        and quarantined.

    Raises
    ------
    ImportRejected
        For a problem with the file as a whole; nothing is written then.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> engine = db.make_engine(f"sqlite:///{folder / 'doc.db'}")
    >>> _ = db.init_db(engine)
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
    columns = _columns(table)
    target = Path(quarantine) if quarantine is not None else _default_quarantine(path)
    if target.resolve() == path.resolve():
        raise ImportRejected(f"{target}: the quarantine file cannot be the input file")
    raw = _load(path, columns)
    top_before = _max_id(engine, table)
    present = [c for c in columns if c.name in raw.columns]
    checked = _check_values(raw, present)
    with engine.begin() as conn:
        checked = _add_file_reasons(conn, checked, present, table=table)
        good = checked.filter(pl.col(_REASON).is_null()).drop(_ROW, _REASON)
        bad = _quarantine_rows(raw, checked)
        inserted, updated, unchanged = _write(conn, _table(table), good)
        if bad.height:
            _write_quarantine(bad, target)
    if inserted or updated:
        db.set_meta(engine, "non_demo_data", True)
        # Events are append-only for snapshots: changed rows, or new rows below the
        # highest id a snapshot has seen, make snapshots rebuild their events.
        below = top_before is not None and good.filter(pl.col("id") <= top_before).height > 0
        db.bump_data_version(engine, events_rewritten=table == "events" and bool(updated or below))
    return ImportSummary(
        table=table,
        read=raw.height,
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        quarantined=bad.height,
        quarantine_path=target if bad.height else None,
    )


def _max_id(engine: Engine, table: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(func.max(_table(table).c.id))).scalar()


# --- the table's columns --------------------------------------------------------------------


def _columns(table: str) -> list[_Column]:
    """The checks for every column of an importable table."""
    if table not in IMPORTABLE_TABLES:
        valid = ", ".join(IMPORTABLE_TABLES)
        if table in db.TABLES:
            raise ImportRejected(f"table {table!r} is written only by the app; importable: {valid}")
        raise ImportRejected(f"unknown table {table!r}; importable tables: {valid}")
    return [_column(table, col) for col in _table(table).columns]


def _column(table: str, col: Column[Any]) -> _Column:
    """Describe one ORM column: its kind, nullability, length, vocabulary, range, reference."""
    kind, length, choices, bounds = _kind_of(col)
    if col.name in _STATE_COLUMNS:
        kind, choices = "state", db.US_STATES
    bounds = _VALUE_RANGES.get((table, col.name), bounds)
    references = next((fk.column.table.name for fk in col.foreign_keys), None)
    nullable = bool(col.nullable) and not col.primary_key
    return _Column(col.name, kind, nullable, length, choices, bounds, references)


def _kind_of(
    col: Column[Any],
) -> tuple[_Kind, int | None, tuple[str, ...], tuple[int, int] | None]:
    """Kind, maximum length, allowed values and integer bounds of a column type."""
    kind = col.type
    if isinstance(kind, Enum):
        return "enum", None, tuple(kind.enums), None
    if isinstance(kind, Boolean):
        return "bool", None, (), None
    if isinstance(kind, DateTime):
        return "datetime", None, (), None
    if isinstance(kind, Float):
        return "float", None, (), None
    if isinstance(kind, Integer):
        bits = 16 if isinstance(kind, SmallInteger) else 64 if isinstance(kind, BigInteger) else 32
        return "int", None, (), _INT_BOUNDS[bits]
    if isinstance(kind, String):
        return "text", kind.length, (), None
    raise TypeError(f"column {col.name}: unsupported type {kind!r}")  # a schema change


def _default_quarantine(path: Path) -> Path:
    return path.with_name(f"{path.stem}.quarantine.csv")


# --- reading ----------------------------------------------------------------------------------


def _load(path: Path, columns: list[_Column]) -> pl.DataFrame:
    """Read the file as text, check its header, number the rows and drop blank ones."""
    frame = _read(path)
    names = [name.strip() for name in frame.columns]
    _check_header(names, columns)
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    text = [pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in frame.columns]
    frame = frame.select(text).with_row_index(_ROW, offset=1)
    blank = pl.all_horizontal(pl.exclude(_ROW).is_null())
    return frame.filter(~blank).with_columns(pl.col(_ROW).cast(pl.Int64))


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
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        raise ImportRejected(f"{path}: cannot parse Parquet: not a valid Parquet file") from None
    if not frame.columns:
        raise ImportRejected(f"{path}: empty file, no columns")
    return frame.select(_as_text(name, dtype) for name, dtype in frame.schema.items())


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as text; timestamps as ISO 8601 in UTC."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Date):
        return col.dt.to_string("%Y-%m-%d")
    if dtype.is_nested() or isinstance(dtype, pl.Binary | pl.Object):
        raise ImportRejected(f"column {name}: unsupported Parquet type {dtype}")
    return col.cast(pl.String)


def _check_header(names: list[str], columns: list[_Column]) -> None:
    """Reject duplicate, unknown and missing required columns, all in one line."""
    known = {c.name for c in columns}
    problems = []
    duplicated = sorted(
        {m["name"] for n in names if (m := _DUPLICATED_HEADER.match(n)) and m["name"] in names}
        | {n for n in names if names.count(n) > 1}
    )
    if duplicated:
        problems.append(f"duplicate columns: {', '.join(duplicated)}")
    missing = [c.name for c in columns if not c.nullable and c.name not in names]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    unknown = [n for n in names if n not in known and not _DUPLICATED_HEADER.match(n)]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        expected = ", ".join(c.name for c in columns)
        problems.append(f"unknown columns: {shown} (the columns of this table are: {expected})")
    if problems:
        raise ImportRejected("; ".join(problems))


# --- checking values --------------------------------------------------------------------------


def _check_values(raw: pl.DataFrame, columns: list[_Column]) -> pl.DataFrame:
    """``__row``, every column parsed (null when missing or invalid) and ``__reasons`` per row.

    Three passes, so that each parse (the timestamp one is costly) runs once per column:
    the cleaned text, then the parsed values, then the reasons that compare the two.
    """
    cleaned = raw.select(pl.col(_ROW), *(_cleaned(spec).alias(_text(spec)) for spec in columns))
    parsed = cleaned.with_columns(
        _PARSERS[spec.kind](pl.col(_text(spec)), spec).alias(spec.name) for spec in columns
    )
    reasons = [reason for spec in columns for reason in _value_reasons(spec)]
    return parsed.select(
        pl.col(_ROW),
        *(spec.name for spec in columns),
        pl.concat_list(reasons).list.drop_nulls().alias(_REASONS),
    )


def _text(spec: _Column) -> str:
    return f"__text_{spec.name}"


def _cleaned(spec: _Column) -> pl.Expr:
    """The text to parse: free text as written, other values stripped, blank as null."""
    value = pl.col(spec.name)
    if spec.kind == "text":
        return value
    stripped = value.str.strip_chars()
    return pl.when(stripped != "").then(stripped)


def _value_reasons(spec: _Column) -> list[pl.Expr]:
    """Reason expressions of one column: missing, unparseable, out of range or too long."""
    value, parsed = pl.col(_text(spec)), pl.col(spec.name)
    reasons: list[pl.Expr] = []
    if not spec.nullable:
        reasons.append(pl.when(value.is_null()).then(pl.lit(f"{spec.name}: missing value")))
    if spec.kind != "text":
        problem = _PROBLEMS[spec.kind](spec)
        reasons.append(
            pl.when(value.is_not_null() & parsed.is_null()).then(_quote(spec.name, value, problem))
        )
    return reasons + _limit_reasons(spec, value, parsed)


def _limit_reasons(spec: _Column, value: pl.Expr, parsed: pl.Expr) -> list[pl.Expr]:
    """Reasons for values that parse but fall outside the column's range or length."""
    name = spec.name
    if spec.kind == "int" and spec.bounds is not None:
        low, high = spec.bounds
        outside = parsed.is_not_null() & ~parsed.is_between(low, high)
        message = [
            pl.lit(f"{name}: "),
            parsed.cast(pl.String),
            pl.lit(f" is not between {low} and {high}"),
        ]
        return [pl.when(outside).then(pl.concat_str(message))]
    if spec.kind == "datetime":
        outside = parsed.is_not_null() & ~parsed.is_between(_EARLIEST, _END, closed="left")
        return [pl.when(outside).then(_quote(name, value, "is outside 1990..2100"))]
    if spec.kind == "text":
        reasons: list[pl.Expr] = [
            pl.when(value.str.contains("\x00", literal=True)).then(
                pl.lit(f"{name}: contains a NUL character")
            )
        ]
        if spec.length is not None:
            size = value.str.len_chars()
            message = [
                pl.lit(f"{name}: "),
                size.cast(pl.String),
                pl.lit(f" characters, more than {spec.length}"),
            ]
            reasons.append(pl.when(size > spec.length).then(pl.concat_str(message)))
        return reasons
    return []


def _quote(name: str, value: pl.Expr, problem: str) -> pl.Expr:
    """``"<name>: '<value>' <problem>"``, the value cut to a few dozen characters."""
    cut = value.str.len_chars() > _SHOWN_CHARS
    shown = pl.when(cut).then(pl.concat_str([value.str.slice(0, _SHOWN_CHARS), pl.lit("...")]))
    return pl.concat_str([pl.lit(f"{name}: '"), shown.otherwise(value), pl.lit(f"' {problem}")])


def _parse_int(value: pl.Expr, _spec: _Column) -> pl.Expr:
    """Whole numbers, also written ``5.0`` (as spreadsheets and pandas do); null otherwise."""
    digits = value.str.extract(r"^([+-]?[0-9]+)", 1).cast(pl.Int64, strict=False)
    return pl.when(value.str.contains(_INTEGER)).then(digits)


def _parse_float(value: pl.Expr, _spec: _Column) -> pl.Expr:
    number = value.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _parse_bool(value: pl.Expr, _spec: _Column) -> pl.Expr:
    lowered = value.str.to_lowercase()
    return lowered.replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)


def _parse_choice(value: pl.Expr, spec: _Column) -> pl.Expr:
    return pl.when(value.is_in(list(spec.choices))).then(value)


def _parse_state(value: pl.Expr, spec: _Column) -> pl.Expr:
    upper = value.str.to_uppercase()
    return pl.when(upper.is_in(list(spec.choices))).then(upper)


def _parse_text(value: pl.Expr, _spec: _Column) -> pl.Expr:
    return value


def _parse_timestamp(value: pl.Expr, _spec: _Column) -> pl.Expr:
    """ISO 8601 text to a naive UTC datetime (microseconds); null when not ISO 8601."""
    part = value.str.extract_groups(_ISO_8601).struct.field
    hour, minute, second = (part(n).fill_null("00") for n in ("hour", "minute", "second"))
    fraction = pl.concat_str([part("fraction").str.slice(1).fill_null(""), pl.lit("000000")])
    clock = [part("date"), pl.lit(" "), hour, pl.lit(":"), minute, pl.lit(":"), second]
    text = pl.concat_str([*clock, pl.lit("."), fraction.str.slice(0, 6)])
    local = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
    off_hour = part("off_hour").cast(pl.Int64).fill_null(0)
    off_minute = part("off_minute").cast(pl.Int64).fill_null(0)
    offset = off_hour * 60 + off_minute
    offset = pl.when(part("sign") == "-").then(-offset).otherwise(offset)
    valid = (
        (hour.cast(pl.Int64) <= 23)
        & (minute.cast(pl.Int64) <= 59)
        & (second.cast(pl.Int64) <= 59)  # no leap seconds: chrono would roll them over
        & (off_hour <= 23)
        & (off_minute <= 59)
    )
    return pl.when(valid).then(local - pl.duration(minutes=offset))


_PARSERS: Final[dict[_Kind, Callable[[pl.Expr, _Column], pl.Expr]]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "datetime": _parse_timestamp,
    "enum": _parse_choice,
    "state": _parse_state,
    "text": _parse_text,
}

_PROBLEMS: Final[dict[_Kind, Callable[[_Column], str]]] = {
    "int": lambda _: "is not an integer",
    "float": lambda _: "is not a number",
    "bool": lambda _: "is not a boolean (true/false/1/0/yes/no)",
    "datetime": lambda _: "is not an ISO 8601 timestamp",
    "enum": lambda spec: f"is not one of {', '.join(spec.choices)}",
    "state": lambda _: "is not a US state code",
    "text": lambda _: "is not text",
}


# --- checks across rows: duplicate ids, foreign keys ----------------------------------------


def _add_file_reasons(
    conn: Connection, checked: pl.DataFrame, columns: list[_Column], *, table: str
) -> pl.DataFrame:
    """Add duplicate-id and foreign-key reasons; fold all reasons into one ``__reason`` text."""
    first = pl.col(_ROW).min().over("id")
    later = pl.col("id").is_not_null() & (pl.col(_ROW) != first)
    duplicate = pl.when(later).then(
        pl.concat_str(
            [pl.lit("duplicate id in file (first at row "), first.cast(pl.String), pl.lit(")")]
        )
    )
    checked = checked.with_columns(pl.concat_list([pl.col(_REASONS), duplicate]).list.drop_nulls())
    good_ids = checked.filter(pl.col(_REASONS).list.len() == 0).get_column("id")
    references = [
        _reference_reason(
            conn, checked, spec, same_file=good_ids if spec.references == table else None
        )
        for spec in columns
        if spec.references is not None
    ]
    reasons = pl.concat_list([pl.col(_REASONS), *references]).list.drop_nulls()
    reason = pl.when(reasons.list.len() > 0).then(reasons.list.join("; "))
    return checked.with_columns(reason.alias(_REASON)).drop(_REASONS)


def _reference_reason(
    conn: Connection, checked: pl.DataFrame, spec: _Column, *, same_file: pl.Series | None
) -> pl.Expr:
    """A reason for ids that exist neither in the referenced table nor among ``same_file``."""
    assert spec.references is not None
    wanted = checked.get_column(spec.name).drop_nulls().unique().to_list()
    found = _existing_ids(conn, _table(spec.references), wanted)
    if same_file is not None:
        found = pl.concat([found, same_file.drop_nulls()])
    col = pl.col(spec.name)
    missing = col.is_not_null() & ~col.is_in(found.implode())
    message = [
        pl.lit(f"{spec.name}: "),
        col.cast(pl.String),
        pl.lit(f" not found in {spec.references}"),
    ]
    return pl.when(missing).then(pl.concat_str(message))


def _existing_ids(conn: Connection, table: Table, ids: list[int]) -> pl.Series:
    """The subset of ``ids`` present in ``table``."""
    found: list[int] = []
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        found.extend(conn.scalars(select(table.c.id).where(table.c.id.in_(chunk))).all())
    return pl.Series("id", found, dtype=pl.Int64)


def _table(name: str) -> Table:
    table = db.TABLES[name].__table__
    assert isinstance(table, Table)
    return table


# --- writing --------------------------------------------------------------------------------


def _write(conn: Connection, table: Table, good: pl.DataFrame) -> tuple[int, int, int]:
    """Insert new ids and update changed rows; returns (inserted, updated, unchanged)."""
    if good.is_empty():
        return 0, 0, 0
    status = _classify(good, _fetch_existing(conn, table, good))
    new = good.filter(status == "insert")
    changed = good.filter(status == "update")
    make_insert = _dialect_insert(conn.dialect.name)
    if make_insert is None:
        _insert_plain(conn, table, new)
        _update_plain(conn, table, changed)
    else:
        _upsert(conn, table, pl.concat([new, changed]), make_insert)
    return new.height, changed.height, good.height - new.height - changed.height


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
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
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


def _dialect_insert(dialect: str) -> Callable[[Table], Any] | None:
    """The ``INSERT ... ON CONFLICT`` constructor of a dialect that has one."""
    constructors: dict[str, Callable[[Table], Any]] = {
        "sqlite": sqlite.insert,
        "postgresql": postgresql.insert,
    }
    return constructors.get(dialect)


def _upsert(
    conn: Connection, table: Table, rows: pl.DataFrame, make_insert: Callable[[Table], Any]
) -> None:
    stmt = make_insert(table)
    updates = {c: stmt.excluded[c] for c in rows.columns if c != "id"}
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.id], set_=updates)
    for batch in _batches(rows):
        conn.execute(stmt, batch)


def _insert_plain(conn: Connection, table: Table, rows: pl.DataFrame) -> None:
    for batch in _batches(rows):
        conn.execute(insert(table), batch)


def _update_plain(conn: Connection, table: Table, rows: pl.DataFrame) -> None:
    others = [c for c in rows.columns if c != "id"]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("p_id"))
        .values({c: bindparam(f"p_{c}") for c in others})
    )
    renamed = rows.rename({c: f"p_{c}" for c in rows.columns})
    for batch in _batches(renamed):
        conn.execute(stmt, batch)


def _batches(rows: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, rows.height, BATCH_SIZE):
        yield rows.slice(start, BATCH_SIZE).to_dicts()


# --- quarantine -----------------------------------------------------------------------------


def _quarantine_rows(raw: pl.DataFrame, checked: pl.DataFrame) -> pl.DataFrame:
    """``row``, ``reason`` and the original text of every rejected row, in file order."""
    reasons = checked.select(_ROW, _REASON).filter(pl.col(_REASON).is_not_null())
    originals = [c for c in raw.columns if c != _ROW]
    return (
        reasons.join(raw, on=_ROW, how="inner")
        .sort(_ROW)
        .select(pl.col(_ROW).alias("row"), pl.col(_REASON).alias("reason"), *originals)
    )


def _write_quarantine(bad: pl.DataFrame, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        bad.write_csv(target)
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        raise ImportRejected(f"{target}: cannot write the quarantine file: {reason}") from None
