"""What a topic is shown as: its top terms, phrase label, categories and place on the map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["category_mix", "phrase_labels", "top_terms", "topic_map"]

#: Terms shown per topic.
_TOP_TERMS = 6
#: Texts per topic that its phrase label is drawn from (its newest).
_PHRASE_SAMPLE = 60


def phrase_labels(
    window: pl.DataFrame, members: pl.DataFrame, ids: np.ndarray, top_terms: list[list[str]]
) -> list[str]:
    """Each topic's label: the two- or three-word phrase its texts use most, weighted by
    how distinctive it is (a phrase starting or ending with a stop word is not one),
    used by at least two texts and a fifth of the sample; else its top terms."""
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    sample = (
        pl.DataFrame({"cluster_id": members["cluster_id"], "text": window["_text"]})
        .group_by("cluster_id", maintain_order=True)
        .tail(_PHRASE_SAMPLE)
    )
    fallback = [", ".join(t[:3]) for t in top_terms]
    vectoriser = CountVectorizer(
        ngram_range=(2, 3), token_pattern=r"(?u)\b[^\W\d_]{2,}\b", binary=True, min_df=2
    )
    try:
        counts = sparse.csr_matrix(vectoriser.fit_transform(sample["text"].to_list()))
    except ValueError:  # no phrase used twice
        return fallback
    names = vectoriser.get_feature_names_out()
    words = [name.split(" ") for name in names]
    usable = np.array(
        [w[0] not in ENGLISH_STOP_WORDS and w[-1] not in ENGLISH_STOP_WORDS for w in words]
    )
    length = np.array([len(w) for w in words], dtype=float)
    topic = np.searchsorted(ids, sample["cluster_id"].to_numpy())
    onehot = sparse.csr_matrix(
        (np.ones(topic.size, np.float32), (topic, np.arange(topic.size))),
        shape=(ids.size, topic.size),
    )
    used = np.asarray((onehot @ counts).todense())
    texts = np.bincount(topic, minlength=ids.size)[:, None].astype(float)
    support = used / np.maximum(texts, 1.0)
    overall = used.sum(axis=0) / max(topic.size, 1)
    score = support * np.log1p(support / np.maximum(overall, 1e-9)) * (1 + 0.25 * (length - 2))
    score[:, ~usable] = 0.0
    # A label names what the topic is about: it holds one of the topic's top terms.
    holding: dict[str, list[int]] = {}
    for j, phrase in enumerate(words):
        for word in phrase:
            holding.setdefault(word, []).append(j)
    about = np.zeros_like(score, dtype=bool)
    for i, top in enumerate(top_terms):  # a topic's three top terms
        for term in top[:3]:
            about[i, holding.get(term, [])] = True
    score[~about] = 0.0
    score[(used < 2) | (support < 0.2)] = 0.0
    best = score.argmax(axis=1)
    return [str(names[j]) if score[i, j] > 0 else fallback[i] for i, j in enumerate(best)]


def top_terms(
    members: pl.DataFrame, tfidf: sparse.csr_matrix, terms: np.ndarray, ids: np.ndarray
) -> list[list[str]]:
    """Class-based TF-IDF: a term's share of its topic's words, times the log of how
    rare it is across topics (the average topic's word count over the term's)."""
    from scipy import sparse

    labels = members["cluster_id"].to_numpy()
    onehot = sparse.csr_matrix(
        (np.ones(labels.size, np.float32), (np.searchsorted(ids, labels), np.arange(labels.size))),
        shape=(ids.size, labels.size),
    )
    per_topic = np.asarray((onehot @ (tfidf > 0).astype(np.float32)).todense())
    words = per_topic.sum(axis=1, keepdims=True)
    weight = (per_topic / np.maximum(words, 1.0)) * np.log1p(
        words.mean() / np.maximum(per_topic.sum(axis=0), 1.0)
    )
    best = np.argsort(-weight, axis=1, kind="stable")[:, :_TOP_TERMS]
    return [[str(terms[j]) for j in row if per_topic[i, j] > 0] for i, row in enumerate(best)]


def category_mix(window: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Each topic's categories by share (largest first, top 3) and its main category."""
    shares = (
        members.join(window.select("case_id", "category"), on="case_id")
        .drop_nulls("category")
        .group_by("cluster_id", "category")
        .agg(n=pl.len())
        .with_columns(share=pl.col("n") / pl.col("n").sum().over("cluster_id"))
        .sort(["cluster_id", "share", "category"], descending=[False, True, False])
    )
    return shares.group_by("cluster_id", maintain_order=True).agg(
        top_category=pl.col("category").first(),
        top_category_share=pl.col("share").first(),
        category_mix=pl.struct("category", "share").head(3),
    )


def topic_map(centroids: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D map of topics: the first two SVD components of their centroids."""
    from sklearn.decomposition import TruncatedSVD

    if centroids.shape[0] < 3 or centroids.shape[1] < 3:
        n = centroids.shape[0]
        angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.cos(angle), np.sin(angle)
    xy = TruncatedSVD(2, random_state=seed).fit_transform(centroids)
    return xy[:, 0], xy[:, 1]
