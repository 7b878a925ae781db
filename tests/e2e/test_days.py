"""Each role's day, walked in headless Chromium on the served small demo (issue 18).

- **Leadership reads the week**: the Overview's "This week" story (every item with its
  link), one item followed to its evidence with the same number there, Weekly trends'
  KPI cards with their verdicts against last week and the 4-week mean, the week in
  progress drawn as a projection, and the leadership brief downloaded as one HTML file
  whose Headline opens with the Overview's first sentence and that fetches nothing.
- **An associate triages an incident down to an account**: Overview, the incident in
  Anomalies, what explains it in words, the cases underneath with their (masked)
  descriptions, the accounts to review, an account's link to the Case Explorer showing
  that account's cases, and one of them opened: its description wrapped and masked, one
  status.
- **Product opens its brief**: the Overview tells only what product may see (no count
  below the suppression threshold, no row counts), Reports has the product brief by
  product surface, and the Case Explorer and Anomalies refuse the role.

Every step is screenshot at 1440x900 (the viewport as a person sees it) under
``test-output/e2e/<test>/``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import polars as pl
import pytest
from sqlalchemy import or_, select

from analytics.access import privacy
from analytics.access.suppression import SUPPRESSION_THRESHOLD
from analytics.core import database, models

from . import helpers_browser as shared
from .helpers_browser import WAIT, Shots, open_page, settle, sign_in

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = [pytest.mark.xdist_group("e2e"), pytest.mark.slow]

#: The fixtures every browser test shares: a served small demo with users, and Chromium.
sqlite_app = shared.sqlite_app
browser = shared.browser
WIDTH, HEIGHT = 1440, 900
SEVERITIES = ("Act now", "Watch", "Note")
STATUSES = ("Open", "In review", "Resolved")
#: What must never show in a masked text: an email address, a phone number, a link.
PERSONAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ().-]{7,}\d|https?://|www\.")
#: A script, style sheet or font fetched from elsewhere: a src/href, an @import or a
#: CSS url() pointing at another host.
EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//"
    r"|@import|url\(\s*[\"']?\s*(?:https?:)?//",
    re.IGNORECASE,
)


@pytest.fixture
def day(browser: Browser, request) -> Iterator[tuple[Page, Shots]]:
    """A fresh browser at 1440x900 that keeps downloads, and its screenshots."""
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True
    )
    found = context.new_page()
    found.set_default_timeout(WAIT)
    shots = Shots(request.node.name, width=WIDTH, height=HEIGHT, full=False)
    yield found, shots
    shots.take(found, "last")  # where the test ended, failed or not
    context.close()


def ready(page: Page) -> None:
    """Wait for Streamlit's run to end and for nothing on the page to be a placeholder
    (a skeleton) or stale (greyed out while a rerun replaces it)."""
    settle(page)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stSkeleton'], [data-stale='true']\")",
        timeout=WAIT,
    )
    settle(page)


@dataclass(frozen=True)
class Item:
    """A story item as the Overview shows it."""

    severity: str
    sentence: str
    link: str
    href: str


def story(page: Page) -> list[Item]:
    """The Overview's story items: severity, sentence, link text and address."""
    found = []
    for box in page.locator("[class*='st-key-story_item_']").all():
        said = box.locator("[data-testid='stMarkdownContainer']").first.inner_text().strip()
        severity, sentence = said.split(" · ", 1)  # "<icon> Act now · <sentence>"
        links = box.locator("a[data-testid='stPageLink-NavLink']")
        assert links.count() == 1, said
        link = links.first
        label = link.inner_text().replace("arrow_forward", "").strip()
        said_severity = next((s for s in SEVERITIES if severity.endswith(s)), severity)
        found.append(Item(said_severity, sentence.strip(), label, link.get_attribute("href") or ""))
    return found


def follow(page: Page, item: Item) -> None:
    """Click the item's link on the Overview and wait for its page."""
    box = page.locator("[class*='st-key-story_item_']").filter(has_text=item.sentence[:60])
    box.locator("a[data-testid='stPageLink-NavLink']").click()
    page.wait_for_url(f"**/{urlparse(item.href).path.lstrip('/')}?**")
    ready(page)


