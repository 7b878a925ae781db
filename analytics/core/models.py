"""The database's tables: their vocabulary, typed SQLAlchemy 2.x ORM models, and creating them.

All timestamps are stored as naive UTC ``DateTime`` values (SQLite has no time
zone type; PostgreSQL uses ``timestamp without time zone``). Enumerated columns
of Lookout's own vocabularies are ``VARCHAR`` with a ``CHECK`` constraint, so the
database itself rejects a value outside the vocabulary whichever path wrote it.

A case's ``category``, ``source`` and ``severity`` (and a known event's ``category``)
are a team's own (:mod:`analytics.core.taxonomy`, declared in its source map), so they
are plain ``VARCHAR(40)`` without a ``CHECK``: a constraint cannot follow a taxonomy
chosen when Lookout starts. The importer checks them against the taxonomy in force
(and quarantines a row outside it, with the reason), as the known-events form does.
:class:`Category`, :class:`CaseSource` and :class:`Severity` remain as the demo's
vocabulary (the default taxonomy). A database created before carries the old
``CHECK`` constraints: :func:`init_db` drops them on PostgreSQL (and widens the
columns); SQLite cannot drop a constraint, so there :func:`init_db` rebuilds the two
tables as SQLite's documentation describes (rows, ids, indexes and triggers kept, every
foreign key checked, in one transaction). :func:`init_db` creates the
tables, the full-text index of case descriptions and the guard that keeps the audit
log append-only; connecting to it is :mod:`analytics.core.database`'s job.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateTable

from analytics.core.taxonomy import NAME_LENGTH

__all__ = [
    "AccountKind",
    "AccountStatus",
    "EventKind",
    "Platform",
    "CaseSource",
    "Category",
    "Severity",
    "CaseStatus",
    "Resolution",
    "AppealOutcome",
    "ActionKind",
    "AnnotationKind",
    "Verdict",
    "Role",
    "User",
    "US_STATES",
    "SPECIALTIES",
    "Base",
    "Account",
    "Event",
    "Case",
    "CaseAction",
    "Annotation",
    "Feedback",
    "AuditLog",
    "DatasetMeta",
    "IncidentState",
    "StoredIncident",
    "IncidentNote",
    "ChannelKind",
    "Subscription",
    "DeliveryState",
    "Delivery",
    "Urgency",
    "Escalation",
    "TABLES",
    "TAXONOMY_LENGTH",
    "SEARCH_TABLE",
    "init_db",
    "build_search_index",
    "drop_search_index",
]


class AccountKind(enum.StrEnum):
    patient = "patient"
    provider = "provider"
    practice = "practice"


class AccountStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"
    banned = "banned"


class EventKind(enum.StrEnum):
    signup = "signup"
    login = "login"
    login_failed = "login_failed"
    booking_created = "booking_created"
    booking_cancelled = "booking_cancelled"
    no_show = "no_show"
    review_posted = "review_posted"
    message_sent = "message_sent"
    profile_updated = "profile_updated"
    payment_failed = "payment_failed"
    report_filed = "report_filed"


class Platform(enum.StrEnum):
    web = "web"
    ios = "ios"
    android = "android"


class CaseSource(enum.StrEnum):
    user_report = "user_report"
    provider_report = "provider_report"
    automated_rule = "automated_rule"
    ml_model = "ml_model"
    internal_escalation = "internal_escalation"


class Category(enum.StrEnum):
    fake_review = "fake_review"
    review_extortion = "review_extortion"
    harassment = "harassment"
    hate_speech = "hate_speech"
    spam = "spam"
    fraudulent_booking = "fraudulent_booking"
    no_show_abuse = "no_show_abuse"
    impersonation = "impersonation"
    credential_misrepresentation = "credential_misrepresentation"
    account_takeover = "account_takeover"
    payment_fraud = "payment_fraud"
    health_info_exposure = "health_info_exposure"
    off_platform_solicitation = "off_platform_solicitation"
    other = "other"


class Severity(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class CaseStatus(enum.StrEnum):
    open = "open"
    in_review = "in_review"
    resolved = "resolved"


class Resolution(enum.StrEnum):
    no_violation = "no_violation"
    warning = "warning"
    content_removed = "content_removed"
    account_suspended = "account_suspended"
    account_banned = "account_banned"
    referred_externally = "referred_externally"


class AppealOutcome(enum.StrEnum):
    pending = "pending"
    upheld = "upheld"
    overturned = "overturned"


class ActionKind(enum.StrEnum):
    assigned = "assigned"
    first_response = "first_response"
    escalated = "escalated"
    resolved = "resolved"
    appeal_opened = "appeal_opened"
    appeal_decided = "appeal_decided"
    note = "note"


class AnnotationKind(enum.StrEnum):
    policy_change = "policy_change"
    product_launch = "product_launch"
    outage = "outage"
    holiday = "holiday"
    other = "other"


class Verdict(enum.StrEnum):
    expected = "expected"
    not_useful = "not_useful"
    confirmed = "confirmed"


US_STATES: tuple[str, ...] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID",
    "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO",
    "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
)  # fmt: skip

SPECIALTIES: tuple[str, ...] = (
    "primary_care", "dentistry", "dermatology", "psychiatry", "pediatrics",
    "obgyn", "orthopedics", "cardiology", "ophthalmology", "chiropractic",
    "physical_therapy", "urgent_care",
)  # fmt: skip


def _enum(e: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        e,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(v.value) for v in e) + 4,
        values_callable=lambda members: [m.value for m in members],
    )


#: The length of the taxonomy's columns (a case's category, source and severity).
TAXONOMY_LENGTH = NAME_LENGTH

# BIGINT on PostgreSQL; INTEGER on SQLite so that the primary key is the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Account(Base):
    """A patient, provider or practice on the marketplace."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    kind: Mapped[AccountKind] = mapped_column(_enum(AccountKind, "account_kind"))
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    region: Mapped[str] = mapped_column(String(2), index=True)
    specialty: Mapped[str | None] = mapped_column(String(32), index=True)
    verified: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[AccountStatus] = mapped_column(_enum(AccountStatus, "account_status"))
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(200))


