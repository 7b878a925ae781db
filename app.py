"""Lookout: the Streamlit entry point and navigation."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Lookout", page_icon=":material/travel_explore:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
]
st.navigation(pages).run()
