"""The differencing attack of issue 14, run against the product brief.

A product user can ask for the brief of any week, with any filter the page or the URL
accepts, and compare them all. Two attacks, on the small demo:

- the plain one from the issue: the unfiltered brief less the brief filtered to the
  other platforms gives a platform's cell, which its own brief hides;
- the general one: every number the product briefs publish about case counts (the
  category table's cells, totals and 4-week means, the heatmap, the weekly totals) is a
  linear equation over the true counts (week x category x platform, read from the
  database), and so is the number of all cases; for every true count below the
  threshold (a week's category and platform, category, or platform), a linear program
  finds the greatest value consistent with all of them and non-negativity. The true
  value is consistent too, so that greatest value must reach the threshold: the count
  is then neither pinned down nor known to be small.

Both recovered every hidden cell they looked at from the code before the fix (the
filtered briefs were honoured); the filters are now ignored for product, and each
week's table is protected by complementary suppression.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.optimize import linprog
from sqlalchemy import select
from sqlalchemy.engine import Engine

from analytics import reports
from analytics.access.suppression import SUPPRESSION_THRESHOLD
from analytics.core import database, models
from analytics.core.calendar import parse_week
from analytics.core.filters import DIMENSIONS, Filters
from analytics.present.formatting import humanise

# The product brief of every week of the demo, under every filter: minutes of work, done
# once, on one worker (under `pytest -n 2` each worker would build the module's briefs).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("differencing")]

T = SUPPRESSION_THRESHOLD
CATEGORIES = [c.value for c in models.Category]
PLATFORMS = [p.value for p in models.Platform]
NAMES = {humanise(c): c for c in CATEGORIES}  # as the brief writes them ("No-show abuse")
WEEK = timedelta(weeks=1)
#: Weeks of the issue's attack: the review ring, the takeover wave, the new scam.
ATTACKED = ("2026-W08", "2026-W13", "2026-W17")
#: Filters the old code honoured that the cell grid can express: every platform and pair
#: of platforms (the issue's attack), and the categories and pairs of its example.
FILTERS = (
    [Filters(platform=(p,)) for p in PLATFORMS]
    + [Filters(platform=pair) for pair in combinations(PLATFORMS, 2)]
    + [Filters(category=(c,)) for c in ("spam", "other")]
    + [
        Filters(category=("spam", "other")),
        Filters(category=("spam",), platform=("ios",)),
    ]
)

Cell = tuple[date, str, str]  # week, category, platform
Equation = tuple[dict[Cell, float], float]


@pytest.fixture(scope="module")
def engine(small_db: str) -> Iterable[Engine]:
    eng = database.make_engine(small_db)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def truth(engine: Engine) -> dict[Cell, int]:
    """New cases per week, category and platform, straight from the database."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(models.Case.opened_at, models.Case.category, models.Case.platform)
        ).all()
    counts: dict[Cell, int] = {}
    for opened, category, platform in rows:
        monday = opened.date() - timedelta(days=opened.weekday())
        key = (monday, str(category), str(platform))
        counts[key] = counts.get(key, 0) + 1
    weeks = {k[0] for k in counts}
    monday = min(weeks)
    while monday <= max(weeks):
        for c in CATEGORIES:
            for p in PLATFORMS:
                counts.setdefault((monday, c, p), 0)
        monday += WEEK
    return counts


def _weeks(truth: dict[Cell, int]) -> list[date]:
    return sorted({k[0] for k in truth})


def _product(engine: Engine, week: date, filters: Filters | None = None) -> Any:
    return reports.build_brief(
        engine, week=week, audience="product", filters=filters, role="product"
    )


@pytest.fixture(scope="module")
def every_week(engine: Engine, truth: dict[Cell, int]) -> dict[date, Any]:
    """The product brief of every week with data (and the weeks either side)."""
    weeks = _weeks(truth)
    span = [weeks[0] - WEEK, *weeks, weeks[-1] + WEEK]
    found = {}
    for w in span:
        try:
            found[w] = _product(engine, w)
        except reports.IncompleteWeek:  # a week still being counted has no product brief
            continue
    return found


@pytest.fixture(scope="module")
def filtered(engine: Engine) -> dict[tuple[str, Filters], Any]:
    """The product briefs of the attacked weeks under every filter of :data:`FILTERS`."""
    return {
        (label, f): _product(engine, parse_week(label), f) for label in ATTACKED for f in FILTERS
    }


# --------------------------------------------------------------------------- published numbers


