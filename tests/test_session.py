"""Sessions (issue 14, items 4, 5, 13): two users on one tab, session ids kept out of
the log, a sign-in bound to its browser, no link to a page the role cannot open."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from analytics import access
from analytics.access import Viewer
from analytics.core import database
from analytics.core.models import Annotation, AuditLog, Role
from tests.helpers import HANG_S, copy_small_demo, open_page
from ui import session

ROOT = Path(__file__).resolve().parent.parent
CASE = "7"


@pytest.fixture(scope="module")
def small_db(small_demo_file, tmp_path_factory) -> str:
    """A copy of the small demo with two users: these tests sign in and open cases."""
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("session"))
    engine = database.make_engine(url)
    access.add_user(engine, "ann", "associate", "ann's long password")
    access.add_user(engine, "lee", "leadership", "lee's long password")
    engine.dispose()
    return url


def _audited(url: str, user: str, action: str) -> int:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.user_name == user, AuditLog.action == action)
        ).scalar_one()
    engine.dispose()
    return int(found)


def _sign_in(at: AppTest, name: str, password: str) -> None:
    at.text_input(key="sign_in_name").set_value(name)
    at.text_input(key="sign_in_pw").set_value(password)
    at.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert not at.exception
    assert at.session_state[session.KEY].name == name


def test_sign_out_forgets_the_previous_users_cases(monkeypatch, small_db) -> None:
    """Two users, one tab: an associate opens and reveals a case and signs out; a
    leadership user signs in on the same tab and opens the same case. Their view is
    audited under their name, and nothing of the reveal (which their role may not do)
    is left: no traceback, the text masked."""
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_S).run().run()
    _sign_in(at, "ann", "ann's long password")
    at.query_params["cases.case"] = CASE
    at.switch_page("pages/cases.py")
    at.run()
    at.button(key="cases_reveal").click().run()
    assert any("revealed" in c.value for c in at.caption)
    assert _audited(small_db, "ann", "reveal") == 1
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert session.KEY not in at.session_state
    assert "cases_revealed" not in at.session_state
    assert "cases_audited" not in at.session_state
    _sign_in(at, "lee", "lee's long password")
    at.query_params["cases.case"] = CASE
    at.switch_page("pages/cases.py")
    at.run()
    assert not at.exception
    assert _audited(small_db, "lee", "case_view") == 1
    assert not any("revealed" in c.value for c in at.caption)
    assert _audited(small_db, "lee", "reveal") == 0


def test_admin_trends_page_draws_no_link_it_cannot_follow(monkeypatch, small_db) -> None:
    """Admin may read the trends but not the Case Explorer: the page renders whole and
    offers no link to the cases (it crashed with StreamlitPageNotFoundError)."""
    at = open_page(monkeypatch, small_db, "pages/trends.py", role="admin")
    assert not at.exception
    assert not any("Case Explorer" in str(getattr(e, "proto", "")) for e in at.get("page_link"))
    leader = open_page(monkeypatch, small_db, "pages/trends.py", role="leadership")
    assert any("Case Explorer" in str(getattr(e, "proto", "")) for e in leader.get("page_link"))


def test_session_ids_never_reach_the_log(caplog) -> None:
    """The log line Streamlit writes when a session id reconnects names the id: the
    filter installed on every page rewrites it as a short digest."""
    sid = "0b6f0ab5-3c7e-4f43-9d51-33ae2f6c2f10"
    logger = logging.getLogger("streamlit.runtime.websocket_session_manager")
    session.redact_logs()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Session with id %s is already connected! Reconnecting.", sid)
    assert caplog.records
    assert sid not in caplog.text and sid[:8] not in caplog.text
    assert "<session " in caplog.text


def test_a_sign_in_token_is_worthless_after_sign_out_and_never_stored() -> None:
    ann = Viewer("ann", Role.associate)
    token = session.start(ann)
    assert session._TOKENS.viewer(token) == ann
    assert token not in str(session._TOKENS._by_hash)  # kept by digest only
    assert session._TOKENS.viewer(token + "x") is None
    session.end(token)
    assert session._TOKENS.viewer(token) is None


def test_a_session_with_a_viewer_but_without_the_cookie_is_signed_out(
    monkeypatch, small_db
) -> None:
    """A session id replayed from another browser carries the session's state but not
    the browser's cookie: the viewer and every per-user key are dropped."""
    monkeypatch.setattr(session, "connected", lambda: True)  # as over a WebSocket
    at = open_page(monkeypatch, small_db, "pages/cases.py", params={"cases.case": CASE})
    assert not at.exception
    assert session.KEY not in at.session_state
    assert any(t.value == "Lookout" for t in at.title)  # the sign-in form instead
    assert at.text_input(key="sign_in_name") is not None


def _sign_out(at: AppTest) -> None:
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert session.KEY not in at.session_state


def test_the_next_user_on_a_tab_gets_neither_the_brief_note_nor_the_event_draft(
    monkeypatch, small_db
) -> None:
    """Two users, one tab, on the pages that take free text: a leadership user writes a
    note on the Reports page (it opens the brief they download) and starts a known event
    without saving it, then signs out; an associate signs in on the same tab. Their brief
    carries no note and their event form is empty; the event they add is audited under
    their name, and nothing of the draft reaches the database."""
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_S).run().run()
    _sign_in(at, "lee", "lee's long password")
    at.switch_page("pages/reports.py")
    at.run()
    at.text_area(key="reports_note").set_value("Lee's note: escalate the OB-GYN scam").run()
    assert not at.exception
    assert any("Lee's note" in t.value for t in at.text)  # the brief opens with it
    at.switch_page("pages/events.py")
    at.run()
    at.text_input(key="events_add_title").set_value("Lee's unsaved draft").run()  # not added
    _sign_out(at)

    _sign_in(at, "ann", "ann's long password")
    at.switch_page("pages/reports.py")
    at.run()
    assert not at.exception
    assert at.text_area(key="reports_note").value == ""
    shown = [t.value for t in at.text] + [m.value for m in at.markdown]
    assert not any("Lee's note" in s for s in shown)
    at.switch_page("pages/events.py")
    at.run()
    assert not at.exception
    assert at.text_input(key="events_add_title").value == ""
    at.text_input(key="events_add_title").set_value("Ann's payments outage")
    at.button(key="events_add_submit").click().run()
    assert not at.exception
    assert _audited(small_db, "ann", "annotation_add") == 1
    assert _audited(small_db, "lee", "annotation_add") == 0
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        titles = [str(t) for (t,) in conn.execute(select(Annotation.title))]
    engine.dispose()
    assert "Ann's payments outage" in titles
    assert not any("Lee" in t for t in titles)
