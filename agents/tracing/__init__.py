"""Tracing (溯源): the entry ``trace`` that finds each complaint's root cause with the configured engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.tracing.index import TracingIndex, build_tracing_index
from agents.tracing.llm import trace_llm
from agents.tracing.rules import trace_rules
from tools.schema import Complaint, RootCause

if TYPE_CHECKING:
    from agents.triage import TriageLog
    from tools.deps import Deps
    from tools.learning import Learned

__all__ = ["TracingIndex", "build_tracing_index", "trace"]


def trace(
    complaints: list[Complaint],
    vectors: np.ndarray,
    deps: Deps,
    log: TriageLog | None = None,
    learned: Learned | None = None,
) -> list[RootCause]:
    """Trace root causes with the configured engine; ``llm`` falls back to rules per item.

    With the llm engine, ``log`` collects per-complaint engine notes, token counts and the
    owners the same call proposed, for :func:`agents.attribution.attribute` to validate.
    ``learned`` (reviewers' corrections) adds exemplars to the rules engine.
    """
    if deps.llm is None:
        return trace_rules(complaints, vectors, deps, learned)
    return trace_llm(complaints, vectors, deps, log)
