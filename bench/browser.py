"""The pages as a person meets them: first render in a new browser session, in Chromium.

``python -m bench browser`` starts the app (``streamlit run app.py``) on a free port
against a database (default the medium demo), drives Debian's headless Chromium through
Playwright and measures:

- **a cold server's first Weekly trends**: a fresh server process, a leadership user
  signs in on a deep link to the page; the time from the *Sign in* click until the page
  has rendered (and, apart, the time to the sign-in form);
- **every page, every role that may open it**: the first visit (the server's cache
  still cold for it), then the first render in a NEW browser context (no HTTP cache,
  a new Streamlit session, signed in by the cookie of an earlier sign-in), ``--repeat``
  times (median and max);
- **the Reports page's audience switch** (leadership to product teams): the first
  switch on the server, and a switch once both briefs are computed;
- **the HTML brief** of each audience: its size, and that Chromium renders every chart
  from the file with the network cut (every request other than ``file:``, ``data:``
  and ``blob:`` is recorded and refused);
- **the floor**: ``bench/floor_app.py``, a bare Streamlit page of 0, 1, 2 and 8 plotly
  charts (nothing of Lookout's), in new contexts and new tabs: what any chart page
  costs before anything of ours is drawn.

"Rendered" means: Streamlit's script state is ``notRunning``, no spinner, no skeleton
(an element whose code is still loading), the page's heading is there, every plotly
chart has drawn its SVG and every table its canvas (those shown: a collapsed expander's
are drawn only when it opens), and
the number of elements has stayed the same for three polls (the time is that of the
first of them). A new tab (same browser, its cache warm) is measured too. Results go to
``data/bench/browser.json`` and a table per part.

The benchmark adds four users (``bench-<role>``) to the database when they are missing,
and signing in writes the audit log: point it at a demo database, not a production one.
It is a benchmark, not a test: nothing here is a pass/fail on time (the targets are
printed beside the numbers).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Table, machine, seconds

__all__ = ["PageSpec", "main", "pages", "run"]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LOOKOUT_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "bench: a long password"  # noqa: S105 - a benchmark user on a demo database
ROLES = ("leadership", "associate", "product", "admin")
BRIEF_ROLES = ("leadership", "product")
TIMEOUT_S = 180.0
#: The targets of issue 18 item 10 (seconds, bytes), printed beside the numbers.
TARGET_PAGE_S = 2.0
TARGET_SWITCH_S = 2.0
TARGET_COLD_S = 5.0
TARGET_BRIEF_BYTES = 1_500_000

#: True when the page has rendered; else false. Its value is a count of elements, so
#: the caller can wait for it to stay the same.
_RENDERED = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return 0;
  if (document.querySelector("[data-testid='stSpinner'], [data-testid='stSkeleton']")) return 0;
  if (document.querySelector("[data-testid='stStatusWidget'] button")) return 0;
  const main = document.querySelector("[data-testid='stMain']");
  if (!main || !main.querySelector('h1')) return 0;
  for (const c of main.querySelectorAll("[data-testid='stPlotlyChart']")) {
    if (c.checkVisibility() && !c.querySelector('.main-svg')) return 0;
  }
  for (const t of main.querySelectorAll("[data-testid='stDataFrame']")) {
    if (t.checkVisibility() && !t.querySelector('canvas')) return 0;
  }
  return main.querySelectorAll('*').length;
}"""
_SIGN_IN_FORM = "() => !!document.querySelector(\"input[type='password']\")"


@dataclass(frozen=True)
class PageSpec:
    """A page of the menu: its title, its path and the roles that may open it."""

    title: str
    path: str
    roles: tuple[str, ...]


def pages() -> list[PageSpec]:
    """Every page of the app's menu (``ui.nav.PAGES``) and the roles that may open it.

    >>> [p.path for p in pages()][:2]
    ['/', '/trends']
    >>> next(p.roles for p in pages() if p.path == "/trends")
    ('leadership', 'associate', 'admin')
    """
    from analytics import access
    from ui import nav

    found = []
    for i, (file, title, _icon, capability) in enumerate(nav.PAGES):
        path = "/" if i == 0 else "/" + Path(file).stem
        roles = tuple(r for r in ROLES if access.allowed(r, capability))
        found.append(PageSpec(title, path, roles))
    return found


def _user(role: str) -> str:
    return f"bench-{role}"


