"""The tracing index both tracing engines read: taxonomy cues, exemplar vectors, grade rules, the lexicon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tools.cues import CueIndex
from tools.embeddings import normalize_rows
from tools.sentiment import SentimentAnalyzer
from tools.taxonomy import Grade, Label

if TYPE_CHECKING:
    from tools.deps import Deps


@dataclass
class TracingIndex:
    """Everything tracing needs, prepared once per process."""

    labels: list[Label]
    cues: CueIndex
    l3: dict[str, CueIndex]
    exemplars: np.ndarray  # centred and re-normalised
    center: np.ndarray  # mean of the raw exemplar vectors
    exemplar_label: np.ndarray
    grade_rules: CueIndex
    grade_rule_names: dict[str, tuple[Grade, str]]
    negative_hints: CueIndex
    sentiment: SentimentAnalyzer


def build_tracing_index(deps: Deps) -> TracingIndex:
    """Compile cue matchers and load exemplar vectors from the knowledge store."""
    labels = deps.taxonomy.labels
    position = {lab.id: i for i, lab in enumerate(labels)}
    _ids, vecs, metas = deps.store.all_vectors("taxonomy")
    keep = [i for i, m in enumerate(metas) if m.get("label") in position]
    center = vecs[keep].mean(axis=0) if keep else np.zeros(deps.embedder.dim, dtype=np.float32)
    rules = {f"rule{i}": (r.grade, r.name) for i, r in enumerate(deps.scoring.grades.rules)}
    return TracingIndex(
        labels=labels,
        # L3 cues count for their L2 label too: the L2 list is capped, the L3 lists refine it.
        cues=CueIndex({lab.id: [*lab.cues, *(c for x in lab.l3 for c in x.cues)] for lab in labels}),
        l3={lab.id: CueIndex({x.name: x.cues for x in lab.l3}) for lab in labels if lab.l3},
        exemplars=centre(vecs[keep], center),
        center=center,
        exemplar_label=np.array([position[metas[i]["label"]] for i in keep], dtype=int),
        grade_rules=CueIndex({f"rule{i}": r.cues for i, r in enumerate(deps.scoring.grades.rules)}),
        grade_rule_names=rules,
        negative_hints=CueIndex({"neg": deps.taxonomy.negative_hints}),
        sentiment=SentimentAnalyzer(deps.lexicon, deps.sentiment_head),
    )


def centre(vectors: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Subtract the exemplars' mean and re-normalise rows."""
    return normalize_rows(np.atleast_2d(vectors) - center)
