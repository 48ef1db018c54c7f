"""Per-complaint analysis numbers: the analysed item, severity, level cut points, the priority matrix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tools.cues import CueIndex
from tools.knowledge import Level, Priority, ScoringConfig
from tools.schema import Attribution, Complaint, RootCause, Severity
from tools.taxonomy import Grade

_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*(万元|万|元|块)")
PRIORITIES: tuple[Priority, ...] = ("P1", "P2", "P3", "P4")


@dataclass
class Item:
    """One analysed complaint as analysis sees it."""

    complaint: Complaint
    attribution: Attribution
    cause: RootCause
    vector: np.ndarray


def level(score: float, cuts: Mapping[Literal["high", "medium"], float]) -> Level:
    if score >= cuts["high"]:
        return "high"
    if score >= cuts["medium"]:
        return "medium"
    return "low"


def priority_for(cfg: ScoringConfig, severity: Level, impact: Level, grade: Grade) -> Priority:
    """The matrix cell, raised to the grade's floor where one is configured."""
    p = cfg.priority.matrix[severity][impact]
    floor = cfg.priority.floors.get(grade)
    if floor and PRIORITIES.index(floor) < PRIORITIES.index(p):
        return floor
    return p


def amount_yuan(text: str) -> float:
    total = 0.0
    for value, unit in _AMOUNT.findall(text):
        v = float(value)
        total += v * 10000 if unit.startswith("万") else v
    return total


def score_severity(items: list[Item], cfg: ScoringConfig) -> dict[str, Severity]:
    blocking = CueIndex({"b": cfg.severity.blocking_cues}, check_denial=False)
    urgency = CueIndex({"u": cfg.severity.urgency_cues}, check_denial=False)
    w = cfg.severity.weights
    out = {}
    for it in items:
        folded = it.complaint.text.lower()
        factors = {
            "grade": cfg.grades.points[it.cause.grade],
            "intensity": it.cause.sentiment.intensity,
            "blocking": 1.0 if blocking.any(folded) else 0.0,
            "urgency": 1.0 if urgency.any(folded) else 0.0,
        }
        if not it.cause.is_negative_voice:
            factors = {k: v * 0.3 for k, v in factors.items()}
        score = 100 * sum(w.get(k, 0) * v for k, v in factors.items()) / max(sum(w.values()), 1e-9)
        out[it.complaint.id] = Severity(
            score=round(score, 1), level=level(score, cfg.severity.levels), factors=factors
        )
    return out
