"""The outbox (issue 19) on SQLite and PostgreSQL against a real receiver on loopback:
queued once, retried with backoff, never sent twice, a failure kept with its reason
and no secret, a killed sender's message delivered exactly once after its lease."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import insert, select

from analytics.alerts import secrets
from analytics.alerts.message import Message
from analytics.alerts.outbox import DeliveryReport, deliver_pending, enqueue, failures, retry
from analytics.core.database import make_engine
from analytics.core.models import (
    ChannelKind,
    Delivery,
    Role,
    Subscription,
    init_db,
)
from tests.alert_receivers import SAFETY_S, http_receiver, smtp_server

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 3, 4, 9, 0)
SIGNING_KEY = "s" * 64


def _message(n: int = 1) -> Message:
    return Message("incident", f"Spam up #{n}", f"Spam up #{n}", f"<p>Spam up #{n}</p>")


@pytest.fixture(autouse=True)
def secrets_file(tmp_path, monkeypatch):
    path = tmp_path / "secrets.toml"
    monkeypatch.setenv("LOOKOUT_SECRETS", str(path))
    return path


def _subscribe(engine, name: str, ref: str, channel: str = "webhook") -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(Subscription).values(
                name=name,
                channel=ChannelKind(channel),
                secret_ref=ref,
                what="anomalies",
                min_severity="low",
                direction="both",
                role=Role.leadership,
                timezone="UTC",
                active=True,
                created_by="admin",
                created_at=T0,
            )
        )
        return int(result.inserted_primary_key[0])


def _webhook(engine, url: str, name: str = "hook") -> int:
    ref = secrets.store(name, url)
    secrets.store(f"{name}_signing", SIGNING_KEY)
    return _subscribe(engine, name, ref)


def _queue(engine, sub_id: int, keys: list[str]) -> None:
    with engine.begin() as conn:
        for n, key in enumerate(keys):
            assert enqueue(conn, subscription_id=sub_id, key=key, message=_message(n), now=T0)


def _rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Delivery.idempotency_key,
                Delivery.state,
                Delivery.attempts,
                Delivery.next_attempt_at,
                Delivery.last_error,
                Delivery.sent_at,
            ).order_by(Delivery.id)
        ).all()
    return [(r[0], str(r[1]), *r[2:]) for r in rows]


def test_a_change_is_queued_once_and_only_with_its_transaction(engine) -> None:
    sub = _subscribe(engine, "hook", "secrets:hook")
    with engine.begin() as conn:
        assert enqueue(
            conn, subscription_id=sub, key="incident:1:opened", message=_message(), now=T0
        )
        assert not enqueue(
            conn, subscription_id=sub, key="incident:1:opened", message=_message(2), now=T0
        )
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enqueue(conn, subscription_id=sub, key="incident:2:opened", message=_message(), now=T0)
        raise RuntimeError("the incident change failed")
    assert _rows(engine) == [("incident:1:opened", "pending", 0, T0, None, None)]
    with engine.connect() as conn:
        payload = conn.execute(select(Delivery.payload)).scalar_one()
    assert Message.from_json(payload) == _message()


def test_500_then_200_is_retried_after_the_backoff_and_delivered_once(engine) -> None:
    with http_receiver() as hook:
        hook.script([500, 200])
        _queue(engine, _webhook(engine, hook.url), ["incident:1:opened"])
        assert deliver_pending(engine, now=T0) == DeliveryReport(retrying=1)
        error = "webhook 'hook': the receiver answered HTTP 500 (error)"
        retry_at = T0 + timedelta(seconds=30)
        assert _rows(engine) == [("incident:1:opened", "pending", 1, retry_at, error, None)]
        # Not due yet: nothing is sent before the backoff has passed.
        assert deliver_pending(engine, now=T0 + timedelta(seconds=29)) == DeliveryReport()
        assert deliver_pending(engine, now=retry_at) == DeliveryReport(sent=1)
        assert deliver_pending(engine, now=retry_at + timedelta(hours=2)) == DeliveryReport()
    assert _rows(engine) == [("incident:1:opened", "sent", 2, retry_at, None, retry_at)]
    assert [r.status for r in hook.requests] == [500, 200]
    assert hook.acknowledged_keys == ["incident:1:opened"] and hook.repeats == []
    assert all(r.signature_ok(SIGNING_KEY) for r in hook.requests)


def test_a_hanging_receiver_times_out_and_is_tried_again_later(engine) -> None:
    with http_receiver() as hook:
        hook.script(["hang"])
        _queue(engine, _webhook(engine, hook.url), ["incident:1:opened"])
        report = deliver_pending(engine, now=T0, timeout_s=0.3)
        assert report == DeliveryReport(retrying=1)
        (row,) = _rows(engine)
        assert row[1:5] == (
            "pending",
            1,
            T0 + timedelta(seconds=30),
            "webhook 'hook': no answer within 0.3 s",
        )
        later = T0 + timedelta(seconds=30)
        assert deliver_pending(engine, now=later, timeout_s=5) == DeliveryReport(sent=1)
        hook.release()
        hook.wait_for_answered(2)  # the hung one too, once released
    assert [r.status for r in hook.requests] == [200, None] or [
        r.status for r in hook.requests
    ] == [None, 200]
    assert hook.acknowledged_keys == ["incident:1:opened"] and hook.repeats == []


def test_backoff_doubles_then_gives_up_after_max_attempts(engine) -> None:
    with http_receiver() as hook:
        hook.script([503] * 10)
        _queue(engine, _webhook(engine, hook.url), ["incident:1:opened"])
        now = T0
        reports = []
        for _ in range(3):
            reports.append(deliver_pending(engine, now=now, max_attempts=3))
            now = _rows(engine)[0][3]  # the next attempt's time
        assert reports == [DeliveryReport(retrying=1)] * 2 + [DeliveryReport(failed=1)]
        assert deliver_pending(engine, now=now + timedelta(days=1)) == DeliveryReport()
    assert now == T0 + timedelta(seconds=30 + 60)
    (row,) = _rows(engine)
    assert row[1:3] == ("failed", 3)
    assert len(hook.requests) == 3 and hook.acknowledged_keys == []


def test_a_missing_secret_fails_at_once_with_its_name_and_no_secret(engine, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = "http://127.0.0.1:9/services/T0/B0/zzsecretzz"
    ref = secrets.store("hook", url)  # the URL is there, its signing key is not
    _queue(engine, _subscribe(engine, "hook", ref), ["incident:1:opened"])
    assert deliver_pending(engine, now=T0) == DeliveryReport(failed=1)
    reason = f"secret secrets:hook_signing is not set (no entry 'hook_signing' in [subscriptions] of {secrets.secrets_file()})"  # noqa: E501
    assert _rows(engine) == [("incident:1:opened", "failed", 1, T0, reason, None)]
    expected = pl.DataFrame(
        {
            "subscription": ["hook"],
            "channel": ["webhook"],
            "subject": ["Spam up #0"],
            "state": ["failed"],
            "attempts": [1],
            "last_error": [reason],
            "next_attempt_at": [T0],
            "created_at": [T0],
        },
        schema_overrides={"next_attempt_at": pl.Datetime("us"), "created_at": pl.Datetime("us")},
    )
    assert_frame_equal(failures(engine).drop("id"), expected)
    assert "zzsecretzz" not in caplog.text and reason in caplog.text
    # Once the key is stored, an admin's retry delivers it.
    with http_receiver() as hook:
        secrets.store("hook", hook.url)
        secrets.store("hook_signing", SIGNING_KEY)
        (failed_id,) = failures(engine)["id"].to_list()
        assert retry(engine, failed_id, now=T0)
        assert deliver_pending(engine, now=T0) == DeliveryReport(sent=1)
    assert hook.acknowledged_keys == ["incident:1:opened"]
    assert failures(engine).height == 0


def test_two_runs_at_once_send_each_message_once(engine) -> None:
    keys = [f"incident:{n}:opened" for n in range(8)]
    with http_receiver() as hook:
        _queue(engine, _webhook(engine, hook.url), keys)
        start = threading.Barrier(2)
        reports: list[DeliveryReport] = []

        def run() -> None:
            start.wait(SAFETY_S)
            reports.append(deliver_pending(engine, now=T0))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SAFETY_S)
    assert sum(r.sent for r in reports) == 8 and sum(r.retrying + r.failed for r in reports) == 0
    assert sorted(hook.acknowledged_keys) == sorted(keys)
    assert hook.repeats == [] and len(hook.requests) == 8
    assert {row[1:3] for row in _rows(engine)} == {("sent", 1)}


_KILLED_RUN = """
import sys
from datetime import datetime
from analytics.core.database import make_engine
from analytics.alerts.outbox import deliver_pending
deliver_pending(make_engine(sys.argv[1]), now=datetime.fromisoformat(sys.argv[2]),
                timeout_s=120, lease_s=600)
