"""Source maps (issue 20): a team's own helpdesk-style database read through a map, on
SQLite and PostgreSQL; bad maps give line-numbered messages and exit 2; the check and the
draft never write to the team's database."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from analytics.sources import sourcemap
from analytics.sources.sourcemap import MapError, load_map


def _epoch(text_time: str) -> int:
    return int(datetime.fromisoformat(text_time).replace(tzinfo=UTC).timestamp())


# (ticket_id, created, tags, priority, state, subject, body, reporter, reported, channel,
#  country, client)
TICKETS = [
    (
        501,
        "2026-03-01 08:00",
        "fake-5star,vip",
        1,
        "new",
        "Paid reviews",
        "They pay for 5 stars.",
        11,
        21,
        "email",
        "CA",
        "web",
    ),
    (
        502,
        "2026-03-01 12:30",
        "fake-1star",
        2,
        "pending",
        "Rival",
        "A rival posts 1 star.",
        12,
        22,
        "email",
        "NY",
        "ios",
    ),
    (
        503,
        "2026-03-02 09:15",
        "abuse",
        3,
        "solved",
        "Rude",
        "Insults in messages.",
        11,
        22,
        "api",
        "CA",
        "android",
    ),
    (
        504,
        "2026-03-02 18:00",
        "fake-1star,vip",
        4,
        "closed",
        "Again",
        "Same rival again.",
        13,
        22,
        "api",
        "TX",
        "web",
    ),
    (
        505,
        "2026-03-03 07:45",
        "spam",
        2,
        "new",
        "Spam",
        "Links to a pharmacy.",
        12,
        23,
        "email",
        "NY",
        "web",
    ),
    (
        506,
        "2026-03-03 17:30",
        "abuse,vip",
        1,
        "pending",
        "Threat",
        "A threat by message.",
        13,
        21,
        "api",
        "CA",
        "ios",
    ),
]
# (activity_id, occurred_at, actor_id, action, client, country, device, ip)
ACTIVITY = [
    (1, "2026-02-28 10:00", 11, "signup", "web", "CA", "d1", "i1"),
    (2, "2026-03-01 10:00", 11, "log_in", "web", "CA", "d1", "i1"),
    (3, "2026-03-01 11:00", 21, "post_review", "ios", "CA", "d2", "i2"),
    (4, "2026-03-02 11:00", 22, "log_in", "android", "NY", "d3", "i3"),
]
# (uid, signed_up, handle, email, account_type, status, is_verified, country)
USERS = [
    (11, "2026-01-05 09:00", "Ann Patient", "ann@example.org", "patient", "active", 1, "CA"),
    (12, "2026-01-06 09:00", "Bo Patient", "bo@example.org", "patient", "active", 0, "NY"),
    (13, "2026-01-07 09:00", "Cy Patient", "cy@example.org", "patient", "locked", 1, "TX"),
    (21, "2026-01-08 09:00", "Dr Dee", "dee@example.org", "doctor", "active", 1, "CA"),
    (22, "2026-01-09 09:00", "Dr Eve", "eve@example.org", "doctor", "active", 1, "NY"),
    (23, "2026-01-10 09:00", "Fay Clinic", "fay@example.org", "clinic", "active", 0, "NY"),
]

_DDL = [
    "CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, created BIGINT NOT NULL, tags TEXT, "
    "priority INTEGER, state VARCHAR(20), subject TEXT, body TEXT, requester INTEGER, "
    "reported_user INTEGER, channel VARCHAR(20), country VARCHAR(2), client VARCHAR(10))",
    "CREATE TABLE activity (activity_id INTEGER PRIMARY KEY, occurred_at BIGINT, "
    "actor_id INTEGER, action VARCHAR(30), client VARCHAR(10), country VARCHAR(2), "
    "device VARCHAR(32), ip VARCHAR(32))",
    "CREATE TABLE users (uid INTEGER PRIMARY KEY, signed_up BIGINT, handle TEXT, email TEXT, "
    "account_type VARCHAR(20), status VARCHAR(20), is_verified INTEGER, country VARCHAR(2))",
]


def _build(url: str) -> None:
    """The team's own database: tickets, activity and users, in names of their own."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for ddl in _DDL:
            conn.execute(text(ddl))
        conn.execute(
            text("INSERT INTO tickets VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i, :j, :k, :l)"),
            [dict(zip("abcdefghijkl", (r[0], _epoch(r[1]), *r[2:]), strict=True)) for r in TICKETS],
        )
        conn.execute(
            text("INSERT INTO activity VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", (r[0], _epoch(r[1]), *r[2:]), strict=True)) for r in ACTIVITY],
        )
        conn.execute(
            text("INSERT INTO users VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", (r[0], _epoch(r[1]), *r[2:]), strict=True)) for r in USERS],
        )
    engine.dispose()


