"""Sending one message over one channel: Slack-compatible webhooks, signed webhooks, email.

:func:`send` delivers a :class:`~analytics.alerts.message.Message` to a subscription
or raises :class:`DeliveryError` with a one-line reason (never a secret: no URL, no
key, no password) and whether trying again later may help.

- ``slack``: ``POST {"text": text + link}`` to the URL at the subscription's
  ``secret_ref``.
- ``webhook``: ``POST`` the message as JSON with ``idempotency_key`` and ``sent_at``
  added, and the headers ``X-Lookout-Idempotency-Key: <key>`` and
  ``X-Lookout-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
  HMAC-SHA256(signing key, ``f"{t}.{body}"``); the signing key lives at
  :func:`analytics.alerts.secrets.signing_ref` of the URL's reference. A receiver checks
  it with :func:`verify_signature` (and drops a key it has already seen).
- ``email``: SMTP to ``LOOKOUT_SMTP_HOST``:``LOOKOUT_SMTP_PORT`` (default
  ``localhost:25``), from ``LOOKOUT_SMTP_FROM`` (default ``lookout@localhost``),
  STARTTLS when ``LOOKOUT_SMTP_STARTTLS=1``, signed in as ``LOOKOUT_SMTP_USER`` when set
  with the password from the environment variable ``LOOKOUT_SMTP_PASSWORD`` or, when
  that is not set, the secrets file's entry ``LOOKOUT_SMTP_PASSWORD``; plain text and
  HTML (multipart/alternative), ``Message-ID`` derived from the idempotency key.

Retryable: no answer (timeout), connection refused, HTTP 5xx, 408 and 429, SMTP 4xx.
Not retryable: other HTTP 4xx and 3xx, SMTP 5xx, a missing secret, a bad address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol
from urllib.parse import urlsplit

import requests

from analytics.alerts import secrets
from analytics.alerts.message import Message

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "DeliveryError",
    "SubscriptionLike",
    "message_id",
    "send",
    "sign",
    "verify_signature",
    "webhook_body",
]

IDEMPOTENCY_HEADER = "X-Lookout-Idempotency-Key"
SIGNATURE_HEADER = "X-Lookout-Signature"
_USER_AGENT = "Lookout-alerts/1"


class SubscriptionLike(Protocol):
    """What :func:`send` reads of a subscription (:class:`analytics.core.models.Subscription`)."""

    @property
    def name(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def secret_ref(self) -> str | None: ...
    @property
    def address(self) -> str | None: ...


class DeliveryError(Exception):
    """A message was not delivered: ``reason`` (one line, no secret) and whether a later
    attempt may succeed."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class _HidePaths(logging.Filter):
    """Hide URL paths and queries in urllib3's log records: a Slack-style webhook's
    secret is its path, and urllib3 logs each request's path at DEBUG level.

    >>> record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, "", 0,
    ...     '%s "%s %s"', ("http://h:80", "POST", "/services/T0/B0/x?y=1"), None)
    >>> _ = _HidePaths().filter(record); record.getMessage()
    'http://h:80 "POST /[hidden]"'
    """

    _URL = re.compile(r"(\w+://[^/\s\"']+)/[^\s\"']*")
    _PATH = re.compile(r"(^|[\s\"'(=])/[^\s\"')]*")

    def filter(self, record: logging.LogRecord) -> bool:
        text = self._URL.sub(r"\1/[hidden]", record.getMessage())
        record.msg, record.args = self._PATH.sub(r"\1/[hidden]", text), None
        return True


for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry",
              "urllib3.poolmanager"):  # fmt: skip
    logging.getLogger(_name).addFilter(_HidePaths())


