"""Digests and story messages of the watch (issue 19): a digest tells of incidents opened
again or out of their snooze as well as new ones, each once; the ``told_at`` column
reaches databases made before it.

The passes run on a copy of the small demo (its data ends on 30 Apr 2026) with a real
webhook receiver on loopback (tests/alert_receivers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import Engine, inspect, select

from analytics.access import Viewer
from analytics.alerts import incidents, subscriptions, watch
from analytics.alerts.message import Message
from analytics.core.database import make_engine
from analytics.core.models import Delivery, Role, init_db
from tests.alert_receivers import HttpReceiver, http_receiver
from tests.helpers import copy_small_demo

#: When the first pass happens (the day after the small demo's data ends).
NOW = datetime(2026, 5, 1, 6, 0)
BASE = "http://lookout.test"
ANN = Viewer("ann", Role.associate)


@pytest.fixture
def demo(small_demo_file, tmp_path, monkeypatch) -> Iterator[Engine]:
    monkeypatch.setenv("LOOKOUT_SECRETS", str(tmp_path / "secrets.toml"))
    eng = make_engine(copy_small_demo(small_demo_file, tmp_path))
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def _digests(engine: Engine) -> list[Message]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.payload).where(Delivery.kind == "digest").order_by(Delivery.id)
        ).all()
    return [Message.from_json(r.payload) for r in rows]


def _pass(engine: Engine, now: datetime) -> watch.WatchReport:
    return watch.run_once(engine, now=now, base_url=BASE, timeout_s=5.0)


def test_a_digest_after_a_reopen_and_an_unsnooze_lists_each_incident_once(demo, hook) -> None:
    subscriptions.add(demo, name="daily", channel="webhook", target=hook.url, digest_hours=24,
                      role=Role.associate, now=NOW - timedelta(hours=1))  # fmt: skip
    assert _pass(demo, NOW).opened == 2  # two incidents, told in the next digest
    first = _pass(demo, NOW + timedelta(hours=23))
    assert (first.queued, first.sent) == (1, 1)
    [digest] = _digests(demo)
    assert digest.fields["incidents"] == 2
    # One incident is resolved, then its episode goes on (a week later): reopened. The
    # other is snoozed, and its snooze runs out before the next digest.
    found = incidents.list_incidents(demo, role=Role.associate).sort("slice")
    back, quiet = found.row(0, named=True), found.row(1, named=True)
    incidents.resolve(demo, back["id"], viewer=ANN, version=back["version"])
    until = datetime(2099, 1, 1)
    incidents.snooze(demo, quiet["id"], until, viewer=ANN, version=quiet["version"])
    scanned, newest = watch.scan(demo)
    assert newest is not None
    later = scanned.filter(pl.col("alerted"), pl.col("slice") == back["slice"]).with_columns(
        pl.col("end") + timedelta(days=7)
    )
    with demo.begin() as conn:
        changes = incidents.sync(conn, later, now=NOW + timedelta(hours=30),
                                 newest=newest + timedelta(days=7))  # fmt: skip
    assert [(c.kind, c.id) for c in changes] == [("reopened", back["id"])]
    # The day's digest (due 24 h after the first) tells of the reopened incident only.
    second = _pass(demo, NOW + timedelta(hours=47))
    assert (second.queued, second.sent) == (1, 1)
    told = _digests(demo)[1]
    assert told.fields["incidents"] == 1
    assert told.text.count("Dentistry") == 1 and "Dermatology" not in told.text
    # Once the snooze is over, the pass's digest tells of that one, once; then nothing.
    over = _pass(demo, until)
    assert (over.unsnoozed, over.queued, over.sent) == (1, 1, 1)
    third = _digests(demo)[2]
    assert third.fields["incidents"] == 1
    assert "Dermatology" in third.text and "Dentistry" not in third.text
    assert _pass(demo, until + timedelta(days=3)).queued == 0
    assert len(hook.acknowledged_keys) == 3 and hook.repeats == []


def test_init_db_adds_told_at_to_an_incidents_table_made_before_it(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE incidents DROP COLUMN told_at")
    assert "told_at" not in {c["name"] for c in inspect(engine).get_columns("incidents")}
    init_db(engine)
    init_db(engine)  # idempotent
    assert "told_at" in {c["name"] for c in inspect(engine).get_columns("incidents")}
