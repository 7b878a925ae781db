"""Issue 19 in Chromium: an associate acknowledges a stored incident on the Anomalies
page, reloads, and sees who acknowledged it; the change is in the database and the
audit log under their name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from analytics.alerts import watch
from analytics.core import database
from analytics.core.models import AuditLog, IncidentState, StoredIncident
from tests.helpers import copy_small_demo

from . import helpers_browser as shared
from .helpers_browser import WAIT, settle, sign_in

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.xdist_group("e2e-look"), pytest.mark.slow]
browser = shared.browser


@pytest.fixture(scope="module")
def watched_app(small_demo_file, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The small demo after one watch pass (its incidents stored), served."""
    folder = tmp_path_factory.mktemp("triage-e2e")
    url = copy_small_demo(small_demo_file, folder)
    shared.add_users(url)
    engine = database.make_engine(url)
    report = watch.run_once(engine, base_url="http://127.0.0.1", timeout_s=5.0)
    engine.dispose()
    assert report.opened >= 1, report.summary()
    for base in shared.serve(url, folder):
        yield base, url


def _states(url: str) -> list[tuple[str, str | None]]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(StoredIncident.state, StoredIncident.acknowledged_by).order_by(StoredIncident.id)
        ).all()
    engine.dispose()
    return [(str(s), who) for s, who in rows]


def test_an_associate_acknowledges_an_incident_and_sees_it_after_a_reload(
    watched_app, browser: Browser
) -> None:
    base, url = watched_app
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    try:
        sign_in(page, base, "ann")
        page.goto(f"{base}/anomalies")
        settle(page)
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("Follow-up:", exact=False).first).to_be_visible()
        assert "Open since" in main.inner_text()
        main.get_by_role("button", name="Acknowledge", exact=True).click()
        settle(page)
        page.reload()
        settle(page)
        expect(main.get_by_text("Acknowledged by ann", exact=False).first).to_be_visible()
        assert main.get_by_role("button", name="Acknowledge", exact=True).count() == 0
    finally:
        context.close()
    assert (str(IncidentState.acknowledged), "ann") in _states(url)
    engine = database.make_engine(url)
    with engine.connect() as conn:
        who = conn.execute(
            select(AuditLog.user_name).where(AuditLog.action == "incident_ack")
        ).all()
    engine.dispose()
    assert who == [("ann",)]
