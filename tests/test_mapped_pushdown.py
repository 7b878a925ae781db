"""Pushdown through a source map (issue 20, item 3): the cube read from a team's own
helpdesk database by the mapped SELECT equals the cube from the copy (``sources sync``
then the snapshot), on SQLite and PostgreSQL, under several filters; the SQL translation
of their values equals :func:`analytics.sources.mapped.translate`; the read never writes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from sqlalchemy import Column, MetaData, Table, Text, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from analytics.core.database import make_engine
from analytics.core.filters import Filters
from analytics.core.models import Annotation, init_db
from analytics.sources import load, mapped, mapped_pushdown, sourcemap
from analytics.sources.ingest_checks import column_specs
from analytics.sources.sourcemap import ColumnMap, EntityMap, ValueMap

START = datetime(2026, 3, 2)  # a Monday
WEEKS = 6
SPECIALTIES = ("dentistry", "dermatology", "psychiatry")
#: Their tags: mapped (several to one), ours as they are, ignored, unknown.
TAGS = ("fake-5star", "fake-1star", "abuse", "extort", "spam", "hate_speech", "vip", "urgent")
#: Tag lists that map to nothing (the row is quarantined by the copy, left out by pushdown).
NOTHING = ("vip", "vip, urgent", "weird", "weird,vip", "", None)


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _team_rows(seed: int = 20) -> dict[str, list[tuple[object, ...]]]:
    """Six weeks of a helpdesk: users, activity and tickets, with the faults a real one has."""
    rng = random.Random(seed)
    users: list[tuple[object, ...]] = []
    for uid in range(1, 61):
        kind = "doctor" if uid % 3 == 0 else "clinic" if uid % 10 == 1 else "patient"
        kind = "robot" if uid == 58 else kind  # maps to nothing: the account is left out
        country = rng.choice(["CA", "NY", "TX", "ca", " fl "])
        country = "XX" if uid == 59 else country  # not a state
        specialty = rng.choice(SPECIALTIES) if kind == "doctor" else None
        status = rng.choice(["active", "active", "locked"])
        signed = _epoch(datetime(2025, 6, 1) + timedelta(days=uid))
        users.append((uid, signed, f"user {uid}", f"u{uid}@example.org", kind, status,
                      uid % 2, country, specialty))  # fmt: skip
    doctors = [u[0] for u in users if u[4] == "doctor"] + [58]
    activity: list[tuple[object, ...]] = []
    actions = ["log_in", "post_review", "book", "msg", "signup", "msg", "book", "teleport"]
    for n in range(1, 901):
        when = START + timedelta(minutes=rng.randrange(WEEKS * 7 * 24 * 60))
        action = rng.choice(actions)
        target = rng.choice(doctors) if action in ("post_review", "book", "msg") else None
        actor = rng.randrange(1, 62)  # 61 is nobody: the event is left out
        client = rng.choice(["web", "ios", "android", "tv"])  # tv maps to nothing
        activity.append((n, _epoch(when), actor, action, client, rng.choice(["CA", "NY", "TX"]),
                         f"d{actor}", f"i{actor}", target, rng.choice([None, 1, 5])))  # fmt: skip
    tickets: list[tuple[object, ...]] = []
    for n in range(1, 401):
        opened = (
            START - timedelta(days=7) + timedelta(minutes=rng.randrange((WEEKS + 1) * 7 * 1440))
        )
        solved = opened + timedelta(hours=rng.randrange(1, 200)) if rng.random() < 0.7 else None
        picked = rng.sample(TAGS, rng.choice([1, 1, 2, 3]))
        tags: str | None = rng.choice([",", ", ", " ,  "]).join(picked)
        if n % 17 == 0:
            tags = rng.choice(NOTHING)
        priority = rng.choice([1, 2, 3, 4, 4, 9 if n % 23 == 0 else 3, 7 if n % 29 == 0 else 2])
        state = "solved" if solved else rng.choice(["new", "pending"])
        outcome = rng.choice(["warned", "removed", "banned", "ok"]) if solved else None
        reported = rng.choice(doctors) if n % 31 else 58  # 58 is left out: so is the ticket
        tickets.append((n, _epoch(opened), _epoch(solved) if solved else None, tags, priority,
                        state, outcome, f"Ticket {n}", "Body.", rng.randrange(1, 58), reported,
                        rng.choice(["email", "api", "email", "bot" if n % 13 == 0 else "api"]),
                        rng.choice(["CA", "NY", "TX", "ny"]),
                        rng.choice(["web", "ios", "android"])))  # fmt: skip
    return {"users": users, "activity": activity, "tickets": tickets}


_DDL = [
    "CREATE TABLE users (uid INTEGER PRIMARY KEY, signed_up BIGINT, handle TEXT, email TEXT, "
    "account_type VARCHAR(20), status VARCHAR(20), is_verified INTEGER, country VARCHAR(4), "
    "specialty VARCHAR(32))",
    "CREATE TABLE activity (activity_id INTEGER PRIMARY KEY, occurred_at BIGINT, "
    "actor_id INTEGER, action VARCHAR(30), client VARCHAR(10), country VARCHAR(2), "
    "device VARCHAR(32), ip VARCHAR(32), target_id INTEGER, stars INTEGER)",
    "CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, created BIGINT NOT NULL, "
    "solved BIGINT, tags TEXT, priority INTEGER, state VARCHAR(20), outcome VARCHAR(20), "
    "subject TEXT, body TEXT, requester INTEGER, reported_user INTEGER, channel VARCHAR(20), "
    "country VARCHAR(2), client VARCHAR(10))",
]


def _build(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for ddl in _DDL:
            conn.execute(text(ddl))
        for table, rows in _team_rows().items():
            names = ", ".join(f":c{i}" for i in range(len(rows[0])))
            conn.execute(
                text(f"INSERT INTO {table} VALUES ({names})"),
                [{f"c{i}": v for i, v in enumerate(r)} for r in rows],
            )
    engine.dispose()


def _dialect(url: str) -> str:
    return make_url(url).get_backend_name()


def _team_map(dialect: str, url: str) -> str:
    """The team's map. On PostgreSQL the times come three ways: a timestamp, a timestamp
    with a zone, and ISO text with an offset."""
    if dialect == "sqlite":
        opened = "datetime(created, 'unixepoch')"
        solved = "datetime(solved, 'unixepoch')"
        ts = "strftime('%Y-%m-%dT%H:%M:%S', occurred_at, 'unixepoch') || '+00:00'"
        signed = "datetime(signed_up, 'unixepoch')"
    else:
        opened = "to_timestamp(created) AT TIME ZONE 'UTC'"
        solved = "to_timestamp(solved)"
        iso = "'YYYY-MM-DD\\\"T\\\"HH24:MI:SS'"
        ts = f"to_char(to_timestamp(occurred_at) AT TIME ZONE 'UTC', {iso}) || '+00:00'"
        signed = "to_timestamp(signed_up)"
    return f"""\
