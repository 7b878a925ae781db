"""One pass of ``python -m analytics watch``: score, store, queue, deliver.

:func:`run_once` scans the data as the Anomalies page does for its default focus week
(:func:`analytics.views.anomalies.current_incidents` over every slice, read to the
newest data), keeps the alerted incidents (:func:`analytics.alerts.incidents.sync`)
and queues a message for each incident that is new, back, or out of its snooze
(:func:`analytics.alerts.subscriptions.enqueue_for`) in ONE transaction, so a change
and its messages are stored together or not at all; then queues the digests that are
due, the week's emerging topics and growing rings and the weekly briefs
(:mod:`analytics.alerts.weekly`: each read only when a subscription asks for it, the
story once per pass) and sends what the outbox holds
(:func:`analytics.alerts.outbox.deliver_pending`, with retries and an idempotency key).
A second pass over the same data stores and sends nothing new.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import polars as pl
from sqlalchemy import Engine

from analytics.access.audit import utc_now
from analytics.alerts import incidents, outbox, subscriptions, weekly
from analytics.core.models import Role
from analytics.views import anomalies, overview, selection

__all__ = [
    "DEFAULT_BASE_URL",
    "WatchReport",
    "base_url",
    "parse_every",
    "run_once",
    "scan",
]

#: Where Lookout's pages are served, for the links in messages, unless
#: ``LOOKOUT_BASE_URL`` says otherwise (``make run`` serves on port 8501).
DEFAULT_BASE_URL = "http://localhost:8501"

_EVERY = re.compile(r"(\d+)\s*([smh])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class WatchReport:
    """What one pass did: the alerted incidents the scan found (``scanned``) up to
    ``through`` (the newest day read); incidents ``opened``, ``reopened``,
    ``unsnoozed`` and ``updated``; messages ``queued`` (incidents and digests); and what
    the outbox's run did (``sent``, ``retrying``, ``failed``)."""

    through: date | None = None
    scanned: int = 0
    opened: int = 0
    reopened: int = 0
    unsnoozed: int = 0
    updated: int = 0
    queued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        """Whether everything due was delivered (or nothing was due)."""
        return self.retrying == 0 and self.failed == 0

    def summary(self) -> str:
        """One line.

        >>> WatchReport(date(2026, 4, 30), scanned=3, opened=2, updated=1, queued=2,
        ...             sent=2).summary()
        'data to 2026-04-30: 3 alerted; 2 opened, 0 reopened, 0 unsnoozed, 1 updated; 2 queued; 2 sent, 0 to retry, 0 failed'
        """  # noqa: E501 - the doctest's output is one line
        through = f"data to {self.through.isoformat()}" if self.through else "no data"
        return (
            f"{through}: {self.scanned} alerted; {self.opened} opened, {self.reopened} "
            f"reopened, {self.unsnoozed} unsnoozed, {self.updated} updated; {self.queued} "
            f"queued; {self.sent} sent, {self.retrying} to retry, {self.failed} failed"
        )


def base_url() -> str:
    """The address of Lookout's pages for the links in messages: ``LOOKOUT_BASE_URL``,
    else :data:`DEFAULT_BASE_URL` (without a trailing slash)."""
    return (os.environ.get("LOOKOUT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def parse_every(text: str) -> timedelta:
    """The interval ``text`` says: a whole number of seconds, minutes or hours, or
    several (``1h30m``); ``ValueError`` with the expected form otherwise.

    >>> parse_every("15m"), parse_every("1h30m"), parse_every("30s")
    (datetime.timedelta(seconds=900), datetime.timedelta(seconds=5400), datetime.timedelta(seconds=30))
    >>> parse_every("soon")
    Traceback (most recent call last):
    ...
    ValueError: --every takes an interval such as 30s, 15m or 1h, not 'soon'
    """  # noqa: E501 - the doctest's output is one line
    cleaned = text.strip().lower()
    parts = _EVERY.findall(cleaned)
    if not cleaned or _EVERY.sub("", cleaned).strip() or not parts:
        raise ValueError(f"--every takes an interval such as 30s, 15m or 1h, not {text[:20]!r}")
    seconds = sum(int(n) * _UNIT_S[unit] for n, unit in parts)
    if seconds <= 0:
        raise ValueError("--every takes an interval longer than zero")
    return timedelta(seconds=seconds)


def scan(engine: Engine) -> tuple[pl.DataFrame, datetime | None]:
    """The incidents current in the default focus week, scanned as the Anomalies page
    scans them (read to the newest data, every slice, with the stored feedback), and
    the day after the newest data at midnight; an empty frame and None without data."""
    info = overview.dataset_overview(engine)
    span = selection.data_span(info)
    if span is None:
        return pl.DataFrame(), None
    newest = selection.newest_day(info)
    found = anomalies.current_incidents(
        engine, week=span.default_week, newest=newest, role=Role.admin
    )
    return found, datetime.combine(newest, time.min)


def run_once(
    engine: Engine,
    *,
    now: datetime | None = None,
    base_url: str,
    timeout_s: float = 10.0,
) -> WatchReport:
    """One pass: :func:`scan`, store the changes and queue their messages in one
    transaction with the digests due, the story's topics and rings and the weekly briefs
    due (:mod:`analytics.alerts.weekly`), and deliver (each network step waiting at most
    ``timeout_s``). ``now`` (naive UTC; default the clock) is when the pass happens:
    tests move it instead of waiting. Links in messages start with ``base_url``."""
    moment = now or utc_now()
    found, newest = scan(engine)
    subs = subscriptions.list_subscriptions(engine).filter(pl.col("active")).to_dicts()
    told = weekly.stories(engine, subs)  # read before the transaction: it takes a while
    due = weekly.briefs(engine, subs, now=moment)
    changes: list[incidents.Change] = []
    queued = 0
    with engine.begin() as conn:
        if newest is not None:
            changes = incidents.sync(conn, found, now=moment, newest=newest)
            for change in changes:
                if change.notify:
                    queued += subscriptions.enqueue_for(conn, change, now=moment, base_url=base_url)
        queued += subscriptions.enqueue_digests(conn, now=moment, base_url=base_url)
        queued += weekly.enqueue_stories(conn, subs, told, now=moment, base_url=base_url)
        queued += weekly.enqueue_briefs(conn, due, now=moment, base_url=base_url)
    delivered = outbox.deliver_pending(
        engine, now=now, timeout_s=timeout_s, lease_s=max(60.0, 3 * timeout_s)
    )
    kinds = [c.kind for c in changes]
    alerted = found.filter(pl.col("alerted")).height if "alerted" in found.columns else 0
    return WatchReport(
        through=None if newest is None else (newest - timedelta(days=1)).date(),
        scanned=alerted,
        opened=kinds.count("opened"),
        reopened=kinds.count("reopened"),
        unsnoozed=kinds.count("unsnoozed"),
        updated=kinds.count("updated"),
        queued=queued,
        sent=delivered.sent,
        retrying=delivered.retrying,
        failed=delivered.failed,
    )
