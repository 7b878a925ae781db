"""The product brief by product surface (analytics/reports/surfaces.py), and attacks on it.

The surfaces add numbers to the product brief: a count and a rate per 1,000 exposures for
each surface and each of its categories, this week, the previous week and the 4-week mean,
and the names of the platform and region where a rising category's cases are. The attacks:

- *differencing*: every number the surface tables of every week publish, with the category
  table of every week and the number of all cases, as linear equations over the true
  counts (week x category); for every true count below the threshold (a week's category,
  or a week's surface) a linear program finds the greatest value consistent with them all.
  It must reach the threshold. The same attack on surface counts suppressed one by one (a
  surface shown whenever its own sum reaches the threshold) recovers hidden cells: the test
  can fail;
- *naming*: a top platform or region named, as inequalities, never bounds another slice (or
  the rest) below the threshold; naming the top one whenever the category is shown would;
- the brief itself: its surface numbers are exactly the sums of the category table's shown
  cells, its sentences carry significance in words only (q-values on hover in the HTML, in
  a footnote in the Markdown), "Headline" is one heading, the scam is named by its phrase,
  T&S operations come last and short.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from sqlalchemy import select
from sqlalchemy.engine import Engine

from analytics import reports
from analytics.access.suppression import SUPPRESSED_TEXT, SUPPRESSION_THRESHOLD, suppress
from analytics.core import database, models
from analytics.core.calendar import parse_week
from analytics.core.filters import Filters
from analytics.metrics import trends
from analytics.present.formatting import humanise
from analytics.reports import Brief, render_html, render_markdown
from analytics.reports.disclosure import protect_weeks, top_slice
from analytics.reports.surfaces import (
    LEVERS,
    SURFACES,
    surface_exposure,
    surface_sections,
    surface_table,
    surface_weeks,
)
from analytics.sources import load

pytestmark = pytest.mark.xdist_group("product_brief")

T = SUPPRESSION_THRESHOLD
WEEK = timedelta(weeks=1)
CATEGORIES = [c.value for c in models.Category]
SCAM = "2026-W17"  # the small demo's new scam, filed under "other"
Cell = tuple[date, str]  # week, category
Equation = tuple[dict[Cell, float], float]


@pytest.fixture(scope="module")
def engine(small_db: str) -> Iterator[Engine]:
    eng = database.make_engine(small_db)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def truth(engine: Engine) -> dict[Cell, int]:
    """New cases per week and category, straight from the database, zeros included."""
    with engine.connect() as conn:
        rows = conn.execute(select(models.Case.opened_at, models.Case.category)).all()
    counts: dict[Cell, int] = {}
    for opened, category in rows:
        monday = opened.date() - timedelta(days=opened.weekday())
        counts[monday, str(category)] = counts.get((monday, str(category)), 0) + 1
    first, last = min(k[0] for k in counts), max(k[0] for k in counts)
    monday = first
    while monday <= last:
        for c in CATEGORIES:
            counts.setdefault((monday, c), 0)
        monday += WEEK
    return counts


@pytest.fixture(scope="module")
def exposure(engine: Engine, truth: dict[Cell, int]) -> pl.DataFrame:
    weeks = sorted({k[0] for k in truth})
    cube = load.load_cube(engine, Filters(start=weeks[0], end=weeks[-1] + timedelta(days=6)))
    return surface_exposure(cube)


def _grid(truth: dict[Cell, int]) -> pl.DataFrame:
    return pl.DataFrame(
        [(w, c, n) for (w, c), n in sorted(truth.items())],
        schema={"week": pl.Date, "category": pl.String, "cases": pl.Int64},
        orient="row",
    )


# --------------------------------------------------------------------------- surfaces


def test_every_category_lives_on_exactly_one_surface() -> None:
    placed = [str(c) for s in SURFACES for c in s.categories]
    assert sorted(placed) == sorted(CATEGORIES)
    for surface in SURFACES:
        assert {trends.EXPOSURE_OF[str(c)] for c in surface.categories} == {
            trends.EXPOSURE_OF[str(surface.categories[0])]
        }, surface.key  # one exposure per surface: its rate is one number
        assert all(str(e) in set(models.EventKind) for e in surface.events)
    named = {str(e) for s in SURFACES for e in s.events}
    assert {"booking_created", "review_posted", "message_sent", "payment_failed"} <= named
    assert {"signup", "login", "login_failed"} <= named


# --------------------------------------------------------------------------- differencing


def _published(
    cells: pl.DataFrame, totals: pl.DataFrame, weeks: pl.DataFrame, exposure: pl.DataFrame
) -> list[Equation]:
    """Every count the product brief of every week publishes, as equations over the
    true (week, category) counts: the category table's shown cells and totals, and each
    week's surface table (counts, 4-week means, and rates times their exposure)."""
    out: list[Equation] = []
    members = {s.key: [str(c) for c in s.categories] for s in SURFACES}
    for week, category, cases in cells.iter_rows():
        if cases is not None:
            out.append(({(week, category): 1.0}, cases))
    for week, cases in totals.iter_rows():
        if cases is not None:
            out.append(({(week, c): 1.0 for c in CATEGORIES}, cases))
    exposed = {(w, c): e for w, c, e in exposure.select("week", "category", "exposure").rows()}
    mondays = sorted(set(cells["week"]))
    for monday in mondays[4:]:
        table = surface_table(weeks, monday)
        for row in table.to_dicts():
            cats = [row["category"]] if row["category"] else members[row["surface"]]
            spans = {
                "this": [monday],
                "previous": [monday - WEEK],
                "mean_4w": [monday - WEEK * k for k in range(1, 5)],
            }
            for column, span in spans.items():
                if row[column] is not None:
                    coeffs = {(w, c): 1.0 for w in span for c in cats}
                    out.append((coeffs, row[column] * len(span)))
            rates = {"rate": [monday], "rate_prev": [monday - WEEK]}
            for column, span in rates.items():
                if row[column] is not None:  # exposures are public: a rate is a count
                    size = sum(exposed[w, cats[0]] for w in span)
                    coeffs = {(w, c): 1.0 for w in span for c in cats}
                    out.append((coeffs, row[column] * size / 1000))
    return out


