"""Weekly insight briefs: one week's numbers written up for leadership or for product.

:func:`build_brief` reads a week through the existing loaders and analytics
(:mod:`analytics.metrics.trends`, :mod:`analytics.views.monitor`) and returns a :class:`Brief`: the
week, the audience and its sections, each a list of sentences that state the numbers
behind them, tables and plotly figures. :func:`render_html` writes it as one
self-contained HTML file (plotly.js inline once, no external resource of any kind) and
:func:`render_markdown` as a Markdown summary to paste into an email or a chat.

Two audiences:

- **leadership**: every number, with its test: KPIs against the previous week and the
  4-week mean, top movers with q-values, anomalies with their root cause, emerging
  topics (terms and counts), rings (ids, sizes), SLA, backlog, known events. No case
  text.
- **product**: aggregates only, for people outside T&S, under one guarantee: **no
  combination of product outputs reveals a count below** :data:`SUPPRESSION_THRESHOLD`.
  A product user can ask for any week, set any filter on the page or in a URL, open the
  Overview, and compare as many briefs as they like; the old brief honoured filters and
  hid small cells one brief at a time, so subtracting a filtered brief from the
  unfiltered one gave the hidden cells back exactly (issue 14). The mechanism:

  1. *No free filters.* The product brief always covers the whole platform; filters
     given for it are ignored and named in :attr:`Brief.ignored_filters` (the page says
     so). Each week therefore has exactly one product brief, and there is nothing to
     subtract it from.
  2. *One fixed table of counts:* new cases per category and week, with the week's
     exact total (:data:`TOTAL_LABEL`). No second breakdown (platform, region...) shares
     that total: two margins of one table could be played against each other.
  3. *Primary and complementary suppression* (:func:`suppress`): the cells below the
     threshold are hidden, then the smallest shown cells too until at least two are
     hidden and the hidden cells add up to at least the threshold, so the total minus
     the shown cells bounds no hidden cell below the threshold. Every hidden cell reads
     :data:`SUPPRESSED_TEXT`, small or not, so the marker says nothing about its size.
     A total below the threshold is hidden with all its cells.
  4. *Decided per (week, cell) from that week's data only*, so every brief showing a
     week (as this week, previous week, in the 4-week mean, in the charts) shows it the
     same way, and everything derived (changes, means, tests, sentences) is computed
     from shown numbers only.
  5. *Everything else carries no count below the threshold and no exact sub-count whose
     complement is shown*: rates only where the counts on both sides of them are at least
     the threshold in both weeks (so neither count they could give back is small);
     medians only over at least that many cases; the backlog at the week's end only
     (the week before, seen through a later brief's window, would differ from its own
     brief's); topic counts only while the week's total minus the shown ones stays at
     or above the threshold; ring sizes suppressed; anomalies by score and shares of the
     change, never counts; no prevalence (with weekly active accounts known elsewhere it
     would give back the total).

  Noise calibrated to a privacy budget was the alternative; it was not chosen because
  product teams read these counts as exact and compare weeks, and a fixed table with
  complementary suppression gives the guarantee exactly, which ``tests/test_differencing.py``
  checks with the attack itself: every number of every product brief of every week as
  linear equations over the true category-week counts, and for each small true count
  the least and greatest values a linear program finds consistent with them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast, get_args

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from analytics import access
from analytics.core import db
from analytics.core.db import Role
from analytics.metrics import rootcause, trends
from analytics.metrics.stats import ALPHA, fdr, poisson_test
from analytics.present import detector_charts, theme, trend_charts
from analytics.sources import load
from analytics.views import monitor

__all__ = [
    "AUDIENCES",
    "SUPPRESSED_TEXT",
    "SUPPRESSION_THRESHOLD",
    "TOTAL_LABEL",
    "Audience",
    "Brief",
    "IncompleteWeek",
    "Section",
    "Table",
    "build_brief",
    "product_week",
    "render_html",
    "render_markdown",
    "suppress",
]

Audience = Literal["leadership", "product"]
#: Who a brief is written for.
AUDIENCES: tuple[str, ...] = get_args(Audience)
#: Counts below this are suppressed in the product brief.
#: The brief reads what leadership may (numbers, ring ids) and publishes per audience.
_READER = Role.leadership
SUPPRESSION_THRESHOLD = 10
#: How a suppressed cell reads: the same for a small cell and for one hidden to protect
#: it (a complementary cell may be large), so the marker says nothing about its size.
SUPPRESSED_TEXT = "hidden"
#: The label of a total row: the exact total of every cell, hidden ones included
#: (itself hidden when below the threshold).
TOTAL_LABEL = "Total"
#: Weeks of history charted before the focus week.
HISTORY_WEEKS = 12

_WEEK = timedelta(days=7)
_BY_SCORE = ("score", "slice", "freq")  # ties broken by name: the same order on every database
_TOP_INCIDENTS = 5
_TABLE_ROWS = 15
_MD_ROWS = 12
_MOVER_SENTENCES = 5
_SEVERITIES = ("critical", "high", "medium", "low")
_DURATION_SAMPLE = {"ttfr_median_h": "responded", "ttr_median_h": "resolved"}
# Rates the product brief may show (prevalence would give back the true total of cases).
_PRODUCT_RATES = (
    "proactive_rate",
    "action_rate",
    "precision",
    "ttfr_median_h",
    "ttr_median_h",
    "sla_breach_rate",
    "overturn_rate",
    "repeat_rate",
)
# Columns of the KPI tables: numbers already written in their units.
_FIGURES = dict.fromkeys(
    ("This week", "Previous week", "Change", "p (previous)", "4-week mean", "p (4 weeks)"),
    "figure",
)
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_PER_1000 = "per_1000"


# --------------------------------------------------------------------------- the brief


class IncompleteWeek(ValueError):
    """A product brief asked for a week still being counted: read on two days, its exact
    totals would differ by the cases of one day, a count that may be below the threshold."""


def _complete(monday: date, newest: datetime | None) -> bool:
    return newest is not None and newest >= _midnight(monday + _WEEK) - timedelta(seconds=1)


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
    if newest is None or _complete(monday, newest):
        return monday
    latest = newest.date() - timedelta(days=newest.weekday())
    return latest if _complete(latest, newest) else latest - _WEEK


@dataclass(frozen=True)
class Table:
    """A table of a brief: typed values, how each column reads, which hold suppressed counts.

    ``formats`` maps a column to one of ``count``, ``mean``, ``signed``, ``rel``,
    ``percent``, ``pp``, ``hours``, ``p``, ``score``, ``date``, ``bool``, ``text`` or
    ``figure`` (text already formatted as a number, right-aligned); the default follows
    the dtype. In the columns named in ``suppressed`` a null is a suppressed cell (see
    :func:`suppress`) and reads :data:`SUPPRESSED_TEXT`.

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

    def text(self) -> pl.DataFrame:
        """Every cell as display text: numbers formatted, suppressed cells ``"hidden"``."""
        columns = {}
        for name in self.frame.columns:
            show = _FORMATTERS[self.format_of(name)]
            columns[name] = [
                SUPPRESSED_TEXT if value is None and name in self.suppressed else show(value)
                for value in self.frame[name].to_list()
            ]
        return pl.DataFrame(columns, schema=dict.fromkeys(self.frame.columns, pl.String))

    def numeric_columns(self) -> list[str]:
        """Columns right-aligned when shown."""
        flush_left = ("text", "bool", "date")
        return [c for c in self.frame.columns if self.format_of(c) not in flush_left]


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
    """One week written up for one audience (see :func:`build_brief`)."""

    week: date
    audience: Audience
    has_data: bool
    sections: tuple[Section, ...]
    as_of: datetime | None
    generated_at: datetime
    filters: load.Filters = field(default_factory=load.Filters)
    note: str | None = None
    threshold: int = SUPPRESSION_THRESHOLD
    #: Filters asked for but not applied (the product brief covers the whole platform).
    ignored_filters: load.Filters = field(default_factory=load.Filters)

    @property
    def label(self) -> str:
        """The ISO week, e.g. ``2026-W47``."""
        return trends.iso_week(self.week)

    @property
    def title(self) -> str:
        """``Lookout weekly brief — 2026-W47 (leadership)``."""
        return f"Lookout weekly brief — {self.label} ({self.audience})"

    @property
    def period(self) -> str:
        """The week's days, e.g. ``16–22 Nov 2026``."""
        return _period(self.week)

    def section(self, key: str) -> Section | None:
        """The section with this key, if the brief has it."""
        return next((s for s in self.sections if s.key == key), None)

    def meta(self) -> list[str]:
        """What the header says about the data: period, freshness, filters."""
        parts = [self.period]
        if self.as_of is not None:
            parts.append(f"data as of {_when(self.as_of)}")
        parts.append(f"generated {_when(self.generated_at)}")
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


# --------------------------------------------------------------------------- suppression


