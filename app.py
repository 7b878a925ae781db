"""Lookout: the Streamlit entry point, sign-in and navigation.

The pages a person sees depend on their role (:mod:`analytics.access`). Each page also
checks the role itself (``ui.auth.require``): Streamlit may run a page of the
``pages/`` folder on its own, without this script, on a server's first request.
"""

from __future__ import annotations

import streamlit as st

from analytics import access
from ui import auth, data

st.set_page_config(page_title="Lookout", page_icon=":material/travel_explore:", layout="wide")

# (file, title, icon, what the role must hold to see it)
PAGES = [
    ("pages/home.py", "Overview", "home", "suppressed"),
    ("pages/trends.py", "Weekly trends", "trending_up", "aggregates"),
    ("pages/anomalies.py", "Anomalies", "notifications_active", "cases"),
    ("pages/emerging.py", "Emerging threats", "new_releases", "cases"),
    ("pages/cases.py", "Case Explorer", "manage_search", "cases"),
    ("pages/reports.py", "Reports", "summarize", "suppressed"),
    ("pages/admin.py", "Admin", "admin_panel_settings", "audit"),
]


def _page(path: str, title: str, icon: str) -> st.Page:
    return st.Page(path, title=title, icon=f":material/{icon}:", default=path == PAGES[0][0])


if data.readiness()[0] == "ok":
    role = auth.viewer().role
    shown = [_page(*p[:3]) for p in PAGES if access.allowed(role, p[3])]
else:  # every page explains a database that is down or empty, and asks no one to sign in
    shown = [_page(*p[:3]) for p in PAGES]
st.navigation(shown).run()
