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
   argon2 hashes, lockout after repeated failures (:mod:`analytics.access`).

Every page starts with :func:`require`, which signs in if needed and stops the page
with a message when the role may not use it.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from analytics import access, db
from analytics.access import Viewer
from analytics.db import Role
from ui import data
from ui.widgets import plain

__all__ = ["KEY", "demo_mode", "require", "sign_out", "viewer"]

#: Where the signed-in :class:`~analytics.access.Viewer` lives in the session.
KEY = "lookout_viewer"
DEMO_USER = "demo associate"


def demo_mode() -> bool:
    """True for the embedded demo: no database URL configured, and demo data in it."""
    if os.environ.get("LOOKOUT_DATABASE_URL"):
        return False
    try:
        return db.get_meta(data.writer(), "demo") is not None
    except Exception:  # noqa: BLE001 - an unreadable database is not a demo
        return False


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file: no identity provider
        return False


def _oidc_viewer() -> Viewer:
    user: Any = st.user
    if not user.is_logged_in:
        st.title("Lookout")
        st.write("Sign in with your organisation's account.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    email = str(user.get("email") or user.get("sub") or "")
    claim = os.environ.get("LOOKOUT_ROLE_CLAIM", "")
    role: Role | None = None
    if claim and user.get(claim):
        values = user.get(claim)
        names = values if isinstance(values, list) else [values]
        role = next((Role(v) for v in names if v in Role.__members__), None)
    if role is None:
        role = access.known_role(data.writer(), email)
    if role is None:
        st.error(f"{email or 'This account'} has no Lookout role. Ask an admin to add you.")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    found = Viewer(name=email, role=role, via="oidc")
    access.audit(data.writer(), found, "login", target="oidc")
    return found


def _local_viewer() -> Viewer:
    st.title("Lookout")
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
            st.session_state[KEY] = found
            st.rerun()
    st.caption("Accounts are made with `python -m analytics users add NAME --role ROLE`.")
    st.stop()


def viewer() -> Viewer:
    """The person signed in, signing in first if needed (the page stops meanwhile)."""
    stored = st.session_state.get(KEY)
    if isinstance(stored, Viewer):
        return stored
    found: Viewer
    if _oidc_configured():
        found = _oidc_viewer()
    elif demo_mode():
        found = Viewer(name=DEMO_USER, role=Role.associate, via="demo")
        access.audit(data.writer(), found, "login", target="demo")
    else:
        found = _local_viewer()
    st.session_state[KEY] = found
    return found


def sign_out() -> None:
    """Forget the session's viewer (and leave the identity provider's session)."""
    found = st.session_state.pop(KEY, None)
    if isinstance(found, Viewer) and found.via == "oidc":
        st.logout()


def require(capability: str) -> Viewer:
    """Sign in if needed; stop the page unless the role holds ``capability``. Shows the
    demo banner and the sign-out button."""
    found = viewer()
    if found.via == "demo":
        st.info(
            "Demo: signed in automatically as a demo associate on the embedded demo data. "
            "With LOOKOUT_DATABASE_URL set, Lookout asks who you are.",
            icon=":material/science:",
        )
    with st.sidebar:
        st.caption(f"Signed in as **{plain(found.name)}** ({found.role.value})")
        if found.via != "demo":
            st.button("Sign out", on_click=sign_out, key="sign_out")
    if not access.allowed(found.role, capability):
        st.error(f"Your role ({found.role.value}) cannot open this page.")
        st.stop()
    return found