def suppress(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    threshold: int = SUPPRESSION_THRESHOLD,
    label: str | None = None,
) -> pl.DataFrame:
    """Hide small counts, and with a published total enough others to protect them.

    Every cell of ``columns`` below ``threshold`` (zero included) becomes null (primary
    suppression); a :class:`Table` shows it as :data:`SUPPRESSED_TEXT`. With ``label`` (a
    text column) each column is one published table with its exact total, added as a
    last row labelled :data:`TOTAL_LABEL`; then, when any cell is hidden, the smallest
    shown cells are hidden too (complementary suppression, ties by label) until at least
    two are hidden and the hidden cells add up to at least ``threshold``. The total minus
    the shown cells is then the sum of two or more hidden cells, at least ``threshold``:
    each hidden cell could be anything from 0 to that sum. A total below ``threshold`` is
    hidden (and so is every cell under it). Each column is decided from its own values
    only, whatever the row order, so the same counts are always suppressed the same way.

    Parameters
    ----------
    frame
        One row per cell, ``columns`` non-negative integer counts (no nulls).
    columns
        The count columns to suppress, each a table of its own.
    threshold
        The smallest count shown.
    label
        A text column naming the cells; with it, a total row and complementary
        suppression. Without it no total is published and only small cells are hidden.

    Examples
    --------
    >>> cells = pl.DataFrame({"category": ["spam", "other", "fraud"], "cases": [120, 4, 35]})
    >>> suppress(cells, ["cases"], label="category").rows()
    [('spam', 120), ('other', None), ('fraud', None), ('Total', 159)]
    >>> suppress(cells, ["cases"])["cases"].to_list()
    [120, None, 35]
    >>> suppress(cells, ["cases"], threshold=50)["cases"].to_list()
    [120, None, None]
    """
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, not {threshold}")
    missing = [c for c in [*columns, *([label] if label else [])] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {frame.columns}")
    if any(frame[c].null_count() for c in columns):
        raise ValueError(f"columns {list(columns)} must hold counts, not nulls")
    names = [str(v) for v in frame[label]] if label else list(range(frame.height))
    hidden = frame.with_columns(
        pl.Series(
            c,
            [
                None if hide else value
                for value, hide in zip(
                    frame[c].to_list(),
                    _hidden(frame[c].to_list(), names, threshold=threshold, total=bool(label)),
                    strict=True,
                )
            ],
            dtype=frame.schema[c],
        )
        for c in columns
    )
    if label is None:
        return hidden
    hidden = hidden.with_columns(pl.col(label).cast(pl.String))
    total = pl.DataFrame(
        {
            label: [TOTAL_LABEL],
            **{c: [_at_least(int(frame[c].sum()), threshold)] for c in columns},
        }
    )
    return pl.concat([hidden, total], how="diagonal_relaxed").select(frame.columns)


def _hidden(
    values: Sequence[int], names: Sequence[object], *, threshold: int, total: bool
) -> list[bool]:
    """Which cells of one table to hide: below ``threshold``, and with a published
    ``total`` the smallest others (ties by name) until at least two are hidden that add
    up to at least ``threshold``.

    >>> _hidden([120, 4, 35, 30], "abcd", threshold=10, total=True)
    [False, True, False, True]
    >>> _hidden([120, 4, 6, 30], "abcd", threshold=10, total=True)
    [False, True, True, False]
    >>> _hidden([12, 0, 0], "abc", threshold=10, total=True)
    [True, True, True]
    >>> _hidden([120, 4, 35, 30], "abcd", threshold=10, total=False)
    [False, True, False, False]
    """
    hide = [v < threshold for v in values]
    if not total or not any(hide):
        return hide
    for i in sorted(range(len(values)), key=lambda i: (values[i], str(names[i]))):
        small = [v for v, h in zip(values, hide, strict=True) if h]
        if len(small) >= 2 and sum(small) >= threshold:
            break
        hide[i] = True
    return hide


def _at_least(value: float | None, threshold: int = SUPPRESSION_THRESHOLD) -> Any:
    """``value`` when it is at least ``threshold``, else None (hidden)."""
    return value if value is not None and value >= threshold else None


def _with_total(frame: pl.DataFrame, columns: Sequence[str], *, label: str) -> pl.DataFrame:
    """``frame`` and a ``Total`` row of each column's sum (leadership tables: nothing hidden).

    >>> _with_total(pl.DataFrame({"k": ["a", "b"], "n": [3, 4]}), ["n"], label="k").rows()
    [('a', 3), ('b', 4), ('Total', 7)]
    """
    frame = frame.with_columns(pl.col(label).cast(pl.String))
    total = frame.select(pl.lit(TOTAL_LABEL).alias(label), *[pl.col(c).sum() for c in columns])
    return pl.concat([frame, total], how="diagonal_relaxed").select(frame.columns)


def _protect_weeks(cells: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each week's category table suppressed on its own (:func:`suppress` with its
    total): the cells (``week``, ``category``, ``cases``, null when hidden) and the
    totals (``week``, ``cases``, null below the threshold).

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w] * 3, "category": ["spam", "other", "fraud"],
    ...                       "cases": [120, 4, 35]})
    >>> shown, totals = _protect_weeks(cells)
    >>> shown.select("category", "cases").rows(), totals["cases"].to_list()
    ([('fraud', None), ('other', None), ('spam', 120)], [159])
    """
    parts, totals = [], []
    for (week,), part in cells.sort("week", "category").group_by("week", maintain_order=True):
        out = suppress(part.select("category", "cases"), ["cases"], label="category")
        parts.append(out.head(part.height).with_columns(week=pl.lit(week, dtype=pl.Date)))
        totals.append((week, out["cases"][-1]))
    schema = {"week": pl.Date, "cases": pl.Int64}
    if not parts:
        return pl.DataFrame(schema={"week": pl.Date, "category": pl.String, **schema}), (
            pl.DataFrame(schema=schema)
        )
    return (
        pl.concat(parts).select("week", "category", "cases"),
        pl.DataFrame(totals, schema=schema, orient="row"),
    )


# --------------------------------------------------------------------------- building


def build_brief(
    engine: Engine,
    *,
    week: date,
    audience: Audience,
    note: str | None = None,
    filters: load.Filters | None = None,
    generated_at: datetime | None = None,
    role: Role | str,
) -> Brief:
    """Compute the brief of the ISO week holding ``week`` for ``audience``.

    ``filters`` narrow the leadership brief's trend numbers and narrative topics to
    their dimensions (their dates are replaced by the weeks the brief needs); anomalies
    and rings always cover all data, as on their pages. The product brief always covers
    the whole platform: filters given for it are not applied and are named in
    :attr:`Brief.ignored_filters` (a filtered brief could be subtracted from the whole
    one to give back a hidden cell). A week without cases gives a brief that says so.
    ``role`` is who asks: the leadership brief needs unsuppressed aggregates
    (:func:`analytics.access.require`); the product brief is open to every role.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    access.require(role, "suppressed" if audience == "product" else "aggregates")
    monday = week - timedelta(days=week.weekday())
    asked = replace(filters or load.Filters(), start=None, end=None)
    product = audience == "product"
    chosen = load.Filters() if product else asked
    window = replace(
        chosen,
        start=min(chosen.start or monday, monday - HISTORY_WEEKS * _WEEK),
        end=monday + timedelta(days=6),
    )
    cube = load.load_cube(engine, window)
    if product and cube.as_of is not None and not _complete(monday, cube.as_of):
        newest = product_week(monday, cube.as_of)
        raise IncompleteWeek(
            f"the product brief covers complete weeks only; the week of {monday:%d %b %Y} "
            f"is still being counted (the newest complete week starts {newest:%d %b %Y})"
        )
    as_of = _week_end(monday, cube.as_of)
    opened = cube.cases.filter(
        pl.col("opened_at").is_between(_midnight(monday), _midnight(monday + _WEEK), closed="left")
    )

    def brief(sections: tuple[Section, ...]) -> Brief:
        return Brief(
            week=monday,
            audience=audience,
            has_data=not opened.is_empty(),
            sections=sections,
            as_of=cube.as_of,
            generated_at=generated_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0),
            filters=chosen,
            note=(note or "").strip()[:2000] or None,
            ignored_filters=asked if product else load.Filters(),
        )

    if opened.is_empty():
        return brief((_no_data(engine, monday, chosen, product=product),))
    view = trends.weekly_view(cube, week=monday)
    cells, totals = _protect_weeks(_category_grid(view))
    table = _category_table(cells, totals, monday) if product else None
    incidents = monitor.recent_incidents(engine, end=as_of.date(), role=_READER)
    week_total = opened.height
    sections = (
        _product_headline(view, cube, table, totals) if table is not None else _headline(view),
        _product_movers(table, cells) if table is not None else _movers(view, cube),
        _anomalies(engine, incidents, monday, as_of, product=product),
        _emerging(engine, chosen, as_of, product=product, week_total=week_total),
        _service(view, cube, product=product),
        _known_events(cube.annotations, monday, incidents),
        _about(product=product, as_of=as_of, newest=cube.as_of),
    )
    return brief(sections)


def _week_end(monday: date, newest: datetime | None) -> datetime:
    """The focus week's ``as_of``: midnight after it, or after the newest day with data
    when that comes first (as the pages do)."""
    end = _midnight(monday + _WEEK)
    if newest is None:
        return end
    return min(end, _midnight(newest.date() + timedelta(days=1)))


def _no_data(engine: Engine, monday: date, filters: load.Filters, *, product: bool) -> Section:
    """The section of a week without cases; the product version names no count (the
    number of all cases, less the weekly totals, would give back a small week's)."""
    info = db.dataset_overview(engine)
    label = trends.iso_week(monday)
    scope = "" if filters.is_empty() else " matching these filters"
    sentences = [f"No cases{scope} were opened in {label} ({_period(monday)})."]
    count = "" if product else f"{info['counts']['cases']:,} "
    if info["first_case"] and info["newest"]:
        sentences.append(
            f"The data holds {count}cases opened from "
            f"{_day(info['first_case'].date())} to {_day(info['last_case'].date())}; "
            "pick a week in that range."
        )
    else:
        sentences.append("The database holds no cases yet.")
    return Section("no_data", "No data for this week", tuple(sentences))


# --------------------------------------------------------------------------- headline


