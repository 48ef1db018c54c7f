"""The MCP feedback tool: a reviewer confirms, corrects or undoes a complaint's answer.

A thin wrapper over ``services.feedback`` (as ``voc feedback`` and ``/v1/feedback``): the same checks,
storage and audit trail, naming the caller (``mcp:stdio``, or the HTTP caller's key)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from mcp_server.registry import WRITES, Entry
from mcp_server.runtime import actor, caller, in_thread
from services.feedback import CorrectionIn


class CorrectionAnswer(BaseModel):
    """What the call did."""

    status: Literal["stored", "unchanged", "undone"]
    ids: list[str]
    complaint_id: str
    answer: dict[str, str | None]
    warnings: list[str]


async def correct_complaint(
    ctx: Context,
    id: Annotated[str, Field(max_length=200)],
    action: Literal["correct", "confirm", "undo"] = "correct",
    l2: Annotated[str | None, Field(max_length=64)] = None,
    department: Annotated[str | None, Field(max_length=100)] = None,
    grade: Literal["特急", "紧急", "重要", "一般"] | None = None,
    problem: Annotated[str | None, Field(max_length=32)] = None,
    source: Annotated[str | None, Field(max_length=100)] = None,
) -> CorrectionAnswer:
    """A reviewer's verdict on an analysed complaint (id, source if in several): correct its l2 label,
    department (id or name), grade or tracked problem (TP-0001); confirm it as is; or undo (id: the
    complaint or COR-0001). Later batches keep it for that complaint and near-duplicates, and lean
    similar ones to it. Warnings: contradicts the taxonomy or matrix."""
    svc, who = await caller(ctx, "write")
    via = actor(ctx, who)
    if action == "undo":
        undone = await in_thread(lambda: svc.feedback.undo(via, id, source))
        return CorrectionAnswer(
            status="undone", ids=undone.undone, complaint_id=undone.complaint_id, answer={}, warnings=[]
        )
    item = CorrectionIn(
        id=id,
        source=source,
        l2=l2,
        department=department,
        grade=grade,
        problem=problem,
        confirm=action == "confirm",
    )
    out = await in_thread(lambda: svc.feedback.add(via, item))
    c = out.correction
    return CorrectionAnswer(
        status=out.status,
        ids=[c["id"]],
        complaint_id=c["complaint_id"],
        answer={k: c[k] for k in ("l2", "department_id", "grade", "problem_id")},
        warnings=out.warnings,
    )


TOOLS: list[Entry] = [(correct_complaint, "Correct a complaint", WRITES)]
