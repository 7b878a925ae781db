"""A source map: where a team's cases, events and accounts are in its own database, which
of their columns is each of ours, and how their values map onto Lookout's vocabulary.

The map is a TOML file. Each entity (``cases``, ``events``, ``accounts``) names where its
rows come from (a table, a view or a ``SELECT``), and maps each of Lookout's columns to
one of theirs or to a simple SQL expression run on their database (epoch seconds, time
zones, joined text). Enumerated columns (category, source, severity, status, platform,
kind...) take a value map, theirs to ours; several of theirs may map to one of ours, a
value already in Lookout's vocabulary maps to itself, and ``ignore`` lists values that
deliberately map to nothing. ``split`` says a column holds several values joined by a
separator (tags): the first that maps gives the row's value. The string ``"TODO"`` is a
placeholder (``sources init`` writes them): the map loads, and the check reports each.
A ``[taxonomy]`` table declares the team's own categories, sources and severities
(:mod:`analytics.core.taxonomy`); the value maps are checked against it, else against the
default taxonomy.

A tiny map::

    [cases]
    from = "tickets"                 # a table, a view, or "SELECT ..."

    [cases.columns]                  # ours = theirs (a column or an SQL expression)
    id = "ticket_id"
    opened_at = "datetime(created, 'unixepoch')"
    category = "tags"
    ...

    [cases.split]
    category = ","                   # tags are joined by commas

    [cases.values.category]          # theirs = ours
    "fake-5star" = "fake_review"
    "fake-1star" = "fake_review"

    [cases.ignore]
    category = ["vip"]

:func:`load_map` reads and validates a map (:class:`MapError`, one ``file:line: message``
per problem); :func:`check_map` runs it against the team's database read-only
(:func:`connect`), and :func:`draft_map` drafts one from a database's tables.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import func, inspect, literal_column, select, table, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.elements import ColumnClause, Label

from analytics.core import database, taxonomy
from analytics.core.taxonomy import Taxonomy
from analytics.core.taxonomy import toml_lines as _key_lines
from analytics.sources.ingest_checks import ColumnSpec, column_specs

__all__ = [
    "ENTITIES",
    "TODO",
    "CheckReport",
    "ColumnMap",
    "EntityMap",
    "MapError",
    "SourceMap",
    "ValueMap",
    "check_map",
    "connect",
    "draft_map",
    "load_map",
    "source_of",
    "source_table",
]

ENTITIES: Final[tuple[str, ...]] = ("cases", "events", "accounts")
"""What a map may declare, in the order they are checked."""
TODO: Final = "TODO"
"""The placeholder for what a team still has to fill in."""
COPY_TIMEOUT_S: Final = 6 * 3600.0
"""How long one read of a copy through the map may take (an entity of millions of rows)."""
SAMPLE_ROWS: Final = 1_000
"""Rows read to see that each mapped column converts."""
_TIME_COLUMN: Final = {"cases": "opened_at", "events": "ts", "accounts": "created_at"}
_ENTITY_KEYS: Final = ("from", "watermark", "columns", "values", "split", "ignore")
_SOURCE_KEYS: Final = ("url",)
_SELECT = re.compile(r"^\s*\(?\s*(select|with)\b", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_BOOL_WORDS: Final = frozenset({"true", "false", "1", "0", "yes", "no"})
_WORDS: Final = {"enum": "value", "datetime": "timestamp", "int": "whole number"}


class MapError(ValueError):
    """A map that cannot be used: one ``file:line: message`` per problem.

    >>> str(MapError(["m.toml:3: cases: `from` is missing"]))
    'm.toml:3: cases: `from` is missing'
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ColumnMap:
    """One of our columns and their column or SQL expression (``line``: where in the file)."""

    ours: str
    theirs: str
    line: int