def _greatest(system: list[Equation], truth: dict[Cell, int]) -> dict[tuple, tuple[int, float]]:
    """For every true count below the threshold, of a week's category or a week's
    surface: its true value and the greatest value consistent with every equation, the
    number of all cases and non-negativity."""
    cells = sorted(truth)
    index = {c: i for i, c in enumerate(cells)}
    rows, values = [], []
    for coeffs, value in [*system, ({c: 1.0 for c in cells}, float(sum(truth.values())))]:
        row = np.zeros(len(cells))
        for cell, weight in coeffs.items():
            row[index[cell]] = weight
        rows.append(row)
        values.append(value)
    a_eq, b_eq = np.array(rows), np.array(values)
    x = np.array([truth[c] for c in cells], dtype=float)
    assert np.allclose(a_eq @ x, b_eq), "the published numbers contradict the data"
    a_eq, keep = np.unique(np.round(a_eq, 9), axis=0, return_index=True)
    b_eq = b_eq[keep]
    targets: dict[tuple, list[Cell]] = {}
    for week, category in cells:
        targets.setdefault((week, category), []).append((week, category))
    for surface in SURFACES:
        if len(surface.categories) > 1:
            for week in sorted({w for w, _ in cells}):
                key = (week, surface.key)
                targets[key] = [(week, str(c)) for c in surface.categories]
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


