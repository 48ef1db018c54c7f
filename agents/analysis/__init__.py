"""Analysis (分析): the entry ``analyze`` (rules, then llm naming) and the names its callers use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.analysis.llm import name_problems
from agents.analysis.rules import AnalysisOutput, analyze_items
from agents.analysis.scoring import PRIORITIES, Item, level, priority_for, score_severity

if TYPE_CHECKING:
    from tools.deps import Deps
    from tools.llm import Meter

__all__ = [
    "PRIORITIES",
    "AnalysisOutput",
    "Item",
    "analyze",
    "analyze_items",
    "level",
    "priority_for",
    "score_severity",
]


def analyze(items: list[Item], deps: Deps, meter: Meter | None = None) -> AnalysisOutput:
    """Score, cluster and rank by rules; with the ``llm`` engine the model then names the problems."""
    out = analyze_items(items, deps)
    if deps.llm is not None:
        name_problems(out.problems, deps, meter or deps.llm.meter(None))
    return out
