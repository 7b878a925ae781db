"""Real receivers on loopback for the escalation tests (issue 19): an HTTP receiver for
Slack-compatible and signed webhooks, and an SMTP server (aiosmtpd).

HTTP::

    with http_receiver() as hook:
        hook.script([500, 200])          # answers, one per request; then 200 for ever
        ...send to hook.url...
        hook.requests                    # every request: .headers, .body, .json, .key
        hook.acknowledged_keys           # idempotency keys answered 2xx, each once
        hook.acknowledged_count(key)     # how many times that key was answered 2xx
        hook.wait_for_requests(1)        # block (safety timeout) until one has arrived

``script`` items are an HTTP status (``200``, ``500``, ``429`` ...) or ``"hang"``: the
receiver reads the request, then answers nothing until the receiver closes (or
``hook.release()``), so the sender's read times out. Like a careful receiver, it
dedupes by the ``X-Lookout-Idempotency-Key`` header: a key it already acknowledged is
answered 200 again but counted as a repeat (``hook.repeats``) and not acknowledged
twice. Signatures are checked by the receiver's own code (:meth:`Received.signature_ok`),
written apart from :mod:`analytics.alerts.channels` on purpose.

SMTP::

    with smtp_server() as mail:          # or smtp_server(logins={"bot": "pw"})
        ...send to mail.host, mail.port...
        mail.messages                    # email.message.EmailMessage, parsed
        mail.envelopes                   # (mail_from, rcpt_tos) per message
        mail.logins                      # user names that authenticated
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "HttpReceiver",
    "MailServer",
    "Received",
    "http_receiver",
    "smtp_server",
]

#: A generous safety net for waits in tests (never an assertion on time).
SAFETY_S = 30.0
KEY_HEADER = "X-Lookout-Idempotency-Key"
SIGNATURE_HEADER = "X-Lookout-Signature"


@dataclass(frozen=True)
class Received:
    """One request the receiver read (headers' names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # what it answered; None: it hung

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def key(self) -> str | None:
        """The idempotency key header, if any."""
        return self.headers.get(KEY_HEADER.lower())

    def signature_ok(self, signing_key: str, *, now: float | None = None) -> bool:
        """Whether ``X-Lookout-Signature: t=<unix>,v1=<hex>`` is HMAC-SHA256 of
        ``f"{t}.{body}"`` under ``signing_key``, made within 5 minutes of ``now``."""
        header = self.headers.get(SIGNATURE_HEADER.lower(), "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
            return False
        stamp = int(parts["t"])
        if abs((time.time() if now is None else now) - stamp) > 300:
            return False
        mac = hmac.new(signing_key.encode(), f"{stamp}.".encode() + self.body, hashlib.sha256)
        return hmac.compare_digest(mac.hexdigest(), parts["v1"])


@dataclass
class HttpReceiver:
    """What :func:`http_receiver` yields (see the module's docstring)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    acknowledged_keys: list[str] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    _script: list[int | str] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)
    _pending: list[Received] = field(default_factory=list)  # hanging, not answered yet

    def script(self, responses: Sequence[int | str]) -> None:
        """Answer the next requests with these (a status or ``"hang"``), then 200."""
        with self._lock:
            self._script = list(responses)

    def release(self) -> None:
        """Let every hanging request end (without an answer)."""
        self._released.set()

    def acknowledged_count(self, key: str) -> int:
        """How many times ``key`` was answered 2xx (first time and repeats)."""
        with self._lock:
            return self.acknowledged_keys.count(key) + self.repeats.count(key)

    def wait_for_requests(self, count: int, timeout_s: float = SAFETY_S) -> None:
        """Block until ``count`` requests have arrived (raises after ``timeout_s``)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._all) >= count, timeout_s):
                raise TimeoutError(f"{len(self._all)} of {count} requests arrived")

    def wait_for_answered(self, count: int, timeout_s: float = SAFETY_S) -> None:
        """Block until ``count`` requests are in :attr:`requests` (answered, or released
        after hanging); raises after ``timeout_s``."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise TimeoutError(f"{len(self.requests)} of {count} requests answered")

    # --- server side
    @property
    def _all(self) -> list[Received]:
        return self.requests + self._pending

    def _next_answer(self) -> int | str:
        with self._lock:
            return self._script.pop(0) if self._script else 200

    def _record(self, received: Received, *, pending: bool = False) -> None:
        with self._lock:
            if pending:  # in the same hold of the lock: always in exactly one of the lists
                self._pending.remove(received)
            if received.status is not None and 200 <= received.status < 300 and received.key:
                if received.key in self.acknowledged_keys:
                    self.repeats.append(received.key)
                else:
                    self.acknowledged_keys.append(received.key)
            self.requests.append(received)
            self._lock.notify_all()

    def _arrived(self, received: Received) -> None:
        with self._lock:
            self._pending.append(received)
            self._lock.notify_all()


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = receiver._next_answer()
            if answer == "hang":
                hung = Received("POST", self.path, headers, body, None)
                receiver._arrived(hung)
                receiver._released.wait(SAFETY_S)
                receiver._record(hung, pending=True)
                self.close_connection = True
                return
            status = int(answer)
            # Recorded before the answer goes out: a sender that has its answer finds its
            # request in ``requests`` (recorded after, a test could look too early).
            receiver._record(Received("POST", self.path, headers, body, status))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            reply = b"ok" if status < 300 else b"error"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Handler


@contextmanager
def http_receiver(path: str = "/hook") -> Iterator[HttpReceiver]:
    """An HTTP receiver on a free loopback port, in a thread; ``.url`` ends in ``path``."""
    receiver = HttpReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
        thread.join(SAFETY_S)


@dataclass
class MailServer:
    """What :func:`smtp_server` yields."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.messages.append(parsed)
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(logins: dict[str, str] | None = None) -> Iterator[MailServer]:
    """An SMTP server (aiosmtpd) on a free loopback port. With ``logins``, AUTH
    PLAIN/LOGIN is offered without TLS and these user/password pairs are accepted."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    server = MailServer(host="127.0.0.1", port=0)

    def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword) and logins is not None:
            user, password = data.login.decode(), data.password.decode()
            if logins.get(user) == password:
                server.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    extra: dict[str, Any] = {}
    if logins is not None:
        extra = {"authenticator": authenticator, "auth_require_tls": False}
    for attempt in range(5):
        server.port = _free_port()
        controller = Controller(_Handler(server), hostname="127.0.0.1", port=server.port, **extra)
        try:
            controller.start()
            break
        except Exception:  # noqa: BLE001 - the port was taken meanwhile: another
            if attempt == 4:
                raise
    try:
        yield server
    finally:
        controller.stop()
