"""Graph state: the batch state, the task inputs and the typed records that flow between the nodes."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from tools.knowledge import HandlingClass, Level, Priority
from tools.schema import Engine
from tools.taxonomy import Grade

# Every record is plain JSON-able data (a model's ``model_dump(mode="json")`` or built by a node)
# because checkpoints store the state; nested models stay ``dict[str, Any]``, named in a comment.


def add_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Sum per-stage seconds reported by parallel tasks."""
    out = dict(left or {})
    for k, v in (right or {}).items():
        out[k] = round(out.get(k, 0.0) + v, 4)
    return out


class ComplaintRecord(TypedDict):
    """An accepted, masked complaint: ``tools.schema.Complaint`` as JSON."""

    id: str
    row: int
    text: str
    channel: str | None
    received_at: str | None
    period: str | None
    customer_id: str | None
    customer_segment: str | None
    business_line: str | None
    product: str | None
    metadata: dict[str, str]
    duplicate_of: str | None
    pii_masked: int


class ErrorRecord(TypedDict):
    """A rejected or warned row: ``tools.schema.RowError`` as JSON."""

    row: int
    id: str | None
    field: str
    reason: str
    severity: Literal["error", "warning"]


class ProcessedRecord(TypedDict):
    """One complaint after the attribution+tracing task, as the analyze node reads it."""

    id: str
    root_cause: dict[str, Any]  # RootCause
    attribution: dict[str, Any]  # Attribution
    vector: bytes  # float16, see tools.embeddings.to_bytes
    engine: Engine
    # Read with defaults: chunks checkpointed by earlier versions lack these three.
    engine_note: NotRequired[str | None]
    flags: NotRequired[list[str]]
    blanked: NotRequired[list[list[int]]]  # [start, end] spans of instructions blanked for reading
    read_hash: NotRequired[str]  # the vector cache's key for the text the agents read (loop/vectors.py)
    corrected: NotRequired[dict[str, Any] | None]  # CorrectionNote: a reviewer's correction it follows


class ResultRecord(TypedDict):
    """One line of results.jsonl: ``tools.schema.ComplaintResult`` as JSON."""

    id: str
    row: int
    text: str
    period: str | None
    customer_segment: str | None
    attribution: dict[str, Any]  # Attribution
    root_cause: dict[str, Any]  # RootCause
    severity: dict[str, Any]  # Severity
    priority: Priority
    grade_confidence: NotRequired[float | None]
    problem_id: str | None
    tracked_problem_id: NotRequired[str | None]
    duplicate_of: str | None
    engine: Engine
    engine_note: str | None
    flags: list[str]
    corrected: NotRequired[dict[str, Any] | None]  # CorrectionNote; absent in earlier checkpoints


class ProposalRecord(TypedDict):
    """A remediation proposal: ``tools.schema.Proposal`` as JSON."""

    problem_id: str
    title: str
    owner_department_id: str
    owner_department: str
    owner_role: str
    handling_class: HandlingClass
    handling_reason: str
    goals: list[str]
    measures: list[dict[str, Any]]  # Measure
    deadline: str
    review_date: str
    metrics: list[dict[str, Any]]  # Metric
    sources: list[dict[str, Any]]  # SourceRef
    engine: Engine


class ProblemRecord(TypedDict):
    """A ranked common problem: ``tools.schema.Problem`` as JSON; the report node attaches its proposal."""

    id: str
    rank: int
    name: str
    keywords: list[str]
    phrases: list[str]
    dimension: str
    l2: str
    department_id: str
    department: str
    owner_role: str
    grade: Grade
    severity: float
    severity_level: Level
    impact: dict[str, Any]  # Impact
    priority: Priority
    member_ids: list[str]
    representatives: list[dict[str, Any]]  # Representative
    label_mix: dict[str, int]
    department_mix: dict[str, int]
    channel_mix: dict[str, int]
    period_counts: dict[str, int]
    spike: dict[str, Any] | None  # Spike
    proposal: ProposalRecord | None
    tracked_id: NotRequired[str | None]
    trend: NotRequired[dict[str, Any] | None]  # Trend
    summary: str | None
    engine: Engine
    ranking: NotRequired[dict[str, Any] | None]  # Ranking; absent in checkpoints of earlier versions


class LabelSpikeRecord(TypedDict):
    """A root-cause label whose volume jumped: ``tools.schema.LabelSpike`` as JSON."""

    label: str
    period: str
    current: int
    previous: int
    ratio: float
    z: float


class BatchState(TypedDict, total=False):
    """The state of one batch run (one checkpoint thread); a node returns the keys it sets."""

    batch_id: str
    started_at: str
    source: str | None
    received: int
    complaints: list[ComplaintRecord]
    errors: list[ErrorRecord]
    processed: Annotated[list[ProcessedRecord], operator.add]
    results: list[ResultRecord]
    problems: list[ProblemRecord]
    label_spikes: list[LabelSpikeRecord]
    clustering: dict[str, Any]  # ClusterCut: how the batch's own cut was chosen
    centroids: dict[str, bytes]
    as_of: str
    proposals: Annotated[list[ProposalRecord], operator.add]
    timings: Annotated[dict[str, float], add_timings]
    # LLM counters (calls, requests, tokens, fallbacks...) summed over parallel tasks.
    llm_usage: Annotated[dict[str, float], add_timings]
    stats: dict[str, Any]  # RunStats
    # Tracking (loop/): keep the batch in the warehouse under this source, and what it learnt.
    track: bool
    track_source: str
    vectors_reused: Annotated[int, operator.add]  # chunk vectors taken from the cache
    # Results that followed a reviewer's correction, by match (self, duplicate, near_duplicate).
    feedback_hits: Annotated[dict[str, float], add_timings]
    tracking: dict[str, Any]  # TrackingSummary


class ChunkTask(TypedDict):
    """Input of one attribution+tracing task."""

    chunk: int
    complaints: list[ComplaintRecord]
    track: NotRequired[bool]  # cache the vectors it computes
    source: NotRequired[str]  # the warehouse source its ids belong to (reviewers' corrections key on it)


class ChunkOutput(TypedDict):
    """What one attribution+tracing task adds to the state, and stores as soon as it finishes."""

    processed: list[ProcessedRecord]
    timings: dict[str, float]
    vectors_reused: NotRequired[int]
    llm_usage: NotRequired[dict[str, float]]
    feedback_hits: NotRequired[dict[str, float]]


class RemediationTask(TypedDict):
    """Input of one remediation task."""

    problem: ProblemRecord
    centroid: bytes
    as_of: str
