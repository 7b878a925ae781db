"""A bare Streamlit page of ``n`` plotly charts (``?n=8``), nothing of Lookout's but the
chart template: what Streamlit and plotly cost in a new browser session on their own,
the floor under every chart page's first render (``python -m bench browser``)."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from analytics.present import theme

st.set_page_config(page_title="floor", layout="wide")
st.title("Plotly charts alone")
days = [date(2026, 9, 1) + timedelta(days=i) for i in range(91)]
charts = int(st.query_params.get("n", "1"))
columns = st.columns(2)
for i in range(charts):
    figure = theme.titled_figure(f"Chart {i + 1}")
    for s in range(3):
        figure.add_scatter(x=days, y=[(d * (s + 3)) % 17 + 10 * s for d in range(91)], name=f"s{s}")
    with columns[i % 2]:
        st.plotly_chart(figure, theme="streamlit", width="stretch", key=f"chart{i}")
