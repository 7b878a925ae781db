"""Digests and story messages of the watch (issue 19): a digest tells of incidents opened
again or out of their snooze as well as new ones, each once; the ``told_at`` column
reaches databases made before it.

The passes run on a copy of the small demo (its data ends on 30 Apr 2026) with a real
webhook receiver on loopback (tests/alert_receivers.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import Engine, inspect, select

from analytics.access import AccessDenied, Viewer
from analytics.alerts import incidents, messages, subscriptions, watch, weekly
from analytics.alerts.message import Message
from analytics.core.database import make_engine
from analytics.core.models import Delivery, Role, init_db
from tests.alert_receivers import HttpReceiver, http_receiver
from tests.helpers import copy_small_demo

#: When the first pass happens (the day after the small demo's data ends).
NOW = datetime(2026, 5, 1, 6, 0)
BASE = "http://lookout.test"
ANN = Viewer("ann", Role.associate)


@pytest.fixture
def demo(small_demo_file, tmp_path, monkeypatch) -> Iterator[Engine]:
    monkeypatch.setenv("LOOKOUT_SECRETS", str(tmp_path / "secrets.toml"))
    eng = make_engine(copy_small_demo(small_demo_file, tmp_path))
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def _digests(engine: Engine) -> list[Message]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.payload).where(Delivery.kind == "digest").order_by(Delivery.id)
        ).all()
    return [Message.from_json(r.payload) for r in rows]


def _pass(engine: Engine, now: datetime) -> watch.WatchReport:
    return watch.run_once(engine, now=now, base_url=BASE, timeout_s=5.0)


def test_a_digest_after_a_reopen_and_an_unsnooze_lists_each_incident_once(demo, hook) -> None:
    subscriptions.add(demo, name="daily", channel="webhook", target=hook.url, digest_hours=24,
                      role=Role.associate, now=NOW - timedelta(hours=1))  # fmt: skip
    assert _pass(demo, NOW).opened == 2  # two incidents, told in the next digest
    first = _pass(demo, NOW + timedelta(hours=23))
    assert (first.queued, first.sent) == (1, 1)
    [digest] = _digests(demo)
    assert digest.fields["incidents"] == 2
    # One incident is resolved, then its episode goes on (a week later): reopened. The
    # other is snoozed, and its snooze runs out before the next digest.
    found = incidents.list_incidents(demo, role=Role.associate).sort("slice")
    back, quiet = found.row(0, named=True), found.row(1, named=True)
    incidents.resolve(demo, back["id"], viewer=ANN, version=back["version"])
    until = datetime(2099, 1, 1)
    incidents.snooze(demo, quiet["id"], until, viewer=ANN, version=quiet["version"])
    scanned, newest = watch.scan(demo)
    assert newest is not None
    later = scanned.filter(pl.col("alerted"), pl.col("slice") == back["slice"]).with_columns(
        pl.col("end") + timedelta(days=7)
    )
    with demo.begin() as conn:
        changes = incidents.sync(conn, later, now=NOW + timedelta(hours=30),
                                 newest=newest + timedelta(days=7))  # fmt: skip
    assert [(c.kind, c.id) for c in changes] == [("reopened", back["id"])]
    # The day's digest (due 24 h after the first) tells of the reopened incident only.
    second = _pass(demo, NOW + timedelta(hours=47))
    assert (second.queued, second.sent) == (1, 1)
    told = _digests(demo)[1]
    assert told.fields["incidents"] == 1
    assert told.text.count("Dentistry") == 1 and "Dermatology" not in told.text
    # Once the snooze is over, the pass's digest tells of that one, once; then nothing.
    over = _pass(demo, until)
    assert (over.unsnoozed, over.queued, over.sent) == (1, 1, 1)
    third = _digests(demo)[2]
    assert third.fields["incidents"] == 1
    assert "Dermatology" in third.text and "Dentistry" not in third.text
    assert _pass(demo, until + timedelta(days=3)).queued == 0
    assert len(hook.acknowledged_keys) == 3 and hook.repeats == []


def test_init_db_adds_told_at_to_an_incidents_table_made_before_it(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE incidents DROP COLUMN told_at")
    assert "told_at" not in {c["name"] for c in inspect(engine).get_columns("incidents")}
    init_db(engine)
    init_db(engine)  # idempotent
    assert "told_at" in {c["name"] for c in inspect(engine).get_columns("incidents")}


# --------------------------------------------------------------------------- the story


def _story(engine: Engine) -> list[Message]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.payload).where(Delivery.kind == "story").order_by(Delivery.id)
        ).all()
    return [Message.from_json(r.payload) for r in rows]


def test_emerging_topics_reach_their_subscribers_once_a_week(demo, hook) -> None:
    """The small demo's focus week (W17) has two emerging topics and no growing ring."""
    subscriptions.add(demo, name="threats", channel="webhook", target=hook.url,
                      what=["emerging", "rings"], role=Role.associate, now=NOW)  # fmt: skip
    subscriptions.add(demo, name="product", channel="webhook", target=hook.url,
                      what=["emerging"], role=Role.product, now=NOW)  # fmt: skip
    first = _pass(demo, NOW)
    assert (first.queued, first.sent) == (3, 3)  # no incident: nobody asked for anomalies
    product, *told = _story(demo)  # subscriptions by name: "product" first
    assert [m.subject for m in told] == [
        "Emerging topic “caller id showed” (a new topic)",
        "Emerging topic “gift cards” (a new topic)",
    ]
    assert told[0].text.splitlines()[0] == (
        "Emerging topic “caller id showed” (a new topic): 19 cases in the last 7 days against "
        "20 in the 83 days before, 7.4 times its usual rate (significant)."
    )
    assert told[0].link is not None and told[0].link.startswith(
        f"{BASE}/emerging?week=2026-W17&emerging.cluster="
    )
    # The product team: the product story's one sentence on topics, no count, Reports.
    assert product.text.splitlines()[0] == (
        "Emerging in the case narratives of the last 7 days: “caller id showed” (filed mostly "
        "as other); “gift cards” (filed mostly as other)."
    )
    assert product.link == f"{BASE}/reports?week=2026-W17"
    assert not re.search(r"\d+ cases", product.text)
    # The next passes of the week tell nothing again.
    again = _pass(demo, NOW + timedelta(hours=6))
    assert (again.queued, again.sent) == (0, 0)
    assert len(hook.acknowledged_keys) == 3 and hook.repeats == []


