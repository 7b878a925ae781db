"""The checks an imported file goes through: each table's column specs, the header, every
value (types, vocabularies, lengths, ranges) and the checks across rows (duplicate ids,
foreign keys).

A problem with the file as a whole raises :class:`ImportRejected`; a problem with a row
becomes a reason in its ``__reason`` column (see :func:`check_values` and
:func:`add_file_reasons`). :mod:`analytics.sources.ingest` reads the file and writes the
rows that pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import Column

from analytics.core import models, taxonomy

__all__ = [
    "IMPORTABLE_TABLES",
    "LOOKUP_CHUNK",
    "REASON",
    "ROW",
    "ColumnSpec",
    "ImportRejected",
    "add_file_reasons",
    "check_header",
    "check_values",
    "column_specs",
    "orm_table",
]

IMPORTABLE_TABLES: Final[tuple[str, ...]] = (
    "accounts",
    "events",
    "cases",
    "case_actions",
    "annotations",
)
"""Tables a file may be imported into; ``feedback`` and ``audit_log`` are written by the app."""

LOOKUP_CHUNK: Final = 1_000
"""Ids per ``IN (...)`` query."""

_SHOWN_CHARS: Final = 40  # characters of a bad value quoted in a reason
_EARLIEST: Final = datetime(1990, 1, 1)
_END: Final = datetime(2101, 1, 1)  # exclusive: 2100 is the last accepted year
_STATE_COLUMNS: Final = frozenset({"region"})
#: The columns whose vocabulary is the taxonomy's (no CHECK in the database), and which.
_TAXONOMY_COLUMNS: Final = {
    ("cases", "category"): "category",
    ("cases", "source"): "source",
    ("cases", "severity"): "severity",
    ("annotations", "category"): "category",
}
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

ROW: Final = "__row"
"""The column with each row's 1-based data row number in the file."""
REASON: Final = "__reason"
"""The column with every reason a row is rejected, or null."""
_REASONS: Final = "__reasons"

_Kind = Literal["int", "bool", "float", "datetime", "enum", "state", "text"]


class ImportRejected(Exception):
    """The file as a whole cannot be imported; the message is one line and names no row content.

    Examples
    --------
    >>> str(ImportRejected("data.txt: wrong format, expected a .csv or .parquet file"))
    'data.txt: wrong format, expected a .csv or .parquet file'
    """


@dataclass(frozen=True)
class ColumnSpec:
    """How one table column is parsed and checked."""

    name: str
    kind: _Kind
    nullable: bool
    length: int | None = None
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None
    references: str | None = None


# --- the table's columns --------------------------------------------------------------------


def column_specs(table: str, *, vocabulary: taxonomy.Taxonomy | None = None) -> list[ColumnSpec]:
    """The checks for every column of an importable table; a case's category, source and
    severity take the values of ``vocabulary`` (default: the taxonomy in force).

    >>> mine = taxonomy.Taxonomy((taxonomy.CategoryDef("abuse"),), ("form",),
    ...     (taxonomy.SeverityDef("p1", 4),))
    >>> [s.choices for s in column_specs("cases", vocabulary=mine) if s.name == "category"]
    [('abuse',)]
    """
    if table not in IMPORTABLE_TABLES:
        valid = ", ".join(IMPORTABLE_TABLES)
        if table in models.TABLES:
            raise ImportRejected(f"table {table!r} is written only by the app; importable: {valid}")
        raise ImportRejected(f"unknown table {table!r}; importable tables: {valid}")
    choices = (vocabulary or taxonomy.active()).choices
    return [_column(table, col, choices) for col in orm_table(table).columns]


def _column(table: str, col: Column[Any], vocabulary: dict[str, tuple[str, ...]]) -> ColumnSpec:
    """Describe one ORM column: its kind, nullability, length, vocabulary, range, reference."""
    kind, length, choices, bounds = _kind_of(col)
    if col.name in _STATE_COLUMNS:
        kind, choices = "state", models.US_STATES
    elif (table, col.name) in _TAXONOMY_COLUMNS:
        kind, choices = "enum", vocabulary[_TAXONOMY_COLUMNS[table, col.name]]
    bounds = _VALUE_RANGES.get((table, col.name), bounds)
    references = next((fk.column.table.name for fk in col.foreign_keys), None)
    nullable = bool(col.nullable) and not col.primary_key
    return ColumnSpec(col.name, kind, nullable, length, choices, bounds, references)


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


