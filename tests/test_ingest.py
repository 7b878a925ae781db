"""The importer: exact summaries, quarantine files, upserts, file-level errors, a property test."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from analytics.core import database, models
from analytics.sources import ingest
from analytics.sources.ingest import ImportSummary, import_file
from analytics.sources.ingest_checks import ImportRejected
from tests.helpers import HANG_S

ACCOUNT_COLUMNS = [
    "id",
    "kind",
    "created_at",
    "region",
    "specialty",
    "verified",
    "status",
    "display_name",
    "email",
]
EVENT_COLUMNS = [
    "id",
    "ts",
    "account_id",
    "kind",
    "platform",
    "region",
    "device_hash",
    "ip_hash",
    "target_account_id",
    "rating",
]
GOOD_ACCOUNTS = [
    ["1", "patient", "2024-01-05T10:00:00Z", "CA", "", "false", "active", "Ann Lee", "ann@ex.org"],
    ["2", "provider", "2024-01-06 11:30:00", "NY", "dentistry", "true", "active", "Dr Bob", ""],
    [
        "3",
        "practice",
        "2024-01-07T12:00:00.25+00:00",
        "TX",
        "",
        "yes",
        "suspended",
        "Smile, Inc.",
        "",
    ],
    ["4", "patient", "2024-01-08", "WA", "", "0", "banned", 'Eve "E" Doe', "eve@ex.org"],
    [
        "5",
        "provider",
        "2024-01-09T08:00:00-05:00",
        "FL",
        "psychiatry",
        "1",
        "active",
        "Dr\nKim",
        "",
    ],
]
BAD_ACCOUNTS = [
    ["6", "fake", "2024-01-10T00:00:00Z", "CA", "", "false", "active", "Bad Kind", ""],
    ["7", "patient", "yesterday", "CA", "", "false", "active", "Bad Time", ""],
    ["8", "patient", "2024-01-11T00:00:00Z", "CA", "", "false", "active", "", ""],
]
BAD_REASONS = [
    "kind: 'fake' is not one of patient, provider, practice",
    "created_at: 'yesterday' is not an ISO 8601 timestamp",
    "display_name: missing value",
]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    eol: str = "\n",
    quote_all: bool = False,
) -> Path:
    """A CSV file as a spreadsheet would write it (quotes around commas, quotes, newlines).

    Python's writer quotes only the line-ending characters of its own ``eol``: with
    ``"\n"`` a lone carriage return would go out unquoted, so quote everything then.
    """
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator=eol, quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def summary(table: str, read: int, *counts: int, quarantine: Path | None = None) -> ImportSummary:
    inserted, updated, unchanged, quarantined = counts
    return ImportSummary(table, read, inserted, updated, unchanged, quarantined, quarantine)


def stored(engine: Engine, table: str, *columns: str) -> list[tuple[object, ...]]:
    t = models.TABLES[table].__table__
    with engine.connect() as conn:
        rows = conn.execute(select(*(t.c[c] for c in columns)).order_by(t.c.id)).all()
    return [tuple(r) for r in rows]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(models.TABLES[table])).scalar_one()
        )


def quarantined(path: Path) -> list[tuple[str, str, str]]:
    """(row, reason, id) of every quarantined row."""
    frame = pl.read_csv(path, infer_schema=False)
    return list(frame.select("row", "reason", "id").iter_rows())


def account(i: int, **changes: str) -> list[str]:
    row = dict(zip(ACCOUNT_COLUMNS, GOOD_ACCOUNTS[0], strict=True)) | {"id": str(i)} | changes
    return [row[c] for c in ACCOUNT_COLUMNS]


# --- summaries, quarantine, upserts -------------------------------------------------------------


def test_good_and_bad_accounts(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)
    q = tmp_path / "accounts.quarantine.csv"

    result = import_file(engine, "accounts", path)

    assert result == summary("accounts", 8, 5, 0, 0, 3, quarantine=q)
    assert quarantined(q) == [
        ("6", BAD_REASONS[0], "6"),
        ("7", BAD_REASONS[1], "7"),
        ("8", BAD_REASONS[2], "8"),
    ]
    frame = pl.read_csv(q, infer_schema=False)
    assert frame.columns == ["row", "reason", *ACCOUNT_COLUMNS]
    assert frame.row(0)[2:] == tuple(v or None for v in BAD_ACCOUNTS[0])
    assert stored(engine, "accounts", "id", "verified", "display_name") == [
        (1, False, "Ann Lee"),
        (2, True, "Dr Bob"),
        (3, True, "Smile, Inc."),
        (4, False, 'Eve "E" Doe'),
        (5, True, "Dr\nKim"),
    ]
    assert database.get_meta(engine, "non_demo_data") is True


def test_reimport_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)
    import_file(engine, "accounts", path)
    before = stored(engine, "accounts", *ACCOUNT_COLUMNS)

    again = import_file(engine, "accounts", path)

    assert again == summary(
        "accounts", 8, 0, 0, 5, 3, quarantine=tmp_path / "accounts.quarantine.csv"
    )
    assert stored(engine, "accounts", *ACCOUNT_COLUMNS) == before


def test_changed_value_is_one_update(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, "accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS))
    changed = [row.copy() for row in GOOD_ACCOUNTS]
    changed[2][6] = "banned"

    result = import_file(
        engine, "accounts", write_csv(tmp_path / "b.csv", ACCOUNT_COLUMNS, changed)
    )

    assert result == summary("accounts", 5, 0, 1, 4, 0)
    assert stored(engine, "accounts", "id", "status")[2] == (3, "banned")
    assert not (tmp_path / "b.quarantine.csv").exists()


def test_absent_optional_column_is_left_alone(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, "accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS))
    narrow = [row[:-1] for row in GOOD_ACCOUNTS]

    result = import_file(
        engine, "accounts", write_csv(tmp_path / "b.csv", ACCOUNT_COLUMNS[:-1], narrow)
    )

    assert result == summary("accounts", 5, 0, 0, 5, 0)
    assert stored(engine, "accounts", "id", "email")[0] == (1, "ann@ex.org")


def test_new_and_changed_rows_in_one_file(engine: Engine, tmp_path: Path) -> None:
    import_file(
        engine, "accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS[:3])
    )
    rows = [row.copy() for row in GOOD_ACCOUNTS]
    rows[0][7] = "Ann Lee-Park"

    result = import_file(engine, "accounts", write_csv(tmp_path / "b.csv", ACCOUNT_COLUMNS, rows))

    assert result == summary("accounts", 5, 2, 1, 2, 0)
    assert [r[1] for r in stored(engine, "accounts", "id", "display_name")] == [
        "Ann Lee-Park",
        "Dr Bob",
        "Smile, Inc.",
        'Eve "E" Doe',
        "Dr\nKim",
    ]


def test_events_need_their_accounts(engine: Engine, tmp_path: Path) -> None:
    accounts = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)
    import_file(engine, "accounts", accounts)
    events = [
        ["1", "2024-02-01T09:00:00Z", "1", "review_posted", "web", "CA", "d1", "i1", "2", "5"],
        ["2", "2024-02-01T09:05:00Z", "99", "login", "ios", "CA", "d2", "i2", "", ""],
        ["3", "2024-02-01T09:06:00Z", "1", "booking_created", "web", "CA", "d1", "i1", "98", ""],
        ["4", "2024-02-01T09:07:00Z", "6", "login", "android", "CA", "d3", "i3", "", ""],
        ["5", "2024-02-01T09:08:00Z", "5", "review_posted", "ios", "FL", "d4", "i4", "2", "7"],
    ]
    path = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)

    result = import_file(engine, "events", path)

    q = tmp_path / "events.quarantine.csv"
    assert result == summary("events", 5, 1, 0, 0, 4, quarantine=q)
    assert quarantined(q) == [
        ("2", "account_id: 99 not found in accounts", "2"),
        ("3", "target_account_id: 98 not found in accounts", "3"),
        ("4", "account_id: 6 not found in accounts", "4"),
        ("5", "rating: 7 is not between 1 and 5", "5"),
    ]
    assert stored(engine, "events", "id", "account_id", "target_account_id", "rating") == [
        (1, 1, 2, 5)
    ]


def test_cases_and_actions_reference_their_parents(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, "accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS))
    case_header = [
        "id",
        "opened_at",
        "source",
        "category",
        "severity",
        "status",
        "region",
        "platform",
        "subject_account_id",
        "reporter_account_id",
        "description",
    ]
    cases = [
        [
            "10",
            "2024-03-01T00:00:00Z",
            "user_report",
            "fake_review",
            "low",
            "open",
            "CA",
            "web",
            "2",
            "1",
            "five stars, all from one device",
        ],
        [
            "11",
            "2024-03-01T00:00:00Z",
            "user_report",
            "fake",
            "low",
            "open",
            "CA",
            "web",
            "77",
            "",
            "who?",
        ],
    ]
    result = import_file(engine, "cases", write_csv(tmp_path / "c.csv", case_header, cases))
    assert result.inserted == 1
    assert quarantined(tmp_path / "c.quarantine.csv") == [
        (
            "2",
            "category: 'fake' is not one of fake_review, review_extortion, harassment, "
            "hate_speech, spam, fraudulent_booking, no_show_abuse, impersonation, "
            "credential_misrepresentation, account_takeover, payment_fraud, "
            "health_info_exposure, off_platform_solicitation, other; "
            "subject_account_id: 77 not found in accounts",
            "11",
        )
    ]
    actions = [["1", "10", "2024-03-01T01:00:00Z", "ana", "assigned", ""]]
    actions += [["2", "11", "2024-03-01T01:00:00Z", "ana", "assigned", ""]]
    header = ["id", "case_id", "ts", "actor", "action", "detail"]
    result = import_file(engine, "case_actions", write_csv(tmp_path / "ca.csv", header, actions))
    assert (result.inserted, result.quarantined) == (1, 1)
    assert quarantined(tmp_path / "ca.quarantine.csv")[0][1] == "case_id: 11 not found in cases"


def test_duplicate_ids_keep_the_first(engine: Engine, tmp_path: Path) -> None:
    rows = [account(1), account(2), account(1, display_name="second"), account(1, kind="x")]
    path = write_csv(tmp_path / "dups.csv", ACCOUNT_COLUMNS, rows)

    result = import_file(engine, "accounts", path, quarantine=tmp_path / "out" / "q.csv")

    assert result == summary("accounts", 4, 2, 0, 0, 2, quarantine=tmp_path / "out" / "q.csv")
    assert quarantined(tmp_path / "out" / "q.csv") == [
        ("3", "duplicate id in file (first at row 1)", "1"),
        (
            "4",
            "kind: 'x' is not one of patient, provider, practice; "
            "duplicate id in file (first at row 1)",
            "1",
        ),
    ]
    assert stored(engine, "accounts", "id", "display_name") == [(1, "Ann Lee"), (2, "Ann Lee")]


def test_timestamps_are_stored_as_naive_utc(engine: Engine, tmp_path: Path) -> None:
    stamps = {
        1: ("2024-03-10T08:30:00+05:30", datetime(2024, 3, 10, 3, 0)),
        2: ("2024-03-10 20:15:30.25-04:00", datetime(2024, 3, 11, 0, 15, 30, 250000)),
        3: ("2024-12-31T23:30:00-01:00", datetime(2025, 1, 1, 0, 30)),
        4: ("2024-03-10T23:00:00Z", datetime(2024, 3, 10, 23, 0)),
        5: ("2024-03-10 12:00", datetime(2024, 3, 10, 12, 0)),
        6: ("2024-02-29", datetime(2024, 2, 29)),
        7: ("2024-03-10T12:00:00.123456789+0100", datetime(2024, 3, 10, 11, 0, 0, 123456)),
        8: ("1990-01-01T00:30:00+01:00", None),  # 1989-12-31 23:30 UTC
        9: ("2100-12-31T23:59:59Z", datetime(2100, 12, 31, 23, 59, 59)),
    }
    rows = [account(i, created_at=text) for i, (text, _) in stamps.items()]
    result = import_file(engine, "accounts", write_csv(tmp_path / "tz.csv", ACCOUNT_COLUMNS, rows))

    assert (result.inserted, result.quarantined) == (8, 1)
    expected = [(i, when) for i, (_, when) in stamps.items() if when is not None]
    assert stored(engine, "accounts", "id", "created_at") == expected
    assert quarantined(tmp_path / "tz.quarantine.csv")[0][1] == (
        "created_at: '1990-01-01T00:30:00+01:00' is outside 1990..2100"
    )


BAD_VALUES = [
    ("id", "abc", "id: 'abc' is not an integer"),
    ("id", "1.5", "id: '1.5' is not an integer"),
    ("id", "99999999999999999999", "id: '99999999999999999999' is not an integer"),
    ("id", "", "id: missing value"),
    ("verified", "maybe", "verified: 'maybe' is not a boolean (true/false/1/0/yes/no)"),
    ("region", "ZZ", "region: 'ZZ' is not a US state code"),
    ("kind", "Patient", "kind: 'Patient' is not one of patient, provider, practice"),
    ("created_at", "2024-02-30", "created_at: '2024-02-30' is not an ISO 8601 timestamp"),
    (
        "created_at",
        "2024-01-01T24:00:00",
        "created_at: '2024-01-01T24:00:00' is not an ISO 8601 timestamp",
    ),
    (
        "created_at",
        "2016-12-31T23:59:60Z",
        "created_at: '2016-12-31T23:59:60Z' is not an ISO 8601 timestamp",
    ),
    ("created_at", "01/02/2024", "created_at: '01/02/2024' is not an ISO 8601 timestamp"),
    ("created_at", "2101-01-01", "created_at: '2101-01-01' is outside 1990..2100"),
    ("display_name", "x" * 121, "display_name: 121 characters, more than 120"),
    ("display_name", "a\x00b", "display_name: contains a NUL character"),
    ("status", "z" * 60, f"status: '{'z' * 40}...' is not one of active, suspended, banned"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_bad_values_are_explained(
    engine: Engine, tmp_path: Path, column: str, value: str, reason: str
) -> None:
    path = write_csv(
        tmp_path / "one.csv", ACCOUNT_COLUMNS, [account(1), account(2, **{column: value})]
    )

    result = import_file(engine, "accounts", path)

    assert (result.inserted, result.quarantined) == (1, 1)
    assert quarantined(tmp_path / "one.quarantine.csv")[0][:2] == ("2", reason)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("verified", "TRUE", True),
        ("verified", " No ", False),
        ("verified", "1", True),
        ("region", "ca", "CA"),
        ("id", " 2 ", 2),
        ("id", "2.0", 2),
        ("kind", " provider ", "provider"),
        ("display_name", "  spaced  ", "  spaced  "),
    ],
)
def test_good_values_are_normalised(
    engine: Engine, tmp_path: Path, column: str, value: str, expected: object
) -> None:
    path = write_csv(tmp_path / "one.csv", ACCOUNT_COLUMNS, [account(2, **{column: value})])

    assert import_file(engine, "accounts", path).inserted == 1
    assert stored(engine, "accounts", column) == [(expected,)]


def test_blank_lines_are_skipped(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "blank.csv", ACCOUNT_COLUMNS, [account(1), [], account(2), []])

    result = import_file(engine, "accounts", path)

    assert result == summary("accounts", 2, 2, 0, 0, 0)


def test_parquet(engine: Engine, tmp_path: Path) -> None:
    local = [datetime(2024, 3, 10, 8, 30), datetime(2024, 3, 11, 9, 0), datetime(2024, 3, 12)]
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "kind": ["patient", "provider", "fake"],
            "created_at": pl.Series(local).dt.replace_time_zone("Asia/Kolkata"),
            "region": ["CA", "NY", "TX"],
            "specialty": [None, "dentistry", None],
            "verified": [True, False, True],
            "status": ["active", "active", "active"],
            "display_name": ["Ann", "Bob, MD", "Cy"],
        }
    )
    path = tmp_path / "accounts.parquet"
    frame.write_parquet(path)

    result = import_file(engine, "accounts", path)

    assert result == summary(
        "accounts", 3, 2, 0, 0, 1, quarantine=tmp_path / "accounts.quarantine.csv"
    )
    assert quarantined(tmp_path / "accounts.quarantine.csv") == [
        ("3", "kind: 'fake' is not one of patient, provider, practice", "3")
    ]
    assert stored(engine, "accounts", "id", "created_at", "specialty", "verified") == [
        (1, datetime(2024, 3, 10, 3, 0), None, True),
        (2, datetime(2024, 3, 11, 3, 30), "dentistry", False),
    ]
    assert import_file(engine, "accounts", path).unchanged == 2


def test_summary_line() -> None:
    s = summary("events", 10, 7, 1, 0, 2, quarantine=Path("e.quarantine.csv"))
    assert s.describe() == (
        "events: read 10, inserted 7, updated 1, unchanged 0, quarantined 2 (see e.quarantine.csv)"
    )


@pytest.mark.parametrize(
    ("table", "name", "content", "message"),
    [
        ("audit_log", "a.csv", "id\n1\n", "table 'audit_log' is written only by the app"),
        ("accounts", "a.csv", "", "empty file, no header row"),
        ("accounts", "a.csv", "id,kind,colour\n", "unknown columns: 'colour'"),
        ("accounts", "a.csv", "id,id\n", "duplicate columns: id"),
        ("accounts", "a.csv", "id, id \n", "duplicate columns: id"),
        ("accounts", "a.csv", "id,kind\n1,patient,extra\n", "more fields than the header"),
        ("accounts", "a.csv", b"id,kind\n\xff,patient\n", "not UTF-8 text"),
        ("accounts", "a.csv", 'id,kind\n1,"never closed\n', "malformed CSV"),
        ("accounts", "a.parquet", "not parquet", "not a valid Parquet file"),
        ("accounts", "a.json", "{}", "wrong format"),
    ],
)
def test_file_level_problems_raise(
    tmp_path: Path, table: str, name: str, content: str | bytes, message: str
) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    models.init_db(engine)
    if isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    else:
        (tmp_path / name).write_text(content)
    with pytest.raises(ImportRejected, match=message) as caught:
        import_file(engine, table, tmp_path / name)
    assert "\n" not in str(caught.value)
    assert "never closed" not in str(caught.value)
    assert count(engine, "accounts") == 0
    engine.dispose()


def test_quarantine_cannot_overwrite_the_input(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, BAD_ACCOUNTS)
    with pytest.raises(ImportRejected, match="cannot be the input file"):
        import_file(engine, "accounts", path, quarantine=path)
    assert path.read_text().startswith("id,kind")


# --- the command line ---------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"LOOKOUT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    return subprocess.run(
        [sys.executable, "-m", "analytics", "import", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=HANG_S,
    )


@pytest.mark.slow
def test_cli_imports_and_summarises(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)

    done = run_cli(tmp_path, "accounts", str(path))

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    summary, snapshot = done.stdout.strip().splitlines()
    assert summary == (
        "accounts: read 8, inserted 5, updated 0, unchanged 0, quarantined 3 "
        f"(see {tmp_path / 'accounts.quarantine.csv'})"
    )
    assert snapshot.startswith("full refresh of ")  # the new rows reach the snapshot
    for row in GOOD_ACCOUNTS + BAD_ACCOUNTS:  # row contents never reach the terminal
        assert row[7] == "" or row[7] not in done.stdout


def file_problems(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "notes.txt").write_text("id\n1\n")
    (tmp / "garbage.parquet").write_bytes(bytes(range(256)) * 4)
    write_csv(tmp / "no_kind.csv", [c for c in ACCOUNT_COLUMNS if c != "kind"], [["1"] * 8])
    return {
        "unknown table": (["patients", str(tmp / "notes.txt")], "error: unknown table 'patients'"),
        "missing file": (["accounts", str(tmp / "nope.csv")], "error: "),
        "wrong extension": (["accounts", str(tmp / "notes.txt")], "error: "),
        "garbage parquet": (["accounts", str(tmp / "garbage.parquet")], "error: "),
        "missing column": (
            ["accounts", str(tmp / "no_kind.csv")],
            "error: missing required columns: kind",
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "problem",
    ["unknown table", "missing file", "wrong extension", "garbage parquet", "missing column"],
)
def test_cli_file_level_errors(tmp_path: Path, problem: str) -> None:
    args, start = file_problems(tmp_path)[problem]

    done = run_cli(tmp_path, *args)

    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(start)
    assert "Traceback" not in done.stderr + done.stdout


# --- property: whatever the rows, the books balance -----------------------------------------------


@dataclass(frozen=True)
class Field:
    """A generated CSV value; ``ok`` is True (valid), False (invalid) or None (random)."""

    text: str
    ok: bool | None


def fields(good: st.SearchStrategy[str], bad: list[str]) -> st.SearchStrategy[Field]:
    return st.one_of(
        good.map(lambda t: Field(t, True)),
        st.sampled_from(bad).map(lambda t: Field(t, False)),
        awkward_text().map(lambda t: Field(t, None)),
    )


def awkward_text(min_size: int = 0) -> st.SearchStrategy[str]:
    """Text with commas, quotes, newlines, carriage returns and non-ASCII characters."""
    piece = st.one_of(
        st.text(max_size=6),
        st.sampled_from([",", '"', "'", "\n", "\r\n", "\r", " ", ";", "é", "\t", '""', "#"]),
    )
    return (
        st.lists(piece, min_size=min_size, max_size=6)
        .map("".join)
        .filter(lambda t: len(t) >= min_size)
    )


OFFSETS = [
    None,
    timedelta(0),
    timedelta(hours=5, minutes=30),
    timedelta(hours=-4),
    timedelta(hours=14),
]


@st.composite
def timestamps(draw: st.DrawFn) -> Field:
    when = draw(st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(2105, 12, 31)))
    offset = draw(st.sampled_from(OFFSETS))
    sep = draw(st.sampled_from(["T", " "]))
    if offset is None:
        return Field(when.isoformat(sep=sep), datetime(1990, 1, 1) <= when < datetime(2101, 1, 1))
    text = when.replace(tzinfo=timezone(offset)).isoformat(sep=sep)
    text = text.replace("+00:00", draw(st.sampled_from(["Z", "+00:00"])))
    utc = when - offset
    return Field(text, datetime(1990, 1, 1) <= utc < datetime(2101, 1, 1))


@st.composite
def ids(draw: st.DrawFn) -> tuple[Field, int | None]:
    """An id as text and the integer it stands for (None when it is not one)."""
    if draw(st.booleans()):
        n = draw(st.integers(min_value=1, max_value=12))
        fmt = draw(st.sampled_from(["{}", " {} ", "{}.0", "+{}"]))
        return Field(fmt.format(n), True), n
    bad = draw(st.sampled_from(["abc", "1.5", "-", "99999999999999999999", "x1"]))
    return Field(bad, False), None


@st.composite
def account_rows(draw: st.DrawFn) -> tuple[list[Field], int | None]:
    id_field, n = draw(ids())
    row = [
        id_field,
        draw(
            fields(st.sampled_from([k.value for k in models.AccountKind]), ["fake", "Patient", ""])
        ),
        draw(st.one_of(timestamps(), fields(st.nothing(), ["yesterday", "2024-02-30", ""]))),
        draw(fields(st.sampled_from(["CA", "ny", "TX"]), ["ZZ", "California", ""])),
        draw(fields(st.sampled_from(["", "dentistry"]), ["s" * 33])),
        draw(fields(st.sampled_from(["true", "FALSE", "1", "0", "Yes", "no"]), ["maybe", "2", ""])),
        draw(
            st.one_of(
                st.sampled_from([s.value for s in models.AccountStatus]).map(
                    lambda t: Field(t, True)
                ),
                st.sampled_from(["deleted", " "]).map(lambda t: Field(t, False)),
            )
        ),  # never empty, so that no generated row is a blank line
        draw(fields(awkward_text(min_size=1), ["", "n" * 121, "nul\x00"])),
        draw(fields(awkward_text(), ["e" * 201])),
    ]
    return row, n


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(account_rows(), max_size=25),
    dialect=st.sampled_from([("\r\n", False), ("\n", True)]),
)
def test_any_rows_balance(
    rows: list[tuple[list[Field], int | None]], dialect: tuple[str, bool]
) -> None:
    eol, quote_all = dialect
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_csv(
            folder / "accounts.csv",
            ACCOUNT_COLUMNS,
            [[f.text for f in r] for r, _ in rows],
            eol=eol,
            quote_all=quote_all,
        )
        engine = database.make_engine(f"sqlite:///{folder / 'p.db'}")
        try:
            models.init_db(engine)
            first = import_file(engine, "accounts", path)
            in_table = count(engine, "accounts")
            again = import_file(engine, "accounts", path)
            assert count(engine, "accounts") == in_table
        finally:
            engine.dispose()
        q = folder / "accounts.quarantine.csv"
        quarantine = pl.read_csv(q, infer_schema=False) if q.exists() else None

    assert first.read == len(rows)
    assert first.inserted + first.updated + first.unchanged + first.quarantined == first.read
    assert (first.updated, first.unchanged) == (0, 0)
    assert in_table + first.quarantined == len(rows)
    assert again == ImportSummary(
        "accounts", first.read, 0, 0, first.inserted, first.quarantined, first.quarantine_path
    )

    bad_rows = set() if quarantine is None else {int(r) for r in quarantine["row"]}
    assert len(bad_rows) == first.quarantined
    seen: set[int] = set()
    for number, (row, n) in enumerate(rows, start=1):
        duplicate = n in seen
        if n is not None:
            seen.add(n)
        if duplicate or any(f.ok is False for f in row):
            assert number in bad_rows, (number, [f.text for f in row])
        elif all(f.ok for f in row):
            assert number not in bad_rows, (number, [f.text for f in row])
    if quarantine is not None:  # the original text survives the round trip through CSV
        originals = {i: [f.text or None for f in r] for i, (r, _) in enumerate(rows, start=1)}
        for record in quarantine.iter_rows():
            assert list(record[2:]) == originals[int(record[0])]


# --- hardening (issue 14): short write transaction, Parquet types, headers, quarantine -------


def accounts_file(path: Path, ids: range, **changes: str) -> Path:
    return write_csv(path, ACCOUNT_COLUMNS, [account(i, **changes) for i in ids])


def test_sqlite_writers_wait_for_the_lock(tmp_path: Path) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000
    engine.dispose()


@pytest.mark.fixed_bug("imports held SQLite's write lock throughout; sign-ins failed")
def test_sign_ins_and_audit_go_on_while_an_import_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads sign in and write audit rows over and over while a third imports; none
    fails. The import waits, after writing its first batch of rows, until each of them has
    signed in a few times: were the database's write lock held then (as it was), they
    would wait their busy timeout out and fail with "database is locked". Then they go on
    until the import is done, so some wait for its short write transaction."""
    from analytics import access

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = database.make_engine(url)
    models.init_db(engine)
    access.add_user(engine, "ana", "associate", "correct horse battery")
    path = accounts_file(tmp_path / "accounts.csv", range(1, 1201))
    monkeypatch.setattr(ingest, "BATCH_SIZE", 100)
    go, finished, rounds = threading.Event(), threading.Event(), 3
    first_rounds = [threading.Event() for _ in range(2)]
    errors: list[str] = []
    signed_in: list[str] = []

    def sign_ins(first_rounds_done: threading.Event) -> None:
        app = database.make_engine(url)  # the app's own engine, as in another process
        go.wait(timeout=120)
        done = 0
        try:
            while done < rounds or not finished.is_set():
                viewer = access.sign_in(app, "ana", "correct horse battery")
                access.audit(app, viewer, "case_view", target="case 1")
                signed_in.append(viewer.name)
                done += 1
                if done == rounds:
                    first_rounds_done.set()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            first_rounds_done.set()
            app.dispose()

    workers = [threading.Thread(target=sign_ins, args=(done,)) for done in first_rounds]
    batches = ingest._batches

    def batches_then_wait(rows: pl.DataFrame) -> Iterator[list[dict[str, object]]]:
        for number, batch in enumerate(batches(rows)):
            if number == 1:  # the first batch has been written
                go.set()
                for done in first_rounds:
                    done.wait(timeout=300)
            yield batch

    monkeypatch.setattr(ingest, "_batches", batches_then_wait)
    result: list[ImportSummary] = []

    def run_import() -> None:
        try:
            result.append(import_file(engine, "accounts", path))
        finally:
            finished.set()

    importer = threading.Thread(target=run_import)
    for thread in [*workers, importer]:
        thread.start()
    for thread in [importer, *workers]:
        thread.join(timeout=600)
    go.set()

    assert errors == []
    assert len(signed_in) >= 2 * rounds
    assert result == [summary("accounts", 1200, 1200, 0, 0, 0)]
    assert count(engine, "accounts") == 1200
    with engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(models.TABLES["audit_log"]))
        assert audited.scalar_one() == 2 * len(signed_in)  # a sign-in and a case view each
    engine.dispose()


