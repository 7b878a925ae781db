"""Signing in, and what each page asks of the person signed in.

Three ways in, tried in this order:

1. **Identity provider** (production): when ``.streamlit/secrets.toml`` has an
   ``[auth]`` section, Streamlit's built-in OIDC (``st.login``). The role comes from the
   claim named by ``LOOKOUT_ROLE_CLAIM`` (e.g. ``roles``) when set, else from the users
   table by email; an unknown person is refused.
2. **The embedded demo**: when ``LOOKOUT_DATABASE_URL`` is not set (the default SQLite
   file) and it holds the demo data, the app signs in as a demo associate and says so on
   every page. Never when the URL points anywhere else.
3. **Local accounts** (``python -m analytics users add``): a name and password form,
   argon2 hashes, lockout after repeated failures (:mod:`analytics.access`). A sign-in
   is bound to the browser by a cookie (:mod:`ui.session`), never to the session id.

``app.py`` asks :func:`signed_in` (who, without drawing anything), registers every
page, and draws :func:`sign_in_page` in place of the page asked for, so the URL (page
and filters) survives the sign-in. Every page starts with :func:`require`, which stops
the page with a message when the role may not use it. :func:`sign_out` forgets every
per-user key of the session.
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import streamlit as st

from analytics import access
from analytics.access import Viewer
from analytics.core import database
from analytics.core.models import Role
from ui import data, nav, session
from ui.session import KEY
from ui.widgets import plain

__all__ = ["KEY", "demo_mode", "require", "sign_in_page", "sign_out", "signed_in", "viewer"]

DEMO_USER = "demo associate"


def demo_mode() -> bool:
    """True for the embedded demo: no database URL configured, and demo data in it."""
    if os.environ.get("LOOKOUT_DATABASE_URL"):
        return False
    try:
        return database.get_meta(data.writer(), "demo") is not None
    except Exception:  # noqa: BLE001 - an unreadable database is not a demo
        return False


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file: no identity provider
        return False


def _oidc_role(user: Any) -> Role | None:
    email = str(user.get("email") or user.get("sub") or "")
    claim = os.environ.get("LOOKOUT_ROLE_CLAIM", "")
    if claim and user.get(claim):
        values = user.get(claim)
        names = values if isinstance(values, list) else [values]
        found = next((Role(v) for v in names if v in Role.__members__), None)
        if found is not None:
            return found
    return access.known_role(data.writer(), email)


def _oidc_viewer() -> Viewer | None:
    user: Any = st.user
    if not user.is_logged_in:
        return None
    role = _oidc_role(user)
    if role is None:
        return None
    found = Viewer(name=str(user.get("email") or user.get("sub") or ""), role=role, via="oidc")
    access.audit(data.writer(), found, "login", target="oidc")
    return found


def signed_in() -> Viewer | None:
    """The person signed in on this tab, or ``None``; draws nothing. The embedded demo
    and a person already signed in at the identity provider are signed in here."""
    found = session.current()
    if found is not None:
        return found
    if _oidc_configured():
        found = _oidc_viewer()
    elif demo_mode():
        found = Viewer(name=DEMO_USER, role=Role.associate, via="demo")
        access.audit(data.writer(), found, "login", target="demo")
    if found is not None:
        st.session_state[KEY] = found
    return found


def sign_in_page() -> NoReturn:
    """The sign-in form (or the identity provider's button), then stop the run."""
    st.title("Lookout")
    if _oidc_configured():
        user: Any = st.user
        if user.is_logged_in:
            email = str(user.get("email") or user.get("sub") or "")
            st.error(f"{email or 'This account'} has no Lookout role. Ask an admin to add you.")
            st.button("Sign out", on_click=st.logout)
        else:
            st.write("Sign in with your organisation's account.")
            st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    with st.form("sign_in"):
        st.markdown("**Sign in**")
        name = st.text_input("Name", max_chars=200, key="sign_in_name")
        password = st.text_input("Password", type="password", max_chars=200, key="sign_in_pw")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            found = access.sign_in(data.writer(), name, password)
        except access.SignInFailed as exc:
            st.error(f"Cannot sign in: {exc}.")
        except Exception as exc:  # noqa: BLE001 - a banner, never a traceback
            st.error(
                f"Cannot reach the database at {data.database_label()} "
                f"({type(exc).__name__}) to check the password."
            )
        else:
            _start(found)
    st.caption("Accounts are made with `python -m analytics users add NAME --role ROLE`.")
    st.stop()


def _start(found: Viewer) -> NoReturn:
    """Bind the sign-in to this browser: set the cookie, then reload the page asked for
    (its URL, filters included, is kept), which connects again carrying the cookie."""
    session.clear()
    if not session.connected():  # no browser (AppTest): nothing to bind to
        st.session_state[KEY] = found
        st.rerun()
    token = session.start(found)
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    cookie = f"{session.COOKIE}={token}; Path=/; SameSite=Strict; Max-Age={session.TTL_S}{secure}"
    st.html(
        f"<script>document.cookie = {json.dumps(cookie)}; window.location.reload();</script>",
        unsafe_allow_javascript=True,
    )
    st.info("Signed in. Opening the page…")
    st.stop()


def viewer() -> Viewer:
    """The person signed in, signing in first if needed (the page stops meanwhile)."""
    found = signed_in()
    return found if found is not None else sign_in_page()


def sign_out() -> None:
    """End the sign-in (its cookie is worth nothing afterwards) and forget every key of
    the session: viewer, cases viewed and revealed, filters. Leaves the identity
    provider's session too."""
    found = st.session_state.get(KEY)
    session.end()
    session.clear()
    if isinstance(found, Viewer) and found.via == "oidc":
        st.logout()


def require(capability: str) -> Viewer:
    """Sign in if needed; stop the page unless the role holds ``capability``. Shows the
    demo banner and the sign-out button."""
    session.redact_logs()
    found = viewer()
    if found.via == "demo":
        st.info(
            "Demo: signed in automatically as a demo associate on the embedded demo data. "
            "With LOOKOUT_DATABASE_URL set, Lookout asks who you are.",
            icon=":material/science:",
        )
    nav.menu(found)
    with st.sidebar:
        st.caption(f"Signed in as **{plain(found.name)}** ({found.role.value})")
        if found.via != "demo":
            st.button("Sign out", on_click=sign_out, key="sign_out")
    if not access.allowed(found.role, capability):
        st.error(f"Your role ({found.role.value}) cannot open this page.")
        st.stop()
    return found