def _scope(brief: Any) -> tuple[list[str], list[str]]:
    """The categories and platforms the brief's numbers cover, by what it declares."""
    chosen = brief.filters
    other = [d for d in DIMENSIONS if chosen.where(d) and d not in ("category", "platform")]
    assert not other, f"filters the cell grid cannot express: {other}"
    return (
        list(chosen.where("category")) or CATEGORIES,
        list(chosen.where("platform")) or PLATFORMS,
    )


def equations(brief: Any) -> list[Equation]:
    """Every number the brief publishes about new cases, as equations over the cells.

    The category table (this week, the previous week, the 4-week mean, and the total
    row: the exact total, or with the old code's "Total of shown cells" the sum of the
    rows shown), the category-by-week heatmap and the weekly totals chart.
    """
    if not brief.has_data:
        return []
    categories, platforms = _scope(brief)
    week = brief.week
    out: list[Equation] = []

    def cells(weeks: Iterable[date], cats: Iterable[str]) -> dict[Cell, float]:
        return {(w, c, p): 1.0 for w in weeks for c in cats for p in platforms}

    table = brief.section("movers").tables[0]
    columns = {
        "This week": [week],
        "Previous week": [week - WEEK],
        "4-week mean": [week - k * WEEK for k in range(1, 5)],
    }
    body = table.frame.filter(~pl.col("Category").str.starts_with("Total"))
    for row in table.frame.iter_rows(named=True):
        label = row["Category"]
        for column, weeks in columns.items():
            value = row[column]
            if value is None:
                continue
            scale = len(weeks)
            if label == "Total":
                cats = categories
            elif label.startswith("Total"):  # the old code's "Total of shown cells"
                cats = [NAMES[c] for c in body.filter(pl.col(column).is_not_null())["Category"]]
            else:
                cats = [NAMES[label]]
            out.append((cells(weeks, cats), value * scale))
    heatmap = brief.section("movers").figures[0].data[0]
    for label, row in zip(heatmap.y, heatmap.z, strict=True):
        for x, value in zip(heatmap.x, row, strict=True):
            if value is not None:
                out.append((cells([_monday(x)], [NAMES[label]]), value))
    for trace in brief.section("headline").figures[0].data:
        exact = "Total" in table.frame["Category"].to_list()  # the old code's: shown cells
        if trace.name == "weekly value" and exact:  # the weekly totals line
            for x, value in zip(trace.x, trace.y, strict=True):
                if value is not None and not np.isnan(value):
                    out.append((cells([_monday(x)], categories), value))
    return out


def _monday(x: object) -> date:
    return date.fromisoformat(str(x)[:10])


def _hidden_cells(brief: Any) -> list[str]:
    """The categories whose count this week the brief hides."""
    table = brief.section("movers").tables[0].frame
    rows = table.filter(~pl.col("Category").str.starts_with("Total"), pl.col("This week").is_null())
    return [NAMES[c] for c in rows["Category"]]


def _shown(brief: Any, category: str) -> float | None:
    table = brief.section("movers").tables[0].frame
    hit = table.filter(pl.col("Category") == humanise(category))
    return None if hit.is_empty() else hit["This week"][0]


# --------------------------------------------------------------------------- the attacks


def recovered_by_subtraction(briefs: dict[tuple[str, Filters], Any], truth) -> list:
    """The issue's attack: for each platform p and category c hidden in p's brief, the
    unfiltered brief less the brief of the other platforms. A hit is a difference that
    equals the true, hidden count (the attacker can only subtract briefs that declare
    the filters they cover)."""
    hits = []
    for label in ATTACKED:
        whole = next(b for (lab, f), b in briefs.items() if lab == label and f.is_empty())
        for p in PLATFORMS:
            rest = tuple(x for x in PLATFORMS if x != p)
            mine = briefs[label, Filters(platform=(p,))]
            others = briefs[label, Filters(platform=rest)]
            if mine.filters.where("platform") != (p,) or others.filters.where("platform") != rest:
                continue  # the briefs do not cover what was asked: nothing to subtract
            for c in _hidden_cells(mine):
                a, b = _shown(whole, c), _shown(others, c)
                if a is None or b is None:
                    continue
                true = truth[whole.week, c, p]
                hits.append((label, c, p, a - b, true))
    return [h for h in hits if h[3] == h[4]]


def test_the_issues_subtraction_recovers_nothing(engine, truth, filtered) -> None:
    briefs = dict(filtered)
    for label in ATTACKED:
        briefs[label, Filters()] = _product(engine, parse_week(label))
    assert recovered_by_subtraction(briefs, truth) == []


