"""An SQLite database made before categories, sources and severities became data carries
``CHECK`` constraints that only take the demo's values: ``init_db`` rebuilds its two
tables without them, keeping every row, id, index, trigger (the full-text search) and
foreign key, so a team's own taxonomy can be imported into it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint, MetaData, text

from analytics.core import database, models
from analytics.core.models import _rebuild_sqlite_table


def _make_old(path: Path) -> None:
    """Give ``cases`` and ``annotations`` the CHECKs an older Lookout created."""
    conn = sqlite3.connect(path)
    for name, checks in {
        "cases": {
            "ck_cases_category": "category IN ('spam', 'other')",
            "ck_cases_severity": "severity IN ('low', 'high')",
        },
        "annotations": {"ck_annotations_category": "category IN ('spam', 'other')"},
    }.items():
        copy = MetaData()
        for table in models.Base.metadata.sorted_tables:
            table.to_metadata(copy)
        old = copy.tables[name]
        for check, sql in checks.items():
            old.append_constraint(CheckConstraint(sql, name=check))
        _rebuild_sqlite_table(conn, old)
    conn.close()


def _schema(path: Path, name: str) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]


def test_an_older_sqlite_database_takes_a_teams_taxonomy(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = database.make_engine(f"sqlite:///{path}")
    models.init_db(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, kind, created_at, region, verified, status, "
                "display_name) VALUES (1, 'patient', '2026-01-01', 'CA', 1, 'active', 'Ann')"
            )
        )
    engine.dispose()
    _make_old(path)
    assert "CONSTRAINT ck_cases_category CHECK" in _schema(path, "cases")
    engine = database.make_engine(f"sqlite:///{path}")
    insert = text(
        "INSERT INTO cases (id, opened_at, source, category, severity, status, region, "
        "platform, subject_account_id, description) VALUES (:id, '2026-02-01', 'rules', "
        ":category, 'p1', 'open', 'CA', 'web', 1, :words)"
    )
    with pytest.raises(Exception, match="CHECK constraint failed"), engine.begin() as conn:
        conn.execute(insert, {"id": 9, "category": "fake-reviews", "words": "x"})
    with engine.begin() as conn:  # what the old table takes
        conn.execute(
            text(
                "INSERT INTO cases (id, opened_at, source, category, severity, status, region, "
                "platform, subject_account_id, description) VALUES (5, '2026-01-02', "
                "'user_report', 'spam', 'low', 'open', 'CA', 'web', 1, 'pharmacy links')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO case_actions (id, case_id, ts, actor, action) "
                "VALUES (1, 5, '2026-01-02', 'ana', 'assigned')"
            )
        )

    models.init_db(engine)
    models.init_db(engine)  # idempotent
    assert "ck_cases_category" not in _schema(path, "cases")
    assert "ck_cases_severity" not in _schema(path, "cases")
    assert "ck_annotations_category" not in _schema(path, "annotations")
    assert "ck_cases_case_status CHECK" in _schema(path, "cases")  # Lookout's own stay
    with engine.begin() as conn:
        conn.execute(insert, {"id": 9, "category": "fake-reviews", "words": "paid stars"})
        rows = conn.execute(text("SELECT id, category FROM cases ORDER BY id")).all()
        found = conn.execute(
            text(
                f"SELECT rowid FROM {models.SEARCH_TABLE} WHERE {models.SEARCH_TABLE} "
                "MATCH :q ORDER BY rowid"
            ),  # fmt: skip
            {"q": "pharmacy OR stars"},
        ).all()
        indexes = {
            r[0]
            for r in conn.execute(
                text("SELECT name FROM sqlite_master WHERE tbl_name = 'cases' AND sql IS NOT NULL")
            )
        }
    assert [tuple(r) for r in rows] == [(5, "spam"), (9, "fake-reviews")]
    assert [r[0] for r in found] == [5, 9]  # old rows and new, through the triggers
    assert {"ix_cases_category", "ix_cases_opened_at", "cases_fts_ai"} <= indexes
    # Foreign keys still hold, both ways.
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as conn:
        conn.execute(text("DELETE FROM cases WHERE id = 5"))
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO case_actions (id, case_id, ts, actor, action) "
                "VALUES (2, 77, '2026-01-02', 'ana', 'assigned')"
            )
        )
    engine.dispose()
