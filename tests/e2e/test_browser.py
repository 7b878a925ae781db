"""End to end in a real browser: the app served by Streamlit on a free port against a
small demo database, driven by Playwright in Debian's headless Chromium.

Every test saves a screenshot of each page it visits under ``test-output/e2e/<test>/``
(kept whatever the outcome). With ``LOOKOUT_DOCS_SCREENSHOTS=1`` the first visit of each
page is also written to ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, text

from analytics import demo
from analytics.core import database, models
from analytics.present.formatting import format_slice
from tests.conftest import PG_URL
from tests.helpers import SMALL_DEMO_END

from . import helpers_browser as shared
from .helpers_browser import PASSWORD, WAIT, Shots
from .helpers_browser import add_users as _add_users
from .helpers_browser import open_page as _open
from .helpers_browser import serve as _serve
from .helpers_browser import settle as _settle
from .helpers_browser import sign_in as _sign_in

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = [pytest.mark.xdist_group("e2e"), pytest.mark.slow]
#: The fixtures every browser test shares: a served small demo with users, and Chromium.
sqlite_app = shared.sqlite_app
browser = shared.browser


@pytest.fixture
def page(browser: Browser, request) -> Iterator[tuple[Page, Shots]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    found = context.new_page()
    found.set_default_timeout(WAIT)
    shots = Shots(request.node.name)
    yield found, shots
    shots.take(found, "last")  # where the test ended, failed or not
    context.close()


def _heading(slice_key: str) -> re.Pattern[str]:
    """An incident's heading: its slice in words, then its days ("Other · Dermatology ·
    16–22 Nov")."""
    return re.compile("^" + re.escape(format_slice(slice_key)) + " · ")


def _no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
    assert width <= 1280


def test_an_associate_goes_through_every_page(sqlite_app, page) -> None:
    base, url = sqlite_app
    pg, shots = page
    _sign_in(pg, base, "ann")
    shots.take(pg, "overview")
    _no_horizontal_scroll(pg)

    # Weekly trends: KPI cards and charts; a filter changes the URL and the numbers.
    _open(pg, "Weekly trends")
    expect(pg.get_by_role("heading", name="Weekly trends")).to_be_visible()
    cards = pg.locator("[data-testid='stMetric']")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 4
    expect(pg.locator(".js-plotly-plot").nth(1)).to_be_visible()  # two charts or more
    shots.take(pg, "trends")
    _no_horizontal_scroll(pg)
    before = cards.first.locator("[data-testid='stMetricValue']").inner_text()
    category = pg.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first
    category.click()
    pg.get_by_role("option", name="Spam", exact=True).click()
    pg.keyboard.press("Escape")
    pg.wait_for_url("**category=spam**")
    _settle(pg)
    after = cards.first.locator("[data-testid='stMetricValue']").inner_text()
    assert after != before
    shots.take(pg, "trends-spam")
    category.locator("[aria-label*='Clear all'], [title*='Clear all']").first.click()
    _settle(pg)

    # Anomalies: the top anomaly's band and root cause; feedback recorded.
    _open(pg, "Anomalies")
    table = pg.locator("[data-testid='stDataFrame']").first
    expect(table).to_be_visible()
    box = table.bounding_box()
    assert box is not None

    def incident() -> str:
        return parse_qs(urlparse(pg.url).query)["anomalies.incident"][0]

    top = incident()  # shown first, before any choice
    pg.mouse.click(box["x"] + 16, box["y"] + 35 + 35 + 17)  # the second row's selection box
    pg.wait_for_function(f"() => !decodeURIComponent(location.search).includes({top!r})")
    _settle(pg)
    second = incident()
    expect(pg.get_by_role("heading", name=_heading(second))).to_be_visible()
    pg.mouse.click(box["x"] + 16, box["y"] + 35 + 35 + 17)  # unselect it
    pg.mouse.click(box["x"] + 16, box["y"] + 35 + 17)  # and pick the top one
    pg.wait_for_function(f"() => decodeURIComponent(location.search).includes({top!r})")
    _settle(pg)
    expect(pg.get_by_role("heading", name=_heading(top))).to_be_visible()
    expect(pg.get_by_text("Value and expected band")).to_be_visible()
    expect(pg.get_by_text("What explains it")).to_be_visible()
    expect(pg.locator(".js-plotly-plot").first).to_be_visible()
    shots.take(pg, "anomalies")
    pg.get_by_role("button", name="Not useful").click()
    expect(pg.get_by_text("Recorded: not useful")).to_be_visible()
    engine = database.make_engine(url)
    with engine.connect() as conn:
        verdicts = conn.execute(text("SELECT user_name, verdict FROM feedback")).all()
    engine.dispose()
    assert ("ann", "not_useful") in [tuple(v) for v in verdicts]
    # The sensitivity: a stricter budget goes into the URL and widens the band.
    why = pg.get_by_text("Detector:").first
    before = why.inner_text()
    pg.get_by_text("¼", exact=True).click()
    pg.wait_for_url("**anomalies.sensitivity=0.25**")
    _settle(pg)
    after = pg.get_by_text("Detector:").first.inner_text()
    assert before != after and "% band" in after
    shots.take(pg, "anomalies-strict")

    # Emerging threats: a topic's cases open in the Case Explorer.
    _open(pg, "Emerging threats")
    link = pg.get_by_role("link", name="cases in Case Explorer").first
    expect(link).to_be_visible()
    shots.take(pg, "emerging")
    wanted = int(link.inner_text().split("Open the ")[1].split(" cases")[0].replace(",", ""))
    link.click()
    pg.wait_for_url("**/cases?**cases.cluster=**")
    _settle(pg)
    expect(pg.get_by_text(f"{wanted:,} cases · page 1")).to_be_visible()
    shots.take(pg, "cases")
    _no_horizontal_scroll(pg)
    with pg.expect_download() as got:
        pg.get_by_role("button", name="Export this page as CSV").click()
    exported = Path(got.value.path()).read_text(encoding="utf-8").splitlines()
    assert exported[0].startswith("case_id,") and len(exported) == wanted + 1

    # Reports: the product brief downloads as one HTML file with no case text.
    _open(pg, "Reports")
    pg.get_by_text("Product teams", exact=True).click()
    _settle(pg)
    expect(pg.get_by_text("(product)").first).to_be_visible()
    shots.take(pg, "reports")
    with pg.expect_download() as got:
        pg.get_by_role("button", name="Download HTML").click()
    html = Path(got.value.path()).read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    engine = database.make_engine(url)
    with engine.connect() as conn:
        texts = conn.execute(select(models.Case.description)).scalars().all()
        audited = dict(
            conn.execute(text("SELECT action, count(*) FROM audit_log GROUP BY action")).all()
        )
    engine.dispose()
    assert not any(t[:40] in html for t in texts)
    # Downloads and exports are in the audit log, with the sign-in and the case list.
    assert audited["report_download"] >= 1 and audited["export"] >= 1 and audited["login"] >= 1


