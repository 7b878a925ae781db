"""Global filters: sidebar widgets mirrored in ``st.query_params``, so a link reproduces a view.

Every page that uses them calls :func:`draw`. On a session's first run the
widgets start from the URL (invalid values are dropped with a note); afterwards the
widgets rule and the URL follows them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from analytics.core.filters import (
    CHOICES,
    DIMENSIONS,
    Filters,
    ignored_values,
    parse_filters,
    whole_number,
)  # fmt: skip
from analytics.metrics.trends import iso_week, parse_week, weeks_between
from ui import data

__all__ = [
    "Selection",
    "draw",
    "humanise",
    "link_params",
    "page_multiselect",
    "page_number",
    "page_select",
    "page_choice",
    "page_param",
    "page_text",
    "set_page_param",
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


def humanise(value: str) -> str:
    """``fake_review`` -> ``Fake review``; state codes stay upper case."""
    return value if value.isupper() else value.replace("_", " ").capitalize()


def _week_label(monday: date) -> str:
    sunday = monday + timedelta(days=6)
    return f"{iso_week(monday)} · {monday:%d %b}–{sunday:%d %b}"


def _from_url(weeks: list[date], default_week: date) -> tuple[dict[str, object], list[str]]:
    params = {k: st.query_params.get(k, "") for k in ("week", "start", "end", *DIMENSIONS)}
    parsed, notes = parse_filters(params)
    values: dict[str, object] = {d: list(parsed.where(d)) for d in DIMENSIONS}
    week = default_week
    if params["week"]:
        try:
            asked = parse_week(params["week"])
        except ValueError as exc:
            notes.append(f"Ignored week: {exc}.")
        else:
            if asked in weeks:
                week = asked
            else:
                notes.append(f"Ignored week {params['week'][:20]!r}: no data for that week.")
    values["week"] = week
    if parsed.start and parsed.end:
        if parsed.end < weeks[0] or parsed.start > weeks[-1] + timedelta(days=6):
            notes.append("Ignored the date range: the data has no day in it.")
        else:
            # Days before the first week or after the last hold no data: leave them out.
            start = max(parsed.start, weeks[0])
            end = min(parsed.end, weeks[-1] + timedelta(days=6))
            if (start, end) != (parsed.start, parsed.end):
                notes.append(f"Narrowed the date range to the data: {start} to {end}.")
            values["range"] = (start, end)
    return values, notes


def sidebar(*, first: date, last: date, as_of_complete: date) -> Selection:
    """Draw the global filters in the sidebar and keep the URL in step with them.

    ``first`` and ``last`` are the first and last days with data; ``as_of_complete``
    is the Monday of the latest complete week (the default focus week).
    """
    weeks = weeks_between(first, last)
    default_week = as_of_complete if as_of_complete in weeks else weeks[-1]
    notes: list[str] = []
    if not st.session_state.get(_PREFIX + "ready"):
        values, notes = _from_url(weeks, default_week)
        default_range = (max(first, default_week - timedelta(weeks=12)), last)
        _store("week", values["week"])
        _store("range", values.get("range", default_range))
        for dim in DIMENSIONS:
            _store(dim, values[dim])
        st.session_state[_PREFIX + "ready"] = True
    if _stored("week") not in weeks:
        _store("week", default_week)
    _reseed_on_page_switch()
    with st.sidebar:
        st.header("Filters")
        week = _widget("week", st.selectbox, "Week", weeks[::-1], format_func=_week_label)
        chosen = _widget("range", st.date_input, "Date range", format="YYYY-MM-DD")
        for dim in DIMENSIONS:
            _widget(
                dim,
                st.multiselect,
                _LABELS[dim],
                CHOICES[dim],
                format_func=humanise,
                placeholder="All",
            )
    start, end = _range(chosen, first, last)
    shown = Filters(
        start=start,
        end=end,
        **{d: tuple(_stored(d)) for d in DIMENSIONS},
    )
    _to_url(week, shown, default_week)
    # Load enough to compare the focus week with the four before it.
    lo = min(start, week - timedelta(weeks=4))
    hi = max(end, week + timedelta(days=6))
    selection = Selection(
        week=week,
        filters=replace(shown, start=lo, end=hi),
        shown=shown,
        notes=tuple(notes),
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
    if isinstance(chosen, tuple) and len(chosen) == 2:
        return chosen[0], chosen[1]
    if isinstance(chosen, tuple) and len(chosen) == 1:  # the user is picking the end
        return chosen[0], last
    if isinstance(chosen, date):
        return chosen, last
    return first, last


def _to_url(week: date, shown: Filters, default_week: date) -> None:
    wanted: dict[str, str] = {}
    if week != default_week:
        wanted["week"] = iso_week(week)
    if shown.start and shown.end:
        wanted["start"], wanted["end"] = shown.start.isoformat(), shown.end.isoformat()
    for dim in DIMENSIONS:
        if shown.where(dim):
            wanted[dim] = ",".join(shown.where(dim))
    globals_ = {"week", "start", "end", *DIMENSIONS}
    current = st.query_params.to_dict()
    wanted.update({k: v for k, v in current.items() if k not in globals_})  # page choices
    if current != wanted:
        st.query_params.from_dict(wanted)


def draw() -> Selection | None:
    """Draw the global filters and the notes on the URL; None when there are no cases."""
    try:
        span = data.weeks_of(data.overview())
    except Exception:  # noqa: BLE001 - the page itself explains an unreachable database
        return None
    if span is None:
        return None
    first, last, complete = span
    selection = sidebar(first=first, last=last, as_of_complete=complete)
    for note in selection.notes:
        st.warning(note, icon=":material/link_off:")
    return selection


def page_choice(
    key: str,
    options: dict[str, str],
    *,
    label: str,
    default: str | None = None,
    help: str | None = None,
) -> str:
    """A page-level choice (radio-like) kept in the URL under ``key``.

    ``options`` maps URL values to labels; ``default`` (else the first) is the value
    when the URL has none, and is left out of the URL.
    """
    default = default if default in options else next(iter(options))
    state_key = f"{_PREFIX}page_{key}"
    if state_key not in st.session_state:
        raw = st.query_params.get(key, default)
        if raw not in options:
            st.warning(f"Ignored {key} {raw[:20]!r}: choose one of {', '.join(options)}.")
            raw = default
        st.session_state[state_key] = raw
    value = (
        st.segmented_control(
            label, list(options), key=state_key, format_func=options.__getitem__, help=help
        )
        or default
    )
    if value == default:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != value:
        st.query_params[key] = value
    return value


def page_text(key: str, *, label: str, max_chars: int = 100) -> str:
    """A page-level text filter kept in the URL under ``key`` (plain text, length-capped)."""
    state_key = f"{_PREFIX}page_{key}"
    if state_key not in st.session_state:
        st.session_state[state_key] = str(st.query_params.get(key, ""))[:max_chars]
    value = st.text_input(label, key=state_key, max_chars=max_chars).strip()
    if not value:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != value:
        st.query_params[key] = value
    return value


def page_param(key: str) -> str:
    """A page-level value read from the URL (empty when absent)."""
    return str(st.query_params.get(key, ""))


def set_page_param(key: str, value: str) -> None:
    """Keep a page-level value in the URL (removed when empty)."""
    if not value:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != value:
        st.query_params[key] = value


def link_params(**extra: object) -> dict[str, str]:
    """The query of a link to another page that keeps this view: the global filters as
    the URL holds them, plus ``extra`` page values (None and "" left out)."""
    keep = {"week", "start", "end", *DIMENSIONS}
    params = {k: v for k, v in st.query_params.to_dict().items() if k in keep}
    params.update({k: str(v) for k, v in extra.items() if v is not None and v != ""})
    return params


def _page_state(key: str, initial: Callable[[str], Any]) -> str:
    """The session key of a page-level widget, first filled from the URL's ``key``."""
    state_key = f"{_PREFIX}page_{key}"
    if state_key not in st.session_state:
        st.session_state[state_key] = initial(str(st.query_params.get(key, "")))
    return state_key


