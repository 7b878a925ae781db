"""Stored incidents (analytics.alerts.incidents) on SQLite and PostgreSQL: a scan synced
twice stores one row; an episode that grows updates it; acknowledge, assign, snooze
(expired by the next sync), resolve and dismiss (reopened when the episode returns),
notes; each action audited with who; a stale version refused, and of two people
acknowledging at once exactly one wins."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from analytics.access import AccessDenied, Viewer
from analytics.alerts import incidents as store
from analytics.alerts.incidents import IncidentConflict, IncidentNotFound, InvalidAction
from analytics.core.models import AuditLog, IncidentNote, Role, StoredIncident

ANN = Viewer("ann", Role.associate)
LEE = Viewer("lee", Role.leadership)
PAT = Viewer("pat", Role.product)
D = datetime
#: The scan read up to (excluding) this day.
NEWEST = D(2026, 4, 25)
NOW = D(2026, 4, 25, 6, 0)
SPAM = "category=spam|region=FL"


def scan(*rows: dict[str, Any]) -> pl.DataFrame:
    """A scan frame shaped like recent_incidents: daily spam in FL rising, by default."""
    base = {
        "slice": SPAM,
        "source": "cases",
        "freq": "daily",
        "metric": "cases_daily",
        "direction": "up",
        "start": D(2026, 4, 20),
        "end": D(2026, 4, 21),
        "peak_ts": D(2026, 4, 21),
        "peak_value": 40.0,
        "peak_expected": 12.0,
        "score": 5.0,
        "alerted": True,
    }
    return pl.DataFrame([{**base, **row} for row in rows])


def _sync(engine: Engine, frame: pl.DataFrame, now: datetime = NOW) -> list[tuple[str, int]]:
    with engine.begin() as conn:
        changes = store.sync(conn, frame, now=now, newest=NEWEST)
    return [(c.kind, c.id) for c in changes]


def _stored(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(getattr(v, "value", v) for v in r)
            for r in conn.execute(
                select(
                    StoredIncident.id, StoredIncident.start, StoredIncident.end,
                    StoredIncident.peak_ts, StoredIncident.peak_value, StoredIncident.expected,
                    StoredIncident.score, StoredIncident.severity, StoredIncident.state,
                    StoredIncident.version,
                ).order_by(StoredIncident.id)
            )
        ]  # fmt: skip


def _audit(engine: Engine) -> list[tuple[str, str, str, str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                AuditLog.user_name,
                AuditLog.role,
                AuditLog.action,
                AuditLog.target,
                AuditLog.filters,
            ).order_by(AuditLog.id)  # fmt: skip
        ).all()
    return [(u, r, a, t, json.loads(f) if f else {}) for u, r, a, t, f in rows]


def _one(engine: Engine) -> dict[str, Any]:
    return store.read_incident(engine, _stored(engine)[0][0], role=Role.associate)


# --------------------------------------------------------------------------- sync


def test_two_passes_over_the_same_scan_store_one_row(engine) -> None:
    first = _sync(engine, scan({}))
    assert first == [("opened", 1)]
    assert _sync(engine, scan({}), NOW + timedelta(minutes=15)) == []
    assert _stored(engine) == [
        (1, D(2026, 4, 20), D(2026, 4, 21), D(2026, 4, 21), 40.0, 12.0, 5.0, "low", "open", 1)
    ]
    row = _one(engine)
    assert (row["key"], row["slice"]) == (f"cases|daily|cases_daily|up|{SPAM}", SPAM)
    assert (row["first_seen"], row["last_seen"], row["updated_at"]) == (
        NOW, NOW + timedelta(minutes=15), NOW
    )  # fmt: skip


def test_the_change_carries_the_stored_incident(engine) -> None:
    with engine.begin() as conn:
        (change,) = store.sync(conn, scan({"end": D(2026, 4, 24)}), now=NOW, newest=NEWEST)
    assert (change.kind, change.id, change.incident_id, change.notify) == ("opened", 1, 1, True)
    assert {k: change.row[k] for k in ("slice", "metric", "direction", "severity", "state")} == {
        "slice": SPAM, "metric": "cases_daily", "direction": "up", "severity": "low",
        "state": "open",
    }  # fmt: skip
    assert change.row["ongoing"] is True  # it covers 24 Apr, the newest day
    assert (change.row["start"], change.row["expected"], change.row["version"]) == (
        D(2026, 4, 20), 12.0, 1
    )  # fmt: skip


def test_rows_not_alerted_are_not_stored_and_each_series_is_its_own(engine) -> None:
    frame = scan(
        {},
        {"direction": "down", "alerted": False},
        {"slice": "category=spam", "score": 13.0},
        {"freq": "weekly", "metric": "cases_weekly", "score": 7.5},
    )
    assert _sync(engine, frame) == [("opened", 1), ("opened", 2), ("opened", 3)]
    listed = store.list_incidents(engine, role=Role.associate)
    assert listed.select("slice", "freq", "score", "severity").rows() == [
        ("category=spam", "daily", 13.0, "high"),
        (SPAM, "weekly", 7.5, "medium"),
        (SPAM, "daily", 5.0, "low"),
    ]


def test_an_episode_that_grows_updates_its_row(engine) -> None:
    _sync(engine, scan({}))
    # The next day alerts more strongly: the same incident, a later end, a higher peak.
    grown = scan({"end": D(2026, 4, 22), "peak_ts": D(2026, 4, 22), "peak_value": 90.0,
                  "peak_expected": 13.0, "score": 12.5})  # fmt: skip
    assert _sync(engine, grown, NOW + timedelta(days=1)) == [("updated", 1)]
    # A run that sees only the continuation (it starts the day after the stored end)
    # with a weaker peak extends the end and keeps the peak.
    later = scan({"start": D(2026, 4, 23), "end": D(2026, 4, 24), "peak_ts": D(2026, 4, 24),
                  "score": 4.0})  # fmt: skip
    assert _sync(engine, later, NOW + timedelta(days=2)) == [("updated", 1)]
    assert _stored(engine) == [
        (1, D(2026, 4, 20), D(2026, 4, 24), D(2026, 4, 22), 90.0, 13.0, 12.5, "high", "open", 1)
    ]  # the version counts changes of state, not the episode growing


def test_an_episode_after_a_gap_is_a_new_incident(engine) -> None:
    _sync(engine, scan({}))  # 20-21 Apr
    gap = scan({"start": D(2026, 4, 23), "end": D(2026, 4, 24), "peak_ts": D(2026, 4, 24)})
    assert _sync(engine, gap) == [("opened", 2)]
    # Weekly: the next week's point continues the episode (one period after its end).
    weekly = {"freq": "weekly", "metric": "cases_weekly"}
    week = scan({**weekly, "start": D(2026, 4, 6), "end": D(2026, 4, 6), "peak_ts": D(2026, 4, 6)})
    assert _sync(engine, week) == [("opened", 3)]
    next_week = scan({**weekly, "start": D(2026, 4, 13), "end": D(2026, 4, 13),
                      "peak_ts": D(2026, 4, 13)})  # fmt: skip
    assert _sync(engine, next_week) == [("updated", 3)]


def test_a_sync_rolled_back_with_its_transaction_leaves_nothing(engine) -> None:
    with pytest.raises(RuntimeError, match="enqueue failed"), engine.begin() as conn:
        store.sync(conn, scan({}), now=NOW, newest=NEWEST)
        raise RuntimeError("enqueue failed")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(StoredIncident)).scalar_one() == 0


# --------------------------------------------------------------------------- lifecycle


def test_acknowledge_and_assign_say_who_and_are_audited(engine) -> None:
    _sync(engine, scan({}))
    acked = store.acknowledge(engine, 1, viewer=ANN, version=1)
    assert (acked["state"], acked["acknowledged_by"], acked["version"]) == (
        "acknowledged",
        "ann",
        2,
    )
    given = store.assign(engine, 1, "  lee ", viewer=ANN, version=2)
    assert (given["state"], given["assignee"], given["version"]) == ("acknowledged", "lee", 3)
    target = f"incident 1: cases|daily|cases_daily|up|{SPAM}"
    assert _audit(engine) == [
        ("ann", "associate", "incident_ack", target,
         {"before": {"state": "open", "version": 1},
          "after": {"state": "acknowledged", "version": 2}}),
        ("ann", "associate", "incident_assign", target,
         {"before": {"state": "acknowledged", "version": 2},
          "after": {"state": "acknowledged", "version": 3, "assignee": "lee"}}),
    ]  # fmt: skip
    with pytest.raises(InvalidAction, match="Name the person"):
        store.assign(engine, 1, " ", viewer=ANN, version=3)


def test_a_snooze_expires_at_the_next_sync_after_it(engine) -> None:
    _sync(engine, scan({}))
    until = D(2099, 1, 1)  # in the future whatever the clock says
    snoozed = store.snooze(engine, 1, until, viewer=LEE, version=1)
    assert (snoozed["state"], snoozed["snoozed_until"], snoozed["version"]) == ("snoozed", until, 2)
    assert _sync(engine, scan({}), until - timedelta(seconds=1)) == []
    assert _one(engine)["state"] == "snoozed"
    assert _sync(engine, scan({}), until) == [("unsnoozed", 1)]
    row = _one(engine)
    assert (row["state"], row["snoozed_until"], row["version"]) == ("open", None, 3)
    assert _sync(engine, scan({}), until + timedelta(hours=1)) == []
    assert [a[2:] for a in _audit(engine)][0][2]["after"]["until"] == "2099-01-01 00:00:00"
    with pytest.raises(InvalidAction, match="future"):
        store.snooze(engine, 1, D(2000, 1, 1), viewer=LEE, version=3)


def test_an_expired_snooze_of_a_growing_episode_says_unsnoozed(engine) -> None:
    _sync(engine, scan({}))
    store.snooze(engine, 1, D(2099, 1, 1), viewer=ANN, version=1)
    grown = scan({"end": D(2026, 4, 22)})
    assert _sync(engine, grown, D(2099, 1, 2)) == [("unsnoozed", 1)]
    assert _stored(engine)[0][2] == D(2026, 4, 22)


@pytest.mark.parametrize(("close", "state"), [(store.resolve, "resolved"),
                                              (store.dismiss, "dismissed")])  # fmt: skip
def test_a_closed_incident_reopens_when_its_episode_returns(engine, close, state) -> None:
    _sync(engine, scan({}))
    closed = close(engine, 1, viewer=ANN, version=1)
    assert (closed["state"], closed["version"]) == (state, 2)
    assert _sync(engine, scan({}), NOW + timedelta(hours=1)) == []  # seen as it was: closed
    assert _one(engine)["state"] == state
    back = scan({"end": D(2026, 4, 22), "peak_ts": D(2026, 4, 22), "score": 6.5})
    assert _sync(engine, back, NOW + timedelta(days=1)) == [("reopened", 1)]
    assert _stored(engine) == [
        (1, D(2026, 4, 20), D(2026, 4, 22), D(2026, 4, 22), 40.0, 12.0, 6.5, "medium", "open", 3)
    ]
    assert [a[2] for a in _audit(engine)] == [f"incident_{close.__name__}"]


def test_reopen_by_hand_and_actions_that_do_not_apply(engine) -> None:
    _sync(engine, scan({}))
    store.resolve(engine, 1, viewer=ANN, version=1)
    with pytest.raises(InvalidAction, match="Incident 1 is resolved: you cannot acknowledge it"):
        store.acknowledge(engine, 1, viewer=ANN, version=2)
    reopened = store.reopen(engine, 1, viewer=LEE, version=2)
    assert (reopened["state"], reopened["version"]) == ("open", 3)
    with pytest.raises(InvalidAction, match="is open: you cannot reopen it"):
        store.reopen(engine, 1, viewer=LEE, version=3)
    assert [(a[0], a[2]) for a in _audit(engine)] == [
        ("ann", "incident_resolve"), ("lee", "incident_reopen")
    ]  # fmt: skip


def test_a_stale_version_is_refused_and_nothing_written(engine) -> None:
    _sync(engine, scan({}))
    store.acknowledge(engine, 1, viewer=ANN, version=1)
    with pytest.raises(
        IncidentConflict, match="changed since you read it .now acknowledged by ann"
    ):
        store.resolve(engine, 1, viewer=LEE, version=1)
    assert _stored(engine)[0][8:] == ("acknowledged", 2)
    assert [a[2] for a in _audit(engine)] == ["incident_ack"]
    with pytest.raises(IncidentNotFound, match="no incident 99"):
        store.resolve(engine, 99, viewer=LEE, version=1)


def test_of_two_people_acknowledging_at_once_exactly_one_wins(engine) -> None:
    _sync(engine, scan({}))
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def ack(viewer: Viewer) -> None:
        start.wait()
        try:
            store.acknowledge(engine, 1, viewer=viewer, version=1)
            outcomes[viewer.name] = "saved"
        except IncidentConflict:
            outcomes[viewer.name] = "conflict"

    threads = [threading.Thread(target=ack, args=(v,)) for v in (ANN, LEE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["conflict", "saved"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "saved")
    row = _one(engine)
    assert (row["acknowledged_by"], row["version"]) == (winner, 2)
    assert [(a[0], a[2]) for a in _audit(engine)] == [(winner, "incident_ack")]


def test_notes_are_kept_with_who_and_audited_without_their_text(engine) -> None:
    _sync(engine, scan({}))
    first = store.add_note(engine, 1, "  Looks like the FL spam ring again. ", viewer=ANN)
    second = store.add_note(engine, 1, "Blocked the sender IPs.", viewer=LEE)
    assert store.notes(engine, 1).select("user_name", "text").rows() == [
        ("ann", "Looks like the FL spam ring again."),
        ("lee", "Blocked the sender IPs."),
    ]
    audit = _audit(engine)
    assert [(a[0], a[2], a[4]) for a in audit] == [
        ("ann", "incident_note", {"note": first}), ("lee", "incident_note", {"note": second})
    ]  # fmt: skip
    assert not any("FL spam ring" in json.dumps(a) for a in audit)
    for bad, message in (("  ", "Write something"), ("a\u202eb", "control or invisible"),
                         ("x" * 2001, "Shorten the note")):  # fmt: skip
        with pytest.raises(InvalidAction, match=message):
            store.add_note(engine, 1, bad, viewer=ANN)
    with pytest.raises(IncidentNotFound):
        store.add_note(engine, 7, "hello", viewer=ANN)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IncidentNote)).scalar_one() == 2


def test_list_by_state_and_the_roles_that_may_not(engine) -> None:
    # Stored by series key: "category=spam" (1) before "category=spam|region=FL" (2).
    _sync(engine, scan({}, {"slice": "category=spam", "score": 8.0}))
    store.resolve(engine, 2, viewer=ANN, version=1)
    assert store.list_incidents(engine, role=Role.leadership)["id"].to_list() == [1]
    assert store.list_incidents(engine, states=["resolved"], role=Role.associate)[
        "id"
    ].to_list() == [2]
    assert store.list_incidents(engine, states=None, role=Role.associate)["id"].to_list() == [1, 2]
    assert store.list_incidents(engine, states=["dismissed"], role=Role.associate).height == 0
    for role in (Role.product, Role.admin):
        with pytest.raises(AccessDenied):
            store.list_incidents(engine, role=role)
    for viewer in (PAT, Viewer("root", Role.admin)):
        with pytest.raises(
            AccessDenied, match=f"the {viewer.role.value} role may not acknowledge, assign"
        ):
            store.acknowledge(engine, 1, viewer=viewer, version=1)
    with pytest.raises(AccessDenied):
        store.add_note(engine, 1, "hi", viewer=PAT)
    assert _audit(engine)[-1][2] == "incident_resolve"
