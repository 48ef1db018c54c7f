"""Clustering negative voices into common problems, and c-TF-IDF keywords to name them."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

_TOKEN_OK = re.compile(r"^[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]+$")


def cluster_vectors(
    vectors: np.ndarray,
    distance_threshold: float,
    min_size: int,
    exact_above: int = 3000,
    seed: int = 0,
) -> np.ndarray:
    """Cluster L2-normalised rows; return a label per row, -1 for groups below ``min_size``.

    Up to ``exact_above`` rows, average-linkage agglomerative clustering on cosine distance.
    Above it, k-means first condenses the rows into micro-clusters (linear in n), and the
    same agglomerative step runs on their centroids, so time grows linearly, not quadratically.
    """
    from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans

    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.array([-1 if min_size > 1 else 0])
    if n <= exact_above:
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage="average"
        ).fit_predict(vectors)
    else:
        # Micro-clusters tight enough that merging their centroids approximates the exact run.
        k = min(1000, max(n // 8, 100))
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=1, max_iter=50)
        micro = km.fit_predict(vectors)
        centroids = km.cluster_centers_
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        centroids = centroids / np.where(norms == 0, 1, norms)
        used = np.unique(micro)
        merged = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage="average"
        ).fit_predict(centroids[used])
        lookup = np.full(k, -1)
        lookup[used] = merged
        labels = lookup[micro]
    sizes = Counter(labels.tolist())
    keep = {lab for lab, size in sizes.items() if size >= min_size}
    # Renumber by size, largest first, so cluster numbers are stable for the same input.
    order = sorted(keep, key=lambda lab: (-sizes[lab], int(np.flatnonzero(labels == lab)[0])))
    remap = {lab: i for i, lab in enumerate(order)}
    return np.array([remap.get(lab, -1) for lab in labels.tolist()])


@lru_cache(maxsize=1)
def _jieba() -> object:
    # jieba 0.42 has invalid escape sequences; keep its SyntaxWarnings out of our logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=4)
def load_stopwords(path: str) -> frozenset[str]:
    p = Path(path)
    if not p.is_file():
        return frozenset()
    return frozenset(
        w.strip() for w in p.read_text(encoding="utf-8").splitlines() if w.strip() and not w.startswith("#")
    )


def tokenize(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    """jieba tokens worth counting: two or more characters, not numbers, not stopwords."""
    jieba = _jieba()
    out = []
    for tok in jieba.lcut(text):  # type: ignore[attr-defined]
        tok = tok.strip().lower()
        if len(tok) >= 2 and _TOKEN_OK.match(tok) and tok not in stopwords:
            out.append(tok)
    return out


def ctfidf_keywords(
    docs_by_cluster: dict[int, Sequence[Sequence[str]]], top_n: int = 5
) -> dict[int, list[str]]:
    """Class-based TF-IDF: terms frequent in a cluster and rare in the others."""
    tf: dict[int, Counter[str]] = {
        c: Counter(t for doc in docs for t in set(doc)) for c, docs in docs_by_cluster.items()
    }
    total = Counter[str]()
    for counts in tf.values():
        total.update(counts)
    avg = sum(sum(c.values()) for c in tf.values()) / max(len(tf), 1)
    out: dict[int, list[str]] = {}
    for c, counts in tf.items():
        size = max(len(docs_by_cluster[c]), 1)
        scored = sorted(
            ((cnt / size) * math.log(1 + avg / total[t]), t)
            for t, cnt in counts.items()
            if cnt >= 2 or size < 4
        )
        out[c] = [t for _, t in reversed(scored[-top_n:])]
    return out
