"""The Case Explorer page through Streamlit's AppTest, on the small demo in SQLite,
and the links other pages make to it."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from analytics.core import database, models
from analytics.present.formatting import humanise
from tests.helpers import open_page
from tests.page_checks import NONE, headers_fit, rendered_text, tables_say_no_none

ROOT = Path(__file__).resolve().parent.parent


def _page(monkeypatch, url: str, script: str = "pages/cases.py", **params: str) -> AppTest:
    """Open ``script`` with ``params`` in the URL; ``cases_q`` stands for ``cases.q`` (a
    page's own keys are prefixed by it)."""
    named = {k.replace("_", ".", 1) if k.startswith(_PAGES) else k: v for k, v in params.items()}
    return open_page(monkeypatch, url, script, params=named)


_PAGES = ("cases_", "anomalies_", "emerging_")


def _links(at: AppTest) -> dict[str, dict[str, str]]:
    """The page's links to the Case Explorer: label -> query parameters."""
    return {
        link.proto.label: dict(parse_qsl(link.proto.query_string))
        for link in at.get("page_link")
        if link.proto.page == "cases"
    }


def _total(at: AppTest) -> int:
    line = next(c.value for c in at.caption if " cases · page " in c.value)
    return int(line.split(" cases")[0].replace(",", ""))


def _opened(
    url: str, first: str, last: str, *, match: str | None = None, status: str | None = None
) -> set[int]:
    """Ids of the cases opened from day ``first`` to day ``last``, whose description
    matches ``match`` and whose status is ``status``, found with SQL of its own (the
    full-text index queried directly), not through the app's search."""
    sql = "SELECT id FROM cases WHERE date(opened_at) BETWEEN :first AND :last"
    if match is not None:
        fts = models.SEARCH_TABLE
        sql += f" AND id IN (SELECT rowid FROM {fts} WHERE {fts} MATCH :q)"
    if status is not None:
        sql += " AND status = :status"
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            params = {"first": first, "last": last, "q": match, "status": status}
            return set(conn.execute(text(sql), params).scalars())
    finally:
        engine.dispose()


def _truth(url: str, kind: str) -> dict:
    engine = database.make_engine(url)
    try:
        truth = database.get_meta(engine, "ground_truth")
    finally:
        engine.dispose()
    return next(s for s in truth["scenarios"] if s["kind"] == kind)


def test_search_filters_and_pages(monkeypatch, small_db) -> None:
    at = _page(
        monkeypatch,
        small_db,
        cases_q="insurance verification",
        start="2026-04-01",
        end="2026-05-01",
    )
    assert not at.exception
    rows = at.dataframe[0].value
    total = _total(at)
    found = _opened(small_db, "2026-04-01", "2026-05-01", match="insurance verification")
    assert total == len(found) and rows.shape[0] == min(total, 50)
    # Every one is the new scam's (its vocabulary); not all of the scam's say both words.
    scam = set(_truth(small_db, "new_scam")["case_ids"])
    assert found and found < scam
    assert rows["description"].str.contains("(?i)insurance").all()
    assert rows["opened_at"].is_monotonic_decreasing
    assert at.query_params["cases.q"] == "insurance verification"
    # Narrower: only open cases.
    at.multiselect(key="cases.status").set_value(["open"]).run()
    assert at.query_params["cases.status"] == "open"
    assert set(at.dataframe[0].value["status"]) <= {"Open"}  # in words
    still_open = _opened(
        small_db, "2026-04-01", "2026-05-01", match="insurance verification", status="open"
    )
    assert _total(at) == len(still_open)


def test_paging_keeps_the_page_in_the_url(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, start="2026-01-01", end="2026-05-01")
    first = at.dataframe[0].value["case_id"].tolist()
    assert len(first) == 50 and _total(at) == len(_opened(small_db, "2026-01-01", "2026-05-01"))
    at.button(key="cases_next").click().run()
    assert at.query_params["cases.page"] == "2"
    second = at.dataframe[0].value["case_id"].tolist()
    assert len(second) == 50 and not set(first) & set(second) and max(second) < min(first)


def test_a_case_and_an_account(monkeypatch, own_small_db) -> None:
    """Opening a case appends to the audit log: a private copy of the demo."""
    ring = _truth(own_small_db, "fake_review_ring")
    case_id = ring["case_ids"][0]
    at = _page(monkeypatch, own_small_db, cases_case=str(case_id), week="2026-W08")
    assert not at.exception
    assert any(h.value.startswith(f"Case {case_id} · Fake review") for h in at.subheader)
    assert at.text[0].value  # the description, as plain text
    subject = next(b for b in at.button if b.key == "cases_open_Subject")
    subject.click().run()
    account = int(at.query_params["cases.account"])
    assert account in ring["account_ids"]
    assert any(h.value.startswith(f"Account {account} ·") for h in at.subheader)
    assert any("Member of ring" in i.value for i in at.info)
    linked = next(d.value for d in at.dataframe if "devices" in d.value.columns)
    assert set(linked["account_id"]) == set(ring["account_ids"]) - {account}
    to_ring = [dict(parse_qsl(lk.proto.query_string)) for lk in at.get("page_link")]
    assert any(p.get("emerging.ring") and p.get("week") == "2026-W08" for p in to_ring)


def test_markup_in_a_description_is_shown_as_text(monkeypatch, own_small_db) -> None:
    url = own_small_db
    engine = database.make_engine(url)
    hostile = "<script>alert('zebrafish')</script> **bold** [link](http://evil.example) <img src=x>"
    with Session(engine) as s:
        s.add(
            models.Case(
                id=999_999, opened_at=datetime(2026, 4, 30, 12),
                source=models.CaseSource.user_report, category=models.Category.other,
                severity=models.Severity.low, status=models.CaseStatus.open, region="CA",
                platform=models.Platform.web, subject_account_id=1, description=hostile,
            )
        )  # fmt: skip
        s.commit()
    engine.dispose()
    at = _page(monkeypatch, url, cases_case="999999", cases_q="zebrafish")
    assert not at.exception
    assert at.dataframe[0].value["case_id"].tolist() == [999_999]
    masked = hostile.replace("http://evil.example)", "[URL]")  # links are masked
    assert [t.value for t in at.text] == [masked]
    assert not any("<script>" in m.value for m in at.markdown)


def test_a_topic_links_to_exactly_its_cases(monkeypatch, small_db) -> None:
    emerging = _page(monkeypatch, small_db, script="pages/emerging.py")
    topic = emerging.dataframe[0].value.iloc[0]
    cluster_cases = emerging.dataframe[1].value
    ((label, params),) = [(k, v) for k, v in _links(emerging).items() if "cases.cluster" in v]
    assert params["cases.cluster"] == str(int(topic["cluster_id"]))
    at = _page(monkeypatch, small_db, **params)
    assert not at.exception
    assert any(f"The topic “{topic['name']}” of the week" in i.value for i in at.info)
    assert _total(at) == cluster_cases.shape[0]
    assert set(at.dataframe[0].value["case_id"]) == set(cluster_cases["case_id"].head(50))


def test_a_ring_links_to_the_cases_about_its_accounts(monkeypatch, small_db) -> None:
    emerging = _page(monkeypatch, small_db, script="pages/emerging.py", week="2026-W08")
    ((_, params),) = [(k, v) for k, v in _links(emerging).items() if "cases.ring" in v]
    assert params["week"] == "2026-W08"
    at = _page(monkeypatch, small_db, **params)
    assert not at.exception
    ring = _truth(small_db, "fake_review_ring")
    shown = at.dataframe[0].value
    assert set(shown["subject_account_id"]) <= set(ring["account_ids"])
    # Every case about the ring's accounts (the page found the ring whole), of any date.
    engine = database.make_engine(small_db)
    try:
        with engine.connect() as conn:
            about = conn.execute(
                select(func.count()).where(models.Case.subject_account_id.in_(ring["account_ids"]))
            ).scalar_one()
    finally:
        engine.dispose()
    assert _total(at) == about and about >= len(ring["case_ids"])


def test_an_anomaly_links_to_its_slice_and_days(monkeypatch, small_db) -> None:
    anomalies = _page(monkeypatch, small_db, script="pages/anomalies.py")
    params = next(v for v in _links(anomalies).values() if "cases.slice" in v)
    at = _page(monkeypatch, small_db, **params)
    assert not at.exception
    rows = at.dataframe[0].value
    days = rows["opened_at"].dt.date.astype(str)
    assert days.between(params["cases.opened_from"], params["cases.opened_to"]).all()
    for part in params["cases.slice"].split("|"):
        name, _, value = part.partition("=")
        if name in rows.columns:
            assert (rows[name] == humanise(value)).all()  # shown in words


def test_hostile_parameters_give_notes_not_errors(monkeypatch, small_db) -> None:
    at = _page(
        monkeypatch,
        small_db,
        cases_q="'; DROP TABLE cases; --" * 40,
        cases_status="bogus",
        cases_sort="<script>",
        cases_page="-3",
        cases_case="abc",
        cases_account="99999999999999999999",
        cases_cluster="x",
        cases_ring="1 OR 1=1",
    )
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "status 'bogus'" in warnings and "sort" in warnings
    assert "topic 'x'" in warnings and "ring '1 OR 1=1'" in warnings
    engine = database.make_engine(small_db)
    assert database.table_counts(engine)["cases"] > 0
    engine.dispose()


def test_following_a_link_in_the_same_session_keeps_the_week(monkeypatch, small_db) -> None:
    """A page switch used to start the sidebar's week at the newest week again, so a
    topic's link opened the topic of another week."""
    at = _page(monkeypatch, small_db, script="pages/emerging.py", week="2026-W16")
    ((label, params),) = [(k, v) for k, v in _links(at).items() if "cases.cluster" in v]
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("pages/cases.py")
    at.run()
    assert not at.exception
    assert at.session_state["filter_selection"].week.isoformat() == "2026-04-13"
    assert _total(at) == int(label.split("Open the ")[1].split(" cases")[0].replace(",", ""))


def test_a_page_choice_never_travels_as_a_global_filter(monkeypatch, small_db) -> None:
    """The Anomalies page's own Source choice (cases, events, detections) shared the URL
    key ``source`` with the global filter of the cases' source: its link to the Case
    Explorer carried ``source=cases`` as a filter ("Ignored source 'cases': not a known
    value"). Page state is now prefixed by its page, so only the global filters and
    what the link sets travel."""
    anomalies = _page(monkeypatch, small_db, script="pages/anomalies.py", region="FL")
    source = next(c for c in anomalies.segmented_control if c.label == "Source")
    source.set_value("cases").run()
    assert not anomalies.exception
    params = next(v for v in _links(anomalies).values() if "cases.slice" in v)
    assert params.get("source") != "cases" and "cases" not in params.values()
    assert params["region"] == "FL"  # the global filters do travel
    at = _page(monkeypatch, small_db, **params)
    assert not at.exception
    assert not [w.value for w in at.warning if "Ignored source" in w.value]
    assert at.multiselect(key="filter_source").value == []
    assert at.multiselect(key="filter_region").value == ["FL"]


# --------------------------------------------------------------- plain words (issue 18)


def _one(url: str, sql: str) -> int:
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _split(at: AppTest, case_id: int) -> tuple:
    """The list's column and the case's: two columns, the list first (left); the pager's
    columns nest in the list's, so the case's is the next one holding the case."""
    columns = list(at.columns)

    def lists(column) -> list:
        return [d for d in column.dataframe if "description" in d.value.columns]

    def cases(column) -> list:
        return [h for h in column.subheader if h.value.startswith(f"Case {case_id} ·")]

    left = next(i for i, c in enumerate(columns) if lists(c))
    right = next(i for i, c in enumerate(columns) if i > left and cases(c))
    assert not cases(columns[left]) and not lists(columns[right])
    return columns[left], columns[right]


def test_a_case_opens_beside_the_list_with_one_status_and_no_none(
    monkeypatch, own_small_db
) -> None:
    small_db = own_small_db  # opening a case writes to the audit log
    # A case in review whose resolution is empty (it used to read "Open" in its card).
    case_id = _one(
        small_db,
        "SELECT id FROM cases WHERE status = 'in_review' AND resolution IS NULL "
        "AND date(opened_at) BETWEEN '2026-04-20' AND '2026-04-26' "
        "ORDER BY opened_at DESC LIMIT 1",  # the newest: on the list's first page
    )
    at = _page(monkeypatch, small_db, cases_case=str(case_id), start="2026-04-20", end="2026-04-26")
    assert not at.exception
    listed, opened = _split(at, case_id)
    heading = opened.subheader[0].value
    facts = next(m.value for m in opened.markdown if m.value.startswith("**Status:**"))
    assert heading.endswith(" · In review") and facts.startswith("**Status:** In review")
    # One status: no fact says another (the resolution is no status of its own).
    values = dict(re.findall(r"\*\*([^*]+):\*\* ([^·\n]+?)(?: ·|  \n|$)", facts))
    assert values["Status"] == "In review" and values["Resolved"] == "Not yet"
    assert not {"Open", "Resolved"} & set(values.values())
    assert "**Outcome:** Not decided yet" in facts
    # In the list, the same case reads the same.
    table = next(d for d in listed.dataframe if "description" in d.value.columns)
    rows = table.value.set_index("case_id")
    assert rows.loc[case_id, "status"] == "In review"
    # The description is read in the list: early, wide, wrapped over three lines.
    assert list(table.proto.column_order)[:3] == ["case_id", "status", "description"]
    assert table.proto.row_height > 64
    # Nowhere a raw None, every header whole, labels in words.
    assert not [t for t in rendered_text(at) if NONE.search(t)]
    tables_say_no_none(at)
    headers_fit(at)
    assert not rows["category"].str.contains("_").any()


def test_descriptions_are_masked_for_every_role_and_revealed_only_by_an_associate(
    monkeypatch, own_small_db
) -> None:
    url = own_small_db
    engine = database.make_engine(url)
    said = "Call me at (415) 555-0134 or write to jo.doe@mail.example.com about the refund."
    with Session(engine) as s:
        s.add(
            models.Case(
                id=999_998, opened_at=datetime(2026, 4, 30, 12),
                source=models.CaseSource.user_report, category=models.Category.other,
                severity=models.Severity.low, status=models.CaseStatus.open, region="CA",
                platform=models.Platform.web, subject_account_id=1, description=said,
            )
        )  # fmt: skip
        s.commit()
    engine.dispose()
    masked = "Call me at [PHONE] or write to [EMAIL] about the refund."
    for role, may_reveal in (("leadership", False), ("associate", True)):
        at = open_page(
            monkeypatch, url, "pages/cases.py", role=role,
            params={"cases.case": "999998", "cases.q": "refund", "start": "2026-04-30"},
        )  # fmt: skip
        assert not at.exception, role
        rows = at.dataframe[0].value.set_index("case_id")
        assert rows.loc[999_998, "description"] == masked, role
        assert [t.value for t in at.text] == [masked], role
        assert any(b.key == "cases_reveal" for b in at.button) is may_reveal, role
    at.button(key="cases_reveal").click().run()
    assert [t.value for t in at.text] == [said]
    assert at.dataframe[0].value.set_index("case_id").loc[999_998, "description"] == masked
    assert _one(url, "SELECT count(*) FROM audit_log WHERE action = 'reveal'") == 1


def test_an_account_link_lists_its_cases(monkeypatch, small_db) -> None:
    """The link other pages make to one account: ``cases.account``."""
    account = _one(
        small_db,
        "SELECT subject_account_id FROM cases WHERE subject_account_id IS NOT NULL "
        "GROUP BY subject_account_id ORDER BY count(*) DESC LIMIT 1",
    )
    at = _page(monkeypatch, small_db, cases_account=str(account))
    assert not at.exception
    assert any(f"account {account}" in i.value for i in at.info)
    about = _one(
        small_db,
        f"SELECT count(*) FROM cases WHERE subject_account_id = {account} "
        f"OR reporter_account_id = {account}",
    )
    assert _total(at) == about > 1
    assert any(h.value.startswith(f"Account {account} ·") for h in at.subheader)
    assert not [t for t in rendered_text(at) if NONE.search(t)]
    tables_say_no_none(at)
