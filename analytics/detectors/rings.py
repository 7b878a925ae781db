"""Rings of linked accounts: accounts tied together by the devices and IPs they share.

Coordinated abuse (a fake-review ring, a farm of fresh accounts) shows up as accounts
that use the same devices and IP addresses. Within a window ``[as_of - window, as_of)``
:func:`find_rings` builds the bipartite graph *account -- identifier* (a device hash or
an IP hash) and takes its connected components with
:func:`scipy.sparse.csgraph.connected_components`: two accounts are in one ring when a
path of shared identifiers joins them. Everything is vectorised (Polars group-bys, one
sparse matrix); no Python walk over the edges.

Not every shared identifier is a link:

- **hubs**: an identifier used by more than ``max_accounts`` accounts in the window (a
  carrier NAT or public Wi-Fi address, an attacker's proxy used against thousands of
  victims) links nobody, otherwise one café would merge half a city into one "ring";
- **one-off uses**: an account is tied to an identifier only when it used it in at least
  ``min_uses`` events of the window; a single login through a public address does not
  make its owner part of anything.

Each ring gets a size, its shared devices and IPs, its members' ages, the share of them
reported and actioned, and its growth: how many of its members were already linked
together in the previous window of the same length. :func:`find_rings` documents the
rule that flags a ring as growing, and the score rings are ranked by.

On the medium demo (2M events) the 14 days up to a week into the fake-review burst hold
exactly one ring: the 40 accounts of the scenario on 3 devices and 2 IPs. The 200
shared public addresses (1% of traffic) never link two accounts twice, and the
credential-stuffing devices and addresses of the account-takeover wave (1,100 to
1,600 accounts each) are hubs. The default hub limit, 500 accounts, sits between those
and the large demo's ring (150 accounts on each of its identifiers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import Engine, select

from analytics.core.models import Event
from analytics.sources import load
from analytics.sources.frames import VIOLATIONS

__all__ = [
    "IDENTIFIER_KINDS",
    "LINK_COLUMNS",
    "find_rings",
    "ring_edges",
    "ring_facts",
    "ring_links",
]

#: The columns (and types) :func:`find_rings` reads from ``links``.
LINK_COLUMNS: dict[str, Any] = {
    "account_id": pl.Int64,
    "ts": pl.Datetime("us"),
    "device_hash": pl.String,
    "ip_hash": pl.String,
}
#: The kinds of identifier that link accounts, and the ``links`` column of each.
IDENTIFIER_KINDS: dict[str, str] = {"device": "device_hash", "ip": "ip_hash"}

_KIND = pl.Enum(list(IDENTIFIER_KINDS))
_DAY_US = 86_400_000_000

_EDGE_SCHEMA: dict[str, Any] = {
    "account_id": pl.Int64,
    "kind": _KIND,
    "identifier": pl.String,
    "uses": pl.Int64,
    "first_seen": pl.Datetime("us"),
    "last_seen": pl.Datetime("us"),
}
_RING_SCHEMA: dict[str, Any] = {
    "ring_id": pl.Int64,
    "size": pl.Int64,
    "devices": pl.Int64,
    "ips": pl.Int64,
    "first_seen": pl.Datetime("us"),
    "median_age_days": pl.Float64,
    "young_share": pl.Float64,
    "reported_share": pl.Float64,
    "actioned_share": pl.Float64,
    "previous_size": pl.Int64,
    "growth": pl.Int64,
    "is_growing": pl.Boolean,
    "score": pl.Float64,
}
_MEMBER_SCHEMA: dict[str, Any] = {
    "ring_id": pl.Int64,
    "account_id": pl.Int64,
    "first_seen": pl.Datetime("us"),
    "events": pl.Int64,
    "age_days": pl.Float64,
    "reported": pl.Boolean,
    "actioned": pl.Boolean,
}


# --------------------------------------------------------------------------- reading


def ring_links(
    engine: Engine,
    *,
    start: datetime,
    end: datetime,
    loader: Literal["snapshot", "pushdown"] | None = None,
    root: Path | None = None,
) -> pl.DataFrame:
    """The events :func:`find_rings` needs, ``[start, end)``: only :data:`LINK_COLUMNS`.

    From the Parquet snapshot (refreshed first when stale) or, with the pushdown loader,
    one SQLAlchemy Core ``SELECT`` of the four columns over the window. For rings with
    growth as of ``as_of``, read from ``as_of - 2 * window``: the previous window is
    needed too.

    Returns
    -------
    pl.DataFrame
        ``account_id, ts, device_hash, ip_hash``, in no particular order.

    Examples
    --------
    >>> from sqlalchemy import create_engine
    >>> from analytics.core.models import init_db
    >>> engine = create_engine("sqlite://")
    >>> _ = init_db(engine)
    >>> ring_links(engine, start=datetime(2026, 1, 1), end=datetime(2026, 1, 15),
    ...            loader="pushdown").schema == pl.Schema(LINK_COLUMNS)
    True
    """
    loader = loader or load.loader_for(engine)
    if loader == "snapshot":
        frame = (
            load.snapshot_frames(engine, root=root)["events"]
            .filter(pl.col("ts") >= start, pl.col("ts") < end)
            .select(list(LINK_COLUMNS))
            .collect()
        )
    else:
        stmt = select(Event.account_id, Event.ts, Event.device_hash, Event.ip_hash).where(
            Event.ts >= start, Event.ts < end
        )
        with engine.connect() as conn:
            frame = pl.read_database(stmt, conn, schema_overrides=LINK_COLUMNS)
    return _conform(frame).collect()


def ring_facts(engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``accounts`` (``id, created_at``) and ``cases`` (``subject_account_id,
    opened_at, resolution, resolved_at``) frames :func:`find_rings` takes, from the
    Parquet snapshot (refreshed first when stale)."""
    frames = load.snapshot_frames(engine)
    people = frames["accounts"].select("id", "created_at").collect()
    cases = (
        frames["cases"]
        .select("subject_account_id", "opened_at", "resolution", "resolved_at")
        .collect()
    )
    return people, cases