def _synthetic(seed: int) -> tuple[dict[Cell, int], pl.DataFrame]:
    """Counts around the threshold for 20 weeks (the small demo hides a category of every
    surface in every week, so its surfaces are never shown: nothing to attack), and
    exposures per category and week, one per surface as in the data."""
    rng = np.random.default_rng(seed)
    weeks = [date(2026, 1, 5) + WEEK * k for k in range(20)]
    level = dict(zip(CATEGORIES, rng.uniform(3, 45, len(CATEGORIES)), strict=True))
    truth = {(w, c): int(rng.poisson(level[c])) for w in weeks for c in CATEGORIES}
    kinds = {k: rng.integers(2_000, 20_000, len(weeks)) for k in set(trends.EXPOSURE_OF.values())}
    exposure = pl.DataFrame(
        [
            (w, c, int(kinds[trends.EXPOSURE_OF[c]][i]), trends.EXPOSURE_OF[c])
            for i, w in enumerate(weeks)
            for c in CATEGORIES
        ],
        schema={"week": pl.Date, "category": pl.String, "exposure": pl.Int64,
                "exposure_kind": pl.String},
        orient="row",
    )  # fmt: skip
    return truth, exposure


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_small_count_is_pinned_by_the_surfaces(seed: int) -> None:
    """Two weeks (this, previous, the 4-week mean), two surfaces (and every other surface
    against the total), the brief against the number of all cases: nothing small is
    bounded below the threshold."""
    truth, exposure = _synthetic(seed)
    cells, totals = protect_weeks(_grid(truth))
    weeks = surface_weeks(cells, exposure)
    system = _published(cells, totals, weeks, exposure)
    sums = [e for e in system if 1 < len({c for _, c in e[0]}) < len(CATEGORIES)]
    assert len(sums) > 20  # shown surfaces: sums of two or more categories
    assert weeks.filter(pl.col("category").is_null(), pl.col("cases").is_null()).height > 5
    found = _greatest(system, truth)
    assert len(found) > 20
    assert {k: v for k, v in found.items() if v[1] < T} == {}


def _naive_sums(cells: pl.DataFrame, truth: dict[Cell, int]) -> pl.DataFrame:
    """Surface counts suppressed one by one, as a first attempt would: each surface's
    true sum, hidden only when it is itself below the threshold."""
    rows = []
    for (week,), _ in cells.group_by("week"):
        for surface in SURFACES:
            if len(surface.categories) > 1:
                rows.append(
                    (week, surface.key, sum(truth[week, str(c)] for c in surface.categories))
                )
    sums = pl.DataFrame(
        rows, schema={"week": pl.Date, "group": pl.String, "cases": pl.Int64}, orient="row"
    )
    return suppress(sums, ["cases"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_surfaces_suppressed_one_by_one_give_hidden_cells_back(seed: int) -> None:
    """The attack works: with surface counts suppressed on their own, a shown surface less
    its shown categories pins a hidden one (or the total less the shown surfaces does)."""
    truth, exposure = _synthetic(seed)
    cells, totals = protect_weeks(_grid(truth))
    naive = _naive_sums(cells, truth)
    system: list[Equation] = []
    for week, category, cases in cells.iter_rows():
        if cases is not None:
            system.append(({(week, category): 1.0}, cases))
    for week, cases in totals.iter_rows():
        if cases is not None:
            system.append(({(week, c): 1.0 for c in CATEGORIES}, cases))
    members = {s.key: [str(c) for c in s.categories] for s in SURFACES}
    for week, group, cases in naive.iter_rows():
        if cases is not None:
            system.append(({(week, c): 1.0 for c in members[group]}, cases))
    found = _greatest(system, truth)
    pinned = {k: v for k, v in found.items() if v[1] < T}
    assert pinned, "the naive surfaces should leak"
    # and the protected ones do not, on the same weeks (the slow test checks every number)
    weeks = surface_weeks(cells, exposure)
    protected = weeks.filter(pl.col("category").is_null(), pl.col("cases").is_not_null())
    for week, surface, cases in protected.select("week", "surface", "cases").iter_rows():
        shown = cells.filter(pl.col("week") == week, pl.col("category").is_in(members[surface]))[
            "cases"
        ]
        assert shown.null_count() == 0 and shown.sum() == cases


# --------------------------------------------------------------------------- naming


def _greatest_other(counts: list[int], top: int) -> float:
    """The greatest value, consistent with what naming ``top`` tells (it holds more than
    the others together, which hold at least the threshold; the category's count is
    shown), of any other slice or of all the others together."""
    n, k = sum(counts), len(counts)
    # variables: the k slices; equalities: their sum; inequalities: top >= each,
    # rest <= top - 1, rest >= T
    a_eq, b_eq = [np.ones(k)], [n]
    a_ub, b_ub = [], []
    for i in range(k):
        if i != top:
            row = np.zeros(k)
            row[i], row[top] = 1.0, -1.0
            a_ub.append(row)
            b_ub.append(0.0)
    row = np.ones(k)  # the rest are fewer than the top: rest - top <= -1
    row[top] = -1.0
    a_ub.append(row)
    b_ub.append(-1.0)
    row = -np.ones(k)
    row[top] = 0.0
    a_ub.append(row)
    b_ub.append(-T)
    best = float("inf")
    for target in [[i] for i in range(k) if i != top] + [[i for i in range(k) if i != top]]:
        objective = np.zeros(k)
        objective[target] = -1.0
        res = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None))
        assert res.status == 0, res.message
        best = min(best, -res.fun)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=6))
