"""The app's pages and the menu each person sees.

Every page is registered with ``st.navigation`` whoever is signed in, so a link (its
page and its filters) survives the sign-in; the menu (:func:`menu`) lists only the
pages the role may open. A page opened by its URL checks the role itself
(``ui.auth.require``) and says when it is not for the role.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from analytics import access
from analytics.access import Viewer

#: The tab's icon, a file shipped with the app: a Material icon name would make the
#: browser fetch it from a font host, which fails on an offline network.
ICON = Path(__file__).resolve().parent / "assets" / "lookout.png"


def configure_page(*, gate: bool = True) -> None:
    """The tab's title and icon and the wide layout. Run by ``app.py`` and again as the
    first statement of every page: on a server's first request Streamlit runs the page
    asked for from ``pages/`` without ``app.py``, which left that first page in the
    narrow centred layout; called any later (after the title, or the database check
    of a cold server) the page is drawn narrow until the call is reached.

    ``gate`` (every page; not ``app.py``, which asks itself): when no one is signed in
    on a ready database, the sign-in form instead of the page, before anything of the
    page is drawn. Only a page run without ``app.py`` (that first request) gets here
    signed out: its title no longer shows above the form."""
    st.set_page_config(page_title="Lookout", page_icon=str(ICON), layout="wide")
    if gate:
        from ui import auth, data, session  # here: ui.auth imports this module

        # Someone signed in on this tab (every run through app.py): nothing more to check.
        signed_out = session.current() is None
        if signed_out and data.readiness()[0] == "ok" and auth.signed_in() is None:
            auth.sign_in_page()


__all__ = ["MENU_KEY", "PAGES", "in_menu", "menu", "pages"]

#: (file, title, icon, what the role must hold to see it in the menu)
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("pages/home.py", "Overview", "home", "suppressed"),
    ("pages/trends.py", "Weekly trends", "trending_up", "aggregates"),
    ("pages/anomalies.py", "Anomalies", "notifications_active", "cases"),
    ("pages/emerging.py", "Emerging threats", "new_releases", "cases"),
    ("pages/cases.py", "Case Explorer", "manage_search", "cases"),
    ("pages/reports.py", "Reports", "summarize", "suppressed"),
    ("pages/events.py", "Known events", "event_note", "annotate"),
    ("pages/admin.py", "Admin", "admin_panel_settings", "audit"),
)


def in_menu(viewer: Viewer | None, capability: str, *, ready: bool) -> bool:
    """Whether a page needing ``capability`` is listed in ``viewer``'s menu: when the
    role may open it; every page when the database is not ``ready`` (each page explains
    what is wrong, and nobody is asked to sign in); none when no one is signed in.

    >>> in_menu(Viewer("pat", "product"), "cases", ready=True)
    False
    >>> in_menu(None, "cases", ready=False)
    True
    """
    if not ready:
        return True
    return viewer is not None and access.allowed(viewer.role, capability)


#: The sidebar container of the menu (its CSS class is ``st-key-lookout_menu``).
MENU_KEY = "lookout_menu"


def menu(viewer: Viewer | None, *, ready: bool = True) -> None:
    """The sidebar menu: a link to each page ``viewer``'s role may open. Drawn by every
    page (``ui.auth.require``), so it is there even when Streamlit runs a page on its
    own; Streamlit's automatic menus are off (``client.showSidebarNavigation``)."""
    with st.sidebar.container(key=MENU_KEY):
        for path, title, icon, capability in PAGES:
            if in_menu(viewer, capability, ready=ready):
                try:
                    st.page_link(path, label=title, icon=f":material/{icon}:")
                except StreamlitPageNotFoundError:  # a page file run as its own app: no menu
                    return


def pages(viewer: Viewer | None, *, ready: bool) -> list[st.Page]:
    """Every page, visible in the menu when :func:`in_menu` says so."""
    return [
        st.Page(
            path,
            title=title,
            icon=f":material/{icon}:",
            default=path == PAGES[0][0],
            visibility="visible" if in_menu(viewer, capability, ready=ready) else "hidden",
        )
        for path, title, icon, capability in PAGES
    ]
