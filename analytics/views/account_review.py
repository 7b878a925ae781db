"""Accounts to review: the account anomaly scores of an incident's (or a week's) accounts.

The accounts active over a window (an incident's days, widened to a week) are scored by
:mod:`analytics.detectors.account_scores` (one-sided robust z-scores of their behaviour;
precision of the top 50 is 1.0 on the medium demo's ring and takeover wave), each with
the features that make it unusual, in words. :func:`accounts_to_review` keeps the
incident's own accounts (the subjects of its cases, or the accounts behind its events)
and labels each with its kind, region and score, so a list of them never shows bare ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, select

from analytics import access
from analytics.core.models import Account, Role
from analytics.core.slices import parse_slice
from analytics.present.formatting import format_days, humanise
from analytics.sources import load
from analytics.views.anomalies import Incident, incident_days

__all__ = [
    "REVIEW_DAYS",
    "REVIEW_ROWS",
    "AccountsToReview",
    "accounts_to_review",
    "NOT_ACTIVE",
    "inactive_table",
    "incident_accounts",
    "review_table",
    "review_window",
]

#: Accounts listed at most.
REVIEW_ROWS = 15
#: The scoring window is at least this many days (ending on the incident's last day).
REVIEW_DAYS = 7
_EVENT_DIMS = ("kind", "region", "platform")
_COLUMNS: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "label": pl.String(),
    "kind": pl.String(),
    "region": pl.String(),
    "status": pl.String(),
    "score": pl.Float64(),
    "rank": pl.Int64(),
    "why": pl.String(),
}


@dataclass(frozen=True)
class AccountsToReview:
    """The ``accounts`` to review (columns of :func:`review_table`), how many accounts
    were ``active`` (scored) in ``[start, end)``, and whether they are the incident's
    own accounts (``of_incident``) or, without an incident, the window's most unusual.
    ``none_active`` says that none of the incident's accounts was active in the window:
    they are then listed unscored (never replaced by unrelated accounts)."""

    accounts: pl.DataFrame
    active: int
    start: datetime
    end: datetime
    of_incident: bool
    none_active: bool = False

    @property
    def days(self) -> str:
        """The window's days in words (``16–22 Nov``)."""
        return format_days(self.start.date(), (self.end - timedelta(days=1)).date())


