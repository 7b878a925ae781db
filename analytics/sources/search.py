"""Full-text search over case descriptions: what the user types, made safe for each database.

The search box takes the syntax people know from web search engines:

- words: every word must appear (``refund card``);
- ``"a quoted phrase"``: the words in that order;
- ``-word`` or ``-"a phrase"``: leave out cases that have it;
- ``OR`` between two terms: either will do (``refund OR chargeback``);
- ``word*``: any word starting so (SQLite and other databases; PostgreSQL's web search
  syntax has no prefixes, so there the ``*`` is dropped).

:func:`parse_query` reads that into :class:`Term` groups and never fails: stray quotes,
operators with nothing beside them and punctuation are dropped, not rejected.
:func:`match_clause` turns the groups into a SQL condition on ``cases`` for the engine's
dialect, with the text always a bound parameter:

- SQLite: the FTS5 index (:data:`analytics.core.models.SEARCH_TABLE`), every term a quoted FTS5
  string, so no user input is ever read as FTS5 syntax;
- PostgreSQL: ``websearch_to_tsquery('english', ...)`` over the GIN-indexed
  ``to_tsvector('english', description)``;
- anything else: case-insensitive ``LIKE`` with the wildcards escaped.

Both indexes stem English words (``refunds`` finds ``refund``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, column, func, literal_column, not_, or_, select
from sqlalchemy import table as sql_table

from analytics.core import models
from analytics.core.models import Case

__all__ = ["MAX_QUERY_CHARS", "MAX_TERMS", "Term", "describe", "match_clause", "parse_query"]

#: Longer input is cut to this many characters before parsing.
MAX_QUERY_CHARS = 500
#: At most this many terms are kept (the rest are dropped).
MAX_TERMS = 20

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Term:
    """One thing to look for: a word or phrase (its words), maybe a prefix, maybe excluded.

    ``words`` are lower-case runs of letters and digits; a phrase has several.
    """

    words: tuple[str, ...]
    prefix: bool = False
    exclude: bool = False


def parse_query(text: str) -> list[list[Term]]:
    """Read search text into OR-groups of terms: a case matches when every group has a
    term it contains and it contains no excluded term.

    Returns one list per group; excluded terms sit in groups of their own (of one term).
    An empty list means "no search" (blank or nothing searchable).

    >>> parse_query('refund "gift card" -spam')
    [[Term(words=('refund',), prefix=False, exclude=False)], [Term(words=('gift', 'card'), prefix=False, exclude=False)], [Term(words=('spam',), prefix=False, exclude=True)]]
    >>> [[t.words for t in g] for g in parse_query("refund OR chargeback card")]
    [[('refund',), ('chargeback',)], [('card',)]]
    >>> parse_query('"" OR -- )(')
    []
    """  # noqa: E501
    groups: list[list[Term]] = []
    join_next = False
    count = 0
    for match in _TOKEN.finditer(text[:MAX_QUERY_CHARS]):
        minus, quoted, bare = match.groups()
        if bare is not None and bare == "OR":
            join_next = bool(groups) and not groups[-1][-1].exclude
            continue
        raw = quoted if bare is None else bare
        exclude = bool(minus) or (bare is not None and bare.startswith("-") and len(bare) > 1)
        words = tuple(w.lower() for w in _WORD.findall(raw))
        if not words or count >= MAX_TERMS:
            join_next = False
            continue
        term = Term(words, prefix=bare is not None and bare.endswith("*"), exclude=exclude)
        count += 1
        if join_next and not exclude:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    # Exclusions only narrow a search: with nothing to look for there is nothing to narrow.
    if all(g[0].exclude for g in groups):
        return []
    return groups


def describe(groups: list[list[Term]]) -> str:
    """The search as read, for the page to echo back (``refund AND ("gift card" OR coupon)``).

    >>> describe(parse_query('refund "gift card" OR coupon -spam'))
    'refund AND ("gift card" OR coupon) AND NOT spam'
    """

    def one(term: Term) -> str:
        text = " ".join(term.words)
        text = f'"{text}"' if len(term.words) > 1 else text
        return text + ("*" if term.prefix else "")

    parts = []
    for group in groups:
        if group[0].exclude:
            parts.append(f"NOT {one(group[0])}")
        elif len(group) > 1:
            parts.append("(" + " OR ".join(one(t) for t in group) + ")")
        else:
            parts.append(one(group[0]))
    return " AND ".join(parts)


def _fts5(groups: list[list[Term]]) -> str:
    """The FTS5 query: every term a double-quoted string, so none of it is syntax."""

    def one(term: Term) -> str:
        return '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "")

    wanted = ["(" + " OR ".join(one(t) for t in g) + ")" for g in groups if not g[0].exclude]
    unwanted = [one(g[0]) for g in groups if g[0].exclude]
    query = " AND ".join(wanted)
    return query + "".join(f" NOT {u}" for u in unwanted)


def _websearch(groups: list[list[Term]]) -> str:
    """The text for PostgreSQL's ``websearch_to_tsquery`` (which accepts any text)."""

    def one(term: Term) -> str:
        text = " ".join(term.words)
        return f'"{text}"' if len(term.words) > 1 else text

    parts = []
    for group in groups:
        if group[0].exclude:
            parts.append("-" + one(group[0]))
        else:
            parts.append(" or ".join(one(t) for t in group))
    return " ".join(parts)


def _like(term: Term) -> ColumnElement[bool]:
    escaped = " ".join(term.words).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(Case.description).like(f"%{escaped}%", escape="\\")


def match_clause(engine: Engine, text: str) -> ColumnElement[bool] | None:
    """The condition on ``cases`` that the search ``text`` asks for on ``engine``'s
    database, or None when the text asks for nothing.

    >>> from sqlalchemy import create_engine
    >>> match_clause(create_engine("sqlite://"), " -- ") is None
    True
    >>> "MATCH" in str(match_clause(create_engine("sqlite://"), "refund -spam"))
    True
    """
    groups = parse_query(text)
    if not groups:
        return None
    dialect = engine.dialect.name
    if dialect == "sqlite":
        fts = sql_table(models.SEARCH_TABLE, column("rowid"))
        matched = select(fts.c.rowid).where(
            literal_column(models.SEARCH_TABLE).op("MATCH")(_fts5(groups))
        )
        return Case.id.in_(matched)
    if dialect == "postgresql":
        vector = func.to_tsvector(literal_column("'english'"), Case.description)
        query = func.websearch_to_tsquery(literal_column("'english'"), _websearch(groups))
        return vector.bool_op("@@")(query)
    wanted = [or_(*(_like(t) for t in g)) for g in groups if not g[0].exclude]
    unwanted = [not_(_like(g[0])) for g in groups if g[0].exclude]
    return and_(*wanted, *unwanted)