def test_naming_the_top_slice_bounds_nothing_below_the_threshold(counts: list[int]) -> None:
    names = [f"v{i}" for i in range(len(counts))]
    frame = pl.DataFrame({"platform": names, "cases": counts})
    named = top_slice(frame, "platform")
    if named is None:
        return
    top = names.index(named)
    assert counts[top] > sum(counts) - counts[top] >= T
    assert _greatest_other(counts, top) >= T


def test_naming_the_top_of_any_shown_category_would_leak() -> None:
    """The rule is needed: a category of 16 shown (platforms 12, 3, 1) with "mostly on web"
    and no condition on the rest tells that the others together are fewer than 8: small.
    :func:`top_slice` names nothing here (the rest is below the threshold)."""
    counts = [12, 3, 1]
    n = sum(counts)
    assert n >= T  # the category is shown
    assert (n - 1) // 2 < T  # "mostly web": the rest is at most 7, known to be small
    frame = pl.DataFrame({"platform": ["web", "ios", "android"], "cases": counts})
    assert top_slice(frame, "platform") is None
    assert top_slice(frame.with_columns(pl.Series("cases", [25, 6, 5])), "platform") == "web"


# --------------------------------------------------------------------------- the brief


@pytest.fixture(scope="module")
def scam(engine: Engine) -> Brief:
    return reports.build_brief(engine, week=parse_week(SCAM), audience="product", role="product")


def _surface_sections(brief: Brief) -> list:
    return [s for s in brief.sections if s.key.startswith("surface_")]


def test_the_brief_is_organised_by_product_surface(scam: Brief) -> None:
    keys = [s.key for s in scam.sections]
    assert keys[0] == "headline"
    assert keys[1 : 1 + len(SURFACES)] == [f"surface_{s.key}" for s in SURFACES]
    titles = [s.title for s in _surface_sections(scam)]
    assert titles == [
        "Bookings", "Reviews", "Messaging", "Payments", "Accounts and sign-in",
        "Not tied to one surface",
    ]  # fmt: skip
    # T&S operations: after the surfaces, topics and categories, short, no tables
    service = scam.section("service")
    assert service is not None and service.title == "T&S operations"
    assert keys.index("service") > keys.index("movers") > keys.index(f"surface_{SURFACES[-1].key}")
    assert len(service.sentences) <= 5 and not service.tables and not service.figures


def test_surface_counts_are_sums_of_shown_category_cells(scam: Brief) -> None:
    categories = scam.section("movers").tables[0].frame
    shown = dict(categories.select("Category", "This week").iter_rows())
    checked = 0
    for section, surface in zip(_surface_sections(scam), SURFACES, strict=True):
        table = section.tables[0].frame
        names = [humanise(str(c)) for c in surface.categories]
        for name in names:
            row = table.filter(pl.col("Category") == name).row(0, named=True)
            assert row["This week"] == shown[name]
            if row["This week"] is None:
                assert row["Per 1,000"] is None
        whole = table.filter(pl.col("Category").str.starts_with("All "))
        if len(surface.categories) > 1:
            count = whole["This week"][0]
            parts = [shown[n] for n in names]
            assert count == (None if None in parts else sum(parts))
            checked += 1
        else:
            assert whole.is_empty()
    assert checked == 4


def test_sentences_say_significance_in_words_and_hover_holds_the_numbers(scam: Brief) -> None:
    number = re.compile(r"\b[pq]\s*(=|<)\s*\d|\bp-value|\bq-value\b")
    for section in [scam.section("headline"), *_surface_sections(scam), scam.section("service")]:
        assert section is not None
        for sentence in section.sentences:
            assert not number.search(sentence), sentence
    page = render_html(scam)
    titled = re.findall(r'<td title="([^"]*)">(significant[^<]*|not significant)</td>', page)
    assert titled and all(html.unescape(t).startswith("q ") for t, _ in titled)
    markdown = render_markdown(scam)
    assert "Tests: " in markdown and "q = " in markdown


