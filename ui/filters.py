"""URL and session state: the global filters in the sidebar, and each page's own choices.

Two namespaces, in the URL and in the session alike:

- **global filters** (:data:`analytics.views.selection.GLOBAL_KEYS`: ``week``, ``start``,
  ``end`` and one key per dimension): sidebar widgets mirrored in ``st.query_params``,
  so a link reproduces a view. Every page that uses them calls :func:`draw`. On a
  session's first run the widgets start from the URL (invalid values are dropped with
  a note); afterwards the widgets rule and the URL follows them. Their session keys
  start with ``filter_``.
- **page state** (:class:`PageState`): what one page keeps (a choice, a search, the
  selected row), under keys prefixed by the page (``anomalies.source``) in the URL and
  the session. A link to another page (:func:`link_params`) carries the global filters
  and what the link sets for that page, never the state of the page it leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from analytics.core.filters import DIMENSIONS, Filters, choices, ignored_values, whole_number
from analytics.present.formatting import humanise
from analytics.views import selection as sel
from ui import data

__all__ = [
    "PageState",
    "Selection",
    "draw",
    "link_params",
    "sidebar",
]

_PREFIX = "filter_"
_LABELS = {
    "category": "Category",
    "region": "Region",
    "platform": "Platform",
    "severity": "Severity",
    "source": "Source",
    "specialty": "Specialty",
}


@dataclass(frozen=True)
class Selection:
    """The global filters of the session: the focus week and the filters to load."""

    week: date
    filters: Filters
    shown: Filters
    notes: tuple[str, ...] = ()


def sidebar(span: sel.DataSpan) -> Selection:
    """Draw the global filters in the sidebar and keep the URL in step with them."""
    weeks = span.weeks
    default_week = span.default_week
    notes: list[str] = []
    if not st.session_state.get(_PREFIX + "ready"):
        params = {k: str(v) for k, v in st.query_params.to_dict().items() if k in sel.GLOBAL_KEYS}
        asked, parsed = sel.parse_asked(params, span)
        notes = parsed
        _store("week", asked.week)
        _store("range", asked.range or span.default_range)
        for dim in DIMENSIONS:
            _store(dim, list(asked.values.get(dim, ())))
        st.session_state[_PREFIX + "ready"] = True
    if _stored("week") not in weeks:
        _store("week", default_week)
    _reseed_on_page_switch()
    with st.sidebar:
        st.header("Filters")
        week = _widget("week", st.selectbox, "Week", weeks[::-1], format_func=sel.week_label)
        chosen = _widget("range", st.date_input, "Date range", format="YYYY-MM-DD")
        for dim in DIMENSIONS:
            _widget(
                dim,
                st.multiselect,
                _LABELS[dim],
                choices()[dim],
                format_func=humanise,
                placeholder="All",
            )
    start, end = _range(chosen, span.first, span.last)
    shown = Filters(start=start, end=end, **{d: tuple(_stored(d)) for d in DIMENSIONS})
    _to_url(sel.filter_params(week, shown, default_week=default_week))
    selection = Selection(
        week=week, filters=sel.load_filters(week, shown), shown=shown, notes=tuple(notes)
    )
    st.session_state[_PREFIX + "selection"] = selection
    return selection


def _reseed_on_page_switch() -> None:
    """A page switch makes new widgets: set their keys from the stored values first, or
    Streamlit would start them at their defaults (the newest week, no filters)."""
    ctx = get_script_run_ctx()
    page = ctx.page_script_hash if ctx is not None else ""
    if st.session_state.get(_PREFIX + "page") == page:
        return
    for name in ("week", "range", *DIMENSIONS):
        st.session_state[_PREFIX + name] = _stored(name)
    st.session_state[_PREFIX + "page"] = page


def _store(name: str, value: object) -> None:
    st.session_state[f"{_PREFIX}value_{name}"] = value


def _stored(name: str) -> Any:
    return st.session_state.get(f"{_PREFIX}value_{name}")


def _widget(name: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A widget whose value outlives page switches (widget state is per page)."""
    key = _PREFIX + name
    if key not in st.session_state:
        st.session_state[key] = _stored(name)
    value = factory(*args, key=key, **kwargs)
    _store(name, value)
    return value


def _range(chosen: object, first: date, last: date) -> tuple[date, date]:
    """The date range of the widget's value (a range being picked has only its start)."""
    if isinstance(chosen, tuple) and len(chosen) == 2:
        return chosen[0], chosen[1]
    if isinstance(chosen, tuple) and len(chosen) == 1:  # the user is picking the end
        return chosen[0], last
    if isinstance(chosen, date):
        return chosen, last
    return first, last


