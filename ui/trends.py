"""The Weekly Trends page's own cached reads and its top movers table."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from analytics.core import database
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.views import trends
from ui import data

__all__ = ["movers", "movers_table"]


@st.cache_data(ttl=3600, max_entries=32, show_spinner="Comparing every slice…")
def _movers(
    url: str, filters: Filters, week: date, count: str, token: str, role: Role, tested: bool
) -> pl.DataFrame:
    return trends.movers(
        data.engine(), filters, week=week, count=trends.count_of(count), role=role, tested=tested
    )


def movers(filters: Filters, week: date, count: str, *, role: Role, tested: bool) -> pl.DataFrame:
    """The week's top movers against the previous week and the 4-week mean (cached per
    filter set and data version); untested when ``tested`` is false."""
    url = database.database_url()
    try:
        return _movers(url, filters, week, count, data.data_token(), role, tested)
    except data.DataUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - the page shows a banner, not a traceback
        raise data.DataUnavailable(
            f"Cannot read the data at {database.safe_url(url)} ({type(exc).__name__})."
        ) from exc


_Q_HELP = (
    "Significant: the change is larger than chance allows, with the false discovery rate "
    "controlled at 5% across every slice tested. The q-values behind each verdict are in "
    "the weekly brief's Top movers (Reports), on hover."
)


def movers_table(frame: pl.DataFrame, *, rows: int = 20) -> None:
    """The top movers (:func:`analytics.views.trends.both_movers`) as a table whose
    headers fit at 1280 px; significance in words (the q-values are in the brief: a
    table cell has no hover text of its own)."""
    shown = frame.head(rows).drop("q_week", "q_4w", "q")
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        placeholder="–",
        column_config={
            "slice": st.column_config.TextColumn("Slice", width=170),
            "current": st.column_config.NumberColumn("This week", format="localized", width=78),
            "last_week": st.column_config.NumberColumn("Last week", format="localized", width=78),
            "change_week": st.column_config.TextColumn(
                "Change", width=64, help="Against last week"
            ),
            "baseline": st.column_config.NumberColumn(
                "4-wk mean", format="%.1f", width=84, help="Mean of the 4 weeks before"
            ),
            "change_4w": st.column_config.TextColumn(
                "Change", width=64, help="Against the 4-week mean"
            ),
            "against": st.column_config.TextColumn("Significant vs", width=104, help=_Q_HELP),
        },
    )