def _unix(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def sign(body: bytes, key: str, *, at: datetime) -> str:
    """The ``X-Lookout-Signature`` header value for ``body`` signed at ``at``.

    >>> sign(b'{"a":1}', "k", at=datetime(2024, 1, 1, tzinfo=UTC))
    't=1704067200,v1=cf1a58e232e306734f7ac9f55321dc858d5e0048b764e1993be991aed6764df0'
    """
    stamp = _unix(at)
    mac = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return f"t={stamp},v1={mac.hexdigest()}"


def verify_signature(
    body: bytes, header: str, key: str, *, now: datetime | None = None, tolerance_s: float = 300
) -> bool:
    """Whether ``header`` (``t=<unix>,v1=<hex>``) signs ``body`` under ``key`` and was
    made within ``tolerance_s`` of ``now`` (default: the clock), for receivers.

    >>> at = datetime(2024, 1, 1, tzinfo=UTC)
    >>> verify_signature(b"{}", sign(b"{}", "k", at=at), "k", now=at)
    True
    >>> verify_signature(b"{ }", sign(b"{}", "k", at=at), "k", now=at)
    False
    """
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    current = _unix(now) if now is not None else datetime.now(UTC).timestamp()
    if abs(current - int(stamp)) > tolerance_s:
        return False
    mac = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), given)


def webhook_body(message: Message, *, key: str, sent_at: datetime) -> bytes:
    """The signed webhook's JSON body: the message with ``idempotency_key`` and
    ``sent_at`` (keys sorted, compact).

    >>> m = Message("test", "Hello", "Hello", "<p>Hello</p>")
    >>> webhook_body(m, key="test:1", sent_at=datetime(2024, 1, 1))[:60]
    b'{"fields":{},"html":"<p>Hello</p>","idempotency_key":"test:1'
    """
    data = json.loads(message.to_json())
    data["idempotency_key"] = key
    utc = sent_at.astimezone(UTC) if sent_at.tzinfo else sent_at
    data["sent_at"] = utc.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def message_id(key: str, *, domain: str = "lookout.invalid") -> str:
    """The email ``Message-ID`` of the message with idempotency ``key``: the same key,
    the same id, so a mail system can drop a repeat.

    >>> message_id("incident:7:opened")
    '<lookout.5d66bfc7154d386bd1d30b10d7744bad@lookout.invalid>'
    """
    return f"<lookout.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _one_line(text: str, *, hide: tuple[str, ...] = ()) -> str:
    for secret in hide:
        if secret:
            text = text.replace(secret, "[hidden]")
    return " ".join(text.split())[:300]


def _secret(ref: str | None, sub: SubscriptionLike) -> str:
    if not ref:
        raise DeliveryError(f"{sub.channel} subscription {sub.name!r} has no secret_ref", False)
    try:
        return secrets.resolve(ref)
    except secrets.SecretError as exc:
        raise DeliveryError(str(exc), False) from None


def _post(
    sub: SubscriptionLike, url: str, body: bytes, headers: dict[str, str], *, timeout_s: float
) -> None:
    where = f"{sub.channel} {sub.name!r}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{where}: its secret is not an http(s) URL", False)
    headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT, **headers}
    try:
        answer = requests.post(
            url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False
        )
    except requests.Timeout:
        raise DeliveryError(f"{where}: no answer within {timeout_s:g} s", True) from None
    except requests.ConnectionError:
        raise DeliveryError(f"{where}: could not connect to {parts.hostname}", True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}", True) from None
    code = answer.status_code
    if 200 <= code < 300:
        return
    said = _one_line(
        answer.text[:200], hide=(url, parts.query, parts.path if len(parts.path) > 1 else "")
    )
    reason = f"{where}: the receiver answered HTTP {code}" + (f" ({said})" if said else "")
    raise DeliveryError(reason, code >= 500 or code in (408, 429))


