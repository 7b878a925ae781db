"""Who is told what, and how: subscriptions, the rules that match them, and the queueing.

A subscription (:class:`analytics.core.models.Subscription`) names a channel (a
Slack-compatible webhook, a signed webhook, an email address), what it wants
(:data:`WHATS`: ``anomalies``, ``emerging``, ``rings``, ``escalations``, ``digest``),
the least severity and the direction it cares about, optional slice filters, the role
its messages are written for (:mod:`analytics.alerts.messages`), and whether it is told
of each incident at once or grouped every ``digest_hours``.

The database never holds a channel's secret: :func:`add` writes a webhook's URL to the
secrets file (:func:`analytics.alerts.secrets.store`, under the subscription's name) and
keeps only its reference; an ``env:NAME`` target is kept as that reference. A signed
webhook gets a signing key, generated here and stored next to its URL
(``NAME_signing``, :func:`analytics.alerts.secrets.signing_ref`); :func:`add` returns
it once, for the receiver.

Slice filters are ``dimension=value`` items (``category=spam,region=FL``): an incident
matches when, for every dimension named, its slice fixes that dimension to one of the
values named (``category=spam`` matches ``category=spam`` and
``category=spam|region=FL``, not ``region=FL``).
"""

from __future__ import annotations

import re
import secrets as random_secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from analytics.access.audit import utc_now, write_audit
from analytics.access.roles import AccessDenied, Viewer, allowed, role_of
from analytics.alerts import messages, secrets
from analytics.core.models import ChannelKind, Role, StoredIncident, Subscription
from analytics.core.slices import parse_slice

__all__ = [
    "DIMENSIONS",
    "DIRECTIONS",
    "SEVERITIES",
    "WHATS",
    "Added",
    "SubscriptionError",
    "add",
    "enqueue_digests",
    "enqueue_for",
    "get",
    "list_subscriptions",
    "matches",
    "parse_slices",
    "remove",
    "test",
]