def _ensure_users(url: str) -> None:
    """The benchmark's users, one per role (added once; the password is fixed)."""
    from analytics import access
    from analytics.core import database

    engine = database.make_engine(url)
    try:
        for role in ROLES:
            if access.known_role(engine, _user(role)) is None:
                access.add_user(engine, _user(role), role, PASSWORD)
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _served(
    url: str, log: Path, port: int | None = None, script: str = "app.py"
) -> Iterator[tuple[str, float]]:
    """The app (or ``script``) served against ``url``; yields its address and the
    seconds to healthy."""
    port = port or _free_port()
    env = {**os.environ, "LOOKOUT_DATABASE_URL": url}
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                        if r.read() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.perf_counter() - start > 90:
                    raise RuntimeError(f"the app did not start; see {log}")
                time.sleep(0.1)
            yield base, time.perf_counter() - start
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _rendered(page: Any, start: float, *, polls: int = 3, every: float = 0.05) -> float:
    """Seconds from ``start`` until the page has rendered (see the module's docstring)."""
    streak: list[tuple[float, int]] = []
    while True:
        now = time.perf_counter()
        if now - start > TIMEOUT_S:
            raise TimeoutError(f"{page.url} did not render in {TIMEOUT_S:.0f} s")
        try:
            count = int(page.evaluate(_RENDERED) or 0)
        except Exception:  # noqa: BLE001 - a navigation in progress: poll again
            count = 0
        if count and page.evaluate(_SIGN_IN_FORM) and "Sign in" in page.inner_text("body"):
            raise RuntimeError(f"{page.url} asks to sign in: the cookie was not accepted")
        if count and (not streak or streak[-1][1] == count):
            streak.append((now, count))
        else:
            streak = [(now, count)] if count else []
        if len(streak) >= polls:
            return streak[0][0] - start
        time.sleep(every)


@dataclass
class _Session:
    """The browser and the cookies of each role's sign-in on one server."""

    browser: Any
    base: str
    states: dict[str, Any] = field(default_factory=dict)
    tabs: dict[str, Any] = field(default_factory=dict)

    def context(self, role: str | None = None) -> Any:
        state = self.states.get(role) if role else None
        return self.browser.new_context(
            viewport={"width": 1440, "height": 900}, storage_state=state, accept_downloads=True
        )

    def sign_in(self, role: str, path: str = "/") -> tuple[float, float]:
        """Sign ``role`` in on ``path``; seconds to the form, and from the click to the
        page rendered. Keeps the cookie for :meth:`context`."""
        ctx = self.context()
        page = ctx.new_page()
        start = time.perf_counter()
        page.goto(self.base + path, wait_until="commit")
        page.get_by_label("Password", exact=True).wait_for(timeout=TIMEOUT_S * 1000)
        form = time.perf_counter() - start
        page.get_by_label("Name", exact=True).fill(_user(role))
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        clicked = time.perf_counter()
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text(f"Signed in as {_user(role)}").wait_for(timeout=TIMEOUT_S * 1000)
        after = _rendered(page, clicked)
        self.states[role] = ctx.storage_state()
        ctx.close()
        return form, after

    def tab(self, role: str, path: str) -> float:
        """Seconds to the first render of ``path`` in a new tab of the role's browser
        (its HTTP cache warm from earlier tabs): a new Streamlit session all the same."""
        if role not in self.tabs:
            self.tabs[role] = self.context(role)
        page = self.tabs[role].new_page()
        try:
            start = time.perf_counter()
            page.goto(self.base + path, wait_until="commit")
            return _rendered(page, start)
        finally:
            page.close()

    def visit(self, role: str, path: str) -> float | None:
        """Seconds to the first render of ``path`` in a new browser context (None when it
        did not render in :data:`TIMEOUT_S`)."""
        ctx = self.context(role)
        try:
            page = ctx.new_page()
            start = time.perf_counter()
            page.goto(self.base + path, wait_until="commit")
            return _rendered(page, start)
        except TimeoutError:
            return None
        finally:
            ctx.close()


def _switch(session: _Session, *, times: int) -> list[float]:
    """Leadership on Reports switches the audience to product teams and back, ``times``
    times in new contexts; the seconds of each switch to product (first is first)."""
    found = []
    for _ in range(times):
        ctx = session.context("leadership")
        try:
            page = ctx.new_page()
            page.goto(session.base + "/reports", wait_until="commit")
            _rendered(page, time.perf_counter())
            start = time.perf_counter()
            page.get_by_text("Product teams", exact=True).first.click()
            page.wait_for_url("**reports.audience=product**", timeout=TIMEOUT_S * 1000)
            found.append(_rendered(page, start))
        finally:
            ctx.close()
    return found


_EXTERNAL = ("file:", "data:", "blob:", "about:")