def test_a_failure_while_writing_changes_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(engine, "accounts", accounts_file(tmp_path / "a.csv", range(1, 6)))
    before = stored(engine, "accounts", *ACCOUNT_COLUMNS)
    rows = [account(i, display_name="renamed") for i in range(1, 11)] + [account(11, kind="x")]
    path = write_csv(tmp_path / "b.csv", ACCOUNT_COLUMNS, rows)

    def disk_full(_bad: pl.DataFrame, target: Path) -> None:
        raise ImportRejected(f"{target}: cannot write the quarantine file: No space left")

    # after the new rows were inserted and the changed ones updated, before the commit
    monkeypatch.setattr(ingest, "_write_quarantine", disk_full)
    with pytest.raises(ImportRejected, match="No space left"):
        import_file(engine, "accounts", path)
    assert stored(engine, "accounts", *ACCOUNT_COLUMNS) == before

    monkeypatch.undo()  # and the import runs whole once the disk has room
    assert import_file(engine, "accounts", path) == summary(
        "accounts", 11, 5, 5, 0, 1, quarantine=tmp_path / "b.quarantine.csv"
    )


def test_a_failure_while_staging_changes_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(engine, "accounts", accounts_file(tmp_path / "a.csv", range(1, 6)))
    before = stored(engine, "accounts", *ACCOUNT_COLUMNS)
    monkeypatch.setattr(ingest, "BATCH_SIZE", 4)
    batches = ingest._batches

    def broken(rows: pl.DataFrame) -> Iterator[list[dict[str, object]]]:
        for number, batch in enumerate(batches(rows)):
            if number == 2:
                raise OSError("the connection dropped")
            yield batch

    monkeypatch.setattr(ingest, "_batches", broken)
    path = accounts_file(tmp_path / "b.csv", range(1, 21), display_name="renamed")
    with pytest.raises(OSError, match="dropped"):
        import_file(engine, "accounts", path)
    assert stored(engine, "accounts", *ACCOUNT_COLUMNS) == before

    monkeypatch.setattr(ingest, "_batches", batches)  # the same connection pool goes on
    assert import_file(engine, "accounts", path) == summary("accounts", 20, 15, 5, 0, 0)