[source]
url = "{url}"

[cases]
from = "tickets"

[cases.columns]
id = "ticket_id"
opened_at = "{opened}"
resolved_at = "{solved}"
first_response_at = "{solved}"
source = "channel"
category = "tags"
severity = "priority"
status = "state"
resolution = "outcome"
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
extort = "review_extortion"

[cases.ignore]
category = ["vip", "urgent"]
severity = ["9"]

[cases.values.severity]
1 = "critical"
2 = "high"
3 = "medium"
4 = "low"

[cases.values.status]
new = "open"
pending = "in_review"
solved = "resolved"

[cases.values.resolution]
warned = "warning"
removed = "content_removed"
banned = "account_banned"
ok = "no_violation"

[cases.values.source]
email = "user_report"
api = "automated_rule"

[events]
from = "SELECT * FROM activity WHERE activity_id > 0"

[events.columns]
id = "activity_id"
ts = "{ts}"
account_id = "actor_id"
kind = "action"
platform = "client"
region = "country"
device_hash = "device"
ip_hash = "ip"
target_account_id = "target_id"
rating = "stars"

[events.values.kind]
log_in = "login"
post_review = "review_posted"
book = "booking_created"
msg = "message_sent"

[accounts]
from = "users"

[accounts.columns]
id = "uid"
kind = "account_type"
created_at = "{signed}"
region = "country"
specialty = "specialty"
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


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in ("tickets", "activity", "users")
        }
    engine.dispose()
    return counts


@pytest.fixture(params=["sqlite", "postgresql"])
def team_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The team's database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    _build(url)
    return url


