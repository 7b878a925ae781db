"""Charts built once per server, not once per browser session.

Building a plotly figure is most of a chart page's own work: every ``go.Figure`` copies
and checks the whole template and every trace (about a second for the eight charts of
Weekly trends on the 2-core machine). The frames a page draws come from the cached views
(:mod:`ui.data`), so the same frames give the same figure: :func:`figure` builds it once
per server and argument set, and every session shows that one (Streamlit serialises it
for the browser; nothing changes it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import streamlit as st

__all__ = ["figure"]


def figure(builder: Callable[..., go.Figure], /, *args: Any, **kwargs: Any) -> go.Figure:
    """``builder(*args, **kwargs)``, built once per server for equal arguments (frames
    are compared by content); do not change the figure it returns."""
    return _built(f"{builder.__module__}.{builder.__qualname__}", builder, args, kwargs)


@st.cache_resource(ttl=3600, max_entries=128, show_spinner=False)
def _built(
    name: str, _builder: Callable[..., go.Figure], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> go.Figure:
    """The figure of ``_builder`` (not hashed: its ``name`` is the key)."""
    return _builder(*args, **kwargs)
