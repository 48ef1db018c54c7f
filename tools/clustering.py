"""Clustering negative voices into common problems, and c-TF-IDF keywords to name them."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tools.schema import ClusterCut, CutCandidate

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


@dataclass(frozen=True)
class CutRules:
    """How a batch picks its own cut; the values live in ``scoring.yaml`` (clustering)."""

    thresholds: tuple[float, ...]  # candidate cosine-distance cuts, tried on every batch
    min_size: int
    max_share: float  # a problem above this share of the batch is split again ...
    same_problem_similarity: float  # ... unless its members' mean pairwise cosine reaches this
    near_duplicate_similarity: float  # rows this similar are one text for scoring a cut
    exact_above: int = 3000
    silhouette_sample: int = 2000
    max_depth: int = 4
    seed: int = 0


@dataclass
class _Tree:
    """An average-linkage tree over leaves: the rows themselves, or k-means micro-clusters."""

    linkage: np.ndarray
    leaf_of: np.ndarray  # row -> leaf


def _tree(x: np.ndarray, exact_above: int, seed: int) -> _Tree:
    from scipy.cluster.hierarchy import linkage
    from sklearn.cluster import MiniBatchKMeans

    n = len(x)
    if n <= exact_above:
        return _Tree(linkage(x, method="average", metric="cosine"), np.arange(n))
    k = min(1000, max(n // 8, 100))
    # Random seeding: k-means++ over a thousand centres costs minutes on 2 cores and buys nothing
    # for micro-clusters the tree merges anyway.
    km = MiniBatchKMeans(
        n_clusters=k, random_state=seed, batch_size=4096, n_init=1, max_iter=50, init="random"
    )
    micro = km.fit_predict(x)
    used, leaf_of = np.unique(micro, return_inverse=True)
    centroids = km.cluster_centers_[used]
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids = centroids / np.where(norms == 0, 1, norms)
    return _Tree(linkage(centroids, method="average", metric="cosine"), leaf_of)


def _cut(tree: _Tree, threshold: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return fcluster(tree.linkage, threshold, criterion="distance")[tree.leaf_of]


def _sample_distances(x: np.ndarray, sample: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(x))
    if len(x) > sample:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))
    xs = x[idx].astype(np.float64)
    xs /= np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-12)
    dist = np.clip(1.0 - xs @ xs.T, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    return idx, dist


def _choose(
    x: np.ndarray, rules: CutRules, total: int, forced: bool
) -> tuple[np.ndarray, float | None, float | None, list[CutCandidate]]:
    """The candidate cut with the best silhouette; ``forced`` only considers cuts that split ``x``.

    Returns (labels, threshold, silhouette, candidates); threshold None when no cut qualifies.
    """
    from sklearn.metrics import silhouette_score

    tree = _tree(x, rules.exact_above, rules.seed)
    # Near-duplicates (a copied template, a resent letter) are scored once: counted one by one,
    # their tight little groups make the finest cut look best on a batch full of them. A batch
    # that is almost all such groups is scored row by row, or nothing would be left to score.
    scored_rows = np.unique(_cut(tree, 1.0 - rules.near_duplicate_similarity), return_index=True)[1]
    if len(scored_rows) < max(2 * rules.min_size, len(x) // 10):
        scored_rows = np.arange(len(x))
    idx, dist = _sample_distances(x[scored_rows], rules.silhouette_sample, rules.seed)
    idx = scored_rows[idx]
    best: tuple[float, float, np.ndarray] | None = None
    candidates: list[CutCandidate] = []
    for t in rules.thresholds:
        labels = _cut(tree, t)
        sizes = Counter(labels.tolist())
        groups = sum(1 for v in sizes.values() if v >= rules.min_size)
        sil = None
        k = len(set(labels[idx].tolist()))
        if 1 < k < len(idx):
            sil = float(silhouette_score(dist, labels[idx], metric="precomputed"))
        candidates.append(
            CutCandidate(
                threshold=round(t, 4),
                problems=groups,
                largest_share=round(max(sizes.values()) / total, 4),
                silhouette=round(sil, 4) if sil is not None else None,
            )
        )
        if sil is None or (forced and groups < 2):
            continue
        # Ties go to the larger cut: fewer, larger problems when the batch does not tell them apart.
        if best is None or sil >= best[0] - 1e-9:
            best = (sil, t, labels)
    if best is None:
        return np.zeros(len(x), dtype=int), None, None, candidates
    return best[2], best[1], best[0], candidates


def _say_the_same(x: np.ndarray, bar: float) -> bool:
    """Mean pairwise cosine of unit rows, from the norm of their mean (no n-by-n matrix)."""
    n = len(x)
    if n < 2:
        return True
    m = x.mean(axis=0)
    mean_pairwise = (n * n * float(m @ m) - n) / (n * (n - 1))
    return mean_pairwise >= bar


def cluster_batch(vectors: np.ndarray, rules: CutRules) -> tuple[np.ndarray, ClusterCut]:
    """Cluster L2-normalised rows with a cut chosen from the batch's own similarity structure.

    Every candidate distance cut of one average-linkage tree is scored by its silhouette (on a
    sample of at most ``silhouette_sample`` rows) and the best one is kept. A problem then holding
    more than ``max_share`` of the batch is clustered again inside itself (re-centred on its own
    mean, so what its members share no longer hides what tells them apart), unless its members
    say the same thing (mean pairwise cosine at least ``same_problem_similarity``). Returns a
    label per row (-1 below ``min_size``, clusters numbered by size, largest first) and how the
    cut was chosen.
    """
    n = len(vectors)
    if n < 2 * rules.min_size:
        labels = np.full(n, -1) if n < rules.min_size else np.zeros(n, dtype=int)
        return labels, ClusterCut(
            threshold=None, method="too_few", silhouette=None, candidates=[], split=0, kept_whole=0
        )
    x = vectors.astype(np.float32)
    labels, threshold, sil, candidates = _choose(x, rules, n, forced=False)
    cut = ClusterCut(
        threshold=threshold,
        method="silhouette" if threshold is not None else "one_group",
        silhouette=round(sil, 4) if sil is not None else None,
        candidates=candidates,
        split=0,
        kept_whole=0,
    )
    labels = _split_oversized(x, x, labels, rules, n, cut, depth=0)
    return _renumber(labels, rules.min_size), cut


def _split_oversized(
    x: np.ndarray,
    original: np.ndarray,
    labels: np.ndarray,
    rules: CutRules,
    total: int,
    cut: ClusterCut,
    depth: int,
) -> np.ndarray:
    """Split every group above the share limit again, inside itself; ``original`` rows judge duplicates."""
    out = labels.astype(np.int64).copy()
    next_label = int(out.max()) + 1 if len(out) else 0
    limit = max(rules.max_share * total, 2 * rules.min_size)
    for lab, size in Counter(labels.tolist()).items():
        if size <= limit:
            continue
        rows = np.flatnonzero(labels == lab)
        sub = x[rows]
        if _say_the_same(original[rows], rules.same_problem_similarity):
            cut.kept_whole += 1
            continue
        if depth >= rules.max_depth:
            continue
        centred = sub - sub.mean(axis=0)
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
        inner, threshold, _, _ = _choose(centred, rules, total, forced=True)
        if threshold is None:
            continue
        cut.split += 1
        inner = _split_oversized(centred, original[rows], inner, rules, total, cut, depth + 1)
        for sub_lab in np.unique(inner):
            out[rows[inner == sub_lab]] = next_label
            next_label += 1
    return out


def _renumber(labels: np.ndarray, min_size: int) -> np.ndarray:
    sizes = Counter(labels.tolist())
    keep = {lab for lab, size in sizes.items() if size >= min_size}
    # Renumber by size, largest first, so cluster numbers are stable for the same input.
    order = sorted(keep, key=lambda lab: (-sizes[lab], int(np.flatnonzero(labels == lab)[0])))
    remap = {lab: i for i, lab in enumerate(order)}
    return np.array([remap.get(lab, -1) for lab in labels.tolist()], dtype=int)


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


def words(text: str) -> list[str]:
    """jieba's tokens as they come: words, spaces and punctuation, in order."""
    return list(_jieba().lcut(text))  # type: ignore[attr-defined]


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
