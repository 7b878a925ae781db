"""A team's own database to try a source map on: the demo in a helpdesk's tables and words.

Lookout reads a team's data through a source map (:mod:`analytics.sources.sourcemap`,
:mod:`analytics.sources.mapped`). To try it, and to test it, this module writes the
small demo into a helpdesk-style schema of its own (``tickets``, ``activity``,
``users``) with the team's names and encodings, writes the map that reads it, and
converts the same data back to Lookout's schema by hand (a second, independent
conversion, for the importer).

Their encodings: tickets open at epoch seconds, carry comma-joined tags (the category,
split in two for fake reviews, with "vip" and "escalated" tags that mean nothing to us),
a priority 1-4, statuses, channels, outcomes and appeal results of their own; activity
is stamped in local time with a UTC offset and named with their own action words; users
have their own kinds and states. About one ticket in 97 is tagged ``fake-9star``, which
the map does not know: ``sources check`` reports it, and those rows are quarantined.

``python -m analytics example-helpdesk`` writes ``helpdesk.db``, ``helpdesk.toml`` and
``helpdesk-own.toml`` (README, "Your own data").
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

KIND_OF = {"patient": "member", "provider": "doctor", "practice": "clinic"}
ACCOUNT_STATE_OF = {"active": "ok", "suspended": "locked", "banned": "banned"}
ACTION_OF = {
    "signup": "sign_up",
    "login": "log_in",
    "login_failed": "login_fail",
    "booking_created": "book",
    "booking_cancelled": "cancel_booking",
    "no_show": "no_show",
    "review_posted": "review",
    "message_sent": "message",
    "profile_updated": "profile_edit",
    "payment_failed": "payment_declined",
    "report_filed": "report",
}
PRIORITY_OF = {"critical": 1, "high": 2, "medium": 3, "low": 4}
TICKET_STATE_OF = {"open": "new", "in_review": "pending", "resolved": "solved"}
CHANNEL_OF = {
    "user_report": "web_form",
    "provider_report": "provider_portal",
    "automated_rule": "rules",
    "ml_model": "classifier",
    "internal_escalation": "staff",
}
OUTCOME_OF = {
    "no_violation": "no_action",
    "warning": "warned",
    "content_removed": "removed",
    "account_suspended": "suspended",
    "account_banned": "banned",
    "referred_externally": "referred",
}
APPEAL_OF = {"pending": "waiting", "upheld": "denied", "overturned": "granted"}
CLIENT_OF = {"web": "desktop", "ios": "iphone", "android": "android"}
#: Hours east of UTC that each region's activity is stamped in (others: UTC).
OFFSET_OF = {"CA": -8, "WA": -8, "TX": -6, "IL": -6, "NY": -5, "FL": -5, "MA": -5}

DDL = [
    "CREATE TABLE users (uid BIGINT PRIMARY KEY, signed_up BIGINT NOT NULL, handle TEXT, "
    "email TEXT, account_type VARCHAR(20), state VARCHAR(20), is_verified INTEGER, "
    "country VARCHAR(2), speciality VARCHAR(60))",
    "CREATE TABLE tickets (ticket_id BIGINT PRIMARY KEY, created BIGINT NOT NULL, "
    "updated BIGINT NOT NULL, tags TEXT, priority INTEGER, state VARCHAR(20), body TEXT, "
    "requester BIGINT, reported_user BIGINT, agent VARCHAR(60), channel VARCHAR(30), "
    "country VARCHAR(2), client VARCHAR(10), first_reply BIGINT, closed_at BIGINT, "
    "outcome VARCHAR(20), appeal_at BIGINT, appeal_result VARCHAR(20))",
    "CREATE TABLE activity (activity_id BIGINT PRIMARY KEY, occurred_at VARCHAR(40), "
    "actor_id BIGINT, action VARCHAR(30), client VARCHAR(10), country VARCHAR(2), "
    "device VARCHAR(64), ip VARCHAR(64), target BIGINT, stars INTEGER)",
]


def _epoch(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("s")


def _local(column: str) -> pl.Expr:
    """``2025-09-03T02:02:13-05:00``: the UTC time shown in the region's own offset."""
    hours = pl.col("region").replace_strict(OFFSET_OF, default=0, return_dtype=pl.Int64)
    shifted = pl.col(column).dt.truncate("1s") + pl.duration(hours=hours)
    sign = pl.when(hours < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
    return pl.concat_str(
        shifted.dt.strftime("%Y-%m-%dT%H:%M:%S"),
        sign,
        hours.abs().cast(pl.String).str.zfill(2),
        pl.lit(":00"),
    )


def _tags(case_id: pl.Expr) -> pl.Expr:
    category = pl.col("category").cast(pl.String)
    tag = (
        pl.when(category == "fake_review")
        .then(pl.when(case_id % 2 == 0).then(pl.lit("fake-5star")).otherwise(pl.lit("fake-1star")))
        .when(category == "other")
        .then(pl.lit("misc"))
        .otherwise(category.str.replace_all("_", "-"))
    )
    tag = pl.when(case_id % 97 == 5).then(pl.lit("fake-9star")).otherwise(tag)
    tag = pl.when(case_id % 7 == 0).then(pl.concat_str(pl.lit("vip, "), tag)).otherwise(tag)
    return pl.when(case_id % 11 == 0).then(pl.concat_str(tag, pl.lit(",escalated"))).otherwise(tag)


def helpdesk_frames(lookout_url: str) -> dict[str, pl.DataFrame]:
    """The demo's accounts, cases and events (from a Lookout database) in the team's shape."""
    engine = create_engine(lookout_url)
    with engine.connect() as conn:
        accounts = pl.read_database("SELECT * FROM accounts ORDER BY id", conn)
        cases = pl.read_database("SELECT * FROM cases ORDER BY id", conn)
        events = pl.read_database("SELECT * FROM events ORDER BY id", conn)
    engine.dispose()
    accounts, cases, events = (
        f.with_columns(
            pl.col(c).str.to_datetime()
            for c, t in f.schema.items()
            if t == pl.String
            and c
            in ("created_at", "opened_at", "first_response_at", "resolved_at", "appealed_at", "ts")
        )
        for f in (accounts, cases, events)
    )
    users = accounts.select(
        uid=pl.col("id"),
        signed_up=_epoch("created_at"),
        handle=pl.col("display_name"),
        email=pl.col("email"),
        account_type=pl.col("kind").replace_strict(KIND_OF),
        state=pl.col("status").replace_strict(ACCOUNT_STATE_OF),
        is_verified=pl.col("verified").cast(pl.Int64),
        country=pl.col("region"),
        speciality=pl.col("specialty"),
    )
    tickets = cases.select(
        ticket_id=pl.col("id"),
        created=_epoch("opened_at"),
        updated=pl.max_horizontal(
            [_epoch(c) for c in ("opened_at", "first_response_at", "resolved_at", "appealed_at")]
        ),
        tags=_tags(pl.col("id")),
        priority=pl.col("severity").replace_strict(PRIORITY_OF, return_dtype=pl.Int64),
        state=pl.when((pl.col("status") == "resolved") & (pl.col("id") % 3 == 0))
        .then(pl.lit("closed"))
        .otherwise(pl.col("status").replace_strict(TICKET_STATE_OF)),
        body=pl.col("description"),
        requester=pl.col("reporter_account_id"),
        reported_user=pl.col("subject_account_id"),
        agent=pl.col("assignee"),
        channel=pl.col("source").replace_strict(CHANNEL_OF),
        country=pl.col("region"),
        client=pl.col("platform").replace_strict(CLIENT_OF),
        first_reply=_epoch("first_response_at"),
        closed_at=_epoch("resolved_at"),
        outcome=pl.col("resolution").replace_strict(OUTCOME_OF, default=None),
        appeal_at=_epoch("appealed_at"),
        appeal_result=pl.col("appeal_outcome").replace_strict(APPEAL_OF, default=None),
    )
    activity = events.select(
        activity_id=pl.col("id"),
        occurred_at=_local("ts"),
        actor_id=pl.col("account_id"),
        action=pl.col("kind").replace_strict(ACTION_OF),
        client=pl.col("platform").replace_strict(CLIENT_OF),
        country=pl.col("region"),
        device=pl.col("device_hash"),
        ip=pl.col("ip_hash"),
        target=pl.col("target_account_id"),
        stars=pl.col("rating"),
    )
    return {"users": users, "tickets": tickets, "activity": activity}


def build_helpdesk(url: str, lookout_url: str) -> dict[str, pl.DataFrame]:
    """Create the team's database at ``url`` holding the demo at ``lookout_url``."""
    frames = helpdesk_frames(lookout_url)
    engine = create_engine(url)
    with engine.begin() as conn:
        for ddl in DDL:
            conn.execute(text(ddl))
        for name, frame in frames.items():
            columns = ", ".join(frame.columns)
            marks = ", ".join(f":{c}" for c in frame.columns)
            conn.execute(text(f"INSERT INTO {name} ({columns}) VALUES ({marks})"), frame.to_dicts())
    engine.dispose()
    return frames


def _time(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"datetime({column}, 'unixepoch')"
    return f"to_timestamp({column}) AT TIME ZONE 'UTC'"


def _local_sql(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"datetime({column})"
    return f"CAST({column} AS timestamptz) AT TIME ZONE 'UTC'"


def _values(table: str, mapping: Mapping[str, object]) -> str:
    body = "\n".join(f'"{theirs}" = "{ours}"' for ours, theirs in mapping.items())
    return f"[{table}]\n{body}\n"


def helpdesk_map(
    url: str | None = None, *, dialect: str | None = None, own_taxonomy: bool = False
) -> str:
    """The source map of the helpdesk database (its expressions in ``dialect``'s SQL).

    With ``own_taxonomy`` the helpdesk keeps its own categories, channels and priorities
    (:data:`OWN_TAXONOMY`) instead of mapping them onto the demo's.

    >>> "[taxonomy]" in helpdesk_map(own_taxonomy=True), "[taxonomy]" in helpdesk_map()
    (True, False)
    """
    dialect = dialect or (make_url(url).get_backend_name() if url else "sqlite")
    source = f'[source]\nurl = "{url}"\n\n' if url else ""
    if own_taxonomy:
        return source + OWN_TAXONOMY + _own_values(_map_body(dialect))
    return source + _map_body(dialect)


def _own_values(body: str) -> str:
    """The map's value tables for category, severity and source, in the helpdesk's words."""
    start = body.index("[cases.values.category]")
    end = body.index("[cases.values.status]")
    own = _values("cases.values.category", {}) + "\n".join(
        f'"{theirs}" = "{ours}"' for theirs, ours in OWN_CATEGORY_OF.items()
    )
    severity = _values("cases.values.severity", {f"p{n}": n for n in range(1, 5)})
    body = body[:start] + own + "\n\n" + severity + "\n" + body[end:]
    start = body.index("[cases.values.source]")
    end = body.index("[cases.values.platform]")
    return body[:start] + body[end:]


def _map_body(dialect: str) -> str:
    fake = {"fake-5star": "fake_review", "fake-1star": "fake_review", "misc": "other"}
    return f"""\
# The Acme helpdesk, mapped onto Lookout
[cases]
from = "tickets"
watermark = "updated"

[cases.columns]
id = "ticket_id"
opened_at = "{_time("created", dialect)}"
source = "channel"
category = "tags"
severity = "priority"
status = "state"
region = "country"
platform = "client"
subject_account_id = "reported_user"
reporter_account_id = "requester"
assignee = "agent"
description = "body"
first_response_at = "{_time("first_reply", dialect)}"
resolved_at = "{_time("closed_at", dialect)}"
resolution = "outcome"
appealed_at = "{_time("appeal_at", dialect)}"
appeal_outcome = "appeal_result"

[cases.split]
category = ","

[cases.ignore]
category = ["vip", "escalated"]

[cases.values.category]
{chr(10).join(f'"{k}" = "{v}"' for k, v in fake.items())}
{
        chr(10).join(
            f'"{c.replace("_", "-")}" = "{c}"'
            for c in CATEGORIES
            if c not in ("fake_review", "other")
        )
    }

{_values("cases.values.severity", PRIORITY_OF)}
{_values("cases.values.status", TICKET_STATE_OF)}"closed" = "resolved"

{_values("cases.values.source", CHANNEL_OF)}
{_values("cases.values.platform", CLIENT_OF)}
{_values("cases.values.resolution", OUTCOME_OF)}
{_values("cases.values.appeal_outcome", APPEAL_OF)}
[events]
from = "activity"
watermark = "activity_id"

[events.columns]
id = "activity_id"
ts = "{_local_sql("occurred_at", dialect)}"
account_id = "actor_id"
kind = "action"
platform = "client"
region = "country"
device_hash = "device"
ip_hash = "ip"
target_account_id = "target"
rating = "stars"

{_values("events.values.kind", ACTION_OF)}
{_values("events.values.platform", CLIENT_OF)}
[accounts]
from = "users"

[accounts.columns]
id = "uid"
kind = "account_type"
created_at = "{_time("signed_up", dialect)}"
region = "country"
specialty = "speciality"
verified = "is_verified"
status = "state"
display_name = "handle"
email = "email"

{_values("accounts.values.kind", KIND_OF)}
{_values("accounts.values.status", ACCOUNT_STATE_OF)}"""


CATEGORIES = (
    "fake_review",
    "review_extortion",
    "harassment",
    "hate_speech",
    "spam",
    "fraudulent_booking",
    "no_show_abuse",
    "impersonation",
    "credential_misrepresentation",
    "account_takeover",
    "payment_fraud",
    "health_info_exposure",
    "off_platform_solicitation",
    "other",
)


def _inverse(mapping: Mapping[str, object]) -> dict[str, str]:
    return {str(theirs): ours for ours, theirs in mapping.items()}


def _iso(column: str) -> pl.Expr:
    return pl.from_epoch(pl.col(column), time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")


def _category() -> pl.Expr:
    """Their tags to our category by hand: the first tag that is one of ours by the map's
    order (fake reviews and misc first), else the first tag that is not ignored."""
    known = {"fake-5star": "fake_review", "fake-1star": "fake_review", "misc": "other"}
    known |= {c.replace("_", "-"): c for c in CATEGORIES if c not in ("fake_review", "other")}
    tags = pl.col("tags").str.split(",").list.eval(pl.element().str.strip_chars())
    kept = tags.list.eval(pl.element().filter(~pl.element().is_in(["vip", "escalated"])))
    first = kept.list.first()
    return first.replace_strict(known, default=first, return_dtype=pl.String)


def lookout_files(frames: dict[str, pl.DataFrame], folder: Path) -> dict[str, Path]:
    """The helpdesk's data converted to Lookout's schema by hand, as the CSV files the
    importer reads (accounts, cases, events)."""
    users, tickets, activity = frames["users"], frames["tickets"], frames["activity"]
    accounts = users.select(
        id=pl.col("uid"),
        kind=pl.col("account_type").replace_strict(_inverse(KIND_OF)),
        created_at=_iso("signed_up"),
        region=pl.col("country"),
        specialty=pl.col("speciality"),
        verified=pl.col("is_verified").cast(pl.String),
        status=pl.col("state").replace_strict(_inverse(ACCOUNT_STATE_OF)),
        display_name=pl.col("handle"),
        email=pl.col("email"),
    )
    states = _inverse(TICKET_STATE_OF) | {"closed": "resolved"}
    cases = tickets.select(
        id=pl.col("ticket_id"),
        opened_at=_iso("created"),
        source=pl.col("channel").replace_strict(_inverse(CHANNEL_OF)),
        category=_category(),
        severity=pl.col("priority").cast(pl.String).replace_strict(_inverse(PRIORITY_OF)),
        status=pl.col("state").replace_strict(states),
        region=pl.col("country"),
        platform=pl.col("client").replace_strict(_inverse(CLIENT_OF)),
        subject_account_id=pl.col("reported_user"),
        reporter_account_id=pl.col("requester"),
        assignee=pl.col("agent"),
        description=pl.col("body"),
        first_response_at=_iso("first_reply"),
        resolved_at=_iso("closed_at"),
        resolution=pl.col("outcome").replace_strict(_inverse(OUTCOME_OF), default=None),
        appealed_at=_iso("appeal_at"),
        appeal_outcome=pl.col("appeal_result").replace_strict(_inverse(APPEAL_OF), default=None),
    )
    local = pl.col("occurred_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", time_zone="UTC")
    events = activity.select(
        id=pl.col("activity_id"),
        ts=local.dt.replace_time_zone(None).dt.strftime("%Y-%m-%d %H:%M:%S"),
        account_id=pl.col("actor_id"),
        kind=pl.col("action").replace_strict(_inverse(ACTION_OF)),
        platform=pl.col("client").replace_strict(_inverse(CLIENT_OF)),
        region=pl.col("country"),
        device_hash=pl.col("device"),
        ip_hash=pl.col("ip"),
        target_account_id=pl.col("target"),
        rating=pl.col("stars"),
    )
    out = {}
    for name, frame in (("accounts", accounts), ("cases", cases), ("events", events)):
        out[name] = folder / f"{name}.csv"
        frame.write_csv(out[name])
    return out


def write_example(folder: Path, *, end: date | None = None) -> tuple[Path, Path, Path]:
    """Write ``helpdesk.db`` (the small demo, in the helpdesk's tables), ``helpdesk.toml``
    (its map onto Lookout's taxonomy) and ``helpdesk-own.toml`` (its map keeping its own)
    into ``folder``; return the three paths. Refuses to overwrite any."""
    from analytics.core import database
    from analytics.demo.seed import seed_database

    folder.mkdir(parents=True, exist_ok=True)
    team, smap, own = folder / "helpdesk.db", folder / "helpdesk.toml", folder / "helpdesk-own.toml"
    for path in (team, smap, own):
        if path.exists():
            raise FileExistsError(f"{path} exists; not overwriting it")
    with tempfile.TemporaryDirectory() as scratch:
        demo_url = f"sqlite:///{Path(scratch) / 'demo.db'}"
        engine = database.make_engine(demo_url)
        try:
            seed_database(engine, scale="small", days=240, end=end)
        finally:
            engine.dispose()
        build_helpdesk(f"sqlite:///{team}", demo_url)
    smap.write_text(helpdesk_map(f"sqlite:///{team}"), encoding="utf-8")
    own.write_text(helpdesk_map(f"sqlite:///{team}", own_taxonomy=True), encoding="utf-8")
    return team, smap, own


#: The helpdesk's own categories: their tags, grouped as its team files them.
OWN_CATEGORY_OF = {
    "fake-5star": "fake-reviews",
    "fake-1star": "fake-reviews",
    "fake-9star": "fake-reviews",
    "review-extortion": "fake-reviews",
    "harassment": "abuse",
    "hate-speech": "abuse",
    "spam": "spam",
    "off-platform-solicitation": "spam",
    "fraudulent-booking": "booking-fraud",
    "no-show-abuse": "booking-fraud",
    "impersonation": "account-security",
    "credential-misrepresentation": "account-security",
    "account-takeover": "account-security",
    "payment-fraud": "payments",
    "health-info-exposure": "privacy",
    "misc": "misc",
}

#: The helpdesk's own taxonomy: its categories, its channels as case sources (two of
#: them automated) and its priorities p4 (least urgent) to p1 with their SLAs.
OWN_TAXONOMY = """\
[taxonomy]
sources = ["web_form", "provider_portal", "staff", "rules", "classifier"]
automated = ["rules", "classifier"]

[taxonomy.categories.fake-reviews]
exposure = "review_posted"
surface = "reviews"
[taxonomy.categories.abuse]
exposure = "message_sent"
surface = "messaging"
[taxonomy.categories.spam]
exposure = "message_sent"
surface = "messaging"
[taxonomy.categories.booking-fraud]
exposure = "booking_created"
surface = "bookings"
[taxonomy.categories.account-security]
surface = "accounts"
[taxonomy.categories.payments]
surface = "payments"
[taxonomy.categories.privacy]
exposure = "message_sent"
[taxonomy.categories.misc]
catch_all = true

[taxonomy.severities.p4]
sla_hours = 120
[taxonomy.severities.p3]
sla_hours = 48
[taxonomy.severities.p2]
sla_hours = 12
[taxonomy.severities.p1]
sla_hours = 2

"""