def test_headline_is_one_heading(scam: Brief) -> None:
    page = render_html(scam)
    assert page.count(">Headline</h2>") == 1 and ">Headline</h3>" not in page
    assert not scam.section("headline").tables


def test_the_scam_is_named_by_its_phrase(scam: Brief) -> None:
    topics = scam.section("emerging").tables[0].frame
    scam_topics = topics.filter(pl.col("Distinctive terms").str.contains("insurance"))
    assert scam_topics.height
    for phrase in scam_topics["Phrase"]:
        for section in (scam.section("headline"), scam.section(f"surface_{SURFACES[-1].key}")):
            said = [s for s in section.sentences if f"“{phrase}”" in s]
            assert said, (section.key, phrase)
            assert all("insurance, verification" not in s for s in said)  # not a word list


@pytest.mark.parametrize(
    ("label", "against"),
    [("2026-W10", "the previous week"), ("2026-W12", "a 4-week mean of")],
)
def test_what_to_consider_follows_the_data(engine: Engine, label: str, against: str) -> None:
    """The fake-review weeks of the small demo: the suggestion names the category that
    moved on its surface, with its rate, what it is compared with and the lever for it;
    its numbers are the surface table's."""
    brief = reports.build_brief(engine, week=parse_week(label), audience="product", role="product")
    story = [s for s in brief.section("headline").sentences if "Consider" in s]
    assert len(story) == 1
    table = brief.section("surface_reviews").tables[0].frame
    row = table.filter(pl.col("Category") == "Fake review").row(0, named=True)
    base = row["Previous week"] if against == "the previous week" else row["4-week mean"]
    assert story[0].startswith(
        f"Reviews: Fake review rose to {row['Per 1,000']:.1f} per 1,000 reviews from "
    ), story
    assert against in story[0] and f"{base:.1f}" in story[0]
    assert f"Consider {LEVERS['fake_review']}." in story[0]
    assert story[0] in [f"Reviews: {s}" for s in brief.section("surface_reviews").sentences]
    quiet = brief.section("surface_bookings").sentences
    assert any("nothing new to fix" in s for s in quiet)


def test_hidden_surfaces_say_so(scam: Brief) -> None:
    for section in _surface_sections(scam):
        frame = section.tables[0].frame
        text = section.tables[0].text()
        for value, cell in zip(frame["This week"], text["This week"], strict=True):
            assert (value is None) == (cell == SUPPRESSED_TEXT)
            assert value is None or value >= T


def _one_category_weeks(cases: list[int], monday: date) -> pl.DataFrame:
    """Payment fraud over five weeks (the last is ``monday``), 1,000 bookings a week."""
    weeks = [monday - WEEK * k for k in range(len(cases) - 1, -1, -1)]
    return pl.DataFrame(
        {"week": weeks, "surface": "payments", "category": "payment_fraud", "cases": cases,
         "exposure": 1000, "exposure_kind": "bookings"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        # a wave two weeks ago, gone: the fall is told against the 4-week mean and its peak
        ([20, 22, 90, 24, 20], "from a 4-week mean of 39.0 (-48.7%, significant); the mean "
         "still holds 90.0 of "),
        # a one-week spike, gone: against the previous week, no word about the mean
        ([20, 22, 21, 60, 20], "from 60.0 the previous week (-66.7%, significant): nothing new"),
        # a rise against the 4-week mean: the lever
        ([20, 22, 21, 19, 60], "from a 4-week mean of 20.5 (+192.7%, significant). Consider "
         f"{LEVERS['payment_fraud']}."),
    ],
)  # fmt: skip
def test_changes_are_told_against_the_comparison_that_moved(cases, expected) -> None:
    monday = date(2026, 3, 30)
    table = surface_table(_one_category_weeks(cases, monday), monday)
    (section,) = [
        s
        for s in surface_sections(table, _one_category_weeks(cases, monday), where={},
                                  topics=pl.DataFrame())
        if s.key == "surface_payments"
    ]  # fmt: skip
    told = [s for s in section.sentences if s.startswith("Payment fraud ")]
    assert len(told) == 1 and expected in told[0], told
