"""Pushdown through a source map: their rows as Lookout's, translated and checked in SQL.

:func:`mapped_view` turns one mapped entity into a SELECT over the team's database that
gives every column of Lookout's table under its name and in Lookout's vocabulary, by the
same rule as :func:`~analytics.sources.mapped.translate` (value maps as ``CASE``; joined
tags by position tests in the map's order). It keeps only the rows the importer would
take, so that the pushdown cube through the map equals the cube from the copy
(:func:`~analytics.sources.mapped.sync`): a value that maps to nothing, an unknown one, a
missing required value, a timestamp that does not read, a state that is not one, a text
too long, or an account id that is not among the mapped accounts excludes the row, as
the importer quarantines it. What still differs (see :data:`DIFFERENCES`): rows the
copy keeps from earlier syncs (deleted or since broken in their database), duplicate
ids, integers written as text, some whitespace, and some timestamp forms.

:func:`cube_through_map` and :func:`events_daily_through_map` run the pushdown queries of
:mod:`analytics.sources.pushdown` over these views on their database (read-only,
:func:`source_engine`); annotations stay in Lookout's own database.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import (
    CTE,
    BigInteger,
    DateTime,
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    event,
    func,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, FromClause, Select
from sqlalchemy.sql.functions import FunctionElement

from analytics.core.filters import Filters
from analytics.sources.frames import Cube
from analytics.sources.ingest_checks import ColumnSpec
from analytics.sources.mapped import mapped_select, source_url, value_priority
from analytics.sources.pushdown import Tables, cube_from_database, events_daily_from_database
from analytics.sources.sourcemap import TODO, EntityMap, SourceMap, ValueMap, connect

__all__ = [
    "DIFFERENCES",
    "cube_through_map",
    "events_daily_through_map",
    "mapped_tables",
    "mapped_view",
    "source_engine",
    "translate_columns",
]

DIFFERENCES: Final = (
    "the copy is as of its last sync, and keeps rows since deleted from their database and "
    "the last good version of a row that has since become unusable; pushdown reads what "
    "is there now",
    "a duplicated id: the copy keeps one row, pushdown counts each",
    "an integer column holding text: the copy quarantines the row; pushdown fails "
    "(PostgreSQL) or keeps it (SQLite)",
    "whitespace: the copy strips any around a value; pushdown strips spaces around a "
    "single value, and spaces, tabs and newlines around joined ones, but also squeezes "
    "runs of them inside a joined value",
    "a number read as text: a float 1.0 is '1.0' to the copy's value map, may be '1' in SQL",
    "timestamps as text: offsets written +02 or +0200 are read by the copy, not by SQLite; "
    "SQLite keeps milliseconds, the copy microseconds",
    "an id that refers to an entity the map does not declare is checked against Lookout's "
    "database by the copy, not at all by pushdown",
)
"""Where pushdown through the map and the copy can give different rows."""

_BOOLEANS: Final = ("true", "1", "yes", "false", "0", "no")
_EARLIEST: Final = datetime(1990, 1, 1)
_END: Final = datetime(2101, 1, 1)
_WHITESPACE: Final = ("\t", "\n", "\r")
_RUNS: Final = 6
"""Passes that halve runs of spaces or separators: runs of up to 64 become one."""
_PER_STAGE: Final = 12
"""Known values replaced away per subquery (SQLite's parser nests about 100 deep)."""
#: PostgreSQL type oids of the mapped columns that hold timestamps as they are.
_PG_TIMESTAMPTZ: Final = 1184
_PG_TIMESTAMP: Final = 1114
_PG_DATE: Final = 1082
_PG_TEXT: Final = frozenset({25, 1043, 1042, 19})
#: The ISO 8601 forms the importer reads (PostgreSQL regex; analytics.sources.ingest_checks).
_ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
_ISO_NAIVE: Final = _ISO_DAY + r")?$"
_ISO_ZONED: Final = _ISO_DAY + r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?))$"

_ENGINES: dict[str, Engine] = {}


def source_engine(url: str) -> Engine:
    """A read-only engine on their database (:func:`~analytics.sources.sourcemap.connect`),
    one per URL for the life of the process (its pool is reused by every page)."""
    if url not in _ENGINES:
        engine = connect(url)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "begin", _hash_joins)
        _ENGINES[url] = engine
    return _ENGINES[url]


def _hash_joins(conn: Any) -> None:
    """Joins of the views by hashing, not nested loops: through the stacked checks the
    planner expects one row from a view of millions, and a nested loop over two views
    (events and their target accounts) ran for minutes on the medium demo."""
    conn.exec_driver_sql("SET LOCAL enable_nestloop = off")


