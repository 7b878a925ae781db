"""Emerging threats: new topics in case narratives, and rings of linked accounts."""

from __future__ import annotations

import streamlit as st

from analytics.core.filters import Filters
from analytics.present import detector_charts
from analytics.views import emerging
from ui import auth, data, escalate, explorer, filters, nav, widgets
from ui import emerging as view

nav.configure_page()  # first, before anything is drawn (see ui.nav.configure_page)

st.title("Emerging threats")
widgets.require_data()
viewer = auth.require("cases")
selection = filters.draw()
st.caption(
    "Case descriptions of the last 90 days (personal data masked) grouped into topics, each "
    "named by the phrase its cases use most; a topic is emerging when its last 7 days grew "
    "significantly over its own past (a count test allowing for how much topics vary week "
    "to week, false discoveries controlled across all topics), by at least 3 times with at "
    "least 5 cases, and it is new vocabulary or sits in no real category. A topic is "
    "flagged once, on the first day it emerges. Rings are accounts linked by shared devices "
    "or IP addresses."
)
as_of = data.week_end(selection.week if selection else None)
try:
    topics = data.emerging(selection.filters if selection else Filters(), as_of, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()

new, again = topics.counts()
a, b, c, d = st.columns(4)
a.metric(
    "Cases read", f"{topics.cases.height:,}", help=f"Opened in the 90 days before {as_of:%d %b %Y}"
)
b.metric("Topics", f"{topics.clusters.height:,}")
c.metric("New topics emerging", f"{new:,}", help="Under one case a week was expected")
d.metric(
    "Growing again", f"{again:,}",
    help="Topics with a past that grew significantly in the last 7 days",
)  # fmt: skip
if topics.clusters.is_empty():
    st.info("No case narratives match these filters in the 90 days before this week's end.")
    st.stop()

st.markdown("**Topics, emerging first** (select one to see its story and its cases)")
picked = view.topics_table(topics)
left, right = st.columns([3, 2])
with right:
    chosen = view.selected_topic(topics, picked)
    mapped = st.plotly_chart(
        detector_charts.cluster_map(
            topics.clusters, title="Topic map (similar topics sit close)", selected=chosen
        ),
        theme="streamlit", on_select="rerun", selection_mode="points", key="emerging_map",
        config=widgets.chart_config("emerging_map"), width="stretch",
    )  # fmt: skip
    st.caption("Emerging topics and the largest are named; hover a bubble for the others.")
chosen = view.selected_topic(topics, picked, mapped)
with left:
    view.topic_story(topics.topic(chosen), tested=topics.clusters.height)
view.topic_cases(topics, chosen)
shown = topics.topic(chosen)
escalate.form(
    "emerging_escalate_topic", viewer=viewer, subject_kind="topic",
    subject_ref=f"topic {shown.cluster_id}", title=shown.name,
    evidence=emerging.topic_evidence(shown), page="emerging",
)  # fmt: skip

st.divider()
st.header("Rings of linked accounts")
try:
    rings = data.rings(as_of, role=viewer.role)
except data.DataUnavailable as exc:
    st.error(str(exc))
    st.stop()
st.caption(
    f"Accounts tied by a device or IP each used at least twice in the 14 days before "
    f"{as_of:%-d %b %Y} (identifiers shared by over 500 accounts are hubs and link nobody). "
    "Growing: new members against the 14 days before, and mostly young accounts."
)
if rings.rings.is_empty():
    st.info(f"No ring of three or more linked accounts in the 14 days before {as_of:%-d %b %Y}.")
    view.rings_elsewhere(selection.week if selection else None, role=viewer.role)
    st.stop()
picked_ring = st.dataframe(
    rings.rings, hide_index=True, on_select="rerun", selection_mode="single-row",
    key="emerging_rings", width="stretch", column_config=view.ring_columns(), placeholder="–",
)  # fmt: skip
ring_id = view.selected_ring(rings, picked_ring)
mine = rings.members_of(ring_id)
left, right = st.columns([3, 2])
with left:
    network = detector_charts.ring_network(
        rings.edges, mine, title=f"Ring {ring_id}", ring_id=ring_id
    )
    widgets.chart(network, key="emerging_ring_network")
with right:
    st.markdown(f"**Members** ({mine.height})")
    st.dataframe(
        mine.drop("ring_id"), hide_index=True, width="stretch", height=360, placeholder="–"
    )
st.markdown("**Cases about its members** (descriptions masked)")
explorer.link(f"Open the cases about its {mine.height} accounts in Case Explorer", ring=ring_id)
view.ring_cases(mine["account_id"].to_list(), role=viewer.role)
ring_rows = rings.rings.filter(rings.rings["ring_id"].cast(str) == str(ring_id))
if not ring_rows.is_empty():
    ring = ring_rows.row(0, named=True)
    escalate.form(
        "emerging_escalate_ring", viewer=viewer, subject_kind="ring", subject_ref=f"ring {ring_id}",
        title=f"Ring {ring_id} ({ring['size']} accounts)", evidence=emerging.ring_evidence(ring),
        page="emerging",
    )  # fmt: skip
