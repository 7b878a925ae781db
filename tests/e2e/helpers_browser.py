"""What the browser tests share: the app served by Streamlit on a free port against a
small demo database, Debian's headless Chromium driven by Playwright, numbered
screenshots, and the steps every walk takes (sign in, open a page from the menu, wait
until Streamlit has finished its run).

The fixtures :func:`sqlite_app` and :func:`browser` are used by importing them into a
test module (``from tests.e2e.helpers_browser import browser, sqlite_app``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics import access
from analytics.core import database
from tests.helpers import copy_small_demo

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

__all__ = [
    "CHROMIUM", "DOCS", "DOC_PAGES", "OUT", "PASSWORD", "ROOT", "WAIT", "Shots", "add_users",
    "browser", "free_port", "open_page", "serve", "settle", "sign_in", "sqlite_app",
]  # fmt: skip

expect.set_options(timeout=30_000)  # a loaded 2-core machine: a page can take seconds

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LOOKOUT_CHROMIUM", "/usr/bin/chromium")
OUT = ROOT / "test-output" / "e2e"
DOCS = ROOT / "docs" / "screenshots"
PASSWORD = "a long test password"
#: The shots the README shows, one per page.
DOC_PAGES = ("overview", "trends", "anomalies", "emerging", "cases", "reports", "admin")
WAIT = 90_000  # ms: a cold page computes its numbers once


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, folder: Path) -> Iterator[str]:
    """Start the app on a free port against ``url``; yield its address; stop it."""
    port = free_port()
    env = {**os.environ, "LOOKOUT_DATABASE_URL": url, "LOOKOUT_SNAPSHOT_DIR": str(folder / "snap")}
    log = (folder / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the app did not start; see {folder / 'streamlit.log'}")
        time.sleep(0.3)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def add_users(url: str) -> None:
    """One user per role, all with :data:`PASSWORD`: ann (associate), pat (product), ada
    (admin) and lee (leadership)."""
    engine = database.make_engine(url)
    access.add_user(engine, "ann", "associate", PASSWORD)
    access.add_user(engine, "pat", "product", PASSWORD)
    access.add_user(engine, "ada", "admin", PASSWORD)
    access.add_user(engine, "lee", "leadership", PASSWORD)
    engine.dispose()


@pytest.fixture(scope="module")
def sqlite_app(small_demo_file, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A copy of the small demo with :func:`add_users`' users, served: (address, URL)."""
    folder = tmp_path_factory.mktemp("e2e")
    url = copy_small_demo(small_demo_file, folder)  # a copy: the app signs users in
    add_users(url)
    for base in serve(url, folder):
        yield base, url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (:data:`CHROMIUM`); skipped without it, unless ``CI`` is set."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required for the browser tests: {CHROMIUM} is missing")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        found = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield found
        found.close()


class Shots:
    """Numbered screenshots of one test's pages, under ``test-output/e2e/<name>/``.

    By default each shot is of the whole page at ``width`` px; with ``full=False`` it is
    the ``width`` x ``height`` viewport as a person sees it.
    """

    def __init__(
        self, name: str, *, width: int = 1280, height: int = 800, full: bool = True
    ) -> None:
        self.folder = OUT / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.n = 0
        self.width, self.height, self.full = width, height, full

    def take(self, page: Page, what: str) -> None:
        """Screenshot the page. A whole-page shot grows the viewport to the main area's
        height for the shot (Streamlit scrolls inside it, so a full-page shot alone would
        cut it). With ``LOOKOUT_DOCS_SCREENSHOTS=1`` a page of :data:`DOC_PAGES` is also
        written to ``docs/screenshots/``."""
        self.n += 1
        if self.full:
            height = page.evaluate(
                "() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 800"
            )
            page.set_viewport_size(
                {"width": self.width, "height": max(self.height, min(int(height), 6000))}
            )
            page.wait_for_timeout(400)
        page.screenshot(path=str(self.folder / f"{self.n:02d}-{what}.png"))
        if os.environ.get("LOOKOUT_DOCS_SCREENSHOTS") and what in DOC_PAGES:
            DOCS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS / f"{what}.png"))
        if self.full:
            page.set_viewport_size({"width": self.width, "height": self.height})


def settle(page: Page) -> None:
    """Wait until Streamlit has finished the run (no spinner, no running status)."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stSpinner']\") && "
        "!document.querySelector(\"[data-testid='stStatusWidget'] button\")",
        timeout=WAIT,
    )
    page.wait_for_timeout(300)


def sign_in(page: Page, base: str, name: str) -> None:
    """Open the app at ``base`` and sign in as ``name`` (with :data:`PASSWORD`)."""
    page.goto(base)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    settle(page)


def open_page(page: Page, title: str) -> None:
    """Open the page titled ``title`` from the menu and wait for its run."""
    page.locator("[class*='st-key-lookout_menu']").get_by_text(title, exact=True).click()
    settle(page)
