"""No table header or metric card is cut at 1280 px and 1440 px (issue 18 item 3), on
every page leadership and an associate may open, in headless Chromium.

How "cut" is measured, element by element:

- **Metric cards and HTML tables** (``st.metric``, ``st.table``, Markdown tables): an
  element whose text is wider than its box (``scrollWidth > clientWidth``) while its
  overflow is hidden or ends in an ellipsis is cut: the browser lays it out, so the DOM
  says so exactly.
- **Dataframes** (``st.dataframe``) draw on a canvas (Glide Data Grid): there is no text
  box to measure, and the accessible grid Glide keeps in the DOM has the header texts
  but no widths. The widths the grid draws with are the ``columns`` prop of the canvas'
  React component (each ``{title, width, icon}``), read from the canvas element; the
  header's text is measured in Chromium with ``CanvasRenderingContext2D.measureText`` in
  the grid's own header font (``theme.headerFontFull``, Streamlit's font loaded first).
  Glide draws a header's text from ``cellHorizontalPadding`` (after the icon, when the
  column has one) and clips it at the cell's edge, so a header is whole when padding +
  icon + text + padding fits the column's width.

Each page is opened by its URL after signing in, and measured once its run is over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
OUT = ROOT / "test-output" / "e2e" / "layout"
USERS = {"leadership": "lee", "associate": "ann"}
WIDTHS = (1280, 1440)

#: What is cut on the page: metric cards and HTML table cells whose text overflows a
#: box that hides it, and dataframe headers wider than their column.
_CUT = r"""
async () => {
  await document.fonts.ready;
  const cut = [];
  const hides = (el) => {
    const style = getComputedStyle(el);
    return ["hidden", "clip"].includes(style.overflowX) || style.textOverflow === "ellipsis";
  };
  const boxes = document.querySelectorAll(
    "[data-testid='stMetric'], [data-testid='stMetric'] *, " +
    "[data-testid='stTable'] th, [data-testid='stTable'] td, " +
    "[data-testid='stMarkdown'] th, [data-testid='stMarkdown'] td");
  for (const el of boxes) {
    if (!el.offsetParent || el.clientWidth === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1 && hides(el)) {
      const card = el.closest("[data-testid='stMetric']");
      const what = card ? "metric card" : "table cell";
      cut.push(`${what} "${el.innerText.trim().slice(0, 60)}": ` +
               `${el.scrollWidth} px of text in ${el.clientWidth} px`);
    }
  }
  const context = document.createElement("canvas").getContext("2d");
  for (const frame of document.querySelectorAll("[data-testid='stDataFrame']")) {
    const canvas = frame.querySelector("canvas[data-testid='data-grid-canvas']");
    if (!canvas || !frame.offsetParent) continue;
    const key = Object.keys(canvas).find((k) => k.startsWith("__reactFiber$"));
    let fiber = key ? canvas[key] : null;
    let grid = null;
    for (let depth = 0; fiber && depth < 50 && !grid; depth++, fiber = fiber.return) {
      const props = fiber.memoizedProps;
      if (props && Array.isArray(props.columns) && props.theme) grid = props;
    }
    if (!grid) { cut.push("a dataframe whose column widths could not be read"); continue; }
    const theme = grid.theme;
    context.font = theme.headerFontFull;
    const pad = theme.cellHorizontalPadding;
    for (const column of grid.columns) {
      const icon = column.icon ? theme.headerIconSize + pad : 0;
      const needed = Math.ceil(context.measureText(column.title).width) + 2 * pad + icon;
      if (needed > column.width + 1) {
        cut.push(`dataframe header "${column.title}": needs ${needed} px, has ${column.width} px`);
      }
    }
  }
  return cut;
}
"""


def _visits(role: str) -> Iterator[tuple[str, str]]:
    """Each page ``role`` may open: its title and its URL path."""
    for path, title, _icon, capability in nav.PAGES:
        if access.allowed(Role(role), capability):
            stem = Path(path).stem
            yield title, "" if path == nav.PAGES[0][0] else stem


def cut_on(page: Page) -> list[str]:
    """What is cut on the page as it is now (see the module's docstring)."""
    return list(page.evaluate(_CUT))


def test_leadership_and_associates_open_the_same_pages() -> None:
    """Why one walk per width is enough: the two roles' menus are the same pages (their
    data differ only in masking), so each width is walked by one of them."""
    assert list(_visits("associate")) == list(_visits("leadership"))


@pytest.mark.parametrize(("role", "width"), [("associate", WIDTHS[0]), ("leadership", WIDTHS[1])])
def test_no_header_or_card_is_cut(sqlite_app, browser: Browser, role: str, width: int) -> None:
    base, _url = sqlite_app
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    OUT.mkdir(parents=True, exist_ok=True)
    found: list[str] = []
    try:
        e2e._sign_in(page, base, USERS[role])
        for title, stem in _visits(role):
            page.goto(f"{base}/{stem}")
            e2e._settle(page)
            page.wait_for_timeout(1_000)  # the grids lay out after the run
            page.screenshot(path=str(OUT / f"{role}-{width}-{stem or 'overview'}.png"))
            found += [f"{title}: {what}" for what in cut_on(page)]
    finally:
        context.close()
    assert not found, f"cut at {width} px for {role}:\n" + "\n".join(found)


def test_the_check_sees_a_cut_header_and_card(sqlite_app, browser: Browser) -> None:
    """The measure finds what it looks for: a metric label squeezed into a narrow box,
    and a dataframe header longer than its column (the grid's own column given a long
    title, which the measure reads where it reads the widths)."""
    base, _url = sqlite_app
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        e2e._sign_in(page, base, USERS["associate"])
        page.goto(f"{base}/trends")
        e2e._settle(page)
        page.wait_for_selector("[data-testid='stMetric']")
        page.wait_for_selector("canvas[data-testid='data-grid-canvas']")
        page.wait_for_timeout(1_000)
        page.evaluate(
            r"""() => {
              document.querySelector("[data-testid='stMetric']").style.width = "40px";
              const canvas = document.querySelector("canvas[data-testid='data-grid-canvas']");
              const key = Object.keys(canvas).find((k) => k.startsWith("__reactFiber$"));
              let fiber = canvas[key];
              while (fiber && !(fiber.memoizedProps && fiber.memoizedProps.theme)) {
                fiber = fiber.return;
              }
              fiber.memoizedProps.columns[1].title = "A header far longer than its column";
            }"""
        )
        found = cut_on(page)
        assert any(c.startswith("metric card") for c in found), found
        assert any('"A header far longer than its column"' in c for c in found), found
    finally:
        context.close()
