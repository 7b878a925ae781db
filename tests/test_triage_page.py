"""The Anomalies page's follow-up of a stored incident (issue 19 items 1 and 5), through
Streamlit's AppTest on a private copy of the small demo in SQLite: the state in words,
the actions (each changing the stored row and audited with the user's name), someone
else's change meanwhile, the roles that may not act, and the escalation form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from streamlit.testing.v1 import AppTest

from analytics.access import Viewer
from analytics.alerts import incidents
from analytics.core import database
from analytics.core.models import (
    AuditLog,
    Escalation,
    IncidentNote,
    IncidentState,
    Role,
    StoredIncident,
)
from analytics.views import anomalies, selection
from analytics.views.overview import dataset_overview
from tests.helpers import SMALL_DEMO_END, copy_small_demo, open_page
from ui import triage

#: Per database, the last audit entry before the test (see :func:`top`).
_SINCE: dict[str, int] = {}
NEWEST = datetime.combine(SMALL_DEMO_END, datetime.min.time())


@pytest.fixture(scope="module")
def stored_db(small_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A copy of the small demo whose default week's incidents are stored, as the watch
    run stores them."""
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("triage"))
    engine = database.make_engine(url)
    span = selection.data_span(dataset_overview(engine))
    assert span is not None
    scan = anomalies.current_incidents(
        engine, week=span.default_week, newest=SMALL_DEMO_END, role=Role.associate
    )
    with engine.begin() as conn:
        changes = incidents.sync(conn, scan, now=NEWEST, newest=NEWEST)
    assert changes and {c.kind for c in changes} == {"opened"}
    engine.dispose()
    yield url


@pytest.fixture
def top(stored_db: str) -> int:
    """The id of the stored incident the page opens (its top row), reset to open, with
    no note or escalation."""
    engine = database.make_engine(stored_db)
    with engine.begin() as conn:
        key = conn.execute(
            select(StoredIncident.key).order_by(StoredIncident.score.desc(), StoredIncident.id)
        ).first()
        assert key is not None
        found = conn.execute(
            select(StoredIncident.id).where(StoredIncident.key == key[0])
        ).scalar_one()
        conn.execute(
            update(StoredIncident)
            .where(StoredIncident.id == found)
            .values(state=IncidentState.open, acknowledged_by=None, assignee=None,
                    snoozed_until=None)
        )  # fmt: skip
        for table in (IncidentNote, Escalation):
            conn.execute(delete(table))
        last = conn.execute(select(func.max(AuditLog.id))).scalar_one()
    engine.dispose()
    _SINCE[stored_db] = int(last or 0)  # the audit log is append-only: read what follows
    return int(found)


def _row(url: str, incident_id: int) -> dict:
    engine = database.make_engine(url)
    try:
        return incidents.read_incident(engine, incident_id, role=Role.associate)
    finally:
        engine.dispose()


def _audit(url: str) -> list[tuple[str, str, str]]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditLog.user_name, AuditLog.action, AuditLog.target)
            .where(AuditLog.action.like("incident%") | (AuditLog.action == "escalate"))
            .where(AuditLog.id > _SINCE.get(url, 0))
            .order_by(AuditLog.id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _follow_up(at: AppTest) -> str:
    return next(t for t in _texts(at) if t.startswith("**Follow-up:**"))


def _buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button if str(b.key or "").startswith("triage_")}


def _set_state(url: str, incident_id: int, **values: object) -> None:
    engine = database.make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(StoredIncident)
            .where(StoredIncident.id == incident_id)
            .values(**values, version=StoredIncident.version + 1)
        )
    engine.dispose()


