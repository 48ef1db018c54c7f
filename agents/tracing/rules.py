"""Tracing rules engine: labels scored by taxonomy cues blended with exemplar similarity."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from agents.tracing.grading import grade_for
from agents.tracing.index import TracingIndex, centre
from tools.cues import Match
from tools.learning import Learned
from tools.schema import Complaint, Evidence, LabelScore, RootCause, Sentiment

if TYPE_CHECKING:
    from tools.deps import Deps

CUE_WEIGHT = 0.4
EMBED_WEIGHT = 0.6
EMBED_TEMPERATURE = 0.04
SECONDARY_RATIO = 0.6
# A corrected complaint this close (cosine) to a new one speaks for its label: nothing at the floor,
# W_TAUGHT (the scale of a whole cue-plus-exemplar score) from TAUGHT_FULL on. See agents/attribution.
W_TAUGHT = 0.6
TAUGHT_FLOOR = 0.92
TAUGHT_FULL = 0.96
_INQUIRY = re.compile(
    r"请问|咨询|想了解|建议|如何|怎么办理|怎样|是否可以|能否|可以吗|吗[?？]|表扬|感谢|how do|can i|\?$"
)


def _cue_strength(matches: list[Match]) -> float:
    # Distinct cues count; longer cues are more specific and count for more.
    total = sum(min(1.0, 0.45 + 0.12 * len(c)) for c in {m.cue for m in matches})
    return 1 - math.exp(-1.1 * total)


def _label_similarity(index: TracingIndex, vectors: np.ndarray) -> np.ndarray:
    """Per complaint and label: mean of the two best exemplar similarities."""
    n, k = len(vectors), len(index.labels)
    out = np.zeros((n, k), dtype=np.float32)
    if n == 0 or len(index.exemplars) == 0:
        return out
    # Centre both sides on the exemplars' mean: E5 similarities are compressed near 0.8-0.9,
    # and centring spreads them so the nearest label stands out.
    sims = centre(vectors, index.center) @ index.exemplars.T
    for j in range(k):
        cols = sims[:, index.exemplar_label == j]
        if cols.shape[1] == 0:
            continue
        top = np.sort(cols, axis=1)[:, -2:]
        out[:, j] = top.mean(axis=1)
    return out


def _taught(index: TracingIndex, vectors: np.ndarray, learned: Learned | None) -> np.ndarray:
    """Per complaint and label: the weight of the closest corrected complaint with that label (the
    taxonomy's exemplars are phrases; reviewed complaints sit much closer to new ones, so they count
    only as close paraphrases, not in the top-two mean, where any of them would pull everything)."""
    out = np.zeros((len(vectors), len(index.labels)))
    if learned is None or not len(learned) or not len(vectors):
        return out
    strength, labels = learned.evidence(vectors, "l2", TAUGHT_FLOOR, TAUGHT_FULL)
    position = {lab.id: j for j, lab in enumerate(index.labels)}
    for k, lab in enumerate(labels):
        if lab in position:
            out[:, position[lab]] = W_TAUGHT * strength[:, k]
    return out


def _softmax(row: np.ndarray, temperature: float) -> np.ndarray:
    z = (row - row.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def trace_rules(
    complaints: list[Complaint], vectors: np.ndarray, deps: Deps, learned: Learned | None = None
) -> list[RootCause]:
    """The offline engine: trace each complaint from cues, exemplars and the lexicon.

    Each L2 label is scored by its cue phrases found in the text (a denial such as "不是…"
    cancels a cue) and by how close the complaint's vector lies to the label's exemplars and
    definition; the two are blended. Complaints reviewers corrected (``learned``) are exemplars of
    their corrected label: one close enough to a complaint adds to that label's score.
    """
    index: TracingIndex = deps.indexes["tracing"]
    sims = _label_similarity(index, vectors)
    taught = _taught(index, vectors, learned)
    results = []
    for i, c in enumerate(complaints):
        folded = c.text.lower()
        cue_hits = index.cues.find(folded)
        cue = np.array([_cue_strength(cue_hits.get(lab.id, [])) for lab in index.labels])
        emb = _softmax(sims[i], EMBED_TEMPERATURE) if len(index.exemplars) else np.zeros(len(cue))
        combined = CUE_WEIGHT * cue + EMBED_WEIGHT * emb + taught[i]
        order = np.argsort(-combined)
        best = int(order[0])
        label = index.labels[best]
        senti = index.sentiment.score(c.text, vectors[i])
        has_cue = bool(cue_hits)
        # The batch is complaints: a row is a negative voice unless it reads as praise, or as a
        # plain question or suggestion with no problem cue in it.
        # Money at risk or a failure that stops business is a complaint however politely (or
        # manipulatively: "情绪为满意") it is worded.
        serious = any(
            index.grade_rule_names[k][0] in ("特急", "紧急") for k in index.grade_rules.find(folded)
        )
        negative = (
            senti.polarity == "negative"
            or serious
            or (
                senti.polarity == "neutral"
                and (has_cue or index.negative_hints.any(folded) or not _INQUIRY.search(folded))
            )
        )
        grade, reason, grade_hits = grade_for(index, folded, label if negative else None)
        secondary = [
            LabelScore(
                label=index.labels[j].id,
                dimension=index.labels[j].dimension,
                score=round(float(combined[j]), 3),
            )
            for j in order[1:4]
            if combined[j] >= SECONDARY_RATIO * combined[best] and cue[j] > 0
        ]
        l3 = None
        if label.id in index.l3:
            l3_hits = index.l3[label.id].find(folded)
            if l3_hits:
                l3 = max(l3_hits, key=lambda k: len(l3_hits[k]))
        evidence = [
            Evidence(text=m.cue, start=m.start, end=m.end, supports=lab_id)
            for lab_id in [label.id] + [s.label for s in secondary]
            for m in cue_hits.get(lab_id, [])[:3]
        ] + [
            Evidence(text=m.cue, start=m.start, end=m.end, supports=f"grade:{grade}") for m in grade_hits[:2]
        ]
        confidence = float(combined[best]) / max(float(combined[best] + combined[order[1]]), 1e-9)
        results.append(
            RootCause(
                dimension=label.dimension,
                l2=label.id,
                l3=l3,
                confidence=round(min(0.99, confidence * (0.6 + 0.4 * cue[best])), 3),
                secondary=secondary,
                sentiment=Sentiment(
                    polarity=senti.polarity,
                    score=senti.score,
                    intensity=senti.intensity,
                    emotion=senti.emotion,
                ),
                is_negative_voice=negative,
                grade=grade,
                grade_reason=reason,
                evidence=evidence,
            )
        )
    return results
