"""The MCP single-complaint tools: attribute or trace a complaint, assess priorities, suggest remediation."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import numpy as np
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from agents.analysis import Item, analyze_items, level, priority_for, score_severity
from agents.attribution import attribute
from agents.remediation import propose
from agents.tracing import trace
from graph.run import prepare_batch
from mcp_server.models import (
    MAX_PROBLEMS,
    Attributed,
    PriorityAssessment,
    PriorityItem,
    ProblemView,
    ProposalView,
    Remediation,
    Traced,
)
from mcp_server.registry import READ_ONLY, Entry
from mcp_server.runtime import Complaints, Relay, caller, in_thread, one, submission, tool_error
from services.errors import NoValidRows
from tools import injection
from tools.calibration import calibrate
from tools.clustering import load_stopwords, tokenize
from tools.deps import Deps
from tools.knowledge import Level
from tools.schema import Attribution, Complaint, Impact, Problem, Representative, RootCause
from tools.taxonomy import Grade

Text = Annotated[str, Field(min_length=1, description="As written or transcribed.")]


async def attribute_complaint(
    ctx: Context,
    text: Text,
    channel: Annotated[str | None, Field(description="Intake channel, e.g. 电话 or APP.")] = None,
    business_line: str | None = None,
    product: str | None = None,
) -> Attributed:
    """Who owns one complaint: channel, business line, product, department and owner role (service
    matrix), confidence 0-1, runner-up departments, deciding words. The root cause is traced first:
    some causes have one owner."""
    svc, _ = await caller(ctx, "write")

    def work() -> Attributed:
        deps = svc.holder.get()
        fields = {"text": text, "channel": channel, "business_line": business_line, "product": product}
        c = one(deps, fields)
        _, causes, owners = triage(deps, [c])
        return Attributed(
            attribution=shown(deps, causes[0], owners[0])[1],
            root_cause=causes[0].l2,
            masked_text=c.text,
            pii_masked=c.pii_masked,
        )

    return await in_thread(work)


async def trace_root_cause(
    ctx: Context,
    text: Text,
    channel: Annotated[str | None, Field(description="Intake channel, e.g. 电话 or APP.")] = None,
) -> Traced:
    """Why one complaint happened: sentiment, negative voice or not, the 人机物法环 dimension and L2
    label (L3 if a finer cue matched), secondary labels, grade (特急 > 紧急 > 重要 > 一般) with the rule
    that set it, evidence spans."""
    svc, _ = await caller(ctx, "write")

    def work() -> Traced:
        deps = svc.holder.get()
        c = one(deps, {"text": text, "channel": channel})
        _, causes, owners = triage(deps, [c])
        rc = shown(deps, causes[0], owners[0])[0]
        label = deps.taxonomy.label(rc.l2) if rc.l2 in deps.taxonomy.label_ids else None
        return Traced(
            root_cause=rc,
            label_name=label.name if label else None,
            label_definition=label.definition if label else None,
            masked_text=c.text,
            pii_masked=c.pii_masked,
        )

    return await in_thread(work)


async def assess_priority(ctx: Context, complaints: Complaints) -> PriorityAssessment:
    """How urgent up to 200 complaints are: per complaint its priority (P1-P4, from the severity x
    impact matrix), severity and grade; the common problems they form, without proposals. A
    widespread problem ranks higher."""
    svc, _ = await caller(ctx, "write")
    relay = Relay(ctx)
    sub = submission(complaints, None)

    def work() -> PriorityAssessment:
        svc.batches.check_limits(sub.rows, svc.api.sync_max_complaints, "call; use submit_batch")
        deps = svc.holder.get()
        prepared = prepare_batch(sub.rows, deps)
        if not prepared.complaints:
            raise tool_error(
                NoValidRows("no row could be accepted; fix the rows listed", rows=prepared.errors)
            )
        items: list[Item] = []
        todo = prepared.complaints
        relay("attribute_and_trace", 0, len(todo))
        for i in range(0, len(todo), 32):
            part = todo[i : i + 32]
            vectors, causes, owners = triage(deps, part)
            items += [Item(c, at, rc, v) for c, rc, at, v in zip(part, causes, owners, vectors, strict=True)]
            relay("attribute_and_trace", len(items), len(todo))
        out = analyze_items(items, deps)
        relay("analyze", 1, 1)
        return PriorityAssessment(
            items=[
                PriorityItem(
                    id=it.complaint.id,
                    priority=out.priorities[it.complaint.id],
                    severity=out.severities[it.complaint.id].score,
                    severity_level=out.severities[it.complaint.id].level,
                    grade=it.cause.grade,
                    root_cause=it.cause.l2,
                    department=it.attribution.department,
                    problem_id=out.problem_of.get(it.complaint.id),
                    negative_voice=it.cause.is_negative_voice,
                )
                for it in items
            ],
            problems=[ProblemView.of(p) for p in out.problems[:MAX_PROBLEMS]],
            row_errors=prepared.errors,
        )

    return await in_thread(work)


async def suggest_remediation(
    ctx: Context,
    problem: Annotated[
        str,
        Field(min_length=1, description="What customers complain about."),
    ],
    complaints_per_month: Annotated[
        int, Field(ge=1, le=10_000_000, description="This month's complaints about it: the baseline.")
    ],
    root_cause: Annotated[
        str | None, Field(description="L2 label id (get_taxonomy); traced if omitted.")
    ] = None,
    department_id: Annotated[
        str | None, Field(description="From list_departments; attributed if omitted.")
    ] = None,
    grade: Annotated[Grade | None, Field(description="Traced if omitted.")] = None,
    impact: Annotated[Level, Field(description="How widely it hurts customers.")] = "medium",
) -> Remediation:
    """A remediation proposal for a problem described in words: goals, short- and long-term
    measures, owner, handling class, deadline, metrics, cited cases and knowledge entries. Omitted
    root cause, owner, grade are derived."""
    svc, _ = await caller(ctx, "write")

    def work() -> Remediation:
        deps = svc.holder.get()
        if root_cause is not None and root_cause not in deps.taxonomy.label_ids:
            raise ToolError("root_cause is not a taxonomy L2 label id; get_taxonomy lists them")
        if department_id is not None and department_id not in {d.id for d in deps.matrix.departments}:
            raise ToolError("department_id is not in the service matrix; list_departments lists them")
        c = one(deps, {"text": problem})
        vectors, causes, owners = triage(deps, [c])
        cause = causes[0]
        label = deps.taxonomy.label(root_cause or cause.l2 or deps.taxonomy.labels[0].id)
        dept = deps.matrix.department(department_id or owners[0].department_id)
        cause = cause.model_copy(update={"grade": grade or cause.grade, "is_negative_voice": True})
        cfg = deps.scoring
        sev = score_severity([Item(c, owners[0], cause, vectors[0])], cfg)[c.id]
        n = complaints_per_month
        stop = load_stopwords(str(deps.settings.data_dir / "stopwords.txt"))
        keywords = list(dict.fromkeys(tokenize(c.text, stop)))[:5]
        impact_score = {"high": cfg.impact.levels["high"], "medium": cfg.impact.levels["medium"], "low": 0.0}
        priority = priority_for(cfg, sev.level, impact, cause.grade, conduct=bool(sev.conduct))
        prob = Problem(
            id="PRB-ASK",
            rank=1,
            name=f"{label.name}｜{'、'.join(keywords[:3])}" if keywords else label.name,
            keywords=keywords,
            dimension=label.dimension,
            l2=label.id,
            department_id=dept.id,
            department=dept.name,
            owner_role=dept.owner_role,
            grade=cause.grade,
            severity=sev.score,
            severity_level=sev.level,
            impact=Impact(
                score=impact_score[impact],
                level=level(impact_score[impact], cfg.impact.levels),
                complaints=n,
                customers=n,
                share=1.0,
                current=n,
            ),
            priority=priority,
            member_ids=[],
            representatives=[Representative(id="description", text=c.text)],
            label_mix={label.id: n},
            department_mix={dept.id: n},
            channel_mix={},
            period_counts={},
        )
        with ledger(deps) as key:
            meter = deps.llm.meter(key) if deps.llm is not None else None
            proposal = propose(prob, vectors[0], date.today(), deps, meter)
        return Remediation(
            root_cause=label.id,
            department=dept.name,
            grade=cause.grade,
            priority=priority,
            proposal=ProposalView.of(proposal),
        )

    return await in_thread(work)


def triage(deps: Deps, complaints: list[Complaint]) -> tuple[np.ndarray, list[RootCause], list[Attribution]]:
    """Embed once, trace, then attribute: the chunk task of the batch graph, for a few complaints."""
    complaints = injection.for_reading(complaints)[0]  # instructions in the text are not read
    vectors = deps.embedder.embed([c.text for c in complaints], kind="query")
    if deps.llm is None:
        causes = trace(complaints, vectors, deps)
        return vectors, causes, attribute(complaints, vectors, causes, deps)
    from agents.triage import new_log

    with ledger(deps) as key:
        log = new_log(deps, key)
        causes = trace(complaints, vectors, deps, log)
        return vectors, causes, attribute(complaints, vectors, causes, deps, log)


def shown(deps: Deps, cause: RootCause, owner: Attribution) -> tuple[RootCause, Attribution]:
    """The rules engine's result with calibrated confidence, as a batch shows it; a model's as it gave it."""
    if deps.llm is not None:
        return cause, owner
    cause, owner, _ = calibrate(deps.calibration, cause, owner)
    return cause, owner


@contextmanager
def ledger(deps: Deps) -> Iterator[str]:
    """A token ledger of its own for one call, forgotten after it: a long-lived server must not
    pile every call into one budget."""
    key = f"mcp-{secrets.token_hex(6)}"
    try:
        yield key
    finally:
        if deps.llm is not None:
            deps.llm.close(key)


TOOLS: list[Entry] = [
    (attribute_complaint, "Attribute a complaint", READ_ONLY),
    (trace_root_cause, "Trace a root cause", READ_ONLY),
    (assess_priority, "Assess priority", READ_ONLY),
    (suggest_remediation, "Suggest remediation", READ_ONLY),
]