def test_a_parent_removed_during_the_import_sends_its_rows_to_quarantine(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(engine, "accounts", accounts_file(tmp_path / "a.csv", range(1, 4)))
    events = [
        [str(i), "2024-02-01T09:00:00Z", str(who), "login", "web", "CA", "d", "i", "", ""]
        for i, who in [(1, 1), (2, 3), (3, 2), (4, 3)]
    ]
    path = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    stage = ingest._stage

    def stage_then_remove_account_3(conn: object, table: object, rows: pl.DataFrame) -> object:
        staging = stage(conn, table, rows)  # type: ignore[arg-type]
        with engine.begin() as other:  # another session, after the foreign keys were checked
            accounts = models.TABLES["accounts"].__table__
            other.execute(accounts.delete().where(accounts.c.id == 3))
        return staging

    monkeypatch.setattr(ingest, "_stage", stage_then_remove_account_3)
    result = import_file(engine, "events", path)

    q = tmp_path / "events.quarantine.csv"
    assert result == summary("events", 4, 2, 0, 0, 2, quarantine=q)
    assert quarantined(q) == [
        ("2", "account_id: 3 not found in accounts", "2"),
        ("4", "account_id: 3 not found in accounts", "4"),
    ]
    assert stored(engine, "events", "id", "account_id") == [(1, 1), (3, 2)]


def parquet_with(path: Path, column: pa.Array) -> Path:
    """An accounts Parquet file with two rows whose ``created_at`` is ``column``."""
    table = pa.table(
        {
            "id": [1, 2],
            "kind": ["patient", "provider"],
            "created_at": column,
            "region": ["CA", "NY"],
            "verified": [True, False],
            "status": ["active", "active"],
            "display_name": ["Ann", "Bob"],
        }
    )
    pq.write_table(table, path)
    return path


@pytest.mark.fixed_bug("a fixed-offset time zone made Polars panic: 'not a valid Parquet file'")
def test_parquet_with_a_fixed_offset_time_zone(engine: Engine, tmp_path: Path) -> None:
    local = [datetime(2024, 3, 10, 8, 30), datetime(2024, 3, 11, 0, 15)]
    column = pa.array(local, pa.timestamp("us")).cast(pa.int64()).to_numpy()
    offset = 5 * 3600 + 30 * 60  # the instants of those local times at +05:30
    instants = pa.array(column - offset * 1_000_000, pa.timestamp("us", tz="+05:30"))
    path = parquet_with(tmp_path / "accounts.parquet", instants)

    result = import_file(engine, "accounts", path)

    assert result == summary("accounts", 2, 2, 0, 0, 0)
    assert stored(engine, "accounts", "created_at") == [
        (datetime(2024, 3, 10, 3, 0),),
        (datetime(2024, 3, 10, 18, 45),),
    ]


UNSUPPORTED = {
    "duration": pa.array([timedelta(hours=1)] * 2, pa.duration("us")),
    "time": pa.array([datetime(2024, 1, 1, 8).time()] * 2, pa.time64("us")),
    "list": pa.array([["2024-01-01"], []], pa.list_(pa.string())),
    "binary": pa.array([b"2024-01-01", b"x"], pa.binary()),
}


@pytest.mark.slow
@pytest.mark.fixed_bug("a Duration column exited 1 (InvalidOperationError) instead of 2")
@pytest.mark.parametrize("kind", list(UNSUPPORTED))
def test_parquet_with_an_unsupported_type(tmp_path: Path, kind: str) -> None:
    path = parquet_with(tmp_path / "accounts.parquet", UNSUPPORTED[kind])

    done = run_cli(tmp_path, "accounts", str(path))

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: column created_at: unsupported Parquet type {kind}")


@pytest.mark.slow
def test_cli_parquet_with_a_fixed_offset_prints_no_panic(tmp_path: Path) -> None:
    stamps = pa.array([10**9, 11 * 10**8], pa.timestamp("s", tz="-03:00"))
    path = parquet_with(tmp_path / "accounts.parquet", stamps)

    done = run_cli(tmp_path, "accounts", str(path))

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("accounts: read 2, inserted 2,")


@pytest.mark.fixed_bug("a header such as email_duplicated_0 was dropped silently")
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["email_duplicated_0"], "unknown columns: 'email_duplicated_0'"),
        (["email", "email_duplicated_0"], "duplicate columns: email"),
    ],
)
def test_header_of_a_repeated_column_is_refused(
    engine: Engine, tmp_path: Path, header: list[str], message: str
) -> None:
    columns = [c for c in ACCOUNT_COLUMNS if c != "email"] + header
    rows = [account(1)[:-1] + ["ann@ex.org"] * len(header)]
    path = write_csv(tmp_path / "a.csv", columns, rows)

    with pytest.raises(ImportRejected, match=message):
        import_file(engine, "accounts", path)
    assert count(engine, "accounts") == 0