@dataclass(frozen=True)
class ValueMap:
    """How the values of one enumerated column of ours are read from theirs."""

    column: str
    values: Mapping[str, str]  # theirs -> ours
    ignore: frozenset[str] = frozenset()
    split: str | None = None
    line: int = 1

    def translate(self, value: str, choices: Iterable[str]) -> str | None:
        """Ours for one of their values; None when it maps to nothing.

        >>> ValueMap("severity", {"1": "critical"}).translate("1", ["low", "critical"])
        'critical'
        >>> ValueMap("severity", {}).translate("low", ["low"]), ValueMap("severity", {}).translate(
        ...     "p9", ["low"])
        ('low', None)
        """
        if value in self.values:
            return self.values[value]
        return value if value in set(choices) else None


@dataclass(frozen=True)
class EntityMap:
    """Where one entity's rows come from and how its columns and values are read."""

    entity: str
    source: str
    line: int
    source_line: int
    columns: tuple[ColumnMap, ...]
    values: Mapping[str, ValueMap]
    specs: tuple[ColumnSpec, ...] = field(repr=False)
    watermark: str | None = None
    """Their column or expression that grows with every new or changed row, if any."""

    def column(self, ours: str) -> ColumnMap | None:
        """The mapping of one of our columns, if any."""
        return next((c for c in self.columns if c.ours == ours), None)


@dataclass(frozen=True)
class SourceMap:
    """A loaded, validated map (see :func:`load_map`)."""

    path: Path
    entities: tuple[EntityMap, ...]
    todos: tuple[tuple[int, str], ...] = ()  # (line, what)
    url: str | None = None
    """Their database's URL, or ``env:NAME`` for one kept in an environment variable."""
    taxonomy: Taxonomy | None = None
    """Their categories, sources and severities (``[taxonomy]``), if the map declares them:
    the map's value maps are checked against it (else against the default taxonomy)."""

    def entity(self, name: str) -> EntityMap | None:
        """The map of ``cases``, ``events`` or ``accounts``, if declared."""
        return next((e for e in self.entities if e.entity == name), None)

    def where(self, line: int) -> str:
        """``file:line`` for a message."""
        return f"{self.path}:{line}"


# --- finding lines --------------------------------------------------------------------------


class _Lines:
    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.known = _key_lines(source)

    def __call__(self, *path: str) -> int:
        """The line of a key or table, else of the nearest enclosing one, else 1."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.known:
                return self.known[path[:end]]
        return 1


# --- loading --------------------------------------------------------------------------------


def load_map(path: Path | str) -> SourceMap:
    """Read and validate a source map.

    Raises
    ------
    MapError
        Every problem found, each as ``file:line: message``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.toml").write_text('[accounts]\\nfrom = "users"\\n[accounts.columns]\\n'
    ...     'id = "uid"\\nkind = "TODO"\\n')
    >>> try:
    ...     load_map(folder / "m.toml")
    ... except MapError as exc:
    ...     print(str(exc).replace(str(folder), "."))
    ./m.toml:3: accounts.columns: missing required columns: created_at, region, verified, \
status, display_name
    >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapError([f"{path}:1: cannot read the map: {type(exc).__name__}"]) from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise MapError([_syntax_error(path, exc)]) from None
    return _Loader(path, _Lines(path, source)).load(data)


def _syntax_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        what = message[: match.start()].strip()
        return f"{path}:{match.group(1)}: not valid TOML: {what} (column {match.group(2)})"
    match = re.search(r"\(at end of document\)", message)
    line = source_lines = 1
    if match:
        source_lines = max(1, len(path.read_text(encoding="utf-8").splitlines()))
        line = source_lines
    return f"{path}:{line}: not valid TOML: {message.split(' (at')[0]}"