def cards(page: Page) -> dict[str, dict[str, str]]:
    """Weekly trends' KPI cards: label -> its value, change on last week and verdict."""
    found = page.evaluate(
        """() => [...document.querySelectorAll("[data-testid='stMetric']")].map((m) => {
          let box = m.parentElement;
          while (box && !box.querySelector("[data-testid='stCaptionContainer']")) {
            box = box.parentElement;
          }
          const text = (sel) => (m.querySelector(sel)?.innerText ?? "").trim();
          return {
            label: text("[data-testid='stMetricLabel']"),
            value: text("[data-testid='stMetricValue']"),
            delta: text("[data-testid='stMetricDelta']"),
            verdict: (box?.querySelector("[data-testid='stCaptionContainer']")?.innerText ?? "")
              .trim(),
          };
        })"""
    )
    return {c["label"]: c for c in found}


def pick_week(page: Page, starts: str) -> None:
    """Choose the sidebar's week whose option starts with ``starts`` (``2026-W18``)."""
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    box.click()
    page.get_by_role("option").filter(has_text=re.compile(f"^{re.escape(starts)}")).click()
    chosen = page.get_by_role("combobox", name="Week")
    expect(chosen).to_have_value(re.compile(f"^{re.escape(starts)}"))  # (not in the URL)
    ready(page)


def headline(brief: str) -> list[str]:
    """The sentences of the HTML brief's Headline, as text."""
    section = re.search(r'<section id="headline">(.*?)</section>', brief, re.DOTALL)
    assert section, "the brief has no Headline"
    items = re.findall(r"<li>(.*?)</li>", section.group(1), re.DOTALL)
    return [html.unescape(re.sub(r"<[^>]+>", "", i)).strip() for i in items]


def test_leadership_reads_the_week(sqlite_app, day) -> None:
    base, _ = sqlite_app
    pg, shots = day
    sign_in(pg, base, "lee")
    ready(pg)
    title = pg.get_by_role("heading", level=1).first
    expect(title).to_contain_text("This week · ")
    items = story(pg)
    shots.take(pg, "overview")
    assert items, "the Overview tells no story"
    for item in items:
        assert item.severity in SEVERITIES, item
        assert re.search(r"\d", item.sentence), item  # a sentence with its numbers
        assert item.link and urlparse(item.href).path.strip("/"), item  # and its evidence
        assert "None" not in item.sentence and "_" not in item.sentence, item
    first = items[0].sentence

    # A mover's cases: the count the sentence gives is the Case Explorer's count.
    mover = next(i for i in items if i.link == "Its cases in Case Explorer")
    told = re.search(r": ([\d,]+) new cases", mover.sentence)
    assert told, mover
    follow(pg, mover)
    expect(pg.get_by_role("heading", name="Case Explorer")).to_be_visible()
    expect(pg.get_by_text(f"{told.group(1)} cases · page 1")).to_be_visible()
    shots.take(pg, "story-mover-cases")

    # The SLA item's Weekly trends: the same breach rate on its card, and every card
    # judged against last week and the 4-week mean (or projected while filling in).
    open_page(pg, "Overview")
    sla = next((i for i in items if i.sentence.startswith("SLA breach rate: ")), None)
    if sla is not None:
        follow(pg, sla)
    else:
        open_page(pg, "Weekly trends")
    expect(pg.get_by_role("heading", name="Weekly trends")).to_be_visible()
    shown = cards(pg)
    shots.take(pg, "trends")
    assert len(shown) >= 8, shown
    if sla is not None:
        rate = re.search(r"SLA breach rate: ([\d.]+%)", sla.sentence)
        assert rate and shown["SLA breach rate"]["value"] == rate.group(1), shown
    judged = [c for c in shown.values() if not c["verdict"].startswith("So far")]
    assert judged, shown
    for card in judged:
        assert re.match(r"(Significant|Not significant) vs ", card["verdict"]), card
        assert "last week" in card["verdict"] and "4-week mean (" in card["verdict"], card
        assert card["value"] and card["value"] != "None", card
    assert any(c["verdict"].startswith("Significant") for c in judged), shown
    week = parse_qs(urlparse(pg.url).query).get("week", [""])[0]

    # The week in progress (the small demo ends on a Friday): values so far with their
    # projection, untested, and the charts draw it as "projected".
    pick_week(pg, "2026-W18")
    expect(pg.get_by_text("2026-W18 is still in progress")).to_be_visible()
    filling = cards(pg)
    assert any(c["verdict"].startswith("So far. Projected ") for c in filling.values()), filling
    assert not any(c["delta"] for c in filling.values() if c["verdict"].startswith("So far"))
    charts = pg.locator(".js-plotly-plot")
    expect(charts.first).to_be_visible()
    drawn = pg.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map((c) => c.textContent)"
    )
    assert any("projected" in d for d in drawn), drawn
    shots.take(pg, "trends-week-in-progress")
    charts.first.evaluate("(c) => c.scrollIntoView({block: 'center'})")
    shots.take(pg, "trends-projection")

    # The leadership brief of the Overview's week, downloaded as one HTML file.
    pick_week(pg, week or "2026-W17")
    open_page(pg, "Reports")
    expect(pg.get_by_role("heading", name="Reports")).to_be_visible()
    expect(pg.get_by_text("(leadership)").first).to_be_visible()
    shots.take(pg, "reports")
    with pg.expect_download() as got:
        pg.get_by_role("button", name="Download HTML").click()
    path = Path(got.value.path())
    size = path.stat().st_size
    assert 50_000 < size <= 1_500_000, size  # plotly.js inside, gzipped; at most 1.5 MB
    brief = path.read_text(encoding="utf-8")
    assert brief.lstrip().lower().startswith("<!doctype html")
    said = headline(brief)
    assert said and said[0] == first, (said[:2], first)
    assert not EXTERNAL.search(brief), EXTERNAL.search(brief)
    assert "fonts.googleapis" not in brief and "cdn.plot.ly" not in brief