def _headline(view: trends.WeeklyView) -> Section:
    label = trends.iso_week(view.week)
    rows = view.kpis.to_dicts()
    sentences = _provisional(view, label)
    sentences.append(_kpi_sentence(rows[0], baseline=True))
    moved = [r for r in rows[1:] if r["significant"] or r["significant_baseline"]]
    sentences += [_kpi_sentence(r, baseline=True) for r in moved]
    if not moved:
        sentences.append(
            f"No other KPI changed significantly against the previous week or the 4-week "
            f"mean ({len(rows) - 1} tested, significance level {ALPHA})."
        )
    partial = [r for r in rows if r["completeness"] is not None and r["completeness"] < 0.9]
    if partial:
        sentences.append(
            "Still moving: "
            + ", ".join(f"{r['label'].lower()} sees {r['completeness']:.0%}" for r in partial)
            + " of the week's cases so far."
        )
    table = Table("Headline KPIs", _kpi_frame(rows), _FIGURES)
    figures = (
        trend_charts.weekly_trend(
            view.series("new_cases"),
            view.annotations,
            title="New cases per week",
            y_title="new cases",
            focus=view.week,
        ),
        trend_charts.daily_trend(
            view.daily.filter(pl.col("day") >= view.week - 4 * _WEEK),
            view.annotations,
            title="New cases per day",
            y_title="new cases",
        ),
    )
    return Section("headline", "Headline", tuple(sentences), (table,), figures)


def _provisional(view: trends.WeeklyView, label: str) -> list[str]:
    if bool(view.kpis["provisional"].any()) and view.as_of is not None:
        return [
            f"{label} is still in progress (data up to {_when(view.as_of)}): its numbers "
            "are provisional."
        ]
    return []


def _kpi_sentence(row: Mapping[str, Any], *, baseline: bool) -> str:
    unit = str(row["unit"])
    text = f"{row['label']}: {_value(row['value'], unit)}"
    if row["previous"] is not None:
        text += (
            f", {_move(row['value'], row['previous'], unit)} on the previous week's "
            f"{_value(row['previous'], unit)} ({_tested(row['p_previous'])})"
        )
    if baseline and row["baseline"] is not None:
        text += f"; 4-week mean {_value(row['baseline'], unit)} ({_tested(row['p_baseline'])})"
    return text + "."


def _kpi_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    def verdict(row: Mapping[str, Any]) -> str:
        flags = [row["significant"], row["significant_baseline"]]
        return {
            (True, True): "both",
            (True, False): "vs previous",
            (False, True): "vs 4-week mean",
        }.get((bool(flags[0]), bool(flags[1])), "no")

    return pl.DataFrame(
        {
            "Metric": [r["label"] for r in rows],
            "This week": [_value(r["value"], r["unit"]) for r in rows],
            "Previous week": [_value(r["previous"], r["unit"]) for r in rows],
            "Change": [_delta(r["value"], r["previous"], r["unit"]) for r in rows],
            "p (previous)": [_pvalue(r["p_previous"]) for r in rows],
            "4-week mean": [_value(r["baseline"], r["unit"]) for r in rows],
            "p (4 weeks)": [_pvalue(r["p_baseline"]) for r in rows],
            "Significant": [verdict(r) for r in rows],
        }
    )


def _product_headline(
    view: trends.WeeklyView, cube: load.Cube, table: pl.DataFrame, totals: pl.DataFrame
) -> Section:
    """The product headline: the week's total of new cases (shown when at least the
    threshold), the protected backlog at the week's end, and rates with enough cases on
    both sides of them."""
    label = trends.iso_week(view.week)
    rows = table.filter(pl.col("category") != TOTAL_LABEL)
    total = table.filter(pl.col("category") == TOTAL_LABEL).row(0, named=True)
    backlog = _product_backlog(view.backlog, view.week)
    open_now = backlog.filter(pl.col("age_bucket") == TOTAL_LABEL)["open"][0]
    sentences = _provisional(view, label)
    sentences.append(_total_sentence(total))
    sentences.append(
        f"{rows['this'].count()} of {rows.height} categories are shown this week; the others "
        f"read {SUPPRESSED_TEXT}: fewer than {SUPPRESSION_THRESHOLD} cases, or hidden with "
        "them so that no small count can be worked out from the total."
    )
    sentences.append(_backlog_sentence(backlog, view.week, {}, product=True))
    rates, left_out = _product_rates(view, cube)
    sentences += [_kpi_sentence(r, baseline=False) for r in rates]
    if left_out:
        sentences.append(
            f"Not shown because fewer than {SUPPRESSION_THRESHOLD} cases lie on one side of "
            "them: " + ", ".join(s.lower() for s in left_out) + "."
        )
    this, prev = total["this"], total["previous"]
    frame = pl.DataFrame(
        {
            "Metric": ["New cases", "Open backlog at week end"] + [r["label"] for r in rates],
            "This week": [_cell(this), _cell(open_now)]
            + [_value(r["value"], r["unit"]) for r in rates],
            "Previous week": [_cell(prev), "–"] + [_value(r["previous"], r["unit"]) for r in rates],
            "Change": [_delta(this, prev, "count"), "–"]
            + [_delta(r["value"], r["previous"], r["unit"]) for r in rates],
            "p (previous)": [_pvalue(_count_p(this, prev)), "–"]
            + [_pvalue(r["p_previous"]) for r in rates],
        }
    )
    provisional = view.weekly.filter(pl.col("provisional"))["week"].implode()
    series = totals.select(
        "week",
        pl.col("cases").cast(pl.Float64).alias("value"),
        provisional=pl.col("week").is_in(provisional),
    )
    figure = trend_charts.weekly_trend(
        series,
        view.annotations,
        title="New cases per week (hidden below 10)",
        y_title="new cases",
        focus=view.week,
    )
    table_obj = Table(
        "Headline",
        frame,
        _FIGURES,
        note=f"Totals below {SUPPRESSION_THRESHOLD} read {SUPPRESSED_TEXT}; the backlog is "
        "given at the week's end only.",
    )
    return Section("headline", "Headline", tuple(sentences), (table_obj,), (figure,))


def _total_sentence(total: Mapping[str, Any]) -> str:
    """The week's new cases against the previous week and the 4-week mean (shown totals).

    >>> _total_sentence({"this": 120, "previous": 100, "mean_4w": 95.5})[:51]
    "New cases: 120, up 20.0% on the previous week's 100"
    >>> _total_sentence({"this": None, "previous": 12, "mean_4w": None})
    'New cases: hidden (fewer than 10); the previous week 12.'
    """
    this, prev, mean = total["this"], total["previous"], total["mean_4w"]
    if this is None:
        text = f"New cases: {SUPPRESSED_TEXT} (fewer than {SUPPRESSION_THRESHOLD})"
        if prev is not None:
            text += f"; the previous week {_count(prev)}"
        return text + "."
    text = f"New cases: {_count(this)}"
    if prev is not None:
        text += (
            f", {_move(this, prev, 'count')} on the previous week's {_count(prev)} "
            f"({_tested(_count_p(this, prev))})"
        )
    if mean is not None:
        text += f"; 4-week mean {_mean(mean)}"
    return text + "."


def _backlog_pair(backlog: pl.DataFrame, week: date) -> pl.DataFrame:
    """Open cases by age at the week's end (``this``) and a week earlier (``previous``)."""
    end = week + timedelta(days=6)
    now = backlog.filter(pl.col("week_end") == end).select("age_bucket", this="open")
    before = backlog.filter(pl.col("week_end") == end - _WEEK).select("age_bucket", previous="open")
    return now.join(before, on="age_bucket", how="left", maintain_order="left")


def _product_backlog(backlog: pl.DataFrame, week: date) -> pl.DataFrame:
    """Open cases by age at the week's end only, every age bucket (zeros included),
    suppressed with its total (``age_bucket``, ``open``; the total row last).

    Only the week's own end: the brief reads the 12 weeks before its week, so a later
    brief would see this week's end without the cases opened before its own window, and
    the two numbers would differ by a count that may be small.
    """
    end = week + timedelta(days=6)
    grid = pl.DataFrame({"age_bucket": list(trends.AGE_BUCKETS)})
    now = backlog.filter(pl.col("week_end") == end).select("age_bucket", "open")
    cells = grid.join(now, on="age_bucket", how="left").with_columns(
        pl.col("open").fill_null(0).cast(pl.Int64)
    )
    return suppress(cells, ["open"], label="age_bucket")


def _product_rates(
    view: trends.WeeklyView, cube: load.Cube
) -> tuple[list[dict[str, Any]], list[str]]:
    """KPI rows the product brief may show, and the labels of those left out.

    A rate is shown when, in the week and in the week before, at least
    :data:`SUPPRESSION_THRESHOLD` cases are counted in it and at least as many in its
    denominator are not (so neither count it could give back is small); a median when at
    least that many cases underlie it.
    """
    weekly = trends.weekly_metrics(cube)
    weeks = weekly.filter(pl.col("week").is_in([view.week, view.week - _WEEK]))
    kpis = {k.key: k for k in trends.KPIS}
    shown, left_out = [], []
    for row in view.kpis.filter(pl.col("key").is_in(_PRODUCT_RATES)).to_dicts():
        kpi = kpis[row["key"]]
        if kpi.num and kpi.den:
            sides = [pl.col(kpi.num), pl.col(kpi.den) - pl.col(kpi.num)]
        else:
            sides = [pl.col(_DURATION_SAMPLE[row["key"]])]
        fewest = weeks.select(pl.min_horizontal(sides).min()).item() if weeks.height == 2 else None
        if fewest is not None and fewest >= SUPPRESSION_THRESHOLD:
            shown.append(row)
        else:
            left_out.append(str(row["label"]))
    return shown, left_out


def _count_p(this: float | None, prev: float | None) -> float | None:
    if this is None or prev is None:
        return None
    return float(poisson_test([this], [1], [prev], [1])[0])


# --------------------------------------------------------------------------- movers