def check_header(names: list[str], columns: list[ColumnSpec]) -> None:
    """Reject duplicate, unknown and missing required columns, all in one line."""
    known = {c.name for c in columns}
    problems = []
    # What a reader makes of a repeated column (CSV: ``email``, ``email_duplicated_0``);
    # such a name without its original is an unknown column, refused like any other.
    repeats = {
        n: m["name"] for n in names if (m := _DUPLICATED_HEADER.match(n)) and m["name"] in names
    }
    duplicated = sorted(set(repeats.values()) | {n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"duplicate columns: {', '.join(duplicated)}")
    missing = [c.name for c in columns if not c.nullable and c.name not in names]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    unknown = [n for n in names if n not in known and n not in repeats]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        expected = ", ".join(c.name for c in columns)
        problems.append(f"unknown columns: {shown} (the columns of this table are: {expected})")
    if problems:
        raise ImportRejected("; ".join(problems))


# --- checking values --------------------------------------------------------------------------


def check_values(raw: pl.DataFrame, columns: list[ColumnSpec]) -> pl.DataFrame:
    """``__row``, every column parsed (null when missing or invalid) and ``__reasons`` per row.

    Three passes, so that each parse (the timestamp one is costly) runs once per column:
    the cleaned text, then the parsed values, then the reasons that compare the two.
    """
    cleaned = raw.select(pl.col(ROW), *(_cleaned(spec).alias(_text(spec)) for spec in columns))
    parsed = cleaned.with_columns(
        _PARSERS[spec.kind](pl.col(_text(spec)), spec).alias(spec.name) for spec in columns
    )
    reasons = [reason for spec in columns for reason in _value_reasons(spec)]
    return parsed.select(
        pl.col(ROW),
        *(spec.name for spec in columns),
        pl.concat_list(reasons).list.drop_nulls().alias(_REASONS),
    )


def _text(spec: ColumnSpec) -> str:
    return f"__text_{spec.name}"


def _cleaned(spec: ColumnSpec) -> pl.Expr:
    """The text to parse: free text as written, other values stripped, blank as null."""
    value = pl.col(spec.name)
    if spec.kind == "text":
        return value
    stripped = value.str.strip_chars()
    return pl.when(stripped != "").then(stripped)


def _value_reasons(spec: ColumnSpec) -> list[pl.Expr]:
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


def _limit_reasons(spec: ColumnSpec, value: pl.Expr, parsed: pl.Expr) -> list[pl.Expr]:
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


def _parse_int(value: pl.Expr, _spec: ColumnSpec) -> pl.Expr:
    """Whole numbers, also written ``5.0`` (as spreadsheets and pandas do); null otherwise."""
    digits = value.str.extract(r"^([+-]?[0-9]+)", 1).cast(pl.Int64, strict=False)
    return pl.when(value.str.contains(_INTEGER)).then(digits)


def _parse_float(value: pl.Expr, _spec: ColumnSpec) -> pl.Expr:
    number = value.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _parse_bool(value: pl.Expr, _spec: ColumnSpec) -> pl.Expr:
    lowered = value.str.to_lowercase()
    return lowered.replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)


def _parse_choice(value: pl.Expr, spec: ColumnSpec) -> pl.Expr:
    return pl.when(value.is_in(list(spec.choices))).then(value)


def _parse_state(value: pl.Expr, spec: ColumnSpec) -> pl.Expr:
    upper = value.str.to_uppercase()
    return pl.when(upper.is_in(list(spec.choices))).then(upper)


def _parse_text(value: pl.Expr, _spec: ColumnSpec) -> pl.Expr:
    return value


def _parse_timestamp(value: pl.Expr, _spec: ColumnSpec) -> pl.Expr:
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


_PARSERS: Final[dict[_Kind, Callable[[pl.Expr, ColumnSpec], pl.Expr]]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "datetime": _parse_timestamp,
    "enum": _parse_choice,
    "state": _parse_state,
    "text": _parse_text,
}

_PROBLEMS: Final[dict[_Kind, Callable[[ColumnSpec], str]]] = {
    "int": lambda _: "is not an integer",
    "float": lambda _: "is not a number",
    "bool": lambda _: "is not a boolean (true/false/1/0/yes/no)",
    "datetime": lambda _: "is not an ISO 8601 timestamp",
    "enum": lambda spec: f"is not one of {', '.join(spec.choices)}",
    "state": lambda _: "is not a US state code",
    "text": lambda _: "is not text",
}


# --- checks across rows: duplicate ids, foreign keys ----------------------------------------


def add_file_reasons(
    conn: Connection, checked: pl.DataFrame, columns: list[ColumnSpec], *, table: str
) -> pl.DataFrame:
    """Add duplicate-id and foreign-key reasons; fold all reasons into one ``__reason`` text."""
    first = pl.col(ROW).min().over("id")
    later = pl.col("id").is_not_null() & (pl.col(ROW) != first)
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
    return checked.with_columns(reason.alias(REASON)).drop(_REASONS)


def _reference_reason(
    conn: Connection, checked: pl.DataFrame, spec: ColumnSpec, *, same_file: pl.Series | None
) -> pl.Expr:
    """A reason for ids that exist neither in the referenced table nor among ``same_file``."""
    assert spec.references is not None
    wanted = checked.get_column(spec.name).drop_nulls().unique().to_list()
    found = _existing_ids(conn, orm_table(spec.references), wanted)
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
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        found.extend(conn.scalars(select(table.c.id).where(table.c.id.in_(chunk))).all())
    return pl.Series("id", found, dtype=pl.Int64)


def orm_table(name: str) -> Table:
    """The SQLAlchemy table of an importable (or any) table name."""
    table = models.TABLES[name].__table__
    assert isinstance(table, Table)
    return table
