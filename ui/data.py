"""Cached access to the database for the pages."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from analytics import db

__all__ = ["engine", "database_label", "overview"]


@st.cache_resource(max_entries=4)
def _engine_for(url: str) -> Engine:
    return db.make_engine(url)


def engine() -> Engine:
    """One engine per process for the configured database."""
    return _engine_for(db.database_url())


def database_label() -> str:
    """The active database URL with its password hidden."""
    return db.safe_url(db.database_url())


@st.cache_data(ttl=60, max_entries=8, show_spinner="Reading the database…")
def _overview(url: str) -> dict[str, Any]:
    return db.dataset_overview(_engine_for(url))


def overview() -> dict[str, Any]:
    """Row counts, date range and freshness (cached for a minute per database)."""
    return _overview(db.database_url())
