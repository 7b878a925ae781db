"""The demo's events (the exposure): base activity by day and kind, sign-ups, the
events behind reports, and the scenarios' bursts, with devices and IPs hashed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from analytics.core.models import US_STATES
from analytics.demo.calendar import DAY, Calendar
from analytics.demo.sampling import (
    Pool,
    code_labels,
    draw,
    hex_strings,
    splitmix64,
    time_of_day,
    timestamp,
)
from analytics.demo.scenarios import Scenarios
from analytics.demo.tuning import EVENT_MIX, KINDS, PLATFORMS, TARGETED, Scale

__all__ = ["Actors", "base_events", "event_actors", "event_frame", "extra_events"]


_RING_DEVICE_BASE = 7_000_000_000_000
_ATTACKER_BASE = 8_000_000_000_000
_PUBLIC_IP_BASE = 9_000_000_000_000


@dataclass
class Actors:
    """Who acts in the events: each account's home state and platform (by ``id - 1``) and
    pools of patients, anyone outside the ring, providers, and established providers
    (the targets of bookings and reviews)."""

    region: np.ndarray
    platform: np.ndarray
    patients: Pool
    anyone: Pool
    providers: Pool
    established: Pool


def event_actors(acc: pl.DataFrame) -> Actors:
    """The :class:`Actors` of the accounts of :func:`~analytics.demo.accounts.draw_accounts`."""
    ids, reg, cre = acc["id"].to_numpy(), acc["region_i"].to_numpy(), acc["created_day"].to_numpy()
    kind = acc["kind_i"].to_numpy()
    ring = acc["is_ring"].to_numpy()
    pat = (kind == 0) & ~ring
    est = (kind == 1) & (cre < 0)
    return Actors(
        region=reg,
        platform=acc["platform_i"].to_numpy(),
        patients=Pool(ids[pat], reg[pat], cre[pat]),
        anyone=Pool(ids[~ring], reg[~ring], cre[~ring]),
        providers=Pool(ids[kind > 0], reg[kind > 0], cre[kind > 0]),
        established=Pool(ids[est], reg[est], np.full(int(est.sum()), -1.0)),
    )


def _device(account: np.ndarray, k: np.ndarray) -> np.ndarray:
    return splitmix64(account.astype(np.uint64) * np.uint64(4) + k.astype(np.uint64))


def _ip(rng: np.random.Generator, account: np.ndarray) -> np.ndarray:
    n = len(account)
    own = splitmix64(
        account.astype(np.uint64) * np.uint64(16)
        + np.uint64(1 << 40)
        + rng.integers(0, 4, n).astype(np.uint64)
    )
    public = splitmix64(np.uint64(_PUBLIC_IP_BASE) + rng.integers(0, 200, n).astype(np.uint64))
    return np.where(rng.random(n) < 0.01, public, own)


def _event_block(
    rng: np.random.Generator,
    act: Actors,
    ts_s: np.ndarray,
    kind: np.ndarray,
    account: np.ndarray,
    *,
    target: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    device: np.ndarray | None = None,
    ip: np.ndarray | None = None,
    platform: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    n = len(ts_s)
    if platform is None:
        home = act.platform[account - 1]
        platform = np.where(rng.random(n) < 0.85, home, rng.integers(0, 3, n))
    if device is None:
        device = _device(account, rng.choice(3, n, p=[0.8, 0.15, 0.05]))
    return {
        "ts_s": ts_s.astype(float),
        "account": account.astype(np.int64),
        "kind_i": kind.astype(np.int64),
        "platform_i": platform.astype(np.int64),
        "region_i": act.region[account - 1].astype(np.int64),
        "dev": device.astype(np.uint64),
        "ip": (_ip(rng, account) if ip is None else ip).astype(np.uint64),
        "target": (np.full(n, -1) if target is None else target).astype(np.int64),
        "rating": (np.zeros(n) if rating is None else rating).astype(np.int64),
    }


def base_events(
    rng: np.random.Generator,
    sc: Scale,
    cal: Calendar,
    scen: Scenarios,
    act: Actors,
    d0: int,
    d1: int,
) -> dict[str, np.ndarray]:
    """Everyday activity on days ``d0`` to ``d1 - 1``: Poisson counts by day and kind
    (growth, weekdays, holidays, the launch), times of day, actors, targets and ratings."""
    kinds = list(EVENT_MIX)
    share = np.array([EVENT_MIX[k][0] for k in kinds])
    share /= share.sum()
    week = np.array([EVENT_MIX[k][1] for k in kinds])
    week /= week.mean(axis=1, keepdims=True)
    hol = np.array([EVENT_MIX[k][2] for k in kinds])
    per_day = sc.events * 0.94 / 730.0
    days = np.arange(d0, d1)
    lam = per_day * cal.growth[days, None] * share[None, :] * week.T[cal.dow[days]]
    lam = np.where(cal.holiday[days, None], lam * hol[None, :], lam)
    lam[days >= scen.launch, kinds.index("message_sent")] *= scen.launch_factor
    day_rel, k = draw(rng, lam)
    day = days[day_rel]
    ts = day * DAY + time_of_day(rng, len(day))
    group = np.array([EVENT_MIX[x][3] for x in kinds])[k]
    dayf = ts / DAY
    account = np.where(
        group == "patient",
        act.patients.pick(rng, dayf),
        np.where(group == "provider", act.providers.pick(rng, dayf), act.anyone.pick(rng, dayf)),
    )
    kind = np.array([KINDS.index(x) for x in kinds])[k]
    targeted = np.isin(kind, [KINDS.index(x) for x in TARGETED])
    target = np.where(
        targeted,
        act.established.pick(rng, np.zeros(len(ts)), act.region[account - 1], skew=2.5),
        -1,
    )
    rating = np.where(
        kind == KINDS.index("review_posted"),
        rng.choice([1, 2, 3, 4, 5], len(ts), p=[0.07, 0.05, 0.09, 0.24, 0.55]),
        0,
    )
    return _event_block(rng, act, ts, kind, account, target=target, rating=rating)


def _per_account_day(
    rng: np.random.Generator, days: np.ndarray, accounts: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(``rate``) draws for every (day, account): the day and account of each draw."""
    d, a = draw(rng, np.full((len(days), len(accounts)), rate))
    return days[d], accounts[a]


