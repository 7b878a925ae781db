"""The global filters every page shares: the weeks with data, the filters a URL asks for, the
focus week's end, and the URL parameters that carry them.

The global filters live in the URL under :data:`GLOBAL_KEYS` (``week``, ``start``,
``end`` and one key per dimension); everything a single page keeps in the URL is
prefixed by that page (``anomalies.source``), so a link to another page carries the
global filters and nothing of the page it leaves. ``ui.filters`` draws the sidebar and
keeps the URL in step; the parsing and the calendar are here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from analytics.core import calendar
from analytics.core.calendar import WEEK, is_complete, iso_week, midnight, parse_week, weeks_between
from analytics.core.filters import DIMENSIONS, Filters, parse_filters
from analytics.views.overview import Overview

__all__ = [
    "GLOBAL_KEYS",
    "RANGE_WEEKS",
    "Asked",
    "DataSpan",
    "data_span",
    "filter_params",
    "load_filters",
    "newest_day",
    "parse_asked",
    "week_end",
    "week_label",
    "week_name",
]

#: The URL keys of the global filters; no page keeps anything of its own under them.
GLOBAL_KEYS: frozenset[str] = frozenset({"week", "start", "end", *DIMENSIONS})
#: Weeks before the default focus week that the default date range starts.
RANGE_WEEKS = 12


@dataclass(frozen=True)
class DataSpan:
    """The days with cases: the first, the last, and the Monday of the latest complete
    week (the default focus week)."""

    first: date
    last: date
    complete: date

    @property
    def weeks(self) -> list[date]:
        """The Mondays of every week with data, oldest first."""
        return weeks_between(self.first, self.last)

    @property
    def default_week(self) -> date:
        """The focus week when none is asked for: the latest complete one."""
        weeks = self.weeks
        return self.complete if self.complete in weeks else weeks[-1]

    @property
    def default_range(self) -> tuple[date, date]:
        """The date range when none is asked for: :data:`RANGE_WEEKS` weeks before the
        default focus week to the last day with data."""
        return max(self.first, self.default_week - timedelta(weeks=RANGE_WEEKS)), self.last


def data_span(info: Overview) -> DataSpan | None:
    """The days with cases, or None without cases.

    >>> info = Overview(counts={"cases": 2}, first_case=datetime(2026, 4, 1),
    ...                 last_case=datetime(2026, 5, 1, 12))
    >>> data_span(info)  # a Friday: its week is not complete
    DataSpan(first=datetime.date(2026, 4, 1), last=datetime.date(2026, 5, 1), complete=datetime.date(2026, 4, 20))
    """  # noqa: E501 - the doctest's output is one line
    newest = info.newest
    if not info.first_case or not newest:
        return None
    first = info.first_case.date()
    this_monday = newest.date() - timedelta(days=newest.date().weekday())
    complete = this_monday if is_complete(this_monday, newest) else this_monday - WEEK
    return DataSpan(first, newest.date(), max(complete, first - timedelta(days=first.weekday())))


def newest_day(info: Overview) -> date:
    """The day after the newest record (the end of the data), or today without data."""
    newest = info.newest
    return (newest + timedelta(days=1)).date() if newest else date.today()


def week_end(info: Overview, week: date | None) -> datetime:
    """The ``as_of`` of a focus week: midnight after it, or after the newest day with
    data when that comes first (or when no week is chosen); without data, today's
    midnight when that comes first (:func:`analytics.core.calendar.week_end`).

    >>> info = Overview(counts={"cases": 1}, last_case=datetime(2026, 4, 30, 23))
    >>> week_end(info, date(2026, 4, 20)), week_end(info, date(2026, 4, 27))
    (datetime.datetime(2026, 4, 27, 0, 0), datetime.datetime(2026, 5, 1, 0, 0))
    """
    if week is None:
        return midnight(newest_day(info))
    return calendar.week_end(week, info.newest, today=date.today())


def week_name(monday: date) -> str:
    """The ISO name of a week (``2026-W17``)."""
    return iso_week(monday)


def week_label(monday: date) -> str:
    """A week as the sidebar lists it.

    >>> week_label(date(2026, 4, 20))
    '2026-W17 · 20 Apr–26 Apr'
    """
    sunday = monday + timedelta(days=6)
    return f"{iso_week(monday)} · {monday:%d %b}–{sunday:%d %b}"


@dataclass(frozen=True)
class Asked:
    """The global filters a URL asks for, checked against the weeks with data."""

    week: date
    range: tuple[date, date] | None = None
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def parse_asked(params: Mapping[str, str], span: DataSpan) -> tuple[Asked, list[str]]:
    """The global filters in URL parameters (``week``, ``start``, ``end``, dimensions),
    and one note per value dropped or narrowed; never raises.

    >>> span = DataSpan(date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 20))
    >>> asked, notes = parse_asked({"week": "2026-W99", "region": "CA,ZZ"}, span)
    >>> asked.week, dict(asked.values)["region"], notes
    (datetime.date(2026, 4, 20), ('CA',), ["Ignored region 'ZZ': not a known value.", "Ignored week: '2026-W99' is not an ISO week such as 2026-W47."])
    """  # noqa: E501 - the doctest's output is one line
    weeks = span.weeks
    raw = {k: str(params.get(k, "") or "") for k in ("week", "start", "end", *DIMENSIONS)}
    parsed, notes = parse_filters(raw)
    week = span.default_week
    if raw["week"]:
        try:
            wanted = parse_week(raw["week"])
        except ValueError as exc:
            notes.append(f"Ignored week: {exc}.")
        else:
            if wanted in weeks:
                week = wanted
            else:
                notes.append(f"Ignored week {raw['week'][:20]!r}: no data for that week.")
    chosen: tuple[date, date] | None = None
    if parsed.start and parsed.end:
        if parsed.end < weeks[0] or parsed.start > weeks[-1] + timedelta(days=6):
            notes.append("Ignored the date range: the data has no day in it.")
        else:
            # Days before the first week or after the last hold no data: leave them out.
            start = max(parsed.start, weeks[0])
            end = min(parsed.end, weeks[-1] + timedelta(days=6))
            if (start, end) != (parsed.start, parsed.end):
                notes.append(f"Narrowed the date range to the data: {start} to {end}.")
            chosen = (start, end)
    values = {d: parsed.where(d) for d in DIMENSIONS}
    return Asked(week=week, range=chosen, values=values), notes


def filter_params(week: date, shown: Filters, *, default_week: date) -> dict[str, str]:
    """The URL parameters of the global filters (the default week left out).

    >>> monday = date(2026, 4, 20)
    >>> filter_params(monday - timedelta(days=7), Filters(region=("CA", "FL")), default_week=monday)
    {'week': '2026-W16', 'region': 'CA,FL'}
    """
    wanted: dict[str, str] = {}
    if week != default_week:
        wanted["week"] = iso_week(week)
    if shown.start and shown.end:
        wanted["start"], wanted["end"] = shown.start.isoformat(), shown.end.isoformat()
    for dim in DIMENSIONS:
        if shown.where(dim):
            wanted[dim] = ",".join(shown.where(dim))
    return wanted


def load_filters(week: date, shown: Filters) -> Filters:
    """The filters to load: the shown ones, widened to compare the focus week with the
    four before it.

    >>> f = load_filters(date(2026, 4, 20), Filters(start=date(2026, 4, 1), end=date(2026, 4, 5)))
    >>> f.start, f.end
    (datetime.date(2026, 3, 23), datetime.date(2026, 4, 26))
    """
    assert shown.start is not None and shown.end is not None
    lo = min(shown.start, week - timedelta(weeks=4))
    hi = max(shown.end, week + timedelta(days=6))
    return replace(shown, start=lo, end=hi)