class Event(Base):
    """Something an account did; also the exposure that prevalence divides by."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(DateTime)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"))
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, "event_kind"))
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    region: Mapped[str] = mapped_column(String(2))
    device_hash: Mapped[str] = mapped_column(String(32))
    ip_hash: Mapped[str] = mapped_column(String(32))
    target_account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"))
    rating: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        Index("ix_events_ts", "ts"),
        Index("ix_events_account_ts", "account_id", "ts"),
    )


class Case(Base):
    """One report or detection and its handling."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The taxonomy's columns: no CHECK (see the module docstring).
    source: Mapped[str] = mapped_column(String(TAXONOMY_LENGTH), index=True)
    category: Mapped[str] = mapped_column(String(TAXONOMY_LENGTH), index=True)
    severity: Mapped[str] = mapped_column(String(TAXONOMY_LENGTH))
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"), index=True)
    region: Mapped[str] = mapped_column(String(2), index=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    subject_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"), index=True)
    reporter_account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"))
    assignee: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    resolution: Mapped[Resolution | None] = mapped_column(_enum(Resolution, "resolution"))
    appealed_at: Mapped[datetime | None] = mapped_column(DateTime)
    appeal_outcome: Mapped[AppealOutcome | None] = mapped_column(
        _enum(AppealOutcome, "appeal_outcome")
    )


class CaseAction(Base):
    """A step in a case's handling, for its timeline."""

    __tablename__ = "case_actions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[ActionKind] = mapped_column(_enum(ActionKind, "action_kind"))
    detail: Mapped[str | None] = mapped_column(Text)


class Annotation(Base):
    """A known event (policy change, launch, outage, holiday) that explains movement."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    end_at: Mapped[datetime | None] = mapped_column(DateTime)
    kind: Mapped[AnnotationKind] = mapped_column(_enum(AnnotationKind, "annotation_kind"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(TAXONOMY_LENGTH))
    region: Mapped[str | None] = mapped_column(String(2))
    created_by: Mapped[str] = mapped_column(String(64))


class Feedback(Base):
    """An associate's verdict on an alert."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    slice_key: Mapped[str] = mapped_column(String(400), index=True)
    alert_start: Mapped[datetime] = mapped_column(DateTime)
    verdict: Mapped[Verdict] = mapped_column(_enum(Verdict, "verdict"))
    value_at_feedback: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Append-only trail: who viewed, revealed or exported what."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(400))
    filters: Mapped[str | None] = mapped_column(Text)


class Role(enum.StrEnum):
    """What a signed-in person may see (see :mod:`analytics.access`)."""

    admin = "admin"
    leadership = "leadership"
    associate = "associate"
    product = "product"


class User(Base):
    """A person who may sign in: local accounts carry an argon2 hash; people signing in
    through the identity provider are matched by ``name`` (their email) for their role."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class IncidentState(enum.StrEnum):
    """Where a stored incident is in its life (issue 19): ``open`` until someone
    acknowledges it; ``snoozed`` until ``snoozed_until`` (then open again); ``resolved``
    or ``dismissed`` until its episode returns (then open again, and said again)."""

    open = "open"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"
    dismissed = "dismissed"


class StoredIncident(Base):
    """An incident kept between runs of ``python -m analytics watch``: one row per
    episode of one series (``key``: source, frequency, metric, direction and slice),
    updated while the episode lasts, never duplicated."""

    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("key", "start", name="uq_incidents_key_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    source: Mapped[str] = mapped_column(String(16))  # cases | events | detections
    freq: Mapped[str] = mapped_column(String(8))  # daily | weekly
    metric: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))  # up | down
    slice_key: Mapped[str] = mapped_column(String(400))
    start: Mapped[datetime] = mapped_column(DateTime)
    end: Mapped[datetime] = mapped_column(DateTime)  # the last alerted point so far
    peak_ts: Mapped[datetime] = mapped_column(DateTime)
    peak_value: Mapped[float] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)  # -log10 p of the peak
    severity: Mapped[str] = mapped_column(String(8))  # low | medium | high
    state: Mapped[IncidentState] = mapped_column(_enum(IncidentState, "incident_state"), index=True)
    assignee: Mapped[str | None] = mapped_column(String(200))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime)
    first_seen: Mapped[datetime] = mapped_column(DateTime)  # when a run first stored it
    last_seen: Mapped[datetime] = mapped_column(DateTime)  # when a run last saw it alert
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    #: When a run last opened it, opened it again or ended its snooze: when subscribers
    #: were (or, for digests, will be) told. Null in rows stored before the column.
    told_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Who last changed its state by hand (acknowledged, resolved, dismissed...).
    changed_by: Mapped[str | None] = mapped_column(String(200))
    #: Bumped by every change, so that two people changing it at once are told.
    version: Mapped[int] = mapped_column(Integer, default=1)


class IncidentNote(Base):
    """A note written on a stored incident (who, when, what)."""

    __tablename__ = "incident_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    user_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class ChannelKind(enum.StrEnum):
    """How a subscription's messages travel."""

    slack = "slack"  # a Slack-compatible incoming webhook
    webhook = "webhook"  # JSON, signed with an HMAC header
    email = "email"  # SMTP, HTML and plain text


class Subscription(Base):
    """Who is told what, and how (issue 19). The channel's secret (a webhook's URL,
    its signing key) is never stored here: ``secret_ref`` names where it is
    (``env:NAME`` or ``secrets:NAME``, see :mod:`analytics.alerts.secrets`)."""

    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind, "channel_kind"))
    secret_ref: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(320))  # an email channel's recipient
    #: Comma-separated: anomalies, emerging, rings, escalations, digest.
    what: Mapped[str] = mapped_column(String(200))
    min_severity: Mapped[str] = mapped_column(String(8), default="low")
    direction: Mapped[str] = mapped_column(String(8), default="both")  # up | down | both
    #: Whose view the messages are written for (the product role's carry only what
    #: the product brief may show).
    role: Mapped[Role] = mapped_column(_enum(Role, "subscription_role"))
    #: Comma-separated filters on slices (``category=spam``...); empty: every slice.
    slices: Mapped[str | None] = mapped_column(String(400))
    digest_hours: Mapped[int | None] = mapped_column(Integer)  # None: each at once
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    last_digest_at: Mapped[datetime | None] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class DeliveryState(enum.StrEnum):
    """Where a message in the outbox is: waiting (``pending``, also between retries),
    being sent under a lease (``sending``), ``sent``, or given up on (``failed``)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Delivery(Base):
    """The outbox: a message to one subscription, written in the same transaction as
    the change that caused it, sent by the watch run with retries; ``idempotency_key``
    is unique, so a change is never queued twice, and it travels with the message so a
    receiver can drop a repeat."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # incident | escalation | digest | test
    subject: Mapped[str] = mapped_column(String(400))
    payload: Mapped[str] = mapped_column(Text)  # analytics.alerts.message.Message as JSON
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState, "delivery_state"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class Urgency(enum.StrEnum):
    """How soon leadership should read an escalation."""

    today = "today"
    now = "now"
    fyi = "fyi"


