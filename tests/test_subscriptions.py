"""Subscriptions (analytics.alerts.subscriptions): add, list, remove and test on SQLite and
PostgreSQL, secrets kept out of the database, validation, the matching rules, queueing
for incidents and digests, and the ``subscriptions`` command line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from analytics.access.roles import AccessDenied, Viewer
from analytics.alerts import secrets, subscriptions
from analytics.alerts.incidents import Change
from analytics.alerts.message import Message
from analytics.alerts.subscriptions import SubscriptionError
from analytics.core.models import (
    AuditLog,
    Delivery,
    IncidentState,
    Role,
    StoredIncident,
    Subscription,
)
from tests.alert_receivers import http_receiver

HOOK = "https://hooks.example.test/services/T000/B000/zzSECRETzz"
NOW = datetime(2026, 11, 18, 9, 0)
BASE = "http://lookout.example:8501"


@pytest.fixture(autouse=True)
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "secrets.toml"
    monkeypatch.setenv("LOOKOUT_SECRETS", str(path))
    return path


def _everything(engine: Engine, table: type) -> str:
    """Every column of every row of ``table`` as text."""
    with engine.connect() as conn:
        rows = conn.execute(select(*table.__table__.columns)).all()  # type: ignore[attr-defined]
    return json.dumps([list(r) for r in rows], default=str)


def _audit(engine: Engine, action: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditLog.user_name, AuditLog.role, AuditLog.target).where(
                AuditLog.action == action
            )
        ).all()
    return [tuple(r) for r in rows]


# --------------------------------------------------------------------------- add, list, remove


def test_add_list_remove_keep_the_url_out_of_the_database(engine: Engine, secrets_file) -> None:
    added = subscriptions.add(
        engine, name="oncall", channel="slack", target=HOOK, what=["anomalies"],
        min_severity="medium", direction="up", role="leadership",
        slices="category=spam,region=FL", created_by="ops",
    )  # fmt: skip
    assert added.signing_key is None
    assert added.row["secret_ref"] == "secrets:oncall"
    assert secrets.resolve("secrets:oncall") == HOOK
    assert "zzSECRETzz" not in _everything(engine, Subscription)
    assert "zzSECRETzz" not in _everything(engine, AuditLog)
    listed = subscriptions.list_subscriptions(engine)
    assert listed.select("name", "channel", "what", "min_severity", "direction", "role").rows() == [
        ("oncall", "slack", "anomalies", "medium", "up", "leadership")
    ]
    assert listed["slices"].to_list() == ["category=spam,region=FL"]
    assert "zzSECRETzz" not in listed.write_csv()
    assert _audit(engine, "subscription_add") == [("ops (command line)", "admin", "oncall")]

    subscriptions.remove(engine, "oncall", by=Viewer("ada", Role.admin))
    assert subscriptions.list_subscriptions(engine).is_empty()
    assert _audit(engine, "subscription_remove") == [("ada", "admin", "oncall")]
    with pytest.raises(secrets.SecretMissing):
        secrets.resolve("secrets:oncall")
    with pytest.raises(SubscriptionError, match="no subscription 'oncall'"):
        subscriptions.remove(engine, "oncall")


def test_webhook_gets_a_signing_key_next_to_its_url(engine: Engine, secrets_file) -> None:
    added = subscriptions.add(
        engine, name="partner", channel="webhook", target=HOOK, role="associate"
    )
    assert added.signing_key is not None and len(added.signing_key) == 64
    assert added.signing_ref == "secrets:partner_signing"
    assert secrets.resolve(secrets.signing_ref(added.row["secret_ref"])) == added.signing_key
    text = _everything(engine, Subscription) + _everything(engine, AuditLog)
    assert added.signing_key not in text and "zzSECRETzz" not in text
    subscriptions.remove(engine, "partner")
    assert "partner" not in secrets_file.read_text()


def test_env_reference_and_email_are_kept_as_given(engine: Engine, secrets_file) -> None:
    env = subscriptions.add(engine, name="env-hook", channel="slack", target="env:HOOK_URL",
                            role="associate")  # fmt: skip
    assert env.row["secret_ref"] == "env:HOOK_URL"
    mail = subscriptions.add(engine, name="leads-mail", channel="email",
                             target="leads@example.org", role="leadership", digest_hours=24,
                             timezone="Europe/Paris")  # fmt: skip
    assert (mail.row["address"], mail.row["secret_ref"]) == ("leads@example.org", None)
    assert (mail.row["digest_hours"], mail.row["timezone"]) == (24, "Europe/Paris")
    assert not secrets_file.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"what": ["anomalies", "weather"]}, "unknown --what 'weather': choose anomalies,"),
        ({"min_severity": "urgent"}, "unknown severity 'urgent': choose low, medium, high"),
        ({"direction": "sideways"}, "unknown direction 'sideways': choose up, down, both"),
        ({"role": "root"}, "unknown role 'root': choose admin, leadership, associate, product"),
        ({"target": "ftp://files.example/x"}, "a slack target is an http(s) URL or env:NAME"),
        ({"target": "just-text"}, "a slack target is an http(s) URL or env:NAME, not a bare"),
        ({"channel": "email", "target": "not-an-address"}, "not an email address"),
        ({"channel": "pager"}, "unknown channel 'pager': choose slack, webhook or email"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"digest_hours": 0}, "--digest-hours is 1 to 168, not 0"),
        ({"slices": "colour=red"}, "unknown slice dimension 'colour'"),
        ({"slices": "category"}, "a slice filter is dimension=value"),
        ({"name": "bad name!"}, "a subscription's name is 1 to 48 letters"),
        ({"role": "product", "what": ["rings"]}, "the product role may not receive rings"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_nothing_written(
    sqlite_url: str, changes: dict[str, object], message: str, secrets_file
) -> None:
    from analytics.core.database import make_engine
    from analytics.core.models import init_db

    engine = make_engine(sqlite_url)
    init_db(engine)
    args: dict[str, object] = {
        "name": "x", "channel": "slack", "target": HOOK, "role": "associate", **changes,
    }  # fmt: skip
    with pytest.raises(SubscriptionError, match="^" + re.escape(message)) as info:
        subscriptions.add(engine, **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and "zzSECRETzz" not in str(info.value)
    assert subscriptions.list_subscriptions(engine).is_empty()
    assert not secrets_file.exists()
    engine.dispose()


def test_duplicate_name_is_refused_and_keeps_the_first_secret(engine: Engine) -> None:
    subscriptions.add(engine, name="oncall", channel="slack", target=HOOK, role="associate")
    with pytest.raises(SubscriptionError, match="a subscription 'oncall' exists already"):
        subscriptions.add(engine, name="oncall", channel="slack",
                          target="https://other.example/hook", role="associate")  # fmt: skip
    assert secrets.resolve("secrets:oncall") == HOOK


def test_a_viewer_without_subscribe_may_not_add(engine: Engine) -> None:
    with pytest.raises(AccessDenied):
        subscriptions.add(engine, name="x", channel="slack", target=HOOK, role="associate",
                          created_by=Viewer("ann", Role.associate))  # fmt: skip


# --------------------------------------------------------------------------- matching


def _sub(**changes: object) -> dict[str, object]:
    sub: dict[str, object] = {
        "what": "anomalies", "min_severity": "low", "direction": "both", "slices": None,
        "role": "associate",
    }  # fmt: skip
    sub.update(changes)
    return sub


_SPAM_FL = {"severity": "medium", "direction": "up", "slice_key": "category=spam|region=FL",
            "peak_value": 40.0}  # fmt: skip


@pytest.mark.parametrize(
    ("sub", "incident", "expected"),
    [
        (_sub(), _SPAM_FL, True),
        (_sub(what="emerging,rings"), _SPAM_FL, False),
        (_sub(what="emerging,anomalies"), _SPAM_FL, True),
        (_sub(min_severity="medium"), _SPAM_FL, True),
        (_sub(min_severity="high"), _SPAM_FL, False),
        (_sub(direction="up"), _SPAM_FL, True),
        (_sub(direction="down"), _SPAM_FL, False),
        (_sub(slices="category=spam"), _SPAM_FL, True),
        (_sub(slices="category=fraud,category=spam"), _SPAM_FL, True),
        (_sub(slices="category=spam,region=CA"), _SPAM_FL, False),
        (_sub(slices="platform=ios"), _SPAM_FL, False),  # the slice does not fix platform
        (_sub(slices="category=spam"), {**_SPAM_FL, "slice_key": "all"}, False),
        (_sub(role="product"), _SPAM_FL, True),
        (_sub(role="product"), {**_SPAM_FL, "peak_value": 9.0}, False),  # a small cell
        (_sub(), {**_SPAM_FL, "peak_value": 9.0}, True),
        # what was scanned: an incident's source (cases when unsaid)
        (_sub(slices="series=cases"), _SPAM_FL, True),
        (_sub(slices="series=detections"), _SPAM_FL, False),
        (_sub(slices="series=detections"), {**_SPAM_FL, "source": "detections"}, True),
        (_sub(slices="series=events,category=spam"), {**_SPAM_FL, "source": "events"}, True),
    ],
)
def test_matches(sub: dict[str, object], incident: dict[str, object], expected: bool) -> None:
    assert subscriptions.matches(sub, incident) is expected


# --------------------------------------------------------------------------- queueing


def _store_incident(engine: Engine, **changes: object) -> int:
    start = datetime(2026, 11, 16)
    values: dict[str, object] = {
        "key": "cases|daily|cases_daily|up|category=spam|region=FL",
        "source": "cases", "freq": "daily", "metric": "cases_daily", "direction": "up",
        "slice_key": "category=spam|region=FL", "start": start,
        "end": datetime(2026, 11, 18), "peak_ts": datetime(2026, 11, 17), "peak_value": 120.0,
        "expected": 40.2, "score": 8.3, "severity": "high", "state": IncidentState.open,
        "assignee": "ann@example.org", "first_seen": NOW, "last_seen": NOW, "updated_at": NOW,
        "version": 1,
    }  # fmt: skip
    values.update(changes)
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(StoredIncident).values(**values).returning(StoredIncident.id)
            ).scalar_one()
        )


def _outbox(engine: Engine) -> list[tuple[str, int, Message]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.idempotency_key, Delivery.subscription_id, Delivery.payload).order_by(
                Delivery.id
            )
        ).all()
    return [(k, s, Message.from_json(p)) for k, s, p in rows]


def test_enqueue_for_queues_once_per_matching_subscription(engine: Engine) -> None:
    lead = subscriptions.add(engine, name="lead", channel="slack", target=HOOK,
                             role="leadership").row  # fmt: skip
    prod = subscriptions.add(engine, name="prod", channel="slack", target="env:PROD_HOOK",
                             role="product").row  # fmt: skip
    subscriptions.add(engine, name="fraud-only", channel="slack", target=HOOK + "2",
                      role="associate", slices="category=fraud")  # fmt: skip
    subscriptions.add(engine, name="daily-digest", channel="email", target="t@example.org",
                      role="leadership", digest_hours=24)  # fmt: skip
    incident = _store_incident(engine)
    for _ in range(2):  # a rerun queues nothing more
        with engine.begin() as conn:
            queued = subscriptions.enqueue_for(
                conn, Change("opened", incident, {}), now=NOW, base_url=BASE
            )
    assert queued == 0
    rows = _outbox(engine)
    assert [(k, s) for k, s, _ in rows] == [
        (f"incident:{incident}:opened:v1:2026-11-16T00:00:{lead['id']}", lead["id"]),
        (f"incident:{incident}:opened:v1:2026-11-16T00:00:{prod['id']}", prod["id"]),
    ]
    lead_message, prod_message = rows[0][2], rows[1][2]
    assert lead_message.subject == (
        "High: Spam · FL cases rose to 120 on 17 Nov against 40.2 expected, 3.0 times as many"
    )
    assert lead_message.link is not None and lead_message.link.startswith(f"{BASE}/anomalies?")
    # the product subscription's message: no count, no case link, no personal data
    whole = prod_message.to_json()
    for banned in ("120", "40.2", "ann@example.org", "/cases?", "/anomalies?"):
        assert banned not in whole
    with engine.begin() as conn:
        assert subscriptions.enqueue_for(conn, Change("updated", incident, {}), now=NOW,
                                         base_url=BASE) == 0  # fmt: skip
        assert subscriptions.enqueue_for(conn, Change("reopened", incident, {}), now=NOW,
                                         base_url=BASE) == 2  # fmt: skip


def test_product_subscription_never_hears_of_a_small_cell(engine: Engine) -> None:
    subscriptions.add(engine, name="prod", channel="slack", target=HOOK, role="product")
    small = _store_incident(engine, peak_value=6.0, expected=1.2, slice_key="region=WY",
                            key="cases|daily|cases_daily|up|region=WY")  # fmt: skip
    with engine.begin() as conn:
        assert subscriptions.enqueue_for(conn, Change("opened", small, {}), now=NOW,
                                         base_url=BASE) == 0  # fmt: skip
    assert _outbox(engine) == []


def test_enqueue_digests_groups_new_incidents_when_due(engine: Engine) -> None:
    created = NOW - timedelta(hours=30)
    sub = subscriptions.add(engine, name="digest", channel="email", target="t@example.org",
                            role="leadership", digest_hours=24, now=created).row  # fmt: skip
    _store_incident(engine)
    _store_incident(engine, key="events|daily|events_daily|up|kind=login_failed",
                    source="events", slice_key="kind=login_failed", severity="low", score=1.6,
                    expected=None)  # fmt: skip
    _store_incident(engine, key="old", first_seen=created - timedelta(hours=1))  # before
    with engine.begin() as conn:
        assert subscriptions.enqueue_digests(conn, now=NOW, base_url=BASE) == 1
    with engine.begin() as conn:  # not due again until 24 h later; then nothing new
        assert subscriptions.enqueue_digests(conn, now=NOW + timedelta(hours=1)) == 0
        assert subscriptions.enqueue_digests(conn, now=NOW + timedelta(hours=25)) == 0
    [(key, sid, message)] = _outbox(engine)
    assert (key, sid) == (f"digest:{sub['id']}:2026-11-17T03:00:00", sub["id"])
    assert message.subject == "Lookout digest: 2 incidents, 1 high, since 17 Nov 2026 03:00 UTC"
    assert [line[:20] for line in message.text.splitlines()[1:]] == [
        "- High: Spam · FL ca",
        "- Low: Login failed ",
    ]


# --------------------------------------------------------------------------- test


def test_test_delivers_over_slack_and_signed_webhook(engine: Engine) -> None:
    with http_receiver() as hook:
        subscriptions.add(engine, name="slack", channel="slack", target=hook.url,
                          role="associate")  # fmt: skip
        added = subscriptions.add(engine, name="signed", channel="webhook", target=hook.url,
                                  role="associate")  # fmt: skip
        subscriptions.test(engine, "slack", base_url=BASE, now=NOW, timeout_s=10)
        subscriptions.test(engine, "signed", base_url=BASE, now=NOW, timeout_s=10)
        assert len(hook.requests) == 2
        slack, signed = hook.requests
        assert "the subscription “slack” is set up" in slack.json["text"]
        assert signed.json["kind"] == "test" and signed.json["link"] == BASE
        assert added.signing_key is not None and signed.signature_ok(added.signing_key)


def test_test_reports_a_failed_delivery_in_one_line(engine: Engine) -> None:
    with http_receiver() as hook:
        subscriptions.add(engine, name="down", channel="slack", target=hook.url,
                          role="associate")  # fmt: skip
        hook.script([500])
        with pytest.raises(SubscriptionError, match="^the test message to 'down' was not") as e:
            subscriptions.test(engine, "down", base_url=BASE, now=NOW, timeout_s=10)
        assert "\n" not in str(e.value) and "127.0.0.1" not in str(e.value)
    with engine.connect() as conn:  # not left to be retried later
        assert [str(s.value) for (s,) in conn.execute(select(Delivery.state)).all()] == ["failed"]


def test_test_of_an_unknown_subscription(engine: Engine) -> None:
    with pytest.raises(SubscriptionError, match="no subscription 'nope'"):
        subscriptions.test(engine, "nope", base_url=BASE, now=NOW)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    from analytics.core.database import make_engine
    from analytics.core.models import init_db

    monkeypatch.setenv("LOOKOUT_DATABASE_URL", sqlite_url)
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield engine
    engine.dispose()


def _run(*args: str) -> tuple[int, str, str]:
    from analytics.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_add_list_test_remove(cli_db: Engine, secrets_file: Path) -> None:
    with http_receiver() as hook:
        code, out, err = _run("subscriptions", "add", "partner", "--webhook", hook.url,
                              "--what", "anomalies", "--what", "emerging", "--min-severity",
                              "medium", "--direction", "up", "--role", "associate")  # fmt: skip
        assert (code, err) == (0, "")
        first, second = out.splitlines()
        assert first == (
            "added 'partner': webhook to secrets:partner, anomalies,emerging at medium severity "
            "or above, up, for associate, each at once"
        )
        key = second.rsplit(" ", 1)[1]
        assert secrets.resolve("secrets:partner_signing") == key
        code, out, _ = _run("subscriptions", "list")
        assert (code, out) == (
            0,
            "partner\twebhook\tsecrets:partner\tanomalies,emerging\tmedium+\tup\tassociate\t"
            "every slice\tat once\n",
        )
        assert hook.url not in out and key not in out
        code, out, _ = _run("subscriptions", "test", "partner", "--base-url", BASE)
        assert (code, out) == (0, "sent a test message to 'partner'\n")
        assert hook.requests[0].signature_ok(key)
        hook.script([500])
        code, out, err = _run("subscriptions", "test", "partner")
        assert code == 1 and out == ""
        assert err.startswith("error: the test message to 'partner' was not delivered: ")
        assert len(err.splitlines()) == 1 and hook.url not in err
    assert hook.url not in _everything(cli_db, Subscription) + _everything(cli_db, Delivery)
    code, out, _ = _run("subscriptions", "remove", "partner")
    assert (code, out) == (0, "removed 'partner'\n")
    assert _run("subscriptions", "list")[1].startswith("no subscriptions yet")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x"], "give exactly one of --webhook URL, --slack URL or --email ADDRESS"),
        (["add", "x", "--slack", HOOK, "--email", "a@b.org"], "give exactly one of"),
        (["add", "x", "--slack", HOOK, "--what", "weather"], "unknown --what 'weather'"),
        (["add", "x", "--slack", HOOK, "--role", "root"], "unknown role 'root'"),
        (["add", "x", "--slack", HOOK, "--timezone", "Nowhere/Town"], "unknown time zone"),
        (["add", "x", "--slack", "ftp://x.example/zzSECRETzz"], "a slack target is an http(s)"),
        (["add", "x", "--email", "nobody"], "not an email address: 'nobody'"),
        (["add", "x", "--slack", HOOK, "--digest-hours", "0"], "--digest-hours is 1 to 168"),
        (["remove", "nope"], "no subscription 'nope'"),
        (["test", "nope"], "no subscription 'nope'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(cli_db: Engine, args: list[str], message: str) -> None:
    code, out, err = _run("subscriptions", *args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and len(err.splitlines()) == 1
    assert "zzSECRETzz" not in err and "Traceback" not in err
