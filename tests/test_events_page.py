"""The Known events page through Streamlit's AppTest, on private copies of the small
demo: the list, adding, editing and ending from the forms (exact rows and audit
entries), the validation messages, two editors of one event, the roles, the link from
Weekly trends with the focus week prefilled, markup shown as text."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from analytics.access import Viewer
from analytics.core import database
from analytics.core.models import Annotation, AuditLog, Role
from analytics.views import annotations as known
from tests.helpers import open_page
from ui.widgets import plain

ROOT = Path(__file__).resolve().parent.parent
#: "<", ">" or a link's "](" that no backslash escapes.
UNESCAPED = re.compile(r"(?<!\\)[<>]|(?<!\\)\]\(")

PAGE = "pages/events.py"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)> **b** [x](javascript:alert(1))"


def _page(monkeypatch, url: str, role: str = "associate", **params: str) -> AppTest:
    return open_page(monkeypatch, url, PAGE, role=role, params=params)


def _rows(url: str) -> list[tuple]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Annotation.id, Annotation.start_at, Annotation.end_at, Annotation.kind,
                   Annotation.title, Annotation.category, Annotation.region,
                   Annotation.created_by).order_by(Annotation.id)
        ).all()  # fmt: skip
    engine.dispose()
    return [tuple(getattr(v, "value", v) for v in r) for r in rows]


def _audit(url: str) -> list[tuple[str, str, dict]]:
    engine = database.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditLog.user_name, AuditLog.action, AuditLog.filters)
            .where(AuditLog.action.like("annotation%"))
            .order_by(AuditLog.id)
        ).all()
    engine.dispose()
    return [(u, a, json.loads(f)) for u, a, f in rows]


def _fill(at: AppTest, prefix: str, **values: object) -> None:
    for name, value in values.items():
        key = f"{prefix}_{name}"
        if name in ("first", "last"):
            at.date_input(key=key).set_value(value)
        elif name in ("kind", "category", "region"):
            at.selectbox(key=key).set_value(value)
        elif name == "description":
            at.text_area(key=key).input(value)
        else:
            at.text_input(key=key).input(value)


def test_the_page_lists_every_known_event_newest_first(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db)
    assert not at.exception and not at.error
    rows = _rows(small_db)
    table = at.dataframe[0].value
    assert len(table) == len(rows) > 0
    newest = max(rows, key=lambda r: (r[1], r[0]))
    assert table["id"].tolist()[0] == newest[0]
    assert table["title"].tolist()[0] == newest[4]
    assert at.subheader[0].value == f"{len(rows)} known events"


def test_adding_an_event_from_the_form_writes_it_and_audits_it(monkeypatch, own_small_db) -> None:
    before = _rows(own_small_db)
    at = _page(monkeypatch, own_small_db)
    _fill(at, "events_add", first=date(2026, 4, 20), last=date(2026, 4, 21), kind="outage",
          title="Payments outage", category="payment_fraud", region="CA")  # fmt: skip
    at.button(key="events_add_submit").click().run()
    assert not at.exception and not at.error
    added = _rows(own_small_db)
    assert added[:-1] == before
    assert added[-1][1:] == (datetime(2026, 4, 20), datetime(2026, 4, 21, 23, 59, 59), "outage",
                             "Payments outage", "payment_fraud", "CA", "tester")  # fmt: skip
    assert [s.value for s in at.success] == ["Added the known event “Payments outage”."]
    assert "Payments outage" in at.dataframe[0].value["title"].tolist()
    assert at.text_input(key="events_add_title").value == ""  # the form is empty again
    [(user, action, change)] = _audit(own_small_db)
    assert (user, action, change["before"], change["after"]["title"]) == (
        "tester",
        "annotation_add",
        None,
        "Payments outage",
    )


def test_a_bad_event_gets_its_messages_and_nothing_is_written(monkeypatch, own_small_db) -> None:
    before = _rows(own_small_db)
    at = _page(monkeypatch, own_small_db)
    _fill(at, "events_add", first=date(2026, 4, 20), last=date(2026, 4, 10), title="  ")
    at.button(key="events_add_submit").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "- Give the event a title\\.\n- The end \\(10 Apr 2026\\) is before the start \\(20 Apr "
        "2026\\)\\."
    ]
    assert _rows(own_small_db) == before and _audit(own_small_db) == []


def test_markup_in_a_title_is_shown_as_text(monkeypatch, own_small_db) -> None:
    at = _page(monkeypatch, own_small_db)
    _fill(at, "events_add", first=date(2026, 4, 20), title=HOSTILE)
    at.button(key="events_add_submit").click().run()
    assert not at.exception and not at.error
    assert _rows(own_small_db)[-1][4] == HOSTILE
    assert HOSTILE in at.dataframe[0].value["title"].tolist()
    assert [s.value for s in at.success] == [f"Added the known event “{plain(HOSTILE)}”."]
    for shown in [*at.markdown, *at.success, *at.caption, *at.subheader, *at.error]:
        # Markdown and HTML characters reach a page escaped (shown as typed), never bare
        assert not UNESCAPED.search(shown.value), shown.value


def test_editing_and_ending_from_the_page(monkeypatch, own_small_db) -> None:
    ongoing = next(r for r in _rows(own_small_db) if r[2] is None)
    at = _page(monkeypatch, own_small_db, **{"events.event": str(ongoing[0])})
    assert at.selectbox(key="events.event").value == str(ongoing[0])
    prefix = f"events_edit_{ongoing[0]}"
    assert at.text_input(key=f"{prefix}_title").value == ongoing[4]
    _fill(at, prefix, title="Renamed from the page", region="NY")
    at.button(key=f"{prefix}_submit").click().run()
    assert not at.exception and not at.error
    edited = next(r for r in _rows(own_small_db) if r[0] == ongoing[0])
    assert edited == (*ongoing[:4], "Renamed from the page", ongoing[5], "NY", ongoing[7])
    assert at.text_input(key=f"{prefix}_title").value == "Renamed from the page"
    end = f"events_end_{ongoing[0]}"
    at.date_input(key=f"{end}_day").set_value(date(2026, 4, 24))
    at.button(key=f"{end}_submit").click().run()
    assert not at.exception and not at.error
    ended = next(r for r in _rows(own_small_db) if r[0] == ongoing[0])
    assert ended[2] == datetime(2026, 4, 24, 23, 59, 59)
    assert [a[1] for a in _audit(own_small_db)] == ["annotation_edit", "annotation_end"]
    assert [s.value for s in at.success] == ["Ended the known event “Renamed from the page”."]


def test_a_change_made_meanwhile_by_someone_else_is_not_overwritten(
    monkeypatch, own_small_db
) -> None:
    event_id = _rows(own_small_db)[-1][0]
    at = _page(monkeypatch, own_small_db, **{"events.event": str(event_id)})
    prefix = f"events_edit_{event_id}"
    engine = database.make_engine(own_small_db)  # lee edits the same event meanwhile
    seen = known.read_event(engine, event_id, role=Role.leadership)
    lee = replace(seen, title="Lee's title")
    known.edit_event(engine, event_id, lee, seen=seen, viewer=Viewer("lee", Role.leadership))
    engine.dispose()
    _fill(at, prefix, title="Tester's title")
    at.button(key=f"{prefix}_submit").click().run()
    assert not at.exception
    [message] = [e.value for e in at.error]
    assert message.startswith("This event was changed by lee at ")
    assert "your change was not saved" in message
    assert _rows(own_small_db)[-1][4] == "Lee's title"
    assert at.text_input(key=f"{prefix}_title").value == "Lee's title"  # their values shown
    _fill(at, prefix, title="Tester's title")  # and the change made again on them goes in
    at.button(key=f"{prefix}_submit").click().run()
    assert not at.exception and not at.error
    assert _rows(own_small_db)[-1][4] == "Tester's title"
    assert [(a[0], a[2]["before"]["title"]) for a in _audit(own_small_db)] == [
        ("lee", seen.title),
        ("tester", "Lee's title"),
    ]


def test_a_link_prefills_the_first_day_and_a_bad_one_gets_a_note(monkeypatch, small_db) -> None:
    at = _page(monkeypatch, small_db, **{"events.start": "2026-04-20"})
    assert not at.exception
    assert at.date_input(key="events_add_first").value == date(2026, 4, 20)
    assert at.expander[0].proto.expanded
    bad = _page(monkeypatch, small_db, **{"events.start": "<b>x</b>", "events.event": "9" * 40})
    assert not bad.exception and not bad.error
    assert any("Ignored start" in w.value for w in bad.warning)
    assert not bad.expander[0].proto.expanded


@pytest.mark.parametrize("role", ["product", "admin"])
def test_roles_that_may_not_annotate_are_refused(monkeypatch, small_db, role) -> None:
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=900)
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    at.session_state["lookout_viewer"] = Viewer("someone", Role(role))
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"Your role ({role}) cannot open this page."]
    assert len(at.dataframe) == 0


@pytest.mark.parametrize(("role", "linked"), [("leadership", True), ("admin", False)])
def test_weekly_trends_links_to_the_page_with_its_focus_week(
    monkeypatch, small_db, role, linked
) -> None:
    at = open_page(monkeypatch, small_db, "pages/trends.py", role=role)
    assert not at.exception
    links = [lk for lk in at.get("page_link") if lk.proto.label == "Add a known event"]
    assert len(links) == int(linked)
    if linked:
        query = dict(parse_qsl(links[0].proto.query_string))
        assert query["events.start"] == "2026-04-20"  # Monday of the page's focus week
        assert links[0].proto.page.endswith("events")


def test_the_menu_lists_the_page_for_associates_and_leadership_only(small_db) -> None:
    from ui import nav

    listed = {
        role: any(
            title == "Known events" and nav.in_menu(Viewer("x", role), need, ready=True)
            for _, title, _, need in nav.PAGES
        )
        for role in Role
    }
    assert listed == {Role.admin: False, Role.leadership: True, Role.associate: True,
                      Role.product: False}  # fmt: skip


def test_no_event_written_leaves_the_table_alone(monkeypatch, small_db) -> None:
    engine = database.make_engine(small_db)
    with engine.connect() as conn:
        count = conn.execute(select(func.count(Annotation.id))).scalar_one()
    engine.dispose()
    at = _page(monkeypatch, small_db)
    at.button(key="events_add_submit").click().run()  # the empty form, submitted
    assert not at.exception
    assert [e.value for e in at.error] == ["- Give the event a title\\."]
    assert len(_rows(small_db)) == count
