"""Lookout: the Streamlit entry point, sign-in and navigation.

The pages a person sees in the menu (``ui.nav.menu``, drawn by every page) depend on
their role (:mod:`analytics.access`).
Each page also checks the role itself (``ui.auth.require``): a page opened by its URL,
or run by Streamlit from the ``pages/`` folder on a server's first request, says so
when it is not for the role. The automatic menu of ``pages/`` file names is off
(``client.showSidebarNavigation``), so no one ever sees raw file names.
"""

from __future__ import annotations

import streamlit as st

from ui import auth, data, nav, session

nav.configure_page(gate=False)  # app.py asks for the sign-in itself, below

session.redact_logs()
ready = data.readiness()[0] == "ok"
found = auth.signed_in() if ready else None
page = st.navigation(
    nav.pages(found, ready=ready),
    position="sidebar" if found is not None or not ready else "hidden",
)
if ready and found is None:
    auth.sign_in_page()  # in place of the page asked for: its URL is kept
page.run()
