"""Build a brief: read one week through the loaders and analytics, assemble its sections."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from analytics import access
from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD
from analytics.core.calendar import WEEK, is_complete, iso_week, midnight, week_end
from analytics.core.filters import Filters
from analytics.core.models import Role
from analytics.metrics.stats import ALPHA
from analytics.metrics.weekly import WeeklyView, weekly_view
from analytics.present.formatting import format_day, format_moment, format_period
from analytics.reports.disclosure import category_grid, category_table, protect_weeks
from analytics.reports.headline import (
    headline_section,
    movers_section,
    product_headline_section,
    product_movers_section,
)
from analytics.reports.model import (
    AUDIENCES,
    READER,
    Audience,
    Brief,
    IncompleteWeek,
    Section,
    product_week,
)
from analytics.reports.service import service_section
from analytics.reports.signals import (
    anomalies_section,
    emerging_section,
    known_events_section,
    product_topics,
)
from analytics.reports.story import week_story
from analytics.reports.surfaces import surface_chart, surface_sections, surface_week
from analytics.sources import load
from analytics.sources.frames import Cube
from analytics.views.anomalies import recent_incidents
from analytics.views.emerging import emerging_view
from analytics.views.overview import dataset_overview

__all__ = ["HISTORY_WEEKS", "build_brief"]

#: Weeks of history charted before the focus week.
HISTORY_WEEKS = 12


def build_brief(
    engine: Engine,
    *,
    week: date,
    audience: Audience,
    note: str | None = None,
    filters: Filters | None = None,
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
    asked = replace(filters or Filters(), start=None, end=None)
    product = audience == "product"
    chosen = Filters() if product else asked
    window = replace(
        chosen,
        start=min(chosen.start or monday, monday - HISTORY_WEEKS * WEEK),
        end=monday + timedelta(days=6),
    )
    cube = load.load_cube(engine, window)
    if product and cube.as_of is not None and not is_complete(monday, cube.as_of):
        newest = product_week(monday, cube.as_of)
        raise IncompleteWeek(
            f"the product brief covers complete weeks only; the week of {monday:%d %b %Y} "
            f"is still being counted (the newest complete week starts {newest:%d %b %Y})"
        )
    as_of = week_end(monday, cube.as_of)
    opened = cube.cases.filter(
        pl.col("opened_at").is_between(midnight(monday), midnight(monday + WEEK), closed="left")
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
            ignored_filters=asked if product else Filters(),
        )

    if opened.is_empty():
        return brief((_no_data(engine, monday, chosen, product=product),))
    view = weekly_view(cube, week=monday)
    cells, totals = protect_weeks(category_grid(view))
    table = category_table(cells, totals, monday) if product else None
    incidents = recent_incidents(engine, end=as_of.date(), role=READER)
    week_total = opened.height
    if table is not None:  # by product surface first, T&S operations last
        return brief(
            _product_sections(
                engine, view, cube, cells, totals, table, incidents, as_of=as_of,
                week_total=week_total,
            )
        )  # fmt: skip
    story = (
        None
        if product
        else week_story(
            engine, week=monday, role=role, filters=chosen, cube=cube, view=view,
            incidents=incidents,
        )
    )  # fmt: skip
    sections = (
        headline_section(view, story),
        movers_section(view, cube),
        anomalies_section(engine, incidents, monday, as_of, product=product),
        emerging_section(engine, chosen, as_of, product=product, week_total=week_total),
        service_section(view, cube, product=product),
        known_events_section(cube.annotations, monday, incidents),
        _about(product=product, as_of=as_of, newest=cube.as_of),
    )
    return brief(sections)


def _product_sections(
    engine: Engine,
    view: WeeklyView,
    cube: Cube,
    cells: pl.DataFrame,
    totals: pl.DataFrame,
    table: pl.DataFrame,
    incidents: pl.DataFrame,
    *,
    as_of: datetime,
    week_total: int,
) -> tuple[Section, ...]:
    """The product brief's sections: the headline (the product's story of the week, as
    its Overview tells it: what changed on the product surfaces and what to consider
    fixing), one section per surface (:mod:`analytics.reports.surfaces`), the emerging
    topics, all categories, then the anomalies, T&S operations and known events, and what
    the brief holds back."""
    monday = view.week
    clusters = emerging_view(engine, Filters(), as_of=as_of, role=READER).clusters
    topics = product_topics(clusters, week_total=week_total)
    surfaces = surface_week(cube, cells, monday, topics=topics)
    story = week_story(
        engine, week=monday, role=Role.product, cube=cube, view=view, surfaces=surfaces
    )
    return (
        product_headline_section(
            view, table, totals, story=story, chart=surface_chart(surfaces.weeks)
        ),
        *surface_sections(surfaces.table, surfaces.weeks, where=surfaces.where, topics=topics),
        emerging_section(
            engine, Filters(), as_of, product=True, week_total=week_total, clusters=clusters
        ),
        product_movers_section(table, cells),
        anomalies_section(engine, incidents, monday, as_of, product=True),
        service_section(view, cube, product=True),
        known_events_section(cube.annotations, monday, incidents),
        _about(product=True, as_of=as_of, newest=cube.as_of),
    )


def _no_data(engine: Engine, monday: date, filters: Filters, *, product: bool) -> Section:
    """The section of a week without cases; the product version names no count (the
    number of all cases, less the weekly totals, would give back a small week's)."""
    info = dataset_overview(engine)
    label = iso_week(monday)
    scope = "" if filters.is_empty() else " matching these filters"
    sentences = [f"No cases{scope} were opened in {label} ({format_period(monday)})."]
    count = "" if product else f"{info.counts['cases']:,} "
    if info.first_case and info.last_case and info.newest:
        sentences.append(
            f"The data holds {count}cases opened from "
            f"{format_day(info.first_case.date())} to {format_day(info.last_case.date())}; "
            "pick a week in that range."
        )
    else:
        sentences.append("The database holds no cases yet.")
    return Section("no_data", "No data for this week", tuple(sentences))


def _about(*, product: bool, as_of: datetime, newest: datetime | None) -> Section:
    seen = f"all data up to {format_moment(newest)}" if newest else "all data"
    sentences = [
        "Weeks are ISO weeks (Monday to Sunday, UTC). Anomalies, topics and rings are "
        f"computed as they stood at {format_moment(as_of)}; the KPIs and movers use {seen}, each "
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
            "end only; anomalies carry scores and shares, no counts. Rates per 1,000 exposures "
            "are shown only with their counts (exposures are known, so a rate is a count); a "
            "surface is counted only when every category of it is shown, and a platform or "
            "region is named, never counted, only when it holds most of a category's cases "
            f"and the rest at least {SUPPRESSION_THRESHOLD}.",
        ]
    else:
        sentences.append(
            "Anomalies and rings cover all data; filters narrow the KPIs, movers and topics."
        )
    return Section("about", "About this brief", tuple(sentences))
