"""Account anomaly scoring: features by hand, planted outliers, explanations, the small demo."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.core.database import get_meta, make_engine
from analytics.core.models import EventKind
from analytics.detectors.account_features import FEATURES, account_features
from analytics.detectors.account_scores import (
    METHODS,
    AccountScorer,
    precision_at_k,
    score_accounts,
)
from analytics.sources.snapshot import snapshot_dir
from analytics.sources.snapshot_refresh import refresh

START, END = datetime(2026, 3, 1), datetime(2026, 3, 8)
_INT, _STR, _FLOAT, _TS = pl.Int64(), pl.String(), pl.Float64(), pl.Datetime("us")
EVENT_SCHEMA = pl.Schema(
    {
        "ts": _TS,
        "account_id": _INT,
        "kind": _STR,
        "target_account_id": _INT,
        "device_hash": _STR,
        "ip_hash": _STR,
        "rating": _INT,
    }
)
ACCOUNT_SCHEMA = pl.Schema({"id": _INT, "created_at": _TS})
CASE_SCHEMA = pl.Schema({"subject_account_id": _INT, "opened_at": _TS})
FEATURE_SCHEMA = pl.Schema({"account_id": _INT, **dict.fromkeys(FEATURES, _FLOAT)})


def _events(rows: list[tuple]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=EVENT_SCHEMA, orient="row")


# --------------------------------------------------------------------------- features


def _tiny() -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame]:
    """Five accounts over one week; the expected features are derived in the test."""
    t = datetime
    events = _events(
        [
            # account 1, created 2026-02-27: three reviews of provider 3
            (t(2026, 3, 1, 10), 1, "review_posted", 3, "dA", "i1", 5),  # 2 days old: young
            (t(2026, 3, 2, 10), 1, "review_posted", 3, "dA", "i1", 5),  # 3 days old: young
            (t(2026, 3, 6, 10), 1, "review_posted", 3, "dB", "i2", 4),  # 7 d 10 h: not young
            # account 2, created 2025-01-01
            (t(2026, 3, 2, 12), 2, "review_posted", 3, "dC", "i3", 5),
            (t(2026, 3, 2, 13), 2, "login", None, "dC", "i3", None),
            (t(2026, 3, 3, 9), 2, "login_failed", None, "dC", "i1", None),  # account 1's IP
            (t(2026, 3, 3, 9, 5), 2, "login", None, "dC", "i3", None),
            (t(2026, 3, 4, 10), 2, "booking_cancelled", 3, "dC", "i3", None),
            (t(2026, 3, 4, 11), 2, "message_sent", None, "dC", "i3", None),
            (t(2026, 3, 4, 12), 2, "message_sent", None, "dC", "i3", None),
            # provider 3, created 2024-03-08
            (t(2026, 3, 5, 13), 3, "message_sent", None, "dD", "i4", None),
            (t(2026, 3, 5, 14), 3, "profile_updated", None, "dD", "i4", None),
            # account 4, created 2026-03-05 12:00, on account 1's device
            (t(2026, 3, 6, 9), 4, "no_show", 3, "dA", "i5", None),
            (t(2026, 3, 6, 10), 4, "payment_failed", None, "dA", "i5", None),
            # account 9 is not in the accounts table
            (t(2026, 3, 7), 9, "login", None, "dE", "i6", None),
            # outside the window ([start, end): the end is excluded)
            (t(2026, 3, 8), 2, "review_posted", 3, "dC", "i3", 1),
            (t(2026, 2, 28, 23, 59), 1, "login", None, "dA", "i3", None),
        ]
    )
    accounts = pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "created_at": [t(2026, 2, 27), t(2025, 1, 1), t(2024, 3, 8), t(2026, 3, 5, 12)],
        },
        schema=ACCOUNT_SCHEMA,
    )
    cases = pl.DataFrame(
        {
            "subject_account_id": [1, 1, 2, 4],
            "opened_at": [t(2026, 3, 3), t(2026, 3, 9), t(2026, 2, 20), t(2026, 3, 1)],
        },
        schema=CASE_SCHEMA,
    )
    return events, accounts, cases


def test_features_by_hand() -> None:
    events, accounts, cases = _tiny()
    got = account_features(events, accounts, cases, start=START, end=END)
    n = None
    expected = pl.DataFrame(
        {
            "account_id": [1, 2, 3, 4, 9],
            "reviews_posted": [3, 1, 0, 0, 0],
            "five_star_share": [2 / 3, 1.0, n, n, n],
            "young_review_share": [2 / 3, 0.0, n, n, n],
            # provider 3 received four reviews, two of them from account 1 while young
            "young_reviewer_share": [n, n, 2 / 4, n, n],
            "distinct_devices": [2, 1, 1, 1, 1],
            "distinct_ips": [2, 2, 1, 1, 1],
            # 1 ~ 4 through device dA, 1 ~ 2 through IP i1
            "shared_accounts": [2, 1, 0, 1, 0],
            "failed_login_ratio": [n, 1 / 3, n, n, 0.0],
            "cancellations": [0, 1, 0, 0, 0],
            "no_shows": [0, 0, 0, 1, 0],
            "payment_failures": [0, 0, 0, 1, 0],
            "profile_updates": [0, 0, 1, 0, 0],
            # messages over active days: 0/3, 2/3 (Mar 2, 3, 4), 1/1, 0/1, 0/1
            "messages_per_day": [0.0, 2 / 3, 1.0, 0.0, 0.0],
            # the case of Mar 9 and the one of Feb 20 are outside the window
            "reports_received": [1, 0, 0, 1, 0],
            # days to Mar 8: from Feb 27, from 2025-01-01 (365 + 31 + 28 + 7), two years,
            # two and a half days; unknown account: null
            "account_age_days": [9.0, 431.0, 730.0, 2.5, n],
        },
        schema=FEATURE_SCHEMA,
    )
    assert_frame_equal(got, expected)


def test_features_accept_the_snapshot_enum_kind() -> None:
    events, accounts, cases = _tiny()
    kinds = pl.Enum([k.value for k in EventKind])  # as in the snapshot
    got = account_features(
        events.with_columns(pl.col("kind").cast(kinds)), accounts, cases, start=START, end=END
    )
    assert_frame_equal(got, account_features(events, accounts, cases, start=START, end=END))


def test_widely_shared_keys_add_their_size() -> None:
    """Above max_key_accounts a key adds its size, without de-duplicating neighbours."""
    t = datetime(2026, 3, 2)
    events = _events(
        [
            (t, 1, "login", None, "d", "i", None),
            (t, 2, "login", None, "d", "i", None),  # shares both the device and the IP
            (t, 3, "login", None, "e", "j", None),
        ]
    )
    accounts = pl.DataFrame({"id": [1, 2, 3], "created_at": [t] * 3}, schema=ACCOUNT_SCHEMA)
    cases = pl.DataFrame(schema=CASE_SCHEMA)

    def shared(cap: int) -> list[float]:
        f = account_features(events, accounts, cases, start=START, end=END, max_key_accounts=cap)
        return f["shared_accounts"].to_list()

    assert shared(1_000) == [1.0, 1.0, 0.0]
    assert shared(1) == [2.0, 2.0, 0.0]


def test_empty_window_gives_an_empty_frame() -> None:
    events, accounts, cases = _tiny()
    got = account_features(
        events, accounts, cases, start=datetime(2030, 1, 1), end=datetime(2030, 2, 1)
    )
    assert got.height == 0
    assert got.schema == FEATURE_SCHEMA
    out = score_accounts(got)
    assert out.height == 0
    assert out.columns == ["account_id", "score", "rank", "reasons", *FEATURES]
    nothing = (_events([]), pl.DataFrame(schema=ACCOUNT_SCHEMA), pl.DataFrame(schema=CASE_SCHEMA))
    empty = account_features(*nothing, start=START, end=END)
    assert empty.height == 0
    scorer = AccountScorer().fit(account_features(events, accounts, cases, start=START, end=END))
    assert scorer.explain(got).columns == ["account_id", "score", "rank", "reasons"]
    assert scorer.explain(got).height == 0
    assert scorer.score_samples(got).shape == (0,)


# --------------------------------------------------------------------------- planted outliers

PLANTED = [1001, 1002, 1003, 1004, 1005]


def _at(base: datetime, hours: np.ndarray) -> np.ndarray:
    """Timestamps ``hours`` after ``base`` (negative: before), vectorised."""
    return np.datetime64(base, "us") + (hours * 3_600e6).astype("timedelta64[us]")


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    """200 ordinary accounts and 5 new ones posting 20 five-star reviews from 2 shared devices."""
    rng = np.random.default_rng(11)
    normal = np.arange(1, 201)
    providers = normal[:20]
    # ordinary accounts: a few logins and messages, a review now and then, their own devices
    who = np.repeat(normal, rng.integers(2, 12, normal.size))
    kinds = rng.choice(
        ["login", "message_sent", "review_posted", "login_failed", "booking_cancelled"],
        who.size,
        p=[0.45, 0.35, 0.1, 0.05, 0.05],
    )
    review = kinds == "review_posted"
    ordinary = pl.DataFrame(
        {
            "ts": _at(START, rng.uniform(0, 160, who.size)),
            "account_id": who,
            "kind": kinds,
            "target_account_id": np.where(review, rng.choice(providers, who.size), -1),
            "device_hash": rng.integers(0, 2, who.size),
            "rating": np.where(review, rng.integers(1, 6, who.size), -1),
        }
    ).with_columns(
        device_hash=pl.format("dev{}-{}", "account_id", "device_hash"),
        ip_hash=pl.format("ip{}", "account_id"),
    )
    ring = np.repeat(PLANTED, 20)
    fake = pl.DataFrame(
        {
            "ts": _at(START, rng.uniform(0, 96, ring.size)),
            "account_id": ring,
            "kind": "review_posted",
            "target_account_id": rng.choice(providers[:2], ring.size),
            "device_hash": rng.choice(["ringA", "ringB"], ring.size),
            "rating": 5,
            "ip_hash": rng.choice(["ringIP1", "ringIP2"], ring.size),
        }
    )
    events = (
        pl.concat([ordinary, fake], how="vertical_relaxed")
        .with_columns(
            pl.col("target_account_id", "rating").replace(-1, None).cast(pl.Int64),
            pl.col("account_id").cast(pl.Int64),
        )
        .lazy()
    )
    accounts = pl.DataFrame(
        {
            "id": np.concatenate([normal, PLANTED]),
            "created_at": np.concatenate(
                [
                    _at(START, -24 * rng.uniform(30, 1500, normal.size)),
                    _at(START, np.full(5, -24.0)),
                ]
            ),
        },
        schema=ACCOUNT_SCHEMA,
    )
    return account_features(
        events, accounts, pl.DataFrame(schema=CASE_SCHEMA), start=START, end=END
    )


@pytest.mark.parametrize("method", METHODS)
def test_planted_outliers_rank_first(planted: pl.DataFrame, method: str) -> None:
    assert planted.height == 205
    scored = score_accounts(planted, method=method)
    assert sorted(scored["account_id"].head(5).to_list()) == PLANTED
    assert scored["rank"].head(6).to_list() == [1, 1, 1, 1, 1, 6]  # identical by design
    assert precision_at_k(scored, PLANTED, k=5) == 1.0


def test_explain_names_the_planted_feature(planted: pl.DataFrame) -> None:
    scored = score_accounts(planted, top=3)
    ring = scored.filter(pl.col("account_id").is_in(PLANTED))
    for reasons in ring["reasons"].to_list():
        assert len(reasons) == 3
        assert reasons[0].startswith("reviews posted 20 (median ")
    # an ordinary account's reasons, if any, never mention twenty reviews
    others = scored.filter(~pl.col("account_id").is_in(PLANTED))["reasons"].explode()
    assert not others.drop_nulls().str.starts_with("reviews posted 20").any()


@pytest.mark.parametrize("method", METHODS)
def test_fixed_seed_is_deterministic(planted: pl.DataFrame, method: str) -> None:
    first = score_accounts(planted, seed=3, method=method)
    assert_frame_equal(first, score_accounts(planted, seed=3, method=method))


def test_the_forest_uses_its_seed(planted: pl.DataFrame) -> None:
    a = AccountScorer(method="iforest", random_state=1).fit(planted).score_samples(planted)
    b = AccountScorer(method="iforest", random_state=2).fit(planted).score_samples(planted)
    assert not np.array_equal(a, b)


def test_scorer_api(planted: pl.DataFrame) -> None:
    scorer = AccountScorer(contamination=0.02)
    assert scorer.fit(planted) is scorer
    assert scorer.feature_names_in_ == list(FEATURES)
    assert scorer.directions_[list(FEATURES).index("account_age_days")] == -1
    score = scorer.score_samples(planted)
    np.testing.assert_allclose(scorer.decision_function(planted), score - scorer.threshold_)
    flagged = planted["account_id"].filter(pl.Series(scorer.predict(planted))).to_list()
    assert set(PLANTED) <= set(flagged)
    assert len(flagged) <= 5  # 2% of 205 accounts
    assert AccountScorer(**scorer.get_params()).get_params() == scorer.get_params()
    explained = scorer.explain(planted)
    assert explained["account_id"].to_list() == planted["account_id"].to_list()
    np.testing.assert_allclose(explained["score"].to_numpy(), score)


def test_scorer_rejects_bad_input(planted: pl.DataFrame) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        AccountScorer().score_samples(planted)
    with pytest.raises(ValueError, match="empty"):
        AccountScorer().fit(planted.clear())
    with pytest.raises(ValueError, match="negative"):
        AccountScorer().fit(planted.with_columns(reviews_posted=-pl.col("reviews_posted")))
    with pytest.raises(ValueError, match="unknown method"):
        AccountScorer(method="lof").fit(planted)
    with pytest.raises(ValueError, match="lack"):
        AccountScorer().fit(planted).score_samples(planted.drop("no_shows"))


def test_reason_wording_and_two_sided_unknown_columns() -> None:
    """Columns not in FEATURES are two-sided: an unusually low value is a reason too."""
    values = [0.5] * 98 + [0.45, 0.01]
    feats = pl.DataFrame({"account_id": range(100), "x": values, "five_star_share": values})
    out = score_accounts(feats, top=2).head(1)
    assert out["account_id"].item() == 99
    assert out["reasons"].item().to_list() == ["x 0.0 (median 0.5)"]


# --------------------------------------------------------------------------- precision@k


@pytest.mark.parametrize(
    ("k", "truth", "expected"),
    [
        (1, [5], 1.0),
        (2, [5], 0.5),
        (3, [5, 3], 1 / 3),  # 5, 2 and 4 (ties at 0.5 by id): only 5 is true
        (4, [5, 3], 0.5),
        (10, [1, 2, 3, 4, 5], 0.5),  # five rows against k=10
        (3, [], 0.0),
    ],
)
def test_precision_at_k(k: int, truth: list[int], expected: float) -> None:
    scored = pl.DataFrame({"account_id": [1, 2, 3, 4, 5], "score": [0.1, 0.5, 0.4, 0.5, 0.9]})
    assert precision_at_k(scored, truth, k=k) == pytest.approx(expected)


def test_precision_at_k_needs_a_positive_k() -> None:
    with pytest.raises(ValueError):
        precision_at_k(pl.DataFrame({"account_id": [1], "score": [1.0]}), [1], k=0)


# --------------------------------------------------------------------------- the small demo


@pytest.fixture(scope="module")
def small_demo(
    small_db: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, dict]:
    """Features of the small demo over the window covering the ring and the takeover wave."""
    folder = tmp_path_factory.mktemp("accounts-demo")
    engine = make_engine(small_db)
    manifest = get_meta(engine, "ground_truth")
    refresh(engine, root=folder)
    snap = snapshot_dir(engine, root=folder)
    engine.dispose()
    scen = {s["kind"]: s for s in manifest["scenarios"]}
    chosen = [scen["fake_review_ring"], scen["account_takeover_wave"]]
    start = min(datetime.fromisoformat(s["start"]) for s in chosen)
    end = max(datetime.fromisoformat(s["end"]) for s in chosen)
    features = account_features(
        pl.scan_parquet(snap / "events" / "*.parquet"),
        pl.read_parquet(snap / "accounts.parquet"),
        pl.read_parquet(snap / "cases.parquet"),
        start=start,
        end=end,
    )
    return features, scen


def test_small_demo_ring_and_takeover_on_top(small_demo: tuple[pl.DataFrame, dict]) -> None:
    features, scen = small_demo
    ring = scen["fake_review_ring"]["account_ids"]
    victims = scen["account_takeover_wave"]["account_ids"]
    assert (len(ring), len(victims)) == (12, 20)
    scored = score_accounts(features)
    ranks = scored.filter(pl.col("account_id").is_in(ring))["rank"]
    # measured: the 12 ring accounts and the 20 victims are ranks 1-32 of 3,185 (ring 1-11, 18)
    assert int(ranks.max()) <= 25  # type: ignore[arg-type]
    assert precision_at_k(scored, ring + victims, k=32) >= 0.85
    first = scored.filter(pl.col("account_id") == ring[0])["reasons"].item().to_list()
    assert any(r.startswith("reviews posted") for r in first)
