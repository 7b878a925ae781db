"""The demo's window in days: weekdays, US holidays, growth and the scenarios' start dates.

The window is the ``days`` whole days that end at midnight (UTC) at the start of
``end``: with ``end=2026-11-24`` the newest event is on 2026-11-23. Times inside the
generator are seconds (or days) since the window's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import holidays as holidays_lib
import numpy as np

__all__ = [
    "DAY",
    "Calendar",
    "day_index",
    "scenario_dates",
    "scenario_days",
    "window_calendar",
]

#: Seconds in a day: times in the generator are seconds since the window's start.
DAY = 86_400


def scenario_dates(end: date, days: int) -> dict[str, date]:
    """Start dates of the injected scenarios for a window ending at ``end``.

    >>> d = scenario_dates(date(2026, 11, 24), 730)
    >>> d["new_scam"], d["policy_change"]
    (datetime.date(2026, 10, 25), datetime.date(2026, 6, 27))
    """
    return {
        "ingestion_outage": end - timedelta(days=200),
        "policy_change": end - timedelta(days=150),
        "fake_review_ring": end - timedelta(days=75),
        "account_takeover_wave": end - timedelta(days=40),
        "new_scam": end - timedelta(days=30),
        "product_launch": end - timedelta(days=min(400, days - 30)),
    }


@dataclass
class Calendar:
    """The window's days: its start (midnight UTC), its length, each day's weekday
    (0 = Monday), holiday flag and growth factor, and the holidays by day index."""

    start: datetime
    days: int
    dow: np.ndarray
    holiday: np.ndarray
    growth: np.ndarray
    holiday_names: list[tuple[int, str]]

    @property
    def end_s(self) -> float:
        """The window's end, in seconds since its start."""
        return float(self.days * DAY)


def window_calendar(end: date, days: int) -> Calendar:
    """The calendar of the ``days`` days that end at midnight at the start of ``end``."""
    start = datetime(end.year, end.month, end.day) - timedelta(days=days)
    day_dates = [start.date() + timedelta(days=i) for i in range(days)]
    us = holidays_lib.country_holidays("US", years=range(start.year, end.year + 1))
    hol = np.array([d in us for d in day_dates])
    names = [(i, str(us.get(d))) for i, d in enumerate(day_dates) if d in us]
    dow = np.array([d.weekday() for d in day_dates])
    t = np.arange(days) / max(days - 1, 1)
    growth = 0.75 + 0.5 * t  # the marketplace grows by two thirds over the window
    return Calendar(start, days, dow, hol, growth, names)


def day_index(cal: Calendar, d: date) -> int:
    """Days from the window's start to ``d`` (negative before it)."""
    return (datetime(d.year, d.month, d.day) - cal.start).days


def scenario_days(cal: Calendar) -> dict[str, int]:
    """Day index (from the window start) of each scenario's start."""
    end = (cal.start + timedelta(days=cal.days)).date()
    return {k: day_index(cal, v) for k, v in scenario_dates(end, cal.days).items()}
