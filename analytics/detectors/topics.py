"""Topics of a window of case descriptions: vocabulary, standing and new topics, identity over days.

The descriptions are masked (:func:`analytics.access.privacy.scrub_expr`), their
placeholders and digits dropped, and made TF-IDF vectors (English stop words removed;
with categories, the terms of style too: :func:`without_style`). Standing topics are
k-means centroids over all of them (:func:`standing_topics`); new topics are recent texts
linked by new vocabulary (:func:`new_topics`). A topic that holds most of an earlier
flag's cases is that flag's topic again (:func:`match_earlier`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analytics.access.privacy import MASKS, scrub_expr

if TYPE_CHECKING:
    from scipy import sparse

__all__ = [
    "NEW_TERM_RATIO",
    "SAME_TOPIC",
    "STYLE_ASSOCIATION",
    "case_window",
    "match_earlier",
    "new_topics",
    "standing_topics",
    "vectorise",
    "vocabulary_text",
    "without_style",
]

#: How many times its earlier rate a term's recent rate must be to count as new.
NEW_TERM_RATIO = 5.0

#: Share of an earlier flag's cases a topic must hold to be that flag's topic again.
SAME_TOPIC = 0.5

#: Below this association with the category (Cramér's V of presence x category), a
#: common term says how people write, not what about (on the demo: "behalf", "mother",
#: "reporting", "thank" 0.06-0.09; "insurance", "velocity", "spam" 0.24-0.58).
STYLE_ASSOCIATION = 0.1


def case_window(cases: pl.DataFrame, *, as_of: datetime, history: timedelta) -> pl.DataFrame:
    """The cases of the window, with ``_text``: the description masked, placeholders and
    digits dropped (so an amount or a date is not vocabulary)."""
    category = pl.col("category").cast(pl.String) if "category" in cases.columns else pl.lit(None)
    return (
        cases.lazy()
        .filter(pl.col("opened_at") < as_of, pl.col("opened_at") >= as_of - history)
        .select(
            pl.col("case_id").cast(pl.Int64),
            "opened_at",
            category.cast(pl.String).alias("category"),
            _text=vocabulary_text(pl.col("description")),
        )
        .sort("opened_at", "case_id")
        .collect()
    )


def vocabulary_text(description: pl.Expr) -> pl.Expr:
    """A description as vocabulary: masked, the mask placeholders and digits dropped (so
    an amount or a date is not a term)."""
    placeholders = "|".join(m.replace("[", r"\[").replace("]", r"\]") for m in MASKS.values())
    return (
        scrub_expr(description.fill_null(""))
        .str.replace_all(placeholders, " ")
        .str.replace_all(r"\d+", " ")
    )


def vectorise(texts: pl.Series) -> tuple[sparse.csr_matrix, np.ndarray] | None:
    """L2-normalised TF-IDF rows and the vocabulary; None when no text has a term."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
        min_df=2 if texts.len() >= 20 else 1,
        max_features=50_000,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        matrix = vectoriser.fit_transform(texts.to_list())
    except ValueError:  # empty vocabulary: no words, only stop words
        return None
    return sparse.csr_matrix(matrix), vectoriser.get_feature_names_out()


def without_style(tfidf: sparse.csr_matrix, category: pl.Series) -> sparse.csr_matrix:
    """TF-IDF rows without the terms of style (common terms that every category uses
    alike: openers, politeness, the reporter's phrasing), renormalised, so topics follow
    what the texts are about rather than who wrote them. Without categories, unchanged.

    A term is of style when at least 20 texts (and 0.5% of them) use it and its
    presence is barely associated with the category (:data:`STYLE_ASSOCIATION`).
    """
    from scipy import sparse
    from sklearn.preprocessing import normalize

    if category.drop_nulls().n_unique() < 2:
        return tfidf
    names = category.fill_null("").cast(pl.Categorical).to_physical().to_numpy()
    names = np.unique(names, return_inverse=True)[1]
    n = tfidf.shape[0]
    present = (tfidf > 0).astype(np.float64).tocsr()
    onehot = sparse.csr_matrix((np.ones(n), (names, np.arange(n))), shape=(names.max() + 1, n))
    used = np.asarray((onehot @ present).todense())  # categories x terms
    per_category = np.bincount(names).astype(float)[:, None]
    df = used.sum(axis=0, keepdims=True)
    chi2 = np.zeros(df.shape[1])
    for observed, expected in (
        (used, per_category * df / n),
        (per_category - used, per_category * (n - df) / n),
    ):
        with np.errstate(divide="ignore", invalid="ignore"):
            chi2 += np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0).sum(axis=0)
    style = (df.ravel() >= max(20, 0.005 * n)) & (np.sqrt(chi2 / n) < STYLE_ASSOCIATION)
    if not style.any():
        return tfidf
    kept = sparse.diags((~style).astype(np.float32))
    return sparse.csr_matrix(normalize(tfidf @ kept))