class _Loader:
    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[str] = []
        self.todos: list[tuple[int, str]] = []
        self.vocabulary = taxonomy.DEFAULT_TAXONOMY
        self.unsure: set[str] = set()  # columns whose vocabulary is a taxonomy that failed

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def load(self, data: dict[str, Any]) -> SourceMap:
        declares = (*ENTITIES, "source", "taxonomy")
        for key in data:
            if key not in declares:
                self.problem(
                    self.lines(key), f"`{key}` is not something a map declares: {_list(declares)}"
                )
        url = self.source(data.get("source", {}))
        declared = None
        if "taxonomy" in data:
            try:
                declared = taxonomy.parse_taxonomy(
                    data["taxonomy"], path=self.path, lines=self.lines
                )
            except taxonomy.TaxonomyError as exc:
                self.problems.extend(exc.problems)
                self.unsure = set(taxonomy.DEFAULT_TAXONOMY.choices)  # values not checked
        self.vocabulary = declared or taxonomy.DEFAULT_TAXONOMY
        entities = []
        for name in ENTITIES:
            if name not in data:
                continue
            if not isinstance(data[name], dict):
                self.problem(self.lines(name), f"`{name}` must be a table ([{name}])")
                continue
            entity = self.entity(name, data[name])
            if entity is not None:
                entities.append(entity)
        if not any(name in data for name in (*ENTITIES, "taxonomy")) and not self.problems:
            self.problem(1, f"the map declares none of {_list(ENTITIES)}")
        if self.problems:
            raise MapError(self.problems)
        return SourceMap(self.path, tuple(entities), tuple(self.todos), url, declared)

    def source(self, body: Any) -> str | None:
        """``[source] url``: a database URL or ``env:NAME``."""
        if not isinstance(body, dict):
            self.problem(self.lines("source"), "`source` must be a table ([source])")
            return None
        for key in body:
            if key not in _SOURCE_KEYS:
                self.problem(
                    self.lines("source", key),
                    f"source: unknown key `{key}` (a source has {_list(_SOURCE_KEYS)})",
                )
        url = body.get("url")
        if url is None:
            return None
        if not isinstance(url, str) or not url.strip():
            self.problem(
                self.lines("source", "url"),
                "source.url: give their database's URL, or env:NAME to read it from a variable",
            )
            return None
        return url.strip()

    def entity(self, name: str, body: dict[str, Any]) -> EntityMap | None:
        before = len(self.problems)
        where = self.lines(name)
        for key in body:
            if key not in _ENTITY_KEYS:
                self.problem(
                    self.lines(name, key),
                    f"{name}: unknown key `{key}` (a {name} map has {_list(_ENTITY_KEYS)})",
                )
        source = body.get("from")
        if not isinstance(source, str) or not source.strip():
            self.problem(
                self.lines(name, "from"),
                f"{name}: `from` must name their table or view, or hold a SELECT",
            )
            source = ""
        elif not _SELECT.match(source) and not _NAME.match(source.strip()):
            self.problem(
                self.lines(name, "from"),
                f"{name}: `from` is neither a table name (schema.table) nor a SELECT",
            )
        elif source.strip() == TODO:
            self.todos.append((self.lines(name, "from"), f"{name}.from"))
        watermark = body.get("watermark")
        if watermark is not None and (not isinstance(watermark, str) or not watermark.strip()):
            self.problem(
                self.lines(name, "watermark"),
                f"{name}.watermark: give their column (or an SQL expression) that grows with "
                "every new or changed row",
            )
            watermark = None
        specs = tuple(column_specs(name, vocabulary=self.vocabulary))
        columns = self.columns(name, body.get("columns"), specs)
        values = self.values(name, body, {c.ours for c in columns}, specs)
        if len(self.problems) > before:
            return None
        return EntityMap(
            name,
            source.strip(),
            where,
            self.lines(name, "from"),
            columns,
            MappingProxyType(values),
            specs,
            watermark.strip() if isinstance(watermark, str) else None,
        )

    def columns(self, name: str, body: Any, specs: tuple[ColumnSpec, ...]) -> tuple[ColumnMap, ...]:
        line = self.lines(name, "columns")
        if not isinstance(body, dict):
            self.problem(line, f"{name}: [{name}.columns] must map Lookout's columns to theirs")
            return ()
        ours = {s.name for s in specs}
        out = []
        for key, value in body.items():
            at = self.lines(name, "columns", key)
            if key not in ours:
                self.problem(
                    at,
                    f"{name}.columns: `{key}` is not a column of Lookout's {name} "
                    f"(they are: {_list(s.name for s in specs)})",
                )
            elif not isinstance(value, str) or not value.strip():
                self.problem(at, f"{name}.columns.{key}: give their column or an SQL expression")
            else:
                if value.strip() == TODO:
                    self.todos.append((at, f"{name}.columns.{key}"))
                out.append(ColumnMap(key, value.strip(), at))
        missing = [s.name for s in specs if not s.nullable and s.name not in body]
        if missing:
            self.problem(line, f"{name}.columns: missing required columns: {', '.join(missing)}")
        return tuple(out)

    def values(
        self, name: str, body: dict[str, Any], mapped: set[str], specs: tuple[ColumnSpec, ...]
    ) -> dict[str, ValueMap]:
        enums = {s.name: s for s in specs if s.kind in ("enum", "state")}
        tables: dict[str, dict[str, Any]] = {}
        for part in ("values", "split", "ignore"):
            given = body.get(part, {})
            if not isinstance(given, dict):
                self.problem(self.lines(name, part), f"{name}: [{name}.{part}] must be a table")
                given = {}
            tables[part] = given
            for column in given:
                at = self.lines(name, part, column)
                if column not in enums:
                    self.problem(
                        at,
                        f"{name}.{part}: `{column}` is not one of Lookout's enumerated {name} "
                        f"columns ({_list(enums)})",
                    )
                elif column not in mapped:
                    self.problem(
                        at, f"{name}.{part}.{column}: [{name}.columns] does not map {column}"
                    )
        out = {}
        for column in mapped & set(enums):
            out[column] = self.value_map(name, column, tables, enums[column])
        return out

    def value_map(
        self, name: str, column: str, tables: dict[str, dict[str, Any]], spec: ColumnSpec
    ) -> ValueMap:
        given = tables["values"].get(column, {})
        line = self.lines(name, "values", column)
        if not isinstance(given, dict):
            self.problem(line, f"{name}.values.{column}: must be a table of theirs = ours")
            given = {}
        values = {}
        for theirs, ours in given.items():
            at = self.lines(name, "values", column, theirs)
            if ours == TODO:
                self.todos.append((at, f"{name}.values.{column}: `{theirs}`"))
            elif isinstance(ours, str) and column in self.unsure:
                values[theirs] = ours
            elif not isinstance(ours, str) or ours not in spec.choices:
                shown = ours if isinstance(ours, str) else type(ours).__name__
                self.problem(
                    at,
                    f"{name}.values.{column}: `{theirs}` maps to `{shown}`, which is not "
                    f"a Lookout {column} ({_list(spec.choices)})",
                )
            else:
                values[theirs] = ours
        split = tables["split"].get(column)
        if split is not None and (not isinstance(split, str) or not split):
            self.problem(
                self.lines(name, "split", column),
                f'{name}.split.{column}: give the separator, e.g. ","',
            )
            split = None
        ignore = tables["ignore"].get(column, [])
        if not isinstance(ignore, list) or not all(isinstance(v, str) for v in ignore):
            self.problem(
                self.lines(name, "ignore", column),
                f'{name}.ignore.{column}: give a list of their values, e.g. ["vip"]',
            )
            ignore = []
        if column not in tables["values"]:
            line = self.lines(name, "columns", column)
        return ValueMap(column, MappingProxyType(values), frozenset(ignore), split, line)


