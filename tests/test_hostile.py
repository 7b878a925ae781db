"""Hostile conditions: a database that is down, empty or slow; hostile text in every
filter, URL parameter and search box; markup in the data; secrets kept out of sight.

The pages run through Streamlit's AppTest. Hostile input must leave the database exactly
as it was (only the append-only audit log may grow) and give at most a short note: never
an exception, a traceback or an error banner. The tests under "bugs found" are
regressions: each failed on the code before its fix (digit signs and 4,301-digit ids,
dates at the end of year 9999, a start date far before the data, unbounded notes).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from tests.helpers import HANG_S, SMALL_DEMO_END, copy_small_demo, open_page

ROOT = Path(__file__).resolve().parent.parent

#: Every page and the title it shows whatever happens to the data.
PAGES = {
    "pages/home.py": "Lookout",
    "pages/trends.py": "Weekly trends",
    "pages/anomalies.py": "Anomalies",
    "pages/emerging.py": "Emerging threats",
    "pages/cases.py": "Case Explorer",
    "pages/reports.py": "Reports",
    "pages/admin.py": "Admin",
}
DOWN_URL = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"
GLOBAL_KEYS = ("week", "start", "end", "category", "region", "platform", "severity", "source",
               "specialty")  # fmt: skip
CASE_KEYS = ("q", "status", "sort", "page", "case", "account", "cluster", "ring", "slice",
             "opened_from", "opened_to")  # fmt: skip
DIMENSIONS = ("category", "region", "platform", "severity", "source", "specialty")
#: A week of the small demo with rings of linked accounts (the default week has none).
RING_WEEK = "2026-W08"
#: Element kinds whose text a person reads.
TEXT_KINDS = ("markdown", "error", "info", "caption", "code", "text", "warning", "success",
              "title", "header", "subheader")  # fmt: skip
TRACEBACK = re.compile(r"Traceback|File \"")

# --------------------------------------------------------------------------- helpers


def _role(page: str) -> str:
    return "admin" if page.endswith("admin.py") else "associate"


#: The keys each page keeps for itself: the URL has them prefixed by the page
#: (``cases.q``), the tests here name them short.
PAGE_KEYS = {
    "cases": CASE_KEYS,
    "anomalies": ("source", "find", "incident", "sensitivity"),
    "emerging": ("cluster", "ring"),
    "reports": ("audience",),
    "trends": ("count",),
}


def _open(monkeypatch, url: str, page: str, params: dict[str, str] | None = None) -> AppTest:
    stem = Path(page).stem
    own = PAGE_KEYS.get(stem, ())
    named = {f"{stem}.{k}" if k in own else k: v for k, v in (params or {}).items()}
    return open_page(monkeypatch, url, page, role=_role(page), params=named)


def _rendered(at: AppTest) -> str:
    """Everything on the page (main area and sidebar), as protobuf text."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(parts)


def _texts(at: AppTest) -> list[str]:
    return [str(getattr(el, "value", "")) for kind in TEXT_KINDS for el in at.get(kind)]


def _assert_graceful(at: AppTest) -> None:
    """No exception, no error banner, no traceback text; warnings are short notes."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    for shown in _texts(at):
        assert not TRACEBACK.search(shown), shown[:300]
    for warning in at.warning:
        note = warning.value
        assert len(note) <= 300, note[:300]


def _fingerprint(url: str) -> dict[str, Any]:
    """What hostile input must not change: the schema objects, the rows of every table but
    the audit log (page views append to it), the newest case, and every case's text."""
    engine = database.make_reader(url)
    try:
        with engine.connect() as conn:
            schema = sorted(
                f"{kind}:{name}"
                for kind, name in conn.exec_driver_sql("SELECT type, name FROM sqlite_master")
            )
            counts = {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in models.Base.metadata.sorted_tables
                if table.name != "audit_log"
            }
            newest = conn.execute(select(func.max(models.Case.id))).scalar_one()
            digest = hashlib.sha256()
            for row in conn.execute(text("SELECT id, status, description FROM cases ORDER BY id")):
                digest.update(repr(tuple(row)).encode())
            for row in conn.execute(text("SELECT key, value FROM dataset_meta ORDER BY key")):
                digest.update(repr(tuple(row)).encode())
    finally:
        engine.dispose()
    return {"schema": schema, "counts": counts, "newest": newest, "digest": digest.hexdigest()}


