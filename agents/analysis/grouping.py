"""Grouping negative voices into common problems: the super embedding and the batch's own cut."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.analysis.scoring import Item
from tools.clustering import CutRules, cluster_batch
from tools.embeddings import normalize_rows
from tools.knowledge import ClusteringConfig
from tools.schema import ClusterCut

if TYPE_CHECKING:
    from tools.deps import Deps


def batch_centre(vectors: np.ndarray, prior: np.ndarray, prior_weight: float) -> tuple[np.ndarray, float]:
    """The batch's own mean, pulled towards ``prior`` as if it were ``prior_weight`` extra voices.

    Centring removes what every voice in the batch shares (its language, its business, its
    letter-writing boilerplate), so what is left tells them apart. A small batch's mean says
    little about the space, so it leans on the taxonomy exemplars' mean instead.
    """
    n = len(vectors)
    w = n / (n + prior_weight) if n + prior_weight > 0 else 1.0
    return w * vectors.mean(axis=0) + (1 - w) * prior, w


def super_embed(
    items: list[Item],
    center: np.ndarray,
    weights: dict[str, float],
    label_confidence: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Text vector plus weighted one-hots of the metadata that defines a common problem.

    With ``label_confidence`` (low, high), the label and dimension one-hots of a voice weigh in
    proportion to the tracer's confidence between low and high: a guessed label must not pull
    complaints about different things into one problem.
    """
    text = normalize_rows(np.vstack([it.vector for it in items]) - center)
    blocks: list[np.ndarray] = [text * weights.get("text", 1.0)]
    low, high = label_confidence
    if high > low:
        conf = np.array([it.cause.confidence for it in items], dtype=np.float32)
        trust = np.clip((conf - low) / (high - low), 0.0, 1.0)
    else:
        trust = np.ones(len(items), dtype=np.float32)
    fields = {
        "label": (lambda it: it.cause.l2, True),
        "dimension": (lambda it: it.cause.dimension, True),
        "business_line": (lambda it: it.attribution.business_line, False),
        "channel": (lambda it: it.attribution.channel, False),
        "segment": (lambda it: it.complaint.customer_segment, False),
    }
    for name, (get, trusted) in fields.items():
        wt = weights.get(name, 0.0)
        if wt <= 0:
            continue
        values = sorted({str(get(it)) for it in items})
        col = {v: j for j, v in enumerate(values)}
        onehot = np.zeros((len(items), len(values)), dtype=np.float32)
        for i, it in enumerate(items):
            v = get(it)
            if v is not None:
                onehot[i, col[str(v)]] = trust[i] if trusted else 1.0
        blocks.append(onehot * wt)
    return normalize_rows(np.hstack(blocks))


def cut_rules(cfg: ClusteringConfig) -> CutRules:
    return CutRules(
        thresholds=cfg.cuts.values(),
        min_size=cfg.min_size,
        max_share=cfg.max_share,
        same_problem_similarity=cfg.same_problem_similarity,
        near_duplicate_similarity=cfg.near_duplicate_similarity,
        exact_above=cfg.exact_above,
        silhouette_sample=cfg.silhouette_sample,
    )


def group(items: list[Item], deps: Deps) -> tuple[np.ndarray, ClusterCut]:
    """A cluster label per item (-1: ungrouped long tail) and how the batch's cut was chosen."""
    cfg = deps.scoring.clustering
    if not items:
        return np.full(0, -1), ClusterCut(
            threshold=None, method="too_few", silhouette=None, candidates=[], split=0, kept_whole=0
        )
    vectors = np.vstack([it.vector for it in items]).astype(np.float32)
    center, weight = batch_centre(vectors, deps.indexes["tracing"].center, cfg.center_prior)
    emb = super_embed(items, center, cfg.weights, cfg.label_confidence)
    labels, cut = cluster_batch(emb, cut_rules(cfg))
    cut.centre_weight = round(weight, 4)
    grouped = labels[labels >= 0]
    cut.largest_share = round(float(np.bincount(grouped).max()) / len(items), 4) if len(grouped) else 0.0
    return labels, cut
