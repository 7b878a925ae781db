"""Reports: preview the weekly brief for leadership or product teams, add a note, download it."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from analytics import reports
from analytics.reports import Audience
from ui import auth, data, filters, nav, session, widgets

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Reports")
widgets.require_data()
viewer = auth.require("suppressed")
selection = filters.draw()
if selection is None:
    st.stop()
left, right = st.columns([2, 3])
with left:
    audiences = {"leadership": "Leadership", "product": "Product teams"}
    if not session.may("aggregates"):  # the product role: its brief only
        audiences = {"product": "Product teams"}
    choice = filters.PageState("reports").choice("audience", audiences, label="Audience")
with right:
    note = st.text_area(
        "Your note (opens the brief; plain text)", max_chars=2000, key="reports_note", height=90
    )
audience: Audience = "product" if choice == "product" else "leadership"
week = selection.week
if audience == "product":  # complete weeks only: a running week differs day to day
    week = reports.product_week(selection.week, data.overview().newest)
    if week != selection.week - timedelta(days=selection.week.weekday()):
        st.info(
            f"The product brief covers complete weeks only: this is the week of "
            f"{week:%d %b %Y}, the newest complete one.",
            icon=":material/event_available:",
        )
try:
    brief = data.brief(selection.shown, week, audience, note, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()
if len(audiences) > 1:  # the other audience's brief, meanwhile: switching to it is instant
    other: Audience = "leadership" if audience == "product" else "product"
    other_week = selection.week
    if other == "product":
        other_week = reports.product_week(selection.week, data.overview().newest)
    data.warm_brief(selection.shown, other_week, other, role=viewer.role)
html, markdown = data.brief_files(
    brief, (brief.label, audience, brief.filters, brief.note, brief.as_of, data.data_token())
)
st.caption(f"{brief.title} · {' · '.join(brief.meta())}")
st.caption(brief.audience_line())
if not brief.ignored_filters.is_empty():  # the product brief is always the whole platform
    st.info(
        f"The product brief always covers the whole platform; the sidebar filters "
        f"({'; '.join(brief.meta()[-1].split(': ', 1)[1:])}) are not applied to it.",
        icon=":material/filter_alt_off:",
    )
stem = f"lookout-brief-{brief.label}-{audience}"
one, two, _ = st.columns([1, 1, 2])
one.download_button(
    "Download HTML", html, file_name=f"{stem}.html", mime="text/html", key="reports_html",
    icon=":material/download:", width="stretch", on_click=data.audit,
    args=(viewer, "report_download"), kwargs={"target": f"{stem}.html", "filters": brief.filters},
)  # fmt: skip
two.download_button(
    "Download Markdown", markdown, file_name=f"{stem}.md", mime="text/markdown",
    key="reports_md", icon=":material/download:", width="stretch", on_click=data.audit,
    args=(viewer, "report_download"), kwargs={"target": f"{stem}.md", "filters": brief.filters},
)  # fmt: skip
st.divider()
widgets.brief_preview(brief)