def test_a_product_user_cannot_reach_the_case_explorer(sqlite_app, page) -> None:
    base, _ = sqlite_app
    pg, shots = page
    _sign_in(pg, base, "pat")
    nav = pg.locator("[class*='st-key-lookout_menu']")
    expect(nav.get_by_text("Reports", exact=True)).to_be_visible()
    assert nav.get_by_text("Case Explorer", exact=True).count() == 0
    shots.take(pg, "product-overview")
    # Typing the page's address starts a new session, signed in by the browser's
    # cookie: the page says it is not for the role, and shows nothing of it.
    pg.goto(f"{base}/cases")
    _settle(pg)
    expect(pg.get_by_text("Your role (product) cannot open this page.")).to_be_visible()
    assert urlparse(pg.url).path == "/cases"
    shots.take(pg, "product-cases-url")
    assert pg.locator("[data-testid='stDataFrame']").count() == 0
    assert pg.locator("[data-testid='stTextInput']").count() == 0  # no search box either


TITLES = ("Overview", "Weekly trends", "Anomalies", "Emerging threats", "Case Explorer",
          "Reports", "Admin")  # fmt: skip
MENUS = {
    "ann": set(TITLES) - {"Admin"},
    "lee": set(TITLES) - {"Admin"},
    "ada": {"Overview", "Weekly trends", "Reports", "Admin"},
    "pat": {"Overview", "Reports"},
}
# (user, deep link, what shows once signed in: a heading, or the page's refusal)
DEEP_LINKS = [
    ("ann", "/trends?category=spam", "Weekly trends"),
    ("lee", "/trends?category=spam", "Weekly trends"),
    ("ada", "/trends?category=spam", "Weekly trends"),
    ("pat", "/trends?category=spam", "refused"),
    ("ann", "/cases?cases.case=7", "Case 7 ·"),
    ("lee", "/cases?cases.case=7", "Case 7 ·"),
    ("ada", "/cases?cases.case=7", "refused"),
    ("pat", "/cases?cases.case=7", "refused"),
    ("pat", "/reports?category=spam", "Reports"),
]


@pytest.mark.parametrize(("user", "link", "shows"), DEEP_LINKS)
def test_a_deep_link_opens_after_sign_in(sqlite_app, page, user, link, shows) -> None:
    """A link opened signed out asks who you are, then opens the page and the view it
    asked for (it used to land on Overview); a page the role may not open says so."""
    base, _ = sqlite_app
    pg, shots = page
    pg.goto(base + link)
    pg.get_by_label("Name", exact=True).fill(user)
    pg.get_by_label("Password", exact=True).fill(PASSWORD)
    pg.get_by_role("button", name="Sign in").click()
    expect(pg.get_by_text(f"Signed in as {user}")).to_be_visible()
    _settle(pg)
    shots.take(pg, "deep-link")
    asked = urlparse(base + link)
    assert urlparse(pg.url).path == asked.path
    now = parse_qs(urlparse(pg.url).query)
    assert all(now.get(k) == v for k, v in parse_qs(asked.query).items()), (pg.url, link)
    if shows == "refused":
        expect(pg.get_by_text("cannot open this page")).to_be_visible()
    else:
        expect(pg.get_by_role("heading", name=shows).first).to_be_visible()
    # The menu lists exactly the role's pages, by title.
    menu = pg.locator("[class*='st-key-lookout_menu']")
    for title in TITLES:
        if title in MENUS[user]:
            expect(menu.get_by_text(title, exact=True)).to_be_visible()
    assert {t for t in TITLES if menu.get_by_text(t, exact=True).count()} == MENUS[user]