def _epoch_sql(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"datetime({column}, 'unixepoch')"
    return f"to_timestamp({column}) AT TIME ZONE 'UTC'"


def good_map(dialect: str) -> str:
    return f"""\
# The team's helpdesk, mapped onto Lookout
[cases]
from = "tickets"

[cases.columns]
id = "ticket_id"
opened_at = "{_epoch_sql("created", dialect)}"
source = "channel"
category = "tags"
severity = "priority"
status = "state"
region = "country"
platform = "client"
subject_account_id = "reported_user"
reporter_account_id = "requester"
description = "subject || ': ' || body"

[cases.split]
category = ","

[cases.values.category]
"fake-5star" = "fake_review"
"fake-1star" = "fake_review"
abuse = "harassment"

[cases.ignore]
category = ["vip"]

[cases.values.severity]
1 = "critical"
2 = "high"
3 = "medium"
4 = "low"

[cases.values.status]
new = "open"
pending = "in_review"
solved = "resolved"
closed = "resolved"

[cases.values.source]
email = "user_report"
api = "automated_rule"

[events]
from = "SELECT * FROM activity WHERE actor_id IS NOT NULL"

[events.columns]
id = "activity_id"
ts = "{_epoch_sql("occurred_at", dialect)}"
account_id = "actor_id"
kind = "action"
platform = "client"
region = "country"
device_hash = "device"
ip_hash = "ip"

[events.values.kind]
log_in = "login"
post_review = "review_posted"

[accounts]
from = "users"

[accounts.columns]
id = "uid"
kind = "account_type"
created_at = "{_epoch_sql("signed_up", dialect)}"
region = "country"
verified = "is_verified"
status = "status"
display_name = "handle"
email = "email"

[accounts.values.kind]
doctor = "provider"
clinic = "practice"

[accounts.values.status]
locked = "suspended"
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def team_url(request: pytest.FixtureRequest) -> str:
    """The team's database, built by the test, on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url = str(request.getfixturevalue(name))
    _build(url)
    return url


def _dialect(url: str) -> str:
    return make_url(url).get_backend_name()


def _run(*args: str) -> tuple[int, str, str]:
    from analytics.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "team.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _line(body: str, starts: str) -> int:
    return next(i for i, line in enumerate(body.splitlines(), 1) if line.startswith(starts))


# --- a good map ---------------------------------------------------------------------------


def test_good_map_checks_out(team_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, good_map(_dialect(team_url)))
    code, out, err = _run("sources", "check", "--map", str(path), "--url", team_url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "cases (from tickets): 6 rows, 2026-03-01 08:00 to 2026-03-03 17:30"
    assert lines[4] == (
        "events (from SELECT * FROM activity WHERE actor_id IS NOT NULL): 4 rows, "
        "2026-02-28 10:00 to 2026-03-02 11:00"
    )
    assert lines[8] == "accounts (from users): 6 rows, 2026-01-05 09:00 to 2026-01-10 09:00"
    assert lines[-1] == "the map is usable"
    # The sample shows ids and vocabulary, never free text in full.
    assert lines[1].startswith(
        "  id=501, opened_at=2026-03-01 08:00:00, source=email→user_report, "
        "category=fake-5star,vip→fake_review, severity=1→critical, status=new→open, "
    )
    assert "description='Pai…' (35 chars)" in lines[1]
    assert "They pay" not in out and "ann@example.org" not in out
    assert "email='ann…' (15 chars)" in lines[9]


def test_loaded_map_structure(tmp_path: Path) -> None:
    body = good_map("sqlite")
    smap = load_map(_write(tmp_path, body))
    assert [e.entity for e in smap.entities] == ["cases", "events", "accounts"]
    cases = smap.entity("cases")
    assert cases is not None and cases.source == "tickets"
    category = cases.values["category"]
    assert category.split == "," and category.ignore == frozenset({"vip"})
    assert dict(category.values) == {
        "fake-5star": "fake_review",
        "fake-1star": "fake_review",
        "abuse": "harassment",
    }
    assert category.line == _line(body, "[cases.values.category]")
    assert cases.values["severity"].translate("1", []) == "critical"
    assert sorted(cases.values) == [
        "category",
        "platform",
        "region",
        "severity",
        "source",
        "status",
    ]
    column = cases.column("opened_at")
    assert column is not None and column.line == _line(body, "opened_at")
    assert smap.todos == ()


# --- bad maps ------------------------------------------------------------------------------


_UNKNOWN_COLUMN = {
    "sqlite": "no such column: bodyy",
    "postgresql": 'column "bodyy" does not exist',
}


def test_unknown_column(team_url: str, tmp_path: Path) -> None:
    body = good_map(_dialect(team_url)).replace("subject || ': ' || body", "bodyy")
    path = _write(tmp_path, body)
    code, _, err = _run("sources", "check", "--map", str(path), "--url", team_url)
    assert code == 2
    line = _line(body, "description")
    assert err.splitlines()[0].startswith(
        f"{path}:{line}: cases.columns.description: `bodyy` fails: "
        f"{_UNKNOWN_COLUMN[_dialect(team_url)]}"
    )
    assert err.splitlines()[-1] == "the map is not usable yet: 1 problem"


def test_type_that_does_not_convert(team_url: str, tmp_path: Path) -> None:
    body = good_map(_dialect(team_url)).replace(
        _epoch_sql("created", _dialect(team_url)), "created"
    )
    path = _write(tmp_path, body)
    code, _, err = _run("sources", "check", "--map", str(path), "--url", team_url)
    assert code == 2
    assert err.splitlines() == [
        f"{path}:{_line(body, 'opened_at')}: cases.columns.opened_at: `created` gives "
        f"{_epoch('2026-03-01 08:00')} (int), not a timestamp (epoch seconds? SQLite: "
        "datetime(col, 'unixepoch'); PostgreSQL: to_timestamp(col) AT TIME ZONE 'UTC')",
        "the map is not usable yet: 1 problem",
    ]


def test_value_that_maps_to_nothing(team_url: str, tmp_path: Path) -> None:
    body = good_map(_dialect(team_url)).replace('"fake-1star" = "fake_review"\n', "")
    body = body.replace('category = ["vip"]', "category = []")
    path = _write(tmp_path, body)
    code, _, err = _run("sources", "check", "--map", str(path), "--url", team_url)
    assert code == 2
    at = f"{path}:{_line(body, '[cases.values.category]')}: cases.category"
    hint = "(map it in [cases.values.category] or list it in [cases.ignore])"
    assert err.splitlines() == [
        f"{at}: `vip` (3 rows) maps to nothing {hint}",
        f"{at}: `fake-1star` (2 rows) maps to nothing {hint}",
        "the map is not usable yet: 2 problems",
    ]


def test_missing_required_column(tmp_path: Path) -> None:
    body = good_map("sqlite").replace('severity = "priority"\n', "")
    path = _write(tmp_path, body)
    code, out, err = _run("sources", "check", "--map", str(path), "--url", "sqlite:///nowhere")
    assert (code, out) == (2, "")
    assert err == (
        f"{path}:{_line(body, '[cases.columns]')}: cases.columns: missing required columns: "
        f"severity\n{path}:{_line(body, '[cases.values.severity]')}: cases.values.severity: "
        "[cases.columns] does not map severity\n"
    )


def test_static_problems_are_all_line_numbered(tmp_path: Path) -> None:
    body = good_map("sqlite")
    body = body.replace('abuse = "harassment"', 'abuse = "harrassment"')
    body = body.replace('region = "country"\nplatform', 'regoin = "country"\nplatform')
    body = body.replace("[events]\n", "[events]\nwhere = 1\n")
    body += "\n[incidents]\nfrom = 'x'\n"
    with pytest.raises(MapError) as caught:
        load_map(_write(tmp_path, body))
    path = tmp_path / "team.toml"
    assert caught.value.problems == [
        f"{path}:{_line(body, '[incidents]')}: `incidents` is not something a map declares: "
        "cases, events, accounts, source, taxonomy",
        f"{path}:{_line(body, 'regoin')}: cases.columns: `regoin` is not a column of Lookout's "
        "cases (they are: id, opened_at, source, category, severity, status, region, platform, "
        "subject_account_id, reporter_account_id, assignee, description, first_response_at, "
        "resolved_at, resolution, appealed_at, appeal_outcome)",
        f"{path}:{_line(body, '[cases.columns]')}: cases.columns: missing required columns: region",
        f"{path}:{_line(body, 'abuse')}: cases.values.category: `abuse` maps to `harrassment`, "
        "which is not a Lookout category (fake_review, review_extortion, harassment, "
        "hate_speech, spam, fraudulent_booking, no_show_abuse, impersonation, "
        "credential_misrepresentation, account_takeover, payment_fraud, health_info_exposure, "
        "off_platform_solicitation, other)",
        f"{path}:{_line(body, 'where')}: events: unknown key `where` (a events map has from, "
        "watermark, columns, values, split, ignore)",
    ]


def test_toml_syntax_error_keeps_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[cases]\nfrom = "tickets"\nbroken = \n')
    with pytest.raises(MapError) as caught:
        load_map(path)
    assert str(caught.value) == f"{path}:3: not valid TOML: Invalid value (column 10)"


# --- never writes --------------------------------------------------------------------------


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in ("tickets", "activity", "users")
        }
    engine.dispose()
    return counts


def test_check_never_writes(team_url: str, tmp_path: Path) -> None:
    dialect = _dialect(team_url)
    file = make_url(team_url).database if dialect == "sqlite" else None
    before = (_counts(team_url), Path(file).read_bytes() if file else b"")
    smap = load_map(_write(tmp_path, good_map(dialect)))
    engine = sourcemap.connect(team_url)
    try:
        assert sourcemap.check_map(engine, smap).usable
        with engine.connect() as conn, pytest.raises(Exception) as refused:
            conn.execute(text("INSERT INTO tickets (ticket_id, created) VALUES (999, 0)"))
        assert ("readonly" if dialect == "sqlite" else "read-only transaction") in str(
            refused.value
        )
        # A map whose SELECT tries to write too is not usable (and writes nothing).
        bad = good_map(dialect).replace(
            'from = "users"', 'from = "SELECT * FROM users; DELETE FROM users"'
        )
        report = sourcemap.check_map(engine, load_map(_write(tmp_path, bad)))
        assert report.rows == {"cases": 6, "events": 4}
        assert len(report.problems) == 1 and "accounts.from: cannot read" in report.problems[0]
    finally:
        engine.dispose()
    code, _, _ = _run("sources", "check", "--map", str(tmp_path / "team.toml"), "--url", team_url)
    assert code == 2
    after = (_counts(team_url), Path(file).read_bytes() if file else b"")
    assert after == before
    assert before[0] == {"tickets": 6, "activity": 4, "users": 6}


# --- drafting -------------------------------------------------------------------------------


def test_init_drafts_a_map_that_loads_and_checks(team_url: str, tmp_path: Path) -> None:
    out = tmp_path / "draft.toml"
    code, said, err = _run("sources", "init", "--url", team_url, "--out", str(out))
    assert (code, err) == (0, "")
    assert said == f"wrote a draft map to {out}: replace each TODO, then run sources check\n"
    smap = load_map(out)
    sources = {e.entity: e.source for e in smap.entities}
    assert sources == {"cases": "tickets", "events": "activity", "accounts": "users"}
    cases = smap.entity("cases")
    assert cases is not None
    columns = {c.ours: c.theirs for c in cases.columns}
    assert columns["opened_at"] == _epoch_sql("created", _dialect(team_url))
    assert (columns["category"], columns["severity"], columns["description"]) == (
        "tags",
        "priority",
        "body",
    )
    assert (columns["id"], columns["subject_account_id"]) == ("ticket_id", "reported_user")
    assert "platform" not in {w.split(":")[0].split(".")[-1] for _, w in smap.todos}
    assert cases.values["category"].split == ","
    todo_values = sorted(w for _, w in smap.todos if w.startswith("cases.values.category"))
    assert todo_values == [
        "cases.values.category: `abuse`",
        "cases.values.category: `fake-1star`",
        "cases.values.category: `fake-5star`",
        "cases.values.category: `vip`",
    ]
    code, _, err = _run("sources", "check", "--map", str(out), "--url", team_url)
    assert code == 2
    text_out = out.read_text()
    line = _line(text_out, '"fake-5star"')
    assert f"{out}:{line}: cases.values.category: `fake-5star` is still TODO" in err.splitlines()
    assert "Traceback" not in err
    # Refuses to overwrite the team's edits.
    code, _, err = _run("sources", "init", "--url", team_url, "--out", str(out))
    assert (code, err) == (2, f"error: {out} exists; not overwriting it\n")


def test_cannot_open_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("sources", "init", "--url", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and err.startswith("error: cannot open sqlite:///") and err.count("\n") == 1
    assert not (tmp_path / "none.db").exists()


# --- any TOML that parses loads or raises MapError ------------------------------------------

_HEADERS = st.sampled_from(
    ["[cases]", "[cases.columns]", "[cases.values.category]", "[cases.split]", "[cases.ignore]",
     "[events]", "[events.columns]", "[accounts.values]", "[other]", "[cases.values]"]
)  # fmt: skip
_KEYS = st.sampled_from(
    ["from", "id", "opened_at", "category", "columns", "values", "split", "ignore", '"x y"',
     "severity", "1", "kind", "cases", "status"]
)  # fmt: skip
_VALUES = st.sampled_from(
    ['"tickets"', '"TODO"', '"SELECT 1"', "1", "true", '["vip"]', '[1, 2]', '{ id = "x" }',
     '","', '""', '"fake_review"', "{}", '"a.b"', "2024-01-01"]
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(_HEADERS, st.tuples(_KEYS, _VALUES).map(" = ".join)), max_size=14))
def test_any_parsing_toml_loads_or_raises_map_error(tmp_path: Path, lines: list[str]) -> None:
    body = "\n".join(lines) + "\n"
    try:
        tomllib.loads(body)
    except tomllib.TOMLDecodeError:
        return
    try:
        load_map(_write(tmp_path, body))
    except MapError as exc:
        assert all(p.startswith(f"{tmp_path / 'team.toml'}:") for p in exc.problems)
