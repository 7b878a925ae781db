"""Channels and secrets (issue 19) against real servers on loopback: what a Slack-style
webhook, a signed webhook and an email carry; the signature; which failures are retried;
secrets that never leak into an error."""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from analytics.alerts import secrets
from analytics.alerts.channels import (
    DeliveryError,
    message_id,
    send,
    sign,
    verify_signature,
    webhook_body,
)
from analytics.alerts.message import Message
from analytics.core.models import ChannelKind, Subscription
from tests.alert_receivers import _free_port, http_receiver, smtp_server

MESSAGE = Message(
    "incident",
    "Spam cases up 3x",
    "Spam cases: 120 on 3 Mar (expected 40).",
    "<p>Spam cases: <b>120</b> on 3 Mar (expected 40).</p>",
    link="http://lookout.test/anomalies?incident=7",
    fields={"peak": 120, "expected": 40},
)
AT = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
SIGNING_KEY = "k" * 64


@pytest.fixture(autouse=True)
def secrets_file(tmp_path, monkeypatch):
    path = tmp_path / "secrets.toml"
    monkeypatch.setenv("LOOKOUT_SECRETS", str(path))
    return path


def _sub(channel: str, *, ref: str | None = None, address: str | None = None) -> Subscription:
    return Subscription(
        name="oncall", channel=ChannelKind(channel), secret_ref=ref, address=address
    )


# ------------------------------------------------------------------------------ secrets


def test_store_resolve_forget_and_the_file_is_private(secrets_file) -> None:
    awkward = 'https://h.example/a?b="c"\\d\n\té\x7f'
    assert secrets.store("odd name", awkward) == "secrets:odd name"
    assert secrets.store("second", "two") == "secrets:second"
    assert secrets.resolve("secrets:odd name") == awkward
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    assert secrets.forget("odd name") is True
    assert secrets.forget("odd name") is False
    with pytest.raises(secrets.SecretMissing, match=r"secret secrets:odd name is not set"):
        secrets.resolve("secrets:odd name")
    assert secrets.resolve("secrets:second") == "two"
    assert not list(secrets_file.parent.glob(".secrets-*"))  # no temporary file left


