"""The outbox: messages queued with the change that caused them, sent with retries.

Never lose, never repeat:

- :func:`enqueue` inserts a ``pending`` row in the caller's transaction (the same one
  as the incident change), keyed by an idempotency key that is unique: queueing the
  same change twice queues it once.
- :func:`deliver_pending` claims each due row with one conditional ``UPDATE`` (a
  ``pending`` row whose ``next_attempt_at`` has come, or a ``sending`` row whose lease
  has run out because the process sending it died), so two runs at once never send the
  same row; then sends it (:func:`analytics.alerts.channels.send`, with the key) and
  marks it ``sent``, ``pending`` again after a backoff (30 s, 60 s, ... capped at 1 h;
  no jitter, so tests can move ``now`` past it), or ``failed`` after ``max_attempts`` or
  an error that a retry cannot fix. ``last_error`` keeps the one-line reason.

A process killed after the receiver accepted a message but before the row was marked
``sent`` sends it again once the lease runs out: the key travels with it
(``X-Lookout-Idempotency-Key``, the email's ``Message-ID``) so the receiver drops the
repeat. Keep ``lease_s`` well above the time one send may take (``timeout_s`` per step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from analytics.alerts import channels
from analytics.alerts.message import Message
from analytics.core.models import Delivery, DeliveryState, Subscription

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "DeliveryReport",
    "backoff",
    "deliver_pending",
    "enqueue",
    "failures",
    "retry",
]

_log = logging.getLogger(__name__)

#: The first retry waits this long; each next one twice as long ...
BACKOFF_BASE_S = 30.0
#: ... but never longer than this.
BACKOFF_CAP_S = 3600.0
_ERROR_CHARS = 400  # the width of outbox.last_error


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver_pending` run did: messages ``sent``, put back for a later
    attempt (``retrying``), and given up on (``failed``)."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def summary(self) -> str:
        """One line.

        >>> DeliveryReport(sent=2, retrying=1).summary()
        '2 sent, 1 to retry, 0 failed'
        """
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt.

    >>> [backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)]
    [30.0, 60.0, 120.0, 3600.0, 3600.0]
    """
    exponent = max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(BACKOFF_BASE_S * 2**exponent, BACKOFF_CAP_S))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def enqueue(
    conn: Connection, *, subscription_id: int, key: str, message: Message, now: datetime
) -> bool:
    """Queue ``message`` for the subscription in ``conn``'s transaction; False (and
    nothing queued) when ``key`` is already in the outbox, whatever its state."""
    values = {
        "idempotency_key": key,
        "subscription_id": subscription_id,
        "kind": message.kind,
        "subject": message.subject[:400],
        "payload": message.to_json(),
        "state": DeliveryState.pending,
        "attempts": 0,
        "next_attempt_at": _naive(now),
        "created_at": _naive(now),
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(Delivery).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return conn.execute(stmt.returning(Delivery.id)).first() is not None


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Delivery.state == DeliveryState.pending, Delivery.next_attempt_at <= now),
        and_(Delivery.state == DeliveryState.sending, Delivery.leased_until < now),
    )


def _claim(engine: Engine, row_id: int, *, now: datetime, lease_s: float) -> int | None:
    """Take the row for this run; its attempt number, or None when another run has it."""
    with engine.begin() as conn:
        taken = conn.execute(
            update(Delivery)
            .where(Delivery.id == row_id, _due(now))
            .values(
                state=DeliveryState.sending,
                leased_until=now + timedelta(seconds=lease_s),
                attempts=Delivery.attempts + 1,
            )
        ).rowcount
        if taken != 1:
            return None
        return int(
            conn.execute(select(Delivery.attempts).where(Delivery.id == row_id)).scalar_one()
        )


def _finish(engine: Engine, row_id: int, attempt: int, **values: object) -> bool:
    """Record a failed ``attempt`` unless another run took the row meanwhile (its lease
    ran out): that run's outcome is the one kept."""
    with engine.begin() as conn:
        done = conn.execute(
            update(Delivery)
            .where(
                Delivery.id == row_id,
                Delivery.attempts == attempt,
                Delivery.state == DeliveryState.sending,
            )
            .values(leased_until=None, **values)
        ).rowcount
    return bool(done == 1)


def _mark_sent(engine: Engine, row_id: int, *, now: datetime) -> None:
    """A delivered message is sent, whatever another run did with it meanwhile."""
    with engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(Delivery.id == row_id, Delivery.state != DeliveryState.sent)
            .values(state=DeliveryState.sent, sent_at=now, leased_until=None, last_error=None)
        )