def _to_url(wanted: dict[str, str]) -> None:
    """The global filters into the URL, keeping every page's own keys."""
    current = st.query_params.to_dict()
    wanted.update({k: v for k, v in current.items() if k not in sel.GLOBAL_KEYS})
    if current != wanted:
        st.query_params.from_dict(wanted)


def draw() -> Selection | None:
    """Draw the global filters and the notes on the URL; None when there are no cases."""
    try:
        span = data.data_span()
    except Exception:  # noqa: BLE001 - the page itself explains an unreachable database
        return None
    if span is None:
        return None
    selection = sidebar(span)
    for note in selection.notes:
        st.warning(note, icon=":material/link_off:")
    return selection


def link_params(page: str, **extra: object) -> dict[str, str]:
    """The query of a link to ``page`` that keeps this view's global filters as the URL
    holds them, plus ``extra`` values of that page (prefixed by it; None and "" left
    out). Nothing of the page the link leaves is carried."""
    params = {k: v for k, v in st.query_params.to_dict().items() if k in sel.GLOBAL_KEYS}
    params.update({f"{page}.{k}": str(v) for k, v in extra.items() if v is not None and v != ""})
    return params


@dataclass(frozen=True)
class PageState:
    """The state one page keeps in the URL and the session, every key ``<page>.<name>``.

    >>> PageState("anomalies").key("source")
    'anomalies.source'
    """

    page: str

    def key(self, name: str) -> str:
        """The URL and session key of one of the page's values."""
        return f"{self.page}.{name}"

    def param(self, name: str) -> str:
        """A value read from the URL (empty when absent)."""
        return str(st.query_params.get(self.key(name), ""))

    def set(self, name: str, value: str) -> None:
        """Keep a value in the URL (removed when empty)."""
        key = self.key(name)
        if not value:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value

    def number(self, name: str, default: int = 1) -> int:
        """A positive whole number kept in the URL (bad values give ``default``)."""
        number = whole_number(self.param(name), limit=2**62)
        return default if number is None else number

    def _state(self, name: str, initial: Callable[[str], Any]) -> str:
        """The session key of a widget, first filled from the URL."""
        key = self.key(name)
        if key not in st.session_state:
            st.session_state[key] = initial(self.param(name))
        return key

    def choice(
        self,
        name: str,
        options: dict[str, str],
        *,
        label: str,
        default: str | None = None,
        help: str | None = None,
    ) -> str:
        """A choice (radio-like) kept in the URL.

        ``options`` maps URL values to labels; ``default`` (else the first) is the value
        when the URL has none, and is left out of the URL.
        """
        fallback = default if default in options else next(iter(options))

        def initial(raw: str) -> str:
            if raw and raw not in options:
                st.warning(f"Ignored {name} {raw[:20]!r}: choose one of {', '.join(options)}.")
            return raw if raw in options else fallback

        key = self._state(name, initial)
        value = (
            st.segmented_control(
                label, list(options), key=key, format_func=options.__getitem__, help=help
            )
            or fallback
        )
        self.set(name, "" if value == fallback else str(value))
        return str(value)

    def text(self, name: str, *, label: str, max_chars: int = 100) -> str:
        """A text filter kept in the URL (plain text, length-capped)."""
        key = self._state(name, lambda raw: raw[:max_chars])
        value = st.text_input(label, key=key, max_chars=max_chars).strip()
        self.set(name, value)
        return value

    def multiselect(self, name: str, options: dict[str, str], *, label: str) -> tuple[str, ...]:
        """A multiple choice kept in the URL as comma-separated values (unknown values in
        the URL are dropped with a note)."""

        def initial(raw: str) -> list[str]:
            asked = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
            bad = [v for v in asked if v not in options]
            if bad:
                st.warning(
                    f"Ignored {name} {ignored_values(bad)}: choose from {', '.join(options)}."
                )
            return [v for v in asked if v in options]

        key = self._state(name, initial)
        chosen = st.multiselect(
            label, list(options), key=key, format_func=options.__getitem__, placeholder="All"
        )
        self.set(name, ",".join(chosen))
        return tuple(chosen)

    def select(self, name: str, options: dict[str, str], *, label: str) -> str:
        """A single choice (a select box) kept in the URL; the first option is the
        default and is left out of the URL."""
        default = next(iter(options))

        def initial(raw: str) -> str:
            if raw and raw not in options:
                st.warning(f"Ignored {name} {raw[:20]!r}: choose one of {', '.join(options)}.")
            return raw if raw in options else default

        key = self._state(name, initial)
        value = st.selectbox(label, list(options), key=key, format_func=options.__getitem__)
        self.set(name, "" if value == default else str(value))
        return str(value)
