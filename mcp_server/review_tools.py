"""The MCP review tool: results the engine is unsure of, and flagged ones, grouped by tracked problem.

A thin wrapper over ``services.review`` (as ``voc review`` and ``GET /v1/review``), shaped for an
assistant to read: one line per result."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from mcp_server.registry import READ_ONLY, Entry
from mcp_server.runtime import actor, caller, in_thread
from services.review import ReviewGroup, ReviewItem


def _conf(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def line(i: ReviewItem) -> str:
    """One result: id, label/department/grade with confidences, engine, why listed, masked snippet."""
    decided = f"{i.label or '非投诉'} {_conf(i.label_confidence)} / {i.department or '-'} "
    decided += f"{_conf(i.department_confidence)} / {i.grade} {_conf(i.grade_confidence)}"
    return f"{i.id} [{decided}; {i.engine or '-'}] {'; '.join(i.reasons)}: {i.text}"


class ReviewBlock(BaseModel):
    """One tracked problem's listed results."""

    problem_id: str
    problem_name: str | None
    items: list[str]

    @classmethod
    def of(cls, g: ReviewGroup) -> ReviewBlock:
        return cls(problem_id=g.problem_id, problem_name=g.problem_name, items=[line(i) for i in g.items])


class ReviewList(BaseModel):
    """The review queue, one page."""

    threshold: float
    total: int
    next_offset: int | None
    groups: list[ReviewBlock]


async def list_review_queue(
    ctx: Context,
    batch: Annotated[str | None, Field(max_length=64)] = None,
    offset: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1, le=1000)] = 50,
) -> ReviewList:
    """Results to check by hand: label confidence below the review threshold, or instructions aimed
    at a model in the text. Grouped by tracked problem (confirm one at once), least sure first. Line:
    id [label conf / dept conf / grade conf; engine] why: masked text."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    q = await in_thread(lambda: svc.review.queue(via, batch=batch, offset=offset, limit=limit))
    return ReviewList(
        threshold=q.threshold,
        total=q.total,
        next_offset=q.next_offset,
        groups=[ReviewBlock.of(g) for g in q.groups],
    )


TOOLS: list[Entry] = [(list_review_queue, "Review queue", READ_ONLY)]