class _position(FunctionElement[int]):
    """Where ``needle`` starts in ``haystack`` (1-based, 0 when absent), case-sensitive."""

    inherit_cache = True
    name = "lookout_position"


@compiles(_position)
def _position_default(element: _position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(_position, "sqlite")
def _position_sqlite(element: _position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def _text(value: Any) -> ColumnElement[str]:
    return cast(value, String)


def _lit(value: str) -> ColumnElement[str]:
    """A constant string as a bound parameter (no quoting, no LIKE wildcards)."""
    return bindparam(None, value, type_=String, unique=True)


def _squeezed(value: ColumnElement[str], sep: str) -> ColumnElement[str]:
    """``value`` with tabs and newlines as spaces, runs of spaces as one, no space next to a
    separator, and ``sep`` on both ends: ``" a ,  b"`` -> ``",a,b,"``."""
    for char in _WHITESPACE:
        value = func.replace(value, _lit(char), _lit(" "))
    for _ in range(_RUNS):
        value = func.replace(value, _lit("  "), _lit(" "))
    value = func.replace(value, _lit(f"{sep} "), _lit(sep))
    value = func.replace(value, _lit(f" {sep}"), _lit(sep))
    return _lit(sep) + func.trim(value) + _lit(sep)


def _items(name: str) -> str:
    return f"__items_{name}"


def _rest(name: str) -> str:
    return f"__rest_{name}"


def _stage(statement: Select[Any], prefix: str, name: str) -> CTE:
    """One stage of a view, as a common table expression: SQLAlchemy lifts every CTE to the
    statement's WITH, so stages do not nest (SQLite's parser gives up about nine nested
    subqueries deep); PostgreSQL may still push the cube's filters into each one."""
    return statement.cte(f"{prefix}_{name}").prefix_with("NOT MATERIALIZED", dialect="postgresql")


def translate_columns(theirs: FromClause, entity: EntityMap, *, prefix: str = "") -> CTE:
    """``theirs`` (a FROM with our column names) with the value-mapped columns as ours, by
    :func:`~analytics.sources.mapped.translate`'s rule, as text; the other columns as
    they are. Built in stages (subqueries), each naming the previous one's columns, so
    that no expression is repeated inside another.

    Joined values (``split``): each entry of the value map, in the map's order, then each
    of our values, is looked for as ``<sep>value<sep>`` in the row's items squeezed
    between separators (:func:`_position`); the first found gives ours. Else the first
    item that is neither known nor ignored: what is left once every known and ignored
    item is replaced away (separators doubled first, so that one pass per value removes
    adjacent repeats), from the first separator to the next.
    """
    prefix = prefix or entity.entity
    specs = {s.name: s for s in entity.specs}
    names = list(theirs.c.keys())  # noqa: SIM118 - a column collection
    mapped = [name for name in names if name in entity.values and name in specs]
    split = [name for name in mapped if entity.values[name].split is not None]
    stage: FromClause = theirs
    if split:
        extra = []
        for name in split:
            sep = entity.values[name].split
            assert sep is not None
            extra.append(_squeezed(_text(stage.c[name]), sep).label(_items(name)))
        stage = _stage(select(*stage.c, *extra), prefix, "squeezed")
        rests = {
            name: func.replace(stage.c[_items(name)], _lit(sep), _lit(sep + sep))
            for name in split
            if (sep := entity.values[name].split) is not None
        }
        stage = _stage(
            select(*stage.c, *[r.label(_rest(n)) for n, r in rests.items()]), prefix, "rest0"
        )
        # Known and ignored items away, a few values per stage (SQLite's parser nests ~100).
        removals = {
            name: _matchable(
                [
                    *value_priority(entity.values[name], specs[name])[0],
                    *sorted(entity.values[name].ignore),
                ],
                entity.values[name].split,
            )
            for name in split
            if (vmap := entity.values[name])
        }
        for step in range(max(len(v) for v in removals.values()) // _PER_STAGE + 1):
            columns: list[Any] = []
            for column in stage.c:
                value: ColumnElement[Any] = column
                owner = _owner(column.key)
                if owner is not None:
                    sep = entity.values[owner].split
                    assert sep is not None
                    for known in removals[owner][step * _PER_STAGE : (step + 1) * _PER_STAGE]:
                        value = func.replace(value, _lit(f"{sep}{known}{sep}"), _lit(""))
                columns.append(value.label(column.key))
            stage = _stage(select(*columns), prefix, f"rest{step + 1}")
        columns = []
        for column in stage.c:
            value = column
            owner = _owner(column.key)
            if owner is not None:
                sep = entity.values[owner].split
                assert sep is not None
                for _ in range(_RUNS):
                    value = func.replace(value, _lit(sep + sep), _lit(sep))
            columns.append(value.label(column.key))
        stage = _stage(select(*columns), prefix, "rest")
    columns = []
    for name in names:
        if name not in mapped:
            columns.append(stage.c[name])
            continue
        vmap, spec = entity.values[name], specs[name]
        if vmap.split is None:
            columns.append(_translated_one(stage.c[name], vmap, spec).label(name))
            continue
        keys, ours = value_priority(vmap, spec)
        sep = vmap.split
        items, rest = stage.c[_items(name)], stage.c[_rest(name)]
        found = [
            (_position(items, _lit(f"{sep}{k}{sep}")) > 0, _lit(o))
            for k, o in zip(keys, ours, strict=True)
            if k in _matchable([k], sep)
        ]
        tail = func.substr(rest, len(sep) + 1)
        end = _position(tail, _lit(sep))  # 0 when nothing is left
        unknown = case((end > 1, func.substr(tail, 1, end - 1)), else_=null())
        columns.append((case(*found, else_=unknown) if found else unknown).label(name))
    return _stage(select(*columns), prefix, "translated")


def _owner(key: str) -> str | None:
    """The column whose rest ``key`` is, if it is one."""
    return key[len("__rest_") :] if key.startswith("__rest_") else None


def _matchable(values: list[str], sep: str | None) -> list[str]:
    """The values that can be one item: without the separator, spaces at the ends or runs
    of them (no such item survives the split and strip)."""
    assert sep is not None
    return [v for v in values if v and sep not in v and v == v.strip() and "  " not in v]


def _translated_one(value: Any, vmap: ValueMap, spec: ColumnSpec) -> ColumnElement[str]:
    """One value as ours: the map's, ignored as NULL, any other as it is.

    >>> from sqlalchemy import column
    >>> spec = ColumnSpec("severity", "enum", False, choices=("high", "low"))
    >>> sql = _translated_one(column("p"), ValueMap("severity", {"1": "high"}, frozenset({"9"})),
    ...                       spec)
    >>> " ".join(str(sql.compile(compile_kwargs={"literal_binds": True})).split())
    "CASE WHEN (CAST(p AS VARCHAR) IN ('9')) THEN NULL WHEN (CAST(p AS VARCHAR) = '1') \
THEN 'high' ELSE CAST(p AS VARCHAR) END"
    """
    keys, ours = value_priority(vmap, spec)
    text = _text(value)
    whens: list[tuple[Any, Any]] = []
    if vmap.ignore:
        whens.append((text.in_(sorted(vmap.ignore)), null()))
    whens += [(text == _lit(k), _lit(o)) for k, o in zip(keys, ours, strict=True) if k != o]
    return case(*whens, else_=text) if whens else text


def _timestamp(value: Any, dialect: str, type_code: Any) -> ColumnElement[Any]:
    """Their timestamp as a naive UTC one, or NULL when the importer would not read it."""
    if dialect == "sqlite":
        text = func.trim(_text(value))
        normal = func.strftime(_lit("%Y-%m-%d %H:%M:%f"), text) + _lit("000")
        return case((func.typeof(value) == _lit("text"), normal), else_=null())
    if type_code == _PG_TIMESTAMPTZ:
        return func.timezone(_lit("UTC"), value)
    if type_code == _PG_TIMESTAMP:
        return type_coerce(value, DateTime)
    if type_code == _PG_DATE:
        return cast(value, DateTime)
    if type_code in _PG_TEXT:
        text = func.trim(value)
        zoned = func.timezone(_lit("UTC"), cast(text, DateTime(timezone=True)))
        return case(
            (text.regexp_match(_ISO_ZONED), zoned),
            (text.regexp_match(_ISO_NAIVE), cast(text, DateTime)),
            else_=null(),
        )
    return null()


def _type_codes(source: Engine, entity: EntityMap) -> dict[str, Any]:
    """The database's type of each mapped column (PostgreSQL oids; nothing on SQLite)."""
    if source.dialect.name == "sqlite":
        return {}
    with source.connect() as conn:
        result = conn.execute(mapped_select(entity).limit(0))
        codes = {d[0]: d[1] for d in result.cursor.description}
        result.close()
        conn.rollback()
    return codes


def mapped_view(
    entity: EntityMap, source: Engine, *, accounts: FromClause | None = None
) -> Select[Any]:
    """Every column of Lookout's table for ``entity``, from their database, in our values,
    only the rows the importer would take; ``accounts`` (the accounts view) checks the
    account ids, as the importer's foreign-key check does."""
    theirs = _stage(mapped_select(entity), entity.entity, "theirs")
    translated = translate_columns(theirs, entity, prefix=entity.entity)
    mapped = {c.ours for c in entity.columns if c.theirs != TODO}
    codes = _type_codes(source, entity)
    dialect = source.dialect.name
    columns: list[Any] = []
    raws: list[Any] = []
    for spec in entity.specs:
        if spec.name not in mapped:
            kind = {"datetime": DateTime, "int": BigInteger}.get(spec.kind, String)
            columns.append(type_coerce(null(), kind).label(spec.name))
            continue
        value = translated.c[spec.name]
        columns.append(_converted(spec, value, dialect, codes.get(spec.name)).label(spec.name))
        if spec.kind == "datetime":
            raws.append(value.label(f"__raw_{spec.name}"))
    converted = _stage(select(*columns, *raws), entity.entity, "converted")
    where: list[ColumnElement[bool]] = []
    for spec in entity.specs:
        if spec.name not in mapped:
            continue
        out = converted.c[spec.name]
        where += _checks(spec, out, converted.c.get(f"__raw_{spec.name}"))
        if spec.references == "accounts" and accounts is not None:
            ids = select(accounts.alias(f"known_{spec.name}").c.id)
            where.append(or_(out.is_(None), out.in_(ids)))
    return select(*[converted.c[s.name] for s in entity.specs]).where(*where)


def _converted(spec: ColumnSpec, value: Any, dialect: str, type_code: Any) -> ColumnElement[Any]:
    """One of our columns from theirs (translated): as the importer parses it."""
    if spec.kind in ("enum", "state", "bool"):
        trimmed = func.trim(_text(value))
        out = case((trimmed == _lit(""), null()), else_=trimmed)
        return func.upper(out) if spec.kind == "state" else out
    if spec.kind == "datetime":
        return type_coerce(_timestamp(value, dialect, type_code), DateTime)
    if spec.kind == "int":
        return type_coerce(value, BigInteger)
    if spec.kind == "text":
        return _text(value)
    return type_coerce(value, Float)


def _checks(spec: ColumnSpec, out: Any, raw: Any) -> list[ColumnElement[bool]]:
    """The conditions under which the importer takes the value ``out`` (``raw``: their
    timestamp before it was read)."""
    checks: list[ColumnElement[bool]] = []
    if spec.kind in ("enum", "state"):
        checks.append(or_(out.is_(None), out.in_(spec.choices)))
    elif spec.kind == "bool":
        checks.append(or_(out.is_(None), func.lower(out).in_(_BOOLEANS)))
    elif spec.kind == "datetime":
        checks.append(or_(raw.is_(None), and_(out >= _EARLIEST, out < _END)))
    elif spec.kind == "text" and spec.length is not None:
        checks.append(or_(out.is_(None), func.length(out) <= spec.length))
    if not spec.nullable:
        checks.append(out.is_not(None))
    return checks


def mapped_tables(smap: SourceMap, source: Engine) -> Tables:
    """The views of the entities the map declares, as :mod:`~analytics.sources.pushdown`
    reads them (an entity the map leaves out has no rows)."""
    accounts_map = smap.entity("accounts")
    accounts = _once(mapped_view(accounts_map, source), "accounts") if accounts_map else None
    views: dict[str, Select[Any] | CTE] = {}
    if accounts is not None:
        views["accounts"] = accounts
    for name in ("cases", "events"):
        entity = smap.entity(name)
        if entity is not None:
            view = mapped_view(entity, source, accounts=accounts)
            # Cases are read twice (each case, and each subject's first violation): once.
            views[name] = _once(view, name) if name == "cases" else view
    return Tables(views=views)


def _once(view: Select[Any], name: str) -> CTE:
    """A view computed once per statement however often it is used (``MATERIALIZED``):
    the accounts checked for every case and event id and joined for the specialty, the
    cases read for each case and for each subject's first violation. Left as a subquery,
    each use derived the view again (a scan of every account for every case on SQLite;
    on PostgreSQL, nested loops from a one-row estimate): minutes on the medium demo."""
    return view.cte(f"{name}_view").prefix_with("MATERIALIZED")


def cube_through_map(
    engine: Engine, smap: SourceMap, filters: Filters, lo: datetime, hi: datetime
) -> Cube:
    """The cube for ``filters`` over ``[lo, hi)`` read from their database through the map;
    annotations from Lookout's (``engine``)."""
    source = source_engine(source_url(smap))
    return cube_from_database(
        engine, filters, lo, hi, source=source, tables=mapped_tables(smap, source)
    )


def events_daily_through_map(smap: SourceMap, start: date, end: date) -> pl.DataFrame:
    """Events per day, kind, region and platform from their database through the map."""
    source = source_engine(source_url(smap))
    return events_daily_from_database(source, start, end, tables=mapped_tables(smap, source))
