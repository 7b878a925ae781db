"""Case Explorer: search, filter and page through cases; open a case and an account."""

from __future__ import annotations

import streamlit as st

from analytics.present import exports
from analytics.sources import cases
from ui import auth, data, explorer, filters, widgets

st.title("Case Explorer")
widgets.require_data()
viewer = auth.require("cases")
selection = filters.draw()
if selection is None:
    st.stop()
as_of = data.week_end(selection.week)

left, middle, right = st.columns([3, 2, 2])
with left:
    text = filters.page_text(
        "q", label='Search descriptions (words, "a phrase", -leave out, OR)', max_chars=500
    )
with middle:
    status = filters.page_multiselect(
        "status", {s: filters.humanise(s) for s in cases.STATUSES}, label="Status"
    )
with right:
    sort = filters.page_select(
        "sort",
        {
            "-opened_at": "Newest first",
            "opened_at": "Oldest first",
            "-severity": "Most severe first",
            "status": "Open first",
            "category": "Category",
            "region": "Region",
        },
        label="Sort",
    )
params = {"q": text, "status": ",".join(status), "sort": sort, "page": filters.page_param("page")}
base, notes = cases.parse_case_query(params, selection.shown)
for note in notes:
    st.warning(note)
try:
    found = explorer.context(selection, base, as_of, viewer)
    query = found.query if found else base
    if found:
        info, clear = st.columns([5, 1])
        info.info(found.label, icon=":material/filter_alt:")
        if clear.button("Show all cases", key="cases_clear", width="stretch"):
            explorer.clear_context()
            st.rerun()
    page = data.case_page(query, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

explorer.pager(page)
if page.total == 0:
    st.info("No case matches. Loosen the search or the filters in the sidebar.")
picked = explorer.case_list(page)
st.download_button(
    "Export this page as CSV", exports.to_csv(page.rows),
    file_name=f"lookout-cases-p{page.page}.csv", mime="text/csv", key="cases_export",
    icon=":material/download:", on_click=data.audit, args=(viewer, "export"),
    kwargs={"target": f"case list page {page.page}", "filters": query.filters},
)  # fmt: skip
if picked is not None:
    filters.set_page_param("case", str(picked))
chosen = filters.page_number("case", 0)
if chosen:
    st.divider()
    explorer.case_view(chosen, viewer)
account = filters.page_number("account", 0)
if account:
    st.divider()
    explorer.account_view(account, as_of, viewer)
