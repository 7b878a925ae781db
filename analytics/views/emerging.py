"""The Emerging Threats page: new topics in case narratives, and rings of linked accounts.

:func:`emerging_view` clusters the case descriptions of the :data:`NARRATIVE_DAYS`
before a week's end into topics (:mod:`analytics.detectors.clusters`) and says which
emerge; :func:`ring_view` links accounts by shared devices and IP addresses
(:mod:`analytics.detectors.rings`). Both need a role that sees cases; descriptions are
masked (:mod:`analytics.access.privacy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, select

from analytics import access
from analytics.access import privacy
from analytics.core.filters import Filters
from analytics.core.models import Case, Role
from analytics.present.formatting import format_number, humanise, humanised, significance
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
    "plain_summary",
    "ring_weeks",
    "ring_evidence",
    "rings_elsewhere",
    "topic_evidence",
    "topic_name",
]

#: Days of case narratives the emerging-threat clusters are built from.
NARRATIVE_DAYS = 90
#: Days of events a ring is built from (and as many before, for its growth).
RING_DAYS = 14
#: Days of daily volume in a cluster's sparkline.
_SPARK_DAYS = 30
#: How the topic table names a topic's status.
_STATUS = {"steady": "", "new": "New", "growing again": "Growing again"}


def topic_name(label: str | None) -> str:
    """A topic's name: its phrase (:func:`analytics.detectors.topic_labels.phrase_labels`)
    with a capital, the name the page, its map and its links use.

    >>> topic_name("insurance verification"), topic_name(None)
    ('Insurance verification', '–')
    """
    return humanise(label.strip() if label else None)


def plain_summary() -> pl.Expr:
    """A topic's emergence sentence (``summary``) with its main category, which ends it,
    in words (``… in category no_show_abuse`` reads ``… in category No-show abuse``).

    >>> pl.DataFrame({"summary": ["5 cases; 80% in category no_show_abuse", "2 cases"],
    ...     "top_category": ["no_show_abuse", None]}).select(plain_summary())["summary"].to_list()
    ['5 cases; 80% in category No-show abuse', '2 cases']
    """
    category = pl.col("top_category")
    ending = pl.lit("in category ") + category
    kept = pl.col("summary").str.len_chars() - category.str.len_chars()
    return (
        pl.when(category.is_not_null() & pl.col("summary").str.ends_with(ending))
        .then(pl.col("summary").str.slice(0, kept) + humanised(category))
        .otherwise(pl.col("summary"))
        .alias("summary")
    )


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

    @property
    def name(self) -> str:
        """The topic's name, :func:`topic_name` of its phrase."""
        return topic_name(self.label)


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
        """The topic table: one row per topic with its status, ``name`` (:func:`topic_name`
        of its phrase), phrase, sparkline, emergence sentence, counts, category mix and one
        masked example (its newest case)."""
        example = self.cases.group_by("cluster_id").agg(example=pl.col("description").first())
        mix = pl.col("category_mix").list.eval(
            humanised(pl.element().struct.field("category"))
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
            name=pl.col("label").map_elements(topic_name, return_dtype=pl.String),
            label=pl.col("label"),
            spark=pl.col("spark"),
            summary=plain_summary(),
            recent_count=pl.col("recent_count"),
            expected=pl.col("expected"),
            first_flagged=pl.col("first_flagged"),
            terms=pl.col("terms"),
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
        found = found.with_columns(plain_summary())
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


def ring_weeks(engine: Engine, ends: Sequence[datetime], *, role: Role | str) -> pl.DataFrame:
    """How many rings (and growing ones) each week has: one row per week end in ``ends``
    (``as_of`` of :func:`ring_view`), with ``week`` (its Monday, seven days before),
    ``rings`` and ``growing``, oldest first. The events are read once for all weeks."""
    from analytics.detectors import rings  # the detectors (and scipy) on first use

    access.require(role, "cases")
    schema = pl.Schema(
        [("week", pl.Date()), ("as_of", pl.Datetime("us")), ("rings", pl.Int64()),
         ("growing", pl.Int64())]
    )  # fmt: skip
    if not ends:
        return pl.DataFrame(schema=schema)
    window = timedelta(days=RING_DAYS)
    links = rings.ring_links(engine, start=min(ends) - 2 * window, end=max(ends))
    people, cases = rings.ring_facts(engine)
    rows = []
    for end in sorted(set(ends)):
        found, _ = rings.find_rings(links, as_of=end, window=window, accounts=people, cases=cases)
        growing = int(found["is_growing"].sum()) if found.height else 0
        rows.append((end.date() - timedelta(days=7), end, found.height, growing))
    return pl.DataFrame(rows, schema=schema, orient="row")


def rings_elsewhere(weeks: pl.DataFrame, *, week: date, most: int = 6) -> tuple[str, list[date]]:
    """Where the rings are when the focus ``week`` has none: a sentence naming the weeks
    of ``weeks`` (:func:`ring_weeks`) that have rings, the ``most`` nearest to ``week``
    in date order, and those weeks' Mondays (for links that select them).

    >>> w = pl.DataFrame({"week": [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 23)],
    ...                   "rings": [0, 2, 1]})
    >>> sentence, mondays = rings_elsewhere(w, week=date(2026, 11, 30))
    >>> sentence, [str(m) for m in mondays]
    ('Rings found in the weeks of 9 Nov (2) and 23 Nov (1).', ['2026-11-09', '2026-11-23'])
    >>> rings_elsewhere(w.head(1), week=date(2026, 11, 30))[0]
    'No ring in the 1 week around this one either.'
    """
    found = weeks.filter((pl.col("rings") > 0) & (pl.col("week") != week))
    if found.is_empty():
        n = weeks.filter(pl.col("week") != week).height
        return f"No ring in the {n} week{'s' * (n != 1)} around this one either.", []
    nearest = (
        found.with_columns(far=(pl.col("week") - week).abs())
        .sort("far", "week")
        .head(most)
        .sort("week")
    )
    parts = [f"{m.day} {m:%b} ({n})" for m, n in nearest.select("week", "rings").iter_rows()]
    named = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    which = "week" if len(parts) == 1 else "weeks"
    return f"Rings found in the {which} of {named}.", nearest["week"].to_list()


def topic_evidence(topic: Topic) -> dict[str, str]:
    """The numbers an escalation of ``topic`` carries, in words: whether and since when
    it emerges, its cases in the last 7 days, its growth's significance, its terms.

    >>> t = Topic(30, "fake 5-star reviews", True, "new", date(2026, 11, 28), "from none",
    ...           (), "review, star, paid", 0.001,
    ...           pl.DataFrame({"day": [date(2026, 11, d) for d in range(20, 30)],
    ...                         "cases": [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]}), date(2026, 11, 29))
    >>> topic_evidence(t)  # doctest: +NORMALIZE_WHITESPACE
    {'Status': 'new, emerging since 28 Nov 2026', 'Cases in the last 7 days': '28',
     'Growth': 'significant', 'Distinctive terms': 'review, star, paid'}
    """
    if topic.is_emerging and topic.first_flagged is not None:
        status = f"{topic.status}, emerging since {topic.first_flagged:%-d %b %Y}"
    else:
        status = "not emerging"
    recent = int(topic.history.tail(7)["cases"].sum()) if topic.history.height else 0
    return {
        "Status": status,
        "Cases in the last 7 days": format_number(recent),
        "Growth": significance(topic.q_value),
        "Distinctive terms": topic.terms,
    }


def ring_evidence(ring: dict[str, object]) -> dict[str, str]:
    """The numbers an escalation of a ring (a row of :attr:`RingView.rings`) carries.

    >>> ring_evidence({"size": 12, "devices": 3, "ips": 2, "previous_size": 5,
    ...                "is_growing": True, "young_share": 0.75})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'Accounts': '12', 'Shared devices': '3', 'Shared IP addresses': '2',
     'Growth': 'growing: 5 of them already linked the 14 days before',
     'Accounts under 7 days old': '75%'}
    """

    def number(name: str) -> str:
        value = ring.get(name)
        return "–" if value is None else format_number(float(str(value)))

    growth = "not growing"
    if ring.get("is_growing"):
        growth = (
            f"growing: {number('previous_size')} of them already linked the {RING_DAYS} days before"
        )
    young = ring.get("young_share")
    return {
        "Accounts": number("size"),
        "Shared devices": number("devices"),
        "Shared IP addresses": number("ips"),
        "Growth": growth,
        "Accounts under 7 days old": "–" if young is None else f"{float(str(young)):.0%}",
    }
