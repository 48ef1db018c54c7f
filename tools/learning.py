"""What reviewers' corrections taught, as plain data a run applies: the corrected complaint and its
near-duplicates keep the corrected answer; corrected complaints are exemplars for their label and
evidence for their department (see agents/tracing/rules.py and agents/attribution/rules.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tools.embeddings import normalize_rows
from tools.schema import Attribution, Match, RootCause

# The fields a correction may set, as the warehouse names them.
FIELDS = ("l2", "department_id", "grade", "problem_id")


@dataclass(frozen=True)
class Taught:
    """One complaint's answer as its corrections (not undone) add up."""

    correction_id: str  # the latest of them
    source: str
    complaint_id: str
    text_hash: str  # of the masked text
    l2: str | None
    dimension: str | None
    department_id: str | None
    grade: str | None
    problem_id: str | None


@dataclass
class Learned:
    """Every taught answer with its vector (None rows: the complaint's vector is not in the cache)."""

    version: str
    taught: list[Taught]
    vectors: np.ndarray | None  # one row per taught answer; zero rows have no vector

    def __post_init__(self) -> None:
        self._by_key = {(t.source, t.complaint_id): i for i, t in enumerate(self.taught)}
        self._by_hash: dict[str, int] = {}
        for i, t in enumerate(self.taught):
            self._by_hash[t.text_hash] = i  # the latest taught text wins
        self._unit = normalize_rows(self.vectors) if self.vectors is not None else None
        self._has = (
            np.abs(self.vectors).sum(axis=1) > 0 if self.vectors is not None else np.zeros(0, dtype=bool)
        )

    def __len__(self) -> int:
        return len(self.taught)

    def match(
        self,
        source: str | None,
        ids: list[str],
        hashes: list[str],
        vectors: np.ndarray,
        threshold: float,
    ) -> list[tuple[int, Match, float] | None]:
        """Per complaint, the taught answer it keeps: its own (same source and id), one of the same
        masked text, or the most similar one at ``threshold`` cosine or above."""
        out: list[tuple[int, Match, float] | None] = [None] * len(ids)
        sims = None
        if self._unit is not None and len(vectors):
            sims = normalize_rows(np.atleast_2d(vectors)) @ self._unit.T
            sims[:, ~self._has] = -1.0
        for i, (cid, h) in enumerate(zip(ids, hashes, strict=True)):
            if source is not None and (source, cid) in self._by_key:
                out[i] = (self._by_key[(source, cid)], "self", 1.0)
            elif h in self._by_hash:
                out[i] = (self._by_hash[h], "duplicate", 1.0)
            elif sims is not None:
                j = int(np.argmax(sims[i]))
                if sims[i, j] >= threshold:
                    out[i] = (j, "near_duplicate", round(float(sims[i, j]), 4))
        return out

    def evidence(
        self, vectors: np.ndarray, attr: Literal["l2", "department_id"], floor: float, full: float
    ) -> tuple[np.ndarray, list[str]]:
        """Per complaint and taught value of ``attr``: how strongly the closest complaint taught that
        value speaks for it, 0 at ``floor`` cosine or below, 1 from ``full`` on (values in order)."""
        taught, values = self.exemplars(attr)
        names = sorted(set(values))
        out = np.zeros((len(vectors), len(names)))
        if not names or not len(vectors):
            return out, names
        sims = normalize_rows(np.atleast_2d(vectors)) @ normalize_rows(taught).T
        strength = np.clip((sims - floor) / max(full - floor, 1e-6), 0, 1)
        col = {v: j for j, v in enumerate(names)}
        for k, v in enumerate(values):
            out[:, col[v]] = np.maximum(out[:, col[v]], strength[:, k])
        return out, names

    def exemplars(self, attr: Literal["l2", "department_id"]) -> tuple[np.ndarray, list[str]]:
        """Vectors of the taught complaints with this field set, and their values."""
        if self.vectors is None:
            return np.zeros((0, 0), dtype=np.float32), []
        rows = [i for i, t in enumerate(self.taught) if getattr(t, attr) and self._has[i]]
        return self.vectors[rows], [str(getattr(self.taught[i], attr)) for i in rows]


def apply_to_cause(cause: RootCause, taught: Taught) -> list[str]:
    """Override the root cause's label and grade with the taught ones; return the fields changed."""
    fields = []
    if taught.l2 and taught.dimension:
        if taught.l2 != cause.l2:
            cause.l3 = None  # the L3 cue belonged to the label the reviewer replaced
        cause.l2, cause.dimension, cause.confidence = taught.l2, taught.dimension, 1.0
        cause.secondary = [s for s in cause.secondary if s.label != taught.l2]
        # A reviewer said what caused it: it is a negative voice.
        cause.is_negative_voice = True
        fields.append("l2")
    if taught.grade:
        cause.grade = taught.grade  # type: ignore[assignment]
        cause.grade_reason = "reviewer correction"
        fields.append("grade")
    return fields


def apply_to_attribution(attribution: Attribution, taught: Taught, name: str, owner_role: str) -> list[str]:
    """Override the owner with the taught department; return the fields changed."""
    if not taught.department_id:
        return []
    attribution.department_id = taught.department_id
    attribution.department = name
    attribution.owner_role = owner_role
    attribution.confidence = 1.0
    attribution.evidence = [e for e in attribution.evidence if e.supports == taught.department_id]
    return ["department"]