def _conform(links: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    lazy = links.lazy()
    return lazy.select(pl.col(c).cast(t) for c, t in LINK_COLUMNS.items())


# --------------------------------------------------------------------------- the graph


def _shared_uses(
    links: pl.LazyFrame, *, as_of: datetime, window: timedelta, periods: int
) -> pl.LazyFrame:
    """Per window, shared identifier and account: uses, and the first and last of them.

    ``period`` 0 is ``[as_of - window, as_of)``, 1 the window before it, and so on up to
    ``periods - 1``. Only identifiers used by two accounts or more in a period are kept:
    a first pass finds them (smallest and largest account per identifier), the second
    counts uses on them alone. Identifiers are grouped by a 64-bit hash of their text and
    period (``_key``; a collision among the few million identifiers of a window has a
    probability below one in a million) and keep their text in ``identifier``.
    """
    window_us = window // timedelta(microseconds=1)
    ev = links.filter(pl.col("ts") >= as_of - periods * window, pl.col("ts") < as_of)
    ev = ev.with_columns(
        period=((pl.lit(as_of) - pl.col("ts")).dt.total_microseconds() - 1) // window_us
    )
    frames = []
    for kind, column in IDENTIFIER_KINDS.items():
        used = ev.select(
            "period",
            "account_id",
            "ts",
            identifier=pl.col(column),
            _key=pl.col(column).hash().xor(pl.col("period").cast(pl.UInt64)),
        ).drop_nulls("identifier")
        shared = (
            used.group_by("_key")
            .agg(lo=pl.col("account_id").min(), hi=pl.col("account_id").max())
            .filter(pl.col("lo") != pl.col("hi"))
            .select("_key")
        )
        frames.append(
            used.join(shared, on="_key", how="semi")
            .group_by("_key", "account_id")
            .agg(
                period=pl.col("period").first(),
                identifier=pl.col("identifier").first(),
                uses=pl.len().cast(pl.Int64),
                first_seen=pl.col("ts").min(),
                last_seen=pl.col("ts").max(),
            )
            .with_columns(kind=pl.lit(kind, _KIND))
        )
    return pl.concat(frames)


def _linking(uses: pl.LazyFrame, *, max_accounts: int, min_uses: int) -> pl.LazyFrame:
    """The edges that link: no hub identifiers, no one-off uses, two accounts or more."""
    ident = ("kind", "_key")
    return (
        uses.filter(pl.len().over(ident) <= max_accounts)
        .filter(pl.col("uses") >= min_uses)
        .filter(pl.len().over(ident) >= 2)
    )


def _components(edges: pl.DataFrame) -> pl.DataFrame:
    """``account_id -> ring_id`` (the smallest account id of its connected component).

    >>> e = pl.DataFrame({"kind": ["ip"] * 4, "_key": [1, 1, 2, 2], "account_id": [5, 7, 7, 9]})
    >>> _components(e).rows()
    [(5, 5), (7, 5), (9, 5)]
    """
    if edges.is_empty():
        return pl.DataFrame(schema={"account_id": pl.Int64, "ring_id": pl.Int64})
    coded = edges.select(
        "account_id",
        _a=pl.col("account_id").rank("dense").cast(pl.Int64) - 1,
        _k=pl.struct("kind", "_key").rank("dense").cast(pl.Int64) - 1,
    )
    a, k = coded["_a"].to_numpy(), coded["_k"].to_numpy()
    n_accounts = int(a.max()) + 1
    n = n_accounts + int(k.max()) + 1
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, n_accounts + k)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return (
        coded.select("account_id", _label=pl.Series(labels[a]))
        .unique("account_id")
        .with_columns(ring_id=pl.col("account_id").min().over("_label"))
        .select("account_id", "ring_id")
        .sort("account_id")
    )