def review_window(first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the scoring for days ``first`` to ``last``: those days, widened
    to :data:`REVIEW_DAYS` days ending on ``last`` (one day says little about behaviour).

    >>> review_window(date(2026, 11, 20), date(2026, 11, 20))
    (datetime.datetime(2026, 11, 14, 0, 0), datetime.datetime(2026, 11, 21, 0, 0))
    >>> review_window(date(2026, 11, 2), date(2026, 11, 15))[0]
    datetime.datetime(2026, 11, 2, 0, 0)
    """
    end = datetime.combine(last + timedelta(days=1), datetime.min.time())
    start = min(datetime.combine(first, datetime.min.time()), end - timedelta(days=REVIEW_DAYS))
    return start, end


def review_table(
    scored: pl.DataFrame,
    info: pl.DataFrame,
    *,
    focus: Sequence[int] | None = None,
    top: int = REVIEW_ROWS,
) -> pl.DataFrame:
    """The accounts to review, most unusual first, labelled in words.

    Parameters
    ----------
    scored
        :func:`analytics.detectors.account_scores.score_accounts`' output (``account_id``,
        ``score``, ``rank``, ``reasons``) over every active account.
    info
        ``account_id``, ``kind``, ``region``, ``status`` of (at least) the accounts shown.
    focus
        Keep only these accounts (an incident's); ``None`` keeps every account.
    top
        At most this many rows.

    Returns
    -------
    pl.DataFrame
        ``account_id``, ``label`` (``Account 7 · Patient · FL · score 9.1``), ``kind``,
        ``region``, ``status`` (in words), ``score``, ``rank`` (among every active
        account) and ``why`` (the reasons, in words, joined by ``; ``).

    Examples
    --------
    >>> scored = pl.DataFrame({"account_id": [7, 3, 5], "score": [9.1, 4.0, 0.5],
    ...     "rank": [1, 2, 3], "reasons": [["reviews posted 25 (median 0)"], [], []]})
    >>> info = pl.DataFrame({"account_id": [3, 7], "kind": ["provider", "patient"],
    ...     "region": ["TX", "FL"], "status": ["active", "suspended"]})
    >>> review_table(scored, info, focus=[3, 7]).select("label", "why").rows()
    [('Account 7 · Patient · FL · score 9.1', 'reviews posted 25 (median 0)'), \
('Account 3 · Provider · TX · score 4.0', 'nothing unusual on its own')]
    """
    kept = scored if focus is None else scored.filter(pl.col("account_id").is_in(list(focus)))
    best = kept.sort(["score", "account_id"], descending=[True, False]).head(top)
    joined, kinds, regions = _with_facts(best, info)
    labels = [
        f"Account {a} · {k} · {r} · score {s:.1f}"
        for a, k, r, s in zip(joined["account_id"], kinds, regions, joined["score"], strict=True)
    ]
    return joined.select(
        pl.col("account_id").cast(pl.Int64),
        pl.Series("label", labels, dtype=pl.String),
        pl.Series("kind", kinds, dtype=pl.String),
        pl.Series("region", regions, dtype=pl.String),
        pl.Series("status", [humanise(s) for s in joined["status"]], dtype=pl.String),
        pl.col("score").cast(pl.Float64),
        pl.col("rank").cast(pl.Int64),
        pl.when(pl.col("reasons").list.len() > 0)
        .then(pl.col("reasons").list.join("; "))
        .otherwise(pl.lit("nothing unusual on its own"))
        .alias("why"),
    )


def incident_accounts(
    engine: Engine, incident: Incident, *, cases: pl.DataFrame, role: Role | str
) -> list[int]:
    """The accounts behind an incident: the subjects of its ``cases`` (a case slice's,
    :func:`analytics.views.anomalies.incident_cases`), or for an event slice the accounts
    whose events of the slice fall in the incident's days. Empty for automated
    detections (a fall has no accounts of its own)."""
    access.require(role, "cases")
    if incident.source == "cases":
        return sorted({int(a) for a in cases["subject_account_id"].drop_nulls().to_list()})
    if incident.source != "events":
        return []
    first, last = incident_days(incident)
    start = datetime.combine(first, datetime.min.time())
    end = datetime.combine(last + timedelta(days=1), datetime.min.time())
    dims = {k: v for k, v in parse_slice(incident.slice).items() if k in _EVENT_DIMS}
    events = load.snapshot_frames(engine)["events"]
    found = (
        events.filter(pl.col("ts") >= start, pl.col("ts") < end)
        .filter(*[pl.col(k).cast(pl.String) == v for k, v in dims.items()])
        .select(pl.col("account_id").cast(pl.Int64).unique())
        .collect()
    )
    return sorted(found["account_id"].drop_nulls().to_list())


def _account_info(engine: Engine, ids: list[int]) -> pl.DataFrame:
    schema = {"account_id": pl.Int64, "kind": pl.String, "region": pl.String, "status": pl.String}
    if not ids:
        return pl.DataFrame(schema=schema)
    query = select(Account.id, Account.kind, Account.region, Account.status).where(
        Account.id.in_(ids)
    )
    with engine.connect() as conn:
        rows = [(int(i), str(k), str(r), str(s)) for i, k, r, s in conn.execute(query)]
    return pl.DataFrame(rows, schema=schema, orient="row")


def accounts_to_review(
    engine: Engine,
    *,
    start: datetime,
    end: datetime,
    focus: Sequence[int] | None,
    role: Role | str,
    top: int = REVIEW_ROWS,
) -> AccountsToReview:
    """Score every account active in ``[start, end)`` and list the ``focus`` accounts (an
    incident's) most unusual first; ``focus`` None lists the window's most unusual
    accounts. When none of the ``focus`` accounts was active, they are listed unscored
    (:func:`inactive_table`, ``none_active``): an incident never borrows other accounts.
    Account ids come with kind, region and status."""
    from analytics.detectors.account_features import account_features
    from analytics.detectors.account_scores import score_accounts

    access.require(role, "cases")
    frames = load.snapshot_frames(engine)
    features = account_features(
        frames["events"],
        frames["accounts"].select("id", "created_at").collect(),
        frames["cases"].select("subject_account_id", "opened_at").collect(),
        start=start,
        end=end,
    )
    scored = score_accounts(features).select("account_id", "score", "rank", "reasons")
    wanted = sorted(set(focus or ()))
    shown = scored if focus is None else scored.filter(pl.col("account_id").is_in(wanted))
    none_active = bool(wanted) and shown.is_empty()
    if none_active:
        ids = wanted[:top]
        table = inactive_table(ids, _account_info(engine, ids))
    else:
        best = shown.sort(["score", "account_id"], descending=[True, False]).head(top)
        ids = best["account_id"].to_list()
        table = review_table(shown, _account_info(engine, ids), top=top)
    return AccountsToReview(
        accounts=table.select(list(_COLUMNS)),
        active=scored.height,
        start=start,
        end=end,
        of_incident=focus is not None,
        none_active=none_active,
    )


#: What an unscored account's score says.
NOT_ACTIVE = "not active in the window"


def inactive_table(ids: Sequence[int], info: pl.DataFrame) -> pl.DataFrame:
    """An incident's own accounts when none was active in the scoring window: the columns
    of :func:`review_table`, unscored (``score`` and ``rank`` missing, ``why`` says so).

    >>> info = pl.DataFrame({"account_id": [3], "kind": ["provider"], "region": ["TX"],
    ...     "status": ["active"]})
    >>> inactive_table([3, 8], info).select("label", "score").rows()
    [('Account 3 · Provider · TX · not active in the window', None), \
('Account 8 · Unknown kind · no region · not active in the window', None)]
    """
    unscored = pl.DataFrame(
        {"account_id": list(ids)},
        schema={"account_id": pl.Int64},
    ).with_columns(
        pl.lit(None, pl.Float64).alias("score"),
        pl.lit(None, pl.Int64).alias("rank"),
        pl.lit([], pl.List(pl.String)).alias("reasons"),
    )
    joined, kinds, regions = _with_facts(unscored, info)
    labels = [
        f"Account {a} · {k} · {r} · {NOT_ACTIVE}"
        for a, k, r in zip(joined["account_id"], kinds, regions, strict=True)
    ]
    return joined.select(
        pl.col("account_id"),
        pl.Series("label", labels, dtype=pl.String),
        pl.Series("kind", kinds, dtype=pl.String),
        pl.Series("region", regions, dtype=pl.String),
        pl.Series("status", [humanise(s) for s in joined["status"]], dtype=pl.String),
        pl.col("score"),
        pl.col("rank"),
        pl.lit(NOT_ACTIVE).alias("why"),
    )


def _with_facts(
    accounts: pl.DataFrame, info: pl.DataFrame
) -> tuple[pl.DataFrame, list[str], list[str]]:
    """``accounts`` joined with their kind, region and status from ``info``, and the kind
    and region in words ("Unknown kind", "no region" when missing)."""
    joined = accounts.join(
        info.select(
            pl.col("account_id").cast(pl.Int64), pl.col("kind", "region", "status").cast(pl.String)
        ),
        on="account_id",
        how="left",
    )
    kinds = [humanise(k) if k is not None else "Unknown kind" for k in joined["kind"]]
    regions = [r or "no region" for r in joined["region"]]
    return joined, kinds, regions
