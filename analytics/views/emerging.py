"""The Emerging Threats page: new topics in case narratives, and rings of linked accounts.

:func:`emerging_view` clusters the case descriptions of the :data:`NARRATIVE_DAYS`
before a week's end into topics (:mod:`analytics.detectors.clusters`) and says which
emerge; :func:`ring_view` links accounts by shared devices and IP addresses
(:mod:`analytics.detectors.rings`). Both need a role that sees cases; descriptions are
masked (:mod:`analytics.access.privacy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, select

from analytics import access
from analytics.access import privacy
from analytics.core.filters import Filters
from analytics.core.models import Case, Role
from analytics.sources.pushdown import case_texts

__all__ = [
    "NARRATIVE_DAYS",
    "RING_DAYS",
    "RingView",
    "Topic",
    "TopicsView",
    "emerging_view",
    "ring_cases",
    "ring_view",
]

#: Days of case narratives the emerging-threat clusters are built from.
NARRATIVE_DAYS = 90
#: Days of events a ring is built from (and as many before, for its growth).
RING_DAYS = 14
#: Days of daily volume in a cluster's sparkline.
_SPARK_DAYS = 30
#: How the topic table names a topic's status.
_STATUS = {"steady": "", "new": "New", "growing again": "Growing again"}


@dataclass(frozen=True)
class Topic:
    """One topic as the page tells its story: its phrase, whether and since when it
    emerges, the sentence that says what changed, its strands (phrase and cases in the
    last 7 days), its distinctive terms, its q-value and its ``history`` (``day``,
    ``cases``: new cases per day over the days read, the last ``last_day``)."""

    cluster_id: int
    label: str
    is_emerging: bool
    status: str
    first_flagged: date | None
    summary: str
    strands: tuple[tuple[str, int], ...]
    terms: str
    q_value: float
    history: pl.DataFrame
    last_day: date


@dataclass(frozen=True)
class TopicsView:
    """Narrative topics and their (masked) cases.

    ``clusters`` is :func:`analytics.detectors.clusters.find_emerging`'s, plus ``history``
    (new cases per day over the window, oldest first; its last day is the day before
    ``as_of``), ``spark`` (the last 30 of them), ``terms`` (the top terms joined) and
    ``strands`` (an emerging topic's strands,
    :func:`analytics.detectors.strands.find_strands`: ``label`` and ``recent_count``
    each; null for the others). ``cases``: ``case_id``, ``cluster_id``, ``opened_at``,
    ``category``, ``region``, ``subject_account_id`` and the masked ``description``,
    newest first.
    """

    clusters: pl.DataFrame
    cases: pl.DataFrame
    as_of: datetime

    @property
    def ids(self) -> list[int]:
        """The topics' ids, in the order of the table (emerging first)."""
        return [int(i) for i in self.clusters["cluster_id"].to_list()]

    def rows(self) -> pl.DataFrame:
        """The topic table: one row per topic with its status, phrase, sparkline, emergence
        sentence, counts, category mix and one masked example (its newest case)."""
        example = self.cases.group_by("cluster_id").agg(example=pl.col("description").first())
        mix = pl.col("category_mix").list.eval(
            pl.element().struct.field("category")
            + " "
            + (pl.element().struct.field("share") * 100).round(0).cast(pl.Int64).cast(pl.String)
            + "%"
        )
        status = pl.col("status").replace_strict(_STATUS, default="")
        return self.clusters.join(
            example, on="cluster_id", how="left", maintain_order="left"
        ).select(
            "cluster_id",
            status.alias("status"),
            "label",
            "spark",
            "summary",
            "recent_count",
            "expected",
            "first_flagged",
            "terms",
            mix=mix.list.join(" · "),
            example=pl.col("example"),
        )

    def counts(self) -> tuple[int, int]:
        """How many topics emerge as new, and how many grow again."""
        emerging = self.clusters.filter(pl.col("is_emerging"))
        new = emerging.filter(pl.col("status") == "new").height
        return new, emerging.height - new

    def topic(self, cluster_id: int) -> Topic:
        """One topic's story (``KeyError`` when there is no such topic)."""
        found = self.clusters.filter(pl.col("cluster_id") == cluster_id)
        if found.is_empty():
            raise KeyError(cluster_id)
        row = found.row(0, named=True)
        last_day = (self.as_of - timedelta(days=1)).date()
        history = row["history"]
        days = pl.date_range(last_day - timedelta(days=len(history) - 1), last_day, eager=True)
        strands = tuple((str(s["label"]), int(s["recent_count"])) for s in row["strands"] or ())
        return Topic(
            cluster_id=int(cluster_id),
            label=str(row["label"]),
            is_emerging=bool(row["is_emerging"]),
            status=str(row["status"]),
            first_flagged=row["first_flagged"],
            summary=str(row["summary"]),
            strands=strands,
            terms=str(row["terms"]),
            q_value=float(row["q_value"]),
            history=pl.DataFrame({"day": days, "cases": history}),
            last_day=last_day,
        )

    def topic_cases(self, cluster_id: int) -> pl.DataFrame:
        """A topic's cases (masked), newest first, without the topic's id."""
        return self.cases.filter(pl.col("cluster_id") == cluster_id).drop("cluster_id")