def slack_text(text: str) -> str:
    """``text`` with the three characters Slack reads as markup escaped (``&``, ``<``,
    ``>``), so a slice or a title holding them reads as typed and cannot make a link or
    a mention.

    >>> slack_text("Q&A <@here> <https://evil.example|click>")
    'Q&amp;A &lt;@here&gt; &lt;https://evil.example|click&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _send_slack(sub: SubscriptionLike, message: Message, *, key: str, timeout_s: float) -> None:
    url = _secret(sub.secret_ref, sub)
    link = slack_text(message.link or "").replace("|", "%7C")
    text = slack_text(message.text) + (f"\n<{link}|Open in Lookout>" if message.link else "")
    body = json.dumps({"text": text}).encode()
    _post(sub, url, body, {IDEMPOTENCY_HEADER: key}, timeout_s=timeout_s)


def _send_webhook(
    sub: SubscriptionLike, message: Message, *, key: str, timeout_s: float, sent_at: datetime
) -> None:
    url = _secret(sub.secret_ref, sub)
    signing_key = _secret(secrets.signing_ref(sub.secret_ref or ""), sub)
    body = webhook_body(message, key=key, sent_at=sent_at)
    headers = {IDEMPOTENCY_HEADER: key, SIGNATURE_HEADER: sign(body, signing_key, at=sent_at)}
    _post(sub, url, body, headers, timeout_s=timeout_s)


def _email(sub: SubscriptionLike, message: Message, *, key: str, sent_at: datetime) -> EmailMessage:
    sender = os.environ.get("LOOKOUT_SMTP_FROM") or "lookout@localhost"
    domain = sender.rpartition("@")[2] or "lookout.invalid"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = sub.address or ""
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC))
    mail["Message-ID"] = message_id(key, domain=domain)
    mail[IDEMPOTENCY_HEADER] = key
    text = message.text + (f"\n\nOpen in Lookout: {message.link}" if message.link else "")
    mail.set_content(text)
    mail.add_alternative(message.html, subtype="html")
    return mail


def _smtp_password() -> str:
    value = os.environ.get("LOOKOUT_SMTP_PASSWORD")
    if value:
        return value
    try:
        return secrets.resolve("secrets:LOOKOUT_SMTP_PASSWORD")
    except secrets.SecretError:
        raise DeliveryError(
            "LOOKOUT_SMTP_USER is set but no password: set LOOKOUT_SMTP_PASSWORD in the "
            "environment or in the secrets file",
            False,
        ) from None


def _send_email(
    sub: SubscriptionLike, message: Message, *, key: str, timeout_s: float, sent_at: datetime
) -> None:
    where = f"email {sub.name!r}"
    if not sub.address or "@" not in sub.address:
        raise DeliveryError(f"{where}: no recipient address", False)
    host = os.environ.get("LOOKOUT_SMTP_HOST") or "localhost"
    port_text = os.environ.get("LOOKOUT_SMTP_PORT") or "25"
    if not port_text.isdigit():
        raise DeliveryError(f"LOOKOUT_SMTP_PORT is a number, not {port_text[:20]!r}", False)
    user = os.environ.get("LOOKOUT_SMTP_USER")
    password = _smtp_password() if user else ""
    mail = _email(sub, message, key=key, sent_at=sent_at)
    try:
        with smtplib.SMTP(host, int(port_text), timeout=timeout_s) as smtp:
            if os.environ.get("LOOKOUT_SMTP_STARTTLS") == "1":
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        retry = bool(codes) and all(400 <= c < 500 for c in codes)
        raise DeliveryError(f"{where}: the server refused the recipient ({codes})", retry) from None
    except smtplib.SMTPResponseException as exc:
        said = _one_line(
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        reason = f"{where}: the SMTP server answered {exc.smtp_code}" + (
            f" ({said})" if said else ""
        )
        raise DeliveryError(reason[:400], 400 <= exc.smtp_code < 500) from None
    except TimeoutError:
        raise DeliveryError(
            f"{where}: no answer from {host} within {timeout_s:g} s", True
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"{where}: could not talk to {host}:{port_text} ({type(exc).__name__})", True
        ) from None


def send(
    sub: SubscriptionLike,
    message: Message,
    *,
    key: str,
    timeout_s: float,
    sent_at: datetime | None = None,
) -> None:
    """Deliver ``message`` to ``sub`` with idempotency ``key``, each network step
    waiting at most ``timeout_s``; ``sent_at`` (default: the clock, UTC) is the moment
    written in a webhook's signature and an email's date. Raises :class:`DeliveryError`.
    """
    moment = sent_at or datetime.now(UTC)
    channel = str(getattr(sub.channel, "value", sub.channel))
    if channel == "slack":
        _send_slack(sub, message, key=key, timeout_s=timeout_s)
    elif channel == "webhook":
        _send_webhook(sub, message, key=key, timeout_s=timeout_s, sent_at=moment)
    elif channel == "email":
        _send_email(sub, message, key=key, timeout_s=timeout_s, sent_at=moment)
    else:
        raise DeliveryError(f"unknown channel {channel!r} for {sub.name!r}", False)