class Escalation(Base):
    """An associate's escalation of an incident, an emerging topic or a ring to
    leadership: a sentence or two, an urgency, the evidence (numbers and a link)."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_name: Mapped[str] = mapped_column(String(200))
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency, "urgency"))
    subject_kind: Mapped[str] = mapped_column(String(16))  # incident | topic | ring
    subject_ref: Mapped[str] = mapped_column(String(400))
    #: What the subject is called where it was escalated from (a slice and its days,
    #: a topic's name, a ring and its size).
    title: Mapped[str | None] = mapped_column(String(400))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(400))
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON: the numbers


class DatasetMeta(Base):
    """Key-value facts about the data set: its origin and the demo ground truth."""

    __tablename__ = "dataset_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


TABLES: dict[str, type[Base]] = {
    "accounts": Account,
    "events": Event,
    "cases": Case,
    "case_actions": CaseAction,
    "annotations": Annotation,
    "feedback": Feedback,
    "audit_log": AuditLog,
}


def init_db(engine: Engine) -> list[str]:
    """Create every missing table and index; idempotent. Returns the tables created."""
    before = set(inspect(engine).get_table_names())
    Base.metadata.create_all(engine)
    for table in Base.metadata.sorted_tables:  # indexes added to tables made earlier
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    _add_new_columns(engine, before)
    _free_taxonomy_columns(engine, before)
    _rebuild_checked_sqlite_tables(engine, before)
    after = set(inspect(engine).get_table_names())
    build_search_index(engine)
    _protect_audit_log(engine)
    return sorted(t for t in after - before if not t.startswith(SEARCH_TABLE))


def _add_new_columns(engine: Engine, existing: set[str]) -> None:
    """Add to the ``existing`` tables (made before this run) the nullable columns defined
    since (``ALTER TABLE ... ADD COLUMN``; idempotent). A column that may not be null
    needs a migration of its own and is left alone."""
    found = inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not column.nullable or column.primary_key:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
                )


#: The taxonomy's columns that older databases created with a CHECK: (table, column, constraint).
_TAXONOMY_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("cases", "source", "ck_cases_case_source"),
    ("cases", "category", "ck_cases_category"),
    ("cases", "severity", "ck_cases_severity"),
    ("annotations", "category", "ck_annotations_category"),
)


def _free_taxonomy_columns(engine: Engine, existing: set[str]) -> None:
    """On PostgreSQL, drop the ``CHECK`` an older database has on the taxonomy's columns and
    widen them to :data:`TAXONOMY_LENGTH` (idempotent). SQLite cannot drop a constraint:
    an older SQLite database keeps it (see the module docstring)."""
    if engine.dialect.name != "postgresql":
        return
    found = inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    for table, column, check in _TAXONOMY_CHECKS:
        if table not in existing:
            continue
        length = next(
            (
                getattr(c["type"], "length", None)
                for c in found.get_columns(table)
                if c["name"] == column
            ),
            None,
        )
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {check}")
            if length is not None and length < TAXONOMY_LENGTH:
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} "
                    f"TYPE VARCHAR({TAXONOMY_LENGTH})"
                )


def _rebuild_checked_sqlite_tables(engine: Engine, existing: set[str]) -> None:
    """On SQLite, rebuild a table an older database made with a ``CHECK`` on the taxonomy's
    columns, as SQLite's documentation says to change a table's schema: with foreign keys
    off, in one transaction, create the table as the models define it now, copy the rows
    (ids kept), drop the old one, rename the new one, make its indexes and triggers again
    and check every foreign key before committing. Idempotent; a failure leaves the
    database as it was."""
    if engine.dialect.name != "sqlite":
        return
    checks: dict[str, list[str]] = {}
    for table, _column, check in _TAXONOMY_CHECKS:
        checks.setdefault(table, []).append(check)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        for table, names in checks.items():
            if table not in existing:
                continue
            row = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if row is None or not any(f"CONSTRAINT {n} CHECK" in row[0] for n in names):
                continue
            _rebuild_sqlite_table(conn, Base.metadata.tables[table])
    finally:
        raw.close()


def _rebuild_sqlite_table(conn: Any, table: Table) -> None:
    name, fresh = table.name, f"{table.name}__rebuilt"
    before = conn.isolation_level
    conn.isolation_level = None  # the transaction is managed here
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            kept = conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', "
                "'trigger') AND sql IS NOT NULL",
                (name,),
            ).fetchall()
            ddl = str(CreateTable(table).compile(dialect=sqlite.dialect()))
            conn.execute(ddl.replace(f"CREATE TABLE {name} (", f'CREATE TABLE "{fresh}" (', 1))
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')}
            columns = ", ".join(f'"{c.name}"' for c in table.columns if c.name in have)
            conn.execute(f'INSERT INTO "{fresh}" ({columns}) SELECT {columns} FROM "{name}"')
            conn.execute(f'DROP TABLE "{name}"')
            conn.execute(f'ALTER TABLE "{fresh}" RENAME TO "{name}"')
            for (sql,) in kept:
                conn.execute(sql)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"rebuilding {name} would break {len(broken)} foreign keys")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.isolation_level = before


#: SQLite's full-text index of case descriptions (FTS5, external content: the text
#: stays in ``cases``; triggers keep the index in step with every insert, update, delete).
SEARCH_TABLE = "cases_fts"
#: PostgreSQL's full-text index: a GIN index over the English ``tsvector`` of the text.
_PG_SEARCH_INDEX = "ix_cases_description_fts"
_SQLITE_SEARCH_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5(description, "
    "content='cases', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_ai AFTER INSERT ON cases BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, description) VALUES (new.id, new.description); END",
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_ad AFTER DELETE ON cases BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, description) "
    "VALUES ('delete', old.id, old.description); END",
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_au AFTER UPDATE OF description ON cases "
    f"BEGIN INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, description) "
    "VALUES ('delete', old.id, old.description); "
    f"INSERT INTO {SEARCH_TABLE}(rowid, description) VALUES (new.id, new.description); END",
)


_AUDIT_GUARD = "audit_log is append-only"


def _protect_audit_log(engine: Engine) -> None:
    """Make the database itself refuse to change or delete audit rows (idempotent)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} "
                    f"ON audit_log BEGIN SELECT RAISE(ABORT, '{_AUDIT_GUARD}'); END"
                )
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_AUDIT_GUARD}'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE "
                "OR TRUNCATE ON audit_log FOR EACH STATEMENT "
                "EXECUTE FUNCTION audit_log_append_only()"
            )


def build_search_index(engine: Engine) -> bool:
    """Create the full-text index of case descriptions if it is missing; idempotent.

    SQLite: an FTS5 table kept in step by triggers, filled from the existing cases when
    it is new. PostgreSQL: a GIN index on ``to_tsvector('english', description)``.
    Other databases search with ``LIKE`` and need nothing. Returns True when it built one.
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_TABLE,)
            ).first()
            for ddl in _SQLITE_SEARCH_DDL:
                conn.exec_driver_sql(ddl)
            if not exists:
                conn.exec_driver_sql(
                    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')"
                )
        return not exists
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_indexes WHERE indexname = %s", (_PG_SEARCH_INDEX,)
            ).first()
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {_PG_SEARCH_INDEX} ON cases "
                "USING gin (to_tsvector('english', description))"
            )
        return not exists
    return False


def drop_search_index(engine: Engine) -> None:
    """Drop the full-text index and its triggers (before a bulk load; rebuild after)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for suffix in ("ai", "ad", "au"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_{suffix}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_PG_SEARCH_INDEX}")
