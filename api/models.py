"""The HTTP API's own request and response models (shared ones are ``services.models``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services import models as shared
from services.models import BatchOptions, Progress, Status
from tools.audit import AuditEvent
from tools.knowledge import Case, KnowledgeEntry


class ComplaintIn(shared.ComplaintIn):
    """One complaint row. Rows that break these rules are listed as row errors, not refused."""

    id: str = Field(description="Unique within the batch.")
    metadata: dict[str, str] | None = Field(None, description="Free metadata; kept masked.")


class BatchIn(BaseModel):
    """A complaint batch as JSON."""

    model_config = ConfigDict(extra="forbid")

    complaints: list[ComplaintIn] = Field(min_length=1)
    options: BatchOptions = Field(default_factory=BatchOptions)


class ProgressEvent(BaseModel):
    """The data of each server-sent event."""

    batch_id: str
    status: Status
    progress: Progress
    failure: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Check]


class EntriesOut(BaseModel):
    version: str
    entries: list[KnowledgeEntry]


class CasesOut(BaseModel):
    version: str
    cases: list[Case]


class AuditPage(BaseModel):
    """Audit events, newest first."""

    limit: int
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null when there is none."
    )
    items: list[AuditEvent]
