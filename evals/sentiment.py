"""Sentiment on bank comments the head never saw: ROC AUC negative-vs-positive and negative-vs-rest.

The set (``datasets/sentiment_bank.jsonl``, see DATASHEET.md) was written for this evaluation
and never used to train the head or to choose the blend weights and cut points. Texts are
normalised and masked as ingest does, embedded like complaints, and scored three ways: the
pipeline's blend, the head alone and the lexicon alone, so a regression in either shows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from evals.dataset import DATASETS
from tools.deps import Deps
from tools.pii import mask_text
from tools.sentiment import SentimentAnalyzer
from tools.text import normalize

SENTIMENT_SET = DATASETS / "sentiment_bank.jsonl"
LABELS = ("negative", "neutral", "positive")
GOALS = {"neg_vs_pos": 0.93, "neg_vs_rest": 0.80}


class AucPair(BaseModel):
    neg_vs_pos: float | None = Field(description="ROC AUC of negativeness, negative vs positive rows.")
    neg_vs_rest: float | None = Field(description="ROC AUC of negativeness, negative vs all other rows.")


class SentimentReport(BaseModel):
    dataset: str
    rows: int
    counts: dict[str, int]
    head: str = Field(description="Head version in use, or why the lexicon scored alone.")
    embedder: str
    blend: AucPair = Field(description="The pipeline's score (head + lexicon).")
    head_only: AucPair | None = Field(description="The head's probability alone; None without a head.")
    lexicon_only: AucPair = Field(description="The lexicon's score alone (the old behaviour).")
    by_language: dict[str, AucPair]
    polarity_accuracy: float
    confusion: dict[str, dict[str, int]] = Field(description="Expected label -> predicted polarity -> rows.")
    negative_with_intensity: float = Field(
        description="Share of negative rows predicted negative with intensity > 0."
    )
    heldout_corpus_auc: float | None = Field(
        description="The head's AUC on held-out corpus sentences (from its recipe)."
    )
    goals: dict[str, float]
    misses: list[dict[str, Any]] = Field(description="Rows whose predicted polarity differs from the label.")


def load_sentiment_set(path: Path = SENTIMENT_SET) -> list[dict[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("label") not in LABELS or not str(rec.get("text", "")).strip():
            raise ValueError(f"{path.name}, line {n}: needs a text and a label in {LABELS}")
        rows.append(rec)
    return rows


def auc(negativeness: np.ndarray, labels: list[str], rest: tuple[str, ...]) -> float | None:
    """ROC AUC that negative rows score higher than rows labelled ``rest``; None if a side is empty."""
    from sklearn.metrics import roc_auc_score

    keep = [i for i, lab in enumerate(labels) if lab == "negative" or lab in rest]
    y = [labels[i] == "negative" for i in keep]
    if all(y) or not any(y):
        return None
    return round(float(roc_auc_score(y, negativeness[keep])), 4)


def pair(negativeness: np.ndarray, labels: list[str]) -> AucPair:
    return AucPair(
        neg_vs_pos=auc(negativeness, labels, ("positive",)),
        neg_vs_rest=auc(negativeness, labels, ("neutral", "positive")),
    )


def run_sentiment_eval(deps: Deps, path: Path = SENTIMENT_SET) -> SentimentReport:
    """Score the labelled set with ``deps``' embedder, head and lexicon."""
    rows = load_sentiment_set(path)
    texts = [mask_text(normalize(r["text"])) for r in rows]
    labels = [r["label"] for r in rows]
    vectors = deps.embedder.embed(texts, kind="query")
    blend = SentimentAnalyzer(deps.lexicon, deps.sentiment_head)
    lexicon = SentimentAnalyzer(deps.lexicon)
    scored = [blend.score(t, v) for t, v in zip(texts, vectors, strict=True)]
    lex_scores = np.array([-lexicon.score(t).score for t in texts])
    neg = np.array([-s.score for s in scored])
    head_only = None
    if deps.sentiment_head is not None:
        head_only = pair(-deps.sentiment_head.prob_positive(vectors), labels)
    by_language = {}
    for lang in sorted({r.get("lang", "zh") for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.get("lang", "zh") == lang]
        by_language[lang] = pair(neg[idx], [labels[i] for i in idx])
    confusion = {lab: dict.fromkeys(LABELS, 0) for lab in LABELS}
    for lab, s in zip(labels, scored, strict=True):
        confusion[lab][s.polarity] += 1
    negatives = [s for lab, s in zip(labels, scored, strict=True) if lab == "negative"]
    recipe = deps.sentiment_head.recipe if deps.sentiment_head else {}
    return SentimentReport(
        dataset=path.name,
        rows=len(rows),
        counts=dict(Counter(labels)),
        head=deps.versions.get("sentiment_head", "none"),
        embedder=deps.embedder.name,
        blend=pair(neg, labels),
        head_only=head_only,
        lexicon_only=pair(lex_scores, labels),
        by_language=by_language,
        polarity_accuracy=round(sum(confusion[lab][lab] for lab in LABELS) / len(rows), 4),
        confusion=confusion,
        negative_with_intensity=round(
            sum(s.polarity == "negative" and s.intensity > 0 for s in negatives) / max(len(negatives), 1), 4
        ),
        heldout_corpus_auc=recipe.get("heldout_auc"),
        goals=GOALS,
        misses=[
            {"id": r["id"], "label": r["label"], "polarity": s.polarity, "score": s.score}
            for r, s in zip(rows, scored, strict=True)
            if s.polarity != r["label"]
        ],
    )