FILTERS = {
    "none": {},
    "category": {"category": ("fake_review",)},
    "region+platform": {"region": ("CA", "NY"), "platform": ("ios",)},
    "severity": {"severity": ("high", "critical")},
    "specialty+source": {"specialty": ("dentistry",), "source": ("user_report",)},
}


def test_pushdown_through_the_map_equals_the_copy(
    team_url: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = _dialect(team_url)
    file = make_url(team_url).database if dialect == "sqlite" else None
    before = (_counts(team_url), Path(file).read_bytes() if file else b"")
    map_path = tmp_path / "team.toml"
    map_path.write_text(_team_map(dialect, team_url), encoding="utf-8")
    smap = sourcemap.load_map(map_path)
    engine = make_engine(sqlite_url)
    init_db(engine)
    with engine.begin() as conn:  # Lookout's own known events stay in Lookout's database
        conn.execute(
            insert(Annotation).values(
                start_at=START + timedelta(days=9), kind="outage", title="Outage",
                created_by="test", region="CA",
            )
        )  # fmt: skip
    reader = sourcemap.connect(team_url)
    try:
        copied = mapped.sync(engine, smap, reader, quarantine_dir=tmp_path / "q")
        done = {s.entity: s.imported for s in copied}
    finally:
        reader.dispose()
    # The faults are there: some rows of each entity are quarantined, most are copied.
    assert all(0 < s.quarantined < s.inserted for s in done.values()), done
    monkeypatch.setenv(mapped.MAP_VARIABLE, str(map_path))
    end = (START + timedelta(weeks=WEEKS)).date()
    for name, dims in FILTERS.items():
        filters = Filters(start=START.date(), end=end - timedelta(days=1), **dims)
        copy = load.load_cube(engine, filters, loader="snapshot", root=tmp_path / "snap")
        push = load.load_cube(engine, filters, loader="pushdown")
        assert (copy.loader, push.loader) == ("snapshot", "pushdown")
        assert copy.cases.height > 0 and copy.exposure.height > 0, name
        for frame in ("cases", "exposure", "active", "annotations"):
            assert_frame_equal(getattr(copy, frame), getattr(push, frame)), (name, frame)
        assert copy.as_of == push.as_of
    assert push.annotations.height == 1
    daily = load.events_daily(engine, start=START.date(), end=end, loader="snapshot",
                              root=tmp_path / "snap")  # fmt: skip
    assert_frame_equal(daily, load.events_daily(engine, start=START.date(), end=end,
                                                loader="pushdown"))  # fmt: skip
    assert daily["events"].sum() == done["events"].inserted  # every copied event is in range
    # Nothing was written to their database, and the reader cannot write.
    source = mapped_pushdown.source_engine(team_url)
    with source.connect() as conn, pytest.raises(Exception) as refused:
        conn.execute(text("INSERT INTO users (uid) VALUES (999)"))
    assert ("readonly" if dialect == "sqlite" else "read-only transaction") in str(refused.value)
    after = (_counts(team_url), Path(file).read_bytes() if file else b"")
    assert after == before
    mapped_pushdown._ENGINES.pop(team_url).dispose()
    engine.dispose()


def test_without_a_map_pushdown_reads_lookout(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mapped.MAP_VARIABLE, raising=False)
    engine = make_engine(sqlite_url)
    init_db(engine)
    cube = load.load_cube(engine, Filters(start=START.date(), end=START.date()), loader="pushdown")
    assert cube.cases.is_empty() and cube.as_of is None
    engine.dispose()


# --- the SQL translation is translate's -----------------------------------------------------

_TOKENS = ("fake-5star", "abuse", "spam", "harassment", "vip", "odd", "odd2", "Spam", "x_y")
_OURS = ("fake_review", "harassment", "spam", "other")


def _entity(values: dict[str, str], ignore: frozenset[str], split: str | None) -> EntityMap:
    vmap = ValueMap("category", values, ignore, split)
    return EntityMap("cases", "t", 1, 1, (ColumnMap("category", "tags", 1),),
                     {"category": vmap}, tuple(column_specs("cases")))  # fmt: skip


def _sql_translate(url: str, entity: EntityMap, values: list[str | None]) -> list[str | None]:
    engine = create_engine(url)
    table = Table("t_values", MetaData(), Column("n", Text), Column("category", Text))
    try:
        table.drop(engine, checkfirst=True)
        table.create(engine)
        with engine.begin() as conn:
            if values:
                conn.execute(table.insert(), [{"n": f"{i:04}", "category": v}
                                              for i, v in enumerate(values)])  # fmt: skip
        view = mapped_pushdown.translate_columns(table, entity, prefix="t")
        with engine.connect() as conn:
            rows = conn.execute(select(view.c.category).order_by(view.c.n)).all()
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()
    return [r[0] for r in rows]


def _polars_translate(entity: EntityMap, values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"category": values}, schema={"category": pl.String})
    return mapped.translate(frame, entity)["category"].to_list()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'values.db'}"
    return str(request.getfixturevalue("pg_url"))