def _list(items: Iterable[str]) -> str:
    return ", ".join(items)


# --- connecting -----------------------------------------------------------------------------


def connect(url: str, *, timeout_s: float = database.QUERY_TIMEOUT_S) -> Engine:
    """An engine on the team's database that can only read, whose statements stop after
    ``timeout_s`` (a copy through the map streams a whole entity in one statement: it
    asks for :data:`COPY_TIMEOUT_S`).

    SQLite opens the file with ``mode=ro`` and refuses anything but reading; PostgreSQL
    sessions start with ``default_transaction_read_only`` and every transaction is also
    declared ``READ ONLY`` (see :func:`analytics.core.database.make_reader`).
    """
    engine = database.make_reader(url, timeout_s=timeout_s)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import event

        @event.listens_for(engine, "begin")
        def _read_only(conn: Any) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def source_table(entity: EntityMap) -> str | None:
    """The table or view an entity reads (without its schema), or None for a SELECT.

    >>> from analytics.sources.sourcemap import EntityMap
    >>> source_table(EntityMap("cases", "crm.tickets", 1, 1, (), {}, ()))
    'tickets'
    >>> source_table(EntityMap("cases", "SELECT * FROM t", 1, 1, (), {}, ())) is None
    True
    """
    return None if _SELECT.match(entity.source) else entity.source.rpartition(".")[2]


