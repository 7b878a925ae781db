"""The search box's parser, and the queries it becomes on SQLite, PostgreSQL and others."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from analytics.core import database
from analytics.core.models import Case
from analytics.sources import search
from analytics.sources.search import Term, describe, parse_query


def _words(groups: list[list[Term]]) -> list[list[tuple[str, ...]]]:
    return [[t.words for t in g] for g in groups]


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("refund", [[("refund",)]]),
        ("Refund  CARD", [[("refund",)], [("card",)]]),
        ('"gift card" refund', [[("gift", "card")], [("refund",)]]),
        ("refund OR chargeback card", [[("refund",), ("chargeback",)], [("card",)]]),
        ("a OR b OR c", [[("a",), ("b",), ("c",)]]),
        ("OR refund OR", [[("refund",)]]),
        ("refund or card", [[("refund",)], [("or",)], [("card",)]]),  # only upper-case OR joins
        ("e-mail", [[("e", "mail")]]),  # punctuation inside a word makes a phrase
        ('"unclosed phrase', [[("unclosed", "phrase")]]),
        ("", []),
        ('  ""  -  ( ) * ', []),
        ("-spam", []),  # an exclusion alone asks for nothing
    ],
)
def test_parse_query(typed: str, words: list[list[tuple[str, ...]]]) -> None:
    assert _words(parse_query(typed)) == words


def test_exclusions_prefixes_and_the_echo() -> None:
    groups = parse_query('refund -"gift card" verif* -spam')
    assert groups == [
        [Term(("refund",))],
        [Term(("gift", "card"), exclude=True)],
        [Term(("verif",), prefix=True)],
        [Term(("spam",), exclude=True)],
    ]
    assert describe(groups) == 'refund AND NOT "gift card" AND verif* AND NOT spam'


def test_long_input_is_capped() -> None:
    groups = parse_query(" ".join(f"w{i}" for i in range(1000)))
    assert len(groups) == search.MAX_TERMS
    assert parse_query("x" * 10_000) == [[Term(("x" * search.MAX_QUERY_CHARS,))]]


_DOCS = [
    "Refund requested for a gift card purchase",
    "Caller asked for my insurance verification and member id",
    "Spam messages about a refund",
    "Chargeback after the visit",
    "Verified provider, no problem",
]


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    """An FTS5 table built like :data:`analytics.core.models.SEARCH_TABLE` (same tokenizer)."""
    con = sqlite3.connect(":memory:")
    con.execute(
        "CREATE VIRTUAL TABLE t USING fts5(d, tokenize='porter unicode61 remove_diacritics 2')"
    )
    con.executemany("INSERT INTO t(rowid, d) VALUES (?, ?)", enumerate(_DOCS, start=1))
    return con


def _hits(con: sqlite3.Connection, typed: str) -> list[int]:
    query = search._fts5(parse_query(typed))
    return [
        r[0] for r in con.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (query,))
    ]


@pytest.mark.parametrize(
    ("typed", "hits"),
    [
        ("refund", [1, 3]),
        ("refunds", [1, 3]),  # stemmed
        ("refund -spam", [1]),
        ('"gift card"', [1]),
        ('"card gift"', []),
        ("refund OR chargeback", [1, 3, 4]),
        ("verif*", [2, 5]),
        ("insurance member", [2]),
    ],
)
def test_fts5_queries_find_the_right_documents(fts, typed: str, hits: list[int]) -> None:
    assert _hits(fts, typed) == hits


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_any_text_is_a_valid_fts5_query(fts, typed: str) -> None:
    """Whatever is typed, FTS5 never sees syntax it cannot read (no error, no injection)."""
    groups = parse_query(typed)
    if groups:
        fts.execute("SELECT count(*) FROM t WHERE t MATCH ?", (search._fts5(groups),)).fetchone()


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80))
def test_any_text_is_a_valid_postgres_query(typed: str) -> None:
    from tests.conftest import PG_URL

    engine = _pg_engine(PG_URL)
    groups = parse_query(typed)
    if groups:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT websearch_to_tsquery('english', :q)"), {"q": search._websearch(groups)}
            ).scalar()


_PG: dict[str, object] = {}


def _pg_engine(url: str):  # noqa: ANN202 - one engine for the whole hypothesis run
    if "engine" not in _PG:
        engine = database.make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            import os

            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required when CI is set: {exc}")
            pytest.skip("PostgreSQL not reachable")
        _PG["engine"] = engine
    return _PG["engine"]


def test_other_databases_search_with_like() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE cases (id INTEGER PRIMARY KEY, description TEXT)"))
        for i, d in enumerate(_DOCS, start=1):
            conn.execute(text("INSERT INTO cases VALUES (:i, :d)"), {"i": i, "d": d})
    engine.dialect.name = "other"  # a database without a full-text index

    def hits(typed: str) -> list[int]:
        clause = search.match_clause(engine, typed)
        with engine.connect() as conn:
            return list(conn.execute(select(Case.id).where(clause).order_by(Case.id)).scalars())

    assert hits("refund -spam") == [1]
    assert hits('"gift card" OR chargeback') == [1, 4]
    assert hits("100%_") == []  # wildcards typed are letters to look for, never patterns
