"""Who is signed in on this browser tab, bound to the browser that signed in.

A Streamlit session id is enough to take over a session: the browser sends it when
it reconnects, and whoever sends it gets the session's state. So a local sign-in is
not kept in the session alone:

- signing in makes a random token (:func:`start`), kept here by its SHA-256 only,
  with the viewer and an expiry (:data:`TTL`), and sets it in the browser as the
  ``lookout_session`` cookie (SameSite=Strict), then reloads the page;
- every run (:func:`current`) reads the cookie of the connection that asks
  (``st.context.cookies``: the WebSocket's own handshake): a session whose viewer
  does not match the cookie of the connection it is running for, or has none, loses
  its viewer and every per-user key (:func:`clear`). Someone who only knows a session
  id gets the sign-in form;
- signing out ends the token here, so the cookie is worth nothing afterwards.

Identity-provider sessions are bound by Streamlit itself (it refuses to resume a session
for another identity) and re-checked against ``st.user`` on every run; the embedded
demo signs everyone in as the demo associate, so there is nothing to bind.

What remains (README, "Access"): the token lives in this process's memory (a restart
signs everyone out; several server processes need sticky sessions); the cookie is set
by script, so it is not HttpOnly: markup in the data is always shown as text, never run.
Runs without a browser connection (Streamlit's AppTest, bare mode) have no cookie to
check; the binding applies to every run that came over a WebSocket.

Also here: :func:`redact_logs` keeps session ids out of the server's log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta

import streamlit as st

from analytics import access
from analytics.access import Viewer

__all__ = [
    "COOKIE",
    "KEY",
    "TTL",
    "TTL_S",
    "clear",
    "connected",
    "current",
    "end",
    "may",
    "redact_logs",
    "start",
]

#: Where the signed-in :class:`~analytics.access.Viewer` lives in the session.
KEY = "lookout_viewer"
#: The browser cookie that carries a local sign-in.
COOKIE = "lookout_session"
#: How long a local sign-in lasts.
TTL = timedelta(hours=12)
TTL_S = int(TTL.total_seconds())


class _Tokens:
    """Sign-in tokens by SHA-256: the viewer and when the token ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, tuple[Viewer, datetime]] = {}

    def start(self, viewer: Viewer) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._lock:
            self._by_hash = {h: v for h, v in self._by_hash.items() if v[1] > now}
            self._by_hash[_digest(token)] = (viewer, now + TTL)
        return token

    def viewer(self, token: str) -> Viewer | None:
        with self._lock:
            found = self._by_hash.get(_digest(token))
        if found is None or found[1] <= datetime.now(UTC):
            return None
        return found[0]

    def end(self, token: str) -> None:
        with self._lock:
            self._by_hash.pop(_digest(token), None)


_TOKENS = _Tokens()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start(viewer: Viewer) -> str:
    """A new sign-in token for ``viewer`` (to be set as the :data:`COOKIE`)."""
    return _TOKENS.start(viewer)


def end(token: str | None = None) -> None:
    """End the sign-in of ``token`` (default: this connection's cookie)."""
    token = token if token is not None else _cookie()
    if token:
        _TOKENS.end(token)


def connected() -> bool:
    """True when this run came over a browser's WebSocket (it has request headers)."""
    try:
        return bool(st.context.headers)
    except Exception:  # noqa: BLE001 - no client context: bare mode or AppTest
        return False


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no client context
        return None
    return value if isinstance(value, str) and value else None


def clear() -> None:
    """Forget everything this session knows about its user: the viewer, the cases
    viewed and revealed, filters, widget values."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current() -> Viewer | None:
    """The viewer of this session, if it is still theirs to use; ``None`` otherwise
    (and then every per-user key is gone)."""
    stored = st.session_state.get(KEY)
    stored = stored if isinstance(stored, Viewer) else None
    if stored is not None and not _still_bound(stored):
        clear()
        stored = None
    if stored is None and connected():
        token = _cookie()
        found = _TOKENS.viewer(token) if token else None
        if found is not None:
            st.session_state[KEY] = stored = found
    return stored


def may(capability: str) -> bool:
    """Whether the viewer of this session holds ``capability`` (no viewer: no)."""
    found = st.session_state.get(KEY)
    return isinstance(found, Viewer) and access.allowed(found.role, capability)


def _still_bound(viewer: Viewer) -> bool:
    if viewer.via == "oidc":
        user = st.user
        return bool(user.is_logged_in) and str(user.get("email") or user.get("sub")) == viewer.name
    if viewer.via != "local" or not connected():
        return True
    token = _cookie()
    return token is not None and _TOKENS.viewer(token) == viewer


_SESSION_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class _RedactSessionIds(logging.Filter):
    """Rewrites anything shaped like a session id (a UUID) in a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SESSION_ID.search(message):
            record.msg = _SESSION_ID.sub(_masked, message)
            record.args = None
        return True


def _masked(match: re.Match[str]) -> str:
    return f"<session {hashlib.sha256(match.group(0).encode()).hexdigest()[:8]}>"


def redact_logs() -> None:
    """Keep session ids out of the server log: every Streamlit logger (each has its own
    handler and does not propagate) rewrites them as ``<session 1a2b3c4d>``, a short
    digest, so lines about one session can still be matched. Idempotent; called on
    every run, so loggers made later are covered too."""
    names = [n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in _LOGGERS]
    for name in ["streamlit", *names]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSessionIds) for f in logger.filters):
            logger.addFilter(_RedactSessionIds())


_LOGGERS = frozenset({"streamlit", "tornado", "uvicorn", "websockets"})