def source_of(entity: EntityMap) -> FromClause:
    """What an entity's rows are read from: its table or view, or its SELECT, as ``src``."""
    return _from(entity)


def _from(entity: EntityMap) -> FromClause:
    if _SELECT.match(entity.source):
        return text(entity.source).columns().subquery("src")
    schema, _, name = entity.source.rpartition(".")
    return table(name, schema=schema or None).alias("src")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- checking -------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What :func:`check_map` found: problems (``file:line: message``) and facts."""

    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    spans: dict[str, tuple[datetime, datetime] | None] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """True when the map can be read as it is."""
        return not self.problems


def check_map(engine: Engine, smap: SourceMap, *, sample: int = 3) -> CheckReport:
    """Run a map against the team's database (through a :func:`connect` engine).

    Every mapped column and expression must run and convert to our column's type, every
    value of an enumerated column must map to one of ours (or be ignored), and required
    columns must not be empty. Reports rows and date range per entity and a masked sample.
    """
    report = CheckReport()
    for line, what in smap.todos:
        report.problems.append(f"{smap.where(line)}: {what} is still TODO")
    for entity in smap.entities:
        _check_entity(engine, smap, entity, report, sample)
    return report


def _run(engine: Engine, statement: Any) -> list[Any]:
    with engine.connect() as conn:
        try:
            return list(conn.execute(statement).all())
        finally:
            conn.rollback()


def _check_entity(
    engine: Engine, smap: SourceMap, entity: EntityMap, report: CheckReport, sample: int
) -> None:
    name = entity.entity
    if entity.source == TODO:
        return
    src = _from(entity)
    try:
        total = int(_run(engine, select(func.count()).select_from(src))[0][0])
    except Exception as exc:  # noqa: BLE001 - reported as one line
        report.problems.append(
            f"{smap.where(entity.source_line)}: {name}.from: cannot read "
            f"`{_short(entity.source)}`: {_first_line(exc)}"
        )
        return
    report.rows[name] = total
    specs = {s.name: s for s in entity.specs}
    good = []
    for column in entity.columns:
        if column.theirs == TODO:
            continue
        spec = specs[column.ours]
        expr: ColumnClause[Any] = literal_column(column.theirs)
        at = f"{smap.where(column.line)}: {name}.columns.{column.ours}"
        try:
            values = [r[0] for r in _run(engine, select(expr).select_from(src).limit(SAMPLE_ROWS))]
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"{at}: `{_short(column.theirs)}` fails: {_first_line(exc)}")
            continue
        problem = _conversion_problem(spec, values)
        if problem:
            report.problems.append(f"{at}: `{_short(column.theirs)}` {problem}")
            continue
        good.append(column)
        if column.ours in entity.values:
            _check_values(engine, smap, entity, column, src, report)
    time_column = entity.column(_TIME_COLUMN[name])
    span = None
    if time_column is not None and time_column in good:
        expr = literal_column(time_column.theirs)
        low, high = _run(engine, select(func.min(expr), func.max(expr)).select_from(src))[0]
        if low is not None and high is not None:
            span = (_as_datetime(low), _as_datetime(high))
    report.spans[name] = span
    between = f", {span[0]:%Y-%m-%d %H:%M} to {span[1]:%Y-%m-%d %H:%M}" if span else ""
    report.facts.append(f"{name} (from {_short(entity.source)}): {total:,} rows{between}")
    if good and sample:
        labels: list[Label[Any]] = [literal_column(c.theirs).label(c.ours) for c in good]
        for row in _run(engine, select(*labels).select_from(src).limit(sample)):
            shown = ", ".join(
                f"{c.ours}={_shown(entity, specs[c.ours], v)}"
                for c, v in zip(good, row, strict=True)
            )
            report.facts.append(f"  {shown}")


def _check_values(
    engine: Engine,
    smap: SourceMap,
    entity: EntityMap,
    column: ColumnMap,
    src: FromClause,
    report: CheckReport,
) -> None:
    vmap = entity.values[column.ours]
    spec = next(s for s in entity.specs if s.name == column.ours)
    expr: ColumnClause[Any] = literal_column(column.theirs)
    counts = _run(engine, select(expr, func.count()).select_from(src).group_by(expr))
    unmapped: dict[str, int] = {}
    empty = 0
    for raw, n in counts:
        items = _items(raw, vmap.split)
        hits = [v for v in items if vmap.translate(v, spec.choices) is not None]
        for value in items:
            if value not in vmap.ignore and vmap.translate(value, spec.choices) is None:
                unmapped[value] = unmapped.get(value, 0) + int(n)
        if not hits:
            empty += int(n)
    at = f"{smap.where(vmap.line)}: {entity.entity}.{column.ours}"
    for value, n in sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0])):
        report.problems.append(
            f"{at}: `{_short(value)}` ({n:,} {_rows(n)}) maps to nothing "
            f"(map it in [{entity.entity}.values.{column.ours}] or list it in "
            f"[{entity.entity}.ignore])"
        )
    if empty and not spec.nullable and not unmapped:
        report.problems.append(
            f"{at}: {empty:,} {_rows(empty)} have no value that maps to a {column.ours}"
        )


def _items(raw: Any, split: str | None) -> list[str]:
    if raw is None:
        return []
    text_value = str(raw)
    if split is None:
        return [text_value]
    return [p.strip() for p in text_value.split(split) if p.strip()]


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _conversion_problem(spec: ColumnSpec, values: list[Any]) -> str | None:
    """Why the values read for one column do not fit our column's type, if they do not."""
    empty = sum(v is None for v in values)
    if empty and not spec.nullable:
        return f"is empty in {empty:,} of the first {len(values):,} rows; Lookout needs one"
    for value in values:
        if value is None or _converts(spec.kind, value):
            continue
        shown = repr(value) if isinstance(value, int | float) else f"text of {len(str(value))}"
        hint = ""
        if spec.kind == "datetime" and isinstance(value, int | float):
            hint = (
                " (epoch seconds? SQLite: datetime(col, 'unixepoch'); "
                "PostgreSQL: to_timestamp(col) AT TIME ZONE 'UTC')"
            )
        kind = _WORDS.get(spec.kind, spec.kind)
        return f"gives {shown} ({type(value).__name__}), not a {kind}{hint}"
    return None