def _cell_texts(table) -> list[list[str]]:  # noqa: ANN001 - a Playwright locator
    """An HTML table's body cells, row by row."""
    return table.evaluate(
        "(t) => [...t.querySelectorAll('tbody tr')].map((r) => "
        "[...r.querySelectorAll('td, th')].map((c) => c.innerText.trim()))"
    )


def _headers(table) -> list[str]:  # noqa: ANN001 - a Playwright locator
    return table.evaluate(
        "(t) => [...t.querySelectorAll('thead th')].map((c) => c.innerText.trim())"
    )


def _click_row(page: Page, grid, *, index: int = 0, header: int = 35, row: int = 35) -> None:  # noqa: ANN001
    """Tick row ``index`` of a Glide dataframe (its selection box, left of the row)."""
    grid.evaluate("(g) => g.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + header + index * row + row / 2)


def test_an_associate_triages_an_incident_down_to_an_account(sqlite_app, day) -> None:
    base, url = sqlite_app
    pg, shots = day
    sign_in(pg, base, "ann")
    ready(pg)
    items = story(pg)
    shots.take(pg, "overview")

    # Overview -> the incident in Anomalies.
    told = next((i for i in items if i.link == "The incident in Anomalies"), None)
    if told is not None:
        follow(pg, told)
    else:
        open_page(pg, "Anomalies")
    expect(pg.get_by_role("heading", name="Anomalies")).to_be_visible()
    focus = re.search(
        r"the focus week \(([^)]+)\)", pg.locator("[data-testid='stMain']").inner_text()
    )
    assert focus, "the page does not say which week is the focus"
    grid = pg.locator("[data-testid='stDataFrame']").first
    expect(grid).to_be_visible()
    if told is None:  # pick the first current incident
        _click_row(pg, grid)
        pg.wait_for_url("**anomalies.incident=**")
        ready(pg)
    chosen = pg.get_by_role("heading", level=3).first
    expect(chosen).to_contain_text(" · ")
    heading = chosen.inner_text().strip()
    assert not re.search(r"[=|_]", heading), heading  # a slice in words, not its key
    days = heading.rsplit(" · ", 1)[1]
    assert not re.fullmatch(r"(\d+ \w+)–\1", days), days  # never "16 Nov–16 Nov"
    if told is not None:  # the page shows the incident the story told
        where = told.sentence.removeprefix("New incident: ").split(" cases ")[0]
        assert heading.startswith(where), (heading, told.sentence)
    shots.take(pg, "anomalies-incident")

    # What explains it, in words.
    main = pg.locator("[data-testid='stMain']")
    expect(main.get_by_text("What explains it", exact=True)).to_be_visible()
    why = (
        main.locator("[data-testid='stColumn']")
        .filter(has=pg.get_by_text("What explains it", exact=True))
        .last.locator("[data-testid='stCaptionContainer']")
        .first.inner_text()
    )
    assert "stand out" in why or "no single value stands out" in why.lower(), why
    assert not re.search(r"[=|_]|None|explain 100%", why), why
    pg.get_by_text("What explains it", exact=True).scroll_into_view_if_needed()
    shots.take(pg, "anomalies-explained")

    # The cases underneath, each with its description, masked.
    expect(main.get_by_text("Cases underneath", exact=True)).to_be_visible()
    tables = main.locator("[data-testid='stTable']")
    underneath = tables.first
    assert "Description (masked)" in _headers(underneath)
    rows = _cell_texts(underneath)
    assert rows, "no case underneath"
    column = _headers(underneath).index("Description (masked)")
    for row in rows:
        assert len(row[column]) > 20, row  # a real description, not "–"
        assert not PERSONAL.search(row[column]), row
        assert "None" not in row and "_" not in " ".join(row), row
    underneath.scroll_into_view_if_needed()
    shots.take(pg, "anomalies-cases-underneath")

    # The accounts to review, each with its reasons and a link to the Case Explorer.
    expect(pg.get_by_role("heading", name="Accounts to review")).to_be_visible()
    accounts = tables.last
    assert _headers(accounts)[:1] == ["Account"] and "Why" in _headers(accounts)
    reviewed = _cell_texts(accounts)
    assert reviewed and all(r[-1] and r[-1] != "–" for r in reviewed), reviewed
    link = accounts.locator("a").first
    href = link.get_attribute("href") or ""
    account = int(parse_qs(urlparse(href).query)["cases.account"][0])
    assert link.inner_text().strip() == str(account)
    accounts.scroll_into_view_if_needed()
    shots.take(pg, "anomalies-accounts")

    # The account's link: the Case Explorer on that account's cases.
    if link.get_attribute("target") == "_blank":
        with pg.context.expect_page() as opened:
            link.click()
        pg = opened.value
        pg.set_default_timeout(WAIT)
        pg.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    else:
        link.click()
    pg.wait_for_url(f"**cases.account={account}**")
    ready(pg)
    assert urlparse(pg.url).path == urlparse(urljoin(base + "/", href)).path
    expect(pg.get_by_role("heading", name="Case Explorer")).to_be_visible()
    engine = database.make_engine(url)
    with engine.connect() as conn:
        theirs = conn.execute(
            select(models.Case.id, models.Case.description)
            .where(
                or_(
                    models.Case.subject_account_id == account,
                    models.Case.reporter_account_id == account,
                )
            )
            .order_by(models.Case.opened_at.desc(), models.Case.id.desc())  # as listed
        ).all()
    engine.dispose()
    assert theirs, account
    expect(pg.get_by_text(f"Cases about account {account} or reported by it")).to_be_visible()
    expect(pg.get_by_text(f"{len(theirs):,} cases · page 1")).to_be_visible()
    shots.take(pg, "cases-of-the-account")

    # One of its cases opened beside the list.
    split = pg.locator("[class*='st-key-cases_split']")
    listed = split.locator("[data-testid='stDataFrame']").first
    expect(listed).to_be_visible()
    # The first of the visible rows whose text had personal data to mask, if any.
    scrubbed = privacy.scrub(pl.Series([d or "" for _, d in theirs]))
    had = [i for i, (_, d) in enumerate(theirs[:5]) if (d or "") != scrubbed[i]]
    index = had[0] if had else 0
    _click_row(pg, listed, index=index, row=80)
    pg.wait_for_url("**cases.case=**")
    ready(pg)
    case_id = int(parse_qs(urlparse(pg.url).query)["cases.case"][0])
    assert case_id == theirs[index][0]
    title = split.get_by_role("heading", name=re.compile(rf"^Case {case_id} · "))
    expect(title).to_be_visible()
    status = title.inner_text().strip().rsplit(" · ", 1)[1]
    assert status in STATUSES, status
    facts = (
        split.locator("[data-testid='stMarkdownContainer']")
        .filter(has_text=re.compile(r"^Status:"))
        .first.inner_text()
    )
    assert f"Status: {status}" in facts, facts
    assert not any(f"Status: {s}" in facts for s in STATUSES if s != status), facts
    text = split.locator("[data-testid='stText']").first
    shown = text.inner_text()
    raw = theirs[index][1] or ""
    assert " ".join(shown.split()) == " ".join(scrubbed[index].split())
    if had:  # what was masked does not show
        assert " ".join(shown.split()) != " ".join(raw.split()) and "[" in shown, shown
    assert not PERSONAL.search(shown), shown
    assert text.evaluate("(t) => t.scrollWidth <= t.clientWidth + 1"), "the description is cut"
    assert text.evaluate("(t) => getComputedStyle(t).whiteSpace") in {"pre-wrap", "normal"}
    shots.take(pg, "case-opened")


def test_product_opens_its_brief(sqlite_app, day) -> None:
    base, _ = sqlite_app
    pg, shots = day
    sign_in(pg, base, "pat")
    ready(pg)
    expect(pg.get_by_role("heading", level=1).first).to_contain_text("This week · ")
    items = story(pg)
    assert items, "the Overview tells product nothing"
    for item in items:  # what product may see: counts from the threshold up, links to Reports
        counts = [
            int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:new )?cases", item.sentence)
        ]
        assert all(n >= SUPPRESSION_THRESHOLD for n in counts), item
        assert "incident" not in item.sentence.lower(), item  # the brief's surfaces, no incident
        assert urlparse(item.href).path.strip("/") == "reports", item
    pg.get_by_text("About the data", exact=True).click()
    expect(
        pg.get_by_text("Row counts are shown to roles that see unsuppressed aggregates.")
    ).to_be_visible()
    assert pg.locator("[data-testid='stMain'] [data-testid='stMetric']").count() == 0
    shots.take(pg, "overview")
    menu = pg.locator("[class*='st-key-lookout_menu']")
    for title in ("Case Explorer", "Anomalies"):
        assert menu.get_by_text(title, exact=True).count() == 0

    # Reports: the product brief, by product surface.
    open_page(pg, "Reports")
    expect(pg.get_by_text("(product)").first).to_be_visible()
    expect(pg.get_by_text("Counts below 10 are hidden").first).to_be_visible()
    main = pg.locator("[data-testid='stMain']")
    assert main.get_by_role("radio").count() <= 1  # one audience: its own
    for surface in ("Bookings", "Reviews", "Messaging", "Payments"):
        expect(main.get_by_role("heading", name=surface, exact=True)).to_be_visible()
    shots.take(pg, "reports")
    main.get_by_role("heading", name="Bookings", exact=True).scroll_into_view_if_needed()
    shots.take(pg, "reports-surfaces")

    # The pages product may not open say so, and show nothing of theirs.
    for path in ("cases", "anomalies"):
        pg.goto(f"{base}/{path}")
        ready(pg)
        expect(pg.get_by_text("Your role (product) cannot open this page.")).to_be_visible()
        assert pg.locator("[data-testid='stDataFrame']").count() == 0
        shots.take(pg, f"{path}-refused")