def _movers(view: trends.WeeklyView, cube: load.Cube) -> Section:
    four = trends.top_movers(cube, week=view.week, baseline="4w")
    table = _mover_table(view.movers, four)
    significant = table.filter(pl.col("significant"))
    tested = four.height
    sentences = [
        f"{tested:,} slices, one or two dimensions deep, tested against the previous week "
        "and the 4-week mean; q-values control false discoveries across slices."
    ]
    if significant.is_empty():
        best = table.sort("best_q").row(0, named=True) if table.height else None
        if best is not None:
            sentences.append(
                f"No slice changed significantly; the smallest q-value was "
                f"{_pvalue(best['best_q'])} ({best['slice']}: {_count(best['current'])} against "
                f"{_count(best['previous'])} the previous week and a 4-week mean of "
                f"{_mean(best['mean_4w'])})."
            )
        shown = table.sort(pl.col("abs_4w").abs(), descending=True).head(5)
        title = "Largest changes (none significant)"
    else:
        sentences += [_mover_sentence(r) for r in significant.head(_MOVER_SENTENCES).to_dicts()]
        if significant.height > _MOVER_SENTENCES:
            sentences.append(
                f"{significant.height - _MOVER_SENTENCES} more significant slices are in the table."
            )
        shown = significant.head(_TABLE_ROWS)
        title = "Significant movers"
    frame = _mover_columns(shown, pl.col("slice").alias("Slice"), "current")
    formats = {"This week": "count", "Previous week": "count", **_MOVER_FORMATS}
    figure = trend_charts.category_heatmap(view.categories, title="New cases by category and week")
    return Section(
        "movers", "Top movers", tuple(sentences), (Table(title, frame, formats),), (figure,)
    )


_MOVER_FORMATS = {
    "Change vs previous": "rel",
    "Change vs 4-week mean": "rel",
    "q (previous)": "p",
    "q (4 weeks)": "p",
}


def _mover_columns(table: pl.DataFrame, label: pl.Expr, current: str) -> pl.DataFrame:
    """The movers table as shown: a label, this week against the previous one and the
    4-week mean, each change with its q-value."""
    return table.select(
        label,
        pl.col(current).alias("This week"),
        pl.col("previous").alias("Previous week"),
        pl.col("rel_prev").alias("Change vs previous"),
        pl.col("q_prev").alias("q (previous)"),
        pl.col("mean_4w").alias("4-week mean"),
        pl.col("rel_4w").alias("Change vs 4-week mean"),
        pl.col("q_4w").alias("q (4 weeks)"),
    )


def _mover_table(previous: pl.DataFrame, four: pl.DataFrame) -> pl.DataFrame:
    """Each slice against the previous week and the 4-week mean, significant first.

    >>> cols = ["slice", "current", "expected", "abs_change", "rel_change", "q_value",
    ...         "significant"]
    >>> prev = pl.DataFrame([("a", 30.0, 10.0, 20.0, 2.0, 0.01, True)], schema=cols,
    ...                     orient="row")
    >>> four = pl.DataFrame([("a", 30.0, 12.0, 18.0, 1.5, 0.02, True),
    ...                      ("b", 5.0, 4.0, 1.0, 0.25, 0.9, False)], schema=cols, orient="row")
    >>> _mover_table(prev, four).select("slice", "previous", "mean_4w", "significant").rows()
    [('a', 10.0, 12.0, True), ('b', 0.0, 4.0, False)]
    """
    before = previous.select(
        "slice",
        previous="expected",
        rel_prev="rel_change",
        q_prev="q_value",
        sig_prev="significant",
    )
    return (
        four.select(
            "slice",
            "current",
            mean_4w="expected",
            abs_4w="abs_change",
            rel_4w="rel_change",
            q_4w="q_value",
            sig_4w="significant",
        )
        .join(before, on="slice", how="left")
        .with_columns(
            pl.col("previous").fill_null(0.0),
            pl.col("sig_prev").fill_null(False),
            significant=pl.col("sig_4w") | pl.col("sig_prev").fill_null(False),
            best_q=pl.min_horizontal("q_4w", "q_prev"),
        )
        .sort(["significant", "best_q", "slice"], descending=[True, False, False])
    )


def _mover_sentence(row: Mapping[str, Any]) -> str:
    return (
        f"{row['slice']}: {_count(row['current'])} cases against a 4-week mean of "
        f"{_mean(row['mean_4w'])} ({_rel(row['rel_4w'])}, {_tested(row['q_4w'], 'q')}) and "
        f"{_count(row['previous'])} the previous week ({_rel(row['rel_prev'])}, "
        f"{_tested(row['q_prev'], 'q')})."
    )


def _category_grid(view: trends.WeeklyView) -> pl.DataFrame:
    """New cases per week and category, every category of every week (zeros included):
    ``week``, ``category``, ``cases``."""
    weeks = view.weekly.select("week").unique()
    grid = weeks.join(pl.DataFrame({"category": [c.value for c in db.Category]}), how="cross")
    counts = view.categories.select(
        "week", pl.col("category").cast(pl.String), pl.col("value").cast(pl.Int64).alias("cases")
    )
    return (
        grid.join(counts, on=["week", "category"], how="left")
        .with_columns(pl.col("cases").fill_null(0))
        .sort("week", "category")
    )


def _category_table(cells: pl.DataFrame, totals: pl.DataFrame, week: date) -> pl.DataFrame:
    """The product's category table, every number a function of shown numbers only.

    ``cells`` and ``totals`` come from :func:`_protect_weeks` (each week suppressed on
    its own). Columns: ``category``, ``this``, ``previous``, ``mean_4w`` (only when all
    four weeks are shown), ``p_prev``/``q_prev`` and ``p_4w``/``q_4w`` (exact Poisson
    tests of the shown numbers, Benjamini-Hochberg across categories), then a
    :data:`TOTAL_LABEL` row with the weeks' totals (null where hidden).

    >>> w = date(2026, 3, 30)
    >>> cells = pl.DataFrame({"week": [w - _WEEK * k for k in range(5)] * 2,
    ...     "category": ["spam"] * 5 + ["other"] * 5,
    ...     "cases": [40, 12, 11, 10, 13, None, 20, 25, 30, 22]})
    >>> totals = pl.DataFrame({"week": [w - _WEEK * k for k in range(5)],
    ...     "cases": [44, 32, 36, 40, 35]})
    >>> out = _category_table(cells, totals, w)
    >>> out.select("category", "this", "previous", "mean_4w").rows()
    [('spam', 40, 12, 11.5), ('other', None, 20, 24.25), ('Total', 44, 32, 35.75)]
    """
    first = week - 4 * _WEEK

    base = (
        cells.filter(pl.col("week") >= first, pl.col("week") < week)
        .group_by("category")
        .agg(shown=pl.col("cases").count(), weeks=pl.len(), base=pl.col("cases").sum())
    )
    wide = (
        cells.filter(pl.col("week") == week)
        .select("category", this="cases")
        .join(
            cells.filter(pl.col("week") == week - _WEEK).select("category", previous="cases"),
            on="category",
            how="full",
            coalesce=True,
        )
        .join(base, on="category", how="left")
        .with_columns(
            mean_4w=pl.when((pl.col("shown") == 4) & (pl.col("weeks") == 4)).then(
                pl.col("base") / 4
            )
        )
        .sort(pl.col("this").fill_null(-1), "category", descending=[True, False])
    )
    prev_ok = wide["this"].is_not_null() & wide["previous"].is_not_null()
    base_ok = wide["this"].is_not_null() & wide["mean_4w"].is_not_null()
    tests = {}
    for name, ok, x0, t0 in (
        ("prev", prev_ok, wide["previous"], 1),
        ("4w", base_ok, wide["mean_4w"] * 4, 4),
    ):
        tested = ok.to_numpy()
        p = poisson_test(wide["this"].fill_null(0), [1], x0.fill_null(0), [t0])
        q = np.full(wide.height, np.nan)
        q[tested] = fdr(p[tested])
        tests[f"p_{name}"] = pl.Series(np.where(tested, p, np.nan), nan_to_null=True)
        tests[f"q_{name}"] = pl.Series(q, nan_to_null=True)
    wide = wide.with_columns(**tests).select("category", "this", "previous", "mean_4w", *tests)
    weekly = dict(totals.iter_rows())
    before: list[int | None] = [weekly.get(week - _WEEK * k) for k in range(1, 5)]
    total = pl.DataFrame(
        {
            "category": [TOTAL_LABEL],
            "this": [weekly.get(week)],
            "previous": [weekly.get(week - _WEEK)],
            "mean_4w": [sum(b or 0 for b in before) / 4 if None not in before else None],
        },
        schema={"category": pl.String, "this": pl.Int64, "previous": pl.Int64,
                "mean_4w": pl.Float64},
    )  # fmt: skip
    return pl.concat([wide, total], how="diagonal_relaxed")


def _product_movers(table: pl.DataFrame, cells: pl.DataFrame) -> Section:
    is_total = pl.col("category") == TOTAL_LABEL
    table = table.with_columns(
        rel_prev=pl.col("this") / pl.col("previous") - 1,
        rel_4w=pl.col("this") / pl.col("mean_4w") - 1,
    )
    rows = table.filter(~is_total)
    tested = rows.filter(pl.col("q_prev").is_not_null() | pl.col("q_4w").is_not_null())
    significant = rows.filter((pl.col("q_prev") < ALPHA) | (pl.col("q_4w") < ALPHA))
    sentences = [
        f"{tested.height} of {rows.height} categories have shown cells to compare; tests use "
        "the shown cells only (exact Poisson, q-values across categories)."
    ]
    for row in significant.to_dicts():
        parts = []
        if row["q_4w"] is not None:
            parts.append(
                f"a 4-week mean of {_mean(row['mean_4w'])} ({_rel(row['rel_4w'])}, "
                f"{_tested(row['q_4w'], 'q')})"
            )
        if row["q_prev"] is not None:
            parts.append(
                f"{_count(row['previous'])} the previous week ({_rel(row['rel_prev'])}, "
                f"{_tested(row['q_prev'], 'q')})"
            )
        sentences.append(
            f"{_humanise(row['category'])}: {_count(row['this'])} cases against "
            + " and ".join(parts)
            + "."
        )
    if significant.is_empty():
        sentences.append(
            f"None of the {tested.height} categories with shown cells to compare changed "
            f"significantly (q < {ALPHA})."
        )
    frame = _mover_columns(table, _humanised(pl.col("category")).alias("Category"), "this")
    heat = cells.select("week", "category", pl.col("cases").cast(pl.Float64).alias("value"))
    figure = _mark_hidden(
        trend_charts.category_heatmap(
            heat, title="New cases by category and week (hidden below 10)"
        )
    )
    table_obj = Table(
        "Cases by category",
        frame,
        dict(_MOVER_FORMATS),
        suppressed=("This week", "Previous week", "4-week mean"),
        note=f"Cells below {SUPPRESSION_THRESHOLD}, and the smallest others needed to protect "
        f"them, read {SUPPRESSED_TEXT}; each week is suppressed from its own counts, the same "
        "in every brief. The 4-week mean only when all four weeks are shown.",
    )
    return Section("movers", "Top movers", tuple(sentences), (table_obj,), (figure,))


