"""Reviewers' corrections at the start of a run: loaded once per change (cheap: one query and the cached
vectors of the corrected complaints), then applied to a chunk's results."""

from __future__ import annotations

from typing import Any

import numpy as np

from loop import feedback
from loop.warehouse import Warehouse, text_hash
from tools.deps import Deps
from tools.learning import Learned, apply_to_attribution, apply_to_cause
from tools.schema import Attribution, CorrectionNote, RootCause
from tools.sql import database


def feedback_version(deps: Deps) -> str | None:
    """The corrections' version in this home, or None when there are none (or no warehouse)."""
    store = database(deps.settings, "warehouse")
    if not store.exists():
        return None
    with store.connect() as conn:
        if "corrections" not in conn.tables():
            return None
        version = feedback.version(conn)
    return None if version.startswith("0.") else version


def learned_for(deps: Deps, warehouse: Warehouse | None) -> Learned | None:
    """What the corrections in force teach, reloaded only when they changed since the last chunk."""
    if warehouse is None:
        return None
    with warehouse.reading() as conn:
        version = feedback.version(conn)
        if version.startswith("0."):
            return None
        key = (warehouse.db.where, deps.embedder.name, version)
        cached = deps.indexes.get("feedback")
        if cached is not None and cached[0] == key:
            return cached[1]
        dims = {lab.id: lab.dimension for lab in deps.taxonomy.labels}
        learned = feedback.load_learned(conn, deps.embedder.name, dims)
    deps.indexes["feedback"] = (key, learned)
    return learned


def apply_taught(
    learned: Learned,
    deps: Deps,
    source: str | None,
    ids: list[str],
    texts: list[str],
    vectors: np.ndarray,
    causes: list[RootCause],
) -> list[tuple[int, Any, float] | None]:
    """Give each complaint that was corrected, or duplicates one, the taught label and grade (before
    attribution, which reads the label); return the matches for :func:`apply_owners`."""
    matches = learned.match(
        source, ids, [text_hash(t) for t in texts], vectors, deps.settings.feedback_duplicate_similarity
    )
    for m, cause in zip(matches, causes, strict=True):
        if m is not None:
            apply_to_cause(cause, learned.taught[m[0]])
    return matches


def apply_owners(
    learned: Learned,
    deps: Deps,
    matches: list[tuple[int, Any, float] | None],
    causes: list[RootCause],
    owners: list[Attribution],
) -> list[CorrectionNote | None]:
    """Give the matched complaints the taught department; return what each result followed."""
    names = {d.id: (d.name, d.owner_role) for d in deps.matrix.departments}
    notes: list[CorrectionNote | None] = []
    for m, cause, owner in zip(matches, causes, owners, strict=True):
        if m is None:
            notes.append(None)
            continue
        t = learned.taught[m[0]]
        fields = []
        if t.l2 and t.dimension:
            fields.append("l2")
        if t.grade:
            fields.append("grade")
        if t.department_id and t.department_id in names:
            fields += apply_to_attribution(owner, t, *names[t.department_id])
        if t.problem_id:
            fields.append("problem")
        if m[2] < 1.0:
            # A near-duplicate is as sure as it is close.
            cause.confidence = min(cause.confidence, m[2]) if "l2" in fields else cause.confidence
            owner.confidence = min(owner.confidence, m[2]) if "department" in fields else owner.confidence
        notes.append(
            CorrectionNote(
                correction_id=t.correction_id,
                match=m[1],
                similarity=m[2],
                fields=fields,
                problem_id=t.problem_id,
            )
        )
    return notes
