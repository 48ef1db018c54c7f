"""The cascade (``engine auto``): rules on every complaint, the model only for those rules is unsure of.

The rules engine traces and attributes the whole chunk; a complaint whose calibrated label
confidence is below the cascade threshold goes to the model (tracing and attribution ride on one
call), the rest keep the rules result exactly. Label confidence steers alone: the department's
calibrated map is nearly flat (its slope is about a sixth of the label's), so it says little about
which results are wrong, and on the labelled set routing on the label alone kept results that were
as often right (label and department) as routing on the lower of the two while sending fewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.attribution import attribute
from agents.attribution.rules import attribute_rules
from agents.tracing import trace
from agents.tracing.rules import trace_rules
from tools.calibration import calibrate, cascade_threshold
from tools.schema import Attribution, Complaint, RootCause

if TYPE_CHECKING:
    from agents.triage import TriageLog
    from tools.deps import Deps
    from tools.learning import Learned


def threshold(deps: Deps) -> tuple[float, str]:
    """The cascade threshold in force for these deps, and where it came from."""
    s = deps.settings
    return cascade_threshold(deps.calibration, s.cascade_threshold, s.cascade_target)


def trace_and_attribute(
    complaints: list[Complaint],
    vectors: np.ndarray,
    deps: Deps,
    log: TriageLog,
    learned: Learned | None = None,
) -> tuple[list[RootCause], list[Attribution]]:
    """Rules for all, the model for the unsure; counts go to ``log.meter`` (``cascade.*``).
    ``learned`` (reviewers' corrections) is evidence for the rules pass, as with the rules engine."""
    causes = trace_rules(complaints, vectors, deps, learned)
    owners = attribute_rules(complaints, vectors, causes, deps, learned)
    limit, _ = threshold(deps)
    sure = [calibrate(deps.calibration, rc, at)[0].confidence for rc, at in zip(causes, owners, strict=True)]
    # 1 sends everything, even a confidence that rounds to 1.0.
    unsure = [i for i, conf in enumerate(sure) if conf < limit or limit >= 1]
    llm = deps.llm
    assert llm is not None
    log.meter.add("cascade.kept", len(complaints) - len(unsure))
    log.meter.add("cascade.sent", len(unsure))
    # The calls the whole chunk would have cost, for the saving run.json reports.
    log.meter.add("cascade.calls_if_all", -(-len(complaints) // llm.batch_size))
    for i, conf in enumerate(sure):
        if conf >= limit and limit < 1:
            log.note(
                complaints[i].id, f"kept by rules: label confidence {conf:.2f} >= cascade threshold {limit}"
            )
    if not unsure:
        return causes, owners
    sub = [complaints[i] for i in unsure]
    sub_vectors = vectors[unsure]
    sub_causes = trace(sub, sub_vectors, deps, log)
    sub_owners = attribute(sub, sub_vectors, sub_causes, deps, log)
    for i, rc, at in zip(unsure, sub_causes, sub_owners, strict=True):
        causes[i], owners[i] = rc, at
    log.meter.add("cascade.fell_back", sum(log.engine(c.id) == "rules" for c in sub))
    return causes, owners
