"""Remediation (应用): the entry ``propose`` that writes one problem's proposal with the configured engine."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from agents.remediation.llm import propose_llm
from agents.remediation.rules import propose_rules
from tools.schema import Problem, Proposal

if TYPE_CHECKING:
    from tools.deps import Deps
    from tools.llm import Meter

__all__ = ["propose"]


def propose(
    problem: Problem, centroid: np.ndarray, as_of: date, deps: Deps, meter: Meter | None = None
) -> Proposal:
    """Write a proposal with the configured engine; ``llm`` falls back to rules on failure."""
    if deps.llm is None:
        return propose_rules(problem, centroid, as_of, deps)
    return propose_llm(problem, centroid, as_of, deps, meter or deps.llm.meter(None))