def _mark_hidden(fig: go.Figure) -> go.Figure:
    """Hover text ``"<10"`` on the hidden cells of a heatmap or bars built from a
    suppressed frame (the builders would say ``"–"``)."""
    for trace in fig.data:
        if isinstance(trace, go.Heatmap) and trace.z is not None:
            trace.text = [
                [SUPPRESSED_TEXT if v is None else t for v, t in zip(row, texts, strict=True)]
                for row, texts in zip(trace.z, trace.text, strict=True)
            ]
        elif isinstance(trace, go.Bar) and trace.customdata is not None:
            trace.customdata = [
                SUPPRESSED_TEXT if v is None else t
                for v, t in zip(trace.y, trace.customdata, strict=True)
            ]
    return fig


# --------------------------------------------------------------------------- anomalies


def _anomalies(
    engine: Engine, incidents: pl.DataFrame, monday: date, as_of: datetime, *, product: bool
) -> Section:
    label = trends.iso_week(monday)
    mine = _week_incidents(incidents, monday)
    alerted = mine.filter(pl.col("alerted"))
    explained = mine.filter(pl.col("explained_by").is_not_null())
    dismissed = mine.filter(pl.col("suppressed") & ~pl.col("alerted"))
    new = alerted.filter(pl.col("new"))
    sentences = [
        f"Alerted incidents in {label}, over every slice of cases and events, daily and "
        f"weekly: {alerted.height} ({new.height} new this week, "
        f"{alerted.height - new.height} continuing)."
    ]
    if explained.height or dismissed.height:
        sentences.append(
            f"Not alerted: {explained.height} explained by known events, {dismissed.height} "
            "dismissed earlier in feedback."
        )
    leads = _lead_incidents(alerted)
    end = as_of.date()
    figures: list[go.Figure] = []
    for row in leads.to_dicts():
        causes = monitor.incident_root_cause(engine, row, end=end)
        sentences.append(_incident_sentence(row, causes, product=product))
    if not product and leads.height:
        top = leads.row(0, named=True)
        series = monitor.incident_series(engine, top, end=end)
        figures.append(
            detector_charts.anomaly_band(series, title=f"{top['slice']}: value and expected band")
        )
    tables: tuple[Table, ...] = ()
    if alerted.height:
        columns = [
            pl.col("slice").alias("Slice"),
            pl.col("source").alias("Source"),
            pl.col("freq").alias("Scale"),
            pl.col("start").dt.date().alias("From"),
            pl.col("end").dt.date().alias("To"),
            *(
                []
                if product
                else [pl.col("peak_value").alias("Peak"), pl.col("peak_expected").alias("Expected")]
            ),
            pl.col("score").alias("Score (−log10 p)"),
            pl.col("new").alias("New this week"),
        ]
        frame = alerted.sort(*_BY_SCORE, descending=[True, False, False])
        frame = frame.head(_TABLE_ROWS).select(columns)
        formats = {"Peak": "count", "Expected": "mean", "Score (−log10 p)": "score"}
        more = alerted.height - frame.height
        tables = (
            Table(
                "Alerted incidents",
                frame,
                formats,
                note=f"{more} more with lower scores." if more > 0 else "",
            ),
        )
    return Section("anomalies", "New anomalies", tuple(sentences), tables, tuple(figures))


def _week_incidents(incidents: pl.DataFrame, monday: date) -> pl.DataFrame:
    """Incidents whose alerted days touch the week, flagged ``new`` when they began in it."""
    lo, hi = _midnight(monday), _midnight(monday + _WEEK)
    return incidents.filter(pl.col("start") < hi, pl.col("end") >= lo).with_columns(
        new=pl.col("start") >= lo
    )


def _lead_incidents(alerted: pl.DataFrame, *, top: int = _TOP_INCIDENTS) -> pl.DataFrame:
    """The best incident of each family (same source and first dimension, e.g. every
    ``kind=login_failed`` slice), with how many related incidents it stands for.

    >>> frame = pl.DataFrame({"slice": ["kind=x|region=CA", "kind=x", "category=spam"],
    ...     "source": ["events", "events", "cases"], "freq": "daily", "score": [9.0, 5.0, 7.0]})
    >>> _lead_incidents(frame).select("slice", "related").rows()
    [('kind=x|region=CA', 1), ('category=spam', 0)]
    """
    family = pl.col("source") + ":" + pl.col("slice").str.split("|").list.first()
    return (
        alerted.with_columns(family=family)
        .sort(*_BY_SCORE, descending=[True, False, False])
        .with_columns(related=pl.len().over("family") - 1)
        .unique("family", keep="first", maintain_order=True)
        .head(top)
        .drop("family")
    )


def _incident_sentence(row: Mapping[str, Any], causes: pl.DataFrame, *, product: bool) -> str:
    span = _span(row["start"], row["end"], str(row["freq"]))
    when = "new this week" if row["new"] else f"continuing since {_day(row['start'].date())}"
    text = f"{row['slice']} ({row['source']}, {row['freq']}, {span}; {when}): "
    if product:
        text += f"score {row['score']:.1f} (−log10 p)"
    else:
        on = "in the week of" if row["freq"] == "weekly" else "on"
        text += (
            f"peak {_count(row['peak_value'])} {on} {_day(row['peak_ts'].date())} against "
            f"{_mean(row['peak_expected'])} expected (score {row['score']:.1f}, −log10 p)"
        )
    if row["related"]:
        text += f"; related slices alerted too: {row['related']}"
    if causes.is_empty():
        return text + "; the slice cannot be broken down further."
    if product:
        return text + f". Root cause: {_cause_shares(causes)}."
    unit = "events" if row["source"] == "events" else "cases"
    summary = rootcause.summary(causes, unit=unit)
    return text + f". Root cause: {summary[:1].lower() + summary[1:]}"


def _cause_shares(causes: pl.DataFrame) -> str:
    """The best dimension's values and their share of the change, no counts.

    >>> causes = pl.DataFrame({"dimension": ["platform", "region"], "value": ["web", "CA"],
    ...     "share": [0.97, 0.4], "selected": [True, True], "dimension_rank": [1, 2]})
    >>> _cause_shares(causes)
    'platform=web accounts for 97% of the change'
    """
    best = causes.filter(pl.col("selected"), pl.col("dimension_rank") == 1)
    if best.is_empty():
        return "no single dimension explains the change"
    values = best["value"].to_list()
    share = float(best["share"].sum())
    verb = "accounts" if len(values) == 1 else "account"
    return f"{best['dimension'][0]}={' + '.join(values)} {verb} for {share:.0%} of the change"


# --------------------------------------------------------------------------- emerging


def _emerging(
    engine: Engine, filters: load.Filters, as_of: datetime, *, product: bool, week_total: int
) -> Section:
    topics, _ = monitor.emerging_view(engine, filters, as_of=as_of, role=_READER)
    rings, _, _ = monitor.ring_view(engine, as_of=as_of, role=_READER)
    emerging = topics.filter(pl.col("is_emerging"))
    if product:
        emerging = _protect_topics(emerging.head(_TABLE_ROWS), topics, week_total=week_total)
    since = as_of - timedelta(days=monitor.NARRATIVE_DAYS)
    sentences = [
        f"Emerging topics in the case narratives of {_day(since.date())} to "
        f"{_day((as_of - timedelta(days=1)).date())}: {emerging.height} of {topics.height} "
        "(significant growth in the last 7 days, and new vocabulary or no real category)."
    ]
    sentences += [_topic_sentence(r, product=product) for r in emerging.head(5).to_dicts()]
    sentences += _ring_sentences(rings, as_of, product=product)
    tables = []
    if emerging.height:
        tables.append(_topic_table(emerging, product=product))
    if rings.height:
        tables.append(_ring_table(rings, product=product))
    return Section("emerging", "Emerging clusters and rings", tuple(sentences), tuple(tables))


def _protect_topics(
    emerging: pl.DataFrame, topics: pl.DataFrame, *, week_total: int
) -> pl.DataFrame:
    """Topic counts as the product brief may show them: a count only when it is at least
    the threshold and, with the counts shown before it, leaves at least the threshold of
    the cases it is part of (all topics' cases of its window, and the week's total) out;
    growth and q only where both counts are shown. A topic is a sub-slice of the week's
    cases: showing its count next to the week's total must not give a small complement.

    >>> emerging = pl.DataFrame({"recent_count": [30, 12, 4], "baseline_count": [9, 40, 50],
    ...                          "growth": [3.0, 0.3, 0.1], "q_value": [0.01, 0.02, 0.03]})
    >>> out = _protect_topics(emerging, emerging, week_total=50)
    >>> out.select("recent_count", "baseline_count", "growth").rows()
    [(30, None, None), (None, 40, None), (None, None, None)]
    """
    recent_left = [int(topics["recent_count"].sum()), week_total]
    before_left = [int(topics["baseline_count"].sum())]
    recent: list[int | None] = []
    before: list[int | None] = []
    for r, b in emerging.select("recent_count", "baseline_count").iter_rows():
        for value, left, out in ((r, recent_left, recent), (b, before_left, before)):
            ok = value >= SUPPRESSION_THRESHOLD and all(
                n - value >= SUPPRESSION_THRESHOLD for n in left
            )
            out.append(value if ok else None)
            if ok:
                left[:] = [n - value for n in left]
    both = pl.col("recent_count").is_not_null() & pl.col("baseline_count").is_not_null()
    return emerging.with_columns(
        pl.Series("recent_count", recent, dtype=emerging.schema["recent_count"]),
        pl.Series("baseline_count", before, dtype=emerging.schema["baseline_count"]),
    ).with_columns(
        pl.when(both).then(pl.col("growth")).alias("growth"),
        pl.when(both).then(pl.col("q_value")).alias("q_value"),
    )