def standing_topics(tfidf: sparse.csr_matrix, *, n_clusters: int, seed: int) -> np.ndarray:
    """Unit-length k-means centroids of all the window's texts."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    k = max(1, min(n_clusters, tfidf.shape[0]))
    model = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096)
    # One OpenMP thread: on a busy machine k-means' threads wait on each other (a call
    # over 1,700 texts took 6.9 s with the default threads and 0.3 s with one). In float64:
    # on float32 input scikit-learn upcasts every distance block (15,000 texts: 1.6 s
    # against 0.6 s).
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(tfidf.astype(np.float64))
    return np.asarray(normalize(model.cluster_centers_), dtype=np.float32)


def new_topics(
    tfidf: sparse.csr_matrix, is_recent: np.ndarray, *, min_size: int
) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Groups of recent texts linked by new vocabulary (see the module): their unit
    centroids, and which texts may join each (those using one of its new terms)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from sklearn.preprocessing import normalize

    n_recent, n_earlier = int(is_recent.sum()), int((~is_recent).sum())
    none = (np.empty((0, tfidf.shape[1]), np.float32), sparse.csr_matrix((tfidf.shape[0], 0)))
    present = (tfidf > 0).astype(np.float32).tocsr()
    recent_df = np.asarray(present[is_recent].sum(axis=0)).ravel()
    earlier_df = np.asarray(present[~is_recent].sum(axis=0)).ravel()
    new = (recent_df >= 2) & (
        recent_df / max(n_recent, 1) >= NEW_TERM_RATIO * (earlier_df + 1) / max(n_earlier, 1)
    )
    if n_recent == 0 or not new.any():
        return none
    new_terms = np.flatnonzero(new)
    rows = np.flatnonzero(is_recent)
    links = present[rows][:, new_terms].tocsr()
    linked = np.flatnonzero(np.asarray(links.sum(axis=1)).ravel() > 0)
    links = links[linked]
    graph = sparse.bmat([[None, links], [links.T, None]], format="csr")
    _, component = connected_components(graph, directed=False)
    group, term_group = component[: linked.size], component[linked.size :]
    names, sizes = np.unique(group, return_counts=True)
    kept = names[sizes >= min_size]
    if kept.size == 0:
        return none
    centroids = np.vstack(
        [normalize(np.asarray(tfidf[rows[linked[group == name]]].mean(axis=0))) for name in kept]
    ).astype(np.float32)
    # Term -> topic incidence, then text -> topic: which texts use a topic's new terms.
    used = np.isin(term_group, kept)
    term_topic = sparse.csr_matrix(
        (
            np.ones(int(used.sum()), np.float32),
            (new_terms[used], np.searchsorted(kept, term_group[used])),
        ),
        shape=(tfidf.shape[1], kept.size),
    )
    return centroids, (present @ term_topic).tocsr()


def match_earlier(
    clusters: pl.DataFrame, members: pl.DataFrame, earlier: pl.DataFrame, *, last_day: date
) -> pl.DataFrame:
    """Emerging topics that hold :data:`SAME_TOPIC` of an earlier flag's cases take that
    flag's day as ``first_flagged``; the others are flagged on ``last_day`` (see
    :func:`analytics.detectors.clusters.find_emerging`)."""
    sizes = earlier.group_by("flag").agg(n=pl.len(), flagged_on=pl.col("flagged_on").min())
    held = (
        members.join(earlier.select("flag", pl.col("case_id").cast(pl.Int64)), on="case_id")
        .group_by("cluster_id", "flag")
        .agg(held=pl.len())
        .join(sizes, on="flag")
        .filter(pl.col("held") >= SAME_TOPIC * pl.col("n"))
        .group_by("cluster_id")
        .agg(known=pl.col("flagged_on").min())
    )
    return (
        clusters.join(held, on="cluster_id", how="left", maintain_order="left")
        .with_columns(
            first_flagged=pl.when(pl.col("is_emerging")).then(
                pl.coalesce(pl.col("known"), pl.lit(last_day))
            )
        )
        .drop("known")
    )
