"""A freshly started server's first request, in Chromium: the page asked for is laid out
like every other (wide), although Streamlit runs it from ``pages/`` without ``app.py``.

Without :func:`ui.nav.configure_page` in every page, the first page of a new server came
out in the narrow centred layout (736 px of 1440); the call is now each page's first
statement. Signing in reloads the page (the cookie): the test measures the page it
reloads to. Measuring during the reload read the new load's empty, centred start
(736 px before any of the page is drawn), which is how this test failed in CI and in a
local run under load; moving the call first did not fix that, waiting for the reload did.
The later page is measured once its heading is drawn for the same reason (a loaded full
run measured its load's empty start, 736 px).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import copy_small_demo

from . import helpers_browser as shared
from .helpers_browser import PASSWORD, WAIT, settle

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, expect  # noqa: E402

# A second browser group, so that the two test workers share the browser tests.
pytestmark = [pytest.mark.xdist_group("e2e-look"), pytest.mark.slow]
browser = shared.browser


@pytest.fixture(scope="module")
def fresh_app(small_demo_file, tmp_path_factory) -> Iterator[str]:
    """A new server on a copy of the small demo, not yet asked for anything."""
    folder = tmp_path_factory.mktemp("first-request")
    url = copy_small_demo(small_demo_file, folder)
    shared.add_users(url)
    yield from shared.serve(url, folder)


def _main_width(page) -> float:
    return float(
        page.evaluate(
            "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
            ".getBoundingClientRect().width"
        )
    )


def test_the_first_page_a_new_server_serves_is_wide(fresh_app, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.goto(f"{fresh_app}/trends")  # the server's very first page, by its address
    # signed out: the sign-in form alone, not the page's title above it
    expect(page.get_by_label("Name", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Weekly trends")).to_have_count(0)
    page.get_by_label("Name", exact=True).fill("lee")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    # Signing in sets the cookie and reloads the page: measure the page it reloads to.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    # The width the moment the page's heading is drawn (polled on every frame): the
    # layout must already be wide then, not become wide later in the run.
    drawn = page.wait_for_function(
        """() => {
            const heading = [...document.querySelectorAll('h1')]
                .find(h => h.textContent.includes('Weekly trends'));
            const main = document.querySelector('[data-testid="stMainBlockContainer"]');
            return heading && main ? main.getBoundingClientRect().width : null;
        }""",
        polling="raf",
    ).json_value()
    expect(page.get_by_role("heading", name="Weekly trends")).to_be_visible()
    expect(page.get_by_text("Signed in as lee")).to_be_visible()
    settle(page)
    first = _main_width(page)
    page.goto(f"{fresh_app}/anomalies")  # a later page, after app.py has run
    # A new load starts centred until its run begins (nothing of the page drawn yet):
    # measure once its heading is there, as for the first page.
    expect(page.get_by_role("heading", name="Anomalies", exact=True)).to_be_visible()
    settle(page)
    later = _main_width(page)
    context.close()
    # The wide layout at 1440 px (the centred one is at most 736 px); the sidebar may
    # not be drawn yet when the heading is, so the first width can be the whole window.
    assert min(drawn, first, later) > 1000
    assert first == later
