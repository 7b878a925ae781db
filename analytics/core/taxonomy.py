"""The taxonomy: the case categories, sources and severities Lookout reasons about.

They are a team's own, declared in the ``[taxonomy]`` table of its source map
(``LOOKOUT_SOURCE_MAP=path``, see :mod:`analytics.sources.sourcemap`); without one,
:data:`DEFAULT_TAXONOMY` is the demo's. Each category says what its prevalence is
measured against (an exposure event or active accounts), whether it is a catch-all
(emerging-topic detection watches the cases filed there) and the product surface it
belongs to in the product brief (none: "Not tied to one surface"); each severity its
first-response SLA; sources which of them are automated detection (proactive rate,
precision). A small example::

    [taxonomy]
    sources = ["web_form", "email", "rule"]     # in the order shown
    automated = ["rule"]                          # optional: automated detection

    [taxonomy.categories.fraud]                   # categories in the order shown
    exposure = "booking_created"                  # default "active_accounts"
    surface = "bookings"                          # optional
    [taxonomy.categories.misc]
    catch_all = true                              # emerging topics watch it

    [taxonomy.severities.p4]                      # least urgent first
    sla_hours = 72
    [taxonomy.severities.p1]
    sla_hours = 4

:func:`active` is the taxonomy in force (read once per process and map file);
:func:`using` puts another in force for a block (tests). :func:`parse_taxonomy` reads the
table with ``file:line: message`` problems (:class:`TaxonomyError`); :func:`toml_lines`
finds where each key of a TOML text is, for such messages.

The frames' ``pl.Enum`` dtypes (:mod:`analytics.sources.frames`) are built from the
taxonomy in force when that module is first imported: they follow the map of the process,
not a :func:`using` block.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_TAXONOMY",
    "EXPOSURES",
    "MAP_VARIABLE",
    "NAME_LENGTH",
    "STALE_NOTE",
    "SURFACE_KEYS",
    "CategoryDef",
    "SeverityDef",
    "Taxonomy",
    "TaxonomyError",
    "active",
    "active_or_default",
    "line_finder",
    "load_taxonomy",
    "parse_taxonomy",
    "stale",
    "toml_lines",
    "toml_syntax_problem",
    "using",
]

MAP_VARIABLE: Final = "LOOKOUT_SOURCE_MAP"
"""The environment variable naming the source map (and so the taxonomy)."""
EXPOSURES: Final[tuple[str, ...]] = (
    "booking_created",
    "review_posted",
    "message_sent",
    "active_accounts",
)
"""What a category's prevalence may be measured against: an exposure event, or active accounts."""
SURFACE_KEYS: Final[tuple[str, ...]] = ("bookings", "reviews", "messaging", "payments", "accounts")
"""The product surfaces a category may belong to (:mod:`analytics.reports.surfaces`)."""
NAME_LENGTH: Final = 40
"""The longest name a category, source or severity may have (the database's column)."""
_NAME = re.compile(rf"^[a-z][a-z0-9_-]{{0,{NAME_LENGTH - 1}}}$")
_CATEGORY_KEYS: Final = ("exposure", "catch_all", "surface")
_TOP_KEYS: Final = ("categories", "sources", "automated", "severities")