def test_the_state_reads_in_words_with_the_actions_that_fit(monkeypatch, stored_db, top):
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py")
    assert not at.exception
    first_seen = _row(stored_db, top)["first_seen"].date()
    assert _follow_up(at) == f"**Follow-up:** Open since {first_seen.day} May 2026 · not assigned"
    assert _buttons(at) == {"Acknowledge", "Resolve", "Dismiss", "Assign", "Snooze", "Add note"}
    _set_state(stored_db, top, state=IncidentState.acknowledged, acknowledged_by="ann",
               assignee="lee")  # fmt: skip
    at.run()
    assert _follow_up(at) == "**Follow-up:** Acknowledged by ann · assigned to lee"
    assert _buttons(at) == {"Reopen", "Resolve", "Dismiss", "Assign", "Snooze", "Add note"}
    _set_state(stored_db, top, state=IncidentState.snoozed, snoozed_until=datetime(2026, 12, 3))
    at.run()
    assert _follow_up(at) == "**Follow-up:** Snoozed until 3 Dec 2026 · assigned to lee"
    assert "Acknowledge" in _buttons(at) and "Reopen" in _buttons(at)
    _set_state(stored_db, top, state=IncidentState.resolved, updated_at=datetime(2026, 5, 2),
               changed_by="lee")  # fmt: skip
    at.run()
    assert _follow_up(at) == "**Follow-up:** Resolved by lee on 2 May 2026 · assigned to lee"
    assert _buttons(at) == {"Reopen", "Add note"}  # nothing else applies to a closed one


def test_each_action_changes_the_incident_and_is_audited_with_the_name(monkeypatch, stored_db, top):
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py")
    at.button(key=f"triage_acknowledge_{top}").click().run()
    row = _row(stored_db, top)
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", "tester")
    assert _follow_up(at) == "**Follow-up:** Acknowledged by tester · not assigned"
    assert "Acknowledged." in [t.value for t in at.toast]

    at.selectbox(key=f"triage_assignee_{top}").set_value("tester")
    at.button(key=f"triage_assign_{top}").click().run()
    assert _row(stored_db, top)["assignee"] == "tester"

    until = date.today() + timedelta(days=10)
    at.date_input(key=f"triage_until_{top}").set_value(until)
    at.button(key=f"triage_snooze_{top}").click().run()
    row = _row(stored_db, top)
    assert (row["state"], row["snoozed_until"]) == (
        "snoozed",
        datetime.combine(until, datetime.min.time()),
    )

    at.text_area(key=f"triage_note_{top}").input("Checked with the FL team.")
    at.button(key=f"triage_add_note_{top}").click().run()
    at.text_area(key=f"triage_note_{top}").input("Second look tomorrow.")
    at.button(key=f"triage_add_note_{top}").click().run()
    notes = [t for t in _texts(at) if t.startswith("**tester** ·")]
    assert [n.split("\n")[-1] for n in notes] == [
        "Second look tomorrow\\.",
        "Checked with the FL team\\.",
    ]
    assert at.text_area(key=f"triage_note_{top}").value == ""  # cleared once saved

    at.button(key=f"triage_resolve_{top}").click().run()
    assert (_row(stored_db, top)["state"], _row(stored_db, top)["changed_by"]) == (
        "resolved",
        "tester",
    )
    at.button(key=f"triage_reopen_{top}").click().run()
    assert _row(stored_db, top)["state"] == "open"
    at.button(key=f"triage_dismiss_{top}").click().run()
    assert _row(stored_db, top)["state"] == "dismissed"
    assert not at.exception and not at.error

    target = f"incident {top}: {_row(stored_db, top)['key']}"
    assert _audit(stored_db) == [
        ("tester", action, target)
        for action in (
            "incident_ack", "incident_assign", "incident_snooze", "incident_note",
            "incident_note", "incident_resolve", "incident_reopen", "incident_dismiss",
        )
    ]  # fmt: skip


def test_someone_elses_change_meanwhile_is_shown_not_overwritten(monkeypatch, stored_db, top):
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py")
    engine = database.make_engine(stored_db)
    version = _row(stored_db, top)["version"]
    incidents.acknowledge(engine, top, viewer=Viewer("ann", Role.leadership), version=version)
    engine.dispose()
    at.button(key=f"triage_resolve_{top}").click().run()  # drawn when it was still open
    assert [w.value for w in at.warning] == [triage.CONFLICT]
    row = _row(stored_db, top)
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", "ann")
    assert _follow_up(at) == "**Follow-up:** Acknowledged by ann · not assigned"
    assert [a[:2] for a in _audit(stored_db)] == [("ann", "incident_ack")]
    at.button(key=f"triage_resolve_{top}").click().run()  # now on the page's new version
    assert _row(stored_db, top)["state"] == "resolved" and not at.warning


