"""Filter parameters: the dimensions a user slices by, their values, and parsing them from text.

:class:`Filters` is what the user looks at (a date range and values per dimension);
:func:`parse_filters` reads it from URL query parameters, dropping what is not valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from analytics.core import taxonomy
from analytics.core.models import SPECIALTIES, US_STATES, Platform

__all__ = [
    "CHOICES",
    "DIMENSIONS",
    "FIRST_DAY",
    "LAST_DAY",
    "Filters",
    "choices",
    "ignored_values",
    "parse_day",
    "parse_filters",
    "whole_number",
]

#: The dimensions every metric can be sliced and filtered by.
DIMENSIONS: tuple[str, ...] = ("category", "region", "platform", "severity", "source", "specialty")


def choices(*, tax: taxonomy.Taxonomy | None = None) -> dict[str, tuple[str, ...]]:
    """The values each dimension can take; category, severity and source are those of
    ``tax`` (default: the taxonomy in force, :func:`analytics.core.taxonomy.active`).

    >>> choices()["severity"], choices()["platform"]
    (('low', 'medium', 'high', 'critical'), ('web', 'ios', 'android'))
    """
    vocabulary = (tax or taxonomy.active()).choices
    return {
        "category": vocabulary["category"],
        "region": tuple(US_STATES),
        "platform": tuple(p.value for p in Platform),
        "severity": vocabulary["severity"],
        "source": vocabulary["source"],
        "specialty": tuple(SPECIALTIES),
    }


#: The values each dimension can take, with the taxonomy in force when this module was
#: first imported (the frames' dtypes are built from it); :func:`choices` follows
#: :func:`analytics.core.taxonomy.using`.
CHOICES: dict[str, tuple[str, ...]] = choices(tax=taxonomy.active_or_default())


@dataclass(frozen=True)
class Filters:
    """What the user looks at: an inclusive date range and values per dimension.

    An empty tuple means "all". Dates are days (UTC); ``end`` is included.

    >>> Filters(category=("spam",)).where("category")
    ('spam',)
    >>> Filters().is_empty()
    True
    """

    start: date | None = None
    end: date | None = None
    category: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    platform: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    specialty: tuple[str, ...] = ()

    def where(self, dim: str) -> tuple[str, ...]:
        """The chosen values of one dimension (empty: all)."""
        return tuple(getattr(self, dim))

    def is_empty(self) -> bool:
        """True when no dimension is restricted (dates aside)."""
        return not any(self.where(d) for d in DIMENSIONS)

    def window(self) -> tuple[datetime, datetime]:
        """The loaded time window: whole ISO weeks covering ``start``..``end``.

        >>> Filters(start=date(2026, 11, 18), end=date(2026, 11, 24)).window()
        (datetime.datetime(2026, 11, 16, 0, 0), datetime.datetime(2026, 11, 30, 0, 0))
        """
        if self.start is None or self.end is None:
            raise ValueError("the filters need a start and an end date")
        lo = self.start - timedelta(days=self.start.weekday())
        hi = self.end - timedelta(days=self.end.weekday()) + timedelta(days=7)
        return datetime.combine(lo, datetime.min.time()), datetime.combine(hi, datetime.min.time())


#: Dates outside these are refused wherever a date is typed or linked.
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)


def parse_day(text: str) -> date | None:
    """An ISO date between :data:`FIRST_DAY` and :data:`LAST_DAY`, else None.

    >>> parse_day("2026-11-24"), parse_day("9999-12-31"), parse_day("tomorrow")
    (datetime.date(2026, 11, 24), None, None)
    """
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def whole_number(text: str, *, limit: int = 2**62) -> int | None:
    """A positive whole number written in ASCII digits, below ``limit``; else None.

    >>> whole_number("42"), whole_number("²"), whole_number("9" * 5000), whole_number("0")
    (42, None, None, None)
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value < limit else None


def ignored_values(values: Sequence[str], *, show: int = 3) -> str:
    """Dropped values for a note: the first few, cut short, and how many more.

    >>> ignored_values(["x" * 60, "b", "c", "d", "e"])
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…', 'b', 'c' and 2 more"
    """
    shown = [repr(v[:30] + "…" if len(v) > 30 else v) for v in values[:show]]
    more = f" and {len(values) - show:,} more" if len(values) > show else ""
    return ", ".join(shown) + more


def parse_filters(params: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """Filters from text parameters (e.g. URL query parameters), dropping invalid values.

    Dimensions take comma-separated values; ``start`` and ``end`` take ISO dates.
    Returns the filters and one note per value dropped.

    >>> f, notes = parse_filters({"category": "spam,nonsense", "start": "2026-13-01"})
    >>> f.category, notes
    (('spam',), ["Ignored category 'nonsense': not a known value.", "Ignored start '2026-13-01': not a date (YYYY-MM-DD) between 1990 and 2100."])
    """  # noqa: E501
    notes: list[str] = []
    values: dict[str, Any] = {}
    known = choices()
    for dim in DIMENSIONS:
        raw = [v.strip() for v in str(params.get(dim, "") or "").split(",") if v.strip()]
        good = tuple(dict.fromkeys(v for v in raw if v in known[dim]))
        bad = [v for v in dict.fromkeys(raw) if v not in good]
        if bad:
            notes.append(f"Ignored {dim} {ignored_values(bad)}: not a known value.")
        values[dim] = good
    for key in ("start", "end"):
        raw_date = str(params.get(key, "") or "").strip()
        if not raw_date:
            continue
        day = parse_day(raw_date)
        if day is None:
            notes.append(
                f"Ignored {key} {raw_date[:40]!r}: not a date (YYYY-MM-DD) between "
                f"{FIRST_DAY:%Y} and {LAST_DAY:%Y}."
            )
        else:
            values[key] = day
    f = Filters(**values)
    if f.start and f.end and f.start > f.end:
        notes.append("Ignored the date range: it ends before it starts.")
        f = replace(f, start=None, end=None)
    return f, notes