def test_every_filter_gives_the_whole_platforms_brief(engine, filtered) -> None:
    for label in ATTACKED:
        whole = _product(engine, parse_week(label))
        for f in [*FILTERS, Filters(region=("FL",)), Filters(source=("ml_model",))]:
            brief = filtered.get((label, f)) or _product(engine, parse_week(label), f)
            assert brief.filters == Filters() and brief.ignored_filters == f
            assert equations(brief) == equations(whole)
            for a, b in zip(brief.sections, whole.sections, strict=True):
                assert a.sentences == b.sentences
                for x, y in zip(a.tables, b.tables, strict=True):
                    assert_frame_equal(x.frame, y.frame)


def greatest(
    system: list[Equation], truth: dict[Cell, int], *, grand_total: int | None = None
) -> dict[tuple[date, str, str], tuple[int, float]]:
    """For every true count below the threshold, of a week's category and platform, of a
    week's category (all platforms) or of a week's platform (all categories): its true
    value and the greatest value a linear program finds consistent with every equation
    and non-negativity. The true value is consistent too, so a greatest value at or
    above the threshold means the count is neither pinned down nor bounded below it."""
    cells = sorted(truth)
    index = {c: i for i, c in enumerate(cells)}
    rows, values = [], []
    for coeffs, value in system:
        row = np.zeros(len(cells))
        for cell, weight in coeffs.items():
            row[index[cell]] = weight
        rows.append(row)
        values.append(value)
    if grand_total is not None:  # the number of all cases, as the Overview showed it
        rows.append(np.ones(len(cells)))
        values.append(grand_total)
    a_eq, b_eq = np.array(rows), np.array(values)
    x = np.array([truth[c] for c in cells], dtype=float)
    assert np.allclose(a_eq @ x, b_eq), "the published numbers contradict the data"
    a_eq, keep = np.unique(np.round(a_eq, 9), axis=0, return_index=True)
    b_eq = b_eq[keep]
    targets: dict[tuple[date, str, str], list[Cell]] = {}
    for week, category, platform in cells:
        for key in ((week, category, platform), (week, category, "*"), (week, "*", platform)):
            targets.setdefault(key, []).append((week, category, platform))
    out = {}
    for key, members in targets.items():
        true = sum(truth[c] for c in members)
        if true >= T:
            continue
        objective = np.zeros(len(cells))
        objective[[index[c] for c in members]] = -1.0
        res = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert res.status in (0, 3), res.message  # 3: unbounded
        out[key] = (true, -res.fun if res.status == 0 else float("inf"))
    return out


def test_no_small_count_can_be_pinned_down(every_week, filtered, truth) -> None:
    system = [e for b in [*every_week.values(), *filtered.values()] for e in equations(b)]
    assert len(system) > 500
    found = greatest(system, truth, grand_total=sum(truth.values()))
    assert len(found) > 1000  # most counts of the small demo are small
    bounded = {k: v for k, v in found.items() if v[1] < T}
    assert bounded == {}


def test_a_week_is_shown_the_same_way_in_every_brief(every_week) -> None:
    """Suppression is decided per (week, cell) from the week's own counts: the previous
    week's column and the heatmap agree with that week's own brief."""
    own = {
        w: b.section("movers").tables[0].frame.select("Category", "This week")
        for w, b in every_week.items()
        if b.has_data
    }
    compared = 0
    for week, brief in every_week.items():
        if not brief.has_data or week - WEEK not in own:
            continue
        before = (
            brief.section("movers")
            .tables[0]
            .frame.select("Category", pl.col("Previous week").alias("This week"))
        )
        assert_frame_equal(before.sort("Category"), own[week - WEEK].sort("Category"))
        compared += 1
    assert compared >= 30


def test_a_running_week_has_no_product_brief(engine: Engine, truth: dict[Cell, int]) -> None:
    """Time differencing: a week still being counted, read on two days, gives two exact
    totals whose difference is one day's cases (possibly fewer than 10). The product
    brief covers complete weeks only; the small demo ends on a Friday."""
    running = _weeks(truth)[-1]
    with pytest.raises(reports.IncompleteWeek, match="complete weeks only"):
        _product(engine, running)
    with pytest.raises(reports.IncompleteWeek):
        _product(engine, running + WEEK)
    assert _product(engine, running - WEEK).week == running - WEEK
