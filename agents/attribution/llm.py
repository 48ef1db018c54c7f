"""Attribution llm engine: owners from the joint call's validated drafts; rules for complaints without one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.attribution.channels import infer_channel
from agents.attribution.index import AttributionIndex
from agents.attribution.rules import attribute_rules
from agents.tracing import trace
from agents.triage import TriageLog, new_log
from tools.schema import Attribution, Complaint, RootCause

if TYPE_CHECKING:
    from tools.deps import Deps


def attribute_llm(
    complaints: list[Complaint],
    vectors: np.ndarray,
    causes: list[RootCause],
    deps: Deps,
    log: TriageLog | None = None,
) -> list[Attribution]:
    """Owners from the tracing call's validated drafts; rules for the rest."""
    if log is None:
        # Called on its own: the owners come from the same joint call tracing makes.
        log = new_log(deps, None)
        trace(complaints, vectors, deps, log)
    missing = [i for i, c in enumerate(complaints) if c.id not in log.drafts]
    rules = attribute_rules(
        [complaints[i] for i in missing],
        vectors[missing] if len(missing) else vectors[:0],
        [causes[i] for i in missing],
        deps,
    )
    by_rules = dict(zip(missing, rules, strict=True))
    index: AttributionIndex = deps.indexes["attribution"]
    out = []
    for i, c in enumerate(complaints):
        if i in by_rules:
            out.append(by_rules[i])
            continue
        d = log.drafts[c.id]
        dept = deps.matrix.department(d.department_id)
        folded = c.text.lower()
        channel, source = infer_channel(index, c, folded)
        line = index.line_of.get(c.business_line.lower()) if c.business_line else None
        if line is None and d.product:
            line = next((p.business_line for p in dept.products if p.name == d.product), None)
        if line is None and dept.business_lines:
            line = dept.business_lines[0]
        out.append(
            Attribution(
                channel=channel,
                channel_source=source,
                business_line=line,
                product=c.product or d.product,
                department_id=dept.id,
                department=dept.name,
                owner_role=dept.owner_role,
                confidence=round(d.confidence, 3),
                alternatives=[],
                evidence=d.evidence,
            )
        )
    return out
