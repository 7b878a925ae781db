"""The calendar: ISO weeks (Monday to Sunday, UTC), their labels, and when a week ends.

A week is named by its ISO label (``2026-W47``, :func:`iso_week`, :func:`parse_week`)
and held as the :class:`~datetime.date` of its Monday. A week is *complete* once the
data runs to its end (:func:`is_complete`); the ``as_of`` of a focus week, the moment
its numbers are read at, is :func:`week_end`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = [
    "WEEK",
    "is_complete",
    "iso_week",
    "midnight",
    "parse_week",
    "week_end",
    "weeks_between",
]

#: One week.
WEEK = timedelta(days=7)


def iso_week(day: date) -> str:
    """The ISO week label of a day.

    >>> iso_week(date(2026, 11, 16))
    '2026-W47'
    """
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(label: str) -> date:
    """The Monday of an ISO week label; ``ValueError`` for anything else.

    >>> parse_week("2026-W47")
    datetime.date(2026, 11, 16)
    """
    problem = ValueError(f"{label[:20]!r} is not an ISO week such as 2026-W47")
    try:
        monday = datetime.strptime(label.strip() + "-1", "%G-W%V-%u").date()
    except ValueError:
        raise problem from None
    year, week = label.strip().split("-W")
    if monday.isocalendar()[:2] != (int(year), int(week)):  # e.g. W53 of a 52-week year
        raise problem
    return monday


def weeks_between(first: date, last: date) -> list[date]:
    """Mondays of the weeks from the one holding ``first`` to the one holding ``last``.

    >>> weeks_between(date(2026, 11, 18), date(2026, 11, 30))
    [datetime.date(2026, 11, 16), datetime.date(2026, 11, 23), datetime.date(2026, 11, 30)]
    """
    start = first - timedelta(days=first.weekday())
    return [start + WEEK * i for i in range((last - start).days // 7 + 1)]


def midnight(day: date) -> datetime:
    """The moment ``day`` begins.

    >>> midnight(date(2026, 4, 20))
    datetime.datetime(2026, 4, 20, 0, 0)
    """
    return datetime.combine(day, datetime.min.time())


def is_complete(monday: date, newest: datetime | None) -> bool:
    """Whether the data (newest record ``newest``) runs to the end of the week of ``monday``.

    >>> is_complete(date(2026, 4, 20), datetime(2026, 4, 26, 23, 59, 59))
    True
    """
    return newest is not None and newest >= midnight(monday + WEEK) - timedelta(seconds=1)


def week_end(monday: date, newest: datetime | None, *, today: date | None = None) -> datetime:
    """The ``as_of`` of the focus week of ``monday``: midnight after its Sunday, or
    midnight after the day of the newest record ``newest`` when that comes first.

    Without data (``newest`` None) it is the week's end; given ``today``, midnight at
    the start of ``today`` when that comes first. The pages pass ``today``; the weekly
    brief does not.

    >>> week_end(date(2026, 4, 20), datetime(2026, 4, 30, 23))
    datetime.datetime(2026, 4, 27, 0, 0)
    >>> week_end(date(2026, 4, 27), datetime(2026, 4, 30, 23))
    datetime.datetime(2026, 5, 1, 0, 0)
    >>> week_end(date(2026, 4, 27), None), week_end(date(2026, 4, 27), None, today=date(2026, 5, 2))
    (datetime.datetime(2026, 5, 4, 0, 0), datetime.datetime(2026, 5, 2, 0, 0))
    """
    end = midnight(monday + WEEK)
    if newest is not None:
        return min(end, midnight(newest.date() + timedelta(days=1)))
    return end if today is None else min(end, midnight(today))
