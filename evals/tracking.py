"""``voc eval --tracking``: how the tracking thresholds were chosen, on the eval set's planted themes.

Each theme's negative voices are split in two at random (20 times): one half builds the theme's
centroid in the tracking space, as earlier months would; the other half plays the new month.
A complaint joins a problem when its similarity to the centroid reaches ``assign``; a new month's
cluster continues a problem when its centroid reaches ``match``. For each candidate threshold the
report gives how often a held-out complaint (or cluster) would join its own theme and how often a
wrong one, and the largest similarity between two different themes' centroids (what ``merge`` and
``related`` must stay above)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from evals.dataset import DEFAULT_DATASET, load_dataset, to_raw_rows
from graph.run import run_batch
from loop.space import TrackingSpace
from loop.vectors import embed_cached
from loop.warehouse import Warehouse
from tools import injection
from tools.deps import Deps
from tools.schema import Complaint
from tools.sql import database


class ThresholdRow(BaseModel):
    threshold: float
    joins_own: float
    joins_wrong: float


class TrackingCalibration(BaseModel):
    voices: int
    themes: int
    assign: list[ThresholdRow]
    match: list[ThresholdRow]
    max_between_themes: float
    settings: dict[str, float]


def calibrate_tracking(deps: Deps, repeats: int = 20, seed: int = 0) -> TrackingCalibration:
    rows = load_dataset(DEFAULT_DATASET, split="all")
    theme = {r.id: r.expected.theme for r in rows}
    result = run_batch(to_raw_rows(rows), deps, track=False)
    voices = [r for r in result.results if r.root_cause.is_negative_voice and theme.get(r.id)]
    read, _ = injection.for_reading([Complaint(id=r.id, row=r.row, text=r.text) for r in voices])
    warehouse = Warehouse(database(deps.settings, "warehouse"))
    text_vectors, _, _ = embed_cached(deps.embedder, warehouse, [c.text for c in read], keep=False)
    space = TrackingSpace(
        center=deps.indexes["tracing"].center,
        dimensions=tuple(deps.taxonomy.dimension_ids),
        labels=tuple(lab.id for lab in deps.taxonomy.labels),
    )
    vectors = space.vectors(
        text_vectors, [r.root_cause.l2 for r in voices], [r.root_cause.dimension for r in voices]
    )
    themes = np.array([theme[r.id] for r in voices])
    rng = np.random.default_rng(seed)
    own, other, c_own, c_other = [], [], [], []
    for _ in range(repeats):
        half = rng.random(len(voices)) < 0.5
        names, cents = [], []
        for t in sorted(set(themes)):
            members = (themes == t) & half
            if members.sum() >= 2:
                names.append(t)
                cents.append(_unit(vectors[members].sum(axis=0)))
        centroids = np.vstack(cents)
        for i in np.where(~half)[0]:
            if themes[i] in names:
                sims = centroids @ vectors[i]
                j = names.index(themes[i])
                own.append(sims[j])
                other.append(np.max(np.delete(sims, j)))
        for t in names:
            members = (themes == t) & ~half
            if members.sum() >= 3:
                sims = centroids @ _unit(vectors[members].sum(axis=0))
                j = names.index(t)
                c_own.append(sims[j])
                c_other.append(np.max(np.delete(sims, j)))
    full = np.vstack([_unit(vectors[themes == t].sum(axis=0)) for t in sorted(set(themes))])
    between = full @ full.T
    np.fill_diagonal(between, -1)
    s = deps.settings
    return TrackingCalibration(
        voices=len(voices),
        themes=len(set(themes)),
        assign=_rows(np.array(own), np.array(other), np.arange(0.40, 0.71, 0.05)),
        match=_rows(np.array(c_own), np.array(c_other), np.arange(0.40, 0.91, 0.10)),
        max_between_themes=round(float(between.max()), 3),
        settings={
            "assign": s.track_assign_similarity,
            "match": s.track_match_similarity,
            "related": s.track_related_similarity,
            "merge": s.track_merge_similarity,
        },
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _rows(own: np.ndarray, other: np.ndarray, thresholds: np.ndarray) -> list[ThresholdRow]:
    # The nearest centroid wins, so a complaint goes wrong when another theme is nearer and close enough.
    return [
        ThresholdRow(
            threshold=round(float(t), 2),
            joins_own=round(float(((own >= t) & (own >= other)).mean()), 3),
            joins_wrong=round(float(((other >= t) & (other > own)).mean()), 3),
        )
        for t in thresholds
    ]