def _attempt(delivery: Delivery, sub: Subscription | None, *, timeout_s: float) -> None:
    if sub is None:
        raise channels.DeliveryError("its subscription no longer exists", False)
    if not sub.active:
        raise channels.DeliveryError(f"subscription {sub.name!r} is inactive", False)
    try:
        message = Message.from_json(delivery.payload)
    except (ValueError, KeyError, TypeError):
        raise channels.DeliveryError("its stored message is not readable", False) from None
    channels.send(sub, message, key=delivery.idempotency_key, timeout_s=timeout_s)


def deliver_pending(
    engine: Engine,
    *,
    now: datetime | None = None,
    timeout_s: float = 10.0,
    lease_s: float = 60.0,
    limit: int = 100,
    max_attempts: int = 8,
) -> DeliveryReport:
    """Send the messages that are due (at most ``limit``), each under a lease of
    ``lease_s`` seconds, each network step waiting at most ``timeout_s``.

    ``now`` (naive UTC; default: the clock at each step) decides what is due, the
    leases and the next attempts, so tests can move time instead of waiting. A row
    is tried at most ``max_attempts`` times, a crash during an attempt counting as one.
    """
    if lease_s <= timeout_s:
        raise ValueError("lease_s must be longer than timeout_s")
    if max_attempts < 1 or limit < 1:
        raise ValueError("max_attempts and limit are at least 1")

    def clock() -> datetime:
        return _naive(now) if now is not None else _utcnow()

    with engine.connect() as conn:
        due = (
            conn.execute(
                select(Delivery.id)
                .where(_due(clock()))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    sent = retrying = failed = 0
    for row_id in due:
        attempt = _claim(engine, row_id, now=clock(), lease_s=lease_s)
        if attempt is None:
            continue  # another run took it
        with Session(engine) as session:
            delivery = session.get_one(Delivery, row_id)
            sub = session.get(Subscription, delivery.subscription_id)
        where = f"outbox row {row_id} ({delivery.kind}, attempt {attempt})"
        try:
            _attempt(delivery, sub, timeout_s=timeout_s)
        except channels.DeliveryError as exc:
            reason = " ".join(exc.reason.split())[:_ERROR_CHARS]
            again = exc.retryable and attempt < max_attempts
            values: dict[str, object] = {"last_error": reason}
            if again:
                values |= {
                    "state": DeliveryState.pending,
                    "next_attempt_at": clock() + backoff(attempt),
                }
            else:
                values |= {"state": DeliveryState.failed}
            if _finish(engine, row_id, attempt, **values):
                retrying += again
                failed += not again
                _log.warning("%s %s: %s", where, "will retry" if again else "failed", reason)
        except Exception as exc:  # noqa: BLE001 - a bug in a channel must not stop the run
            reason = f"unexpected {type(exc).__name__} while sending"
            if _finish(
                engine,
                row_id,
                attempt,
                last_error=reason,
                state=DeliveryState.pending if attempt < max_attempts else DeliveryState.failed,
                next_attempt_at=clock() + backoff(attempt),
            ):
                retrying += attempt < max_attempts
                failed += attempt >= max_attempts
                _log.warning("%s: %s", where, reason)
        else:
            _mark_sent(engine, row_id, now=clock())
            sent += 1
            _log.info("%s sent", where)
    return DeliveryReport(sent=sent, retrying=retrying, failed=failed)


def retry(engine: Engine, delivery_id: int, *, now: datetime | None = None) -> bool:
    """Put a failed message back in the queue (attempts from zero); whether it was failed."""
    moment = _naive(now) if now is not None else _utcnow()
    with engine.begin() as conn:
        done = conn.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.failed)
            .values(state=DeliveryState.pending, attempts=0, next_attempt_at=moment)
        ).rowcount
    return bool(done == 1)


_FAILURES_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.Int64,
    "subscription": pl.String,
    "channel": pl.String,
    "subject": pl.String,
    "state": pl.String,
    "attempts": pl.Int64,
    "last_error": pl.String,
    "next_attempt_at": pl.Datetime("us"),
    "created_at": pl.Datetime("us"),
}


def failures(engine: Engine) -> pl.DataFrame:
    """The messages given up on (``failed``) or waiting for a retry after an error
    (``pending`` with a ``last_error``), newest first, for the Admin page: the
    subscription's name and channel, the subject, attempts and the last error (never a
    secret: channels write none there)."""
    stmt = (
        select(
            Delivery.id,
            Subscription.name,
            Subscription.channel,
            Delivery.subject,
            Delivery.state,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.next_attempt_at,
            Delivery.created_at,
        )
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(
            or_(
                Delivery.state == DeliveryState.failed,
                and_(Delivery.state == DeliveryState.pending, Delivery.last_error.is_not(None)),
            )
        )
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )
    with engine.connect() as conn:
        rows = [
            (r[0], r[1], str(r[2]), r[3], str(r[4]), r[5], r[6], r[7], r[8])
            for r in conn.execute(stmt).all()
        ]
    return pl.DataFrame(rows, schema=_FAILURES_SCHEMA, orient="row")
