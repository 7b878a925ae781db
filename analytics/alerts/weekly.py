"""What the watch sends once a week: the story's emerging topics and growing rings, and
the weekly brief (issue 19, item 6).

**The story.** Subscriptions asking for ``emerging`` or ``rings`` get one message per
emerging topic or growing ring of the week's story
(:func:`analytics.reports.story.week_story`, the Overview page's, for the focus week the
pages open on: the newest complete week), keyed ``story:{week}:{item}:{subscription}``
so each item is told once per week whatever the passes. Product subscriptions get the
product's story (what the product brief shows, suppressed): its emerging-topics
sentence, never a ring. :func:`stories` computes each story at most once per pass, and
only when a subscription wants it.

**The brief.** Subscriptions asking for ``digest`` get the leadership brief (product
subscriptions: the product brief) of the last complete week, on Monday at 08:00 or
later in the subscription's time zone, once per week (``brief:{iso week}:{subscription}``):
its Headline (the same story as the Overview page, then the KPIs) and a link to it on
Reports (:func:`analytics.alerts.messages.brief_message`). The week is the one that
ended the Sunday before that Monday, or the newest complete week of the data when the
data is older. A subscription's first brief is the first Monday 08:00 after it was
added (a brief is not sent for a Monday that passed before it existed). A pass that
finds a brief already queued does not build it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from analytics.access import roles as access
from analytics.alerts import messages, outbox
from analytics.core.calendar import WEEK, iso_week
from analytics.core.models import Delivery, Role

if TYPE_CHECKING:
    from analytics.reports.model import Brief
    from analytics.reports.story import WeekStory

__all__ = [
    "BRIEF_AT",
    "STORY_KINDS",
    "Briefs",
    "brief_due",
    "briefs",
    "enqueue_briefs",
    "enqueue_stories",
    "stories",
]

#: The story items each ``what`` asks for.
STORY_KINDS: Mapping[str, str] = {"emerging": "topic", "rings": "ring"}
#: When a subscriber's weekly brief is due: Monday at this time, in their time zone.
BRIEF_AT = time(8, 0)


def _wants(sub: Mapping[str, Any]) -> set[str]:
    return {w.strip() for w in str(sub.get("what") or "").split(",") if w.strip()}


def _product(sub: Mapping[str, Any]) -> bool:
    return not access.allowed(str(sub["role"]), "aggregates")


def _audience(sub: Mapping[str, Any]) -> str:
    return "product" if _product(sub) else "leadership"


def _focus_week(engine: Engine) -> date | None:
    """The week the pages open on (the newest complete one); None without data."""
    from analytics.views import overview, selection

    span = selection.data_span(overview.dataset_overview(engine))
    return None if span is None else span.default_week


# --------------------------------------------------------------------------- the story


def stories(engine: Engine, subs: Sequence[Mapping[str, Any]]) -> dict[str, WeekStory]:
    """The week's story for each audience (``leadership``: every role that sees every
    number, links decided per role when sent; ``product``) that an active subscription
    asking for ``emerging`` or ``rings`` needs; empty when none does (nothing is read)."""
    needed = {_audience(s) for s in subs if s.get("active", True) and _wants(s) & set(STORY_KINDS)}
    if not needed:
        return {}
    week = _focus_week(engine)
    if week is None:
        return {}
    from analytics.reports.story import week_story

    role = {"leadership": Role.leadership, "product": Role.product}
    return {a: week_story(engine, week=week, role=role[a]) for a in sorted(needed)}


def enqueue_stories(
    conn: Connection,
    subs: Sequence[Mapping[str, Any]],
    told: Mapping[str, WeekStory],
    *,
    now: datetime,
    base_url: str,
) -> int:
    """Queue, for each active subscription asking for ``emerging`` or ``rings``, one
    message per topic or ring item of its audience's story (``told``, from
    :func:`stories`), keyed once per item, week and subscription; in ``conn``'s
    transaction. Returns how many were queued (a key already queued counts nothing)."""
    queued = 0
    for sub in subs:
        kinds = {STORY_KINDS[w] for w in _wants(sub) if w in STORY_KINDS}
        story = told.get(_audience(sub))
        if not sub.get("active", True) or not kinds or story is None:
            continue
        if _product(sub):
            kinds &= {"topic"}  # the product story's topics; a product team gets no ring
        week = iso_week(story.week)
        for item in story.items:
            if item.kind not in kinds:
                continue
            message = messages.story_message(
                item, role=str(sub["role"]), base_url=base_url, period=story.period
            )
            key = f"story:{week}:{messages.story_key(item)}:{sub['id']}"
            queued += outbox.enqueue(
                conn, subscription_id=int(sub["id"]), key=key, message=message, now=now
            )
    return queued


# --------------------------------------------------------------------------- the brief


def brief_due(now: datetime, timezone: str) -> datetime:
    """The latest Monday :data:`BRIEF_AT` in ``timezone`` at or before ``now`` (both
    naive UTC): when the brief of the week before it became due.

    >>> brief_due(datetime(2026, 5, 4, 12, 0), "America/New_York")  # Mon 08:00 EDT
    datetime.datetime(2026, 5, 4, 12, 0)
    >>> brief_due(datetime(2026, 5, 4, 11, 59), "America/New_York")  # 07:59: last week's
    datetime.datetime(2026, 4, 27, 12, 0)
    """
    zone = ZoneInfo(timezone)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    due = datetime.combine(monday, BRIEF_AT, zone)
    if local < due:
        due = datetime.combine(monday - WEEK, BRIEF_AT, zone)
    return due.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Briefs:
    """The briefs a pass sends: for each subscription due, its key and which brief
    (audience, week); and the briefs built, by (audience, week), with their HTML."""

    due: tuple[tuple[Mapping[str, Any], str, str, date], ...]
    built: Mapping[tuple[str, date], tuple[Brief, str]]


def _queued(engine: Engine, keys: Iterable[str]) -> set[str]:
    wanted = list(keys)
    if not wanted:
        return set()
    with engine.connect() as conn:
        found = conn.execute(
            select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(wanted))
        ).all()
    return {str(r[0]) for r in found}


def briefs(engine: Engine, subs: Sequence[Mapping[str, Any]], *, now: datetime) -> Briefs:
    """The weekly briefs due at ``now`` (naive UTC) for the active subscriptions asking
    for ``digest`` and not queued yet, each brief built once (the module's docstring
    says when a brief is due and of which week)."""
    asking = [s for s in subs if s.get("active", True) and "digest" in _wants(s)]
    if not asking:
        return Briefs((), {})
    newest = _focus_week(engine)
    if newest is None:
        return Briefs((), {})
    wanted: list[tuple[Mapping[str, Any], str, str, date]] = []
    for sub in asking:
        zone = str(sub.get("timezone") or "UTC")
        due = brief_due(now, zone)
        if sub["created_at"] > due:
            continue  # the first brief is the first Monday after it was added
        monday = due.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
        week = min(monday - WEEK, newest)
        key = f"brief:{iso_week(week)}:{sub['id']}"
        wanted.append((sub, key, _audience(sub), week))
    done = _queued(engine, (key for _, key, _, _ in wanted))
    due_now = tuple(w for w in wanted if w[1] not in done)
    from analytics.reports import Audience, IncompleteWeek, build_brief, render_html

    built: dict[tuple[str, date], tuple[Brief, str]] = {}
    for _, _, audience, week in due_now:
        if (audience, week) not in built:
            role = Role.product if audience == "product" else Role.leadership
            chosen: Audience = "product" if audience == "product" else "leadership"
            try:
                brief = build_brief(engine, week=week, audience=chosen, role=role, generated_at=now)
            except IncompleteWeek:  # data shorter than a week: no brief to send yet
                continue
            built[(audience, week)] = (brief, render_html(brief))
    return Briefs(tuple(w for w in due_now if (w[2], w[3]) in built), built)


def enqueue_briefs(conn: Connection, due: Briefs, *, now: datetime, base_url: str) -> int:
    """Queue the briefs :func:`briefs` found due, one per subscription, in ``conn``'s
    transaction. Returns how many were queued."""
    queued = 0
    for sub, key, audience, week in due.due:
        brief, page = due.built[(audience, week)]
        message = messages.brief_message(brief, base_url=base_url, html_body=page)
        queued += outbox.enqueue(
            conn, subscription_id=int(sub["id"]), key=key, message=message, now=now
        )
    return queued