def _topic_sentence(row: Mapping[str, Any], *, product: bool) -> str:
    recent, before = row["recent_count"], row["baseline_count"]
    terms = ", ".join(row["top_terms"])
    if not product:
        return (
            f"Topic {row['cluster_id']}, “{row['label']}” ({terms}): {row['summary']} "
            f"({_count(before)} in the {monitor.NARRATIVE_DAYS - 7} days before; growth "
            f"×{row['growth']:.1f}, {_tested(row['q_value'], 'q')})."
        )
    shown = [_cell(v) for v in (recent, before)]
    tail = (
        f"growth ×{row['growth']:.1f}, {_tested(row['q_value'], 'q')}"
        if row["growth"] is not None
        else "significant growth"
    )
    return (
        f"Topic “{row['label']}” ({terms}): {shown[0]} cases in the last 7 days against "
        f"{shown[1]} in the "
        f"{monitor.NARRATIVE_DAYS - 7} days before ({tail}); main category "
        f"{row['top_category'] or 'none'}."
    )


def _topic_table(emerging: pl.DataFrame, *, product: bool) -> Table:
    frame = emerging.select(
        *([] if product else [pl.col("cluster_id").alias("Topic")]),
        pl.col("label").alias("Phrase"),
        pl.col("terms").alias("Distinctive terms"),
        pl.col("recent_count").alias("Last 7 days"),
        pl.col("baseline_count").alias("Before"),
        pl.col("growth").alias("Growth ×"),
        pl.col("q_value").alias("q"),
        pl.col("top_category").alias("Main category"),
    )
    formats = {"Topic": "text", "q": "p", "Growth ×": "mean"}
    if not product:
        return Table(
            "Emerging topics", frame.with_columns(pl.col("Topic").cast(pl.String)), formats
        )
    return Table(
        "Emerging topics",
        frame,
        formats,
        suppressed=("Last 7 days", "Before"),
        note=f"A count reads {SUPPRESSED_TEXT} below {SUPPRESSION_THRESHOLD}, or when the "
        f"cases outside the shown topics would fall below {SUPPRESSION_THRESHOLD}; growth "
        "and q only where both counts are shown.",
    )


def _ring_sentences(rings: pl.DataFrame, as_of: datetime, *, product: bool) -> list[str]:
    growing = rings.filter(pl.col("is_growing"))
    window = f"the {monitor.RING_DAYS} days before {_day(as_of.date())}"
    if rings.is_empty():
        return [f"No ring of 3 or more accounts linked by shared devices or IPs in {window}."]
    out = [
        f"Rings of 3 or more accounts linked by shared devices or IPs in {window}: "
        f"{rings.height}, {growing.height} of them growing."
    ]
    if product:
        sizes = ", ".join(_cell(s) for s in rings["size"].to_list())
        out.append(f"Ring sizes (members): {sizes}.")
        return out
    for row in (
        pl.concat([growing, rings]).unique("ring_id", maintain_order=True).head(3).to_dicts()
    ):
        out.append(
            f"Ring {row['ring_id']}{' (growing)' if row['is_growing'] else ''}: "
            f"{row['size']} accounts, {row['growth']} new against the {monitor.RING_DAYS} days "
            f"before, linked by {row['devices']} devices and {row['ips']} IPs; median account "
            f"age {_mean(row['median_age_days'], 0)} days; "
            f"{_share(row['reported_share'])} reported, {_share(row['actioned_share'])} actioned."
        )
    return out


def _ring_table(rings: pl.DataFrame, *, product: bool) -> Table:
    if product:
        frame = suppress(
            rings.select(pl.col("size").alias("Members"), pl.col("is_growing").alias("Growing")),
            ["Members"],
        )
        return Table("Rings", frame, suppressed=("Members",))
    frame = rings.head(_TABLE_ROWS).select(
        pl.col("ring_id").cast(pl.String).alias("Ring"),
        pl.col("size").alias("Accounts"),
        pl.col("growth").alias("New"),
        pl.col("devices").alias("Devices"),
        pl.col("ips").alias("IPs"),
        pl.col("median_age_days").alias("Median age (days)"),
        pl.col("reported_share").alias("Reported"),
        pl.col("is_growing").alias("Growing"),
    )
    formats = {"Median age (days)": "mean", "Reported": "percent"}
    return Table("Rings (id = smallest member account id)", frame, formats)


# --------------------------------------------------------------------------- SLA, backlog


def _service(view: trends.WeeklyView, cube: load.Cube, *, product: bool) -> Section:
    kpis = {r["key"]: r for r in view.kpis.to_dicts()}
    severity = trends.weekly_metrics(cube, by="severity")
    now = severity.filter(pl.col("week") == view.week)
    before = severity.filter(pl.col("week") == view.week - _WEEK)
    overall = trends.weekly_metrics(cube).filter(pl.col("week") == view.week)
    sentences = []
    sla = kpis["sla_breach_rate"]
    if product:
        rates, _ = _product_rates(view, cube)
        shown = {r["key"] for r in rates}
        if "sla_breach_rate" in shown:
            sentences.append(_kpi_sentence(sla, baseline=False))
        else:
            sentences.append(
                f"SLA breach rate not shown: fewer than {SUPPRESSION_THRESHOLD} cases breached "
                "or met the SLA in this week or the previous one."
            )
    else:
        due, breached = (int(overall[c].sum()) for c in ("due", "breached"))
        sentences.append(
            _kpi_sentence(sla, baseline=False)[:-1] + f"; {breached:,} of {due:,} cases due."
        )
    sentences.append(_severity_sentence(now, product=product))
    if product:
        sentences += [_kpi_sentence(r, baseline=False) for r in rates if r["unit"] == "hours"] or [
            f"Median times not shown: fewer than {SUPPRESSION_THRESHOLD} cases underlie them."
        ]
        return _product_service(view, severity, now, before, sentences)
    sentences.append(
        f"Median time to first response {_value(kpis['ttfr_median_h']['value'], 'hours')} "
        f"({_tested(kpis['ttfr_median_h']['p_previous'])} against the previous week's "
        f"{_value(kpis['ttfr_median_h']['previous'], 'hours')}); to resolution "
        f"{_value(kpis['ttr_median_h']['value'], 'hours')} "
        f"({_tested(kpis['ttr_median_h']['p_previous'])} against "
        f"{_value(kpis['ttr_median_h']['previous'], 'hours')})."
    )
    backlog = view.backlog
    sentences.append(_backlog_sentence(backlog, view.week, kpis["backlog"], product=False))
    tables = (
        _sla_table(now, before, product=False),
        _backlog_table(backlog, view.week, product=False),
    )
    figures = (
        trend_charts.rate_lines(
            view.sla, title="SLA breach rate by severity", y_title="breached", group="severity"
        ),
        trend_charts.backlog_bars(backlog, title="Open backlog by age"),
    )
    return Section("service", "SLA and backlog", tuple(sentences), tables, figures)


#: A breach rate the product brief may show: at least the threshold of cases on both sides.
_BOTH_SIDES = (pl.col("breached") >= SUPPRESSION_THRESHOLD) & (
    pl.col("due") - pl.col("breached") >= SUPPRESSION_THRESHOLD
)


def _product_service(
    view: trends.WeeklyView,
    severity: pl.DataFrame,
    now: pl.DataFrame,
    before: pl.DataFrame,
    sentences: list[str],
) -> Section:
    """SLA and backlog for product: breach rates only with enough cases on both sides,
    the backlog at the week's end only, suppressed with its total."""
    backlog = _product_backlog(view.backlog, view.week)
    sentences.append(_backlog_sentence(backlog, view.week, {}, product=True))
    sla_series = severity.select(
        "week",
        "severity",
        pl.when(_BOTH_SIDES).then(pl.col("sla_breach_rate")).alias("value"),
        "provisional",
    )
    end = view.week + timedelta(days=6)
    bars = backlog.filter(pl.col("age_bucket") != TOTAL_LABEL).with_columns(
        week_end=pl.lit(end, dtype=pl.Date)
    )
    figures = (
        trend_charts.rate_lines(
            sla_series, title="SLA breach rate by severity", y_title="breached", group="severity"
        ),
        _mark_hidden(
            trend_charts.backlog_bars(bars, title="Open backlog by age at the week's end")
        ),
    )
    tables = (
        _sla_table(now, before, product=True),
        _backlog_table(backlog, view.week, product=True),
    )
    return Section("service", "SLA and backlog", tuple(sentences), tables, figures)


def _severity_sentence(now: pl.DataFrame, *, product: bool) -> str:
    parts = []
    for row in now.sort(pl.col("severity").replace_strict(_order(_SEVERITIES))).to_dicts():
        enough = row["breached"] >= SUPPRESSION_THRESHOLD and (
            row["due"] - row["breached"] >= SUPPRESSION_THRESHOLD
        )
        if product and not enough:
            parts.append(
                f"{row['severity']} not shown (fewer than {SUPPRESSION_THRESHOLD} breached or met)"
            )
        elif product:
            parts.append(f"{row['severity']} {_value(row['sla_breach_rate'], 'percent')}")
        else:
            parts.append(
                f"{row['severity']} {_value(row['sla_breach_rate'], 'percent')} "
                f"({row['breached']:,} of {row['due']:,})"
            )
    return (
        "Breach rate by severity (first-response SLA 2 h critical, 12 h high, 48 h medium, "
        "120 h low): " + "; ".join(parts) + "."
    )


