"""Schema round-trip and database helpers, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from analytics.core import db
from analytics.views.overview import dataset_overview


def _account(i: int, **kw: object) -> db.Account:
    base: dict[str, object] = dict(
        id=i,
        kind=db.AccountKind.patient,
        created_at=datetime(2025, 1, 2, 3, 4, 5, 600_000),
        region="CA",
        specialty=None,
        verified=True,
        status=db.AccountStatus.active,
        display_name=f"Person {i}",
        email=f"p{i}@example.com",
    )
    base.update(kw)
    return db.Account(**base)


def _event(i: int, **kw: object) -> db.Event:
    base: dict[str, object] = dict(
        id=i, ts=datetime(2025, 1, 1), account_id=1, kind=db.EventKind.login,
        platform=db.Platform.web, region="CA", device_hash="d", ip_hash="i",
    )  # fmt: skip
    base.update(kw)
    return db.Event(**base)


def test_init_db_is_idempotent(db_url: str) -> None:
    engine = db.make_engine(db_url)
    first = db.init_db(engine)
    assert set(first) == set(db.TABLES) | {"dataset_meta", "users"}
    assert db.init_db(engine) == []
    assert db.table_counts(engine) == {t: 0 for t in db.TABLES}


def test_round_trip_every_table(engine) -> None:
    ts = datetime(2026, 3, 1, 12, 30, 15, 250_000)
    with Session(engine) as s:
        s.add_all([_account(1), _account(2, kind=db.AccountKind.provider, specialty="dentistry")])
        s.flush()
        s.add(
            db.Event(
                id=10,
                ts=ts,
                account_id=1,
                kind=db.EventKind.review_posted,
                platform=db.Platform.ios,
                region="CA",
                device_hash="ab" * 8,
                ip_hash="cd" * 8,
                target_account_id=2,
                rating=5,
            )
        )
        s.add(
            db.Case(
                id=5,
                opened_at=ts,
                source=db.CaseSource.user_report,
                category=db.Category.fake_review,
                severity=db.Severity.high,
                status=db.CaseStatus.resolved,
                region="CA",
                platform=db.Platform.web,
                subject_account_id=1,
                reporter_account_id=2,
                assignee="associate-01",
                description="Five-star reviews from new accounts, call 555-0100.",
                first_response_at=ts,
                resolved_at=ts,
                resolution=db.Resolution.content_removed,
                appealed_at=None,
                appeal_outcome=None,
            )
        )
        s.flush()
        s.add(
            db.CaseAction(
                id=1,
                case_id=5,
                ts=ts,
                actor="associate-01",
                action=db.ActionKind.resolved,
                detail="content_removed",
            )
        )
        s.add(
            db.Annotation(
                start_at=ts,
                kind=db.AnnotationKind.policy_change,
                title="Policy",
                category=db.Category.harassment,
                created_by="lead",
            )
        )
        s.add(
            db.Feedback(
                created_at=ts,
                user_name="a",
                metric="cases",
                slice_key="category=spam",
                alert_start=ts,
                verdict=db.Verdict.confirmed,
            )
        )
        s.add(
            db.AuditLog(ts=ts, user_name="a", role="associate", action="view_case", target="case:5")
        )
        s.commit()
    with Session(engine) as s:
        ev = s.get(db.Event, 10)
        assert ev is not None
        assert (ev.ts, ev.kind, ev.platform, ev.rating) == (ts, "review_posted", "ios", 5)
        case = s.get(db.Case, 5)
        assert case is not None
        assert case.category is db.Category.fake_review
        assert case.description.endswith("555-0100.")
        assert case.appeal_outcome is None
        acc = s.get(db.Account, 2)
        assert acc is not None and acc.specialty == "dentistry" and acc.verified is True
    assert db.table_counts(engine) == {
        "accounts": 2,
        "events": 1,
        "cases": 1,
        "case_actions": 1,
        "annotations": 1,
        "feedback": 1,
        "audit_log": 1,
    }


def test_enum_values_are_checked_by_the_database(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            db.Account.__table__.insert(),
            [
                dict(
                    id=1,
                    kind="patient",
                    created_at=datetime(2025, 1, 1),
                    region="CA",
                    specialty=None,
                    verified=True,
                    status="active",
                    display_name="x",
                    email=None,
                )
            ],
        )
    # Bypass the ORM's own validation: the CHECK constraint still refuses it.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET status = :s WHERE id = 1"), {"s": "deleted"})
    with pytest.raises(StatementError), engine.begin() as conn:
        conn.execute(db.Account.__table__.update().values(kind="robot"))


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError), Session(engine) as s:
        s.add(_event(1, account_id=999))
        s.commit()


def test_meta_round_trip(engine) -> None:
    assert db.get_meta(engine, "demo") is None
    db.set_meta(engine, "demo", {"scale": "small", "seed": 1})
    db.set_meta(engine, "demo", {"scale": "small", "seed": 2})
    assert db.get_meta(engine, "demo") == {"scale": "small", "seed": 2}


def test_overview_of_empty_and_filled_database(engine) -> None:
    info = dataset_overview(engine)
    assert info.last_event is None and info.counts["events"] == 0
    with Session(engine) as s:
        s.add(_account(1))
        s.flush()
        for i, day in enumerate((3, 9)):
            s.add(_event(i + 1, ts=datetime(2026, 1, day)))
        s.commit()
    info = dataset_overview(engine)
    assert (info.first_event, info.last_event) == (datetime(2026, 1, 3), datetime(2026, 1, 9))
    assert info.counts["events"] == 2 and info.last_case is None


def test_timestamps_are_naive_utc(engine) -> None:
    with Session(engine) as s:
        s.add(_account(1))
        s.commit()
    with engine.connect() as conn:
        got = conn.execute(select(db.Account.created_at)).scalar_one()
    assert got == datetime(2025, 1, 2, 3, 4, 5, 600_000) and got.tzinfo is None


def test_safe_url_hides_password() -> None:
    assert db.safe_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert "pw" not in db.safe_url("postgresql://u:pw@h:5432/db?sslmode=require")
    assert db.safe_url("not a url at all") == "<unparseable database URL>"


# ------------------------------------------------- a SQLite file replaced while open


def _copy_of(path: Path, to: Path) -> Path:
    """A consistent copy of a live SQLite file (the backup API, as ``.backup`` does)."""
    src, dst = sqlite3.connect(path), sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return to


def _meta_on_disk(path: Path) -> dict[str, str]:
    """dataset_meta as a fresh connection to the file now at ``path`` reads it."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT key, value FROM dataset_meta").fetchall())
    finally:
        conn.close()


