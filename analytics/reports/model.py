"""What a weekly brief is: its audiences, sections and tables, and the weeks it may cover.

A :class:`Brief` is one ISO week written up for one :data:`Audience`; it holds
:class:`Section` objects (sentences that state their numbers, :class:`Table` objects and
plotly figures). A product brief covers complete weeks only (:func:`product_week`,
:class:`IncompleteWeek`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, get_args

import plotly.graph_objects as go
import polars as pl

from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD
from analytics.core.calendar import WEEK, is_complete, iso_week
from analytics.core.filters import DIMENSIONS, Filters
from analytics.core.models import Role
from analytics.present.formatting import CELL_FORMATS, format_moment, format_period

__all__ = [
    "AUDIENCES",
    "READER",
    "TABLE_ROWS",
    "Audience",
    "Brief",
    "IncompleteWeek",
    "Section",
    "Table",
    "product_week",
]

Audience = Literal["leadership", "product"]
#: Who a brief is written for.
AUDIENCES: tuple[str, ...] = get_args(Audience)
#: The brief reads what leadership may (numbers, ring ids) and publishes per audience.
READER = Role.leadership
#: The most rows a table of a brief shows.
TABLE_ROWS = 15


class IncompleteWeek(ValueError):
    """A product brief asked for a week still being counted: read on two days, its exact
    totals would differ by the cases of one day, a count that may be below the threshold."""


def product_week(week: date, newest: datetime | None) -> date:
    """The Monday of the week a product brief may cover: the week holding ``week`` when
    the data (newest record ``newest``) already runs to its end, else the newest complete
    week before it.

    >>> product_week(date(2026, 4, 29), datetime(2026, 5, 1, 23, 4))  # W18 is running
    datetime.date(2026, 4, 20)
    >>> product_week(date(2026, 4, 21), datetime(2026, 5, 1, 23, 4))
    datetime.date(2026, 4, 20)
    >>> product_week(date(2099, 1, 1), datetime(2026, 5, 3, 23, 59, 59))  # W18 is complete
    datetime.date(2026, 4, 27)
    """
    monday = week - timedelta(days=week.weekday())
    if newest is None or is_complete(monday, newest):
        return monday
    latest = newest.date() - timedelta(days=newest.weekday())
    return latest if is_complete(latest, newest) else latest - WEEK


@dataclass(frozen=True)
class Table:
    """A table of a brief: typed values, how each column reads, which hold suppressed counts.

    ``formats`` maps a column to one of ``count``, ``mean``, ``signed``, ``rel``,
    ``percent``, ``pp``, ``hours``, ``p``, ``score``, ``date``, ``bool``, ``text`` or
    ``figure`` (text already formatted as a number, right-aligned); the default follows
    the dtype. In the columns named in ``suppressed`` a null is a suppressed cell (see
    :func:`analytics.access.suppression.suppress`) and reads :data:`SUPPRESSED_TEXT`.

    >>> t = Table("Cases", pl.DataFrame({"Category": ["spam", "other"], "Cases": [12, None]}),
    ...           suppressed=("Cases",))
    >>> t.text().rows()
    [('spam', '12'), ('other', 'hidden')]
    """

    title: str
    frame: pl.DataFrame
    formats: Mapping[str, str] = field(default_factory=dict)
    suppressed: tuple[str, ...] = ()
    threshold: int = SUPPRESSION_THRESHOLD
    note: str = ""
    #: Hover text of a column's cells: a shown column -> the column of ``frame`` holding
    #: the text (e.g. the q-value behind "significant"), itself not shown.
    hover: Mapping[str, str] = field(default_factory=dict)

    def shown_columns(self) -> list[str]:
        """The columns a reader sees (not those holding hover text)."""
        behind = set(self.hover.values())
        return [c for c in self.frame.columns if c not in behind]

    def format_of(self, column: str) -> str:
        """How ``column`` reads (its declared format, else one from its dtype)."""
        if column in self.formats:
            return self.formats[column]
        dtype = self.frame.schema[column]
        if dtype.is_integer():
            return "count"
        if dtype.is_float():
            return "mean"
        if dtype == pl.Boolean:
            return "bool"
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            return "date"
        return "text"

    def text(self, *, with_hover: bool = False) -> pl.DataFrame:
        """Every cell as display text: numbers formatted, suppressed cells ``"hidden"``.
        ``with_hover``: a cell with hover text (:attr:`hover`) carries it in brackets, for
        a view with no hover, such as the Reports page's preview (the verdict and the
        numbers behind it stay in one sentence).

        >>> t = Table("Movers", pl.DataFrame({"Slice": ["spam"], "Significance":
        ...     ["significant"], "Tests": ["q = 0.01"]}), hover={"Significance": "Tests"})
        >>> t.text().row(0), t.text(with_hover=True).row(0)
        (('spam', 'significant'), ('spam', 'significant (q = 0.01)'))
        """
        columns = {}
        for name in self.shown_columns():
            show = CELL_FORMATS[self.format_of(name)]
            cells = [
                SUPPRESSED_TEXT if value is None and name in self.suppressed else show(value)
                for value in self.frame[name].to_list()
            ]
            if with_hover and name in self.hover:
                behind = self.frame[self.hover[name]].to_list()
                cells = [
                    f"{c} ({str(h).replace('; ', ', ').replace(' against the ', ' vs ')})"
                    if h
                    else c
                    for c, h in zip(cells, behind, strict=True)
                ]
            columns[name] = cells
        return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))

    def numeric_columns(self) -> list[str]:
        """Columns right-aligned when shown."""
        flush_left = ("text", "bool", "date")
        return [c for c in self.shown_columns() if self.format_of(c) not in flush_left]


@dataclass(frozen=True)
class Section:
    """A part of a brief: a title, sentences of numbers, tables and figures."""

    key: str
    title: str
    sentences: tuple[str, ...]
    tables: tuple[Table, ...] = ()
    figures: tuple[go.Figure, ...] = ()


@dataclass(frozen=True)
class Brief:
    """One week written up for one audience (see :func:`analytics.reports.build.build_brief`)."""

    week: date
    audience: Audience
    has_data: bool
    sections: tuple[Section, ...]
    as_of: datetime | None
    generated_at: datetime
    filters: Filters = field(default_factory=Filters)
    note: str | None = None
    threshold: int = SUPPRESSION_THRESHOLD
    #: Filters asked for but not applied (the product brief covers the whole platform).
    ignored_filters: Filters = field(default_factory=Filters)

    @property
    def label(self) -> str:
        """The ISO week, e.g. ``2026-W47``."""
        return iso_week(self.week)

    @property
    def title(self) -> str:
        """``Lookout weekly brief — 2026-W47 (leadership)``."""
        return f"Lookout weekly brief — {self.label} ({self.audience})"

    @property
    def period(self) -> str:
        """The week's days, e.g. ``16–22 Nov 2026``."""
        return format_period(self.week)

    def section(self, key: str) -> Section | None:
        """The section with this key, if the brief has it."""
        return next((s for s in self.sections if s.key == key), None)

    def meta(self) -> list[str]:
        """What the header says about the data: period, freshness, filters."""
        parts = [self.period]
        if self.as_of is not None:
            parts.append(f"data as of {format_moment(self.as_of)}")
        parts.append(f"generated {format_moment(self.generated_at)}")
        parts.append(f"filters: {_describe_filters(self.filters)}")
        if not self.ignored_filters.is_empty():
            parts.append(
                f"not applied to the {self.audience} brief: "
                f"{_describe_filters(self.ignored_filters)}"
            )
        return parts

    def audience_line(self) -> str:
        """Who the brief is for and what it holds back."""
        if self.audience == "product":
            return (
                "For product, policy and service partners: aggregates of the whole platform "
                "(no filters), no case text and no identifiers. Counts below "
                f"{self.threshold} are hidden, with as few others as it takes so that no "
                f"hidden count can be worked out from a total; hidden cells read "
                f'"{SUPPRESSED_TEXT}", and every change and test uses shown numbers only.'
            )
        return (
            "For T&S leadership: every number with its test. Contains identifiers of "
            "rings (account ids); no case text. Do not forward outside T&S."
        )


def _describe_filters(filters: Filters) -> str:
    chosen = [f"{d} {', '.join(filters.where(d))}" for d in DIMENSIONS if filters.where(d)]
    return "; ".join(chosen) if chosen else "all data"
