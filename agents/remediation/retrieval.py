"""Retrieval both remediation engines share: the nearest past cases and knowledge entries, re-ranked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tools.knowledge import Case, KnowledgeEntry
from tools.schema import Problem, SourceRef
from tools.store import Hit

if TYPE_CHECKING:
    from tools.deps import Deps

LABEL_BONUS = 0.06
DIMENSION_BONUS = 0.03
OWNER_BONUS = 0.03


def _rerank(hits: list[Hit], problem: Problem, key_labels: str, key_owner: str) -> list[Hit]:
    # Nearness alone finds look-alike texts; a shared root cause, dimension or owner makes a
    # case or an entry one the problem's owner can actually learn from.
    def bonus(h: Hit) -> float:
        labels = str(h.metadata.get(key_labels, "")).split(",")
        owners = str(h.metadata.get(key_owner, "")).split(",")
        b = LABEL_BONUS if problem.l2 in labels else 0.0
        if h.metadata.get("dimension") == problem.dimension:
            b += DIMENSION_BONUS
        if problem.department_id in owners:
            b += OWNER_BONUS
        return b

    return sorted(hits, key=lambda h: -(h.score + bonus(h)))


def retrieve(
    problem: Problem, centroid: np.ndarray, deps: Deps
) -> tuple[list[Case], list[KnowledgeEntry], list[SourceRef]]:
    """The cases and knowledge entries a proposal for ``problem`` may rely on."""
    limits = deps.scoring.remediation
    q = centroid / (np.linalg.norm(centroid) or 1.0)
    case_hits = _rerank(
        deps.store.search("cases", q, k=limits.cases_top_k * 3), problem, "labels", "owner_department"
    )
    kb_hits = _rerank(
        deps.store.search("knowledge", q, k=limits.knowledge_top_k * 3), problem, "labels", "departments"
    )
    case_by_id = {c.id: c for c in deps.cases.cases}
    entry_by_id = {e.id: e for e in deps.knowledge.entries}
    cases = [
        case_by_id[h.metadata["case_id"]]
        for h in case_hits[: limits.cases_top_k]
        if h.metadata.get("case_id") in case_by_id
    ]
    entries = [
        entry_by_id[h.metadata["entry_id"]]
        for h in kb_hits[: limits.knowledge_top_k]
        if h.metadata.get("entry_id") in entry_by_id
    ]
    refs = [
        SourceRef(id=c.id, kind="case", title=c.title, score=h.score)
        for c, h in zip(cases, case_hits, strict=False)
    ]
    refs += [
        SourceRef(id=e.id, kind="knowledge", title=e.title, score=h.score)
        for e, h in zip(entries, kb_hits, strict=False)
    ]
    return cases, entries, refs
