"""The Escalations list on the Overview page: what associates sent to leadership."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import streamlit as st

from analytics.access.audit import utc_now
from analytics.alerts import escalations
from analytics.core.models import Role
from analytics.present.formatting import format_moment
from ui import data
from ui.widgets import plain

__all__ = ["recent"]

#: How far back the list goes.
RECENT_DAYS = 14
_URGENCY = {
    "now": ":red-badge[Act now]",
    "today": ":orange-badge[Today]",
    "fyi": ":gray-badge[For your information]",
}


@st.cache_data(ttl=15, max_entries=8, show_spinner=False)
def _escalations(url: str, role: Role) -> pl.DataFrame:
    return escalations.list_escalations(data.engine(), role=role, limit=20)


def recent(*, role: Role) -> None:
    """The escalations of the last :data:`RECENT_DAYS` days, newest first, each with its
    urgency, subject, who sent it and when, the message, the numbers and the link; no
    section when there is none."""
    try:
        found = _escalations(data.database_label(), role)
    except Exception as exc:  # noqa: BLE001 - a banner, never a traceback
        st.error(f"Cannot read the escalations ({type(exc).__name__}).")
        return
    since = utc_now() - timedelta(days=RECENT_DAYS)
    found = found.filter(pl.col("created_at") >= since)
    if found.is_empty():
        return
    st.subheader("Escalations")
    st.caption(f"What associates escalated to leadership in the last {RECENT_DAYS} days.")
    for row in found.iter_rows(named=True):
        with st.container(border=True):
            subject = escalations.SUBJECTS.get(row["subject_kind"], "Escalation")
            st.markdown(
                f"{_URGENCY.get(row['urgency'], '')} **{subject}** · "
                f"{plain(row['title'] or row['subject_ref'])} · by {plain(row['user_name'])}, "
                f"{format_moment(row['created_at'])}"
            )
            st.text(row["message"])
            numbers = json.loads(row["evidence"] or "{}")
            if numbers:
                st.caption(" · ".join(plain(f"{k}: {v}") for k, v in numbers.items()))
            link = row["link"] or ""
            if link.startswith(("http://", "https://", "/")):
                st.markdown(f"[Open the evidence]({link.replace(')', '%29')})")
