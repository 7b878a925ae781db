"""Behavioural features of the accounts active in a window, one row per account.

The first step of account scoring (:mod:`analytics.detectors.account_scores` scores and
explains them): :func:`account_features` turns a window of events, the accounts and the
cases into one row per active account; :data:`FEATURES` says what each column is, which
direction of it is suspicious and how it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import polars as pl

__all__ = ["FEATURES", "Feature", "account_features"]


@dataclass(frozen=True)
class Feature:
    """How one account feature reads: its label, suspicious direction and display unit.

    ``direction`` is ``1`` when high values are suspicious, ``-1`` when low values are (a
    young account) and ``0`` when both are. ``unit`` chooses how values print:
    ``"count"`` and ``"days"`` as whole numbers, ``"share"`` with two decimals and
    ``"rate"`` with one.

    >>> FEATURES["reviews_posted"]
    Feature(label='reviews posted', direction=1, unit='count')
    """

    label: str
    direction: Literal[-1, 0, 1]
    unit: Literal["count", "share", "rate", "days"]


#: The features of :func:`account_features`, in column order. Each is computed over the
#: window ``[start, end)`` for every account that acted in it (the ``account_id`` of at
#: least one event):
#:
#: - ``reviews_posted``: its ``review_posted`` events;
#: - ``five_star_share``: the share of those rated 5 (null when it posted none). On its own
#:   it rarely separates anyone, as most reviewers post one review and most reviews are
#:   5-star; it tells apart the accounts that post many;
#: - ``young_review_share``: the share of its reviews posted while it was itself younger
#:   than ``young_days`` (null when it posted none): accounts created to review;
#: - ``young_reviewer_share``: the share of the reviews it *received* (as the provider,
#:   ``target_account_id``) whose reviewer was younger than ``young_days`` at the time
#:   (null when it received none): the beneficiary of a ring;
#: - ``distinct_devices``, ``distinct_ips``: device and IP hashes it used;
#: - ``shared_accounts``: other accounts that used one of its devices or IPs in the
#:   window (see ``max_key_accounts`` of :func:`account_features`);
#: - ``failed_login_ratio``: ``login_failed / (login + login_failed)`` (null when it did
#:   neither);
#: - ``cancellations``, ``no_shows``: its ``booking_cancelled`` and ``no_show`` events;
#: - ``payment_failures``, ``profile_updates``: its ``payment_failed`` and
#:   ``profile_updated`` events, what a hijacked account shows after a takeover;
#: - ``messages_per_day``: ``message_sent`` events per day (UTC) on which it did anything;
#: - ``reports_received``: cases opened in the window with the account as their subject;
#: - ``account_age_days``: days from its creation to the end of the window (null when the
#:   account is unknown).
FEATURES: dict[str, Feature] = {
    "reviews_posted": Feature("reviews posted", 1, "count"),
    "five_star_share": Feature("5-star share", 1, "share"),
    "young_review_share": Feature("reviews posted when new", 1, "share"),
    "young_reviewer_share": Feature("reviews received from new accounts", 1, "share"),
    "distinct_devices": Feature("devices", 1, "count"),
    "distinct_ips": Feature("IP addresses", 1, "count"),
    "shared_accounts": Feature("accounts sharing its devices or IPs", 1, "count"),
    "failed_login_ratio": Feature("failed-login ratio", 1, "share"),
    "cancellations": Feature("cancellations", 1, "count"),
    "no_shows": Feature("no-shows", 1, "count"),
    "payment_failures": Feature("payment failures", 1, "count"),
    "profile_updates": Feature("profile updates", 1, "count"),
    "messages_per_day": Feature("messages per active day", 1, "rate"),
    "reports_received": Feature("reports received", 1, "count"),
    "account_age_days": Feature("account age (days)", -1, "days"),
}

_EVENT_COLUMNS = ("ts", "account_id", "kind", "target_account_id", "device_hash", "ip_hash")
_DAY_US = 86_400_000_000


def _empty_features() -> pl.DataFrame:
    return pl.DataFrame(schema={"account_id": pl.Int64, **dict.fromkeys(FEATURES, pl.Float64)})


def _ratio(num: str, den: str) -> pl.Expr:
    """``num / den``, null where the denominator is zero."""
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den))


def _activity(ev: pl.LazyFrame, young: pl.Expr) -> pl.LazyFrame:
    """Per actor: counts of the window's events."""

    def n(kind: str) -> pl.Expr:
        return (pl.col("kind") == kind).sum()

    review = pl.col("kind") == "review_posted"
    return ev.group_by("account_id").agg(
        reviews_posted=n("review_posted"),
        _five=(review & (pl.col("rating") == 5)).sum(),
        _young=(review & young).sum(),
        distinct_devices=pl.col("device_hash").drop_nulls().n_unique(),
        distinct_ips=pl.col("ip_hash").drop_nulls().n_unique(),
        _logins=n("login"),
        _failed=n("login_failed"),
        cancellations=n("booking_cancelled"),
        no_shows=n("no_show"),
        payment_failures=n("payment_failed"),
        profile_updates=n("profile_updated"),
        _messages=n("message_sent"),
        _days=pl.col("ts").dt.date().n_unique(),
    )


