"""The "Escalate to leadership" form (issue 19, item 5): on an incident (Anomalies), an
emerging topic or a ring (Emerging threats), for the roles that may escalate."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import streamlit as st

from analytics import access
from analytics.access import Viewer
from analytics.alerts import escalations
from ui import data

__all__ = ["URGENCIES", "form", "page_link"]

#: The urgencies, in the words the form shows.
URGENCIES = {"now": "Act now", "today": "Today", "fyi": "For your information"}


def page_link(fallback: str) -> str:
    """The page's own address with its query string (the week, the filters, what is
    selected), absolute when the browser's address is known, else relative to
    ``fallback`` (the page's path)."""
    query = urlencode(st.query_params.to_dict())
    try:
        base = str(st.context.url or "").split("?")[0]
    except Exception:  # noqa: BLE001 - no browser (a test, a script): a relative link
        base = ""
    base = base or fallback
    return f"{base}?{query}" if query else base


def form(
    key: str,
    *,
    viewer: Viewer,
    subject_kind: str,
    subject_ref: str,
    title: str,
    evidence: Mapping[str, str],
    page: str,
) -> None:
    """An expander with the form: a sentence or two and an urgency, sent with
    ``evidence`` (the numbers) and a link to this page; nothing for a role that may not
    escalate. ``key`` names the form (one per subject on a page)."""
    if not access.allowed(viewer.role, "escalate"):
        return
    with st.expander("Escalate to leadership"), st.form(key):
        message = st.text_area(
            "What is happening and why it matters (a sentence or two)",
            max_chars=escalations.MESSAGE_MAX,
            height=90,
        )
        urgency = st.radio(
            "Urgency", list(URGENCIES), format_func=URGENCIES.__getitem__, horizontal=True
        )
        if not st.form_submit_button("Escalate to leadership", type="primary"):
            return
        try:
            escalations.escalate(
                data.writer(), viewer=viewer, subject_kind=subject_kind, subject_ref=subject_ref,
                title=title, message=message, urgency=str(urgency), evidence=dict(evidence),
                link=page_link(page),
            )  # fmt: skip
        except escalations.InvalidEscalation as exc:
            st.error(f"Not sent: {exc}.")
        except access.AccessDenied as exc:
            st.error(str(exc))
        else:
            st.toast(f"Escalated to leadership ({URGENCIES[str(urgency)].lower()}).")