@dataclass(frozen=True)
class Demo:
    url: str
    fingerprint: dict[str, Any]


@pytest.fixture(scope="module")
def demo(small_demo_file, tmp_path_factory) -> Iterator[Demo]:
    """A copy of the small demo, shared by the module's tests (their page views append to
    the audit log), with its fingerprint taken after a first page view (which may build
    the snapshot)."""
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("hostile"))
    with pytest.MonkeyPatch.context() as mp:
        warm = _open(mp, url, "pages/cases.py")
        assert not warm.exception
    yield Demo(url, _fingerprint(url))
    assert _fingerprint(url)["counts"]["cases"] > 0


def _check(monkeypatch, demo: Demo, page: str, params: dict[str, str]) -> AppTest:
    at = _open(monkeypatch, demo.url, page, params)
    _assert_graceful(at)
    assert _fingerprint(demo.url) == demo.fingerprint
    return at


# --------------------------------------------------------------------------- hostile values

SQL = [
    "'; DROP TABLE cases; --",
    '" OR 1=1 --',
    "1; DELETE FROM cases WHERE 1=1; --",
    "' UNION SELECT name, password_hash FROM users --",
    "x') OR ('1'='1",
    'NEAR("a" "b", 1) description:* """',
    "%_%\\",
]
MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**bold** [x](javascript:alert(1)) `code`",
    "{{7*7}} ${7*7} %s%n",
    "\u202eevil\u202c",
    "日本語のテキスト🙂",
]
ODD = [
    "9999-99-99",
    "0001-01-01",
    "9999-12-30",
    "-1",
    "0",
    "2026-W99",
    "9" * 40,
    "1e308",
    "NaN",
    " ",
    ",,spam,,open,,",
    "category=spam|region=<b>|x",
    "../../etc/passwd?a=b&c=d#e",
]
SHORT = SQL + MARKUP + ODD
#: The fixed examples: every short one, and absurd sizes.
FIXED = SHORT + ["x" * 5000, "'; DROP TABLE cases; --" * 200, "9" * 4300]
#: Values a parameter may legitimately hold, to mix with hostile ones.
VALID = ["spam", "fake_review", "CA", "ios", "high", "user_report", "dentistry", "open",
         "-severity", "region", RING_WEEK, "2026-04-01", "2026-04-30", "1", "2"]  # fmt: skip

_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
HOSTILE = st.one_of(
    st.sampled_from(FIXED),
    st.text(_CHARS, max_size=40),
    st.builds(lambda a, b: f"{a},{b}", st.sampled_from(VALID), st.sampled_from(SHORT)),
    st.builds(lambda a, b: a + b, st.sampled_from(SHORT), st.text(_CHARS, max_size=20)),
    st.builds(lambda s, n: (s * n)[:5000], st.sampled_from(SHORT[:-1]), st.integers(1, 5000)),
    st.integers(-(10**40), 10**40).map(str),
    st.integers(1, 4300).map(lambda n: "9" * n),
    st.dates().map(date.isoformat),
    st.sampled_from(VALID),
)


