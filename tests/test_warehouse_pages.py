"""Every page gives the same numbers on the ClickHouse warehouse as on Lookout's own
database (issue 21): the small demo, loaded into a chdb warehouse, read by each page
through Streamlit's AppTest by a role that may open it, with ``LOOKOUT_WAREHOUSE_URL``
set (the weekly cube, the events per day and the Case Explorer's list read ClickHouse)
and without it (the Parquet snapshot of the same SQLite database): the same texts,
metrics, tables and chart data."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from analytics.core import database
from analytics.sources import warehouse
from analytics.views.cases import EXACT_WORDS_NOTE
from tests.helpers import copy_small_demo, open_page
from tests.test_source_pages import _shown, _visits
from tests.test_warehouse import _new_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse_pages")]


@pytest.fixture(scope="module")
def lookout_and_warehouse(
    tmp_path_factory: pytest.TempPathFactory, small_demo_file: Path, chdb_path: Path
) -> tuple[str, str]:
    """A private copy of the small demo and a warehouse loaded from it (URLs)."""
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("warehouse_pages"))
    lookout = database.make_engine(url)
    wh = _new_database(chdb_path)
    warehouse.load(lookout, wh)
    lookout.dispose()
    return url, wh.url.render_as_string(hide_password=False)


@pytest.mark.parametrize(("path", "role", "params"), list(_visits()))
def test_every_page_is_the_same_on_the_warehouse(
    lookout_and_warehouse: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    role: str,
    params: dict[str, str],
) -> None:
    url, wh = lookout_and_warehouse
    monkeypatch.delenv("LOOKOUT_LOADER", raising=False)
    folder = str(Path(url.removeprefix("sqlite:///")).parent)
    shown = []
    for warehouse_url in (wh, None):
        if warehouse_url is None:
            monkeypatch.delenv("LOOKOUT_WAREHOUSE_URL", raising=False)
        else:
            monkeypatch.setenv("LOOKOUT_WAREHOUSE_URL", warehouse_url)
        st.cache_data.clear()  # cached by Lookout's data version, the same in both runs
        at = open_page(monkeypatch, url, path, role=role, params=params)
        assert not at.exception, at.exception
        shown.append(_shown(at, folder))
    on_warehouse, on_lookout = shown
    assert len(on_warehouse) > 5
    # the one difference, on purpose: the Case Explorer says its words match exactly
    note = [s for s in on_warehouse if s.endswith(EXACT_WORDS_NOTE)]
    assert len(note) == (path == "pages/cases.py")
    assert not [s for s in on_lookout if s.endswith(EXACT_WORDS_NOTE)]
    assert [s for s in on_warehouse if s not in note] == on_lookout
