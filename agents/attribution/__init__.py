"""Attribution (归因): the entry ``attribute`` that finds each complaint's owner by the configured engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.attribution.channels import canonical_channel
from agents.attribution.index import AttributionIndex, build_attribution_index
from agents.attribution.llm import attribute_llm
from agents.attribution.rules import attribute_rules
from tools.schema import Attribution, Complaint, RootCause

if TYPE_CHECKING:
    from agents.triage import TriageLog
    from tools.deps import Deps
    from tools.learning import Learned

__all__ = ["AttributionIndex", "attribute", "build_attribution_index", "canonical_channel"]


def attribute(
    complaints: list[Complaint],
    vectors: np.ndarray,
    causes: list[RootCause],
    deps: Deps,
    log: TriageLog | None = None,
    learned: Learned | None = None,
) -> list[Attribution]:
    """Attribute complaints with the configured engine; ``llm`` falls back to rules per item.

    With the llm engine the owners come from the tracing call (pass its ``log``), checked
    against the service matrix. ``learned`` (reviewers' corrections) is evidence for the rules engine.
    """
    if deps.llm is None:
        return attribute_rules(complaints, vectors, causes, deps, learned)
    return attribute_llm(complaints, vectors, causes, deps, log)