class TaxonomyError(ValueError):
    """A taxonomy that cannot be used: one ``file:line: message`` per problem.

    >>> str(TaxonomyError(["m.toml:2: taxonomy: `categories` is missing"]))
    'm.toml:2: taxonomy: `categories` is missing'
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class CategoryDef:
    """One case category: its prevalence exposure, whether it is a catch-all, its surface."""

    name: str
    exposure: str = "active_accounts"
    catch_all: bool = False
    surface: str | None = None


@dataclass(frozen=True)
class SeverityDef:
    """One severity and its first-response target in hours."""

    name: str
    sla_hours: float


@dataclass(frozen=True)
class Taxonomy:
    """Categories, case sources and severities, each in the order they are shown.

    >>> t = Taxonomy((CategoryDef("abuse"), CategoryDef("misc", catch_all=True)), ("form",),
    ...     (SeverityDef("p2", 24.0), SeverityDef("p1", 4.0)))
    >>> t.category_names, t.catch_all, t.sla_hours, t.choices["severity"]
    (('abuse', 'misc'), ('misc',), {'p2': 24.0, 'p1': 4.0}, ('p2', 'p1'))
    """

    categories: tuple[CategoryDef, ...]
    sources: tuple[str, ...]
    severities: tuple[SeverityDef, ...]  # least urgent first
    automated: tuple[str, ...] = ()

    @property
    def category_names(self) -> tuple[str, ...]:
        """The categories' names, in order."""
        return tuple(c.name for c in self.categories)

    @property
    def severity_names(self) -> tuple[str, ...]:
        """The severities' names, least urgent first."""
        return tuple(s.name for s in self.severities)

    @property
    def sla_hours(self) -> dict[str, float]:
        """The first-response target of each severity, in hours."""
        return {s.name: s.sla_hours for s in self.severities}

    @property
    def exposure_of(self) -> dict[str, str]:
        """The exposure each category's prevalence is measured against."""
        return {c.name: c.exposure for c in self.categories}

    @property
    def catch_all(self) -> tuple[str, ...]:
        """The catch-all categories (emerging-topic detection watches them)."""
        return tuple(c.name for c in self.categories if c.catch_all)

    @property
    def surface_of(self) -> dict[str, str | None]:
        """The product surface of each category (None: not tied to one)."""
        return {c.name: c.surface for c in self.categories}

    @property
    def choices(self) -> dict[str, tuple[str, ...]]:
        """The values of the ``category``, ``severity`` and ``source`` columns."""
        return {
            "category": self.category_names,
            "severity": self.severity_names,
            "source": self.sources,
        }


def _category(name: str, exposure: str, surface: str | None = None) -> CategoryDef:
    return CategoryDef(name, exposure, name == "other", surface)


DEFAULT_TAXONOMY: Final = Taxonomy(
    categories=(
        _category("fake_review", "review_posted", "reviews"),
        _category("review_extortion", "review_posted", "reviews"),
        _category("harassment", "message_sent", "messaging"),
        _category("hate_speech", "message_sent", "messaging"),
        _category("spam", "message_sent", "messaging"),
        _category("fraudulent_booking", "booking_created", "bookings"),
        _category("no_show_abuse", "booking_created", "bookings"),
        _category("impersonation", "active_accounts", "accounts"),
        _category("credential_misrepresentation", "active_accounts", "accounts"),
        _category("account_takeover", "active_accounts", "accounts"),
        _category("payment_fraud", "booking_created", "payments"),
        _category("health_info_exposure", "message_sent", "messaging"),
        _category("off_platform_solicitation", "message_sent", "messaging"),
        _category("other", "active_accounts"),
    ),
    sources=("user_report", "provider_report", "automated_rule", "ml_model", "internal_escalation"),
    severities=(
        SeverityDef("low", 120.0),
        SeverityDef("medium", 48.0),
        SeverityDef("high", 12.0),
        SeverityDef("critical", 2.0),
    ),
    automated=("automated_rule", "ml_model"),
)
"""The demo's taxonomy: what Lookout uses without a map that declares one."""


# --- finding lines ----------------------------------------------------------------------------

