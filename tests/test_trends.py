"""Trend metrics of analytics.metrics (trends, kpis, movers, weekly), checked against numbers
worked out by hand on tiny cubes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scipy.stats import false_discovery_control

from analytics.core.calendar import iso_week, parse_week
from analytics.core.filters import Filters
from analytics.metrics.kpis import KPIS, kpis
from analytics.metrics.movers import top_movers
from analytics.metrics.trends import (
    AGE_BUCKETS,
    backlog,
    daily_volume,
    example_cube,
    prevalence_by_category,
    weekly_metrics,
)
from analytics.metrics.weekly import weekly_view
from analytics.sources.frames import (
    ACTIVE_COLUMNS,
    ANNOTATION_COLUMNS,
    CASE_COLUMNS,
    EXPOSURE_COLUMNS,
    Cube,
    conform,
    empty_frame,
)
from tests.helpers import central_p, fisher_central_p

W0 = date(2026, 10, 5)  # a Monday: week 0 of every cube below


def week(i: int) -> date:
    """The Monday of week ``i`` (counted from W0)."""
    return W0 + timedelta(days=7 * i)


def at(i: int, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """An instant in week ``i``: its Monday 00:00 plus an offset."""
    start = datetime.combine(week(i), datetime.min.time())
    return start + timedelta(days=days, hours=hours, minutes=minutes)


_CASE_DEFAULTS: dict[str, Any] = {
    "source": "user_report",
    "category": "spam",
    "severity": "low",
    "status": None,
    "region": "CA",
    "platform": "web",
    "specialty": None,
    "subject_account_id": None,
    "reporter_account_id": None,
    "first_response_at": None,
    "resolved_at": None,
    "resolution": None,
    "appealed_at": None,
    "appeal_outcome": None,
    "repeat_offender": False,
}


def case(opened_at: datetime, **fields: Any) -> dict[str, Any]:
    """One case row: an open, unresponded, low-severity spam report from CA on the web."""
    unknown = set(fields) - set(CASE_COLUMNS)
    assert not unknown, f"not case columns: {unknown}"
    return {**_CASE_DEFAULTS, "opened_at": opened_at, **fields}


def make_cube(
    cases: Iterable[Mapping[str, Any]],
    *,
    weeks: int = 1,
    as_of: datetime | None,
    exposure: Iterable[Mapping[str, Any]] = (),
    active: Mapping[date, int] | None = None,
) -> Cube:
    """A cube over weeks 0..``weeks``-1; case ids are assigned in order when missing."""
    rows = [{"id": n, **row} if "id" not in row else dict(row) for n, row in enumerate(cases, 1)]
    for n, row in enumerate(rows, 1):
        if row["subject_account_id"] is None:
            row["subject_account_id"] = 1000 + n  # a distinct subject per case by default
    case_frame = (
        conform(pl.DataFrame(rows, infer_schema_length=None), CASE_COLUMNS)
        if rows
        else empty_frame(CASE_COLUMNS)
    )
    exposure_rows = list(exposure)
    exposure_frame = (
        conform(pl.DataFrame(exposure_rows), EXPOSURE_COLUMNS)
        if exposure_rows
        else empty_frame(EXPOSURE_COLUMNS)
    )
    active = active or {}
    active_frame = pl.DataFrame(
        {"week": list(active), "accounts": list(active.values())}, schema=ACTIVE_COLUMNS
    )
    return Cube(
        filters=Filters(start=week(0), end=week(weeks - 1) + timedelta(days=6)),
        cases=case_frame,
        exposure=exposure_frame,
        active=active_frame,
        annotations=empty_frame(ANNOTATION_COLUMNS),
        as_of=as_of,
    )


def events(day: date, kind: str, n: int, *, region: str = "CA", platform: str = "web") -> dict:
    return {"day": day, "kind": kind, "region": region, "platform": platform, "events": n}


AFTER = at(1, hours=6)  # an as_of after a one-week cube's only week


# --------------------------------------------------------------------------- weekly_metrics


def _count_mode_cube() -> Cube:
    # Reporter 7 files 5 cases (against subjects 100, 101, 102, 100, 100), reporter 8 one
    # (against 103), and two cases have no reporter (automated; subjects 104, 105).
    rows = [
        case(at(0, hours=h), reporter_account_id=7, subject_account_id=s)
        for h, s in enumerate([100, 101, 102, 100, 100])
    ]
    rows += [
        case(at(0, days=1), reporter_account_id=8, subject_account_id=103),
        case(at(0, days=2), source="ml_model", subject_account_id=104),
        case(at(0, days=3), source="automated_rule", subject_account_id=105),
    ]
    return make_cube(rows, as_of=AFTER)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        ("cases", 8),  # every case
        ("subjects", 6),  # 100, 101, 102, 103, 104, 105
        ("reporters", 2),  # 7 (five cases, counted once) and 8; null reporters ignored
    ],
)
def test_new_cases_count_modes(count: str, expected: int) -> None:
    out = weekly_metrics(_count_mode_cube(), count=count)  # type: ignore[arg-type]
    assert out.select("week", "new_cases", "cases").rows() == [(week(0), expected, 8)]


def test_unknown_count_mode_raises() -> None:
    with pytest.raises(ValueError, match="count must be one of"):
        weekly_metrics(_count_mode_cube(), count="accounts")  # type: ignore[arg-type]


def test_unknown_dimension_raises() -> None:
    with pytest.raises(ValueError, match="by must be one of"):
        weekly_metrics(_count_mode_cube(), by="colour")


def test_empty_week_in_the_middle_has_zero_counts_and_null_rates() -> None:
    rows = [
        # week 0: one resolved violation (responded and resolved after 1 h), one open case
        case(
            at(0, hours=1),
            first_response_at=at(0, hours=2),
            resolved_at=at(0, hours=2),
            resolution="warning",
        ),
        case(at(0, days=1)),
        # week 1: nothing; week 2: one open case
        case(at(2, days=3)),
    ]
    active = {week(0): 100, week(1): 100, week(2): 100}
    out = weekly_metrics(make_cube(rows, weeks=3, as_of=at(3, hours=1), active=active))
    expected = pl.DataFrame(
        {
            "week": [week(0), week(1), week(2)],
            "new_cases": [2, 0, 1],
            "resolved": [1, 0, 0],
            "violations": [1, 0, 0],
            "exposure": [100, 100, 100],
            # 2/100*1000, 0/100*1000 (exposure known, no cases: 0, not null), 1/100*1000
            "prevalence": [20.0, 0.0, 10.0],
            "action_rate": [1.0, None, None],  # 1/1; no resolved case in weeks 1 and 2
            "proactive_rate": [0.0, None, None],  # the violation came from a user report
            # week 0: answered after 1 h, and one unanswered for 20 d (> 120 h): 1 of 2 due;
            # week 2: unanswered for 97 h of its 120 h by as_of, not yet due
            "sla_breach_rate": [0.5, None, None],
            "resolved_share": [0.5, None, 0.0],
            "ttfr_median_h": [1.0, None, None],
            "ttr_p90_h": [1.0, None, None],
            "provisional": [False, False, False],
        },
        schema_overrides={c: pl.Int64 for c in ("new_cases", "resolved", "violations", "exposure")},
    )
    assert_frame_equal(out.select(expected.columns), expected)


def test_week_without_exposure_has_null_prevalence() -> None:
    rows = [case(at(0, days=1)), case(at(1, days=1)), case(at(1, days=2))]
    # week 0 has an active-accounts row of 0; week 1 has no row at all
    cube = make_cube(rows, weeks=2, as_of=at(2), active={week(0): 0})
    out = weekly_metrics(cube)
    assert out.select("week", "cases", "exposure", "prevalence").rows() == [
        (week(0), 1, 0, None),
        (week(1), 2, 0, None),
    ]


def _prevalence_cube() -> Cube:
    # Week 0 cases: fake_review CA, CA, NY; account_takeover CA, NY; spam CA, CA, CA, NY;
    # payment_fraud CA, CA, CA. That is 12 cases: 9 in CA, 3 in NY.
    spec = [
        ("fake_review", ["CA", "CA", "NY"]),
        ("account_takeover", ["CA", "NY"]),
        ("spam", ["CA", "CA", "CA", "NY"]),
        ("payment_fraud", ["CA", "CA", "CA"]),
    ]
    rows = [
        case(at(0, hours=len(regions) + i), category=category, region=region)
        for category, regions in spec
        for i, region in enumerate(regions)
    ]
    exposure = [
        events(week(0), "review_posted", 600),  # CA reviews: 600 + 400 = 1,000
        events(week(0) + timedelta(days=6), "review_posted", 400, platform="ios"),
        events(week(0) + timedelta(days=2), "review_posted", 1000, region="NY"),
        events(week(0) + timedelta(days=1), "message_sent", 3000),
        events(week(0) + timedelta(days=3), "message_sent", 2000, region="NY", platform="android"),
        events(week(0) + timedelta(days=4), "booking_created", 500),
        # outside week 0: never counted
        events(week(1), "review_posted", 9999),
        events(week(0) - timedelta(days=1), "message_sent", 7777),
    ]
    return make_cube(rows, as_of=AFTER, exposure=exposure, active={week(0): 1000})


def test_prevalence_overall_is_per_1000_active_accounts() -> None:
    out = weekly_metrics(_prevalence_cube())
    # 12 cases / 1,000 active accounts * 1,000
    assert out.select("cases", "exposure", "exposure_kind", "prevalence").rows() == [
        (12, 1000, "active accounts", 12.0)
    ]


def test_prevalence_by_category_uses_the_category_exposure() -> None:
    out = weekly_metrics(_prevalence_cube(), by="category")
    expected = pl.DataFrame(
        {
            "category": ["account_takeover", "fake_review", "payment_fraud", "spam"],
            "cases": [2, 3, 3, 4],
            # active accounts; reviews 600+400+1000; bookings; messages 3000+2000
            "exposure": [1000, 2000, 500, 5000],
            "exposure_kind": ["active accounts", "reviews", "bookings", "messages"],
            # 2/1000, 3/2000, 3/500, 4/5000 (times 1,000)
            "prevalence": [2.0, 1.5, 6.0, 0.8],
        },
        schema_overrides={"cases": pl.Int64, "exposure": pl.Int64},
    )
    assert_frame_equal(out.select(expected.columns), expected)


def test_prevalence_by_region_uses_bookings_reviews_and_messages_there() -> None:
    out = weekly_metrics(_prevalence_cube(), by="region")
    expected = pl.DataFrame(
        {
            "region": ["CA", "NY"],
            "cases": [9, 3],
            "exposure": [4500, 3000],  # CA: 1000 + 3000 + 500; NY: 1000 + 2000
            "exposure_kind": ["bookings, reviews and messages"] * 2,
            "prevalence": [2.0, 1.0],  # 9/4500*1000, 3/3000*1000
        },
        schema_overrides={"cases": pl.Int64, "exposure": pl.Int64},
    )
    assert_frame_equal(out.select(expected.columns), expected)


def test_prevalence_by_severity_uses_active_accounts() -> None:
    out = weekly_metrics(_prevalence_cube(), by="severity")
    assert out.select("severity", "exposure", "exposure_kind", "prevalence").rows() == [
        ("low", 1000, "active accounts", 12.0)  # every case is low severity
    ]


def test_rates_from_outcomes() -> None:
    t = at(0, hours=1)
    done = t + timedelta(hours=5)
    rows = [
        # 1: automated violation, appealed and overturned
        case(t, source="ml_model", resolved_at=done, resolution="warning",
             appealed_at=done, appeal_outcome="overturned"),
        # 2: automated, no violation
        case(t, source="automated_rule", resolved_at=done, resolution="no_violation"),
        # 3: automated violation, appealed and upheld
        case(t, source="ml_model", resolved_at=done, resolution="content_removed",
             appealed_at=done, appeal_outcome="upheld"),
        # 4: reported violation, appeal pending
        case(t, resolved_at=done, resolution="account_suspended",
             appealed_at=done, appeal_outcome="pending"),
        # 5: reported, no violation
        case(t, resolved_at=done, resolution="no_violation"),
        # 6: reported, still open, repeat offender
        case(t, repeat_offender=True),
        # 7: automated, still open
        case(t, source="automated_rule"),
        # 8: provider report, violation, repeat offender
        case(t, source="provider_report", resolved_at=done, resolution="warning",
             repeat_offender=True),
    ]  # fmt: skip
    out = weekly_metrics(make_cube(rows, as_of=AFTER))
    expected = pl.DataFrame(
        {
            "cases": [8],
            "resolved": [6],  # 1, 2, 3, 4, 5, 8
            "violations": [4],  # 1, 3, 4, 8
            "proactive": [2],  # 1, 3
            "automated_resolved": [3],  # 1, 2, 3
            "automated_violations": [2],  # 1, 3
            "appealed": [3],  # 1, 3, 4
            "appeal_decided": [2],  # 1, 3 (4 is pending)
            "overturned": [1],  # 1
            "repeat": [2],  # 6, 8
            "proactive_rate": [2 / 4],
            "action_rate": [4 / 6],
            "precision": [2 / 3],
            "appeal_rate": [3 / 4],
            "overturn_rate": [1 / 2],
            "repeat_rate": [2 / 8],
            "resolved_share": [6 / 8],
        },
        schema_overrides={c: pl.Int64 for c in ("cases", "resolved", "violations", "proactive",
                                                 "automated_resolved", "automated_violations",
                                                 "appealed", "appeal_decided", "overturned",
                                                 "repeat")},
    )  # fmt: skip
    assert_frame_equal(out.select(expected.columns), expected)


def test_sla_breach_boundaries_and_waiting_cases() -> None:
    t = at(0)  # Monday 00:00
    rows = [
        # a: critical (2 h), answered at exactly 2 h: due, not breached
        case(t, severity="critical", first_response_at=t + timedelta(hours=2)),
        # b: critical, answered a minute late: breached
        case(t, severity="critical", first_response_at=t + timedelta(hours=2, minutes=1)),
        # c: high (12 h), answered at exactly 12 h: not breached
        case(t, severity="high", first_response_at=t + timedelta(hours=12)),
        # d: high, answered at 12 h 1 min: breached
        case(t, severity="high", first_response_at=t + timedelta(hours=12, minutes=1)),
        # e: low (120 h), unanswered, opened Monday 00:00; as_of is Sunday 00:00, 144 h later:
        #    past its deadline, so due and breached
        case(t, severity="low"),
        # f: low, unanswered, opened Thursday: waited 72 h of 120, outcome unknown: not due
        case(t + timedelta(days=3), severity="low"),
        # g: medium (48 h), answered after 1 h
        case(t, severity="medium", first_response_at=t + timedelta(hours=1)),
    ]
    out = weekly_metrics(make_cube(rows, as_of=at(0, days=6)))
    assert out.select("responded", "due", "breached", "sla_breach_rate").rows() == [
        (5, 6, 3, 3 / 6)  # due: a b c d e g; breached: b d e
    ]
    by_severity = weekly_metrics(make_cube(rows, as_of=at(0, days=6)), by="severity")
    assert by_severity.select("severity", "due", "breached", "sla_breach_rate").rows() == [
        ("critical", 2, 1, 0.5),
        ("high", 2, 1, 0.5),
        ("low", 1, 1, 1.0),
        ("medium", 1, 0, 0.0),
    ]


def test_duration_median_and_p90_with_ties() -> None:
    t = at(0, hours=1)
    first_h = [1, 1, 1, 5, None]
    resolve_h = [2, 4, 6, 8, 10]
    rows = [
        case(
            t,
            first_response_at=None if f is None else t + timedelta(hours=f),
            resolved_at=t + timedelta(hours=r),
            resolution="no_violation",
        )
        for f, r in zip(first_h, resolve_h, strict=True)
    ]
    rows.append(case(t))  # neither responded nor resolved: in no duration
    out = weekly_metrics(make_cube(rows, as_of=AFTER))
    row = out.select("ttfr_median_h", "ttfr_p90_h", "ttr_median_h", "ttr_p90_h").row(0)
    # first response [1, 1, 1, 5]: median (1+1)/2 = 1; p90 at rank 0.9*3 = 2.7 between
    # 1 (rank 2) and 5 (rank 3): 1 + 0.7*4 = 3.8
    # resolution [2, 4, 6, 8, 10]: median 6; p90 at rank 0.9*4 = 3.6: 8 + 0.6*2 = 9.2
    assert row == pytest.approx((1.0, 3.8, 6.0, 9.2))


def test_provisional_only_for_the_week_ending_after_as_of() -> None:
    rows = [case(at(i, days=1)) for i in range(3)]
    mid_week = weekly_metrics(make_cube(rows, weeks=3, as_of=at(2, days=2, hours=10)))
    assert mid_week.select("week", "provisional").rows() == [
        (week(0), False),
        (week(1), False),
        (week(2), True),
    ]
    # as_of exactly when week 1 ends: week 1 is complete, week 2 has just begun
    boundary = weekly_metrics(make_cube(rows, weeks=3, as_of=at(2)))
    assert boundary["provisional"].to_list() == [False, False, True]
    # as_of within week 1: week 2 has not begun and is not shown at all
    early = weekly_metrics(make_cube(rows[:2], weeks=3, as_of=at(1, days=3)))
    assert early.select("week", "provisional").rows() == [(week(0), False), (week(1), True)]


def test_by_dimension_skips_cases_without_a_value() -> None:
    rows = [case(at(0, hours=1), specialty="dentistry"), case(at(0, hours=2))]
    out = weekly_metrics(make_cube(rows, as_of=AFTER), by="specialty")
    assert out.select("specialty", "cases").rows() == [("dentistry", 1)]


def test_category_without_its_exposure_keeps_its_own_exposure_kind() -> None:
    # fake_review is measured against reviews; the week has messages but no reviews
    rows = [case(at(0, hours=1), category="fake_review"), case(at(0, hours=2), category="spam")]
    cube = make_cube(
        rows, as_of=AFTER, exposure=[events(week(0), "message_sent", 100)], active={week(0): 50}
    )
    out = weekly_metrics(cube, by="category")
    assert out.select("category", "exposure", "exposure_kind", "prevalence").rows() == [
        ("fake_review", 0, "reviews", None),
        ("spam", 100, "messages", 10.0),
    ]


# --------------------------------------------------------------------------- daily_volume


def test_daily_volume_grid_zero_fill_and_trailing_mean() -> None:
    day = [week(0) + timedelta(days=i) for i in range(10)]
    rows = [
        case(at(0, days=-3)),  # before the window, still open: no day of its own
        *[case(at(0, hours=h)) for h in (1, 2)],  # day 0: 2
        case(at(0, days=2, hours=5)),  # day 2: 1
        *[case(at(0, days=6, hours=h)) for h in (1, 2, 3, 4)],  # day 6: 4
        *[case(at(1, days=1, hours=h)) for h in (1, 2, 3)],  # day 8: 3
    ]
    # as_of Wednesday of week 1: days 0..9
    out = daily_volume(make_cube(rows, weeks=2, as_of=at(1, days=2, hours=10)))
    expected = pl.DataFrame(
        {
            "day": day,
            "value": [2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 3.0, 0.0],
            # days 0-5: fewer than 7 days; then means of days 0-6, 1-7, 2-8, 3-9
            "avg7": [None] * 6 + [7 / 7, 5 / 7, 8 / 7, 7 / 7],
            "provisional": [False] * 7 + [True] * 3,  # the days of unfinished week 1
        },
        schema_overrides={"avg7": pl.Float64},
    )
    assert_frame_equal(out, expected)


def test_daily_volume_counts_distinct_subjects() -> None:
    rows = [case(at(0, hours=h), subject_account_id=5) for h in (1, 2, 3)]
    rows.append(case(at(0, hours=4), subject_account_id=6))
    out = daily_volume(make_cube(rows, as_of=AFTER), count="subjects")
    assert out["value"].to_list() == [2.0] + [0.0] * 6


def test_daily_volume_finished_week_is_not_provisional() -> None:
    # The window is week 0 only; as_of is Wednesday 09:00 of week 1, so week 0 is over
    # (weekly_metrics agrees), and none of its days are provisional.
    cube = make_cube([case(at(0, days=d)) for d in range(7)], as_of=at(1, days=2, hours=9))
    assert weekly_metrics(cube)["provisional"].to_list() == [False]
    assert daily_volume(cube)["provisional"].to_list() == [False] * 7


# --------------------------------------------------------------------------- backlog


def test_backlog_by_age_at_each_week_end() -> None:
    rows = [
        # A: opened Saturday of week 0, resolved Tuesday of week 1: open 2 days at end of week 0
        case(at(0, days=5), resolved_at=at(1, days=1), resolution="no_violation"),
        # B: opened and resolved within week 0: never open at a week end
        case(at(0, days=1), resolved_at=at(0, days=4), resolution="no_violation"),
        # C: opened Sunday 12:00 of week 0, never resolved: 0.5 d, 7.5 d, then 10 d at as_of
        case(at(0, days=6, hours=12)),
        # D: opened 40 days before week 0, never resolved: > 30 days everywhere
        case(at(0, days=-40)),
        # E: opened Tuesday of week 2, open: 1.5 d at as_of (it would be 6 d at the week's end)
        case(at(2, days=1)),
        # F: opened Wednesday of week 1, resolved Monday 10:00 of week 2: 5 d at end of week 1
        case(at(1, days=2), resolved_at=at(2, hours=10), resolution="warning"),
    ]
    out = backlog(make_cube(rows, weeks=3, as_of=at(2, days=2, hours=12)))
    sundays = [week(i) + timedelta(days=6) for i in range(3)]
    counts = {
        sundays[0]: {"< 1 day": 1, "1–3 days": 1, "> 30 days": 1},  # C, A, D
        sundays[1]: {"3–7 days": 1, "7–30 days": 1, "> 30 days": 1},  # F, C, D
        sundays[2]: {"1–3 days": 1, "7–30 days": 1, "> 30 days": 1},  # E, C, D
    }
    expected = pl.DataFrame(
        [(end, bucket, counts[end].get(bucket, 0)) for end in sundays for bucket in AGE_BUCKETS],
        schema={"week_end": pl.Date, "age_bucket": pl.String, "open": pl.Int64},
        orient="row",
    )
    assert_frame_equal(out, expected)


# --------------------------------------------------------------------------- kpis


def _weekly_counts_cube(counts: list[int], **fields: Any) -> Cube:
    rows = [
        case(at(i, hours=h), resolved_at=at(i, hours=h + 1), resolution="no_violation", **fields)
        for i, n in enumerate(counts)
        for h in range(n)
    ]
    return make_cube(rows, weeks=len(counts), as_of=at(len(counts), hours=6))


def _kpi_cube() -> Cube:
    # new cases per week: 6, 7, 6, 5, 40. Weeks 0-2: all resolved within the hour, no violation.
    rows = [
        case(at(i, hours=h), resolved_at=at(i, hours=h + 1), resolution="no_violation")
        for i, n in enumerate([6, 7, 6])
        for h in range(n)
    ]
    # week 3: 4 resolved (2 violations), 1 left open
    outcomes3 = ["warning"] * 2 + ["no_violation"] * 2
    rows += [case(at(3, hours=h), resolved_at=at(3, hours=h + 1), resolution=r)
             for h, r in enumerate(outcomes3)]  # fmt: skip
    rows.append(case(at(3, hours=10)))
    # week 4: 30 resolved (12 violations), 10 left open
    outcomes4 = ["warning"] * 12 + ["no_violation"] * 18
    rows += [case(at(4, hours=h), resolved_at=at(4, hours=h + 1), resolution=r)
             for h, r in enumerate(outcomes4)]  # fmt: skip
    rows += [case(at(4, hours=30 + h)) for h in range(10)]
    return make_cube(rows, weeks=5, as_of=at(5, hours=6))


def _kpi(out: pl.DataFrame, key: str) -> dict[str, Any]:
    return out.filter(pl.col("key") == key).row(0, named=True)


def test_kpis_cards_in_order() -> None:
    out = kpis(_kpi_cube(), week=week(4))
    assert out["key"].to_list() == [k.key for k in KPIS]
    assert not out["provisional"].any()  # week 4 ended before as_of


def test_kpi_new_cases_value_previous_baseline_and_tests() -> None:
    row = _kpi(kpis(_kpi_cube(), week=week(4)), "new_cases")
    assert (row["value"], row["previous"], row["baseline"]) == (40.0, 5.0, 6.0)  # (6+7+6+5)/4
    assert (row["delta"], row["delta_pct"], row["direction"]) == (35.0, 7.0, "up")  # 35/5
    # 40 of 45 cases in the later of two equal weeks
    assert row["p_previous"] == pytest.approx(central_p(40, 45, 0.5), rel=1e-9)
    # 40 against 24 over four weeks: 40 of 64 with probability 1/5
    assert row["p_baseline"] == pytest.approx(central_p(40, 64, 0.2), rel=1e-9)
    assert row["significant"] is True
    assert row["significant_baseline"] is True
    assert row["completeness"] is None


def test_kpi_action_rate_with_completeness() -> None:
    row = _kpi(kpis(_kpi_cube(), week=week(4)), "action_rate")
    assert (row["value"], row["previous"]) == (12 / 30, 2 / 4)
    assert row["baseline"] == pytest.approx((0 + 0 + 0 + 0.5) / 4)
    assert row["completeness"] == 30 / 40  # resolved share of week 4
    assert row["p_previous"] == pytest.approx(fisher_central_p(12, 30, 2, 4), rel=1e-9)
    # the baseline pools weeks 0-3: 2 violations of 6+7+6+4 = 23 resolved
    assert row["p_baseline"] == pytest.approx(fisher_central_p(12, 30, 2, 23), rel=1e-9)
    assert row["direction"] == "down"


def test_kpi_backlog_is_open_cases_at_week_end() -> None:
    row = _kpi(kpis(_kpi_cube(), week=week(4)), "backlog")
    # end of week 3: its one open case; end of week 4: that one plus week 4's ten
    assert (row["value"], row["previous"], row["baseline"]) == (11.0, 1.0, 0.25)


@pytest.mark.parametrize(
    ("before", "now", "direction", "significant"),
    [
        (5, 40, "up", True),
        (20, 23, "up", False),
        (20, 15, "down", False),
        (10, 10, "flat", False),
    ],
)
def test_kpi_week_over_week_significance(
    before: int, now: int, direction: str, significant: bool
) -> None:
    row = _kpi(kpis(_weekly_counts_cube([before, now]), week=week(1)), "new_cases")
    expected_p = central_p(now, before + now, 0.5)
    assert row["p_previous"] == pytest.approx(expected_p, rel=1e-9)
    assert (row["direction"], row["significant"]) == (direction, significant)
    assert (expected_p < 0.05) is significant  # the hand-picked cases are what they claim


# --------------------------------------------------------------------------- top movers


def _movers_cube() -> Cube:
    # week 0: spam 2 (CA), harassment 10 (5 CA, 5 NY), fake_review 10 (5 CA, 5 NY)
    # week 1: spam 40 (CA), harassment and fake_review as before, other 3 (NY)
    def block(i: int, category: str, region: str, n: int) -> list[dict[str, Any]]:
        return [case(at(i, hours=h), category=category, region=region) for h in range(n)]

    rows: list[dict[str, Any]] = []
    for i in (0, 1):
        rows += block(i, "spam", "CA", 2 if i == 0 else 40)
        for category in ("harassment", "fake_review"):
            rows += block(i, category, "CA", 5) + block(i, category, "NY", 5)
    rows += block(1, "other", "NY", 3)
    return make_cube(rows, weeks=2, as_of=at(2, hours=1))


def test_top_movers_one_dimension() -> None:
    out = top_movers(_movers_cube(), week=week(1), depth=1, dims=("category", "region"))
    # totals: 22 before, 63 now: a change of 41
    expected = pl.DataFrame(
        {
            "slice": [
                "category=spam",
                "region=CA",
                "category=other",  # ties with region=NY on change and depth: label order
                "region=NY",
                "category=fake_review",
                "category=harassment",
            ],
            "current": [40.0, 50.0, 3.0, 13.0, 10.0, 10.0],
            "expected": [2.0, 12.0, 0.0, 10.0, 10.0, 10.0],
            "abs_change": [38.0, 38.0, 3.0, 3.0, 0.0, 0.0],
            "rel_change": [19.0, 38 / 12, None, 0.3, 0.0, 0.0],
            "share_of_change": [38 / 41, 38 / 41, 3 / 41, 3 / 41, 0.0, 0.0],
            "significant": [True, True, False, False, False, False],
        }
    )
    assert_frame_equal(out.select(expected.columns), expected)
    p = [central_p(40, 42, 0.5), central_p(50, 62, 0.5), 0.25,  # other: 2 * (1/2)^3
         central_p(13, 23, 0.5), 1.0, 1.0]  # fmt: skip
    assert out["p_value"].to_list() == pytest.approx(p, rel=1e-9)
    assert out["q_value"].to_list() == pytest.approx(list(false_discovery_control(p)), rel=1e-9)
    assert out.select("category", "region").row(0) == ("spam", None)
    assert out.select("category", "region").row(1) == (None, "CA")


def test_top_movers_two_dimensions() -> None:
    out = top_movers(_movers_cube(), week=week(1), depth=2, dims=("category", "region"))
    # 4 categories + 2 regions + the 6 category-region pairs that occur
    assert out.height == 12
    assert out["slice"].to_list()[:3] == [
        "category=spam",
        "region=CA",
        "category=spam · region=CA",  # the same change one level deeper ranks after
    ]
    pair = out.row(2, named=True)
    assert (pair["category"], pair["region"], pair["depth"]) == ("spam", "CA", 2)
    assert (pair["current"], pair["expected"], pair["significant"]) == (40.0, 2.0, True)
    assert (
        out.filter(pl.col("depth") == 2, pl.col("slice") != pair["slice"])["significant"].to_list()
        == [False] * 5
    )


def test_top_movers_four_week_baseline() -> None:
    # spam: 2, 4, 3, 3 in weeks 0-3 then 30; harassment: 5 every week
    spam = [2, 4, 3, 3, 30]
    rows = [case(at(i, hours=h), category="spam") for i, n in enumerate(spam) for h in range(n)]
    rows += [case(at(i, hours=50 + h), category="harassment") for i in range(5) for h in range(5)]
    cube = make_cube(rows, weeks=5, as_of=at(5, hours=1))
    out = top_movers(cube, week=week(4), baseline="4w", depth=1, dims=("category",))
    # total: 35 now against (12 + 20) / 4 = 8: a change of 27
    expected = pl.DataFrame(
        {
            "slice": ["category=spam", "category=harassment"],
            "current": [30.0, 5.0],
            "expected": [3.0, 5.0],  # 12 / 4, 20 / 4
            "abs_change": [27.0, 0.0],
            "rel_change": [9.0, 0.0],
            "share_of_change": [1.0, 0.0],
            "significant": [True, False],
        }
    )
    assert_frame_equal(out.select(expected.columns), expected)
    # a week against the sum of four: probability 1/5 under no change
    p = [central_p(30, 42, 0.2), central_p(5, 25, 0.2)]
    assert out["p_value"].to_list() == pytest.approx(p, rel=1e-9)


def test_top_movers_subjects_one_noisy_subject_is_not_a_wave() -> None:
    rows = [case(at(0, hours=h), subject_account_id=s) for h, s in enumerate([1, 2, 3])]
    rows += [case(at(1, hours=h), subject_account_id=77) for h in range(30)]
    rows += [case(at(1, hours=40 + h), subject_account_id=s) for h, s in enumerate([1, 2])]
    cube = make_cube(rows, weeks=2, as_of=at(2, hours=1))
    by_case = top_movers(cube, week=week(1), depth=1, dims=("category",))
    assert by_case.select("slice", "current", "expected", "significant").rows() == [
        ("category=spam", 32.0, 3.0, True)
    ]
    by_subject = top_movers(cube, week=week(1), depth=1, dims=("category",), count="subjects")
    # subjects 1, 2, 3 before; 77, 1, 2 now
    assert by_subject.select(
        "slice", "current", "expected", "abs_change", "p_value", "significant"
    ).rows() == [("category=spam", 3.0, 3.0, 0.0, 1.0, False)]
    assert by_subject["share_of_change"].to_list() == [None]  # no total change to share


# --------------------------------------------------------------------------- prevalence


def test_prevalence_by_category_this_week_against_the_last() -> None:
    exposure = [
        events(week(0), "review_posted", 1000),
        events(week(0), "message_sent", 4000),
        events(week(1), "review_posted", 2000),
        events(week(1), "message_sent", 4000),
    ]
    counts = {0: {"fake_review": 2, "spam": 4}, 1: {"fake_review": 10, "spam": 4,
                                                    "account_takeover": 1}}  # fmt: skip
    rows = [
        case(at(i, hours=h), category=category)
        for i, per_category in counts.items()
        for category, n in per_category.items()
        for h in range(n)
    ]
    cube = make_cube(
        rows, weeks=2, as_of=at(2, hours=1), exposure=exposure, active={week(0): 500, week(1): 500}
    )
    out = prevalence_by_category(cube, week=week(1))
    # per 1,000: fake_review 10/2000 (was 2/1000); account_takeover 1/500 (was 0/500);
    # spam 4/4000 (was 4/4000). p: x1 of x1+x0 with probability t1/(t1+t0)
    p = [central_p(10, 12, 2000 / 3000), central_p(1, 1, 0.5), central_p(4, 8, 0.5)]
    expected = pl.DataFrame(
        {
            "category": ["fake_review", "account_takeover", "spam"],
            "exposure": ["reviews", "active accounts", "messages"],
            "cases": [10, 1, 4],
            "per_1000": [5.0, 2.0, 1.0],
            "prev_per_1000": [2.0, 0.0, 1.0],
            "p_value": p,
            "significant": [x < 0.05 for x in p],
        },
        schema_overrides={"cases": pl.Int64},
    )
    assert_frame_equal(out, expected)


# --------------------------------------------------------------------------- the page


def test_weekly_view_shapes() -> None:
    cube = _kpi_cube()
    view = weekly_view(cube, week=week(4))
    assert not view.empty
    assert view.week == week(4)
    assert view.kpis.height == len(KPIS)
    assert view.weekly.height == 5
    assert view.daily.height == 35  # five whole weeks, the last ended before as_of
    assert view.backlog.height == 5 * len(AGE_BUCKETS)
    assert view.durations.height == 2 * 5  # first response and resolution per week
    assert view.categories.select("category").unique().rows() == [("spam",)]
    assert view.weekly["new_cases"].to_list() == [6, 7, 6, 5, 40]


def test_weekly_view_of_a_cube_without_cases_is_empty() -> None:
    view = weekly_view(make_cube([], weeks=2, as_of=at(2)), week=week(1))
    assert view.empty
    assert view.weekly["new_cases"].to_list() == [0, 0]
    assert view.movers.is_empty()
    assert view.prevalence.is_empty()
    assert _kpi(view.kpis, "new_cases")["direction"] == "flat"


# --------------------------------------------------------------------------- weeks


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_parse_week_inverts_iso_week(day: date) -> None:
    assert parse_week(iso_week(day)) == day - timedelta(days=day.weekday())


def test_iso_week_at_year_boundaries() -> None:
    assert iso_week(date(2026, 1, 1)) == "2026-W01"  # a Thursday: week 1 holds it
    assert iso_week(date(2027, 1, 1)) == "2026-W53"  # a Friday: last year's week 53
    assert parse_week("2026-W53") == date(2026, 12, 28)


@pytest.mark.parametrize("label", ["2026-W54", "2026-W00", "hello", "", "2026-47"])
def test_parse_week_rejects_bad_labels(label: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO week"):
        parse_week(label)


def test_parse_week_rejects_week_53_of_a_52_week_year() -> None:
    with pytest.raises(ValueError):
        parse_week("2025-W53")  # 2025 has 52 ISO weeks; 2025-12-29 is 2026-W01


def test_top_movers_refuse_a_baseline_the_cube_does_not_hold() -> None:
    cube = example_cube()  # window starts 2026-11-09: no week before it is loaded
    with pytest.raises(ValueError, match="does not cover the week of 2026-11-02"):
        top_movers(cube, week=date(2026, 11, 9))
    with pytest.raises(ValueError, match="4 week"):
        top_movers(cube, week=date(2026, 11, 16), baseline="4w")


def test_kpis_compare_each_week_at_the_same_age():
    # Every case takes 10 days to resolve. Week 1 is seen one day after it ended, so none
    # of its cases is resolved yet; week 0, seen one day after *its* end, had none either.
    # Compared at the same age, resolution time and action rate have nothing to compare,
    # instead of week 0's full 240 h against week 1's nothing.
    def as_known(now: datetime) -> list[dict[str, Any]]:
        """The cases as the database holds them at ``now``: later resolutions unknown."""
        rows = []
        for w in (0, 1):
            for d in (0, 1, 2):
                done = at(w, days=d + 10)
                known = done <= now
                rows.append(
                    case(
                        at(w, days=d),
                        resolved_at=done if known else None,
                        resolution="warning" if known else None,
                    )
                )
        return rows

    cube = make_cube(as_known(at(2, days=1)), weeks=2, as_of=at(2, days=1))
    out = {r["key"]: r for r in kpis(cube, week=week(1)).iter_rows(named=True)}
    assert out["ttr_median_h"]["value"] is None and out["ttr_median_h"]["previous"] is None
    assert out["action_rate"]["value"] is None and out["action_rate"]["previous"] is None
    assert out["new_cases"]["previous"] == 3.0  # counts do not depend on resolution
    # Seen three weeks later, week 0's cases are all resolved: 240 h each.
    later = make_cube(as_known(at(4)), weeks=2, as_of=at(4))
    assert kpis(later, week=week(0)).filter(pl.col("key") == "ttr_median_h")["value"][0] == 240.0