def test_concurrent_stores_keep_every_entry() -> None:
    threads = [threading.Thread(target=secrets.store, args=(f"s{i}", f"v{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [secrets.resolve(f"secrets:s{i}") for i in range(8)] == [f"v{i}" for i in range(8)]


def test_bad_references_and_files_say_so_without_the_value(secrets_file) -> None:
    with pytest.raises(secrets.SecretError, match="env:NAME or secrets:NAME"):
        secrets.resolve("https://hooks.example/x")
    secrets_file.write_text('[subscriptions]\nx = "https://hooks.example/T/B/zzsecretzz\n')
    with pytest.raises(secrets.SecretError, match="is not valid TOML") as caught:
        secrets.resolve("secrets:x")
    assert "zzsecretzz" not in str(caught.value)


def test_signing_ref_sits_next_to_the_url() -> None:
    assert secrets.signing_ref("secrets:partner") == "secrets:partner_signing"
    assert secrets.signing_ref("env:HOOK") == "env:HOOK_SIGNING"


# ------------------------------------------------------------------------------ slack


def test_slack_posts_the_text_and_the_link() -> None:
    with http_receiver() as hook:
        ref = secrets.store("oncall", hook.url)
        send(_sub("slack", ref=ref), MESSAGE, key="incident:7:opened", timeout_s=5)
    (got,) = hook.requests
    assert got.path == "/hook" and got.status == 200
    assert got.json == {
        "text": "Spam cases: 120 on 3 Mar (expected 40).\n"
        "<http://lookout.test/anomalies?incident=7|Open in Lookout>"
    }
    assert got.headers["content-type"] == "application/json"
    assert hook.acknowledged_keys == ["incident:7:opened"]


def test_slack_text_cannot_make_a_link_or_a_mention() -> None:
    """A slice value or title with Slack's markup characters reads as typed: no
    ``<!channel>`` mention, no link of the sender's choosing."""
    hostile = replace(MESSAGE, text="Spam <!channel> & <https://evil.example|verify here>")
    with http_receiver() as hook:
        ref = secrets.store("oncall", hook.url)
        send(_sub("slack", ref=ref), hostile, key="incident:8:opened", timeout_s=5)
    (got,) = hook.requests
    assert got.json["text"] == (
        "Spam &lt;!channel&gt; &amp; &lt;https://evil.example|verify here&gt;\n"
        "<http://lookout.test/anomalies?incident=7|Open in Lookout>"
    )


# ------------------------------------------------------------------------------ webhook


def test_webhook_is_signed_and_carries_the_message() -> None:
    with http_receiver() as hook:
        ref = secrets.store("partner", hook.url)
        secrets.store("partner_signing", SIGNING_KEY)
        send(_sub("webhook", ref=ref), MESSAGE, key="incident:7:opened", timeout_s=5, sent_at=AT)
    (got,) = hook.requests
    assert got.json == {
        "kind": "incident",
        "subject": "Spam cases up 3x",
        "text": "Spam cases: 120 on 3 Mar (expected 40).",
        "html": "<p>Spam cases: <b>120</b> on 3 Mar (expected 40).</p>",
        "link": "http://lookout.test/anomalies?incident=7",
        "fields": {"expected": 40, "peak": 120},
        "idempotency_key": "incident:7:opened",
        "sent_at": "2024-03-04T09:30:00Z",
    }
    assert got.body == webhook_body(MESSAGE, key="incident:7:opened", sent_at=AT)
    header = got.headers["x-lookout-signature"]
    assert header.startswith(f"t={int(AT.timestamp())},v1=")
    # The receiver's own check and ours agree; a changed body, key or time fails both.
    assert got.signature_ok(SIGNING_KEY, now=AT.timestamp())
    assert verify_signature(got.body, header, SIGNING_KEY, now=AT)
    tampered = got.body.replace(b"120", b"12")
    assert not verify_signature(tampered, header, SIGNING_KEY, now=AT)
    assert not verify_signature(got.body, header, "another key", now=AT)
    later = datetime(2024, 3, 4, 9, 35, 1, tzinfo=UTC)  # 301 s later
    assert not verify_signature(got.body, header, SIGNING_KEY, now=later)
    assert verify_signature(got.body, header, SIGNING_KEY, now=later, tolerance_s=400)
    assert not verify_signature(got.body, "v1=abc", SIGNING_KEY, now=AT)


def test_sign_matches_a_hand_computed_hmac() -> None:
    import hashlib
    import hmac

    mac = hmac.new(b"key", b"1709544600.{}", hashlib.sha256).hexdigest()
    assert sign(b"{}", "key", at=AT) == f"t=1709544600,v1={mac}"


def test_webhook_without_its_signing_key_fails_for_good_without_the_url() -> None:
    with http_receiver() as hook:
        ref = secrets.store("partner", hook.url)
        with pytest.raises(DeliveryError) as caught:
            send(_sub("webhook", ref=ref), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is False
    assert str(caught.value).startswith("secret secrets:partner_signing is not set")
    assert hook.url not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert hook.requests == []


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (408, True), (404, False)]
)
def test_http_status_decides_whether_to_retry(status: int, retryable: bool) -> None:
    with http_receiver() as hook:
        hook.script([status])
        ref = secrets.store("oncall", hook.url)
        with pytest.raises(DeliveryError) as caught:
            send(_sub("slack", ref=ref), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is retryable
    assert str(caught.value) == f"slack 'oncall': the receiver answered HTTP {status} (error)"
    assert hook.acknowledged_keys == []


def test_a_hanging_receiver_times_out_and_may_be_retried() -> None:
    with http_receiver() as hook:
        hook.script(["hang"])
        ref = secrets.store("oncall", hook.url)
        with pytest.raises(DeliveryError) as caught:
            send(_sub("slack", ref=ref), MESSAGE, key="k1", timeout_s=0.3)
    assert caught.value.retryable is True
    assert str(caught.value) == "slack 'oncall': no answer within 0.3 s"


def test_connection_refused_may_be_retried_and_hides_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/services/T0/B0/zzsecretzz"
    ref = secrets.store("oncall", url)
    with pytest.raises(DeliveryError) as caught:
        send(_sub("slack", ref=ref), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is True
    assert str(caught.value) == "slack 'oncall': could not connect to 127.0.0.1"


def test_a_secret_that_is_not_a_url_fails_for_good(monkeypatch) -> None:
    monkeypatch.setenv("ONCALL_HOOK", "ftp://zzsecretzz")
    with pytest.raises(DeliveryError) as caught:
        send(_sub("slack", ref="env:ONCALL_HOOK"), MESSAGE, key="k1", timeout_s=5)
    assert (caught.value.reason, caught.value.retryable) == (
        "slack 'oncall': its secret is not an http(s) URL",
        False,
    )


# ------------------------------------------------------------------------------ email


@pytest.fixture
def mail(monkeypatch):
    with smtp_server(logins={"lookout-bot": 'p"w\\d'}) as server:
        monkeypatch.setenv("LOOKOUT_SMTP_HOST", server.host)
        monkeypatch.setenv("LOOKOUT_SMTP_PORT", str(server.port))
        monkeypatch.setenv("LOOKOUT_SMTP_FROM", "lookout@tns.example")
        yield server


def test_email_carries_text_and_html_with_a_stable_message_id(mail) -> None:
    sub = _sub("email", address="lead@tns.example")
    send(sub, MESSAGE, key="incident:7:opened", timeout_s=5, sent_at=AT)
    (got,) = mail.messages
    assert mail.envelopes == [("lookout@tns.example", ["lead@tns.example"])]
    assert (got["From"], got["To"], got["Subject"]) == (
        "lookout@tns.example",
        "lead@tns.example",
        "Spam cases up 3x",
    )
    assert got["Message-ID"] == message_id("incident:7:opened", domain="tns.example")
    assert got["X-Lookout-Idempotency-Key"] == "incident:7:opened"
    assert got["Date"] == "Mon, 04 Mar 2024 09:30:00 +0000"
    assert got.get_content_type() == "multipart/alternative"
    text = got.get_body(("plain",))
    html = got.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == (
        "Spam cases: 120 on 3 Mar (expected 40).\n\n"
        "Open in Lookout: http://lookout.test/anomalies?incident=7\n"
    )
    assert (
        html.get_content().replace("\r\n", "\n")
        == "<p>Spam cases: <b>120</b> on 3 Mar (expected 40).</p>\n"
    )
    assert mail.logins == []


def test_email_signs_in_with_the_password_from_the_secrets_file(mail, monkeypatch) -> None:
    monkeypatch.setenv("LOOKOUT_SMTP_USER", "lookout-bot")
    with pytest.raises(DeliveryError) as caught:
        send(_sub("email", address="lead@tns.example"), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is False
    assert "LOOKOUT_SMTP_PASSWORD" in caught.value.reason
    secrets.store("LOOKOUT_SMTP_PASSWORD", 'p"w\\d')
    send(_sub("email", address="lead@tns.example"), MESSAGE, key="k1", timeout_s=5)
    assert mail.logins == ["lookout-bot"] and len(mail.messages) == 1


def test_email_with_a_wrong_password_fails_for_good_without_it(mail, monkeypatch) -> None:
    monkeypatch.setenv("LOOKOUT_SMTP_USER", "lookout-bot")
    monkeypatch.setenv("LOOKOUT_SMTP_PASSWORD", "zzwrongzz")
    with pytest.raises(DeliveryError) as caught:
        send(_sub("email", address="lead@tns.example"), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is False
    assert caught.value.reason.startswith("email 'oncall': the SMTP server answered 535")
    assert "zzwrongzz" not in caught.value.reason
    assert mail.messages == []


def test_email_server_down_may_be_retried(monkeypatch) -> None:
    monkeypatch.setenv("LOOKOUT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LOOKOUT_SMTP_PORT", str(_free_port()))
    with pytest.raises(DeliveryError) as caught:
        send(_sub("email", address="lead@tns.example"), MESSAGE, key="k1", timeout_s=5)
    assert caught.value.retryable is True
    assert caught.value.reason.startswith("email 'oncall': could not talk to 127.0.0.1:")