def _brief(session: _Session, role: str, folder: Path) -> dict[str, Any]:
    """Download the HTML brief of ``role``'s default audience; its size, whether it
    renders its charts offline, and what it tried to fetch."""
    ctx = session.context(role)
    try:
        page = ctx.new_page()
        page.goto(session.base + "/reports", wait_until="commit")
        _rendered(page, time.perf_counter())
        with page.expect_download(timeout=TIMEOUT_S * 1000) as got:
            page.get_by_role("button", name="Download HTML").click()
        target = folder / f"brief-{role}.html"
        got.value.save_as(target)
    finally:
        ctx.close()
    requested: list[str] = []

    def cut(route: Any) -> None:
        if route.request.url.startswith(_EXTERNAL):
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort()

    ctx = session.browser.new_context(viewport={"width": 1440, "height": 900}, offline=True)
    try:
        ctx.route("**/*", cut)
        page = ctx.new_page()
        start = time.perf_counter()
        page.goto(target.as_uri())
        wanted = page.evaluate("() => document.querySelectorAll('.js-plotly-plot, .chart').length")
        page.wait_for_function(
            "() => { const c = document.querySelectorAll('.js-plotly-plot');"
            " return c.length > 0 && [...c].every(e => e.querySelector('.main-svg')); }",
            timeout=60_000,
        )
        drawn_s = time.perf_counter() - start
        charts = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
    finally:
        ctx.close()
    return {
        "role": role,
        "bytes": target.stat().st_size,
        "charts": int(charts),
        "chart_elements": int(wanted),
        "external_requests": requested,
        "drawn_s": drawn_s,
    }


#: How many charts the bare page of :func:`_floor` draws, in turn.
FLOOR_CHARTS = (0, 1, 2, 8)


def _floor(browser: Any, url: str, folder: Path, *, repeat: int) -> list[dict[str, Any]]:
    """The floor under a chart page: ``bench/floor_app.py`` (a bare page of n plotly
    charts, nothing of Lookout's) in new browser contexts and new tabs, for each n of
    :data:`FLOOR_CHARTS`."""
    found = []
    with _served(url, folder / "floor.log", script="bench/floor_app.py") as (base, _):
        session = _Session(browser, base)
        for charts in FLOOR_CHARTS:
            path = f"/?n={charts}"
            session.visit("", path)  # the server's first run of the script
            again = [session.visit("", path) for _ in range(repeat)]
            session.tab("", path)
            tab = [session.tab("", path) for _ in range(repeat)]
            _progress(f"floor, {charts} charts: new sessions {again}, new tabs {tab}")
            found.append({"charts": charts, "new_session_s": again, "new_tab_s": tab})
    return found


def _launch(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )


def measure(
    url: str, *, repeat: int = 2, only: tuple[str, ...] = (), port: int | None = None
) -> dict[str, Any]:
    """Every measurement of the module's docstring, as a JSON-ready report."""
    from playwright.sync_api import sync_playwright

    _ensure_users(url)
    specs = [p for p in pages() if not only or p.path.strip("/") in only or p.title in only]
    report: dict[str, Any] = {
        "database": url,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "commit": _commit(),
        "repeat": repeat,
    }
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, sync_playwright() as p:
        folder = Path(tmp)
        browser = _launch(p)
        try:
            with _served(url, folder / "streamlit.log", port) as (base, healthy):
                session = _Session(browser, base)
                form, cold = session.sign_in("leadership", "/trends")
                report["cold"] = {"healthy_s": healthy, "form_s": form, "weekly_trends_s": cold}
                _progress(f"cold server: healthy {healthy:.1f} s, form {form:.1f} s, "
                          f"first Weekly trends {cold:.1f} s")  # fmt: skip
                for role in ROLES[1:]:
                    session.sign_in(role)
                report["pages"] = []
                for spec in specs:
                    for role in spec.roles:
                        first = session.visit(role, spec.path)
                        again = [session.visit(role, spec.path) for _ in range(repeat)]
                        session.tab(role, spec.path)  # the tab's browser cache, filled
                        tab = [session.tab(role, spec.path) for _ in range(repeat)]
                        _progress(f"{spec.title} ({role}): first {first}, new sessions "
                                  f"{again}, new tabs {tab}")  # fmt: skip
                        report["pages"].append(
                            {"page": spec.title, "path": spec.path, "role": role,
                             "first_s": first, "new_session_s": again, "new_tab_s": tab}
                        )  # fmt: skip
                if not only or "reports" in only:
                    report["switch_s"] = _switch(session, times=1 + repeat)
                    _progress(f"audience switch: {report['switch_s']}")
                    report["briefs"] = [_brief(session, r, folder) for r in BRIEF_ROLES]
            if not only or "floor" in only:
                report["floor"] = _floor(browser, url, folder, repeat=max(repeat, 3))
        finally:
            browser.close()
    report["load_after"] = os.getloadavg()
    return report