def _sla_table(now: pl.DataFrame, before: pl.DataFrame, *, product: bool) -> Table:
    if product:
        shown = before.select(
            "severity", prev_rate=pl.when(_BOTH_SIDES).then(pl.col("sla_breach_rate"))
        )
        frame = (
            now.select("severity", rate=pl.when(_BOTH_SIDES).then(pl.col("sla_breach_rate")))
            .join(shown, on="severity", how="left")
            .sort(pl.col("severity").replace_strict(_order(_SEVERITIES)))
            .select(
                pl.col("severity").alias("Severity"),
                pl.col("rate").alias("Breach rate"),
                pl.col("prev_rate").alias("Previous week"),
            )
        )
        return Table(
            "SLA breach rate by severity",
            frame,
            {"Breach rate": "percent", "Previous week": "percent"},
            note=f"Rates only where at least {SUPPRESSION_THRESHOLD} cases breached the SLA and "
            f"at least {SUPPRESSION_THRESHOLD} met it.",
        )
    joined = now.join(
        before.select("severity", prev_rate="sla_breach_rate", prev_due="due"),
        on="severity",
        how="left",
    ).sort(pl.col("severity").replace_strict(_order(_SEVERITIES)))
    frame = joined.select(
        pl.col("severity").alias("Severity"),
        pl.col("due").alias("Cases due"),
        pl.col("breached").alias("Breached"),
        pl.col("sla_breach_rate").alias("Breach rate"),
        pl.col("prev_rate").alias("Previous week"),
    )
    return Table(
        "SLA breach rate by severity",
        frame,
        {"Breach rate": "percent", "Previous week": "percent"},
    )


def _backlog_table(backlog: pl.DataFrame, week: date, *, product: bool) -> Table:
    """Open cases by age at the week's end (and, for leadership, a week earlier) with a
    total row; ``backlog`` is :func:`_product_backlog`'s for the product brief."""
    if product:
        return Table(
            "Open backlog by age at the week's end",
            backlog.rename({"age_bucket": "Age", "open": "Open at week end"}),
            suppressed=("Open at week end",),
        )
    frame = _with_total(_backlog_pair(backlog, week), ["this", "previous"], label="age_bucket")
    names = {"age_bucket": "Age", "this": "Open at week end", "previous": "A week earlier"}
    return Table("Open backlog by age", frame.rename(names))


def _backlog_sentence(
    backlog: pl.DataFrame, week: date, kpi: Mapping[str, Any], *, product: bool
) -> str:
    end = week + timedelta(days=6)
    if product:
        rows = dict(backlog.iter_rows())
        older = [rows[b] for b in trends.AGE_BUCKETS[3:]]
        many = _count(sum(older)) if None not in older else SUPPRESSED_TEXT
        return (
            f"Open backlog at the end of {_day(end)}: {_cell(rows[TOTAL_LABEL])} cases; open "
            f"more than 7 days: {many}."
        )
    pair = _backlog_pair(backlog, week)
    now, before = (float(pair[c].sum()) for c in ("this", "previous"))
    old = float(pair.filter(pl.col("age_bucket").is_in(trends.AGE_BUCKETS[3:]))["this"].sum())
    share = f" ({old / now:.0%})" if now else ""
    return (
        f"Open backlog at the end of {_day(end)}: {_count(now)} cases, "
        f"{_move(now, before, 'count')} on the week before's {_count(before)} "
        f"({_tested(kpi['p_previous'])}); {_count(old)}{share} open more than 7 days."
    )


# --------------------------------------------------------------------------- known events


def _known_events(annotations: pl.DataFrame, monday: date, incidents: pl.DataFrame) -> Section:
    lo, hi = _midnight(monday), _midnight(monday + _WEEK)
    starts_in = (pl.col("start_at") >= lo) & (pl.col("start_at") < hi)
    spans = pl.col("end_at").is_not_null() & (pl.col("start_at") < hi) & (pl.col("end_at") >= lo)
    has_events = "start_at" in annotations.columns and not annotations.is_empty()
    events = annotations.filter(starts_in | spans).sort("start_at") if has_events else None
    sentences = [] if events is None else [_event_sentence(r) for r in events.to_dicts()]
    if not sentences:
        sentences = [
            "No known event (policy change, launch, outage, holiday) is recorded for this week."
        ]
    explained = _week_incidents(incidents, monday).filter(pl.col("explained_by").is_not_null())
    if explained.height:
        by = explained.group_by("explained_by").len().sort("len", descending=True)
        sentences.append(
            "Incidents of the week explained by known events: "
            + "; ".join(f"{r[0]} ({r[1]})" for r in by.rows())
            + "."
        )
    return Section("events", "Known events", tuple(sentences))


def _event_sentence(row: Mapping[str, Any]) -> str:
    start, end = row["start_at"], row["end_at"]
    when = _day(start.date())
    if end is not None and end.date() > start.date():
        when += f" to {_day(end.date())}"
    scope = [f"{k} {_humanise(row[k]) if k == 'category' else row[k]}"
             for k in ("category", "region") if row.get(k)]  # fmt: skip
    kind = _humanise(row["kind"]).lower()
    return f"{row['title']} ({kind}, {when}" + "".join(f"; {s}" for s in scope) + ")."


# --------------------------------------------------------------------------- about


def _about(*, product: bool, as_of: datetime, newest: datetime | None) -> Section:
    seen = f"all data up to {_when(newest)}" if newest else "all data"
    sentences = [
        "Weeks are ISO weeks (Monday to Sunday, UTC). Anomalies, topics and rings are "
        f"computed as they stood at {_when(as_of)}; the KPIs and movers use {seen}, each "
        "earlier week seen as it stood the same time after its own end.",
        "Counts are tested with exact Poisson tests, proportions with Fisher's exact test and "
        f"times with Mann-Whitney; significance level {ALPHA}; q-values are "
        "Benjamini-Hochberg across the slices tested.",
    ]
    if product:
        sentences += [
            "This brief always covers the whole platform: filters are not applied to it, so "
            "no two product briefs of a week differ and none can be subtracted from another.",
            f"Counts below {SUPPRESSION_THRESHOLD}, zero included, read {SUPPRESSED_TEXT}, and "
            "so do the smallest other cells of the same table until the hidden cells of a "
            f"total are at least two and add up to at least {SUPPRESSION_THRESHOLD}: no hidden "
            "count can be worked out from a total. Each week is suppressed from its own "
            "counts, the same way in every brief; means, changes and tests use shown numbers "
            "only. Rates are shown only where at least "
            f"{SUPPRESSION_THRESHOLD} cases lie on each side of them, medians where at least "
            f"{SUPPRESSION_THRESHOLD} cases underlie them; the backlog is given at the week's "
            "end only; anomalies carry scores and shares, no counts; prevalence is not shown.",
        ]
    else:
        sentences.append(
            "Anomalies and rings cover all data; filters narrow the KPIs, movers and topics."
        )
    return Section("about", "About this brief", tuple(sentences))


# --------------------------------------------------------------------------- formatting


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _period(monday: date) -> str:
    sunday = monday + timedelta(days=6)
    first = f"{monday.day}" if monday.month == sunday.month else f"{monday.day} {monday:%b}"
    if monday.year != sunday.year:
        first = _day(monday)
    return f"{first}–{_day(sunday)}"


def _when(moment: datetime) -> str:
    return f"{_day(moment.date())} {moment:%H:%M} UTC"


def _span(start: datetime, end: datetime, freq: str) -> str:
    if freq == "weekly":
        if start == end:
            return f"week of {start.day} {start:%b}"
        return f"weeks of {start.day} {start:%b} to {end.day} {end:%b}"
    if start.date() == end.date():
        return f"{start.day} {start:%b}"
    return f"{start.day} {start:%b} to {end.day} {end:%b}"


def _describe_filters(filters: load.Filters) -> str:
    chosen = [f"{d} {', '.join(filters.where(d))}" for d in load.DIMENSIONS if filters.where(d)]
    return "; ".join(chosen) if chosen else "all data"


def _humanise(label: object) -> str:
    text = "–" if label is None else str(label)
    return text if text == TOTAL_LABEL else text.replace("_", " ").capitalize()


def _humanised(label: pl.Expr) -> pl.Expr:
    """``fake_review`` -> ``Fake review``, vectorised; the total row's label stays."""
    text = label.str.replace_all("_", " ")
    nice = text.str.slice(0, 1).str.to_uppercase() + text.str.slice(1)
    return pl.when(label == TOTAL_LABEL).then(label).otherwise(nice)