#: What a subscription can ask for.
WHATS: tuple[str, ...] = ("anomalies", "emerging", "rings", "escalations", "digest")
#: What the product role may ask for: rings are case work, escalations carry an
#: associate's own words about cases.
_PRODUCT_WHATS = frozenset({"anomalies", "emerging", "digest"})
#: Severities, least first.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")
#: The dimensions a slice filter may name (those the anomaly scan slices by).
DIMENSIONS: tuple[str, ...] = ("category", "region", "platform", "source", "specialty", "kind")
#: The longest digest interval (a week).
_MOST_DIGEST_HOURS = 24 * 7
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
_ADDRESS = re.compile(r"[^@\s,;<>\"']+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_ENV = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
#: The command line acts as this role in the audit log.
_COMMAND_LINE = Viewer("command line", Role.admin, via="cli")


class SubscriptionError(ValueError):
    """A subscription that cannot be added, found or tested; one line, no secret."""


@dataclass(frozen=True)
class Added:
    """What :func:`add` made: the subscription's row (as :func:`get` reads it) and, for a
    signed webhook whose key Lookout generated, that key (shown once, for the receiver;
    None otherwise)."""

    row: dict[str, Any]
    signing_key: str | None = None
    signing_ref: str | None = None


# --------------------------------------------------------------------------- validation


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise SubscriptionError(
            f"a subscription's name is 1 to 48 letters, digits, '.', '_' or '-' (starting "
            f"with a letter or digit), not {name[:40]!r}"
        )
    return name


def _check_what(what: Iterable[str] | str) -> list[str]:
    items = [w.strip() for w in ([what] if isinstance(what, str) else what)]
    items = [w for part in items for w in part.split(",") if w.strip()]
    unknown = [w for w in items if w not in WHATS]
    if unknown:
        raise SubscriptionError(f"unknown --what {unknown[0][:40]!r}: choose {', '.join(WHATS)}")
    if not items:
        raise SubscriptionError(f"say what to send (--what): {', '.join(WHATS)}")
    return sorted(set(items), key=WHATS.index)


def _check_choice(value: str, options: tuple[str, ...], label: str) -> str:
    if value not in options:
        raise SubscriptionError(f"unknown {label} {value[:40]!r}: choose {', '.join(options)}")
    return value


#: The pseudo-dimension of slice filters that picks what was scanned: case volume,
#: event volume, or the automated detections (whose falls alert).
SERIES = "series"
SERIES_VALUES = ("cases", "events", "detections")


def parse_slices(text: str | None) -> dict[str, set[str]]:
    """Slice filters (``category=spam,region=FL``) as the values allowed per dimension.

    >>> parse_slices("category=spam, category=fraud,region=FL") == {
    ...     "category": {"fraud", "spam"}, "region": {"FL"}}
    True
    >>> parse_slices(None)
    {}
    >>> parse_slices("series=detections")  # what was scanned: cases, events, detections
    {'series': {'detections'}}
    >>> parse_slices("colour=red")
    Traceback (most recent call last):
    ...
    analytics.alerts.subscriptions.SubscriptionError: unknown slice dimension 'colour' in 'colour=red': choose category, region, platform, source, specialty, kind
    """  # noqa: E501
    wanted: dict[str, set[str]] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        dim, sep, value = part.partition("=")
        dim, value = dim.strip(), value.strip()
        if not sep or not value:
            raise SubscriptionError(f"a slice filter is dimension=value, not {part[:40]!r}")
        if dim == SERIES:
            if value not in SERIES_VALUES:
                raise SubscriptionError(
                    f"series is one of {', '.join(SERIES_VALUES)}, not {value[:40]!r}"
                )
        elif dim not in DIMENSIONS:
            raise SubscriptionError(
                f"unknown slice dimension {dim[:40]!r} in {part[:40]!r}: "
                f"choose {', '.join(DIMENSIONS)}"
            )
        wanted.setdefault(dim, set()).add(value)
    return wanted


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriptionError(
            f"unknown time zone {name[:40]!r} (an IANA name such as Europe/Paris)"
        ) from None
    return name


def _check_digest(hours: int | None) -> int | None:
    if hours is not None and not 1 <= hours <= _MOST_DIGEST_HOURS:
        raise SubscriptionError(f"--digest-hours is 1 to {_MOST_DIGEST_HOURS}, not {hours}")
    return hours


def _target(
    name: str, channel: ChannelKind, target: str
) -> tuple[str | None, str | None, str | None]:
    """Where the channel's secret will live: (URL to store, secret reference, address)."""
    target = (target or "").strip()
    if channel == ChannelKind.email:
        if not _ADDRESS.fullmatch(target) or len(target) > 320:
            raise SubscriptionError(f"not an email address: {target[:60]!r}")
        return None, None, target
    if _ENV.fullmatch(target):
        return None, target, None
    if target.lower().startswith(("http://", "https://")) and _URL.fullmatch(target):
        return target, f"secrets:{name}", None
    # Never echo what may be a secret in full: its scheme is enough to say what is wrong.
    shown = target.split(":", 1)[0][:12] if ":" in target else "a bare value"
    raise SubscriptionError(
        f"a {channel.value} target is an http(s) URL or env:NAME, not {shown!r}..."
        if ":" in target
        else f"a {channel.value} target is an http(s) URL or env:NAME, not {shown}"
    )


def _by(by: Viewer | str | None) -> Viewer:
    """Who acts: a viewer (the Admin page; must hold ``subscribe``) or a name given on the
    command line (recorded as an admin acting there)."""
    if by is None:
        return _COMMAND_LINE
    if isinstance(by, Viewer):
        if not allowed(by.role, "subscribe"):
            raise AccessDenied(f"the {by.role.value} role may not manage subscriptions")
        return by
    return Viewer(f"{by[:40]} (command line)", Role.admin, via="cli")


# --------------------------------------------------------------------------- add, list, remove


_PUBLIC = (
    "id", "name", "channel", "secret_ref", "address", "what", "min_severity", "direction",
    "role", "slices", "digest_hours", "timezone", "last_digest_at", "active", "created_by",
    "created_at",
)  # fmt: skip


def _row(values: Iterable[Any]) -> dict[str, Any]:
    row = dict(zip(_PUBLIC, values, strict=True))
    for key in ("channel", "role"):
        row[key] = str(getattr(row[key], "value", row[key]))
    return row


def get(conn: Connection | Engine, name: str) -> dict[str, Any]:
    """The subscription called ``name`` (its columns; a secret's reference, never the
    secret); :class:`SubscriptionError` when there is none."""
    stmt = select(*[getattr(Subscription, c) for c in _PUBLIC]).where(Subscription.name == name)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            found = c.execute(stmt).first()
    else:
        found = conn.execute(stmt).first()
    if found is None:
        raise SubscriptionError(f"no subscription {name[:64]!r}")
    return _row(found)


def add(
    engine: Engine,
    *,
    name: str,
    channel: ChannelKind | str,
    target: str,
    what: Iterable[str] | str = ("anomalies",),
    min_severity: str = "low",
    direction: str = "both",
    role: Role | str,
    slices: str | None = None,
    digest_hours: int | None = None,
    timezone: str = "UTC",
    created_by: Viewer | str | None = None,
    now: datetime | None = None,
) -> Added:
    """Add a subscription, its secret to the secrets file, and an audit row
    (``subscription_add``); :class:`SubscriptionError` with a one-line reason for bad
    input (nothing is written then).

    ``target`` is a URL (a slack or webhook channel; stored in the secrets file under
    ``name``), an ``env:NAME`` reference (kept as it is), or an email address (an email
    channel). A webhook whose URL Lookout stores gets a generated signing key, returned
    once in :class:`Added`; one whose URL is ``env:NAME`` signs with ``NAME_SIGNING``
    from the environment, generated here too for the operator to set.
    """
    name = _check_name(name)
    try:
        kind = ChannelKind(channel)
    except ValueError:
        raise SubscriptionError(
            f"unknown channel {str(channel)[:40]!r}: choose slack, webhook or email"
        ) from None
    try:
        who_for = role_of(role)
    except ValueError as exc:
        raise SubscriptionError(str(exc)) from None
    wants = _check_what(what)
    if who_for == Role.product and not set(wants) <= _PRODUCT_WHATS:
        refused = next(w for w in wants if w not in _PRODUCT_WHATS)
        raise SubscriptionError(
            f"the product role may not receive {refused}: only what the product brief shows "
            f"({', '.join(sorted(_PRODUCT_WHATS))})"
        )
    _check_choice(min_severity, SEVERITIES, "severity")
    _check_choice(direction, DIRECTIONS, "direction")
    parse_slices(slices)
    _check_timezone(timezone)
    _check_digest(digest_hours)
    url, ref, address = _target(name, kind, target)
    viewer = _by(created_by)
    moment = now or utc_now()
    signing_key: str | None = None
    signing_at: str | None = None
    values = {
        "name": name,
        "channel": kind,
        "secret_ref": ref,
        "address": address,
        "what": ",".join(wants),
        "min_severity": min_severity,
        "direction": direction,
        "role": who_for,
        "slices": ",".join(
            f"{d}={v}" for d, vs in sorted(parse_slices(slices).items()) for v in sorted(vs)
        )
        or None,
        "digest_hours": digest_hours,
        "timezone": timezone,
        "last_digest_at": None,
        "active": True,
        "created_by": viewer.name[:200],
        "created_at": moment,
    }
    stored: list[str] = []
    try:
        with engine.begin() as conn:
            if conn.execute(select(Subscription.id).where(Subscription.name == name)).first():
                raise SubscriptionError(f"a subscription {name!r} exists already")
            # The row first: a second add of the same name waits on it (or fails) before
            # touching the secrets file; the secrets are written before the commit.
            conn.execute(insert(Subscription).values(**values))
            write_audit(
                conn,
                viewer.name,
                viewer.role,
                "subscription_add",
                name,
                {"channel": kind.value, "what": values["what"], "role": who_for.value},
                moment,
            )
            if url is not None:
                secrets.store(name, url)
                stored.append(name)
            if kind == ChannelKind.webhook and ref is not None:
                signing_key = random_secrets.token_hex(32)
                signing_at = secrets.signing_ref(ref)
                if ref.startswith("secrets:"):
                    secrets.store(signing_at.removeprefix("secrets:"), signing_key)
                    stored.append(signing_at.removeprefix("secrets:"))
    except IntegrityError:
        _forget(stored)
        raise SubscriptionError(f"a subscription {name!r} exists already") from None
    except BaseException:
        _forget(stored)
        raise
    return Added(get(engine, name), signing_key, signing_at)


def _forget(names: Iterable[str]) -> None:
    for stored in names:
        secrets.forget(stored)


def list_subscriptions(engine: Engine) -> pl.DataFrame:
    """Every subscription, by name: its columns, with ``secret_ref`` (where its secret
    lives, never the secret) and ``address`` for email."""
    stmt = select(*[getattr(Subscription, c) for c in _PUBLIC]).order_by(Subscription.name)
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt).all()]
    schema: dict[str, Any] = {
        "id": pl.Int64, "name": pl.String, "channel": pl.String, "secret_ref": pl.String,
        "address": pl.String, "what": pl.String, "min_severity": pl.String,
        "direction": pl.String, "role": pl.String, "slices": pl.String,
        "digest_hours": pl.Int64, "timezone": pl.String, "last_digest_at": pl.Datetime("us"),
        "active": pl.Boolean, "created_by": pl.String, "created_at": pl.Datetime("us"),
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def remove(engine: Engine, name: str, *, by: Viewer | str | None = None) -> None:
    """Remove a subscription (its deliveries stay in the outbox's history only while
    they exist: the rows still queued for it are deleted with it), its secrets from the
    secrets file, and audit it (``subscription_remove``)."""
    from analytics.core.models import Delivery

    viewer = _by(by)
    moment = utc_now()
    with engine.begin() as conn:
        row = get(conn, name)
        conn.execute(delete(Delivery).where(Delivery.subscription_id == row["id"]))
        conn.execute(delete(Subscription).where(Subscription.id == row["id"]))
        write_audit(conn, viewer.name, viewer.role, "subscription_remove", name, None, moment)
    ref = row["secret_ref"] or ""
    if ref == f"secrets:{name}":
        _forget([name, secrets.signing_ref(ref).removeprefix("secrets:")])


# --------------------------------------------------------------------------- matching


def _field(sub: Any, name: str) -> Any:
    value = sub.get(name) if isinstance(sub, Mapping) else getattr(sub, name)
    return getattr(value, "value", value)


def matches(sub: Any, incident: Mapping[str, Any]) -> bool:
    """Whether subscription ``sub`` (a row, a mapping or a
    :class:`~analytics.core.models.Subscription`) wants to hear of ``incident`` (a
    stored incident): it asks for ``anomalies``, the incident is at least its least
    severity, in its direction, and within its slice filters; a product subscription
    only of incidents it may be told of (:func:`analytics.alerts.messages.product_may_see`).

    >>> sub = {"what": "anomalies", "min_severity": "medium", "direction": "up",
    ...        "slices": "category=spam", "role": "leadership"}
    >>> inc = {"severity": "high", "direction": "up", "slice": "category=spam|region=FL",
    ...        "peak_value": 40.0}
    >>> matches(sub, inc), matches(sub, {**inc, "severity": "low"})
    (True, False)
    >>> matches(sub, {**inc, "slice": "region=FL"}), matches(sub, {**inc, "direction": "down"})
    (False, False)
    >>> broken = {**sub, "slices": "series=detections", "direction": "both"}
    >>> matches(broken, {**inc, "source": "detections"})
    True
    >>> matches(broken, {**inc, "source": "cases"})
    False
    """
    if "anomalies" not in str(_field(sub, "what") or "").split(","):
        return False
    least = SEVERITIES.index(str(_field(sub, "min_severity") or "low"))
    severity = str(incident.get("severity") or "low")
    if severity not in SEVERITIES or SEVERITIES.index(severity) < least:
        return False
    wanted = str(_field(sub, "direction") or "both")
    if wanted != "both" and incident.get("direction") != wanted:
        return False
    if not allowed(str(_field(sub, "role")), "aggregates") and not messages.product_may_see(
        incident
    ):
        return False
    filters = parse_slices(_field(sub, "slices"))
    series = filters.pop(SERIES, None)
    if series is not None and str(incident.get("source") or "cases") not in series:
        return False
    if filters:
        key = str(incident.get("slice_key") or incident.get("slice") or "all")
        try:
            values = parse_slice(key)
        except ValueError:
            return False
        if any(values.get(dim) not in allowed_values for dim, allowed_values in filters.items()):
            return False
    return True


def _active(conn: Connection) -> list[dict[str, Any]]:
    stmt = (
        select(*[getattr(Subscription, c) for c in _PUBLIC])
        .where(Subscription.active.is_(True))
        .order_by(Subscription.id)
    )
    return [_row(r) for r in conn.execute(stmt).all()]


def _incidents(conn: Connection, *where: Any) -> list[dict[str, Any]]:
    """Stored incidents (every column, ``state`` as text), by id."""
    stmt = select(*StoredIncident.__table__.columns).where(*where).order_by(StoredIncident.id)
    rows = [dict(r._mapping) for r in conn.execute(stmt).all()]
    for row in rows:
        row["state"] = str(getattr(row["state"], "value", row["state"]))
    return rows


def _incident(conn: Connection, incident_id: int) -> dict[str, Any]:
    found = _incidents(conn, StoredIncident.id == incident_id)
    if not found:
        raise SubscriptionError(f"no stored incident {incident_id}")
    return found[0]


def enqueue_for(conn: Connection, change: Any, *, now: datetime, base_url: str) -> int:
    """Queue a message about one change of :func:`analytics.alerts.incidents.sync`
    (``kind``: opened, reopened or unsnoozed; ``id``: the stored incident) for every
    active subscription that :func:`matches` it and is told at once (digest
    subscriptions hear of it in their next digest); in ``conn``'s transaction, so the
    message is queued exactly when the change is stored. Each message is written for the
    subscription's role, keyed ``incident:{id}:{kind}:v{version}:{episode start}:
    {subscription}`` (queued once, whatever the reruns; each return of the incident
    bumps its version, so a second reopening is told too). Returns how many were queued."""
    from analytics.alerts import outbox

    kind = str(change.kind)
    if kind not in ("opened", "reopened", "unsnoozed"):
        return 0
    incident = _incident(conn, int(change.id))
    queued = 0
    for sub in _active(conn):
        if sub["digest_hours"] is not None or not matches(sub, incident):
            continue
        message = messages.incident_message(
            incident, role=sub["role"], base_url=base_url, change=kind
        )
        key = (
            f"incident:{incident['id']}:{kind}:v{incident['version']}:"
            f"{incident['start']:%Y-%m-%dT%H:%M}:{sub['id']}"
        )
        queued += outbox.enqueue(conn, subscription_id=sub["id"], key=key, message=message, now=now)
    return queued


def enqueue_digests(conn: Connection, *, now: datetime, base_url: str = "") -> int:
    """Queue the digest of every active digest subscription that is due (its last digest
    ``digest_hours`` or more before ``now``; the first one ``digest_hours`` after it was
    added): one message grouping the incidents it :func:`matches` that were opened,
    opened again or out of their snooze since its last digest (``told_at``; ``first_seen``
    for rows stored before that column), each once. None of them: nothing is sent, and the
    next digest still covers the time since the last one sent. Returns how many digests
    were queued."""
    from analytics.alerts import outbox

    queued = 0
    for sub in _active(conn):
        hours = sub["digest_hours"]
        if hours is None:
            continue
        since = sub["last_digest_at"] or sub["created_at"]
        if since + timedelta(hours=hours) > now:
            continue
        told = func.coalesce(StoredIncident.told_at, StoredIncident.first_seen)
        found = _incidents(conn, told > since, told <= now)
        mine = [r for r in found if matches(sub, r)]
        if not mine:
            continue
        message = messages.digest_message(
            mine,
            role=sub["role"],
            base_url=base_url,
            since=since,
            now=now,
            timezone=sub["timezone"] or "UTC",
        )
        key = f"digest:{sub['id']}:{since:%Y-%m-%dT%H:%M:%S}"
        queued += outbox.enqueue(conn, subscription_id=sub["id"], key=key, message=message, now=now)
        conn.execute(
            update(Subscription).where(Subscription.id == sub["id"]).values(last_digest_at=now)
        )
    return queued


def test(
    engine: Engine, name: str, *, base_url: str, now: datetime | None = None, timeout_s: float = 10
) -> None:
    """Send a test message to the subscription ``name`` now (queued in the outbox, then
    delivered by :func:`analytics.alerts.outbox.deliver_pending`); raise
    :class:`SubscriptionError` with the channel's one-line reason when it was not
    delivered (the test is tried once, then marked failed, never retried later). The
    same delivery run sends whatever else is due in the outbox, as ``watch`` would."""
    from analytics.alerts import outbox
    from analytics.core.models import Delivery, DeliveryState

    moment = now or utc_now()
    message = messages.test_message(name, link=base_url.rstrip("/") or None)
    with engine.begin() as conn:
        sub = get(conn, name)
        key = f"test:{sub['id']}:{moment:%Y-%m-%dT%H:%M:%S.%f}"
        outbox.enqueue(conn, subscription_id=sub["id"], key=key, message=message, now=moment)
    outbox.deliver_pending(engine, now=moment, timeout_s=timeout_s)
    with engine.begin() as conn:
        state, error = conn.execute(
            select(Delivery.state, Delivery.last_error).where(Delivery.idempotency_key == key)
        ).one()
        # A test is tried once: not left to be retried (and arrive, unexplained) later.
        conn.execute(
            update(Delivery)
            .where(Delivery.idempotency_key == key, Delivery.state == DeliveryState.pending)
            .values(state=DeliveryState.failed)
        )
    if DeliveryState(state) != DeliveryState.sent:
        raise SubscriptionError(
            f"the test message to {name!r} was not delivered: {error or 'no reason given'}"
        )


test.__test__ = False  # type: ignore[attr-defined]  # a command, not a pytest test