def test_a_growing_ring_goes_to_rings_subscribers_never_to_product(demo) -> None:
    from analytics.reports.story import StoryItem, WeekStory

    lead = subscriptions.add(demo, name="rings", channel="webhook", target="env:RINGS_HOOK",
                             what=["rings"], role=Role.leadership, now=NOW).row  # fmt: skip
    admin = subscriptions.add(demo, name="admins", channel="webhook", target="env:ADMIN_HOOK",
                              what=["rings"], role=Role.admin, now=NOW).row  # fmt: skip
    prod = subscriptions.add(demo, name="prod", channel="webhook", target="env:PROD_HOOK",
                             what=["emerging"], role=Role.product, now=NOW).row  # fmt: skip
    ring = StoryItem("ring", 1, 5.0, "Growing ring of 14 linked accounts: 6 joined in the last "
                     "14 days, sharing 3 devices and 2 IP addresses.", "", "pages/emerging.py",
                     (("week", "2026-W17"), ("emerging.ring", "42")), "Rings", rank=1)  # fmt: skip
    week = datetime(2026, 4, 20).date()
    story = WeekStory(week, "leadership", False, NOW, (), (ring,))
    subs = [lead, admin, prod]
    told = {"leadership": story, "product": WeekStory(week, "product", False, NOW, (), ())}
    with demo.begin() as conn:
        assert weekly.enqueue_stories(conn, subs, told, now=NOW, base_url=BASE) == 2
        assert weekly.enqueue_stories(conn, subs, told, now=NOW, base_url=BASE) == 0
    with demo.connect() as conn:
        keys = conn.execute(select(Delivery.idempotency_key).order_by(Delivery.id)).scalars()
        assert list(keys) == [f"story:2026-W17:ring-42:{lead['id']}",
                              f"story:2026-W17:ring-42:{admin['id']}"]  # fmt: skip
    lead_m, admin_m = _story(demo)
    assert lead_m.subject == "Growing ring of 14 linked accounts"
    assert lead_m.link == f"{BASE}/emerging?week=2026-W17&emerging.ring=42"
    assert admin_m.link == f"{BASE}/reports?week=2026-W17"  # admins do not open Emerging
    with pytest.raises(AccessDenied, match="product role is sent only"):
        messages.story_message(ring, role=Role.product, base_url=BASE)


def test_no_story_is_read_when_no_subscription_asks_for_it(demo) -> None:
    subscriptions.add(demo, name="oncall", channel="webhook", target="env:HOOK", role="associate")
    subs = subscriptions.list_subscriptions(demo).to_dicts()
    assert weekly.stories(demo, subs) == {}