def _replay(base: str, session_id: str) -> str:
    """Connect to the app as an attacker who knows a session id and nothing else (none
    of the victim's cookies), ask for a run, and return everything the server sends."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    stream = base.replace("http://", "ws://") + "/_stcore/stream"
    seen: list[str] = []
    with connect(
        stream, subprotocols=["streamlit", "PLACEHOLDER_AUTH_TOKEN", session_id],  # type: ignore[list-item]
        origin=base, max_size=None, open_timeout=30,
    ) as ws:  # fmt: skip
        ask = BackMsg()
        ask.rerun_script.query_string = ""
        ws.send(ask.SerializeToString())
        for _ in range(2000):  # bounded: a run sends a few hundred messages at most
            try:
                raw = ws.recv(timeout=WAIT / 1000)
            except TimeoutError:
                break
            msg = ForwardMsg()
            msg.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
            seen.append(str(msg))
            if msg.HasField("script_finished"):
                break
    return "\n".join(seen)


def test_a_stolen_session_id_does_not_take_over_a_signed_in_session(sqlite_app, page) -> None:
    """Streamlit resumes a session for whoever sends its id. The victim signs in; the
    attacker replays the victim's session id without the victim's cookie and gets the
    sign-in form, never the victim's pages; the server log never shows the id."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    base, _ = sqlite_app
    pg, shots = page
    ids: list[str] = []

    def watch(ws) -> None:  # noqa: ANN001
        def frame(payload: bytes | str) -> None:
            msg = ForwardMsg()
            try:
                msg.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
            except Exception:  # noqa: BLE001 - not a ForwardMsg
                return
            if msg.HasField("new_session") and msg.new_session.initialize.session_id:
                ids.append(msg.new_session.initialize.session_id)

        ws.on("framereceived", frame)

    pg.on("websocket", watch)
    _sign_in(pg, base, "ann")
    shots.take(pg, "victim")
    assert ids, "the victim's session id was not seen"
    stolen = _replay(base, ids[-1])
    assert "Sign in" in stolen
    assert "Signed in as" not in stolen
    log = (Path(sqlite_app[1].removeprefix("sqlite:///")).parent / "streamlit.log").read_text()
    assert ids[-1] not in log


def test_an_admin_reads_the_audit_log(sqlite_app, page) -> None:
    base, _ = sqlite_app
    pg, shots = page
    _sign_in(pg, base, "ada")
    nav = pg.locator("[class*='st-key-lookout_menu']")
    assert nav.get_by_text("Case Explorer", exact=True).count() == 0
    _open(pg, "Admin")
    expect(pg.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(pg.get_by_text("entries (newest first")).to_be_visible()
    shots.take(pg, "admin")
    _no_horizontal_scroll(pg)


@pytest.fixture(scope="module")
def postgres_app(tmp_path_factory) -> Iterator[tuple[str, str, str]]:
    """The small demo in a private PostgreSQL schema, served; yields (base, url, schema)."""
    import uuid

    from sqlalchemy.engine import make_url

    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = database.make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required when CI is set: {exc}")
        pytest.skip("PostgreSQL not reachable")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    engine = database.make_engine(url_text)
    demo.seed_database(engine, scale="small", seed=7, days=240, end=SMALL_DEMO_END)
    engine.dispose()
    _add_users(url_text)
    folder = tmp_path_factory.mktemp("e2e-pg")
    try:
        for base in _serve(url_text, folder):
            yield base, url_text, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_gone" CASCADE'))
        admin.dispose()


def test_the_page_survives_a_database_that_goes_away(postgres_app, browser, request) -> None:
    base, _, schema = postgres_app
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(WAIT)
    shots = Shots(request.node.name)
    _sign_in(pg, base, "ann")
    _open(pg, "Case Explorer")
    expect(pg.get_by_text("cases · page 1")).to_be_visible()
    shots.take(pg, "cases-before")
    admin = database.make_engine(PG_URL)
    with admin.begin() as conn:  # the tables vanish from under the running app
        conn.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_gone"'))
    try:
        search = pg.get_by_label('Search descriptions (words, "a phrase", -leave out, OR)')
        search.fill("refund")
        search.press("Enter")
        _settle(pg)
        shots.take(pg, "cases-database-gone")
        banner = pg.locator("[data-testid='stAlertContentError']").first
        expect(banner).to_contain_text("Cannot")
        assert "Traceback" not in pg.content()
        expect(pg.get_by_role("heading", name="Case Explorer")).to_be_visible()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'ALTER SCHEMA "{schema}_gone" RENAME TO "{schema}"'))
        admin.dispose()
        context.close()
