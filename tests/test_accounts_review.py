"""Accounts to review (analytics.views.account_review): hand-built tables, then the small demo."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import distinct, func, select

from analytics.access import AccessDenied
from analytics.core import database
from analytics.core.models import Account, Event
from analytics.views import account_review as review
from analytics.views.anomalies import Incident

SCORED = pl.DataFrame(
    {
        "account_id": [7, 3, 5, 9],
        "score": [9.1, 4.0, 4.0, 0.5],
        "rank": [1, 2, 2, 4],
        "reasons": [
            ["reviews posted 25 (median 0)", "devices 4 (median 1)"],
            [],
            ["x 3 (median 0)"],
            [],
        ],
    }
)
INFO = pl.DataFrame(
    {
        "account_id": [3, 5, 7],
        "kind": ["provider", "practice", "patient"],
        "region": ["TX", "CA", "FL"],
        "status": ["active", "banned", "suspended"],
    }
)


def test_the_review_window_is_at_least_a_week_ending_on_the_last_day() -> None:
    assert review.review_window(date(2026, 11, 20), date(2026, 11, 20)) == (
        datetime(2026, 11, 14),
        datetime(2026, 11, 21),
    )
    assert review.review_window(date(2026, 11, 16), date(2026, 11, 22)) == (
        datetime(2026, 11, 16),
        datetime(2026, 11, 23),
    )
    assert review.review_window(date(2026, 11, 2), date(2026, 11, 22))[0] == datetime(2026, 11, 2)


def test_the_table_keeps_the_focus_most_unusual_first_in_words() -> None:
    out = review.review_table(SCORED, INFO, focus=[9, 5, 7], top=2)
    expected = pl.DataFrame(
        {
            "account_id": [7, 5],
            "label": [
                "Account 7 · Patient · FL · score 9.1",
                "Account 5 · Practice · CA · score 4.0",
            ],
            "kind": ["Patient", "Practice"],
            "region": ["FL", "CA"],
            "status": ["Suspended", "Banned"],
            "score": [9.1, 4.0],
            "rank": [1, 2],
            "why": ["reviews posted 25 (median 0); devices 4 (median 1)", "x 3 (median 0)"],
        }
    )
    assert_frame_equal(out, expected)


def test_ties_are_broken_by_account_and_unknown_accounts_still_read_in_words() -> None:
    out = review.review_table(SCORED, INFO.head(0))
    assert out["account_id"].to_list() == [7, 3, 5, 9]
    assert out["label"][3] == "Account 9 · Unknown kind · no region · score 0.5"
    assert out["why"][1] == "nothing unusual on its own"
    assert "None" not in " ".join(out["label"].to_list() + out["status"].to_list())


# --------------------------------------------------------------------------- the small demo

START, END = datetime(2026, 4, 20), datetime(2026, 4, 27)


@pytest.fixture(scope="module")
def engine(small_db):  # noqa: ANN001, ANN201
    eng = database.make_engine(small_db)
    yield eng
    eng.dispose()


def test_every_active_account_is_scored_and_the_best_are_labelled(engine) -> None:  # noqa: ANN001
    found = review.accounts_to_review(engine, start=START, end=END, focus=None, role="leadership")
    with engine.connect() as conn:
        active = conn.execute(
            select(func.count(distinct(Event.account_id))).where(Event.ts >= START, Event.ts < END)
        ).scalar_one()
        facts = dict(
            (i, (str(k), r))
            for i, k, r in conn.execute(select(Account.id, Account.kind, Account.region))
        )
    assert found.active == active and not found.of_incident
    table = found.accounts
    assert table.height == review.REVIEW_ROWS
    assert table["rank"].to_list() == sorted(table["rank"].to_list())
    assert table["score"].to_list() == sorted(table["score"].to_list(), reverse=True)
    for row in table.iter_rows(named=True):
        kind, region = facts[row["account_id"]]
        words = f"{kind.capitalize()} · {region} · score {row['score']:.1f}"
        assert row["label"] == f"Account {row['account_id']} · {words}"
    assert found.days == "20–26 Apr"


def test_the_focus_keeps_the_incidents_accounts_only(engine) -> None:  # noqa: ANN001
    everyone = review.accounts_to_review(engine, start=START, end=END, focus=None, role="associate")
    ids = everyone.accounts["account_id"].to_list()
    focus = [ids[3], ids[0], 10**9]  # one account never seen: ignored
    found = review.accounts_to_review(engine, start=START, end=END, focus=focus, role="associate")
    assert found.of_incident
    assert found.accounts["account_id"].to_list() == [ids[0], ids[3]]
    assert found.accounts["rank"].to_list() == [1, 4]  # ranks among every active account
    assert not found.none_active


def test_an_incident_whose_accounts_were_inactive_never_borrows_other_accounts(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        active = set(
            conn.execute(
                select(distinct(Event.account_id)).where(Event.ts >= START, Event.ts < END)
            )
            .scalars()
            .all()
        )
        facts = {
            int(i): (str(k), r, str(s))
            for i, k, r, s in conn.execute(
                select(Account.id, Account.kind, Account.region, Account.status)
            )
        }
    quiet = sorted(i for i in facts if i not in active)[:3]
    assert len(quiet) == 3  # the small demo has accounts with no event that week
    everyone = review.accounts_to_review(engine, start=START, end=END, focus=None, role="associate")
    found = review.accounts_to_review(
        engine, start=START, end=END, focus=[quiet[2], quiet[0], quiet[1]], role="associate"
    )
    # Its own accounts, said to be inactive, unscored; none of the window's busiest.
    assert found.of_incident and found.none_active and found.active == everyone.active
    table = found.accounts
    assert table["account_id"].to_list() == quiet
    assert not set(table["account_id"]) & set(everyone.accounts["account_id"])
    assert table["score"].is_null().all() and table["rank"].is_null().all()
    assert set(table["why"]) == {review.NOT_ACTIVE}
    for row in table.iter_rows(named=True):
        kind, region, status = facts[row["account_id"]]
        assert (row["kind"], row["region"], row["status"]) == (
            kind.capitalize(), region, status.capitalize(),
        )  # fmt: skip
        assert row["label"].endswith(f"· {region} · not active in the window")
    # An account never seen is still the incident's own, never replaced by another.
    unknown = review.accounts_to_review(
        engine, start=START, end=END, focus=[10**9], role="associate"
    )
    assert unknown.none_active and unknown.accounts["account_id"].to_list() == [10**9]
    # An incident with no accounts of its own (automated detections) lists nobody.
    nobody = review.accounts_to_review(engine, start=START, end=END, focus=[], role="associate")
    assert nobody.of_incident and not nobody.none_active and nobody.accounts.is_empty()


def test_an_event_incidents_accounts_are_those_behind_its_events(engine) -> None:  # noqa: ANN001
    day = datetime(2026, 4, 22)
    incident = Incident(slice="kind=login|platform=web", source="events", freq="daily",
                        metric="e", start=day, end=day, peak_ts=day, peak_value=1.0)  # fmt: skip
    found = review.incident_accounts(engine, incident, cases=pl.DataFrame(), role="associate")
    with engine.connect() as conn:
        expected = sorted(
            a
            for (a,) in conn.execute(
                select(distinct(Event.account_id)).where(
                    Event.ts >= day,
                    Event.ts < datetime(2026, 4, 23),
                    Event.kind == "login",
                    Event.platform == "web",
                )  # fmt: skip
            )
        )
    assert found == expected and found
    cases = pl.DataFrame({"subject_account_id": [5, None, 3, 5]})
    as_case = Incident(slice="category=spam", source="cases", freq="daily", metric="cases_daily",
                       start=day, end=day, peak_ts=day, peak_value=1.0)  # fmt: skip
    assert review.incident_accounts(engine, as_case, cases=cases, role="associate") == [3, 5]


def test_product_may_not_see_accounts(engine) -> None:  # noqa: ANN001
    with pytest.raises(AccessDenied):
        review.accounts_to_review(engine, start=START, end=END, focus=None, role="product")
