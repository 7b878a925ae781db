"""The Case Explorer's search and list on the ClickHouse warehouse (chdb): with
``LOOKOUT_WAREHOUSE_URL`` set, :func:`analytics.sources.cases.search_cases` gives the same
total and rows as on Lookout's SQLite database, under every filter, sort and page, except
where SQLite's stemmer finds words that ClickHouse's token index does not.

chdb opens one data folder per process: the warehouse is a database of its own in the
process's folder (``chdb_path``), as in ``tests/test_warehouse.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import streamlit as st
from polars.testing import assert_frame_equal
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from analytics.core import database
from analytics.core.filters import Filters
from analytics.core.models import Case
from analytics.sources import cases, warehouse
from analytics.sources.cases import SORTS, CasePage, CaseQuery, search_cases
from analytics.sources.frames import read_frame
from tests.helpers import SMALL_DEMO_END, open_page
from tests.test_warehouse import _new_database

END = SMALL_DEMO_END


@pytest.fixture(scope="module")
def lookout(small_db: str) -> Iterator[Engine]:
    engine = database.make_engine(small_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def wh_url(chdb_path: Path, lookout: Engine) -> str:
    """The URL of a warehouse database loaded from the small demo."""
    wh = _new_database(chdb_path)
    assert warehouse.load(lookout, wh).cases > 0
    return wh.url.render_as_string(hide_password=False)


def _pages(
    lookout: Engine, wh_url: str, monkeypatch: pytest.MonkeyPatch, query: CaseQuery
) -> tuple[CasePage, CasePage]:
    """The page ``query`` gives on SQLite, then with the warehouse set (read there)."""
    read_on: list[str] = []

    def reading(engine: Engine, *args: Any) -> pl.DataFrame:
        read_on.append(engine.dialect.name)
        return read_frame(engine, *args)

    monkeypatch.setattr(cases, "read_frame", reading)
    monkeypatch.delenv("LOOKOUT_WAREHOUSE_URL", raising=False)
    on_sqlite = search_cases(lookout, query, role="leadership")
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh_url)
    on_warehouse = search_cases(lookout, query, role="leadership")
    monkeypatch.delenv("LOOKOUT_WAREHOUSE_URL")
    assert read_on == ["sqlite", "clickhousedb"]
    return on_sqlite, on_warehouse


def _same(lookout: Engine, wh_url: str, monkeypatch: pytest.MonkeyPatch, query: CaseQuery) -> int:
    """Assert both pages are the same (total, page, rows in order); their total."""
    on_sqlite, on_warehouse = _pages(lookout, wh_url, monkeypatch, query)
    assert (on_warehouse.total, on_warehouse.page, on_warehouse.pages) == (
        on_sqlite.total,
        on_sqlite.page,
        on_sqlite.pages,
    )
    assert_frame_equal(on_warehouse.rows, on_sqlite.rows)
    assert on_sqlite.rows.height == min(
        query.page_size, on_sqlite.total - (on_sqlite.page - 1) * query.page_size
    )
    return on_sqlite.total


WINDOW = Filters(start=END - timedelta(days=120), end=END - timedelta(days=1))

#: Searches whose words SQLite's stemmer and ClickHouse's tokens agree on in the demo.
SEARCHES = [
    "velocity",
    "threshold",
    '"saved card"',
    "staff -abusive",
    "phone OR velocity",
    '"device fingerprints"',
    "screenshot*",
]


@pytest.mark.parametrize("text", SEARCHES)
def test_a_search_equals_sqlites(lookout, wh_url, monkeypatch, text: str) -> None:
    assert _same(lookout, wh_url, monkeypatch, CaseQuery(text=text, page_size=200)) > 0


@pytest.mark.parametrize(
    ("text", "filters", "status"),
    [
        ("velocity", Filters(region=("CA", "TX", "NY")), ()),
        ("threshold", Filters(category=("spam", "payment_fraud", "account_takeover")), ()),
        ("", Filters(specialty=("dermatology", "dentistry", "orthopedics")), ()),
        ("staff", Filters(specialty=("dermatology", "dentistry", "orthopedics")), ()),
        ("velocity", WINDOW, ()),
        ("", WINDOW, ("open", "in_review")),
        ("detector OR threshold", replace(WINDOW, region=("CA",)), ("resolved",)),
    ],
    ids=["region", "category", "specialty", "specialty+text", "dates", "status", "mixed"],
)
def test_filters_equal_sqlites(lookout, wh_url, monkeypatch, text, filters, status) -> None:
    query = CaseQuery(filters=filters, text=text, status=status, page_size=100)
    assert _same(lookout, wh_url, monkeypatch, query) > 0


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_equals_sqlites(lookout, wh_url, monkeypatch, sort, descending) -> None:
    # page 3 of the whole list: ties (severity, status, category, region) broken by id
    whole = CaseQuery(sort=sort, descending=descending, page=3, page_size=40)
    assert _same(lookout, wh_url, monkeypatch, whole) > 120
    found = CaseQuery(text="threshold", sort=sort, descending=descending, page_size=30)
    assert _same(lookout, wh_url, monkeypatch, found) > 30


def test_a_page_past_the_end_is_the_last_one(lookout, wh_url, monkeypatch) -> None:
    query = CaseQuery(text="velocity", page=10_000, page_size=20)
    on_sqlite, on_warehouse = _pages(lookout, wh_url, monkeypatch, query)
    assert on_warehouse.page == on_warehouse.pages == on_sqlite.pages > 1
    _same(lookout, wh_url, monkeypatch, query)


def test_one_accounts_cases_and_a_set_of_ids(lookout, wh_url, monkeypatch) -> None:
    with lookout.connect() as conn:
        busiest = conn.execute(
            select(Case.subject_account_id)
            .group_by(Case.subject_account_id)
            .order_by(func.count().desc(), Case.subject_account_id)
            .limit(1)
        ).scalar_one()
        some = conn.execute(select(Case.id).order_by(Case.id).limit(300)).scalars().all()
    assert _same(lookout, wh_url, monkeypatch, CaseQuery(account_id=busiest)) > 1
    by_ids = CaseQuery(case_ids=tuple(some[::3]), text="website OR staff", page_size=200)
    assert _same(lookout, wh_url, monkeypatch, by_ids) > 0
    subjects = CaseQuery(subject_ids=(busiest, busiest + 1, busiest + 2), sort="severity")
    assert _same(lookout, wh_url, monkeypatch, subjects) > 1


def _with_token(lookout: Engine, word: str) -> set[int]:
    """The ids of the cases whose description has ``word`` as a whole word (any case)."""
    with lookout.connect() as conn:
        rows = conn.execute(select(Case.id, Case.description)).all()
    return {i for i, text in rows if re.search(rf"(?<![^\W_]){word}(?![^\W_])", text or "", re.I)}


def test_clickhouse_does_not_stem(lookout, wh_url, monkeypatch) -> None:
    """SQLite's porter stemmer finds "charge" and "charged" for "charges"; ClickHouse's
    token index only the word as typed."""
    query = CaseQuery(text="charges", page_size=200)
    on_sqlite, on_warehouse = _pages(lookout, wh_url, monkeypatch, query)
    exact = _with_token(lookout, "charges")
    stems = exact | _with_token(lookout, "charge") | _with_token(lookout, "charged")
    assert set(on_warehouse.rows["case_id"]) == exact and on_warehouse.total == len(exact) > 0
    assert set(on_sqlite.rows["case_id"]) == stems and on_sqlite.total == len(stems)
    assert on_sqlite.total > on_warehouse.total


def _listed(monkeypatch: pytest.MonkeyPatch, url: str, **params: str) -> tuple[str, pl.DataFrame]:
    st.cache_data.clear()  # the list is cached by Lookout's data version, the same in both
    at: AppTest = open_page(monkeypatch, url, "pages/cases.py", role="leadership", params=params)
    assert not at.exception, at.exception
    total = next(c.value for c in at.caption if " cases · page " in c.value)
    return total, pl.from_pandas(at.dataframe[0].value)


def test_the_case_explorer_page_reads_the_warehouse(small_db, wh_url, monkeypatch) -> None:
    monkeypatch.delenv("LOOKOUT_LOADER", raising=False)
    params = {"cases.q": "velocity", "start": f"{date(2026, 1, 1)}", "end": f"{END}"}
    monkeypatch.delenv("LOOKOUT_WAREHOUSE_URL", raising=False)
    total, rows = _listed(monkeypatch, small_db, **params)
    stemmed, _ = _listed(monkeypatch, small_db, **{"cases.q": "charges"})
    monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", wh_url)
    on_warehouse_total, on_warehouse_rows = _listed(monkeypatch, small_db, **params)
    assert on_warehouse_total == total and int(total.split(" cases")[0]) > 0
    assert rows.height > 0
    assert_frame_equal(on_warehouse_rows, rows)
    # the page does read the warehouse: there "charges" does not find "charge"
    exact, _ = _listed(monkeypatch, small_db, **{"cases.q": "charges"})
    assert int(exact.split(" cases")[0]) < int(stemmed.split(" cases")[0])