"""


@pytest.mark.slow
def test_a_sender_killed_mid_delivery_delivers_exactly_once_after_its_lease(db_url) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    with http_receiver() as hook:
        hook.script(["hang"])
        _queue(engine, _webhook(engine, hook.url), ["incident:1:opened"])
        sender = subprocess.Popen(
            [sys.executable, "-c", _KILLED_RUN, db_url, T0.isoformat()],
            cwd=ROOT,
            env=dict(os.environ),
        )
        try:
            hook.wait_for_requests(1)  # the sender is waiting for the receiver's answer
        finally:
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait(SAFETY_S)
        assert sender.returncode == -signal.SIGKILL
        (row,) = _rows(engine)
        assert row[1:3] == ("sending", 1)
        # Its lease (600 s) still holds: a run meanwhile leaves it alone.
        assert deliver_pending(engine, now=T0 + timedelta(seconds=599)) == DeliveryReport()
        assert deliver_pending(engine, now=T0 + timedelta(seconds=601)) == DeliveryReport(sent=1)
        assert deliver_pending(engine, now=T0 + timedelta(days=1)) == DeliveryReport()
        hook.release()
        hook.wait_for_requests(2)
    assert hook.acknowledged_keys == ["incident:1:opened"] and hook.repeats == []
    assert hook.acknowledged_count("incident:1:opened") == 1
    (row,) = _rows(engine)
    assert row[1:3] == ("sent", 2)
    engine.dispose()


def test_slack_and_email_through_the_outbox_keep_their_secrets(engine, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    with http_receiver("/services/T0/B0/zzsecretzz") as hook, smtp_server() as mail:
        monkeypatch.setenv("LOOKOUT_SMTP_HOST", mail.host)
        monkeypatch.setenv("LOOKOUT_SMTP_PORT", str(mail.port))
        hook.script([502])
        slack = _subscribe(engine, "oncall", secrets.store("oncall", hook.url), "slack")
        with engine.begin() as conn:
            email = int(
                conn.execute(
                    insert(Subscription).values(
                        name="lead",
                        channel=ChannelKind.email,
                        address="lead@tns.example",
                        what="anomalies",
                        role=Role.leadership,
                        created_by="admin",
                        created_at=T0,
                    )
                ).inserted_primary_key[0]
            )
        _queue(engine, slack, ["incident:1:opened"])
        _queue(engine, email, ["incident:1:opened:lead"])
        assert deliver_pending(engine, now=T0) == DeliveryReport(sent=1, retrying=1)
        assert deliver_pending(engine, now=T0 + timedelta(minutes=1)) == DeliveryReport(sent=1)
    assert [r.json for r in hook.requests] == [{"text": "Spam up #0"}] * 2
    assert hook.acknowledged_keys == ["incident:1:opened"]
    assert [m["Subject"] for m in mail.messages] == ["Spam up #0"]
    assert mail.envelopes[0][1] == ["lead@tns.example"]
    assert "HTTP 502" in caplog.text and "zzsecretzz" not in caplog.text
    assert "zzsecretzz" not in str(_rows(engine))
