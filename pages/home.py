"""Overview: this week for the signed-in role, the things that need attention first."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from analytics.present.formatting import format_moment, humanise
from analytics.views import overview
from ui import auth, data, filters, nav, session
from ui import escalations as escalation_list
from ui import story as week_story

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

label = data.database_label()
state, notice = data.readiness()  # first: it also starts or notes the copy through a map
try:
    info = data.overview()
except Exception as exc:  # noqa: BLE001 - shown as a banner, never a traceback
    st.title("Lookout")
    st.error(
        f"Cannot read the database at `{label}` ({type(exc).__name__}). "
        "Check that the server is running and that LOOKOUT_DATABASE_URL is right."
    )
    st.stop()

has_data = any(info.counts.get(t) for t in ("accounts", "events", "cases"))
if not has_data:
    st.title("Lookout")
    st.info(
        notice
        if state == "empty"
        else "The database is empty. Load the demo with `python -m analytics seed` "
        "or import your data with `python -m analytics import TABLE FILE`."
    )
elif notice:
    st.warning(notice, icon=":material/database:")
viewer = auth.require("suppressed")
week_story.show(filters.draw(), role=viewer.role)
if has_data and session.may("aggregates"):
    escalation_list.recent(role=viewer.role)

if info.newest:
    age = overview.freshness(info.newest, datetime.now(UTC).replace(tzinfo=None))
    when = format_moment(info.newest)
    if age.startswith("dated"):  # after now: said as a warning
        st.warning(f"Freshness: the newest record ({when}) is {age}.", icon=":material/schedule:")
    else:
        st.caption(f"Freshness: the newest record is {age} ({when}).")


def _moment(ts: datetime | None) -> str:
    return format_moment(ts) if ts else "–"


with st.expander("About the data", expanded=False):
    items = list(overview.shown_counts(info, role=viewer.role).items())
    if not items:
        st.caption("Row counts are shown to roles that see unsuppressed aggregates.")
    for first in range(0, len(items), 4):  # four to a row: 1,000,000 fits at 1280 px
        for col, (table, n) in zip(st.columns(4), items[first : first + 4], strict=False):
            col.metric(humanise(table), f"{n:,}")
    st.caption(
        f"Events from {_moment(info.first_event)} to {_moment(info.last_event)}; cases opened "
        f"from {_moment(info.first_case)} to {_moment(info.last_case)}."
    )
    if info.counts.get("cases") and session.may("cases"):
        st.page_link(
            "pages/cases.py", label="Browse and search every case", icon=":material/manage_search:"
        )
    st.code(label, language=None)
    if info.source:
        # A count of rows, shown as the table counts are: to roles that see them.
        held = info.source.quarantined if session.may("aggregates") else 0
        copied = _moment(datetime.fromisoformat(info.source.copied_at))
        st.caption(
            f"Copied from the team's database through the source map "
            f"`{info.source.map_file}`; last copy {copied}"
            + (
                f", which held {held:,} rows back in quarantine with their reasons."
                if held
                else "."
            )
        )
    if info.demo:
        st.caption(
            f"Demo data: scale {info.demo.scale}, seed {info.demo.seed}, "
            f"{info.demo.days} days ending {info.demo.end}."
        )
