"""Every page and the brief give the same numbers through a source map as through the import
(issue 20): the small demo, held by a team in its own helpdesk tables, is copied into one
Lookout database through the team's map (``sources sync``, as ``LOOKOUT_SOURCE_MAP``
does) and converted by hand into another that imports it; each page, read through
Streamlit's AppTest by a role that may open it, shows the same texts, numbers and tables
on both, and the weekly briefs are the same files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analytics import access
from analytics.core import database, models
from analytics.core.models import Role
from analytics.demo.helpdesk import build_helpdesk, helpdesk_map, lookout_files
from analytics.sources import ingest
from tests.helpers import open_page
from tests.test_plain_words import texts
from ui import nav

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("source_pages")]

#: The small demo's last full week (it ends on Friday 1 May 2026).
WEEK = "2026-W17"


def _cli(*args: str) -> tuple[int, str, str]:
    from analytics.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def two_databases(
    tmp_path_factory: pytest.TempPathFactory, small_demo_file: Path
) -> tuple[str, str]:
    """(through the map, through the import): the same team data in two Lookout databases,
    with the same known events (Lookout's own table, imported into both)."""
    folder = tmp_path_factory.mktemp("source_pages")
    team = f"sqlite:///{folder / 'helpdesk.db'}"
    frames = build_helpdesk(team, f"sqlite:///{small_demo_file}")
    demo = database.make_engine(f"sqlite:///{small_demo_file}")
    with demo.connect() as conn:
        notes = pl.read_database("SELECT * FROM annotations ORDER BY id", conn)
    demo.dispose()
    notes.write_csv(folder / "annotations.csv")
    (folder / "helpdesk.toml").write_text(helpdesk_map(team), encoding="utf-8")
    urls = []
    for name in ("mapped", "imported"):
        (folder / name).mkdir()
        url = f"sqlite:///{folder / name / 'lookout.db'}"
        engine = database.make_engine(url)
        models.init_db(engine)
        if name == "mapped":
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("LOOKOUT_DATABASE_URL", url)
                code, out, err = _cli(
                    "sources",
                    "sync",
                    "--map",
                    str(folder / "helpdesk.toml"),
                    "--quarantine-dir",
                    str(folder / name),
                )
                assert code == 0, err
        else:
            files = lookout_files(frames, folder / name)
            for table in ("accounts", "cases", "events"):
                ingest.import_file(engine, table, files[table])
        ingest.import_file(engine, "annotations", folder / "annotations.csv")
        engine.dispose()
        urls.append(url)
    return urls[0], urls[1]


def _visits() -> Iterator[tuple[str, str, dict[str, str]]]:
    """Each page once, as the first role that may open it, and the pages' second states."""
    for path, _title, _icon, capability in nav.PAGES:
        role = next(
            r
            for r in (Role.leadership, Role.associate, Role.admin)
            if access.allowed(r, capability)
        )
        yield path, role.value, {}
    yield "pages/reports.py", Role.leadership.value, {"reports.audience": "product"}
    yield "pages/cases.py", Role.associate.value, {"cases.case": "12", "cases.account": "40"}
    yield "pages/trends.py", Role.leadership.value, {"trends.category": "fake_review"}


#: When a brief was made: two runs a minute apart differ there, and nowhere else.
_GENERATED = re.compile(r"generated \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} UTC")


def _timeless(text: str) -> str:
    """``text`` without the moment a brief was generated.

    >>> _timeless("2026-W17 · generated 6 Dec 2026 13:26 UTC · filters: all")
    '2026-W17 · generated <moment> · filters: all'
    """
    return _GENERATED.sub("generated <moment>", text)


#: The one text that differs, on purpose: the Overview says where the data was copied from.
_PROVENANCE = "Copied from the team's database through the source map"


def test_the_overview_says_where_the_data_comes_from(
    two_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapped, imported = (
        [t.text for t in texts(open_page(monkeypatch, url, "pages/home.py", role="leadership"))]
        for url in two_databases
    )
    told = [t for t in mapped if t.startswith(_PROVENANCE)]
    assert len(told) == 1 and told[0].startswith(f"{_PROVENANCE} `helpdesk.toml`; last copy ")
    assert told[0].endswith(", which held 22 rows back in quarantine with their reasons.")
    assert not [t for t in imported if t.startswith(_PROVENANCE)]


def _shown(at, folder: str) -> list[str]:  # noqa: ANN001
    """What the page shows: every text, metric and table cell, in order, with the
    database's own folder written out."""
    seen = [f"{t.where}: {t.text}" for t in texts(at) if not t.text.startswith(_PROVENANCE)]
    for frame in at.dataframe:
        seen.append(frame.value.to_csv(index=False))
    for element in at.main:
        if getattr(element, "type", "") == "plotly_chart":
            figure = json.loads(element.proto.spec)
            seen.append(json.dumps(figure.get("data", []), sort_keys=True))
    return [_timeless(s.replace(folder, "<db>")) for s in seen]


@pytest.mark.parametrize(("path", "role", "params"), list(_visits()))
def test_every_page_is_the_same_through_the_map(
    two_databases: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    role: str,
    params: dict[str, str],
) -> None:
    shown = []
    for url in two_databases:
        at = open_page(monkeypatch, url, path, role=role, params=params)
        assert not at.exception, at.exception
        shown.append(_shown(at, str(Path(url.removeprefix("sqlite:///")).parent)))
    mapped, imported = shown
    assert len(mapped) > 5
    assert mapped == imported


@pytest.mark.parametrize("audience", ["leadership", "product"])
def test_the_brief_is_the_same_through_the_map(
    two_databases: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    audience: str,
) -> None:
    briefs = []
    for n, url in enumerate(two_databases):
        monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
        out = tmp_path / f"brief-{n}.md"
        code, _, err = _cli(
            "report", "--week", WEEK, "--audience", audience, "--format", "md", "--out", str(out)
        )
        assert code == 0, err
        briefs.append(_timeless(out.read_text(encoding="utf-8")))
    assert "2026" in briefs[0] and len(briefs[0]) > 1000
    assert briefs[0] == briefs[1]


def test_a_product_user_sees_where_the_data_comes_from_without_counts(
    two_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(monkeypatch, two_databases[0], "pages/home.py", role="product")
    assert not at.exception
    told = [t.text for t in texts(at) if t.text.startswith(_PROVENANCE)]
    assert len(told) == 1 and told[0].endswith("; last copy " + told[0].split("last copy ")[1])
    assert "quarantine" not in told[0] and "22" not in told[0]