def _received(ev: pl.LazyFrame, young: pl.Expr) -> pl.LazyFrame:
    """Per reviewed provider: reviews received, and those from young reviewers."""
    return (
        ev.filter(pl.col("kind") == "review_posted", pl.col("target_account_id").is_not_null())
        .group_by(pl.col("target_account_id").alias("account_id"))
        .agg(_received=pl.len(), _received_young=young.sum())
    )


def _shared(ev: pl.LazyFrame, max_key_accounts: int) -> pl.LazyFrame:
    """Per account: how many other accounts used one of its devices or IPs.

    Devices and IPs ("keys") used by at most ``max_key_accounts`` accounts are
    self-joined and each neighbour counted once. A key shared more widely adds its size
    minus one without that de-duplication, so the join stays small whatever the traffic.
    """
    keys = (
        pl.concat(
            [
                ev.select("account_id", key=pl.lit("d:") + pl.col("device_hash")),
                ev.select("account_id", key=pl.lit("i:") + pl.col("ip_hash")),
            ]
        )
        .drop_nulls()
        .unique()
        .with_columns(size=pl.len().over("key"))
    )
    small = keys.filter(pl.col("size") <= max_key_accounts).select("account_id", "key")
    near = (
        small.join(small.rename({"account_id": "other"}), on="key")
        .filter(pl.col("account_id") != pl.col("other"))
        .group_by("account_id")
        .agg(_near=pl.col("other").n_unique())
    )
    wide = (
        keys.filter(pl.col("size") > max_key_accounts)
        .group_by("account_id")
        .agg(_wide=(pl.col("size") - 1).sum())
    )
    return near.join(wide, on="account_id", how="full", coalesce=True).select(
        "account_id", shared_accounts=pl.col("_near").fill_null(0) + pl.col("_wide").fill_null(0)
    )