@pytest.fixture
def live_file(tmp_path) -> Iterator[tuple[Path, Engine]]:
    """A SQLite file with a writer that has written to it (its connection still pooled)."""
    path = tmp_path / "lookout.db"
    writer = db.make_engine(f"sqlite:///{path}")
    db.init_db(writer)
    db.set_meta(writer, "restored", "no")
    yield path, writer
    writer.dispose()


def test_writes_after_the_file_is_replaced_reach_the_new_file(live_file, tmp_path) -> None:
    path, writer = live_file
    backup = _copy_of(path, tmp_path / "backup.db")
    db.set_meta(writer, "lost_with_the_old_file", 1)
    os.replace(backup, path)  # mv backup.db lookout.db
    db.set_meta(writer, "signed_in", "ann")
    assert _meta_on_disk(path) == {"restored": '"no"', "signed_in": '"ann"'}


def test_the_reader_reads_the_replaced_file(live_file, tmp_path) -> None:
    path, writer = live_file
    restored = db.make_engine(f"sqlite:///{tmp_path / 'backup.db'}")
    db.init_db(restored)
    db.set_meta(restored, "restored", "yes")
    restored.dispose()
    reader = db.make_reader(f"sqlite:///{path}")
    try:
        assert db.get_meta(reader, "restored") == "no"
        os.replace(tmp_path / "backup.db", path)
        assert db.get_meta(reader, "restored") == "yes"
    finally:
        reader.dispose()


def test_the_reader_never_reads_the_old_files_log_as_the_new_file(live_file, tmp_path) -> None:
    """The old file's write-ahead log stays beside the new file under the same name:
    a reader reconnecting first must not take its pages for the new file's."""
    path, writer = live_file
    backup = _copy_of(path, tmp_path / "backup.db")
    db.set_meta(writer, "restored", "old file, in its log")
    reader = db.make_reader(f"sqlite:///{path}")
    try:
        assert db.get_meta(reader, "restored") == "old file, in its log"
        os.replace(backup, path)
        assert db.get_meta(reader, "restored") == "no"
        db.set_meta(writer, "signed_in", "ann")
        assert db.get_meta(reader, "signed_in") == "ann"
    finally:
        reader.dispose()
    writer.dispose()
    assert _meta_on_disk(path) == {"restored": '"no"', "signed_in": '"ann"'}
