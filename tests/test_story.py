"""The week's story (analytics.reports.story): what it tells, in which order, for whom, and
that the brief's Headline opens with the same sentences."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select

from analytics.access import AccessDenied
from analytics.core import database, models
from analytics.core.models import Category
from analytics.reports import build_brief
from analytics.reports.story import (
    ALL_CLEAR,
    MOST,
    WeekStory,
    join_movers,
    product_items,
    story_items,
    week_story,
)
from analytics.reports.surfaces import LEVERS, surface_story, surface_table, surface_weeks

WEEK = date(2026, 11, 16)
EMPTY = pl.DataFrame()
#: The small demo's scam week (W17) and the week in progress when its data ends (W18).
SCAM_WEEK = date(2026, 4, 20)
RUNNING_WEEK = date(2026, 4, 27)


def _movers(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["slice", "depth", "current", "previous", "mean_4w", "q_prev", "q_4w"],
        orient="row",
    )


def _kpis(value: float, previous: float, baseline: float, p_prev: float, p_base: float):
    return pl.DataFrame(
        {"key": ["new_cases", "sla_breach_rate"], "value": [100.0, value],
         "previous": [90.0, previous], "baseline": [95.0, baseline],
         "p_previous": [0.5, p_prev], "p_baseline": [0.5, p_base]}
    )  # fmt: skip


def _incidents(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["slice", "source", "freq", "start", "end", "peak_ts", "peak_value",
                "peak_expected", "direction", "score", "alerted"],
        orient="row",
    )  # fmt: skip


def _topics(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["cluster_id", "label", "status", "is_emerging", "recent_count",
                "baseline_count", "growth", "q_value"],
        orient="row",
    )  # fmt: skip


def _rings(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["ring_id", "size", "growth", "devices", "ips", "is_growing", "score"],
        orient="row",
    )


def _story(role: str = "leadership", **frames: pl.DataFrame):
    given = {"movers": EMPTY, "kpis": EMPTY, "incidents": EMPTY, "topics": EMPTY, "rings": EMPTY}
    return story_items(week=WEEK, role=role, **(given | frames))


def test_a_planted_significant_mover_is_told_with_its_numbers_and_the_noise_is_not() -> None:
    movers = _movers(
        ("category=other|specialty=obgyn", 2, 120.0, 60.0, 50.0, 0.001, 0.0002),
        ("category=spam", 1, 55.0, 50.0, 52.0, 0.62, 0.71),
    )
    (item,) = _story(movers=movers)
    assert item.text == (
        "Other · OB-GYN: 120 new cases, up 140.0% on the 4-week mean of 50.0 (significant) "
        "and up 100.0% on the previous week's 60 (significant)."
    )
    assert item.note == "q < 0.001 against the 4-week mean; q = 0.001 against the previous week"
    assert (item.kind, item.severity, item.rank) == ("mover", 1, 1)
    assert item.page == "pages/cases.py"
    assert item.query == {
        "week": "2026-W47",
        "cases.slice": "category=other|specialty=obgyn",
        "cases.opened_from": "2026-11-16",
        "cases.opened_to": "2026-11-22",
    }
    assert item.link == "Its cases in Case Explorer"


def test_a_mover_significant_against_the_4_week_mean_only_is_told() -> None:
    # The brief found `other` +40.6% against the 4-week mean while the page said "noise".
    (item,) = _story(movers=_movers(("category=other", 1, 225.0, 215.0, 160.0, 0.74, 0.004)))
    assert item.text == (
        "Other: 225 new cases, up 40.6% on the 4-week mean of 160.0 (significant) and up 4.7% "
        "on the previous week's 215 (not significant)."
    )
    assert item.severity == 2


def test_nothing_significant_tells_nothing_and_the_story_says_so() -> None:
    movers = _movers(("category=spam", 1, 55.0, 50.0, 52.0, 0.2, 0.06))
    kpis = _kpis(0.30, 0.20, 0.21, 0.2, 0.3)  # worse, not significantly
    assert _story(movers=movers, kpis=kpis) == ()
    story = WeekStory(WEEK, "leadership", False, None, (), ())
    assert story.sentences == (ALL_CLEAR,)


def test_narrower_slices_are_told_within_their_parent() -> None:
    movers = _movers(
        ("category=other", 1, 226.0, 202.0, 166.0, 0.9, 0.04),
        ("category=other|severity=high", 2, 56.0, 40.0, 21.75, 0.5, 0.0003),
        ("category=other|specialty=dentistry", 2, 13.0, 5.0, 2.25, 0.3, 0.04),
    )
    (item,) = _story(movers=movers)
    assert item.text.endswith(
        "; within it 2 narrower slices moved too, most clearly Other · High (56 against a "
        "4-week mean of 21.8)."
    )


def test_the_ranking_severity_then_kind_then_strength() -> None:
    monday = datetime(2026, 11, 16)
    items = _story(
        movers=_movers(
            ("region=CA", 1, 90.0, 40.0, 45.0, 0.001, 0.001),  # up on both: act now
            ("region=FL", 1, 70.0, 50.0, 45.0, 0.3, 0.01),  # up on one: watch
            ("region=TX", 1, 10.0, 40.0, 45.0, 0.001, 0.001),  # down: note
        ),
        kpis=_kpis(0.30, 0.10, 0.11, 0.001, 0.001),
        incidents=_incidents(
            (
                "category=spam",
                "cases",
                "daily",
                monday,
                monday,
                monday,
                80.0,
                20.0,
                "up",
                9.0,
                True,
            ),
            (
                "kind=login_failed",
                "events",
                "daily",
                datetime(2026, 11, 10),
                datetime(2026, 11, 17),
                monday,
                500.0,
                200.0,
                "up",
                12.0,
                True,
            ),
            (
                "category=fraud",
                "cases",
                "daily",
                monday,
                monday,
                monday,
                30.0,
                20.0,
                "up",
                2.5,
                False,
            ),  # explained or dismissed: not alerted
        ),  # fmt: skip
        topics=_topics((7, "gift cards", "new", True, 13, 10, 7.6, 1e-5)),
        rings=_rings((101, 12, 5, 3, 4, True, 8.0), (102, 4, 0, 1, 1, False, 1.0)),
    )
    assert [(i.kind, i.severity) for i in items] == [
        ("sla", 1),
        ("topic", 1),
        ("incident", 1),
        ("ring", 1),
        ("mover", 1),
        ("incident", 2),
        ("mover", 2),
    ]
    assert len(items) == MOST  # the fall is left out: seven things are enough
    assert [i.rank for i in items] == list(range(1, MOST + 1))
    assert items[0].text == (
        "SLA breach rate: 30.0% of the cases due this week missed their deadline, up 19.0 pp "
        "on the 4-week mean of 11.0% (significant) and up 20.0 pp on the previous week's "
        "10.0% (significant)."
    )
    assert items[1].text == (
        "Emerging topic “gift cards” (a new topic): 13 cases in the last 7 days against 10 in "
        "the 83 days before, 7.6 times its usual rate (significant)."
    )
    assert items[2].text == (
        "New incident: Spam cases rose to 80 on 16 Nov against 20.0 expected (significant)."
    )
    assert items[2].note == "p < 0.001"
    assert items[2].query == {"week": "2026-W47", "anomalies.incident": "category=spam"}
    assert items[3].text == (
        "Growing ring of 12 linked accounts: 5 joined in the last 14 days, sharing 3 devices "
        "and 4 IP addresses."
    )
    assert items[5].text == (
        "Continuing incident: Login failed events rose to 500 on 16 Nov against 200.0 "
        "expected (significant), over 10–17 Nov."
    )


def test_a_week_in_progress_tells_no_fall() -> None:
    movers = _movers(
        ("region=CA", 1, 90.0, 40.0, 45.0, 0.001, 0.001),
        ("region=TX", 1, 10.0, 40.0, 45.0, 0.001, 0.001),
    )
    given = {"kpis": EMPTY, "incidents": EMPTY, "topics": EMPTY, "rings": EMPTY}
    done = story_items(week=WEEK, role="leadership", movers=movers, **given)
    running = story_items(week=WEEK, role="leadership", movers=movers, in_progress=True, **given)
    assert [i.text[:3] for i in done] == ["CA:", "TX:"]
    assert [i.text[:3] for i in running] == ["CA:"]


def test_each_incident_family_gives_its_best_member() -> None:
    monday = datetime(2026, 11, 16)
    row = ("kind=payment_failed", "events", "daily", monday, monday, monday, 74.0, 15.7, "up")
    items = _story(
        incidents=_incidents(
            (*row, 13.0, True),
            ("kind=payment_failed|platform=web", *row[1:], 20.9, True),
            ("kind=payment_failed|region=TX", *row[1:], 4.8, True),
        )
    )
    assert [i.query["anomalies.incident"] for i in items] == ["kind=payment_failed|platform=web"]
    assert items[0].text.startswith("New incident: Payment failed · Web events rose to 74")


def _surfaces(counts: dict[str, list[int]]) -> pl.DataFrame:
    """A hand-built surface table of WEEK: each category's cases over the four weeks before
    and the week (30 a week unless given), 1,000 exposures a week."""
    rows = [
        (WEEK - timedelta(weeks=4 - k), str(c), counts.get(str(c), [30] * 5)[k])
        for c in Category
        for k in range(5)
    ]
    cells = pl.DataFrame(rows, schema=["week", "category", "cases"], orient="row")
    exposure = cells.select(
        "week", "category", exposure=pl.lit(1000), exposure_kind=pl.lit("bookings")
    )
    return surface_table(surface_weeks(cells, exposure), WEEK)


def test_product_is_told_the_surfaces_rises_first_then_topics_then_falls() -> None:
    table = _surfaces(
        {
            "payment_fraud": [20, 22, 18, 20, 60],  # up on both baselines: act now
            "fake_review": [20, 20, 20, 40, 45],  # up on the 4-week mean only: watch
            "spam": [80, 80, 80, 80, 30],  # down: a note, told last
        }
    )
    topics = pl.DataFrame(
        {"label": ["gift cards", "five stars"], "top_category": ["other", "fake_review"],
         "q_value": [1e-5, 0.01]}
    )  # fmt: skip
    told = surface_story(table, {"payment_fraud": {"platform": "web"}}, topics)
    items, quiet = product_items(told, week=WEEK, role="product")
    assert quiet == ""
    assert [(i.kind, i.severity, i.rank) for i in items] == [
        ("surface", 1, 1),
        ("surface", 2, 2),
        ("topic", 2, 3),
        ("surface", 3, 4),
    ]
    assert items[0].text == (
        "Payments: Payment fraud rose to 60.0 per 1,000 bookings from a 4-week mean of 20.0 "
        f"(+200.0%, significant), mostly on Web. Consider {LEVERS['payment_fraud']}."
    )
    assert items[0].note == "q < 0.001 against the previous week; q < 0.001 against the 4-week mean"
    assert items[1].text.startswith("Reviews: Fake review rose to 45.0 per 1,000 bookings ")
    assert "the emerging topic “five stars”" in items[1].text  # named where it belongs
    assert items[1].note == "q = 1.000 against the previous week; q = 0.010 against the 4-week mean"
    assert items[2].text == (
        "Emerging in the case narratives of the last 7 days: “gift cards” (filed mostly as other)."
    )
    assert items[2].note == "q < 0.001 for “gift cards”"
    assert items[3].text.startswith("Messaging: Spam fell to 30.0 per 1,000 bookings ")
    assert {(i.page, i.link) for i in items} == {("pages/reports.py", "The product brief")}
    assert all(i.query == {"week": "2026-W47"} for i in items)
    # a role that may open the evidence goes there
    led = product_items(told, week=WEEK, role="leadership")[0]
    assert [i.page for i in led] == ["pages/trends.py"] * 2 + ["pages/emerging.py"] + [
        "pages/trends.py"
    ]


def test_a_quiet_week_for_product_says_no_surface_changed() -> None:
    told = surface_story(_surfaces({}), {}, pl.DataFrame())
    items, quiet = product_items(told, week=WEEK, role="product")
    assert items == ()
    assert quiet == (
        "No product surface changed significantly: 18 rates of 6 surfaces and their "
        "categories tested against the previous week and the 4-week mean."
    )
    story = WeekStory(WEEK, "product", False, None, (), items, quiet)
    assert story.sentences == (quiet,) and story.calm == quiet


def test_every_number_is_told_only_to_roles_that_see_them() -> None:
    with pytest.raises(AccessDenied):
        _story("product", movers=_movers(("region=CA", 1, 90.0, 40.0, 45.0, 0.001, 0.001)))


def test_admin_is_sent_where_it_may_go() -> None:
    monday = datetime(2026, 11, 16)
    items = _story(
        "admin",
        movers=_movers(("region=CA", 1, 90.0, 40.0, 45.0, 0.001, 0.001)),
        incidents=_incidents(
            (
                "category=spam",
                "cases",
                "daily",
                monday,
                monday,
                monday,
                80.0,
                20.0,
                "up",
                9.0,
                True,
            ),
        ),  # fmt: skip
        topics=_topics((7, "gift cards", "new", True, 13, 10, 7.6, 1e-5)),
    )
    assert [(i.kind, i.page) for i in items] == [
        ("topic", "pages/reports.py"),
        ("incident", "pages/reports.py"),
        ("mover", "pages/trends.py"),
    ]


def test_join_movers_keys_each_slice_by_its_dimensions() -> None:
    cols = {"slice": pl.String, "category": pl.String, "platform": pl.String,
            "depth": pl.Int64, "current": pl.Float64, "expected": pl.Float64,
            "q_value": pl.Float64}  # fmt: skip
    prev = pl.DataFrame([("a", "other", None, 1, 30.0, 20.0, 0.5)], schema=cols, orient="row")
    four = pl.DataFrame(
        [("a", "other", None, 1, 30.0, 12.0, 0.01), ("b", "spam", "ios", 2, 5.0, 4.0, 0.9)],
        schema=cols,
        orient="row",
    )
    assert join_movers(prev, four).rows() == [
        ("category=other", 1, 30.0, 20.0, 12.0, 0.5, 0.01),
        ("category=spam|platform=ios", 2, 5.0, None, 4.0, None, 0.9),
    ]


# --------------------------------------------------------------------------- on the small demo


@pytest.fixture(scope="module")
def engine(small_db: str):  # noqa: ANN201
    eng = database.make_engine(small_db)
    yield eng
    eng.dispose()


def _small_counts(texts: list[str]) -> list[int]:
    """Every count a sentence states: of cases, a peak, a previous week's, a baseline's."""
    counts = r"(\d[\d,]*) (?:new )?cases|(?:rose|fell) to (\d[\d,]*)|week's (\d[\d,]*)"
    found = re.findall(counts + r"|against (\d[\d,]*) in", " ".join(texts))
    return [int(n.replace(",", "")) for groups in found for n in groups if n]


@pytest.mark.slow
def test_product_sees_no_small_count_and_no_case_text(engine) -> None:
    story = week_story(engine, week=SCAM_WEEK, role="product")
    texts = list(story.sentences)
    assert story.items, "the scam week has something to tell"
    assert all(n >= 10 for n in _small_counts(texts)), texts
    assert all(i.page == "pages/reports.py" for i in story.items)
    assert not any(i.kind == "ring" for i in story.items)
    with engine.connect() as conn:
        descriptions = conn.execute(select(models.Case.description)).scalars().all()
    shown = " ".join(texts)
    assert not any(d and d in shown for d in descriptions)
    leadership = week_story(engine, week=SCAM_WEEK, role="leadership")
    assert any(n < 10 for n in _small_counts(list(leadership.sentences))), (
        "leadership is told the small counts product is not"
    )


@pytest.mark.slow
def test_a_week_in_progress_says_so_and_product_gets_the_last_complete_week(engine) -> None:
    running = week_story(engine, week=RUNNING_WEEK, role="leadership")
    assert running.in_progress and running.week == RUNNING_WEEK
    assert running.preface[0].startswith("27 Apr–3 May 2026 is still in progress (data up to ")
    product = week_story(engine, week=RUNNING_WEEK, role="product")
    assert not product.in_progress and product.week == SCAM_WEEK
    assert product.preface == (
        "27 Apr–3 May 2026 is still being counted; product numbers cover complete weeks only, "
        "so this is 20–26 Apr 2026.",
    )


@pytest.mark.slow
@pytest.mark.parametrize(("week", "role"), [(SCAM_WEEK, "leadership"),
                                            (SCAM_WEEK, "admin"),
                                            (RUNNING_WEEK, "associate")])  # fmt: skip
def test_the_brief_s_headline_opens_with_the_story(engine, week: date, role: str) -> None:
    story = week_story(engine, week=week, role=role)
    brief = build_brief(engine, week=week, audience="leadership", role=role)
    headline = brief.sections[0]
    assert headline.key == "headline"
    assert headline.sentences[: len(story.sentences)] == story.sentences
    assert len(story.items) >= 1
    # then the KPI details, as before
    assert headline.sentences[len(story.sentences)].startswith("New cases: ")


#: The small demo's fake-review weeks, each with a rise on Reviews to consider (W10, W12).
FAKE_REVIEW_WEEKS = (date(2026, 3, 2), date(2026, 3, 16))


@pytest.mark.slow
@pytest.mark.parametrize("week", [SCAM_WEEK, *FAKE_REVIEW_WEEKS, RUNNING_WEEK])
def test_the_product_brief_s_headline_opens_with_the_product_story(engine, week: date) -> None:
    story = week_story(engine, week=week, role="product")
    told = story.sentences[len(story.preface) :]  # the preface says which week is told
    assert told
    for role in ("product", "leadership"):  # the product brief is the same for every role
        brief = build_brief(engine, week=story.week, audience="product", role=role)
        headline = brief.section("headline")
        assert headline.sentences[: len(told)] == told, role
        assert headline.sentences[len(told)].startswith("New cases: ")  # then the totals
    considered = [i for i in story.items if "Consider" in i.text]
    if week in FAKE_REVIEW_WEEKS:  # what to consider, as the Reviews section says it
        (item,) = considered
        assert item.kind == "surface" and item.text.startswith("Reviews: Fake review rose to ")
        reviews = brief.section("surface_reviews").sentences
        assert item.text in [f"Reviews: {s}" for s in reviews]
        assert item.note.startswith("q ")
    if week == RUNNING_WEEK:
        assert story.week == SCAM_WEEK and len(story.preface) == 1