def account_features(
    events: pl.LazyFrame,
    accounts: pl.DataFrame,
    cases: pl.DataFrame,
    *,
    start: datetime,
    end: datetime,
    young_days: float = 7.0,
    max_key_accounts: int = 1_000,
) -> pl.DataFrame:
    """One row of behavioural features per account active in ``[start, end)``.

    Parameters
    ----------
    events : events with ``ts, account_id, kind, target_account_id, device_hash,
        ip_hash, rating`` (the snapshot's ``events/part-*.parquet``); only the window is
        read.
    accounts : ``id, created_at`` of the accounts. A reviewer missing here is not
        counted as young, and its age is null.
    cases : ``subject_account_id, opened_at`` of the cases.
    start, end : the window; ``end`` is excluded.
    young_days : a reviewer younger than this many days at review time is "new".
    max_key_accounts : a device or IP used by more accounts than this (a carrier NAT,
        public Wi-Fi, an attacker's proxy) adds its full size to ``shared_accounts``
        instead of being joined account by account.

    Returns
    -------
    pl.DataFrame
        ``account_id`` and the Float64 columns of :data:`FEATURES`, sorted by account.
        Counts are zero, and shares null, where there is nothing to count.

    Examples
    --------
    Account 1, two days old, reviews provider 2 twice (a 5 and a 4) from device ``a``,
    which provider 2 also uses; account 1 is reported once:

    >>> from datetime import datetime as dt
    >>> ev = pl.LazyFrame({
    ...     "ts": [dt(2026, 1, 2), dt(2026, 1, 2), dt(2026, 1, 3)],
    ...     "account_id": [1, 1, 2],
    ...     "kind": ["review_posted", "review_posted", "login"],
    ...     "target_account_id": [2, 2, None],
    ...     "device_hash": ["a", "a", "a"],
    ...     "ip_hash": ["x", "y", "z"],
    ...     "rating": [5, 4, None],
    ... })
    >>> acc = pl.DataFrame({"id": [1, 2], "created_at": [dt(2026, 1, 1), dt(2025, 1, 1)]})
    >>> cases = pl.DataFrame({"subject_account_id": [1], "opened_at": [dt(2026, 1, 3)]})
    >>> f = account_features(ev, acc, cases, start=dt(2026, 1, 1), end=dt(2026, 1, 8))
    >>> f.select("account_id", "reviews_posted", "five_star_share", "young_reviewer_share",
    ...          "shared_accounts", "reports_received").rows()
    [(1, 2.0, 0.5, None, 1.0, 1.0), (2, 0.0, None, 1.0, 1.0, 0.0)]
    """
    ev = (
        events.filter(pl.col("ts") >= start, pl.col("ts") < end)
        .select(*_EVENT_COLUMNS, pl.col("rating").cast(pl.Int64))
        .with_columns(pl.col("kind").cast(pl.String))
        .join(
            accounts.lazy().select(pl.col("id").alias("account_id"), _created="created_at"),
            on="account_id",
            how="left",
        )
        .collect()  # the window is read once; every aggregate below works on it
        .lazy()
    )
    young = (pl.col("ts") - pl.col("_created") < pl.duration(days=young_days)).fill_null(False)
    reports = (
        cases.lazy()
        .filter(pl.col("opened_at") >= start, pl.col("opened_at") < end)
        .group_by(pl.col("subject_account_id").alias("account_id"))
        .agg(reports_received=pl.len())
    )
    age = accounts.lazy().select(
        pl.col("id").alias("account_id"),
        account_age_days=(
            (pl.lit(end) - pl.col("created_at")).dt.total_microseconds() / _DAY_US
        ).clip(lower_bound=0.0),
    )
    out = (
        _activity(ev, young)
        .join(_received(ev, young), on="account_id", how="left")
        .join(_shared(ev, max_key_accounts), on="account_id", how="left")
        .join(reports, on="account_id", how="left")
        .join(age, on="account_id", how="left")
        .with_columns(
            pl.col("shared_accounts", "reports_received").fill_null(0),
            five_star_share=_ratio("_five", "reviews_posted"),
            young_review_share=_ratio("_young", "reviews_posted"),
            young_reviewer_share=_ratio("_received_young", "_received"),
            failed_login_ratio=pl.when(pl.col("_logins") + pl.col("_failed") > 0).then(
                pl.col("_failed") / (pl.col("_logins") + pl.col("_failed"))
            ),
            messages_per_day=pl.col("_messages") / pl.col("_days"),
        )
        .select("account_id", *[pl.col(c).cast(pl.Float64) for c in FEATURES])
        .sort("account_id")
        .collect()
    )
    return out if out.height else _empty_features()