# --------------------------------------------------------------------------- the weekly brief

#: Sunday 3 May 2026, noon UTC: the subscriptions are added.
ADDED = datetime(2026, 5, 3, 12, 0)
#: Monday 4 May 2026, 07:59 in New York (EDT, UTC-4) and 20:59 in Tokyo.
BEFORE_8 = datetime(2026, 5, 4, 11, 59)


def _briefs(engine: Engine) -> dict[str, Message]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.idempotency_key, Delivery.payload).where(Delivery.kind == "digest")
        ).all()
    return {r.idempotency_key: Message.from_json(r.payload) for r in rows}


def test_the_weekly_brief_goes_out_on_monday_at_8_in_each_time_zone_once(demo, hook) -> None:
    from analytics.reports.story import week_story

    lead = subscriptions.add(demo, name="leads", channel="webhook", target=hook.url,
                             what=["digest"], role=Role.leadership,
                             timezone="America/New_York", now=ADDED).row  # fmt: skip
    prod = subscriptions.add(demo, name="product", channel="webhook", target=hook.url,
                             what=["digest"], role=Role.product, timezone="Asia/Tokyo",
                             now=ADDED).row  # fmt: skip
    # 07:59 in New York: not yet; Tokyo's Monday 08:00 (Sunday 23:00 UTC) has passed.
    early = _pass(demo, BEFORE_8)
    assert (early.queued, early.sent) == (1, 1)
    assert list(_briefs(demo)) == [f"brief:2026-W17:{prod['id']}"]
    # 08:00 in New York: the leadership brief of the last complete week of data (W17:
    # the data ends on Thursday 30 Apr, so the week of 27 Apr is not complete).
    on_time = _pass(demo, BEFORE_8 + timedelta(minutes=1))
    assert (on_time.queued, on_time.sent) == (1, 1)
    brief = _briefs(demo)[f"brief:2026-W17:{lead['id']}"]
    assert brief.subject == "Lookout weekly brief for leadership: 2026-W17 (20–26 Apr 2026)"
    assert brief.link == f"{BASE}/reports?week=2026-W17&reports.audience=leadership"
    lines = brief.text.splitlines()
    assert lines[0] == "The weekly brief for leadership, 2026-W17 (20–26 Apr 2026):"
    assert lines[-1] == f"The whole brief: {brief.link}"
    # The same story as the Overview page, in the same order, then the KPIs.
    story = week_story(demo, week=datetime(2026, 4, 20).date(), role=Role.leadership)
    told = [line.removeprefix("- ") for line in lines[1:-1]]
    assert told[: len(story.sentences)] == list(story.sentences)
    assert told[len(story.sentences)].startswith("New cases: 111")
    assert f'href="{brief.link}"' in brief.html.replace("&amp;", "&")
    assert len(brief.html) < messages.BRIEF_HTML_MOST  # the brief's own page is larger
    # Later passes that week and the next Mondays (the data has no newer complete week):
    # nothing again.
    for later in (timedelta(hours=1), timedelta(days=1), timedelta(days=7), timedelta(days=14)):
        again = _pass(demo, BEFORE_8 + timedelta(minutes=1) + later)
        assert (again.queued, again.sent) == (0, 0)
    assert len(hook.acknowledged_keys) == 2 and hook.repeats == []
    assert sorted(r.json["kind"] for r in hook.requests) == ["digest", "digest"]


def test_the_product_teams_brief_carries_no_case_text_and_no_small_count(demo, hook) -> None:
    subscriptions.add(demo, name="product", channel="webhook", target=hook.url, what=["digest"],
                      role=Role.product, now=ADDED)  # fmt: skip
    assert _pass(demo, BEFORE_8).sent == 1  # Monday 11:59 UTC
    [brief] = _briefs(demo).values()
    assert brief.subject == "Lookout weekly brief for product teams: 2026-W17 (20–26 Apr 2026)"
    assert brief.text.splitlines()[1] == (
        "- Emerging in the case narratives of the last 7 days: “caller id showed” (filed "
        "mostly as other); “gift cards” (filed mostly as other)."
    )
    delivered = hook.requests[0].body.decode()
    with demo.connect() as conn:
        texts = conn.exec_driver_sql("SELECT description FROM cases").scalars().all()
    assert texts and not any(t[:30] in delivered or t[:30] in brief.html for t in texts if t)
    counts = [int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) (?:new )?cases", brief.text)]
    assert all(n >= 10 for n in counts)
    assert "New cases: 111" in brief.text  # a count at or above the threshold is shown