def test_leadership_acts_but_does_not_escalate_and_others_see_no_action(
    monkeypatch, stored_db, top
):
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py", role="leadership")
    assert "Acknowledge" in _buttons(at)
    assert "Escalate to leadership" not in [e.label for e in at.expander]
    for role in ("admin", "product"):  # neither may open case work: no incident, no button
        at = open_page(monkeypatch, stored_db, "pages/anomalies.py", role=role)
        assert not at.exception and not _buttons(at)
        assert not [t for t in _texts(at) if t.startswith("**Follow-up:**")]


def test_an_associate_escalates_with_the_numbers_and_a_link(monkeypatch, stored_db, top):
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py")
    at.button(key="FormSubmitter:triage_escalate-Escalate to leadership").click().run()
    assert [e.value for e in at.error] == [
        "Not sent: write a sentence or two: what is happening and why it matters."
    ]
    box = next(t for t in at.text_area if t.label.startswith("What is happening"))
    box.input("Spam reports in FL tripled since Monday; looks coordinated.")
    at.radio[0].set_value("now")
    at.button(key="FormSubmitter:triage_escalate-Escalate to leadership").click().run()
    assert not at.error
    assert "Escalated to leadership (act now)." in [t.value for t in at.toast]
    engine = database.make_engine(stored_db)
    with engine.connect() as conn:
        sent = conn.execute(
            select(Escalation.user_name, Escalation.urgency, Escalation.subject_kind,
                   Escalation.subject_ref, Escalation.message, Escalation.link,
                   Escalation.evidence)
        ).all()  # fmt: skip
    engine.dispose()
    assert len(sent) == 1
    who, urgency, kind, ref, message, link, evidence = sent[0]
    assert (who, urgency.value, kind, ref) == ("tester", "now", "incident", str(top))
    assert message == "Spam reports in FL tripled since Monday; looks coordinated."
    row = _row(stored_db, top)
    numbers = json.loads(evidence)
    assert list(numbers) == ["Peak", "Expected", "Days"]
    assert numbers["Peak"] == f"{row['peak_value']:,.0f}"
    assert numbers["Expected"] == f"{row['expected']:,.1f}"
    assert link.startswith("anomalies?") and "incident" in link
    assert ("tester", "escalate", f"incident {top}") in _audit(stored_db)


def test_the_follow_up_speaks_plain_words(monkeypatch, stored_db, top):
    from tests.test_plain_words import walk

    at = open_page(monkeypatch, stored_db, "pages/anomalies.py")
    at.button(key=f"triage_acknowledge_{top}").click().run()
    at.text_area(key=f"triage_note_{top}").input("On it.")
    at.button(key=f"triage_add_note_{top}").click().run()
    at.button(key="FormSubmitter:triage_escalate-Escalate to leadership").click().run()
    assert at.error and not walk(at)  # the refusal of an empty escalation too


def _followed(at: AppTest):  # noqa: ANN202 - the frame of the "Being followed up" table
    return next(d.value for d in at.dataframe if "link" in d.value.columns)


def test_incidents_being_followed_up_stay_listed_until_closed(monkeypatch, stored_db, top):
    """Every stored incident still open, acknowledged or snoozed is listed with its state
    in words and a link to itself on its week's page, whatever the focus week; resolving
    one takes it off the list."""
    engine = database.make_engine(stored_db)
    active = incidents.list_incidents(engine, role=Role.associate)
    engine.dispose()
    _set_state(stored_db, top, state=IncidentState.acknowledged, acknowledged_by="ann")
    at = open_page(monkeypatch, stored_db, "pages/anomalies.py", params={"week": "2025-W40"})
    assert not at.exception
    listed = _followed(at)
    assert len(listed) == active.height
    mine = listed[listed["state"].str.startswith("Acknowledged by ann")]
    assert len(mine) == 1
    row = _row(stored_db, top)
    assert mine["link"].iloc[0].startswith("/anomalies?week=")
    assert f"anomalies.source={row['source']}" in mine["link"].iloc[0]
    assert not any("=" in s or "|" in s for s in listed["slice"])  # slices in words
    _set_state(stored_db, top, state=IncidentState.resolved, changed_by="ann")
    at.run()
    assert len(_followed(at)) == active.height - 1
