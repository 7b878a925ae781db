"""Case Explorer: search, filter and page through cases; open a case beside the list and
an account above it."""

from __future__ import annotations

import streamlit as st

from analytics.present import exports
from analytics.present.formatting import humanise
from analytics.views import cases
from ui import auth, data, explorer, filters, nav, widgets

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Case Explorer")
widgets.require_data()
viewer = auth.require("cases")
selection = filters.draw()
if selection is None:
    st.stop()
as_of = data.week_end(selection.week)
state = explorer.CASES

left, middle, right = st.columns([3, 2, 2])
with left:
    text = state.text(
        "q", label='Search descriptions (words, "a phrase", -leave out, OR)', max_chars=500
    )
    if note := cases.search_note():
        st.caption(note)
with middle:
    statuses = {s: humanise(s) for s in cases.status_choices()}
    status = state.multiselect("status", statuses, label="Status")
with right:
    sort = state.select("sort", cases.SORTS, label="Sort")
params = {"q": text, "status": ",".join(status), "sort": sort}
params |= {k: state.param(k) for k in ("page", "account", *cases.CONTEXT_KEYS)}
try:
    found = data.explorer_query(params, selection.shown, selection.filters, as_of, role=viewer.role)
    explorer.context(found)
    page = data.case_page(found, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

account = state.number("account", 0)
if account:
    with st.expander(f"Account {account}", expanded=True):
        explorer.account_view(account, as_of, viewer)
listed, opened = explorer.split()
with listed:
    explorer.pager(page)
    if page.total == 0:
        st.info("No case matches. Loosen the search or the filters in the sidebar.")
    picked = explorer.case_list(page, found)
    st.download_button(
        "Export this page as CSV", exports.to_csv(page.rows),
        file_name=f"lookout-cases-p{page.page}.csv", mime="text/csv", key="cases_export",
        icon=":material/download:", on_click=data.audit, args=(viewer, "export"),
        kwargs={"target": f"case list page {page.page}", "filters": found.query.filters},
    )  # fmt: skip
if picked is not None:
    state.set("case", str(picked))
chosen = state.number("case", 0)
with opened:
    if chosen:
        explorer.case_view(chosen, viewer)
    else:
        st.info("Select a case in the list to read it here.", icon=":material/arrow_back:")
