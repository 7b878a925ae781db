"""What the watch sends once a week: the story's emerging topics and growing rings.

**The story.** Subscriptions asking for ``emerging`` or ``rings`` get one message per
emerging topic or growing ring of the week's story
(:func:`analytics.reports.story.week_story`, the Overview page's, for the focus week the
pages open on: the newest complete week), keyed ``story:{week}:{item}:{subscription}``
so each item is told once per week whatever the passes. Product subscriptions get the
product's story (what the product brief shows, suppressed): its emerging-topics
sentence, never a ring. :func:`stories` computes each story at most once per pass, and
only when a subscription wants it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from analytics.access import roles as access
from analytics.alerts import messages, outbox
from analytics.core.calendar import iso_week
from analytics.core.models import Role

if TYPE_CHECKING:
    from analytics.reports.story import WeekStory

__all__ = ["STORY_KINDS", "enqueue_stories", "stories"]

#: The story items each ``what`` asks for.
STORY_KINDS: Mapping[str, str] = {"emerging": "topic", "rings": "ring"}


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