def _converts(kind: str, value: Any) -> bool:
    if kind == "datetime":
        if isinstance(value, datetime | date):
            return True
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return False
            return True
        return False
    if kind == "int":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()) is not None
    if kind == "float":
        if isinstance(value, bool):
            return False
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in _BOOL_WORDS
        return isinstance(value, bool | int) and value in (0, 1)
    return True  # text, enum, state: any value reads as text


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _shown(entity: EntityMap, spec: ColumnSpec, value: Any) -> str:
    """A sample value, and what it maps to when it goes through a value map."""
    vmap = entity.values.get(spec.name)
    if vmap is None or value is None:
        return _masked(spec, value)
    ours = [vmap.translate(v, spec.choices) for v in _items(value, vmap.split)]
    mapped = next((o for o in ours if o is not None), "nothing")
    return f"{_short(str(value))}→{mapped}"


def _masked(spec: ColumnSpec, value: Any) -> str:
    """A value for the sample: free text shows its first characters and its length only."""
    if value is None:
        return "-"
    if spec.kind == "text":
        shown = str(value)
        return f"'{shown[:3]}…' ({len(shown)} chars)"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return _short(str(value))


def _short(value: str, limit: int = 60) -> str:
    one = " ".join(value.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# --- drafting -------------------------------------------------------------------------------

_TABLE_HINTS: Final = {
    "cases": ("ticket", "case", "report", "complaint", "issue"),
    "events": ("event", "activity", "log", "action"),
    "accounts": ("user", "account", "member", "customer", "profile"),
}
_COLUMN_HINTS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "cases": {
        "opened_at": ("opened_at", "created_at", "created", "opened", "ts", "timestamp", "date"),
        "description": ("description", "body", "text", "content", "details", "subject"),
        "category": ("category", "tags", "tag", "labels", "reason", "type"),
        "severity": ("severity", "priority", "urgency"),
        "status": ("status", "state"),
        "source": ("source", "channel", "origin", "via"),
        "subject_account_id": (
            "subject_account_id",
            "reported_user_id",
            "reported_user",
            "subject_id",
            "user_id",
        ),
        "reporter_account_id": ("reporter_account_id", "reporter_id", "requester_id"),
        "assignee": ("assignee", "agent", "owner", "assigned_to"),
        "resolved_at": ("resolved_at", "closed_at", "solved_at", "resolved", "closed"),
    },
    "events": {
        "ts": ("ts", "timestamp", "occurred_at", "created_at", "time", "at", "created"),
        "kind": ("kind", "event", "event_type", "type", "action", "name"),
        "account_id": ("account_id", "user_id", "actor_id", "uid"),
        "target_account_id": ("target_account_id", "target_id", "target_user_id"),
        "device_hash": ("device_hash", "device_id", "device"),
        "ip_hash": ("ip_hash", "ip", "ip_address"),
        "rating": ("rating", "stars", "score"),
    },
    "accounts": {
        "created_at": ("created_at", "signup_at", "joined_at", "created", "joined", "registered"),
        "display_name": ("display_name", "name", "username", "full_name", "handle"),
        "email": ("email", "email_address", "mail"),
        "kind": ("kind", "type", "account_type", "role"),
        "status": ("status", "state"),
        "verified": ("verified", "is_verified", "email_verified"),
        "specialty": ("specialty", "speciality"),
    },
}
_SHARED_HINTS: Final = {
    "id": ("id",),
    "region": ("region", "country", "country_code"),
    "platform": ("platform", "os", "client", "app"),
}
_TIMES: Final = ("date", "time", "created", "opened", "ts", "at")


