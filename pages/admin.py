"""Admin: who may sign in, who is told of what (subscriptions, deliveries that failed),
and the audit trail of who saw, revealed or exported what."""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

from analytics.present import exports
from analytics.present.formatting import humanise
from analytics.views import admin
from ui import alerts_admin, auth, data, nav, session, widgets

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

USER_COLUMNS = {
    "name": "Name", "role": "Role", "sign_in": "Signs in with",
    "failed_logins": st.column_config.NumberColumn("Failed sign-ins"),
    "locked_until": st.column_config.DatetimeColumn("Locked until", format="D MMM YYYY HH:mm"),
    "created_at": st.column_config.DatetimeColumn("Added", format="D MMM YYYY HH:mm"),
}  # fmt: skip
AUDIT_COLUMNS = {
    "ts": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY HH:mm:ss"),
    "user_name": "User", "role": "Role", "action": "Action", "target": "What",
    "filters": "Filters",
}  # fmt: skip

st.title("Admin")
widgets.require_data()
viewer = auth.require("audit")

st.subheader("Users")
st.caption("Add, remove and change roles with `python -m analytics users …` on the server.")
try:
    users = exports.neutralise(admin.readable(data.users(role=viewer.role)))
    st.dataframe(
        users, hide_index=True, width="stretch", placeholder="–", column_config=USER_COLUMNS
    )
except Exception as exc:  # noqa: BLE001 - a banner, never a traceback
    st.error(f"Cannot read the users ({type(exc).__name__}).")

if session.may("subscribe"):
    alerts_admin.subscriptions_section(viewer)
    alerts_admin.failures_section(viewer)

st.subheader("Audit log")
left, middle, right = st.columns([2, 2, 3])
who = left.text_input("User contains", max_chars=64, key="admin_user")
action = middle.selectbox(
    "Action",
    admin.ACTION_CHOICES,
    format_func=lambda a: humanise(a) if a else "All",
    key="admin_action",
)  # fmt: skip
today = datetime.now().date()
span = right.date_input(
    "Between", (today - timedelta(days=30), today), format="YYYY-MM-DD", key="admin_span"
)
days = (span[0], span[1]) if isinstance(span, tuple) and len(span) == 2 else None
try:
    log = data.audit_log(role=viewer.role, user=who, action=action, days=days)
except Exception as exc:  # noqa: BLE001
    st.error(f"Cannot read the audit log ({type(exc).__name__}).")
    st.stop()
st.caption(f"{log.height:,} entries (newest first, at most 5,000). Audit rows cannot be changed.")
st.dataframe(
    exports.neutralise(admin.readable(log)), hide_index=True,
    width="stretch", height=480, placeholder="–", column_config=AUDIT_COLUMNS,
)  # fmt: skip
st.download_button(
    "Export as CSV", exports.to_csv(log), file_name="lookout-audit.csv", mime="text/csv",
    key="admin_export", icon=":material/download:", on_click=data.audit,
    args=(viewer, "export"), kwargs={"target": "audit log"},
)  # fmt: skip
