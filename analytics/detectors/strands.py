"""Strands of an emerging topic: its recent cases split by what else they say; which are new."""

from __future__ import annotations

import numpy as np
import polars as pl

from analytics.detectors.topic_labels import phrase_labels, top_terms
from analytics.detectors.topics import SAME_TOPIC, vectorise, vocabulary_text

__all__ = ["STRAND_SCHEMA", "find_strands"]

STRAND_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "strand_id": pl.Int64,
    "cluster_id": pl.Int64,
    "label": pl.String,
    "top_terms": pl.List(pl.String),
    "recent_count": pl.Int64,
    "flagged": pl.Boolean,
    "case_ids": pl.List(pl.Int64),
}


def find_strands(
    cases: pl.DataFrame,
    clusters: pl.DataFrame,
    members: pl.DataFrame,
    *,
    min_cases: int = 5,
    per_strand: int = 25,
    max_strands: int = 8,
    seed: int = 0,
    flagged_before: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The strands of each emerging topic: its recent cases split by what else they say
    (a crisis into donations, warnings, outages; a scam into its scripts).

    The recent cases of every emerging topic with at least ``2 * min_cases`` of them are
    vectorised on their own (TF-IDF) and split by k-means into one strand per
    ``per_strand`` cases (2 to ``max_strands``); strands of ``min_cases`` or more are
    kept, each labelled with the phrase its cases use most (as topics are). With
    ``flagged_before`` (as in :func:`~analytics.detectors.clusters.find_emerging`, plus
    today's flagged topics) a strand is ``flagged`` when it is new: it holds less than
    half of every earlier flag's cases and less than half of its own cases come from any
    one of them, so a strand that grew after its topic was flagged is heard of; without
    it, none is.

    Parameters
    ----------
    cases
        As given to :func:`~analytics.detectors.clusters.find_emerging` (``case_id``,
        ``opened_at``, ``description``).
    clusters, members
        :func:`~analytics.detectors.clusters.find_emerging`'s output for those cases.

    Returns
    -------
    pl.DataFrame
        :data:`STRAND_SCHEMA`: ``case_ids`` are the strand's recent cases.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> from analytics.detectors.clusters import find_emerging
    >>> t0 = datetime(2026, 3, 1)
    >>> texts = (["storm flood: donate to the red cross fund"] * 2
    ...          + ["storm flood: power outage, no electricity"] * 2) * 6
    >>> texts += ["refund for my booking", "late refund for a booking"] * 15
    >>> cases = pl.DataFrame({"case_id": range(len(texts)),
    ...     "opened_at": [t0 + timedelta(days=40, hours=i) for i in range(24)]
    ...                  + [t0 + timedelta(days=i) for i in range(30)], "description": texts})
    >>> clusters, members = find_emerging(cases, as_of=t0 + timedelta(days=42), n_clusters=1)
    >>> strands = find_strands(cases, clusters, members, min_cases=6, per_strand=12)
    >>> strands["recent_count"].to_list(), strands["flagged"].any()
    ([12, 12], False)
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    window = cases.select(
        pl.col("case_id").cast(pl.Int64),
        pl.col("description").fill_null("").alias("_raw"),
        vocabulary_text(pl.col("description")).alias("_text"),
    )
    parents = clusters.filter("is_emerging")["cluster_id"].to_list()
    recent = (
        members.filter(pl.col("recent") & pl.col("cluster_id").is_in(parents))
        .join(window, on="case_id")
        .sort("cluster_id", "case_id")
    )
    rows: list[dict[str, object]] = []
    for parent, part in recent.group_by("cluster_id", maintain_order=True):  # emerging topics
        if part.height < 2 * min_cases:
            continue
        masked = part.select("_text")
        vectors = vectorise(masked["_text"])
        if vectors is None:
            continue
        tfidf, terms = vectors
        k = int(min(max_strands, max(2, part.height // per_strand), part["_raw"].n_unique()))
        if k < 2:
            continue
        model = KMeans(k, random_state=seed, n_init=3)
        with threadpool_limits(limits=1, user_api="openmp"):
            label = model.fit_predict(tfidf.astype(np.float64))
        ids = part["case_id"].to_numpy()
        strand_members = pl.DataFrame({"case_id": ids, "cluster_id": label})
        kept = np.flatnonzero(np.bincount(label, minlength=k) >= min_cases)
        tops = top_terms(strand_members, tfidf, terms, np.arange(k))
        phrases = phrase_labels(masked, strand_members, np.arange(k), tops)
        for j in kept:
            rows.append(
                {
                    "cluster_id": parent[0],
                    "label": phrases[j],
                    "top_terms": tops[j],
                    "case_ids": ids[label == j].tolist(),
                }
            )
    if not rows:
        return pl.DataFrame(schema=STRAND_SCHEMA)
    earlier = (
        []
        if flagged_before is None
        else [
            set(ids) for ids in flagged_before.group_by("flag").agg("case_id")["case_id"].to_list()
        ]
    )
    today = [set(recent.filter(pl.col("cluster_id") == c)["case_id"].to_list())
             for c in clusters.filter("flagged")["cluster_id"].to_list()]  # fmt: skip
    out = []
    for i, row in enumerate(rows):
        mine = set(row["case_ids"])  # type: ignore[call-overload]
        seen = any(
            len(mine & known) >= SAME_TOPIC * min(len(known), len(mine))
            for known in earlier + today
        )
        words = row["top_terms"]
        out.append(
            {
                "strand_id": i,
                "cluster_id": row["cluster_id"],
                "label": row["label"],
                "top_terms": words,
                "recent_count": len(mine),
                "flagged": flagged_before is not None and not seen,
                "case_ids": sorted(mine),
            }
        )
    return pl.DataFrame(out, schema=STRAND_SCHEMA)
