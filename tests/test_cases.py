"""The Case Explorer's reads on hand-built data, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from analytics.core import models
from analytics.core.filters import Filters
from analytics.sources import cases
from analytics.sources.cases import CaseQuery, parse_case_query, search_cases

T0 = datetime(2026, 3, 2, 9, 0)  # a Monday


def _account(i: int, **kw) -> models.Account:
    values = dict(
        id=i,
        kind=models.AccountKind.patient,
        created_at=T0 - timedelta(days=30),
        region="CA",
        specialty=None,
        verified=False,
        status=models.AccountStatus.active,
        display_name=f"Ana Lopez {i}",
        email=f"ana{i}@mail.example.com",
    )
    values.update(kw)
    return models.Account(**values)


# id: (day, category, severity, status, region, subject, reporter, description)
CASES = {
    1: (0, "spam", "low", "open", "CA", 1, 2, "Refund requested for a gift card purchase"),
    2: (
        1,
        "other",
        "critical",
        "open",
        "NY",
        2,
        None,
        "Caller asked for my insurance verification",
    ),
    3: (
        2,
        "spam",
        "medium",
        "resolved",
        "CA",
        1,
        3,
        "Spam messages about a refund, call 415-555-1638",
    ),
    4: (3, "payment_fraud", "high", "in_review", "TX", 3, 1, "Chargeback after the visit"),
    5: (
        4,
        "other",
        "medium",
        "resolved",
        "NY",
        4,
        None,
        "Verified provider, <script>alert(1)</script>",
    ),
}


def _fill(engine) -> None:
    with Session(engine) as s:
        s.add_all(
            [_account(i) for i in (1, 2, 3, 4)]
            + [_account(5, kind=models.AccountKind.provider, specialty="dentistry", region="NY")]
        )
        s.flush()
        for cid, (day, cat, sev, status, region, subject, reporter, text) in CASES.items():
            s.add(
                models.Case(
                    id=cid,
                    opened_at=T0 + timedelta(days=day),
                    source=models.CaseSource.user_report,
                    category=models.Category(cat),
                    severity=models.Severity(sev),
                    status=models.CaseStatus(status),
                    region=region,
                    platform=models.Platform.web,
                    subject_account_id=subject,
                    reporter_account_id=reporter,
                    description=text,
                    first_response_at=T0 + timedelta(days=day, hours=2),
                    resolved_at=T0 + timedelta(days=day + 1) if status == "resolved" else None,
                )
            )
        s.flush()
        s.add_all(
            [
                models.CaseAction(id=1, case_id=3, ts=T0 + timedelta(days=2, hours=2),
                                  actor="amy", action=models.ActionKind.first_response,
                                  detail="Called 415-555-1638"),
                models.CaseAction(id=2, case_id=3, ts=T0 + timedelta(days=3), actor="amy",
                                  action=models.ActionKind.resolved, detail=None),
                models.CaseAction(id=3, case_id=3, ts=T0 + timedelta(days=2, hours=1),
                                  actor="bot", action=models.ActionKind.assigned, detail=None),
            ]
        )  # fmt: skip
        s.commit()


@pytest.fixture
def filled(engine):
    _fill(engine)
    return engine


def _ids(engine, **kw) -> list[int]:
    return search_cases(engine, CaseQuery(**kw), role="associate").rows["case_id"].to_list()


def test_search_text_is_pushed_down_to_the_full_text_index(filled) -> None:
    assert _ids(filled, text="refund") == [3, 1]  # newest first
    assert _ids(filled, text="refunds") == [3, 1]  # stemmed on both databases
    assert _ids(filled, text="refund -spam") == [1]
    assert _ids(filled, text='"gift card"') == [1]
    assert _ids(filled, text="refund OR chargeback") == [4, 3, 1]
    assert _ids(filled, text="insurance verification") == [2]
    assert _ids(filled, text="   ") == [5, 4, 3, 2, 1]
    assert _ids(filled, text="x') OR 1=1 --") == []


def test_filters_statuses_and_id_sets(filled) -> None:
    f = Filters(category=("spam", "other"), region=("CA", "NY"))
    assert _ids(filled, filters=f) == [5, 3, 2, 1]
    assert _ids(filled, filters=f, status=("open",)) == [2, 1]
    assert _ids(
        filled,
        filters=Filters(start=T0.date() + timedelta(days=1), end=T0.date() + timedelta(days=3)),
    ) == [4, 3, 2]  # noqa: E501
    assert _ids(filled, case_ids=(1, 4, 99)) == [4, 1]
    assert _ids(filled, subject_ids=(1,)) == [3, 1]
    assert _ids(filled, account_id=1) == [4, 3, 1]  # about it, or reported by it
    assert _ids(filled, case_ids=()) == []
    # The specialty filter reads the subject account's specialty.
    assert _ids(filled, filters=Filters(specialty=("dentistry",))) == []


def test_sorting_and_paging(filled) -> None:
    assert _ids(filled, sort="severity", descending=True) == [2, 4, 5, 3, 1]
    assert _ids(filled, sort="severity", descending=False) == [1, 3, 5, 4, 2]
    assert _ids(filled, sort="status", descending=False) == [1, 2, 4, 3, 5]
    pages = [
        search_cases(filled, CaseQuery(page=p, page_size=2), role="associate") for p in (1, 2, 3, 4)
    ]
    assert [p.rows["case_id"].to_list() for p in pages] == [[5, 4], [3, 2], [1], [1]]
    assert {(p.total, p.pages) for p in pages} == {(5, 3)}
    assert [p.page for p in pages] == [1, 2, 3, 3]  # past the end: the last page
    empty = search_cases(filled, CaseQuery(text="nothing-like-this"), role="associate")
    assert (empty.total, empty.page, empty.pages, empty.rows.height) == (0, 1, 1, 0)


def test_descriptions_are_masked_and_markup_stays_text(filled) -> None:
    rows = search_cases(filled, CaseQuery(case_ids=(3, 5)), role="associate").rows
    assert rows["description"].to_list() == [
        "Verified provider, <script>alert(1)</script>",
        "Spam messages about a refund, call [PHONE]",
    ]


def test_the_index_follows_inserts_updates_and_deletes(filled) -> None:
    with filled.begin() as conn:
        conn.execute(
            update(models.Case).where(models.Case.id == 1).values(description="Parking dispute")
        )
        conn.execute(delete(models.Case).where(models.Case.id == 4))
    assert _ids(filled, text="refund") == [3]
    assert _ids(filled, text="parking") == [1]
    assert _ids(filled, text="chargeback") == []


def test_case_detail_and_its_timeline(filled) -> None:
    found, actions = cases.case_detail(filled, 3, role="leadership")
    assert found is not None
    facts = ("category", "status", "hours_to_response", "hours_to_resolve")
    assert [found[k] for k in facts] == ["spam", "resolved", 2.0, 24.0]
    assert found["description"] == "Spam messages about a refund, call [PHONE]"
    assert actions["action"].to_list() == ["assigned", "first_response", "resolved"]
    assert actions["detail"].to_list() == [None, "Called [PHONE]", None]
    missing, none = cases.case_detail(filled, 999, role="leadership")
    assert missing is None and none.is_empty()


def test_an_account_and_its_cases(filled) -> None:
    profile = cases.account_profile(filled, 1, role="leadership")
    assert profile is not None
    assert (profile["display_name"], profile["email"]) == ("A. L. 1.", "a•••@mail.example.com")
    assert cases.account_profile(filled, 999, role="leadership") is None
    mine = cases.account_cases(filled, 1, role="leadership")
    assert list(zip(mine["case_id"], mine["role"], strict=True)) == [
        (4, "reporter"), (3, "subject"), (1, "subject")
    ]  # fmt: skip
    assert "[PHONE]" in mine["description"][1]


def _events(engine, rows: list[tuple[int, int, int, str, str]]) -> None:
    """rows: (id, account, day, device, ip)."""
    with Session(engine) as s:
        for eid, account, day, device, ip in rows:
            s.add(
                models.Event(
                    id=eid, ts=T0 + timedelta(days=day), account_id=account,
                    kind=models.EventKind.login, platform=models.Platform.web, region="CA",
                    device_hash=device, ip_hash=ip,
                )
            )  # fmt: skip
        s.commit()


def test_linked_accounts_follow_the_ring_rules(filled) -> None:
    rows = []
    n = iter(range(1, 1000))
    # Accounts 1 and 2 share device D twice each; 3 shares IP P with 1 but uses it once.
    uses = [(1, "D", "P"), (1, "D", "P"), (2, "D", "Q"), (2, "D", "Q"), (3, "E", "P"),
            (4, "H", "R"), (4, "H", "R"), (1, "H", "S"), (1, "H", "S"), (5, "H", "S"),
            (5, "H", "S")]  # fmt: skip
    for account, device, ip in uses:
        rows.append((next(n), account, 1, device, ip))
    rows.append((next(n), 2, 20, "D", "Q"))  # outside the window
    _events(filled, rows)
    start, end = T0, T0 + timedelta(days=7)
    linked = cases.linked_accounts(filled, 1, role="leadership", start=start, end=end)
    assert linked.select("account_id", "devices", "ips", "uses").rows() == [
        (5, 1, 1, 4), (2, 1, 0, 2), (4, 1, 0, 2)
    ]  # fmt: skip
    # With a hub limit of 2 accounts, device H (accounts 1, 4 and 5) links nobody.
    hubbed = cases.linked_accounts(
        filled, 1, role="leadership", start=start, end=end, max_accounts=2
    )
    assert hubbed.select("account_id", "devices", "ips").rows() == [(2, 1, 0), (5, 0, 1)]
    assert cases.linked_accounts(filled, 3, role="leadership", start=start, end=end).is_empty()
    events = cases.account_events(filled, 2, role="leadership", end=end)
    assert events.height == 2 and events["ts"].max() < end


@given(
    st.dictionaries(
        st.sampled_from(["q", "status", "sort", "page", "size", "account", "other"]),
        st.text(max_size=30),
    )
)
def test_any_url_parameters_give_a_valid_query(params: dict[str, str]) -> None:
    query, notes = parse_case_query(params)
    assert query.sort in cases.SORTS
    assert set(query.status) <= set(cases.STATUSES)
    assert query.page >= 1 and 1 <= query.page_size <= cases.MAX_PAGE_SIZE
    assert all(isinstance(n, str) for n in notes)


def test_url_parameters() -> None:
    query, notes = parse_case_query(
        {"q": "refund", "status": "open,closed", "sort": "severity", "page": "3", "size": "999"}
    )
    assert (query.text, query.status, query.sort, query.descending) == (
        "refund",
        ("open",),
        "severity",
        False,
    )
    assert (query.page, query.page_size) == (3, cases.MAX_PAGE_SIZE)
    assert notes == ["Ignored status 'closed': not a known status."]
    _, notes = parse_case_query({"sort": "-password", "account": "-1"})
    assert len(notes) == 2


def test_too_many_ids_are_refused(engine) -> None:
    with pytest.raises(ValueError, match="too many ids"):
        search_cases(engine, CaseQuery(case_ids=tuple(range(cases.MAX_IDS + 1))), role="associate")


def test_dates_are_days_inclusive(filled) -> None:
    day = date(2026, 3, 4)
    assert _ids(filled, filters=Filters(start=day, end=day)) == [3]
