"""CSV formula injection (issue 14, item 3): no export hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from analytics import access
from analytics.access import SignInFailed
from analytics.core import database
from analytics.core.models import Case
from analytics.present import exports
from tests.helpers import copy_small_demo, open_page

ATTACK = "=cmd|' /C calc'!A0"


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_no_exported_text_cell_starts_a_formula(values: list[str]) -> None:
    frame = pl.DataFrame({"text": values, "n": list(range(len(values)))})
    rows = _cells(exports.to_csv(frame))[1:]
    for (cell, _), value in zip(rows, values, strict=True):
        assert not cell.startswith(exports.FORMULA_STARTS)
        # Nothing else changes: the apostrophe is the only thing added.
        assert cell == ("'" + value if value.startswith(exports.FORMULA_STARTS) else value)


def test_numbers_and_nulls_are_left_alone() -> None:
    frame = pl.DataFrame({"delta": [-3, 4], "note": [None, "+1 call"]})
    assert exports.neutralise(frame).to_dict(as_series=False) == {
        "delta": [-3, 4],
        "note": [None, "'+1 call"],
    }


@pytest.fixture
def downloads(monkeypatch) -> list[tuple[str, bytes]]:
    """Every file a download button hands the browser: (file name, bytes)."""
    seen: list[tuple[str, bytes]] = []
    real = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):  # noqa: ANN001, ANN202
        data = path_or_data.encode() if isinstance(path_or_data, str) else bytes(path_or_data)
        seen.append((filename or "", data))
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


@pytest.fixture(scope="module")
def hostile_db(small_demo_file, tmp_path_factory) -> str:
    """The small demo where a signed-out stranger typed a formula as a sign-in name and
    a reporter wrote one as a case description."""
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("exports"))
    engine = database.make_engine(url)
    with pytest.raises(SignInFailed):
        access.sign_in(engine, ATTACK, "whatever")
    with engine.begin() as conn:
        newest = conn.execute(select(Case.id).order_by(Case.opened_at.desc()).limit(1)).scalar()
        conn.execute(update(Case).where(Case.id == newest).values(description=ATTACK))
    engine.dispose()
    return url


def _export(downloads: list[tuple[str, bytes]], name: str) -> str:
    found = [data for file, data in downloads if file.startswith(name)]
    assert found, f"no download named {name}*: {[f for f, _ in downloads]}"
    return found[-1].decode("utf-8")


def test_audit_log_export_neutralises_a_formula_typed_as_a_sign_in_name(
    monkeypatch, hostile_db, downloads
) -> None:
    at = open_page(monkeypatch, hostile_db, "pages/admin.py", role="admin")
    assert not at.exception
    text = _export(downloads, "lookout-audit")
    cells = [c for row in _cells(text) for c in row]
    assert "'" + ATTACK in cells
    assert not any(c.startswith(exports.FORMULA_STARTS) for c in cells)
    # The table on the page (whose toolbar also downloads CSV) shows the guarded text.
    shown = at.dataframe[-1].value
    assert "'" + ATTACK in shown["user_name"].tolist()


def test_case_list_export_neutralises_a_formula_in_a_description(
    monkeypatch, hostile_db, downloads
) -> None:
    at = open_page(monkeypatch, hostile_db, "pages/cases.py", params={"cases.sort": "-opened_at"})
    assert not at.exception
    text = _export(downloads, "lookout-cases")
    cells = [c for row in _cells(text) for c in row]
    assert any(c.startswith("'" + ATTACK[:8]) for c in cells)
    assert not any(c.startswith(exports.FORMULA_STARTS) for c in cells)


def test_every_csv_download_goes_through_the_guard() -> None:
    """No page or glue module writes CSV itself: they call exports.to_csv."""
    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("pages/*.py"), *root.glob("ui/*.py"), root / "app.py"]:
        assert ".write_csv(" not in path.read_text(), path