def emerging_view(
    engine: Engine, filters: Filters, *, as_of: datetime, role: Role | str
) -> TopicsView:
    """Narrative topics of the :data:`NARRATIVE_DAYS` before ``as_of`` for the filters'
    dimensions, and their cases with descriptions masked (:class:`TopicsView`)."""
    from analytics.detectors import clusters  # the detectors (and scikit-learn) on first use
    from analytics.detectors.strands import find_strands

    access.require(role, "cases")
    start = as_of - timedelta(days=NARRATIVE_DAYS)
    texts = case_texts(engine, filters, start=start, end=as_of)
    found, members = clusters.find_emerging(
        texts, as_of=as_of, history=timedelta(days=NARRATIVE_DAYS)
    )
    first = (as_of - timedelta(days=NARRATIVE_DAYS)).date()
    days = pl.DataFrame(
        {"day": pl.date_range(first, as_of.date(), "1d", closed="left", eager=True)}
    )
    grid = found.select("cluster_id").join(days, how="cross")
    daily = clusters.cluster_daily(members, texts)
    history = (
        grid.join(daily, on=["cluster_id", "day"], how="left")
        .sort("cluster_id", "day")
        .group_by("cluster_id", maintain_order=True)
        .agg(history=pl.col("cases").fill_null(0))
    )
    strands = (
        find_strands(texts, found, members)
        .group_by("cluster_id", maintain_order=True)
        .agg(strands=pl.struct("label", "recent_count"))
    )
    found = (
        found.join(history, on="cluster_id", how="left", maintain_order="left")
        .join(strands, on="cluster_id", how="left", maintain_order="left")
        .with_columns(
            spark=pl.col("history").list.tail(_SPARK_DAYS),
            terms=pl.col("top_terms").list.join(", "),
        )
    )
    cases = (
        members.join(texts, on="case_id")
        .select(
            "case_id", "cluster_id", "opened_at", "category", "region", "subject_account_id",
            description=privacy.scrub_expr(pl.col("description")),
        )
        .sort("opened_at", descending=True)
    )  # fmt: skip
    return TopicsView(clusters=found, cases=cases, as_of=as_of)


@dataclass(frozen=True)
class RingView:
    """Rings of linked accounts: ``rings`` (growing first, then by score), their
    ``members`` and the ``edges`` that link them (:mod:`analytics.detectors.rings`)."""

    rings: pl.DataFrame
    members: pl.DataFrame
    edges: pl.DataFrame

    @property
    def ids(self) -> list[int]:
        """The rings' ids, in the order of the table."""
        return [int(i) for i in self.rings["ring_id"].to_list()]

    def members_of(self, ring_id: int | str) -> pl.DataFrame:
        """One ring's members (none for an id that is not a ring's)."""
        return self.members.filter(pl.col("ring_id").cast(pl.String) == str(ring_id))

    def ring_of(self, account_id: int) -> int | None:
        """The ring an account is a member of, if any."""
        mine = self.members.filter(pl.col("account_id") == account_id)
        return None if mine.is_empty() else int(mine["ring_id"][0])


def ring_view(engine: Engine, *, as_of: datetime, role: Role | str) -> RingView:
    """Rings of linked accounts in the :data:`RING_DAYS` before ``as_of``
    (:class:`RingView`). No personal data: account ids and hashes only."""
    from analytics.detectors import rings  # the detectors (and scipy) on first use

    access.require(role, "cases")
    window = timedelta(days=RING_DAYS)
    links = rings.ring_links(engine, start=as_of - 2 * window, end=as_of)
    people, cases = rings.ring_facts(engine)
    found, members = rings.find_rings(
        links, as_of=as_of, window=window, accounts=people, cases=cases
    )
    edges = rings.ring_edges(links, members, as_of=as_of, window=window)
    found = found.sort(["is_growing", "score", "ring_id"], descending=[True, True, False])
    return RingView(rings=found, members=members, edges=edges)


def ring_cases(engine: Engine, account_ids: list[int], *, role: Role | str) -> pl.DataFrame:
    """Cases about the given accounts, newest first, descriptions masked."""
    access.require(role, "cases")
    stmt = (
        select(Case.id.label("case_id"), Case.opened_at, Case.category, Case.status,
               Case.subject_account_id, Case.description)
        .where(Case.subject_account_id.in_(account_ids))
        .order_by(Case.opened_at.desc())
    )  # fmt: skip
    with engine.connect() as conn:
        frame = pl.read_database(stmt, conn, infer_schema_length=None)
    if frame.is_empty():
        return frame
    return frame.with_columns(description=privacy.scrub_expr(pl.col("description")))