_item = st.tuples(st.sampled_from(["", " ", "  "]), st.sampled_from(_TOKENS),
                  st.sampled_from(["", " ", "\t"])).map("".join)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mapping=st.dictionaries(st.sampled_from(_TOKENS), st.sampled_from(_OURS), max_size=5),
    ignore=st.frozensets(st.sampled_from(_TOKENS), max_size=3),
    split=st.sampled_from([",", ";", " | "]),
    rows=st.lists(st.one_of(st.none(), st.lists(_item, max_size=4)), min_size=1, max_size=8),
)
def test_sql_translation_of_joined_values_is_translates(
    any_url: str,
    mapping: dict[str, str],
    ignore: frozenset[str],
    split: str,
    rows: list[list[str] | None],
) -> None:
    entity = _entity(mapping, ignore, split)
    values = [None if r is None else split.join(r) for r in rows]
    assert _sql_translate(any_url, entity, values) == _polars_translate(entity, values)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mapping=st.dictionaries(st.sampled_from(_TOKENS), st.sampled_from(_OURS), max_size=5),
    ignore=st.frozensets(st.sampled_from(_TOKENS), max_size=3),
    rows=st.lists(st.one_of(st.none(), st.sampled_from(_TOKENS)), min_size=1, max_size=8),
)
def test_sql_translation_of_single_values_is_translates(
    any_url: str, mapping: dict[str, str], ignore: frozenset[str], rows: list[str | None]
) -> None:
    entity = _entity(mapping, ignore, None)
    assert _sql_translate(any_url, entity, rows) == _polars_translate(entity, rows)


def test_sql_translation_by_hand(any_url: str) -> None:
    entity = _entity({"vip-spam": "spam", "abuse": "harassment", "5star": "fake_review"},
                     frozenset({"vip"}), ",")  # fmt: skip
    values = ["vip, 5star", "abuse,5star", "5star,abuse", "spam,vip", "vip", "odd",
              "vip,,odd ,spam", " odd , odd2", "vip,vip,odd2,abuse", "", None, "Spam",
              "harassment,abuse"]  # fmt: skip
    expected = ["fake_review", "harassment", "harassment", "spam", None, "odd", "spam",
                "odd", "harassment", None, None, "Spam", "harassment"]  # fmt: skip
    assert _polars_translate(entity, values) == expected
    assert _sql_translate(any_url, entity, values) == expected


def test_the_view_leaves_out_what_the_importer_refuses(any_url: str) -> None:
    """Rows whose value maps to nothing, or with a required value missing, are not read."""
    engine = create_engine(any_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER, tags TEXT, p INTEGER)"))
        conn.execute(
            text("INSERT INTO t VALUES (1, 'abuse', 1), (2, 'vip', 1), (3, 'odd', 1), "
                 "(4, 'abuse', 9), (5, 'abuse', NULL), (6, NULL, 2)")
        )  # fmt: skip
    engine.dispose()
    entity = _entity({"abuse": "harassment"}, frozenset({"vip"}), ",")
    vmap = ValueMap("severity", {"1": "high", "2": "low"})
    entity = EntityMap("cases", "t", 1, 1, (ColumnMap("id", "id", 1),
                       ColumnMap("category", "tags", 1), ColumnMap("severity", "p", 1)),
                       {**entity.values, "severity": vmap}, entity.specs)  # fmt: skip
    source = sourcemap.connect(any_url)
    try:
        partial = [c for c in entity.specs if c.name in ("id", "category", "severity")]
        view = mapped_pushdown.mapped_view(
            EntityMap("cases", "t", 1, 1, entity.columns, entity.values, tuple(partial)), source
        )
        with source.connect() as conn:
            rows = conn.execute(view).all()
    finally:
        source.dispose()
    assert [tuple(r) for r in rows] == [(1, "harassment", "high")]