def extra_events(
    rng: np.random.Generator,
    sc: Scale,
    cal: Calendar,
    scen: Scenarios,
    act: Actors,
    acc: pl.DataFrame,
    cases: pl.DataFrame,
) -> dict[str, np.ndarray]:
    """The events besides everyday activity, inside the window: sign-ups, a
    ``report_filed`` behind every report, the ring's reviews and logins, and the
    takeover's failed logins and what follows them."""
    K = KINDS.index  # noqa: N806
    blocks: list[dict[str, np.ndarray]] = []
    ring_dev = splitmix64(np.uint64(_RING_DEVICE_BASE) + np.arange(3, dtype=np.uint64))
    ring_ip = splitmix64(np.uint64(_RING_DEVICE_BASE) + np.arange(100, 102, dtype=np.uint64))
    # Sign-ups of the accounts created inside the window.
    new = acc.filter(pl.col("created_day") >= 0)
    ids = new["id"].to_numpy()
    is_ring = np.isin(ids, scen.ring_ids)
    blocks.append(
        _event_block(
            rng,
            act,
            new["created_day"].to_numpy() * DAY,
            np.full(len(ids), K("signup")),
            ids,
            device=np.where(
                is_ring, rng.choice(ring_dev, len(ids)), _device(ids, np.zeros(len(ids)))
            ),
            ip=np.where(is_ring, rng.choice(ring_ip, len(ids)), _ip(rng, ids)),
        )
    )
    # A report_filed event behind every user or provider report.
    rep = cases.filter(pl.col("reporter_account_id").is_not_null())
    opened = rep["opened_s"].to_numpy() - rng.uniform(5, 300, rep.height)
    blocks.append(
        _event_block(
            rng,
            act,
            np.maximum(opened, 0),
            np.full(rep.height, K("report_filed")),
            rep["reporter_account_id"].to_numpy(),
            target=rep["subject_account_id"].to_numpy(),
        )
    )
    # 1. The fake-review ring: bursts of 5-star reviews from shared devices for 12 days.
    day, acct = _per_account_day(rng, np.arange(scen.ring, scen.ring + 12), scen.ring_ids, 1.6)
    n = len(acct)
    blocks.append(
        _event_block(
            rng,
            act,
            day * DAY + time_of_day(rng, n),
            np.full(n, K("review_posted")),
            acct,
            target=rng.choice(scen.ring_targets, n),
            rating=np.full(n, 5),
            device=rng.choice(ring_dev, n),
            ip=rng.choice(ring_ip, n),
            platform=np.full(n, 2),
        )
    )
    day, acct = _per_account_day(rng, np.arange(scen.ring - 6, scen.ring + 12), scen.ring_ids, 1.0)
    n = len(acct)
    blocks.append(
        _event_block(
            rng,
            act,
            day * DAY + time_of_day(rng, n),
            np.full(n, K("login")),
            acct,
            device=rng.choice(ring_dev, n),
            ip=rng.choice(ring_ip, n),
            platform=np.full(n, 2),
        )
    )
    # 2. Account takeover: credential stuffing from a few IPs, then takeovers and fraud.
    att_dev = splitmix64(np.uint64(_ATTACKER_BASE) + np.arange(8, dtype=np.uint64))
    att_ip = splitmix64(np.uint64(_ATTACKER_BASE) + np.arange(100, 106, dtype=np.uint64))
    n = sc.ato_attempts
    targets = act.patients.pick(rng, np.full(n, float(scen.ato)), skew=1.0)
    v = scen.ato_victims
    targets = np.concatenate([targets, np.repeat(v, 3)])
    n = len(targets)
    blocks.append(
        _event_block(
            rng,
            act,
            (scen.ato + rng.uniform(0, 1.5, n)) * DAY,
            np.full(n, K("login_failed")),
            targets,
            device=rng.choice(att_dev, n),
            ip=rng.choice(att_ip, n),
            platform=np.zeros(n),
        )
    )
    m = len(v)
    take = (scen.ato + rng.uniform(0.5, 3, m)) * DAY
    for kind, lag, reps in (
        ("login", 0.0, 3),
        ("profile_updated", 0.05, 1),
        ("payment_failed", 2.0, 2),
        ("booking_created", 1.0, 1),
    ):
        t = np.repeat(take, reps) + rng.uniform(lag, lag + 6, m * reps) * DAY
        blocks.append(
            _event_block(
                rng,
                act,
                t,
                np.full(m * reps, K(kind)),
                np.repeat(v, reps),
                device=rng.choice(att_dev, m * reps),
                ip=rng.choice(att_ip, m * reps),
                platform=np.zeros(m * reps),
                target=(
                    act.established.pick(
                        rng, np.zeros(m * reps), act.region[np.repeat(v, reps) - 1]
                    )
                    if kind == "booking_created"
                    else None
                ),
            )
        )
    out = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    keep = (out["ts_s"] >= 0) & (out["ts_s"] < cal.end_s)
    return {k: a[keep] for k, a in out.items()}


