"""Escalating from Emerging threats (issue 19, item 5): an associate sends the topic or
the ring shown, with its numbers and a link to the page; leadership has no such form."""

from __future__ import annotations

import json

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from analytics.core import database
from analytics.core.models import Escalation
from tests.helpers import open_page

FORM = "Escalate to leadership"


def _send(at: AppTest, form: str, message: str) -> AppTest:
    boxes = [t for t in at.text_area if t.label.startswith("What is happening")]
    index = 0 if form == "emerging_escalate_topic" else len(boxes) - 1
    boxes[index].set_value(message)
    return at.button(key=f"FormSubmitter:{form}-{FORM}").click().run()


def _escalations(url: str) -> list[tuple[str, str, str, dict[str, str], str | None]]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Escalation.user_name, Escalation.subject_kind, Escalation.subject_ref,
                Escalation.evidence, Escalation.link,
            ).order_by(Escalation.id)
        ).all()  # fmt: skip
    engine.dispose()
    return [(u, k, r, json.loads(e or "{}"), link) for u, k, r, e, link in rows]


def test_an_associate_escalates_the_topic_shown(monkeypatch, own_small_db) -> None:
    at = open_page(monkeypatch, own_small_db, "pages/emerging.py")
    assert not at.exception
    chosen = at.query_params["emerging.cluster"]
    at = _send(at, "emerging_escalate_topic", "New scam vocabulary, growing in FL.")
    assert not at.exception
    [(user, kind, ref, evidence, link)] = _escalations(own_small_db)
    assert (kind, ref) == ("topic", f"topic {chosen}")
    assert evidence["Status"].startswith("new, emerging since")
    assert int(evidence["Cases in the last 7 days"].replace(",", "")) > 0
    assert link is not None and f"emerging.cluster={chosen}" in link
    assert user == "tester"  # the signed-in test user


def test_an_associate_escalates_the_ring_shown(monkeypatch, own_small_db) -> None:
    at = open_page(monkeypatch, own_small_db, "pages/emerging.py", params={"week": "2026-W08"})
    assert not at.exception
    ring = at.query_params["emerging.ring"]
    at = _send(at, "emerging_escalate_ring", "A review ring sharing three devices.")
    assert not at.exception
    [(_, kind, ref, evidence, _)] = _escalations(own_small_db)
    assert (kind, ref) == ("ring", f"ring {ring}")
    assert int(evidence["Accounts"]) >= 3
    assert set(evidence) == {
        "Accounts", "Shared devices", "Shared IP addresses", "Growth", "Accounts under 7 days old"
    }  # fmt: skip


def test_an_empty_escalation_is_refused_on_the_page(monkeypatch, own_small_db) -> None:
    at = open_page(monkeypatch, own_small_db, "pages/emerging.py")
    at = _send(at, "emerging_escalate_topic", "   ")
    assert any("Not sent: write a sentence or two" in e.value for e in at.error)
    assert _escalations(own_small_db) == []


def test_leadership_has_no_escalation_form(monkeypatch, own_small_db) -> None:
    at = open_page(monkeypatch, own_small_db, "pages/emerging.py", role="leadership")
    assert not at.exception
    assert FORM not in [e.label for e in at.expander]
