"""Known events written from the app (analytics.views.annotations): exact rows, the
audit entries with the values before and after, the role check, the validation
messages, and two editors of one event (the second is refused, not silently applied)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, select

from analytics.access import AccessDenied, Viewer
from analytics.core import database, models
from analytics.core.models import Annotation, AuditLog, Role
from analytics.sources.fingerprint import data_fingerprint
from analytics.views import annotations as known
from analytics.views.annotations import EditConflict, InvalidEvent, KnownEvent

ANN = Viewer("ann", Role.associate)
LEE = Viewer("lee", Role.leadership)
PAT = Viewer("pat", Role.product)
OUTAGE = KnownEvent(
    start_at=datetime(2026, 4, 20),
    end_at=None,
    kind="outage",
    title="Payments outage",
    description="Card payments failed in the iOS app.",
    category="payment_fraud",
    region="CA",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    eng = database.make_engine(url)
    models.init_db(eng)
    yield eng
    eng.dispose()


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(getattr(v, "value", v) for v in r)
            for r in conn.execute(
                select(
                    Annotation.id, Annotation.start_at, Annotation.end_at, Annotation.kind,
                    Annotation.title, Annotation.description, Annotation.category,
                    Annotation.region, Annotation.created_by,
                ).order_by(Annotation.id)
            )
        ]  # fmt: skip


def _audit(engine: Engine) -> list[tuple[str, str, str, str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                AuditLog.user_name, AuditLog.role, AuditLog.action, AuditLog.target,
                AuditLog.filters,
            ).order_by(AuditLog.id)
        ).all()  # fmt: skip
    return [(u, r, a, t, json.loads(f)) for u, r, a, t, f in rows]


def test_add_edit_and_end_write_exact_rows_and_audit_before_and_after(engine) -> None:
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    assert _rows(engine) == [
        (event_id, datetime(2026, 4, 20), None, "outage", "Payments outage",
         "Card payments failed in the iOS app.", "payment_fraud", "CA", "ann"),
    ]  # fmt: skip
    edited = replace(OUTAGE, title="  Payments outage (iOS) ", region=None, description=" ")
    stored = known.edit_event(engine, event_id, edited, seen=OUTAGE, viewer=LEE)
    assert stored == replace(OUTAGE, title="Payments outage (iOS)", region=None, description=None)
    ended = known.end_event(engine, event_id, last_day=date(2026, 4, 22), seen=stored, viewer=ANN)
    assert ended.end_at == datetime(2026, 4, 22, 23, 59, 59)
    assert ended.last_day == date(2026, 4, 22)
    assert _rows(engine) == [
        (event_id, datetime(2026, 4, 20), datetime(2026, 4, 22, 23, 59, 59), "outage",
         "Payments outage (iOS)", None, "payment_fraud", None, "ann"),
    ]  # fmt: skip
    first = {"start_at": "2026-04-20 00:00:00", "end_at": None, "kind": "outage",
             "title": "Payments outage", "description": "Card payments failed in the iOS app.",
             "category": "payment_fraud", "region": "CA"}  # fmt: skip
    second = {**first, "title": "Payments outage (iOS)", "description": None, "region": None}
    third = {**second, "end_at": "2026-04-22 23:59:59"}
    assert _audit(engine) == [
        ("ann", "associate", "annotation_add", f"annotation {event_id}: Payments outage",
         {"before": None, "after": first}),
        ("lee", "leadership", "annotation_edit", f"annotation {event_id}: Payments outage (iOS)",
         {"before": first, "after": second}),
        ("ann", "associate", "annotation_end", f"annotation {event_id}: Payments outage (iOS)",
         {"before": second, "after": third}),
    ]  # fmt: skip
    listed = known.list_events(engine, role=Role.leadership)
    assert listed.select("id", "title", "end_at", "created_by").rows() == [
        (event_id, "Payments outage (iOS)", datetime(2026, 4, 22, 23, 59, 59), "ann")
    ]


def test_every_write_changes_the_data_fingerprint_so_caches_and_the_snapshot_see_it(
    engine,
) -> None:
    before = data_fingerprint(engine)
    version = known.annotation_version(engine)
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    added, added_version = data_fingerprint(engine), known.annotation_version(engine)
    assert added != before and added_version != version
    known.edit_event(engine, event_id, replace(OUTAGE, title="Renamed"), seen=OUTAGE, viewer=ANN)
    assert data_fingerprint(engine) != added  # same count and ids: the data version moved
    assert known.annotation_version(engine) != added_version


def test_product_may_not_add_edit_end_or_read(engine) -> None:
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    rows, audit = _rows(engine), _audit(engine)
    with pytest.raises(AccessDenied, match="the product role may not add or change known events"):
        known.add_event(engine, OUTAGE, viewer=PAT)
    with pytest.raises(AccessDenied):
        known.edit_event(engine, event_id, OUTAGE, seen=OUTAGE, viewer=PAT)
    with pytest.raises(AccessDenied):
        known.end_event(engine, event_id, last_day=date(2026, 4, 21), seen=OUTAGE, viewer=PAT)
    with pytest.raises(AccessDenied):
        known.list_events(engine, role=Role.product)
    with pytest.raises(AccessDenied):
        known.add_event(engine, OUTAGE, viewer=Viewer("ada", Role.admin))
    assert _rows(engine) == rows and _audit(engine) == audit


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": "   "}, "Give the event a title."),
        ({"title": "x" * 201}, "Shorten the title to 200 characters (it has 201)."),
        ({"description": "y" * 2001},
         "Shorten the description to 2,000 characters (it has 2,001)."),
        ({"end_at": datetime(2026, 4, 19, 23, 59, 59)},
         "The end (19 Apr 2026) is before the start (20 Apr 2026)."),
        ({"kind": "party"},
         "Choose a kind: policy change, product launch, outage, holiday or other."),
        ({"category": "<b>spam</b>"},
         "Choose a category from the list, or none for every category."),
        ({"region": "ZZ"},
         "Choose a region (a US state code such as CA), or none for every region."),
        ({"title": "\u202eevil\u202c"},
         "Remove the control or invisible characters from the title."),
        ({"description": "a\x00b"},
         "Remove the control or invisible characters from the description."),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_a_plain_message(sqlite_url, change, message) -> None:
    engine = database.make_engine(sqlite_url)
    models.init_db(engine)
    with pytest.raises(InvalidEvent) as refused:
        known.add_event(engine, replace(OUTAGE, **change), viewer=ANN)
    assert refused.value.problems == (message,)
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    with pytest.raises(InvalidEvent) as refused:
        known.edit_event(engine, event_id, replace(OUTAGE, **change), seen=OUTAGE, viewer=ANN)
    assert refused.value.problems == (message,)
    assert [r[4] for r in _rows(engine)] == ["Payments outage"]
    assert [a[2] for a in _audit(engine)] == ["annotation_add"]


def test_every_problem_is_listed_at_once() -> None:
    bad = KnownEvent(datetime(2026, 4, 20), datetime(2026, 4, 1), "outage", "", region="X")
    with pytest.raises(InvalidEvent) as refused:
        known.check_event(bad)
    assert len(refused.value.problems) == 3


def test_ending_before_the_start_is_refused(engine) -> None:
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    with pytest.raises(InvalidEvent, match="is before the start"):
        known.end_event(engine, event_id, last_day=date(2026, 4, 19), seen=OUTAGE, viewer=ANN)
    assert _rows(engine)[0][2] is None


def test_markup_is_stored_as_typed_for_pages_to_show_as_text(engine) -> None:
    hostile = "<script>alert(1)</script> **bold** [x](javascript:alert(1))"
    event_id = known.add_event(engine, replace(OUTAGE, title=hostile), viewer=ANN)
    assert known.read_event(engine, event_id, role=Role.associate).title == hostile


def test_a_second_editor_of_the_same_event_is_refused_not_silently_applied(engine) -> None:
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    seen_by_ann = known.read_event(engine, event_id, role=Role.associate)
    seen_by_lee = known.read_event(engine, event_id, role=Role.leadership)
    lee_version = replace(OUTAGE, title="Outage: card payments")
    known.edit_event(engine, event_id, lee_version, seen=seen_by_lee, viewer=LEE)
    with pytest.raises(EditConflict) as conflict:
        known.edit_event(
            engine, event_id, replace(OUTAGE, region="NY"), seen=seen_by_ann, viewer=ANN
        )
    assert conflict.value.current == lee_version
    assert conflict.value.by is not None and conflict.value.by.startswith("lee at ")
    assert "changed by lee at" in str(conflict.value)
    assert "your change was not saved" in str(conflict.value)
    with pytest.raises(EditConflict):  # ending from the stale read is refused too
        known.end_event(engine, event_id, last_day=date(2026, 4, 21), seen=seen_by_ann, viewer=ANN)
    assert _rows(engine)[0][4:8] == ("Outage: card payments", OUTAGE.description,
                                     "payment_fraud", "CA")  # fmt: skip
    assert [a[2] for a in _audit(engine)] == ["annotation_add", "annotation_edit"]
    # with the current values read again, the change goes through
    known.edit_event(
        engine, event_id, replace(lee_version, region="NY"), seen=conflict.value.current,
        viewer=ANN,
    )  # fmt: skip
    assert _rows(engine)[0][4:8] == ("Outage: card payments", OUTAGE.description,
                                     "payment_fraud", "NY")  # fmt: skip


def test_two_editors_at_the_same_moment_one_wins_one_is_told(engine) -> None:
    event_id = known.add_event(engine, OUTAGE, viewer=ANN)
    seen = known.read_event(engine, event_id, role=Role.associate)
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def edit(viewer: Viewer, region: str) -> None:
        start.wait()
        try:
            known.edit_event(engine, event_id, replace(OUTAGE, region=region), seen=seen,
                             viewer=viewer)  # fmt: skip
            outcomes[viewer.name] = "saved"
        except EditConflict:
            outcomes[viewer.name] = "conflict"

    threads = [threading.Thread(target=edit, args=a) for a in ((ANN, "NY"), (LEE, "TX"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["conflict", "saved"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "saved")
    assert _rows(engine)[0][7] == {"ann": "NY", "lee": "TX"}[winner]
    assert [a[0] for a in _audit(engine) if a[2] == "annotation_edit"] == [winner]


def test_a_removed_event_is_a_conflict(engine) -> None:
    with pytest.raises(EditConflict, match="removed"):
        known.edit_event(engine, 12345, OUTAGE, seen=OUTAGE, viewer=ANN)


def test_the_table_names_days_kinds_and_scopes_in_words(engine) -> None:
    known.add_event(engine, OUTAGE, viewer=ANN)
    holiday = KnownEvent(datetime(2026, 5, 25), datetime(2026, 5, 26), "holiday", "Memorial Day")
    known.add_event(engine, holiday, viewer=LEE)
    table = known.events_table(known.list_events(engine, role=Role.associate))
    assert table.drop("id").rows() == [
        (date(2026, 5, 25), date(2026, 5, 25), "Holiday", "Memorial Day", "All", "All", "",
         "lee", False),
        (date(2026, 4, 20), None, "Outage", "Payments outage", "Payment fraud", "CA",
         "Card payments failed in the iOS app.", "ann", True),
    ]  # fmt: skip