def _examples(n: int) -> settings:
    """Few examples (each is a page run), the same every run: a failure is reproducible."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )


def _params(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(keys), HOSTILE, min_size=1, max_size=len(keys))


# --------------------------------------------------------------------------- down or empty


@pytest.mark.parametrize("made", ["missing file", "init_db"])
@pytest.mark.parametrize("page", PAGES)
def test_an_empty_database_gets_guidance_to_seed(monkeypatch, tmp_path, page, made) -> None:
    path = tmp_path / "empty.db"
    if made == "init_db":
        engine = database.make_engine(f"sqlite:///{path}")
        models.init_db(engine)
        engine.dispose()
    at = _open(monkeypatch, f"sqlite:///{path}", page)
    assert not at.exception
    assert not at.error
    assert any("python -m analytics seed" in i.value for i in at.info)
    assert at.title[0].value == PAGES[page]  # the rest of the page renders what it can
    assert path.exists() == (made == "init_db")  # the pages never create a database


@pytest.mark.parametrize("page", PAGES)
def test_an_unreachable_database_gets_a_banner_without_its_password(
    monkeypatch, capfd, caplog, page
) -> None:
    at = _open(monkeypatch, DOWN_URL, page)
    assert not at.exception
    banner = " ".join(e.value for e in at.error)
    assert "Cannot read the database at `postgresql+psycopg://nobody:***@127.0.0.1:1/x`" in banner
    assert "LOOKOUT_DATABASE_URL" in banner and not TRACEBACK.search(banner)
    assert at.title[0].value == PAGES[page]
    assert not any("secret" in shown for shown in _texts(at))
    assert "secret" not in _rendered(at)
    out, err = capfd.readouterr()
    assert not re.search(r"\bsecret\b", out + err + caplog.text)


# --------------------------------------------------------------------------- URL parameters


def _rotations(keys: tuple[str, ...], values: list[str]) -> list[dict[str, str]]:
    """Few runs that put every value in one of ``keys`` (the slower pages)."""
    runs = -(-len(values) // len(keys))
    return [
        ({key: values[(i * len(keys) + j) % len(values)] for j, key in enumerate(keys)})
        for i in range(runs)
    ]


@pytest.mark.parametrize("value", FIXED, ids=lambda v: repr(v[:16]) + f"_{len(v)}")
def test_fixed_nasty_values_in_every_case_explorer_parameter(monkeypatch, demo, value) -> None:
    """One nasty value in every parameter of the Case Explorer, global and its own."""
    _check(monkeypatch, demo, "pages/cases.py", (dict.fromkeys(GLOBAL_KEYS + CASE_KEYS, value)))


_EMERGING_KEYS = ("cluster", "ring", *GLOBAL_KEYS[1:])


@pytest.mark.parametrize(
    ("page", "params"),
    [("pages/trends.py", p) for p in _rotations(GLOBAL_KEYS, FIXED)]
    + [("pages/reports.py", p) for p in _rotations(("audience", *GLOBAL_KEYS), FIXED[::-1])]
    + [("pages/anomalies.py", p) for p in _rotations(("source", "find", "incident"), FIXED)]
    + [
        ("pages/emerging.py", {"week": RING_WEEK, **p})
        for p in _rotations(_EMERGING_KEYS, FIXED[::-1])
    ],
    ids=lambda p: Path(p).stem if isinstance(p, str) else None,
)
def test_fixed_nasty_values_in_the_other_pages(monkeypatch, demo, page, params) -> None:
    """Every nasty value in one of the parameters of each other page that takes some."""
    _check(monkeypatch, demo, page, params)


@pytest.mark.slow
@pytest.mark.parametrize("page", ["pages/trends.py", "pages/cases.py"])
@_examples(4)
@given(params=_params(GLOBAL_KEYS))
@example(params={"start": "0001-01-01", "week": "0001-W01", "region": "ca,CA,,Ca"})
@example(params={"start": "2026-05-01", "end": "2026-04-01", "category": "spam,<b>x</b>"})
def test_hostile_global_filters(monkeypatch, demo, page, params) -> None:
    _check(monkeypatch, demo, page, params)


@pytest.mark.slow
@_examples(8)
@given(params=_params(CASE_KEYS + ("start", "end", "category")))
@example(params={"q": '"unterminated OR -', "sort": "--severity", "page": "0", "case": "0"})
@example(params={"slice": "all|category=spam|x=1", "opened_from": "2026-04-30",
                 "opened_to": "0001-01-01"})  # fmt: skip
@example(params={"ring": "1 OR 1=1", "cluster": "-1", "account": "9" * 30})
def test_hostile_case_explorer_parameters(monkeypatch, demo, params) -> None:
    _check(monkeypatch, demo, "pages/cases.py", params)


@pytest.mark.slow
@_examples(6)
@given(params=_params(("source", "find", "incident")))
@example(params={"source": "events", "find": "region=", "incident": "(?i).*"})
def test_hostile_anomalies_parameters(monkeypatch, demo, params) -> None:
    _check(monkeypatch, demo, "pages/anomalies.py", params)


@pytest.mark.slow
@_examples(5)
@given(params=_params(("cluster", "ring")), week=st.sampled_from([RING_WEEK, ""]))
@example(params={"cluster": "0", "ring": "0"}, week=RING_WEEK)
def test_hostile_emerging_parameters(monkeypatch, demo, params, week) -> None:
    _check(monkeypatch, demo, "pages/emerging.py", {**params, "week": week} if week else params)


@pytest.mark.slow
@_examples(3)
@given(audience=HOSTILE)
@example(audience="product")
def test_hostile_reports_audience(monkeypatch, demo, audience) -> None:
    _check(monkeypatch, demo, "pages/reports.py", {"audience": audience})


# --------------------------------------------------------------------------- typed text


TEXT_BOXES = [
    ("pages/cases.py", "cases.q"),
    ("pages/anomalies.py", "anomalies.find"),
    ("pages/admin.py", "admin_user"),
    ("pages/reports.py", "reports_note"),
]


@pytest.fixture
def typed(monkeypatch, demo, request) -> tuple[AppTest, str]:
    """A page opened once, and the key of the text box each example types into."""
    page, key = request.param
    return _open(monkeypatch, demo.url, page), key


@pytest.mark.slow
@pytest.mark.parametrize(
    "typed", TEXT_BOXES, indirect=True, ids=lambda b: f"{Path(b[0]).stem}-{b[1]}"
)
@_examples(8)
@given(value=st.one_of(HOSTILE, st.text(st.characters(exclude_categories=["Cs"]), max_size=60)))
@example(value="'; DROP TABLE cases; --")
@example(value="a\x00b OR \x00")
@example(value='"refund" OR -"gift card" card* -')
@example(value="<script>alert(1)</script>")
@example(value="x" * 5000)
def test_hostile_text_in_the_search_boxes(demo, typed, value) -> None:
    at, key = typed
    box = at.text_area(key=key) if key == "reports_note" else at.text_input(key=key)
    box.set_value(value).run()
    _assert_graceful(at)
    assert not any("<script" in m.value for m in at.markdown)
    if key == "reports_note" and value.strip():  # the note opens the brief, as plain text
        assert at.text[0].value == value.strip()[:2000]
    assert _fingerprint(demo.url) == demo.fingerprint


# --------------------------------------------------------------------------- markup as data

MARKUP_DESCRIPTION = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def test_markup_in_a_description_is_shown_as_text(monkeypatch, own_small_db) -> None:
    url = own_small_db
    engine = database.make_engine(url)
    with Session(engine) as s:
        s.add(
            models.Case(
                id=999_998, opened_at=datetime(2026, 4, 30, 12),
                source=models.CaseSource.user_report, category=models.Category.other,
                severity=models.Severity.low, status=models.CaseStatus.open,
                region="CA", platform=models.Platform.web, subject_account_id=1,
                description=MARKUP_DESCRIPTION,
            )
        )  # fmt: skip
        s.commit()
    engine.dispose()
    at = _open(monkeypatch, url, "pages/cases.py", {"q": "onerror", "case": "999998"})
    _assert_graceful(at)
    assert at.dataframe[0].value["case_id"].tolist() == [999_998]
    assert at.dataframe[0].value["description"].tolist() == [MARKUP_DESCRIPTION]
    assert [t.value for t in at.text] == [MARKUP_DESCRIPTION]  # st.text: never HTML
    for shown in at.markdown:
        assert "<script" not in shown.value and "<img" not in shown.value
    emerging = _open(monkeypatch, url, "pages/emerging.py")
    assert not emerging.exception
    for shown in [*emerging.markdown, *emerging.caption, *emerging.info, *emerging.subheader]:
        assert "<script" not in shown.value and "<img" not in shown.value


# --------------------------------------------------------------------------- a slow database

_ENDLESS = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500000000) "
    "SELECT count(*) FROM n"
)
WRITES = [
    "INSERT INTO dataset_meta (key, value) VALUES ('intruder', '1')",
    "CREATE TABLE intruder (id INTEGER)",
    "DELETE FROM cases",
    "DROP TABLE cases",
]


@pytest.fixture
def sqlite_db(sqlite_url) -> str:
    engine = database.make_engine(sqlite_url)
    models.init_db(engine)
    engine.dispose()
    return sqlite_url


@pytest.fixture
def pg_db(pg_url) -> str:
    engine = database.make_engine(pg_url)
    models.init_db(engine)
    engine.dispose()
    return pg_url


def test_a_slow_query_on_sqlite_is_interrupted(sqlite_db) -> None:
    reader = database.make_reader(sqlite_db, timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="interrupted"), reader.connect() as conn:
            conn.exec_driver_sql(_ENDLESS).scalar_one()
        # Not before its deadline. How soon after depends on the machine's load, so no
        # upper bound: that it was interrupted at all is the test (the query runs minutes).
        assert time.monotonic() - started > 0.4
        with reader.connect() as conn:  # the next query has its own deadline
            assert conn.exec_driver_sql("SELECT count(*) FROM cases").scalar_one() == 0
    finally:
        reader.dispose()


def test_a_slow_query_on_postgresql_is_cancelled(pg_db) -> None:
    reader = database.make_reader(pg_db, timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"), reader.connect() as conn:
            conn.exec_driver_sql("SELECT pg_sleep(5)")
        # Not before its deadline; cancelled by the server's statement timeout (the match
        # above), whatever the load, so no upper bound.
        assert time.monotonic() - started > 0.4
        with reader.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM cases").scalar_one() == 0
    finally:
        reader.dispose()


@pytest.mark.parametrize("statement", WRITES)
def test_the_sqlite_reader_refuses_writes(sqlite_db, statement) -> None:
    engine = database.make_engine(sqlite_db)
    before = database.table_counts(engine), sorted(inspect(engine).get_table_names())
    engine.dispose()
    reader = database.make_reader(sqlite_db)
    try:
        with pytest.raises(OperationalError, match="readonly"), reader.connect() as conn:
            conn.exec_driver_sql(statement)
            conn.commit()
    finally:
        reader.dispose()
    engine = database.make_engine(sqlite_db)
    assert (database.table_counts(engine), sorted(inspect(engine).get_table_names())) == before
    assert database.get_meta(engine, "intruder") is None
    engine.dispose()


def test_the_sqlite_reader_never_creates_a_file(tmp_path) -> None:
    path = tmp_path / "missing.db"
    reader = database.make_reader(f"sqlite:///{path}")
    with pytest.raises(OperationalError), reader.connect():
        pass
    reader.dispose()
    assert not path.exists()


@pytest.mark.parametrize("statement", WRITES)
def test_the_postgresql_reader_refuses_writes(pg_db, statement) -> None:
    reader = database.make_reader(pg_db)
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"), reader.connect() as conn:
            conn.exec_driver_sql(statement)
            conn.commit()
    finally:
        reader.dispose()
    engine = database.make_engine(pg_db)
    assert set(models.TABLES) <= set(inspect(engine).get_table_names())
    assert not inspect(engine).has_table("intruder")
    assert database.get_meta(engine, "intruder") is None
    engine.dispose()


# --------------------------------------------------------------------------- secrets


def _cli(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", *argv],
        cwd=ROOT,
        env={**os.environ, "LOOKOUT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
    )


REPORT = ("report", "--week", "2026-W01", "--audience", "product", "--out", "/nonexistent/x.html")


@pytest.mark.slow
def test_the_command_line_never_prints_the_password(pg_url, tmp_path) -> None:
    """``topsecret`` is ignored by the server (trust) but must never be printed. The URL
    keeps the private schema of ``pg_url``, so nothing is created in ``public``."""
    url = make_url(pg_url).set(password="topsecret").render_as_string(hide_password=False)
    mine = (*REPORT[:-1], str(tmp_path / "brief.html"))
    for argv in (("init-db",), REPORT, mine):
        done = _cli(url, *argv)
        said = done.stdout + done.stderr
        assert "topsecret" not in said, argv
        assert not TRACEBACK.search(said), argv
        if argv == REPORT:  # it stops at the missing folder, before the database
            assert done.stderr.startswith("error: cannot write /nonexistent/x.html"), said
        else:
            assert "postgres:***@127.0.0.1" in said, (argv, said)


@pytest.mark.slow
def test_the_command_line_hides_the_password_of_an_unreachable_database() -> None:
    url = "postgresql+psycopg://nobody:topsecret@127.0.0.1:1/x"
    for argv in (("init-db",), REPORT):
        done = _cli(url, *argv)
        assert done.returncode != 0 and done.stderr.startswith("error:"), (argv, done)
        assert "topsecret" not in done.stdout + done.stderr
        assert not TRACEBACK.search(done.stderr)


def test_the_overview_shows_the_database_url_without_its_password(monkeypatch, pg_db) -> None:
    url = make_url(pg_db).set(password="topsecret").render_as_string(hide_password=False)
    at = _open(monkeypatch, url, "pages/home.py")
    assert not at.exception
    assert any("python -m analytics seed" in i.value for i in at.info)
    assert [c.value for c in at.code] == [database.safe_url(url)]
    assert at.code[0].value.startswith("postgresql+psycopg://postgres:***@127.0.0.1:5432/")
    assert "topsecret" not in _rendered(at)


# --------------------------------------------------------------------------- bugs found


def _bug(reason: str) -> pytest.MarkDecorator:
    """A bug these inputs found, now fixed: the test is its regression test."""
    return pytest.mark.fixed_bug(reason)


INT_CRASH = "a digit string that isdigit() accepts but int() refuses raises ValueError"
_CLUSTER = _bug(f"ui/widgets.py:313 selected_cluster: {INT_CRASH}")
_RING = _bug(f"ui/widgets.py:410 selected_ring: {INT_CRASH}")
_CONTEXT = _bug(f"analytics/views/cases.py:128 explorer_query (the topic): {INT_CRASH}")
_PAGE = _bug(f"analytics/sources/cases.py:147 parse_case_query: {INT_CRASH}")
_NUMBER = _bug(f"ui/filters.py:205 PageState.number: {INT_CRASH}")
HUGE = "9" * 4301  # int() refuses more than 4,300 digits


@pytest.mark.parametrize(
    ("page", "params"),
    [
        pytest.param("pages/emerging.py", {"cluster": "²"}, marks=_CLUSTER),
        pytest.param("pages/emerging.py", {"cluster": HUGE}, marks=_CLUSTER),
        pytest.param("pages/emerging.py", {"week": RING_WEEK, "ring": "①"}, marks=_RING),
        pytest.param("pages/emerging.py", {"week": RING_WEEK, "ring": HUGE}, marks=_RING),
        pytest.param("pages/cases.py", {"cluster": "²"}, marks=_CONTEXT),
        pytest.param("pages/cases.py", {"cluster": HUGE}, marks=_CONTEXT),
        pytest.param("pages/cases.py", {"page": HUGE}, marks=_PAGE),
        pytest.param("pages/cases.py", {"case": HUGE}, marks=_NUMBER),
        pytest.param("pages/cases.py", {"account": HUGE}, marks=_NUMBER),
        # The same inputs where the code copes: a note, or nothing.
        ("pages/cases.py", {"ring": "²", "page": "²", "case": "²", "account": "²"}),
        ("pages/cases.py", {"ring": HUGE}),
        ("pages/emerging.py", {"week": RING_WEEK, "cluster": "١", "ring": "٣"}),
    ],
    ids=lambda p: p if isinstance(p, str) else ",".join(f"{k}={v[:3]}" for k, v in p.items()),
)
def test_odd_digit_strings_are_ignored(monkeypatch, demo, page, params) -> None:
    _check(monkeypatch, demo, page, params)


_UNBOUNDED = "notes about dropped URL values are neither cut short nor bounded in number: "
_LONG_DIM = _bug(_UNBOUNDED + "analytics/core/filters.py:126 parse_filters echoes the whole value")
_MANY_DIM = _bug(_UNBOUNDED + "analytics/core/filters.py:126 parse_filters, one per dropped value")
_MANY_STATUS = _bug(_UNBOUNDED + "ui/filters.py:255 PageState.multiselect, one per dropped value")
_MANY_PARTS = _bug(
    _UNBOUNDED + "analytics/views/cases.py:150 lists every unknown part of the slice (cases.py:95)"
)


def _absurd_cases() -> list[Any]:
    """Every Case Explorer parameter with one huge value; where commas or bars split a
    value, also with hundreds of values."""
    out: list[Any] = []
    for key in GLOBAL_KEYS + CASE_KEYS:
        for shape, value in (("long", "x" * 5000), ("many", "x," * 500), ("parts", "x|" * 2500)):
            bug = None
            if key in DIMENSIONS and shape != "parts":
                bug = _MANY_DIM if shape == "many" else _LONG_DIM
            elif key == "status" and shape == "many":
                bug = _MANY_STATUS
            elif key == "slice" and shape == "parts":
                bug = _MANY_PARTS
            elif shape != "long" and key not in ("status", "slice", "q"):
                continue
            out.append(pytest.param(key, value, marks=bug or (), id=f"{key}-{shape}"))
    return out


@pytest.mark.parametrize(("key", "value"), _absurd_cases())
def test_an_absurd_parameter_gets_one_short_note(monkeypatch, demo, key, value) -> None:
    at = _open(monkeypatch, demo.url, "pages/cases.py", {key: value})
    assert not at.exception
    notes = [n.value for n in [*at.warning, *at.caption, *at.info]]
    assert len(at.warning) <= 2, len(at.warning)
    assert all(len(n) <= 300 for n in notes), max(map(len, notes))
    assert sum(map(len, notes)) <= 1000
    assert _fingerprint(demo.url) == demo.fingerprint


_OVERFLOW = (
    "an end date in the last days of year 9999 raises OverflowError ({}), shown as an "
    "error banner that blames the database"
)
_CASES_END = _bug(_OVERFLOW.format("analytics/sources/cases.py:175 _where: end + 1 day"))
_WINDOW_END = _bug(
    _OVERFLOW.format("analytics/core/filters.py:80 Filters.window: end's Monday + 7 days")
)


@pytest.mark.parametrize(
    ("page", "params"),
    [
        pytest.param("pages/cases.py", {"start": "2026-01-01", "end": "9999-12-31"},
                     marks=_CASES_END),
        pytest.param("pages/cases.py", {"opened_to": "9999-12-31"}, marks=_CASES_END),
        pytest.param("pages/trends.py", {"start": "2026-01-01", "end": "9999-12-30"},
                     marks=_WINDOW_END),
        ("pages/reports.py", {"start": "2026-01-01", "end": "9999-12-31"}),
        ("pages/cases.py", {"opened_from": "9999-12-31"}),
    ],
    ids=lambda p: p if isinstance(p, str) else ",".join(f"{k}={v}" for k, v in p.items()),
)  # fmt: skip
def test_a_date_at_the_end_of_time_gets_a_note_not_an_error(
    monkeypatch, demo, page, params
) -> None:
    at = _open(monkeypatch, demo.url, page, params)
    assert not at.exception
    assert not at.error, at.error[0].value


@_bug(
    "ui/filters.py:85 _from_url (after analytics/core/filters.py parse_filters) keeps a start date "
    "from the URL however far before the data: with start=0001-01-01 the Weekly trends "
    "page charts every day since year 1 (about a minute of CPU per view)"
)
def test_a_start_date_far_before_the_data_is_not_kept(monkeypatch, demo) -> None:
    """Checked on the (fast) Case Explorer: the sidebar's range is shared by every page."""
    at = _open(
        monkeypatch,
        demo.url,
        "pages/cases.py",
        {"start": "0001-01-01", "end": SMALL_DEMO_END.isoformat()},
    )
    assert not at.exception
    chosen = at.date_input(key="filter_range").value
    assert isinstance(chosen, tuple) and len(chosen) == 2
    start = chosen[0]
    noted = any("start" in w.value for w in at.warning)
    assert noted or start >= SMALL_DEMO_END - timedelta(days=3 * 366)