def page_multiselect(key: str, options: dict[str, str], *, label: str) -> tuple[str, ...]:
    """A page-level multiple choice kept in the URL as comma-separated values under
    ``key`` (unknown values in the URL are dropped with a note)."""

    def initial(raw: str) -> list[str]:
        asked = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        bad = [v for v in asked if v not in options]
        if bad:
            st.warning(f"Ignored {key} {ignored_values(bad)}: choose from {', '.join(options)}.")
        return [v for v in asked if v in options]

    state_key = _page_state(key, initial)
    chosen = st.multiselect(
        label, list(options), key=state_key, format_func=options.__getitem__, placeholder="All"
    )
    set_page_param(key, ",".join(chosen))
    return tuple(chosen)


def page_select(key: str, options: dict[str, str], *, label: str) -> str:
    """A page-level single choice (a select box) kept in the URL under ``key``; the
    first option is the default and is left out of the URL."""
    default = next(iter(options))

    def initial(raw: str) -> str:
        if raw and raw not in options:
            st.warning(f"Ignored {key} {raw[:20]!r}: choose one of {', '.join(options)}.")
        return raw if raw in options else default

    state_key = _page_state(key, initial)
    value = st.selectbox(label, list(options), key=state_key, format_func=options.__getitem__)
    set_page_param(key, "" if value == default else str(value))
    return str(value)


def page_number(key: str, default: int = 1) -> int:
    """A positive whole number kept in the URL under ``key`` (bad values give ``default``)."""
    raw = page_param(key)
    number = whole_number(raw, limit=2**62)
    return default if number is None else number
