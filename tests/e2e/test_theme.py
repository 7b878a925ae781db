"""The theme follows the browser, and nothing is fetched from outside (issue 18 item 9),
in headless Chromium against the served small demo.

- Every page each role may open, loaded in a fresh browser, requests nothing but the
  app's own address (a Playwright request listener sees every request the page makes:
  scripts, styles, fonts, images, the tab's icon); the icon is the PNG shipped with the
  app.
- With the browser in dark mode (``color_scheme="dark"``) the app is dark and the
  charts' text is light; in light mode the reverse. Screenshots of Weekly trends and
  Known events in both at 1440x900 go to ``test-output/e2e/theme/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from analytics import access
from analytics.core.models import Role
from ui import nav

from . import test_browser as e2e

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page  # noqa: E402

# A second browser group, so that the two test workers share the browser tests.
pytestmark = [pytest.mark.xdist_group("e2e-look"), pytest.mark.slow]

#: The browser tests' fixtures: a served small demo with users, and Chromium.
sqlite_app = e2e.sqlite_app
browser = e2e.browser
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "e2e" / "theme"
USERS = {Role.associate: "ann", Role.leadership: "lee", Role.product: "pat", Role.admin: "ada"}


def _stems(role: Role) -> list[str]:
    """The URL path of every page in ``role``'s menu ("" for the first, Overview)."""
    return [
        "" if i == 0 else Path(path).stem
        for i, (path, _title, _icon, need) in enumerate(nav.PAGES)
        if access.allowed(role, need)
    ]


def _luminance(css: str) -> float:
    """Relative luminance (0 black .. 1 white) of a CSS ``rgb()``/``rgba()`` colour."""
    parts = [float(p) for p in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _colours(page: Page) -> dict[str, str | None]:
    """The app's background, and the fill of the charts' tick and legend texts."""
    return page.evaluate(
        """() => {
          const fill = (sel) => {
            const el = document.querySelector(sel);
            return el ? getComputedStyle(el).fill : null;
          };
          return {
            background: getComputedStyle(
              document.querySelector("[data-testid='stApp']")).backgroundColor,
            tick: fill(".js-plotly-plot .xtick text"),
            legend: fill(".js-plotly-plot .legendtext"),
          };
        }"""
    )


def test_associates_open_the_pages_leadership_opens() -> None:
    """Why associates are not walked below: their pages are leadership's."""
    assert _stems(Role.associate) == _stems(Role.leadership)


@pytest.mark.parametrize("role", [r for r in USERS if r != Role.associate])
def test_every_page_requests_nothing_outside_the_app(
    sqlite_app, browser: Browser, role: Role
) -> None:
    base, _url = sqlite_app
    host = urlparse(base).netloc
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(e2e.WAIT)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        e2e._sign_in(page, base, USERS[role])
        for stem in _stems(role):
            page.goto(f"{base}/{stem}")
            e2e._settle(page)
            page.wait_for_timeout(1_000)  # late requests: fonts, images, the icon
        icon = page.evaluate("() => document.querySelector(\"link[rel~='icon']\")?.href")
    finally:
        context.close()
    outside = sorted({u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                      and urlparse(u).netloc != host})  # fmt: skip
    assert outside == [], outside
    assert sum(urlparse(u).netloc == host for u in requests) > 20  # the listener listens
    assert icon is not None and urlparse(icon).netloc == host and "/media/" in icon, icon


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_theme_follows_the_browser_with_readable_charts(
    sqlite_app, browser: Browser, scheme: str
) -> None:
    base, _url = sqlite_app
    OUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(e2e.WAIT)
    try:
        e2e._sign_in(page, base, USERS[Role.associate])
        page.goto(f"{base}/trends")
        e2e._settle(page)
        page.locator(".js-plotly-plot .xtick text").first.wait_for()
        page.wait_for_timeout(1_000)
        colours = _colours(page)
        page.screenshot(path=str(OUT / f"trends-{scheme}.png"))
        page.goto(f"{base}/events")
        e2e._settle(page)
        page.get_by_text("known events", exact=False).last.wait_for()
        page.locator("[data-testid='stDataFrame']").first.wait_for()
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(OUT / f"events-{scheme}.png"))
        events_background = _colours(page)["background"]
    finally:
        context.close()
    background = _luminance(str(colours["background"]))
    tick, legend = _luminance(str(colours["tick"])), _luminance(str(colours["legend"]))
    if scheme == "dark":
        assert background < 0.05, colours
        assert tick > 0.4 and legend > 0.4, colours  # light text on the dark page
    else:
        assert background > 0.9, colours
        assert tick < 0.3 and legend < 0.3, colours  # dark text on the light page
    assert events_background == colours["background"]
    # readable: at least 3:1 between the chart text and the page (Streamlit's muted axis
    # grey on white is about 3.8:1; its light text on the dark page about 14:1)
    for text in (tick, legend):
        light, dark = max(text, background), min(text, background)
        assert (light + 0.05) / (dark + 0.05) >= 3.0, (scheme, colours)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_html_brief_follows_the_browser_and_fetches_nothing(
    small_db, browser: Browser, tmp_path, scheme: str
) -> None:
    from datetime import date

    from analytics import reports
    from analytics.core import database

    engine = database.make_engine(small_db)
    brief = reports.build_brief(
        engine, week=date(2026, 4, 20), audience="leadership", role="leadership"
    )
    engine.dispose()
    path = tmp_path / "brief.html"
    path.write_text(reports.render_html(brief))
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(path.as_uri())
        page.locator(".js-plotly-plot .xtick text").first.wait_for()
        colours = page.evaluate(
            """() => ({
              background: getComputedStyle(document.querySelector("main")).backgroundColor,
              body: getComputedStyle(document.querySelector("main")).color,
              tick: getComputedStyle(document.querySelector(".js-plotly-plot .xtick text")).fill,
            })"""
        )
        OUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT / f"brief-{scheme}.png"))
    finally:
        context.close()
    assert [u for u in requests if not u.startswith("file:")] == []
    background = _luminance(colours["background"])
    body, tick = _luminance(colours["body"]), _luminance(colours["tick"])
    if scheme == "dark":
        assert background < 0.05 and body > 0.6 and tick > 0.6, colours
    else:
        assert background > 0.9 and body < 0.1 and tick < 0.3, colours
