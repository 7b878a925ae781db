"""Demo data: determinism, realism, the injected scenarios, and seeding both databases."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import chi2_contingency
from sqlalchemy import inspect, text

from analytics import demo
from analytics.core import database, models
from analytics.demo.tuning import CASE_MIX

END = date(2026, 11, 24)


@pytest.fixture(scope="module")
def small() -> demo.DemoData:
    return demo.generate(scale="small", seed=7, end=END)


@pytest.fixture(scope="module")
def events(small: demo.DemoData) -> pl.DataFrame:
    return pl.concat(list(small.event_chunks())).with_columns(day=pl.col("ts").dt.date())


def _scenario(data: demo.DemoData, kind: str) -> dict:
    return next(s for s in data.manifest["scenarios"] if s["kind"] == kind)


def _day(iso: str) -> date:
    return datetime.fromisoformat(iso).date()


def test_same_seed_same_data_and_other_seed_differs(small: demo.DemoData) -> None:
    again = demo.generate(scale="small", seed=7, end=END)
    for name in ("accounts", "cases", "case_actions", "annotations"):
        assert_frame_equal(getattr(small, name), getattr(again, name))
    assert_frame_equal(next(small.event_chunks()), next(again.event_chunks()))
    assert small.manifest == again.manifest
    other = demo.generate(scale="small", seed=8, end=END)
    assert not other.cases["description"].equals(small.cases["description"])


def test_window_sizes_and_ids(small: demo.DemoData, events: pl.DataFrame) -> None:
    assert small.accounts.height == 5_000
    assert 45_000 <= events.height <= 65_000
    assert 5_000 <= small.cases.height <= 7_500
    assert events["id"].to_list() == list(range(1, events.height + 1))
    assert events["ts"].is_sorted() and small.cases["opened_at"].is_sorted()
    assert events["ts"].max() < datetime(2026, 11, 24)
    assert events["ts"].min() >= datetime(2024, 11, 24)
    ids = set(small.accounts["id"].to_list())
    for col in ("account_id", "target_account_id"):
        assert set(events[col].drop_nulls().to_list()) <= ids
    assert set(small.cases["subject_account_id"].to_list()) <= ids


def test_bookings_are_weekday_heavy_and_grow(events: pl.DataFrame) -> None:
    daily = (
        events.filter(pl.col("kind") == "booking_created")
        .group_by("day")
        .len()
        .with_columns(weekend=pl.col("day").dt.weekday() >= 6)
    )
    means = daily.group_by("weekend").agg(pl.col("len").mean()).sort("weekend")["len"]
    assert means[0] / means[1] > 1.6
    first = events.filter(pl.col("day") < date(2025, 3, 1)).height
    last = events.filter(pl.col("day") >= date(2026, 8, 24)).height
    assert last > 1.3 * first


def test_fake_review_ring_is_visible(small: demo.DemoData, events: pl.DataFrame) -> None:
    s = _scenario(small, "fake_review_ring")
    start, end = _day(s["start"]), _day(s["end"])
    fl = events.filter((pl.col("kind") == "review_posted") & (pl.col("region") == "FL"))
    during = fl.filter(pl.col("day").is_between(start, end, closed="left")).height / 12
    before = (
        fl.filter(pl.col("day").is_between(start - timedelta(days=90), start, closed="left")).height
        / 90
    )
    assert during > 8 * max(before, 0.1)
    ring = events.filter(pl.col("account_id").is_in(s["account_ids"]))
    assert ring["device_hash"].n_unique() == 3
    reviews = ring.filter(pl.col("kind") == "review_posted")
    assert set(reviews["target_account_id"].to_list()) == set(s["target_provider_ids"])
    assert (reviews["rating"] == 5).all()
    cases = small.cases.filter(pl.col("id").is_in(s["case_ids"]))
    assert cases.height >= 5 and (cases["category"] == "fake_review").all()
    assert cases["opened_at"].min().date() > start


def test_account_takeover_wave_is_visible(small: demo.DemoData, events: pl.DataFrame) -> None:
    s = _scenario(small, "account_takeover_wave")
    start = _day(s["start"])
    failed = events.filter(pl.col("kind") == "login_failed").group_by("day").len()
    base = failed.filter(pl.col("day") < start - timedelta(days=7))["len"].median()
    spike = failed.filter(pl.col("day") == start)["len"].item()
    assert spike > 10 * base
    cats = small.cases.filter(pl.col("id").is_in(s["case_ids"]))["category"].unique().sort()
    assert cats.to_list() == ["account_takeover", "payment_fraud"]
    victims = events.filter(
        pl.col("account_id").is_in(s["account_ids"])
        & (pl.col("kind") == "payment_failed")
        & (pl.col("day") >= start)
    )
    assert victims["account_id"].n_unique() == len(s["account_ids"])


def test_new_scam_has_new_words_and_grows(small: demo.DemoData) -> None:
    s = _scenario(small, "new_scam")
    start = _day(s["start"])
    vocab = pl.col("description").str.contains(
        r"(?i)verification|verify|member (id|number)|gift card|coverage|eligibility|subscriber"
    )
    assert small.cases.filter(vocab & (pl.col("opened_at").dt.date() < start)).height == 0
    scam = small.cases.filter(pl.col("id").is_in(s["case_ids"]))
    assert scam.height >= 40 and (scam["category"] == "other").all()
    assert scam.filter(vocab).height == scam.height
    week = scam.group_by((pl.col("opened_at").dt.date() - start).dt.total_days() // 7).len()
    counts = week.sort("opened_at")["len"].to_list()
    assert counts[0] < counts[2]


@pytest.fixture(scope="module")
def medium() -> demo.DemoData:
    """Medium-scale cases over 240 days (events are generated lazily, so this is cheap)."""
    return demo.generate(scale="medium", seed=3, days=240, end=END)


def test_policy_change_steps_up_harassment(medium: demo.DemoData) -> None:
    # Medium scale: ~1,500 harassment cases per 90 days, so noise cannot fake a step.
    s = _scenario(medium, "policy_change")
    start = _day(s["start"])
    h = medium.cases.filter(pl.col("category") == "harassment")
    day = pl.col("opened_at").dt.date()
    before = h.filter(day.is_between(start - timedelta(days=90), start, closed="left")).height
    after = h.filter(day.is_between(start, start + timedelta(days=90), closed="left")).height
    assert after > 1.3 * before
    ann = medium.annotations.filter(pl.col("id") == s["annotation_id"])
    assert ann["kind"].item() == "policy_change" and ann["start_at"].item().date() == start
    assert ann["category"].item() == "harassment"


def test_outage_drops_one_source_for_a_day(small: demo.DemoData) -> None:
    s = _scenario(small, "ingestion_outage")
    start = _day(s["start"])
    auto = small.cases.filter(pl.col("source") == "automated_rule")
    by_day = auto.group_by(pl.col("opened_at").dt.date().alias("d")).len()
    assert by_day.filter(pl.col("d") == start).height == 0
    week = by_day.filter(pl.col("d").is_between(start - timedelta(days=7), start, closed="left"))
    assert week["len"].sum() >= 5


def test_handling_has_long_tails_breaches_and_appeals(small: demo.DemoData) -> None:
    c = small.cases
    hours = ((c["resolved_at"] - c["opened_at"]).dt.total_seconds() / 3600).drop_nulls()
    assert hours.quantile(0.9) / hours.median() > 3
    crit = c.filter(pl.col("severity") == "critical")
    late = crit.filter((pl.col("first_response_at") - pl.col("opened_at")) > timedelta(hours=4))
    assert 0 < late.height < crit.height
    assert set(c["appeal_outcome"].drop_nulls().unique().to_list()) >= {"upheld", "overturned"}
    recent = c.filter(pl.col("opened_at") > datetime(2026, 11, 22))
    assert recent.filter(pl.col("status") != "resolved").height > 0
    assert set(c["source"].unique().to_list()) == {s.value for s in models.CaseSource}


def test_category_mix_differs_by_region_and_platform(medium: demo.DemoData) -> None:
    cases = medium.cases
    for dim in ("region", "platform"):
        top = cases[dim].value_counts().sort("count", descending=True)[dim].head(8)
        table = (
            cases.filter(pl.col(dim).is_in(top.implode()))
            .pivot(on=dim, index="category", values="id", aggregate_function="len")
            .fill_null(0)
            .drop("category")
        )
        assert chi2_contingency(table.to_numpy()).pvalue < 1e-6


def test_descriptions_are_varied_and_hold_fake_personal_data(small: demo.DemoData) -> None:
    d = small.cases["description"]
    assert d.n_unique() > 0.8 * len(d)
    cores = d.str.replace(r"^[^.]*?(Hi, |Hello, |Urgent: )", "").str.slice(0, 40).n_unique()
    assert cores > 300
    for cat in ("fake_review", "harassment", "spam"):
        assert small.cases.filter(pl.col("category") == cat)["description"].n_unique() > 100
    phones = d.str.contains(r"\(?\d{3}\)?[ -]555[ -]\d{4}").sum()
    emails = d.str.contains(r"[a-z0-9.]+@[a-z.]+").sum()
    assert phones > 100 and emails > 100
    assert not d.str.contains(r"\{[a-z]+\}").any()
    assert re.match(r"^[A-Z]", d[0])


def test_days_too_short_and_unknown_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 240"):
        demo.generate(scale="small", seed=1, days=30, end=END)
    with pytest.raises(ValueError, match="unknown scale"):
        demo.generate(scale="huge", seed=1, end=END)


def test_seed_database_writes_everything(engine) -> None:
    truth = demo.seed_database(engine, scale="small", seed=5, days=240, end=END)
    data = demo.generate(scale="small", seed=5, days=240, end=END)
    counts = database.table_counts(engine)
    assert counts["accounts"] == data.accounts.height
    assert counts["cases"] == data.cases.height
    assert counts["events"] == sum(c.height for c in data.event_chunks())
    assert counts["events"] == truth["dataset"]["rows"]["events"]
    assert database.get_meta(engine, "ground_truth") == truth
    with engine.connect() as conn:
        row = conn.execute(text("SELECT description, opened_at FROM cases WHERE id = 1")).one()
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM events e LEFT JOIN accounts a ON a.id = e.account_id "
                "WHERE a.id IS NULL"
            )
        ).scalar_one()
    assert row[0] == data.cases["description"][0]
    assert orphans == 0
    inspector = inspect(engine)
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("events")} == {"accounts"}
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("case_actions")} == {"cases"}
    assert {ix["name"] for ix in inspector.get_indexes("events")} == {
        "ix_events_ts",
        "ix_events_account_ts",
    }
    with engine.connect() as conn:
        opened = (
            conn.execute(models.Case.__table__.select().where(models.Case.id == 1)).one().opened_at
        )
    assert opened == data.cases["opened_at"][0]


def test_seed_refuses_non_demo_data_unless_forced(engine) -> None:
    demo.seed_database(engine, scale="small", seed=5, days=240, end=END)
    assert demo.database_state(engine) == "demo"
    with engine.begin() as conn:
        conn.execute(
            models.AuditLog.__table__.insert(),
            [dict(ts=datetime(2026, 1, 1), user_name="lead", role="admin", action="login")],
        )
    demo.seed_database(engine, scale="small", seed=6, days=240, end=END)  # demo over demo: fine
    database.set_meta(engine, "non_demo_data", True)
    assert demo.database_state(engine) == "data"
    with pytest.raises(demo.SeedRefused, match="--force"):
        demo.seed_database(engine, scale="small", seed=6, days=240, end=END)
    demo.seed_database(engine, scale="small", seed=6, days=240, end=END, force=True)
    assert demo.database_state(engine) == "demo"
    assert database.table_counts(engine)["audit_log"] == 1


def test_scale_sizes_are_ordered() -> None:
    sizes = [demo.SCALES[s] for s in ("small", "medium", "large")]
    assert [s.events for s in sizes] == sorted(s.events for s in sizes)
    assert demo.SCALES["large"].events >= 20_000_000
    assert demo.SCALES["large"].cases >= 1_000_000 and demo.SCALES["large"].accounts >= 1_000_000
    assert np.isclose(sum(v[0] for v in CASE_MIX.values()), 1.0)