_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = re.compile(rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*")
_PART = re.compile(_KEY)


def _parts(dotted: str) -> tuple[str, ...]:
    out = []
    for part in _PART.findall(dotted):
        if part[:1] == '"':
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part[:1] == "'":
            part = part[1:-1]
        out.append(part)
    return tuple(out)


def toml_lines(source: str) -> dict[tuple[str, ...], int]:
    """The line of every table header and key in a TOML text (first occurrence wins).

    >>> toml_lines('[taxonomy]\\nsources = ["a"]\\n[taxonomy.severities."p1"]\\nsla_hours = 4\\n')
    ... # doctest: +NORMALIZE_WHITESPACE
    {('taxonomy',): 1, ('taxonomy', 'sources'): 2, ('taxonomy', 'severities', 'p1'): 3,
     ('taxonomy', 'severities', 'p1', 'sla_hours'): 4}
    """
    lines: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    for number, raw in enumerate(source.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("["):
            inner = stripped.lstrip("[")
            match = _DOTTED.match(inner)
            if match:
                current = _parts(match.group(1))
                lines.setdefault(current, number)
            continue
        match = _DOTTED.match(raw)
        if match and raw[match.end() :].startswith("="):
            lines.setdefault(current + _parts(match.group(1)), number)
    return lines


def line_finder(source: str) -> Callable[..., int]:
    """``lines(*key)``: the line of a key or table, else of the nearest enclosing one, else 1.

    >>> line_finder('[a]\\nb = 1\\n')("a", "b", "c")
    2
    """
    known = toml_lines(source)

    def lines(*path: str) -> int:
        for end in range(len(path), 0, -1):
            if path[:end] in known:
                return known[path[:end]]
        return 1

    return lines


def toml_syntax_problem(path: Path | str, source: str, exc: tomllib.TOMLDecodeError) -> str:
    """A TOML syntax error as ``file:line: not valid TOML: what (column n)``.

    >>> try:
    ...     tomllib.loads("a = \\n")
    ... except tomllib.TOMLDecodeError as exc:
    ...     print(toml_syntax_problem("m.toml", "a = \\n", exc))
    m.toml:1: not valid TOML: Invalid value (column 5)
    """
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        what = message[: match.start()].strip()
        return f"{path}:{match.group(1)}: not valid TOML: {what} (column {match.group(2)})"
    line = max(1, len(source.splitlines())) if "(at end of document)" in message else 1
    return f"{path}:{line}: not valid TOML: {message.split(' (at')[0]}"


# --- parsing ----------------------------------------------------------------------------------


def parse_taxonomy(
    table: Any, *, path: Path | str = "<map>", lines: Callable[..., int] | None = None
) -> Taxonomy:
    """The taxonomy of a ``[taxonomy]`` table (as :mod:`tomllib` reads it).

    ``lines(*key)`` gives the line of a key under the table's parent (``"taxonomy", ...``)
    for the messages (see :func:`line_finder`).

    Raises
    ------
    TaxonomyError
        Every problem found, each as ``file:line: message``.

    Examples
    --------
    >>> text = '[taxonomy]\\nsources = ["form"]\\n[taxonomy.categories.Abuse]\\n' \\
    ...     '[taxonomy.severities.p1]\\nsla_hours = -1\\n'
    >>> try:
    ...     parse_taxonomy(tomllib.loads(text)["taxonomy"], path="m.toml",
    ...                    lines=line_finder(text))
    ... except TaxonomyError as exc:
    ...     print(exc)
    m.toml:3: taxonomy.categories: `Abuse` is not a usable name (lower-case letters, digits, \
_ and -, starting with a letter, at most 40)
    m.toml:5: taxonomy.severities.p1.sla_hours: give the first-response target in hours, \
a positive number (not -1)
    >>> parse_taxonomy({"categories": {"abuse": {}}, "sources": ["form"],
    ...     "severities": {"p1": {"sla_hours": 4}}}).sla_hours
    {'p1': 4.0}
    """
    problems: list[str] = []
    where = lines or (lambda *_: 1)

    def problem(key: tuple[str, ...], message: str) -> None:
        problems.append(f"{path}:{where('taxonomy', *key)}: {message}")

    if not isinstance(table, dict):
        problem((), "`taxonomy` must be a table ([taxonomy])")
        raise TaxonomyError(problems)
    for key in table:
        if key not in _TOP_KEYS:
            problem((key,), f"taxonomy: unknown key `{key}` (it has {', '.join(_TOP_KEYS)})")
    categories = _categories(table.get("categories"), problem)
    sources = _names(table.get("sources"), "sources", problem, required=True)
    automated = _names(table.get("automated", []), "automated", problem, required=False)
    for name in automated:
        if name not in sources:
            problem(("automated",), f"taxonomy.automated: `{name}` is not one of the sources")
    severities = _severities(table.get("severities"), problem)
    if problems:
        raise TaxonomyError(problems)
    return Taxonomy(categories, sources, severities, automated)


_Problem = Callable[[tuple[str, ...], str], None]


def _name_problem(name: str) -> str | None:
    if _NAME.match(name):
        return None
    return (
        f"`{name}` is not a usable name (lower-case letters, digits, _ and -, "
        "starting with a letter, at most 40)"
    )


def _table_of_tables(body: Any, what: str, problem: _Problem) -> Iterator[tuple[str, Any]]:
    """The well-named tables of ``[taxonomy.<what>]``, in the file's order (problems are
    reported as they come, so in the file's order too)."""
    if body is None:
        problem((), f"taxonomy: `{what}` is missing ([taxonomy.{what}.NAME] tables)")
        return
    if not isinstance(body, dict):
        problem((what,), f"taxonomy.{what}: give one [taxonomy.{what}.NAME] table for each")
        return
    if not body:
        problem((what,), f"taxonomy.{what}: declare at least one")
    for name, value in body.items():
        bad = _name_problem(name)
        if bad:
            problem((what, name), f"taxonomy.{what}: {bad}")
        elif not isinstance(value, dict):
            problem((what, name), f"taxonomy.{what}.{name}: must be a table")
        else:
            yield name, value


def _categories(body: Any, problem: _Problem) -> tuple[CategoryDef, ...]:
    out = []
    for name, value in _table_of_tables(body, "categories", problem):
        at = f"taxonomy.categories.{name}"
        for key in value:
            if key not in _CATEGORY_KEYS:
                problem(
                    ("categories", name, key),
                    f"{at}: unknown key `{key}` (a category has {', '.join(_CATEGORY_KEYS)})",
                )
        exposure = value.get("exposure", "active_accounts")
        if exposure not in EXPOSURES:
            problem(
                ("categories", name, "exposure"),
                f"{at}.exposure: `{exposure}` is not an exposure ({', '.join(EXPOSURES)})",
            )
        catch_all = value.get("catch_all", False)
        if not isinstance(catch_all, bool):
            problem(("categories", name, "catch_all"), f"{at}.catch_all: give true or false")
        surface = value.get("surface")
        if surface is not None and surface not in SURFACE_KEYS:
            problem(
                ("categories", name, "surface"),
                f"{at}.surface: `{surface}` is not a product surface ({', '.join(SURFACE_KEYS)})",
            )
        out.append(CategoryDef(name, str(exposure), catch_all is True, surface))
    return tuple(out)


def _names(body: Any, what: str, problem: _Problem, *, required: bool) -> tuple[str, ...]:
    if body is None:
        if required:
            problem((), f'taxonomy: `{what}` is missing (e.g. {what} = ["web_form", "rule"])')
        return ()
    if not isinstance(body, list) or not all(isinstance(v, str) for v in body):
        problem((what,), f'taxonomy.{what}: give a list of names, e.g. ["web_form", "rule"]')
        return ()
    if required and not body:
        problem((what,), f"taxonomy.{what}: declare at least one")
    seen: set[str] = set()
    for name in body:
        bad = _name_problem(name)
        if bad:
            problem((what,), f"taxonomy.{what}: {bad}")
        elif name in seen:
            problem((what,), f"taxonomy.{what}: `{name}` is listed twice")
        seen.add(name)
    return tuple(dict.fromkeys(body))


def _severities(body: Any, problem: _Problem) -> tuple[SeverityDef, ...]:
    out = []
    for name, value in _table_of_tables(body, "severities", problem):
        at = f"taxonomy.severities.{name}"
        for key in value:
            if key != "sla_hours":
                problem(
                    ("severities", name, key),
                    f"{at}: unknown key `{key}` (a severity has sla_hours)",
                )
        hours = value.get("sla_hours")
        if hours is None:
            problem(("severities", name), f"{at}: `sla_hours` is missing")
            continue
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
            problem(
                ("severities", name, "sla_hours"),
                f"{at}.sla_hours: give the first-response target in hours, a positive number "
                f"(not {hours})",
            )
            continue
        out.append(SeverityDef(name, float(hours)))
    return tuple(out)


# --- the taxonomy in force --------------------------------------------------------------------


def load_taxonomy(path: Path | str) -> Taxonomy:
    """The taxonomy a map file declares, or :data:`DEFAULT_TAXONOMY` when it has no
    ``[taxonomy]`` table. Raises :class:`TaxonomyError` (``file:line: message``)."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError([f"{path}:1: cannot read the map: {type(exc).__name__}"]) from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError([toml_syntax_problem(path, source, exc)]) from None
    if "taxonomy" not in data:
        return DEFAULT_TAXONOMY
    return parse_taxonomy(data["taxonomy"], path=path, lines=line_finder(source))


@lru_cache(maxsize=8)
def _from_file(path: str) -> Taxonomy:
    return load_taxonomy(path)


_in_force: list[Taxonomy] = []


def active(environ: Mapping[str, str] | None = None) -> Taxonomy:
    """The taxonomy in force: one put in force by :func:`using`, else that of the map
    ``LOOKOUT_SOURCE_MAP`` names (read once per process and path), else the default.

    >>> active({}) is DEFAULT_TAXONOMY
    True
    """
    if _in_force:
        return _in_force[-1]
    path = (os.environ if environ is None else environ).get(MAP_VARIABLE, "").strip()
    return _from_file(path) if path else DEFAULT_TAXONOMY


@lru_cache(maxsize=8)
def _as_written(path: str, mtime_ns: int) -> Taxonomy:
    return load_taxonomy(path)


#: What :func:`stale` says.
STALE_NOTE: Final = (
    "The taxonomy in the source map (LOOKOUT_SOURCE_MAP) changed since the app started; "
    "the pages still use the one it started with: restart the app to use the new one."
)


def stale(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the taxonomy in force is not the one the map now declares (the frames' types
    are fixed when the process starts, so a changed taxonomy needs a restart), or None.
    A map that cannot be read or has problems says nothing here: checking the map
    reports those.

    >>> stale({}) is None
    True
    """
    path = (os.environ if environ is None else environ).get(MAP_VARIABLE, "").strip()
    if _in_force or not path:
        return None
    try:
        written = _as_written(path, os.stat(path).st_mtime_ns)
    except (OSError, TaxonomyError):
        return None
    return None if written == active_or_default() else STALE_NOTE


def active_or_default() -> Taxonomy:
    """:func:`active`, or the default when the map's taxonomy has problems: for what is fixed
    when a module is imported (the frames' dtypes), so that the problems are reported where
    the map is checked or the taxonomy used, not as an import failure.

    >>> active_or_default() is active()
    True
    """
    try:
        return active()
    except TaxonomyError:
        return DEFAULT_TAXONOMY


@contextmanager
def using(taxonomy: Taxonomy) -> Iterator[Taxonomy]:
    """Put a taxonomy in force for a block (in this process; for tests).

    >>> mine = Taxonomy((CategoryDef("misc", catch_all=True),), ("form",), (SeverityDef("p1", 4),))
    >>> with using(mine):
    ...     active().category_names
    ('misc',)
    >>> active({}).category_names[0]
    'fake_review'
    """
    _in_force.append(taxonomy)
    try:
        yield taxonomy
    finally:
        _in_force.remove(taxonomy)