def _table_score(entity: str, name: str, columns: list[str]) -> int:
    score = 3 if any(h in name.lower() for h in _TABLE_HINTS[entity]) else 0
    hints = _COLUMN_HINTS[entity]
    for ours, theirs in hints.items():
        if any(c.lower() in theirs for c in columns):
            score += 2 if ours in ("description", "kind", "email", "display_name") else 1
    return score


def draft_map(engine: Engine) -> str:
    """A first map drafted from a database's tables and column names and types, with
    comments and ``TODO`` placeholders for the team to edit; :func:`load_map` accepts it."""
    found = inspect(engine)
    tables = {t: found.get_columns(t) for t in found.get_table_names()}
    tables.update({v: found.get_columns(v) for v in found.get_view_names()})
    chosen: dict[str, str] = {}
    for entity in ENTITIES:
        scored = sorted(
            (
                (-_table_score(entity, t, [c["name"] for c in cols]), t)
                for t, cols in tables.items()
                if t not in chosen.values()
            ),
        )
        if scored and -scored[0][0] > 0:
            chosen[entity] = scored[0][1]
    out = [
        "# A source map drafted by `python -m analytics sources init`: check every line,",
        "# replace each TODO, then run `python -m analytics sources check --map FILE`.",
        "# Columns: ours = theirs (a column of theirs or an SQL expression on their database).",
        "# Values: theirs = ours. Optional columns may be deleted.",
    ]
    for entity in ENTITIES:
        name = chosen.get(entity)
        keys = found.get_pk_constraint(name)["constrained_columns"] if name in tables else []
        out += _draft_entity(engine, entity, name, tables.get(name or ""), keys)
    return "\n".join(out) + "\n"