def _progress(line: str) -> None:
    """A line on stderr as each measurement ends (a run takes minutes)."""
    print(line, file=sys.stderr, flush=True)


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return done.stdout.strip()


def tables(report: dict[str, Any]) -> list[Table]:
    """The report as Markdown tables."""
    before, after = report["load_before"][0], report["load_after"][0]
    load = f"load average {before:.1f} before, {after:.1f} after"
    pages_table = Table(
        f"Pages in the browser: first render in a new session (target ≤ {TARGET_PAGE_S:g} s)",
        ("page", "role", "first visit (server cache cold) s", "new browser median s",
         "new browser max s", "new tab median s"),
    )  # fmt: skip
    for row in report.get("pages", []):
        again = [t for t in row["new_session_s"] if t is not None]
        pages_table.add(
            row["page"], row["role"], seconds(row["first_s"], 1) if row["first_s"] else "timeout",
            seconds(statistics.median(again) if again else None, 1),
            seconds(max(again) if again else None, 1),
            seconds(statistics.median(row["new_tab_s"]) if row.get("new_tab_s") else None, 1),
        )  # fmt: skip
    pages_table.notes.append(
        f"Medium demo ({report['database']}), commit {report['commit']}, {load}; "
        f"{report['repeat']} new sessions per page after its first visit: a new browser "
        "context (nothing cached: Streamlit's and plotly's scripts load again) and a new tab "
        "of a browser that has shown the page before (its scripts cached)."
    )
    floor = Table(
        "The floor: a bare Streamlit page of n plotly charts (bench/floor_app.py)",
        ("plotly charts", "new browser median s", "new tab median s"),
    )
    for row in report.get("floor", []):
        again = [t for t in row["new_session_s"] if t is not None]
        floor.add(
            str(row["charts"]), seconds(statistics.median(again) if again else None, 1),
            seconds(statistics.median(row["new_tab_s"]), 1),
        )  # fmt: skip
    floor.notes.append(
        "Nothing of Lookout's but the chart template: the first render of a page that "
        "shows plotly charts through Streamlit cannot be faster than this on the machine."
    )
    other = Table("Cold server, audience switch, HTML brief", ("what", "measured", "target"))
    cold = report.get("cold")
    if cold:
        other.add("cold server: first Weekly trends (sign-in click to rendered)",
                  f"{cold['weekly_trends_s']:.1f} s", f"≤ {TARGET_COLD_S:g} s")  # fmt: skip
        other.add("cold server: healthy, then the sign-in form",
                  f"{cold['healthy_s']:.1f} s, {cold['form_s']:.1f} s", "")  # fmt: skip
    switch = report.get("switch_s") or []
    if switch:
        other.add("Reports audience switch, first on the server", f"{switch[0]:.1f} s",
                  f"≤ {TARGET_SWITCH_S:g} s")  # fmt: skip
        if len(switch) > 1:
            later = statistics.median(switch[1:])
            other.add("Reports audience switch, new session (median)", f"{later:.1f} s",
                      f"≤ {TARGET_SWITCH_S:g} s")  # fmt: skip
    for brief in report.get("briefs", []):
        outside = brief["external_requests"]
        other.add(
            f"HTML brief ({brief['role']}): size; charts drawn offline; outside requests",
            f"{brief['bytes'] / 1e6:.2f} MB; {brief['charts']} charts in "
            f"{brief['drawn_s']:.1f} s; {len(outside)}" + (f" ({outside[0]})" if outside else ""),
            f"≤ {TARGET_BRIEF_BYTES / 1e6:g} MB; 0",
        )
    return [pages_table, floor, other] if report.get("floor") else [pages_table, other]


def run(url: str, *, repeat: int = 2, out: str | Path = "data/bench") -> list[Table]:
    """Measure, write ``browser.json`` to ``out`` and return the tables."""
    report = measure(url, repeat=repeat)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    (target / "browser.json").write_text(json.dumps(report, indent=1) + "\n")
    return tables(report)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.browser [URL] [--repeat N] [--only trends,reports]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__)
    parser.add_argument("url", nargs="?", default="sqlite:///data/lookout.db")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", default="", help="page paths or titles, comma-separated")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the report here too")
    args = parser.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    report = measure(args.url, repeat=args.repeat, only=only, port=args.port)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    for table in tables(report):
        print(table.markdown(), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