def _previous_size(members: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """Per ring: members already linked to another member of it in the previous window."""
    return (
        members.select("ring_id", "account_id")
        .join(previous.rename({"ring_id": "_before"}), on="account_id")
        .group_by("ring_id", "_before")
        .agg(n=pl.len())
        .filter(pl.col("n") >= 2)
        .group_by("ring_id")
        .agg(previous_size=pl.col("n").sum().cast(pl.Int64))
    )


# --------------------------------------------------------------------------- rings


def _member_facts(
    members: pl.DataFrame,
    window: pl.LazyFrame,
    accounts: pl.DataFrame | None,
    cases: pl.DataFrame | None,
    as_of: datetime,
) -> pl.DataFrame:
    """Events in the window, age at ``as_of``, reported and actioned of each member."""
    counts = (
        window.join(members.lazy().select("account_id"), on="account_id", how="semi")
        .group_by("account_id")
        .agg(events=pl.len().cast(pl.Int64))
        .collect()
    )
    out = members.join(counts, on="account_id", how="left")
    if accounts is None:
        out = out.with_columns(age_days=pl.lit(None, pl.Float64))
    else:
        ages = accounts.select(
            pl.col("id").cast(pl.Int64).alias("account_id"),
            age_days=(pl.lit(as_of) - pl.col("created_at")).dt.total_microseconds() / _DAY_US,
        )
        out = out.join(ages, on="account_id", how="left")
    if cases is None:
        return out.with_columns(
            reported=pl.lit(None, pl.Boolean), actioned=pl.lit(None, pl.Boolean)
        )
    before = cases.filter(pl.col("opened_at") < as_of)
    reported = before["subject_account_id"].cast(pl.Int64).unique().implode()
    actioned = (
        before.filter(
            pl.col("resolution").cast(pl.String).is_in(list(VIOLATIONS)),
            pl.col("resolved_at") < as_of,
        )["subject_account_id"]
        .cast(pl.Int64)
        .unique()
        .implode()
    )
    return out.with_columns(
        reported=pl.col("account_id").is_in(reported),
        actioned=pl.col("account_id").is_in(actioned),
    )


def find_rings(
    links: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: datetime,
    window: timedelta = timedelta(days=14),
    accounts: pl.DataFrame | None = None,
    cases: pl.DataFrame | None = None,
    min_size: int = 3,
    max_accounts: int = 500,
    min_uses: int = 2,
    young_days: float = 7.0,
    min_growth: int = 3,
    min_growth_rate: float = 0.5,
    max_median_age_days: float = 30.0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rings of accounts linked by shared devices or IPs in ``[as_of - window, as_of)``.

    Parameters
    ----------
    links : events with ``account_id, ts, device_hash, ip_hash`` (either hash may be
        null), e.g. :func:`ring_links`. Events outside ``[as_of - 2 * window, as_of)``
        are ignored; the earlier half is the previous window, for growth.
    as_of : the end of the window (excluded).
    window : its length.
    accounts : ``id, created_at``; gives the members' ages (null without it).
    cases : ``subject_account_id, opened_at, resolution, resolved_at``; gives who was
        reported (the subject of a case opened before ``as_of``) and actioned (the
        subject of a case resolved before ``as_of`` with a resolution other than
        ``no_violation``). Null without it.
    min_size : the fewest accounts a ring has.
    max_accounts : an identifier used by more accounts than this in a window is a hub
        (carrier NAT, public Wi-Fi, a credential-stuffing proxy) and links nobody.
    min_uses : an account is tied to an identifier only when it used it in at least
        this many events of the window.
    young_days : ``young_share`` is the share of members younger than this at ``as_of``.
    min_growth, min_growth_rate, max_median_age_days : the growing rule, below.

    Returns
    -------
    rings : pl.DataFrame
        One row per ring of at least ``min_size`` accounts, highest ``score`` first:

        - ``ring_id``: its smallest member account id (stable while that one stays);
        - ``size``; ``devices``, ``ips``: the identifiers that link its members;
        - ``first_seen``: the first use of one of them in the window;
        - ``median_age_days``, ``young_share``: member ages at ``as_of``;
        - ``reported_share``, ``actioned_share``: of its members;
        - ``previous_size``: members that were already linked to another member of the
          ring in the previous window ``[as_of - 2 * window, as_of - window)`` (same
          hub and use rules); ``growth = size - previous_size``;
        - ``is_growing``: ``growth >= min_growth`` **and**
          ``size >= (1 + min_growth_rate) * previous_size`` **and** the ring is young:
          ``median_age_days <= max_median_age_days`` (not checked without
          ``accounts``). With the defaults: at least 3 new members, 50% more than
          before, members a month old or less at the median;
        - ``score = log2(size) * (1 + growth / size) * (1 + young_share)
          * (1 + reported_share)``: size on a log scale, and growth, youth and reports
          can each at most double it (missing shares count as 0).
    members : pl.DataFrame
        ``ring_id, account_id, first_seen`` (its first use of a linking identifier),
        ``events`` (all its events in the window), ``age_days``, ``reported``,
        ``actioned``; by ring and account.

    Examples
    --------
    Accounts 1, 2 and 3 share device ``d`` (twice each), 3 and 4 share IP ``x``; account
    5 used ``x`` only once, so it is not linked:

    >>> from datetime import datetime as dt
    >>> t = dt(2026, 1, 10)
    >>> links = pl.DataFrame({
    ...     "account_id": [1, 1, 2, 2, 3, 3, 3, 4, 4, 5],
    ...     "ts": [t] * 10,
    ...     "device_hash": ["d", "d", "d", "d", "d", "d", None, "e", "e", "f"],
    ...     "ip_hash": ["p", "p", "q", "q", "x", "x", "r", "x", "x", "x"],
    ... })
    >>> rings, members = find_rings(links, as_of=dt(2026, 1, 14))
    >>> rings.select("ring_id", "size", "devices", "ips", "growth", "is_growing").rows()
    [(1, 4, 1, 1, 4, True)]
    >>> members["account_id"].to_list()
    [1, 2, 3, 4]
    """
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    if min_size < 2 or min_uses < 1 or max_accounts < 2:
        raise ValueError("min_size and max_accounts must be at least 2, min_uses at least 1")
    lazy = _conform(links)
    rules = {"max_accounts": max_accounts, "min_uses": min_uses}
    both = _linking(_shared_uses(lazy, as_of=as_of, window=window, periods=2), **rules).collect()
    now_edges = both.filter(pl.col("period") == 0)
    before_edges = both.filter(pl.col("period") == 1)
    linked = _components(now_edges)
    edges = now_edges.join(linked, on="account_id").with_columns(
        size=pl.col("account_id").n_unique().over("ring_id")
    )
    edges = edges.filter(pl.col("size") >= min_size)
    if edges.is_empty():
        return pl.DataFrame(schema=_RING_SCHEMA), pl.DataFrame(schema=_MEMBER_SCHEMA)
    members = edges.group_by("ring_id", "account_id").agg(first_seen=pl.col("first_seen").min())
    in_window = lazy.filter(pl.col("ts") >= as_of - window, pl.col("ts") < as_of)
    members = (
        _member_facts(members, in_window, accounts, cases, as_of)
        .select(list(_MEMBER_SCHEMA))
        .sort("ring_id", "account_id")
    )
    rings = _summarise(edges, members, _previous_size(members, _components(before_edges)))
    young = young_days * _DAY_US
    rings = (
        rings.join(
            members.group_by("ring_id").agg(
                median_age_days=pl.col("age_days").median(),
                young_share=(pl.col("age_days") * _DAY_US < young).mean(),
                reported_share=pl.col("reported").mean(),
                actioned_share=pl.col("actioned").mean(),
            ),
            on="ring_id",
        )
        .with_columns(
            is_growing=(pl.col("growth") >= min_growth)
            & (pl.col("size") >= (1 + min_growth_rate) * pl.col("previous_size"))
            & (pl.col("median_age_days") <= max_median_age_days).fill_null(True),
            score=pl.col("size").log(2)
            * (1 + pl.col("growth") / pl.col("size"))
            * (1 + pl.col("young_share").fill_null(0.0))
            * (1 + pl.col("reported_share").fill_null(0.0)),
        )
        .select(pl.col(c).cast(t) for c, t in _RING_SCHEMA.items())
        .sort(["score", "ring_id"], descending=[True, False])
    )
    return rings, members


def _summarise(edges: pl.DataFrame, members: pl.DataFrame, before: pl.DataFrame) -> pl.DataFrame:
    """Per ring: size, linking devices and IPs, first use, previous size and growth."""
    return (
        edges.group_by("ring_id")
        .agg(
            size=pl.col("account_id").n_unique().cast(pl.Int64),
            devices=pl.col("_key").filter(pl.col("kind") == "device").n_unique(),
            ips=pl.col("_key").filter(pl.col("kind") == "ip").n_unique(),
            first_seen=pl.col("first_seen").min(),
        )
        .join(before, on="ring_id", how="left")
        .with_columns(pl.col("previous_size").fill_null(0))
        .with_columns(growth=pl.col("size") - pl.col("previous_size"))
    )


def ring_edges(
    links: pl.DataFrame | pl.LazyFrame,
    members: pl.DataFrame,
    *,
    as_of: datetime,
    window: timedelta = timedelta(days=14),
    max_accounts: int = 500,
    min_uses: int = 2,
) -> pl.DataFrame:
    """The account-to-identifier edges that tie the rings of ``members`` together.

    Pass the ``links``, window and hub and use rules given to :func:`find_rings`; the
    edges are recomputed for the window and kept for the members' accounts.

    Returns
    -------
    pl.DataFrame
        ``ring_id, account_id, kind`` (``"device"`` or ``"ip"``), ``identifier`` (its
        hash), ``uses``, ``first_seen``, ``last_seen``; by ring, kind, identifier and
        account.

    Examples
    --------
    >>> from datetime import datetime as dt
    >>> links = pl.DataFrame({"account_id": [1, 1, 2, 2, 3, 3], "ts": [dt(2026, 1, 2)] * 6,
    ...                       "device_hash": ["d"] * 6, "ip_hash": [None] * 6})
    >>> _, members = find_rings(links, as_of=dt(2026, 1, 3))
    >>> ring_edges(links, members, as_of=dt(2026, 1, 3)).select(
    ...     "ring_id", "account_id", "kind", "uses").rows()
    [(1, 1, 'device', 2), (1, 2, 'device', 2), (1, 3, 'device', 2)]
    """
    if members.is_empty():
        return pl.DataFrame(schema={"ring_id": pl.Int64, **_EDGE_SCHEMA})
    edges = _linking(
        _shared_uses(_conform(links), as_of=as_of, window=window, periods=1),
        max_accounts=max_accounts,
        min_uses=min_uses,
    )
    return (
        edges.join(members.lazy().select("ring_id", "account_id"), on="account_id")
        .select("ring_id", *_EDGE_SCHEMA)
        .sort("ring_id", "kind", "identifier", "account_id")
        .collect()
    )