@pytest.mark.fixed_bug("--quarantine followed a symbolic link and overwrote its target")
@pytest.mark.parametrize("where", ["option", "default"])
def test_quarantine_refuses_a_symbolic_link(engine: Engine, tmp_path: Path, where: str) -> None:
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me\n")
    path = write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)
    link = tmp_path / ("q.csv" if where == "option" else "a.quarantine.csv")
    link.symlink_to(unrelated)

    with pytest.raises(ImportRejected, match="is a symbolic link; refusing to follow it"):
        import_file(engine, "accounts", path, quarantine=link if where == "option" else None)

    assert unrelated.read_text() == "keep me\n"
    assert link.is_symlink()
    assert count(engine, "accounts") == 0


@pytest.mark.fixed_bug("quarantine files, raw rows with emails, were world-readable (0644)")
def test_quarantine_file_is_private(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS + BAD_ACCOUNTS)
    q = tmp_path / "a.quarantine.csv"
    q.write_text("an older quarantine file\n")
    q.chmod(0o644)

    import_file(engine, "accounts", path)

    assert stat.S_IMODE(q.stat().st_mode) == 0o600
    assert len(quarantined(q)) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.fixed_bug("a snapshot refresh failing after the import exited 1 with ComputeError")
def test_cli_import_warns_when_the_snapshot_refresh_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from analytics import cli
    from analytics.sources import snapshot_refresh

    def broken(*_args: object, **_kwargs: object) -> object:
        raise pl.exceptions.ComputeError("cannot append: schema mismatch\nmore detail")

    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(snapshot_refresh, "refresh", broken)
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS)

    done = CliRunner().invoke(cli.app, ["import", "accounts", str(path)])

    assert done.exit_code == 0, done.output
    assert done.exception is None
    assert done.stdout.splitlines() == [
        "accounts: read 5, inserted 5, updated 0, unchanged 0, quarantined 0"
    ]
    assert done.stderr.splitlines() == [
        "warning: the rows were imported, but refreshing the Parquet snapshot failed "
        "(ComputeError: cannot append: schema mismatch); it will be rebuilt on the next "
        "read, or run `python -m analytics refresh --full`"
    ]
    engine = database.make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    assert count(engine, "accounts") == 5
    engine.dispose()