def _order(values: Sequence[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}


def _at(frame: pl.DataFrame, key: str, value: object, column: str) -> float | None:
    hit = frame.filter(pl.col(key) == value)[column]
    return None if hit.is_empty() or hit[0] is None else float(hit[0])


def _count(value: float | None) -> str:
    return theme.format_number(value, unit="count")


def _cell(value: float | None) -> str:
    """A count as the product brief shows it: ``"<10"`` below the threshold."""
    return SUPPRESSED_TEXT if value is None or value < SUPPRESSION_THRESHOLD else _count(value)


def _mean(value: float | None, digits: int = 1) -> str:
    return theme.format_number(value, unit="count", digits=digits)


def _share(value: float | None) -> str:
    return theme.format_number(value, unit="percent", digits=0)


def _value(value: float | None, unit: str) -> str:
    """A KPI's value in its unit (per 1,000 rates as plain numbers: the label says it)."""
    if unit == _PER_1000:
        return theme.format_number(value, unit="count", digits=2)
    return theme.format_number(value, unit=cast(theme.Unit, unit))


def _move(value: float | None, previous: float | None, unit: str) -> str:
    """``up 12.0%``, ``down 3.1 pp`` (percent KPIs move in points), ``unchanged``.

    >>> _move(112, 100, "count"), _move(0.2, 0.25, "percent"), _move(5, 0, "count")
    ('up 12.0%', 'down 5.0 pp', 'up 5 from 0')
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
        return f"{way} {_value(abs(value), unit)} from 0"
    return f"{way} {abs(value - previous) / abs(previous) * 100:.1f}%"


def _delta(value: float | None, previous: float | None, unit: str) -> str:
    """A KPI table's change cell: ``+12.0%``, ``-5.0 pp``, ``–``."""
    if value is None or previous is None:
        return "–"
    sign = "+" if value >= previous else "-"
    if unit == "percent":
        points = f"{abs(value - previous) * 100:.1f}"
        return f"{'' if points == '0.0' else sign}{points} pp"
    if previous == 0:
        return f"{sign}{_value(abs(value - previous), unit)}"
    return f"{sign}{abs(value - previous) / abs(previous) * 100:.1f}%"


def _rel(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _pvalue(p: float | None) -> str:
    """``< 0.001``, ``0.031`` or ``–``."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _tested(p: float | None, name: str = "p") -> str:
    """``significant, p = 0.003`` or ``not significant, q = 0.41``."""
    if p is None:
        return "not tested"
    verdict = "significant" if p < ALPHA else "not significant"
    shown = _pvalue(p)
    return f"{verdict}, {name} {shown if shown.startswith('<') else '= ' + shown}"


def _fmt_date(value: object) -> str:
    if value is None:
        return "–"
    day = value.date() if isinstance(value, datetime) else value
    return _day(cast(date, day))


_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "count": _count,
    "mean": _mean,
    "signed": lambda v: "–" if v is None else f"{v:+,.0f}",
    "rel": _rel,
    "percent": lambda v: theme.format_number(v, unit="percent"),
    "pp": lambda v: "–" if v is None else f"{v * 100:+.1f} pp",
    "hours": lambda v: theme.format_number(v, unit="hours"),
    "p": _pvalue,
    "score": lambda v: "–" if v is None else f"{v:.1f}",
    "date": _fmt_date,
    "bool": lambda v: "–" if v is None else ("yes" if v else "no"),
    "text": lambda v: "–" if v is None else str(v),
    "figure": lambda v: "–" if v is None else str(v),
}


# --------------------------------------------------------------------------- HTML


_CSS = """
:root { --ink: #1f2328; --muted: #6b6b6b; --line: #e5e5e5; --accent: #0072b2;
        --soft: #f4f8fb; --warn: #d55e00; }
* { box-sizing: border-box; }
body { margin: 0; background: #fafafa; color: var(--ink);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 28px 48px; background: #fff;
       min-height: 100vh; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase;
     letter-spacing: 0.04em; }
.meta { color: var(--muted); font-size: 13px; margin: 0; }
.audience { margin: 10px 0 0; padding: 8px 12px; background: var(--soft);
            border-left: 4px solid var(--accent); font-size: 13.5px; }
.audience.product { border-left-color: #009e73; }
.note { margin: 12px 0 0; padding: 8px 12px; border-left: 4px solid #e69f00;
        background: #fff8eb; white-space: pre-wrap; }
nav { font-size: 13px; margin: 12px 0 0; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
ul.sentences { margin: 6px 0 12px; padding-left: 20px; }
ul.sentences li { margin: 4px 0; }
.table-wrap { overflow-x: auto; margin: 6px 0 4px; }
table { border-collapse: collapse; font-size: 13px; min-width: 50%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; vertical-align: bottom; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #c9c9c9; }
td.hidden { color: var(--muted); font-style: italic; }
p.table-note { color: var(--muted); font-size: 12.5px; margin: 2px 0 10px; }
.figures { display: grid; grid-template-columns: minmax(0, 1fr); gap: 14px; margin-top: 12px; }
.figures.pair { grid-template-columns: repeat(2, minmax(0, 1fr)); }
@media (max-width: 900px) { .figures.pair { grid-template-columns: minmax(0, 1fr); } }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 6px; min-width: 0; }
footer { margin-top: 36px; color: var(--muted); font-size: 12.5px; }
@media print { body { background: #fff; } main { padding: 0; } .figure { break-inside: avoid; } }
"""


def render_html(brief: Brief) -> str:
    """The brief as one self-contained HTML page.

    plotly.js is embedded once in the page; nothing is fetched from anywhere (no
    external script, style sheet, font or image), so the file opens offline. Every text
    is escaped.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(brief.title)}</title>",
        f"<style>{_CSS}</style>",
    ]
    figures = [f for s in brief.sections for f in s.figures]
    if figures:
        parts.append(f'<script type="text/javascript">{_plotly_js()}</script>')
    parts.append("</head><body><main><header>")
    parts.append(f"<h1>{esc(brief.title)}</h1>")
    parts.append(f'<p class="meta">{esc(" · ".join(brief.meta()))}</p>')
    parts.append(f'<p class="audience {brief.audience}">{esc(brief.audience_line())}</p>')
    if brief.note:
        parts.append(f'<p class="note">{esc(brief.note)}</p>')
    links = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in brief.sections)
    parts.append(f"<nav>{links}</nav></header>")
    counter = iter(range(len(figures)))
    for section in brief.sections:
        parts.append(f'<section id="{section.key}"><h2>{esc(section.title)}</h2>')
        items = "".join(f"<li>{esc(s)}</li>" for s in section.sentences)
        parts.append(f'<ul class="sentences">{items}</ul>')
        parts += [_html_table(t) for t in section.tables]
        if section.figures:
            pair = " pair" if len(section.figures) > 1 else ""
            parts.append(f'<div class="figures{pair}">')
            for fig in section.figures:
                div = pio.to_html(
                    fig,
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"figure-{next(counter)}",
                    config=_PLOTLY_CONFIG,
                    default_height="380px",
                    default_width="100%",
                )
                parts.append(f'<div class="figure">{div}</div>')
            parts.append("</div>")
        parts.append("</section>")
    if figures:  # fit every chart to its final box once the page is laid out
        parts.append(
            "<script>window.addEventListener('load', function () {"
            "document.querySelectorAll('.plotly-graph-div').forEach(function (d) {"
            "Plotly.Plots.resize(d); }); });</script>"
        )
    parts.append(
        f"<footer>Lookout · {esc(brief.label)} · {esc(brief.audience)} brief · generated "
        f"{esc(_when(brief.generated_at))}</footer></main></body></html>"
    )
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    esc = html.escape
    shown = table.text()
    numeric = set(table.numeric_columns())
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if c in numeric else f"<th>{esc(c)}</th>"
        for c in shown.columns
    )
    rows = []
    for raw, row in zip(table.frame.iter_rows(), shown.iter_rows(), strict=True):
        total = bool({TOTAL_LABEL, "Total"} & {v for v in raw if isinstance(v, str)})
        cells = []
        for name, text in zip(shown.columns, row, strict=True):
            classes = [c for c in ("num" if name in numeric else "",) if c]
            if text == f"<{table.threshold}" and name in table.suppressed:
                classes.append("hidden")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(text)}</td>")
        opening = '<tr class="total">' if total else "<tr>"
        rows.append(f"{opening}{''.join(cells)}</tr>")
    note = f'<p class="table-note">{esc(table.note)}</p>' if table.note else ""
    return (
        f'<h3>{esc(table.title)}</h3><div class="table-wrap"><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


def _plotly_js() -> str:
    """plotly.js, its URLs written ``https\\x3a//``.

    The library holds a few dozen URLs in strings and comments (its logo link, map tiles
    and attributions, the SVG namespace); these charts fetch none of them. Inside a
    JavaScript string ``\\x3a`` is ``:``, so the code runs the same, and the page holds no
    ``http://`` or ``https://`` at all.
    """
    return _URL_SCHEME.sub(r"\1\\x3a//", get_plotlyjs())


_URL_SCHEME = re.compile(r"\b(https?)://", re.IGNORECASE)


# --------------------------------------------------------------------------- Markdown


def render_markdown(brief: Brief) -> str:
    """The brief as Markdown: headings, one bullet per sentence, small tables.

    Charts are in the HTML version only.
    """
    lines = [f"# {brief.title}", "", f"*{_md(' · '.join(brief.meta()))}*", ""]
    lines += [f"> {_md(brief.audience_line())}", ""]
    if brief.note:
        lines += [f"**Note:** {_md(brief.note)}", ""]
    for section in brief.sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- {_md(s)}" for s in section.sentences]
        lines.append("")
        for table in section.tables:
            lines += _md_table(table)
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Escape what Markdown would read as markup (``<10`` and ``a_b`` stay readable).

    >>> _md("Spam <b>x</b> *y* [z](u) <10 fake_review")
    'Spam \\\\<b\\\\>x\\\\</b\\\\> \\\\*y\\\\* \\\\[z\\\\](u) <10 fake_review'
    """
    text = " ".join(text.split())
    text = re.sub(r"([\\`*\[\]|])", r"\\\1", text)
    return re.sub(r"<(?=[A-Za-z/!?])|(?<=[A-Za-z\"'/])>", lambda m: "\\" + m.group(0), text)


def _md_table(table: Table) -> list[str]:
    shown = table.text()
    numeric = set(table.numeric_columns())
    cut = shown.head(_MD_ROWS)
    if shown.height > _MD_ROWS and TOTAL_LABEL in shown.row(-1):
        cut = pl.concat([shown.head(_MD_ROWS - 1), shown.tail(1)])
    out = [f"**{_md(table.title)}**", ""]
    out.append("| " + " | ".join(_md(c) for c in shown.columns) + " |")
    out.append("| " + " | ".join("---:" if c in numeric else "---" for c in shown.columns) + " |")
    out += ["| " + " | ".join(_md(v) for v in row) + " |" for row in cut.iter_rows()]
    notes = [table.note] if table.note else []
    if cut.height < shown.height:
        notes.append(f"{shown.height - cut.height} more rows in the HTML brief.")
    if notes:
        out += ["", f"*{_md(' '.join(notes))}*"]
    return [*out, ""]
