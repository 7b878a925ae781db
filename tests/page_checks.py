"""Checks of a rendered AppTest page in plain words (issue 18): no raw ``None`` in its
text or tables, and table headers wide enough to be read whole."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

__all__ = ["NONE", "headers_fit", "rendered_text", "tables_say_no_none"]

NONE = re.compile(r"\bNone\b")
#: A header's label in pixels per character (the app's 14 px sans serif, generously)
#: and the room its cell keeps for padding and the sort or menu icon.
CHAR_PX, HEADER_PAD = 8, 28


def rendered_text(at: AppTest) -> list[str]:
    """Every piece of text the page draws outside its tables and charts."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "text", "info",
             "warning", "error", "success")  # fmt: skip
    found = [e.value for kind in kinds for e in getattr(at, kind)]
    found += [f"{m.label} {m.value}" for m in at.metric]
    found += [link.proto.label for link in at.get("page_link")]
    return [str(t) for t in found]


def tables_say_no_none(at: AppTest) -> None:
    """No table shows a raw None: its missing cells read "–" and no cell is the word."""
    for frame in at.dataframe:
        value = frame.value
        if value.isna().to_numpy().any():
            assert frame.proto.placeholder == "–", list(value.columns)
        text = value.select_dtypes("object").astype(str)
        assert not text.apply(lambda c: c.str.fullmatch("None")).to_numpy().any()


def headers_fit(at: AppTest) -> None:
    """Every shown column of every table is wide enough for its whole header."""
    for frame in at.dataframe:
        columns = json.loads(frame.proto.columns or "{}")
        shown = list(frame.proto.column_order) or list(columns)
        for name in shown:
            config = columns.get(name, {})
            label, width = config.get("label"), config.get("width")
            if label and isinstance(width, int):
                assert len(label) * CHAR_PX + HEADER_PAD <= width, (label, width)
