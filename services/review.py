"""The review queue for every door: results the engine is unsure of, and flagged ones, grouped by problem.

It reads the warehouse (``VOC_HOME/warehouse.db``): every tracked batch ends there, whichever door sent
it (``voc analyze``, ``POST /v1/batches``, MCP ``submit_batch``), with its confidences as shown; the job
store holds only the batches accepted through the service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from loop.review import candidates
from loop.warehouse import Warehouse
from services.errors import AuditUnavailable
from tools import injection
from tools.audit import Actor, AuditError, AuditLog
from tools.calibration import cascade_threshold, load_calibration, review_threshold
from tools.settings import Settings
from tools.sql import database

SNIPPET_CHARS = 80
UNGROUPED = "ungrouped"


class ReviewItem(BaseModel):
    """One result to look at again: what was decided, how sure, and why it is listed."""

    id: str = Field(description="Complaint id within its source.")
    source: str = Field(description="The system the id belongs to.")
    batch_id: str
    period: str
    text: str = Field(description="The masked complaint text, cut to a snippet.")
    label: str | None = Field(description="Root-cause L2 label id; null when not read as a complaint.")
    label_confidence: float | None
    department: str | None
    department_confidence: float | None
    grade: str
    grade_confidence: float | None
    engine: str | None = Field(description="rules or llm; a model's confidence is its own, uncalibrated.")
    reasons: list[str] = Field(description="Why it is in the queue.")


class ReviewGroup(BaseModel):
    """The listed results of one tracked problem, to confirm or correct together."""

    problem_id: str = Field(description="Tracked problem id (TP-0001...), or 'ungrouped'.")
    problem_name: str | None
    items: list[ReviewItem] = Field(description="Least confident first.")


class ReviewQueue(BaseModel):
    """Results to review, grouped by tracked problem, the group holding the least confident result first."""

    threshold: float = Field(description="Results with a label confidence below this are listed.")
    threshold_source: str = Field(description="Where the threshold came from.")
    total: int = Field(description="Results in the queue (all pages).")
    offset: int
    limit: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")
    groups: list[ReviewGroup]


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


def _reasons(row: dict[str, Any], threshold: float) -> list[str]:
    out = []
    conf = row["label_confidence"]
    if conf is not None and conf < threshold:
        whose = "the model's own" if row["engine"] == "llm" else "calibrated"
        out.append(f"label confidence {conf:.2f} < {threshold} ({whose})")
    if f'"{injection.FLAG}"' in row["flags"]:
        out.append("instructions aimed at a model in the text (ignored, not obeyed)")
    return out


def _item(row: dict[str, Any], threshold: float) -> ReviewItem:
    return ReviewItem(
        id=row["id"],
        source=row["source"],
        batch_id=row["batch_id"],
        period=row["period"],
        text=_snippet(row["text"]),
        label=row["l2"] if row["negative"] else None,
        label_confidence=row["label_confidence"],
        department=row["department"],
        department_confidence=row["department_confidence"],
        grade=row["grade"],
        grade_confidence=row["grade_confidence"],
        engine=row["engine"],
        reasons=_reasons(row, threshold),
    )


def order(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least confident first, each group kept together and placed by its least confident member;
    among equals the newest first (``rows`` come newest first and the sort is stable)."""

    def conf(r: dict[str, Any]) -> float:
        return r["label_confidence"] if r["label_confidence"] is not None else 1.0

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=conf):
        groups.setdefault(r["tracked_id"] or UNGROUPED, []).append(r)
    # Dicts keep insertion order: a group enters when its least confident member does.
    return [r for members in groups.values() for r in members]


class ReviewService:
    """The review queue: the thresholds in force (``VOC_REVIEW_THRESHOLD``, else the calibration curve)
    and the listed results. A read is recorded in the audit trail before it is answered (``review.read``)
    and refused when it cannot be: the snippets are complaints."""

    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self.settings = settings
        self.audit = audit

    def threshold(self) -> tuple[float, str]:
        s = self.settings
        cal = load_calibration(s.calibration_file)
        cascade, _ = cascade_threshold(cal, s.cascade_threshold, s.cascade_target)
        return review_threshold(cal, s.review_threshold, s.review_below_accuracy, cascade)

    def queue(self, via: Actor, *, batch: str | None = None, offset: int = 0, limit: int = 50) -> ReviewQueue:
        """One page of the queue, optionally of one batch."""
        threshold, source = self.threshold()
        store = database(self.settings, "warehouse")
        rows = order(candidates(Warehouse(store), threshold, batch)) if store.exists() else []
        page = rows[offset : offset + limit]
        groups: dict[str, ReviewGroup] = {}
        for r in page:
            key = r["tracked_id"] or UNGROUPED
            group = groups.setdefault(
                key, ReviewGroup(problem_id=key, problem_name=r["problem_name"], items=[])
            )
            group.items.append(_item(r, threshold))
        try:
            self.audit.record(via, "review.read", batch, items=len(page), total=len(rows))
        except AuditError:
            raise AuditUnavailable(
                "the audit log cannot be written; the review queue is not served without it"
            ) from None
        return ReviewQueue(
            threshold=threshold,
            threshold_source=source,
            total=len(rows),
            offset=offset,
            limit=limit,
            next_offset=offset + limit if offset + limit < len(rows) else None,
            groups=list(groups.values()),
        )
