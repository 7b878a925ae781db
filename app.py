"""Lookout: the Streamlit entry point and navigation.

Each page draws the global filters itself (``ui.filters.draw``): Streamlit may run a
page of the ``pages/`` folder on its own, without this script, on a server's first request.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Lookout", page_icon=":material/travel_explore:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/trends.py", title="Weekly trends", icon=":material/trending_up:"),
    st.Page("pages/anomalies.py", title="Anomalies", icon=":material/notifications_active:"),
    st.Page("pages/emerging.py", title="Emerging threats", icon=":material/new_releases:"),
    st.Page("pages/cases.py", title="Case Explorer", icon=":material/manage_search:"),
    st.Page("pages/reports.py", title="Reports", icon=":material/summarize:"),
]
st.navigation(pages).run()