def event_frame(cal: Calendar, e: dict[str, np.ndarray], id0: int) -> pl.DataFrame:
    """Drawn events as ``events`` rows: sorted by time, account and kind, numbered from
    ``id0``, codes as labels, devices and IPs as hex hashes."""
    order = np.lexsort((e["kind_i"], e["account"], e["ts_s"]))
    e = {k: v[order] for k, v in e.items()}
    n = len(order)
    df = pl.DataFrame(
        {
            "id": np.arange(id0, id0 + n, dtype=np.int64),
            "ts_s": e["ts_s"],
            "account_id": e["account"],
            "kind_i": e["kind_i"],
            "platform_i": e["platform_i"],
            "region_i": e["region_i"],
            "target": e["target"],
            "rating": e["rating"],
        }
    )
    return df.select(
        "id",
        timestamp(cal.start, "ts_s").alias("ts"),
        "account_id",
        code_labels("kind_i", KINDS).alias("kind"),
        code_labels("platform_i", PLATFORMS).alias("platform"),
        code_labels("region_i", US_STATES).alias("region"),
        device_hash=hex_strings(e["dev"]),
        ip_hash=hex_strings(e["ip"]),
        target_account_id=pl.when(pl.col("target") > 0).then(pl.col("target")),
        rating=pl.when(pl.col("rating") > 0).then(pl.col("rating").cast(pl.Int16)),
    )
