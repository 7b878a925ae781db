"""Numbers, changes, tests and dates in words: the text of every cell and sentence.

Counts, means, shares and KPI values in their units; changes as words (``up 12.0%``)
or as cells (``+12.0%``); p-values and test verdicts; days, weeks and moments; labels
such as ``fake_review`` as ``Fake review``. :data:`CELL_FORMATS` maps the name of a
column's format to its formatter. A missing value reads ``–``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, cast

import polars as pl

from analytics.metrics.stats import ALPHA

__all__ = [
    "CELL_FORMATS",
    "Unit",
    "describe_change",
    "describe_test",
    "format_change",
    "format_count",
    "format_date",
    "format_delta",
    "format_day",
    "format_days",
    "format_mean",
    "format_moment",
    "format_number",
    "format_p",
    "format_period",
    "format_relative",
    "format_share",
    "format_span",
    "format_slice",
    "format_value",
    "humanise",
    "humanised",
    "significance",
    "significance_note",
    "sliced",
]

#: The unit of rates per 1,000: written as plain numbers (their label says so).
_PER_1000 = "per_1000"


# --------------------------------------------------------------------------- numbers


#: How a number is read: a count, a fraction shown as percent, hours, or a rate per 1,000.
Unit = Literal["count", "percent", "hours", "per_1000"]
_UNITS: dict[str, int] = {"count": 0, "percent": 1, "hours": 1, "per_1000": 2}


def format_number(
    value: float | None, *, unit: Unit | None = None, digits: int | None = None
) -> str:
    """Human text for a number: thousands separators and the unit.

    Parameters
    ----------
    value
        The number; ``None``, NaN and infinities give ``"–"``.
    unit
        ``"count"`` (the default when ``None``), ``"percent"`` (``value`` is a
        fraction, 0.123 is 12.3%), ``"hours"`` (shown in days from 48 h on) or
        ``"per_1000"``.
    digits
        Decimal places; by default 0 for counts, 1 for percent and hours, 2 per 1,000.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(12345)
    '12,345'
    >>> format_number(0.1234, unit="percent")
    '12.3%'
    >>> format_number(4.25, unit="hours"), format_number(74.4, unit="hours")
    ('4.3 h', '3.1 d')
    >>> format_number(16.25, digits=1), format_number(-0.04, digits=1)
    ('16.3', '0.0')
    >>> format_number(1.234, unit="per_1000"), format_number(None)
    ('1.23 per 1k', '–')
    """
    unit = unit or "count"
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(_UNITS)}")
    if value is None or not math.isfinite(value):
        return "–"
    places = _UNITS[unit] if digits is None else digits
    suffix = ""
    if unit == "percent":
        value, suffix = value * 100, "%"
    elif unit == "hours":
        value, suffix = (value / 24, " d") if abs(value) >= 48 else (value, " h")
    elif unit == "per_1000":
        suffix = " per 1k"
    # Halves round away from zero on the number as written (16.25 -> 16.3), as the
    # browser's tables and spreadsheets do, so the brief and the page agree.
    shown = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if shown == 0:
        shown = Decimal(0).quantize(shown)  # no "-0.0"
    return f"{shown:,.{places}f}{suffix}"


# --------------------------------------------------------------------------- numbers


def format_count(value: float | None) -> str:
    """A count with thousands separators.

    >>> format_count(12345), format_count(None)
    ('12,345', '–')
    """
    return format_number(value, unit="count")


def format_mean(value: float | None, digits: int = 1) -> str:
    """A mean of counts (or any plain number), ``digits`` decimal places.

    >>> format_mean(1234.56), format_mean(3.14159, 0)
    ('1,234.6', '3')
    """
    return format_number(value, unit="count", digits=digits)


def format_share(value: float | None) -> str:
    """A fraction as a whole percentage.

    >>> format_share(0.974)
    '97%'
    """
    return format_number(value, unit="percent", digits=0)


def format_value(value: float | None, unit: str) -> str:
    """A measure in its unit (``count``, ``percent``, ``hours``; rates per 1,000 as plain
    numbers: the label says it).

    >>> format_value(0.123, "percent"), format_value(74.4, "hours"), format_value(1.234, "per_1000")
    ('12.3%', '3.1 d', '1.23')
    """
    if unit == _PER_1000:
        return format_number(value, unit="count", digits=2)
    return format_number(value, unit=cast(Unit, unit))


def format_relative(value: float | None) -> str:
    """A relative change (a fraction) as a signed percentage.

    >>> format_relative(0.125), format_relative(-0.5), format_relative(None)
    ('+12.5%', '-50.0%', '–')
    """
    return "–" if value is None else f"{value * 100:+.1f}%"


# --------------------------------------------------------------------------- changes and tests


def describe_change(value: float | None, previous: float | None, unit: str) -> str:
    """``up 12.0%``, ``down 3.1 pp`` (percent KPIs move in points), ``unchanged``.

    >>> describe_change(112, 100, "count"), describe_change(0.2, 0.25, "percent")
    ('up 12.0%', 'down 5.0 pp')
    >>> describe_change(5, 0, "count")
    'up 5 from 0'
    """
    if value is None or previous is None:
        return "not comparable"
    if value == previous:
        return "unchanged"
    way = "up" if value > previous else "down"
    if unit == "percent":
        points = f"{abs(value - previous) * 100:.1f}"
        return "unchanged to 0.1 pp" if points == "0.0" else f"{way} {points} pp"
    if previous == 0:
        return f"{way} {format_value(abs(value), unit)} from 0"
    return f"{way} {abs(value - previous) / abs(previous) * 100:.1f}%"


def format_delta(delta: float, unit: Unit) -> str:
    """An absolute change in its unit, signed (a KPI card's delta): ``+14``, ``-4.4 pp``
    (percent KPIs move in points), ``+3.1 h``.

    >>> format_delta(14, "count"), format_delta(-0.044, "percent"), format_delta(3.1, "hours")
    ('+14', '-4.4 pp', '+3.1 h')
    """
    sign = "+" if delta >= 0 else "-"
    size = abs(delta)
    return sign + (f"{size * 100:.1f} pp" if unit == "percent" else format_number(size, unit=unit))


def format_change(value: float | None, previous: float | None, unit: str) -> str:
    """A table's change cell: ``+12.0%``, ``-5.0 pp`` (percent KPIs in points), ``–``.

    >>> format_change(112, 100, "count"), format_change(0.2, 0.25, "percent")
    ('+12.0%', '-5.0 pp')
    """
    if value is None or previous is None:
        return "–"
    sign = "+" if value >= previous else "-"
    if unit == "percent":
        points = f"{abs(value - previous) * 100:.1f}"
        return f"{'' if points == '0.0' else sign}{points} pp"
    if previous == 0:
        return f"{sign}{format_value(abs(value - previous), unit)}"
    return f"{sign}{abs(value - previous) / abs(previous) * 100:.1f}%"


def format_p(p: float | None) -> str:
    """A p- or q-value: ``< 0.001``, ``0.031`` or ``–``.

    >>> format_p(0.0004), format_p(0.03149)
    ('< 0.001', '0.031')
    """
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def describe_test(p: float | None, name: str = "p", *, alpha: float = ALPHA) -> str:
    """A test's verdict at level ``alpha`` and its p- (or q-) value.

    >>> describe_test(0.003), describe_test(0.41, "q"), describe_test(None)
    ('significant, p = 0.003', 'not significant, q = 0.410', 'not tested')
    """
    if p is None:
        return "not tested"
    verdict = "significant" if p < alpha else "not significant"
    shown = format_p(p)
    return f"{verdict}, {name} {shown if shown.startswith('<') else '= ' + shown}"


# --------------------------------------------------------------------------- dates


def format_day(day: date) -> str:
    """A day: ``3 Mar 2026``.

    >>> format_day(date(2026, 3, 3))
    '3 Mar 2026'
    """
    return f"{day.day} {day:%b %Y}"


def format_period(monday: date) -> str:
    """The seven days from ``monday``: ``16–22 Nov 2026``, ``30 Mar–5 Apr 2026``.

    >>> format_period(date(2026, 11, 16)), format_period(date(2026, 3, 30))
    ('16–22 Nov 2026', '30 Mar–5 Apr 2026')
    >>> format_period(date(2025, 12, 29))
    '29 Dec 2025–4 Jan 2026'
    """
    sunday = monday + timedelta(days=6)
    first = f"{monday.day}" if monday.month == sunday.month else f"{monday.day} {monday:%b}"
    if monday.year != sunday.year:
        first = format_day(monday)
    return f"{first}–{format_day(sunday)}"


def format_days(first: date, last: date) -> str:
    """The days ``first`` to ``last``, without a year unless they span two: ``16 Nov``,
    ``16–22 Nov``, ``30 Mar–5 Apr``, ``29 Dec 2025–4 Jan 2026``.

    >>> format_days(date(2026, 11, 16), date(2026, 11, 16))
    '16 Nov'
    >>> format_days(date(2026, 11, 16), date(2026, 11, 22))
    '16–22 Nov'
    >>> format_days(date(2026, 3, 30), date(2026, 4, 5))
    '30 Mar–5 Apr'
    >>> format_days(date(2025, 12, 29), date(2026, 1, 4))
    '29 Dec 2025–4 Jan 2026'
    """
    if first == last:
        return f"{first.day} {first:%b}"
    if first.year != last.year:
        return f"{format_day(first)}–{format_day(last)}"
    if first.month == last.month:
        return f"{first.day}–{last.day} {last:%b}"
    return f"{first.day} {first:%b}–{last.day} {last:%b}"


def format_moment(moment: datetime) -> str:
    """A moment (UTC) to the minute: ``3 Mar 2026 14:05 UTC``.

    >>> format_moment(datetime(2026, 3, 3, 14, 5, 59))
    '3 Mar 2026 14:05 UTC'
    """
    return f"{format_day(moment.date())} {moment:%H:%M} UTC"


def format_span(start: datetime, end: datetime, freq: str) -> str:
    """The days (or, ``freq="weekly"``, the weeks) from ``start`` to ``end``, without
    the year.

    >>> format_span(datetime(2026, 3, 2), datetime(2026, 3, 4), "daily")
    '2 Mar to 4 Mar'
    >>> format_span(datetime(2026, 3, 2), datetime(2026, 3, 2), "weekly")
    'week of 2 Mar'
    """
    if freq == "weekly":
        if start == end:
            return f"week of {start.day} {start:%b}"
        return f"weeks of {start.day} {start:%b} to {end.day} {end:%b}"
    if start.date() == end.date():
        return f"{start.day} {start:%b}"
    return f"{start.day} {start:%b} to {end.day} {end:%b}"


def format_date(value: object) -> str:
    """A date or datetime as its day (``3 Mar 2026``); ``–`` when missing."""
    if value is None:
        return "–"
    day = value.date() if isinstance(value, datetime) else value
    return format_day(cast(date, day))


# --------------------------------------------------------------------------- labels


#: Codes whose words are not the code with spaces: abbreviations and brand names.
_WORDS: Mapping[str, str] = {
    "obgyn": "OB-GYN",
    "ios": "iOS",
    "ml_model": "ML model",
    "no_show": "No-show",
    "no_show_abuse": "No-show abuse",
    "sla": "SLA",
    "p90": "p90",
}


def humanise(label: object) -> str:
    """A code as words: ``fake_review`` -> ``Fake review``; the first letter upper case,
    later letters as they are (``FL`` and ``Total`` stay); abbreviations and brands as
    they are written (``obgyn`` -> ``OB-GYN``, ``ios`` -> ``iOS``); ``–`` when missing.
    The one rule for every label on a page, chart or brief (:func:`humanised` is its
    column form).

    >>> humanise("fake_review"), humanise("Total"), humanise("FL"), humanise(None)
    ('Fake review', 'Total', 'FL', '–')
    >>> humanise("obgyn"), humanise("ios"), humanise("ml_model")
    ('OB-GYN', 'iOS', 'ML model')

    A team's own codes may join words with hyphens (``fake-reviews``): a lower-case code
    reads them as spaces too; words already written stay as they are.

    >>> humanise("fake-reviews"), humanise("Year-over-year")
    ('Fake reviews', 'Year-over-year')
    """
    if label is None:
        return "–"
    if str(label) in _WORDS:
        return _WORDS[str(label)]
    text = str(label)
    if _CODE.fullmatch(text):
        text = text.replace("-", " ")
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


#: A code, not words: lower-case letters and digits joined by ``_`` or ``-``.
_CODE = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")


def humanised(label: pl.Expr) -> pl.Expr:
    """``fake_review`` -> ``Fake review``, vectorised, with the same special words as
    :func:`humanise` (later letters keep their case, so ``Total`` stays ``Total``;
    nulls stay null).

    >>> pl.Series(["fake_review", "obgyn", "fake-reviews", None]).to_frame("c").select(
    ...     humanised(pl.col("c")))["c"].to_list()
    ['Fake review', 'OB-GYN', 'Fake reviews', None]
    """
    code = label.str.contains(f"^{_CODE.pattern}$")
    text = pl.when(code).then(label.str.replace_all("-", " ")).otherwise(label)
    text = text.str.replace_all("_", " ")
    plain = text.str.slice(0, 1).str.to_uppercase() + text.str.slice(1)
    return label.replace_strict(dict(_WORDS), default=plain, return_dtype=pl.String)


#: How a slice of everything reads.
ALL_LABEL = "All"


def format_slice(key: str) -> str:
    """A slice key (``category=other|specialty=obgyn``, or the movers' ``category=other ·
    specialty=obgyn``) in words: its values, humanised, joined by a middle dot (``Other ·
    OB-GYN``); the whole (``all``) reads ``All``. A key that does not parse is shown as it
    is, never raised.

    >>> format_slice("category=other|specialty=obgyn")
    'Other · OB-GYN'
    >>> format_slice("source=ml_model · platform=ios")
    'ML model · iOS'
    >>> format_slice("platform=ios"), format_slice("all"), format_slice("odd")
    ('iOS', 'All', 'odd')
    """
    if key == "all":
        return ALL_LABEL
    parts = [part.partition("=") for part in key.replace(" · ", "|").split("|")]
    if not all(sep for _, sep, _ in parts):
        return key
    return " · ".join(humanise(value) for _, _, value in parts)


def sliced(key: pl.Expr) -> pl.Expr:
    """:func:`format_slice` as an expression, for a table's slice column (nulls stay null).

    >>> pl.DataFrame({"s": ["category=other|specialty=obgyn", "all", None]}).select(
    ...     sliced(pl.col("s"))
    ... )["s"].to_list()
    ['Other · OB-GYN', 'All', None]
    """
    return key.map_elements(format_slice, return_dtype=pl.String, skip_nulls=True)


def significance(p: float | None, *, alpha: float = ALPHA) -> str:
    """A test's verdict in words only (its number goes on hover,
    :func:`significance_note`): ``significant``, ``not significant`` or ``not tested``.

    >>> significance(0.003), significance(0.41), significance(None)
    ('significant', 'not significant', 'not tested')
    """
    if p is None:
        return "not tested"
    return "significant" if p < alpha else "not significant"


def significance_note(p: float | None, name: str = "p") -> str:
    """The number behind :func:`significance`, for a tooltip: ``q = 0.003``,
    ``p < 0.001``, or ``not tested``.

    >>> significance_note(0.003, "q"), significance_note(1e-9), significance_note(None)
    ('q = 0.003', 'p < 0.001', 'not tested')
    """
    if p is None:
        return "not tested"
    shown = format_p(p)
    return f"{name} {shown}" if shown.startswith("<") else f"{name} = {shown}"


# --------------------------------------------------------------------------- table cells


#: How a table cell of each format reads: ``count``, ``mean``, ``signed``, ``rel``,
#: ``percent``, ``pp``, ``hours``, ``p``, ``score``, ``date``, ``bool``, ``text``, and
#: ``figure`` (text already formatted as a number).
CELL_FORMATS: Mapping[str, Callable[[Any], str]] = {
    "count": format_count,
    "mean": format_mean,
    "signed": lambda v: "–" if v is None else f"{v:+,.0f}",
    "rel": format_relative,
    "percent": lambda v: format_number(v, unit="percent"),
    "pp": lambda v: "–" if v is None else f"{v * 100:+.1f} pp",
    "hours": lambda v: format_number(v, unit="hours"),
    "p": format_p,
    "score": lambda v: "–" if v is None else f"{v:.1f}",
    "date": format_date,
    "bool": lambda v: "–" if v is None else ("yes" if v else "no"),
    "text": lambda v: "–" if v is None else str(v),
    "figure": lambda v: "–" if v is None else str(v),
}
