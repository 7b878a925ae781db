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

from analytics.core import database, models
from analytics.views.overview import dataset_overview


def _account(i: int, **kw: object) -> models.Account:
    base: dict[str, object] = dict(
        id=i,
        kind=models.AccountKind.patient,
        created_at=datetime(2025, 1, 2, 3, 4, 5, 600_000),
        region="CA",
        specialty=None,
        verified=True,
        status=models.AccountStatus.active,
        display_name=f"Person {i}",
        email=f"p{i}@example.com",
    )
    base.update(kw)
    return models.Account(**base)


def _event(i: int, **kw: object) -> models.Event:
    base: dict[str, object] = dict(
        id=i, ts=datetime(2025, 1, 1), account_id=1, kind=models.EventKind.login,
        platform=models.Platform.web, region="CA", device_hash="d", ip_hash="i",
    )  # fmt: skip
    base.update(kw)
    return models.Event(**base)


def test_init_db_is_idempotent(db_url: str) -> None:
    engine = database.make_engine(db_url)
    first = models.init_db(engine)
    alerts = {"incidents", "incident_notes", "subscriptions", "outbox", "escalations"}
    assert set(first) == set(models.TABLES) | {"dataset_meta", "users"} | alerts
    assert models.init_db(engine) == []
    assert database.table_counts(engine) == {t: 0 for t in models.TABLES}


def test_round_trip_every_table(engine) -> None:
    ts = datetime(2026, 3, 1, 12, 30, 15, 250_000)
    with Session(engine) as s:
        s.add_all(
            [_account(1), _account(2, kind=models.AccountKind.provider, specialty="dentistry")]
        )
        s.flush()
        s.add(
            models.Event(
                id=10,
                ts=ts,
                account_id=1,
                kind=models.EventKind.review_posted,
                platform=models.Platform.ios,
                region="CA",
                device_hash="ab" * 8,
                ip_hash="cd" * 8,
                target_account_id=2,
                rating=5,
            )
        )
        s.add(
            models.Case(
                id=5,
                opened_at=ts,
                source=models.CaseSource.user_report,
                category=models.Category.fake_review,
                severity=models.Severity.high,
                status=models.CaseStatus.resolved,
                region="CA",
                platform=models.Platform.web,
                subject_account_id=1,
                reporter_account_id=2,
                assignee="associate-01",
                description="Five-star reviews from new accounts, call 555-0100.",
                first_response_at=ts,
                resolved_at=ts,
                resolution=models.Resolution.content_removed,
                appealed_at=None,
                appeal_outcome=None,
            )
        )
        s.flush()
        s.add(
            models.CaseAction(
                id=1,
                case_id=5,
                ts=ts,
                actor="associate-01",
                action=models.ActionKind.resolved,
                detail="content_removed",
            )
        )
        s.add(
            models.Annotation(
                start_at=ts,
                kind=models.AnnotationKind.policy_change,
                title="Policy",
                category=models.Category.harassment,
                created_by="lead",
            )
        )
        s.add(
            models.Feedback(
                created_at=ts,
                user_name="a",
                metric="cases",
                slice_key="category=spam",
                alert_start=ts,
                verdict=models.Verdict.confirmed,
            )
        )
        s.add(
            models.AuditLog(
                ts=ts, user_name="a", role="associate", action="view_case", target="case:5"
            )
        )
        s.commit()
    with Session(engine) as s:
        ev = s.get(models.Event, 10)
        assert ev is not None
        assert (ev.ts, ev.kind, ev.platform, ev.rating) == (ts, "review_posted", "ios", 5)
        case = s.get(models.Case, 5)
        assert case is not None
        assert case.category == "fake_review"  # the taxonomy's columns are plain text
        assert case.description.endswith("555-0100.")
        assert case.appeal_outcome is None
        acc = s.get(models.Account, 2)
        assert acc is not None and acc.specialty == "dentistry" and acc.verified is True
    assert database.table_counts(engine) == {
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
            models.Account.__table__.insert(),
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
        conn.execute(models.Account.__table__.update().values(kind="robot"))


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError), Session(engine) as s:
        s.add(_event(1, account_id=999))
        s.commit()


def test_meta_round_trip(engine) -> None:
    assert database.get_meta(engine, "demo") is None
    database.set_meta(engine, "demo", {"scale": "small", "seed": 1})
    database.set_meta(engine, "demo", {"scale": "small", "seed": 2})
    assert database.get_meta(engine, "demo") == {"scale": "small", "seed": 2}


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
        got = conn.execute(select(models.Account.created_at)).scalar_one()
    assert got == datetime(2025, 1, 2, 3, 4, 5, 600_000) and got.tzinfo is None


def test_safe_url_hides_password() -> None:
    assert database.safe_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert "pw" not in database.safe_url("postgresql://u:pw@h:5432/db?sslmode=require")
    assert database.safe_url("not a url at all") == "<unparseable database URL>"


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
    writer = database.make_engine(f"sqlite:///{path}")
    models.init_db(writer)
    database.set_meta(writer, "restored", "no")
    yield path, writer
    writer.dispose()


def test_writes_after_the_file_is_replaced_reach_the_new_file(live_file, tmp_path) -> None:
    path, writer = live_file
    backup = _copy_of(path, tmp_path / "backup.db")
    database.set_meta(writer, "lost_with_the_old_file", 1)
    os.replace(backup, path)  # mv backup.db lookout.db
    database.set_meta(writer, "signed_in", "ann")
    assert _meta_on_disk(path) == {"restored": '"no"', "signed_in": '"ann"'}


def test_the_reader_reads_the_replaced_file(live_file, tmp_path) -> None:
    path, writer = live_file
    restored = database.make_engine(f"sqlite:///{tmp_path / 'backup.db'}")
    models.init_db(restored)
    database.set_meta(restored, "restored", "yes")
    restored.dispose()
    reader = database.make_reader(f"sqlite:///{path}")
    try:
        assert database.get_meta(reader, "restored") == "no"
        os.replace(tmp_path / "backup.db", path)
        assert database.get_meta(reader, "restored") == "yes"
    finally:
        reader.dispose()


def test_the_reader_never_reads_the_old_files_log_as_the_new_file(live_file, tmp_path) -> None:
    """The old file's write-ahead log stays beside the new file under the same name:
    a reader reconnecting first must not take its pages for the new file's."""
    path, writer = live_file
    backup = _copy_of(path, tmp_path / "backup.db")
    database.set_meta(writer, "restored", "old file, in its log")
    reader = database.make_reader(f"sqlite:///{path}")
    try:
        assert database.get_meta(reader, "restored") == "old file, in its log"
        os.replace(backup, path)
        assert database.get_meta(reader, "restored") == "no"
        database.set_meta(writer, "signed_in", "ann")
        assert database.get_meta(reader, "signed_in") == "ann"
    finally:
        reader.dispose()
    writer.dispose()
    assert _meta_on_disk(path) == {"restored": '"no"', "signed_in": '"ann"'}