def _draft_entity(
    engine: Engine, entity: str, name: str | None, columns: list[Any] | None, keys: list[str]
) -> list[str]:
    out = ["", f"[{entity}]"]
    if name is None or columns is None:
        return [*out, f'from = "{TODO}"  # no table looked like {entity}: name yours']
    out.append(f"from = {json.dumps(name)}")
    out += ["", f"[{entity}.columns]"]
    theirs = {c["name"].lower(): c for c in columns}
    hints = {**_SHARED_HINTS, **_COLUMN_HINTS[entity]}
    if len(keys) == 1:  # their primary key is our id
        hints["id"] = (keys[0].lower(),)
    values: dict[str, str] = {}
    used: set[str] = set()
    for spec in column_specs(entity):
        match = next(
            (theirs[h] for h in hints.get(spec.name, ()) if h in theirs and h not in used), None
        )
        if match is None:
            if spec.nullable:
                out.append(f'# {spec.name} = ""  # optional')
            else:
                out.append(f'{spec.name} = "{TODO}"  # required: a column or an SQL expression')
            continue
        used.add(match["name"].lower())
        expr, note = _draft_expr(engine, spec, match)
        out.append(f"{spec.name} = {json.dumps(expr)}{note}")
        if spec.kind in ("enum", "state") and spec.name != "region":
            values[spec.name] = match["name"]
    splits: list[str] = []
    for ours, column in values.items():
        split, lines = _draft_values(engine, entity, name, ours, column)
        splits += [f'{ours} = ","  # their {column} holds several values'] if split else []
        out += lines
    return out + (["", f"[{entity}.split]", *splits] if splits else [])


def _draft_expr(engine: Engine, spec: ColumnSpec, column: dict[str, Any]) -> tuple[str, str]:
    name = column["name"]
    quoted = engine.dialect.identifier_preparer.quote(name)
    kind = str(column["type"]).upper()
    if spec.kind == "datetime" and any(k in kind for k in ("INT", "NUMERIC", "REAL", "FLOAT")):
        if engine.dialect.name == "sqlite":
            return f"datetime({quoted}, 'unixepoch')", "  # epoch seconds"
        return f"to_timestamp({quoted}) AT TIME ZONE 'UTC'", "  # epoch seconds"
    return quoted, ""


def _draft_values(
    engine: Engine, entity: str, name: str, ours: str, column: str
) -> tuple[bool, list[str]]:
    spec = next(s for s in column_specs(entity) if s.name == ours)
    src = table(name).alias("src")
    expr: ColumnClause[Any] = literal_column(engine.dialect.identifier_preparer.quote(column))
    try:
        rows = _run(engine, select(expr).select_from(src).distinct().limit(200))
    except Exception:  # noqa: BLE001 - a draft: leave the values to the team
        rows = []
    raw = [r[0] for r in rows if r[0] is not None]
    split = "," if any("," in str(v) for v in raw) else None
    seen = sorted({v for r in raw for v in _items(r, split)} - set(spec.choices))
    if not seen:
        return split is not None, []
    out = ["", f"[{entity}.values.{ours}]  # theirs = ours: {_list(spec.choices)}"]
    out += [f'{json.dumps(v)} = "{TODO}"' for v in seen[:50]]
    return split is not None, out
