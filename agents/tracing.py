"""Root-cause tracing (溯源): sentiment, 人机物法环 dimension, L2/L3 labels, grade, evidence.

The ``rules`` engine reads the taxonomy data dictionary: each L2 label is scored by its cue
phrases found in the text (with denials such as "不是…" cancelling a cue) and by how close
the complaint's vector lies to the label's exemplars and definition; the two are blended.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tools.cues import CueIndex, Match
from tools.embeddings import normalize_rows
from tools.schema import Complaint, Evidence, LabelScore, RootCause, Sentiment
from tools.sentiment import SentimentAnalyzer
from tools.taxonomy import GRADES, Grade, Label

if TYPE_CHECKING:
    from agents.llm_tracing import TriageLog
    from tools.deps import Deps

CUE_WEIGHT = 0.4
EMBED_WEIGHT = 0.6
EMBED_TEMPERATURE = 0.04
SECONDARY_RATIO = 0.6
_MONEY = re.compile(
    r"\d[\d,.]*\s*(?:元|块|万|欧元|美元|港币|英镑|usd|sgd|hkd|eur|rmb)|钱|余额|款项|扣款|消费|取现|刷了|被刷"
    r"|charges?|charged|debited|withdrawn|\$\s?\d"
)
_INQUIRY = re.compile(
    r"请问|咨询|想了解|建议|如何|怎么办理|怎样|是否可以|能否|可以吗|吗[?？]|表扬|感谢|how do|can i|\?$"
)


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
        sentiment=SentimentAnalyzer(deps.lexicon),
    )


def centre(vectors: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Subtract the exemplars' mean and re-normalise rows."""
    return normalize_rows(np.atleast_2d(vectors) - center)


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


def _softmax(row: np.ndarray, temperature: float) -> np.ndarray:
    z = (row - row.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def _grade(index: TracingIndex, folded: str, label: Label | None) -> tuple[Grade, str, list[Match]]:
    hits = index.grade_rules.find(folded)
    ranked = sorted(hits, key=lambda key: GRADES.index(index.grade_rule_names[key][0]))
    if ranked:
        grade, name = index.grade_rule_names[ranked[0]]
        default = label.default_grade if label else "一般"
        if GRADES.index(default) < GRADES.index(grade) and default != "特急":
            return default, f"标签默认等级（{label.id if label else ''}）", hits[ranked[0]]
        return grade, f"规则：{name}", hits[ranked[0]]
    if label is None:
        return "一般", "非投诉类声音", []
    # A fund-safety label keeps 特急 only when money is actually in play; otherwise 紧急.
    if label.default_grade == "特急":
        money = _MONEY.search(folded)
        if money:
            hit = Match("money", money.group(0), money.start(), money.end())
            return "特急", f"标签默认等级（{label.id}），涉及资金", [hit]
        return "紧急", f"标签默认等级（{label.id}），未见资金损失证据", []
    return label.default_grade, f"标签默认等级（{label.id}）", []


def trace_rules(complaints: list[Complaint], vectors: np.ndarray, deps: Deps) -> list[RootCause]:
    """The offline engine: trace each complaint from cues, exemplars and the lexicon."""
    index: TracingIndex = deps.indexes["tracing"]
    sims = _label_similarity(index, vectors)
    results = []
    for i, c in enumerate(complaints):
        folded = c.text.lower()
        cue_hits = index.cues.find(folded)
        cue = np.array([_cue_strength(cue_hits.get(lab.id, [])) for lab in index.labels])
        emb = _softmax(sims[i], EMBED_TEMPERATURE) if len(index.exemplars) else np.zeros(len(cue))
        combined = CUE_WEIGHT * cue + EMBED_WEIGHT * emb
        order = np.argsort(-combined)
        best = int(order[0])
        label = index.labels[best]
        senti = index.sentiment.score(c.text)
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
        grade, reason, grade_hits = _grade(index, folded, label if negative else None)
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


def trace(
    complaints: list[Complaint], vectors: np.ndarray, deps: Deps, log: TriageLog | None = None
) -> list[RootCause]:
    """Trace root causes with the configured engine; ``llm`` falls back to rules per item.

    With the llm engine, ``log`` collects per-complaint engine notes, token counts and the
    owners the same call proposed, for :func:`agents.attribution.attribute` to validate.
    """
    if deps.llm is None:
        return trace_rules(complaints, vectors, deps)
    from agents.llm_tracing import trace_llm

    return trace_llm(complaints, vectors, deps, log)
