"""The records the services take and give, shared by the HTTP and MCP doors (domain ones: tools.schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.schema import ComplaintResult, LabelSpike, Problem, RowError, RunStats

Status = Literal["queued", "running", "done", "failed"]


class BatchOptions(BaseModel):
    """How to treat the batch."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        None,
        max_length=200,
        description="Where the batch came from (e.g. crm); shown in run stats, and the namespace its "
        "complaint ids belong to when tracked: the same id sent again from this source, in a later "
        "export, updates that complaint and is never counted twice. Default for tracking: default.",
    )
    track: bool = Field(
        True,
        description="Keep the batch in the warehouse (VOC_HOME/warehouse.db) and follow its problems "
        "across periods (tracked ids, trends, since last time); false analyses it without keeping anything "
        "beyond the batch itself. POST /v1/analyze never keeps anything.",
    )


class ComplaintIn(BaseModel):
    """One complaint; a row that breaks these rules becomes a row error."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(None, description="Unique in the batch; c1, c2, ... if omitted.")
    text: str = Field(description="Up to VOC_MAX_TEXT_CHARS (5,000) characters.")
    channel: str | None = Field(
        None, description="电话, 在线, APP, 网点, 监管转送, 社交媒体, 回访 or an alias."
    )
    received_at: str | None = Field(None, description="ISO 8601, e.g. 2026-09-03T10:21:00+08:00.")
    customer_id: str | None = None
    customer_segment: str | None = Field(None, description="e.g. 老年客户 (counts as vulnerable).")
    business_line: str | None = None
    product: str | None = None


class BatchCounts(BaseModel):
    """A batch's id, status and row counts: what every answer about a batch starts with."""

    batch_id: str
    status: Status
    received: int = Field(description="Rows received.")
    accepted: int = Field(description="Rows that will be analysed.")
    rejected: int = Field(description="Rows refused; see row_errors in the status.")


class Accepted(BatchCounts):
    """The batch is stored (masked) and queued; follow ``status_url``."""

    status_url: str
    warnings: int = Field(description="Rows analysed with a warning.")
    replayed: bool = Field(False, description="True when an earlier request with this Idempotency-Key won.")


class Progress(BaseModel):
    done: int = Field(description="Complaints attributed and traced so far.")
    total: int = Field(description="Complaints to analyse.")
    stage: str | None = Field(description="Current stage: ingest, attribute_and_trace, analyze, remediate.")


class Links(BaseModel):
    status: str
    results: str
    problems: str
    report: str
    events: str


class BatchState(BatchCounts):
    """Where a batch is: the counts, when it was accepted and finished, and its row errors."""

    source: str | None
    created_at: datetime
    finished_at: datetime | None
    failure: str | None = Field(None, description="Why the batch failed, if it did.")
    row_errors: list[RowError] = Field(description="Rejected and warned rows (row, field, reason).")
    row_errors_total: int


class BatchStatus(BatchState):
    """Where a batch is."""

    progress: Progress
    warnings: int
    started_at: datetime | None
    links: Links
    stats: RunStats | None = Field(None, description="Run statistics once done.")


class ResultsPage(BaseModel):
    """One page of per-complaint results, in submission order."""

    batch_id: str
    offset: int
    limit: int
    total: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last one.")
    items: list[ComplaintResult]


class ProblemsOut(BaseModel):
    """Common problems ranked by priority, with proposals; label-level spikes."""

    batch_id: str
    problems: list[Problem]
    label_spikes: list[LabelSpike]


class DataFileInfo(BaseModel):
    name: str
    version: str
    source: Literal["default", "edited", "configured"] = Field(
        description="default: the bundled file; edited: changed through this API (VOC_HOME/data); "
        "configured: pinned by a VOC_<NAME>_PATH variable."
    )
    digest: str


class KnowledgeOverview(BaseModel):
    files: list[DataFileInfo]
    store: dict[str, int] = Field(description="Records per knowledge-store collection.")


class DataFileChanged(BaseModel):
    """A data file was changed and is now in force."""

    name: str
    version: str
    digest: str
