"""Domain models shared by every door (CLI, HTTP, MCP) and both engines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tools.knowledge import HandlingClass, Level, Priority
from tools.taxonomy import Grade

Engine = Literal["rules", "llm"]
Polarity = Literal["negative", "neutral", "positive"]
Emotion = Literal["anger", "anxiety", "disappointment", "satisfaction", "none"]


class Complaint(BaseModel):
    """An accepted complaint after validation, normalisation and personal-data masking."""

    id: str = Field(description="The complaint id as submitted.")
    row: int = Field(description="1-based row number in the submitted batch.")
    text: str = Field(description="Complaint text, NFKC-normalised and personal-data masked.")
    channel: str | None = Field(None, description="Intake channel as submitted, if any.")
    received_at: datetime | None = Field(None, description="When the complaint was received.")
    period: str | None = Field(None, description="Month of receipt, YYYY-MM, used for spikes.")
    customer_id: str | None = Field(
        None, description="Customer identifier (masked if it held personal data)."
    )
    customer_segment: str | None = Field(None, description="Customer segment, e.g. 老年客户.")
    business_line: str | None = Field(None, description="Business line as submitted, if any.")
    product: str | None = Field(None, description="Product as submitted, if any.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Free metadata, masked.")
    duplicate_of: str | None = Field(None, description="Id of an earlier near-identical complaint.")
    pii_masked: int = Field(0, description="How many personal-data values were masked.")


class RowError(BaseModel):
    """A rejected (or warned) row: where and why, never the submitted text."""

    row: int = Field(description="1-based row (or line) number in the submitted batch.")
    id: str | None = Field(None, description="The row's id if it could be read.")
    field: str = Field(description="The field at fault.")
    reason: str = Field(description="What is wrong and how to fix it.")
    severity: Literal["error", "warning"] = Field("error", description="error rows are not analysed.")


class Evidence(BaseModel):
    """A span of the (masked) complaint text that supports a conclusion."""

    text: str = Field(description="The matched words.")
    start: int = Field(description="Start offset in the complaint text.")
    end: int = Field(description="End offset (exclusive).")
    supports: str = Field(description="What it supports, e.g. a department id or label id.")


class DepartmentScore(BaseModel):
    department_id: str
    score: float


class Attribution(BaseModel):
    """Who owns the complaint, according to the service matrix."""

    channel: str | None = Field(description="Canonical intake channel, or null when unknown.")
    channel_source: Literal["field", "text", "unknown"] = Field(description="Where the channel came from.")
    business_line: str | None = Field(description="Business line.")
    product: str | None = Field(description="Product or service item.")
    department_id: str = Field(description="Responsible department id from the service matrix.")
    department: str = Field(description="Responsible department name.")
    owner_role: str = Field(description="Owner role in that department.")
    confidence: float = Field(ge=0, le=1, description="Confidence in the department, 0-1.")
    alternatives: list[DepartmentScore] = Field(default_factory=list, description="Runner-up departments.")
    evidence: list[Evidence] = Field(default_factory=list, description="Matched words behind the decision.")


class Sentiment(BaseModel):
    polarity: Polarity = Field(description="negative, neutral or positive.")
    score: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive.")
    intensity: float = Field(ge=0, le=1, description="Emotional intensity, 0-1.")
    emotion: Emotion = Field(description="Dominant emotion.")


class LabelScore(BaseModel):
    label: str = Field(description="Taxonomy L2 id, e.g. 机-面客系统.")
    dimension: str = Field(description="L1 dimension: 人 机 物 法 环.")
    score: float = Field(description="Combined cue and exemplar score, 0-1.")


class RootCause(BaseModel):
    """Why it happened: 人机物法环 dimension, L2/L3 labels, sentiment, grade and evidence."""

    dimension: str | None = Field(description="Primary dimension, null for non-complaints.")
    l2: str | None = Field(description="Primary L2 label id.")
    l3: str | None = Field(None, description="L3 label name when a finer cue matched.")
    confidence: float = Field(ge=0, le=1, description="Confidence in the primary label.")
    secondary: list[LabelScore] = Field(default_factory=list, description="Other labels that apply.")
    sentiment: Sentiment
    is_negative_voice: bool = Field(description="Counts as a negative voice for analysis.")
    grade: Grade = Field(description="Complaint grade 特急 > 紧急 > 重要 > 一般.")
    grade_reason: str = Field(description="Which rule set the grade.")
    evidence: list[Evidence] = Field(default_factory=list, description="Cue matches in the text.")


class Severity(BaseModel):
    score: float = Field(ge=0, le=100, description="Severity 0-100.")
    level: Level = Field(description="high, medium or low after the configured cut points.")
    factors: dict[str, float] = Field(description="Each factor's 0-1 value.")
    amount: float = Field(0, description="Yuan named in the complaint (foreign amounts converted).")
    conduct: list[str] = Field(
        default_factory=list, description="Conduct-rule breaches the complaint names (configured rule names)."
    )


Match = Literal["self", "duplicate", "near_duplicate"]


class CorrectionNote(BaseModel):
    """Which reviewer's correction a result follows (its fields were overridden, confidence 1.0)."""

    correction_id: str = Field(description="The correction followed (COR-0001...).")
    match: Match = Field(
        description="self: this complaint was corrected; duplicate: the same masked text was; "
        "near_duplicate: a complaint at or above VOC_FEEDBACK_DUPLICATE_SIMILARITY cosine was."
    )
    similarity: float = Field(description="Cosine to the corrected complaint (1.0 for self and duplicate).")
    fields: list[str] = Field(
        description="The fields taken from the correction: l2, department, grade, problem."
    )
    problem_id: str | None = Field(None, description="The tracked problem the reviewer put it in.")


class ComplaintResult(BaseModel):
    """One line of results.jsonl."""

    id: str
    row: int
    text: str = Field(description="Masked complaint text.")
    period: str | None = None
    customer_segment: str | None = None
    attribution: Attribution
    root_cause: RootCause
    severity: Severity
    priority: Priority = Field(description="P1 (critical) .. P4 (low).")
    grade_confidence: float | None = Field(
        None,
        description="Calibrated confidence in root_cause.grade, 0-1; null when a model set the grade.",
    )
    problem_id: str | None = Field(None, description="Common problem this complaint belongs to.")
    tracked_problem_id: str | None = Field(
        None, description="Tracked problem (TP-0001...) across batches; null when not tracked."
    )
    duplicate_of: str | None = None
    engine: Engine = "rules"
    engine_note: str | None = Field(
        None, description="Why rules were used for part of it, or which model values were dropped."
    )
    flags: list[str] = Field(
        default_factory=list,
        description="Things a reviewer should know: 'prompt_injection' when the text carried instructions "
        "aimed at a model or system (they were ignored, not obeyed).",
    )
    corrected: CorrectionNote | None = Field(
        None, description="Set when a reviewer's correction overrode fields of this result (voc feedback)."
    )


class Impact(BaseModel):
    score: float = Field(ge=0, le=100)
    level: Level
    complaints: int
    customers: int
    share: float = Field(description="Share of the batch's negative voices.")
    current_period: str | None = None
    current: int = 0
    previous: int = 0
    growth: float | None = Field(None, description="current/previous; null without a previous period.")
    escalation_share: float = 0
    vulnerable_share: float = 0
    repeat_customers: int = 0
    amount_at_stake: float = Field(0, description="Yuan mentioned in member complaints, summed.")
    factors: dict[str, float] = Field(default_factory=dict)


class Spike(BaseModel):
    period: str
    current: int
    previous: int
    ratio: float
    z: float


class Representative(BaseModel):
    id: str
    text: str


class Measure(BaseModel):
    text: str
    term: Literal["short", "long"]
    sources: list[str] = Field(default_factory=list, description="Ids of cases or entries it came from.")
    basis: str | None = Field(
        None,
        description="For a generic measure, where it came from: 标签 <L2> (the problem's own label), or "
        "维度 <dimension> when that label has none configured.",
    )


class Metric(BaseModel):
    name: str
    unit: str
    baseline: float | None = Field(description="Current value; null when it must be collected first.")
    target: float | None
    how: str


class SourceRef(BaseModel):
    id: str
    kind: Literal["knowledge", "case"]
    title: str
    score: float = Field(description="Retrieval similarity.")


class Proposal(BaseModel):
    """A remediation proposal for one common problem."""

    problem_id: str
    title: str
    owner_department_id: str
    owner_department: str
    owner_role: str
    handling_class: HandlingClass
    handling_reason: str
    goals: list[str]
    measures: list[Measure]
    deadline: date
    review_date: date
    metrics: list[Metric]
    sources: list[SourceRef]
    engine: Engine = "rules"


TrackStatus = Literal["new", "rising", "steady", "falling", "dormant", "regressed"]


class TrendPoint(BaseModel):
    period: str
    complaints: int


class Trend(BaseModel):
    """Where a tracked problem stands in the batch's latest period, and its recent series."""

    status: TrackStatus
    period: str
    alert: Literal["warning", "alarm"] | None = None
    series: list[TrendPoint] = Field(description="Up to the last six periods, oldest first.")


class TrackedChange(BaseModel):
    """A tracked problem or root-cause label whose status in the latest period is worth a look."""

    id: str = Field(description="TP-0001... for a problem, the L2 label id for a label.")
    kind: Literal["problem", "label"]
    name: str
    status: TrackStatus
    period: str
    complaints: int
    previous: int = Field(description="Complaints in the period before.")
    department: str | None = None
    alert: Literal["warning", "alarm"] | None = None
    p_value: float | None = None


class ActionLine(BaseModel):
    """An action on a tracked problem and where its effect stands after the batch."""

    id: str
    problem_id: str
    problem_name: str | None = None
    status: str = Field(description="open, in_progress, done, verified, not_effective, reopened.")
    owner: str | None = None
    due: str
    overdue: bool
    fixed_on: str | None = None
    verdict: str | None = Field(None, description="pending, improving, effective, not_effective, regressed.")
    rate_ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    basis: str | None = None
    before: str | None = Field(None, description="The before window: periods and complaints.")
    after: str | None = None
    control_ratio: float | None = None
    summary: str | None = Field(None, description="The effect in words.")


class TrackingSummary(BaseModel):
    """What the warehouse learnt from this batch ("since last time")."""

    source: str = Field(description="The source the complaints' ids belong to.")
    period: str = Field(description="The batch's latest period.")
    periods: list[str]
    stored: int = Field(description="Complaints of this batch kept or updated in the warehouse.")
    new_versions: int = Field(description="Complaints sent before with another text (flagged new_version).")
    vectors_reused: int = Field(
        0, description="Complaints whose vector came from the cache, not the embedder."
    )
    warehouse_complaints: int
    tracked_problems: int
    opened: list[str] = Field(default_factory=list, description="Tracked problems this batch opened.")
    merged: list[list[str]] = Field(default_factory=list, description="[absorbed, into] pairs.")
    changes: list[TrackedChange] = Field(
        default_factory=list, description="New, rising, falling and returning problems and labels."
    )
    actions: list[ActionLine] = Field(
        default_factory=list, description="Every action not cancelled, with its verdict after this batch."
    )


class RankFactor(BaseModel):
    """One factor behind a problem's place: its 0-1 value and what it rests on."""

    name: str = Field(
        description="Factor key: money, conduct, grade, blocking, urgency, intensity (severity); "
        "volume, growth, escalation, vulnerable (impact)."
    )
    label: str = Field(description="The factor's Chinese name, e.g. 资金损失.")
    value: float = Field(description="The factor's 0-1 value for the problem (mean over its members).")
    weight: float = Field(description="Its configured weight in the severity or impact score.")
    detail: str = Field(description="What it rests on, e.g. 涉及金额 ¥12,300.")


class Ranking(BaseModel):
    """Why a problem sits where it does; computed from numbers and configured cue matches only."""

    reason: str = Field(
        description="One line: the deciding factors and the priority, "
        "e.g. 资金损失：涉及金额 ¥12,300；监管风险：承诺保本保收益（4 件）。"
    )
    priority_rule: str = Field(description="How the priority was reached: matrix cell, floors, peer rule.")
    protected: bool = Field(
        False,
        description="Money lost (特急) or a conduct breach: never ranked below a lesser problem of similar "
        "size.",
    )
    factors: list[RankFactor] = Field(
        default_factory=list, description="Every factor, largest contribution first."
    )


class Problem(BaseModel):
    """A common problem: a cluster of similar negative voices, scored and ranked."""

    id: str
    rank: int
    name: str = Field(description="Key phrase in the members' own words, the root-cause label beside it.")
    keywords: list[str]
    phrases: list[str] = Field(default_factory=list, description="Key phrases, most telling first.")
    dimension: str
    l2: str
    department_id: str
    department: str
    owner_role: str
    grade: Grade
    severity: float
    severity_level: Level
    impact: Impact
    priority: Priority
    member_ids: list[str]
    representatives: list[Representative]
    label_mix: dict[str, int]
    department_mix: dict[str, int]
    channel_mix: dict[str, int]
    period_counts: dict[str, int]
    spike: Spike | None = None
    proposal: Proposal | None = None
    tracked_id: str | None = Field(None, description="The tracked problem most of its members belong to.")
    trend: Trend | None = Field(None, description="The tracked problem's status and recent series.")
    summary: str | None = Field(None, description="One-sentence summary (llm engine only).")
    engine: Engine = Field("rules", description="Engine that named the problem; scores are always code.")
    ranking: Ranking | None = Field(None, description="Which factors put it where it is.")


class LabelSpike(BaseModel):
    """A root-cause label whose volume jumped against the previous period."""

    label: str
    period: str
    current: int
    previous: int
    ratio: float
    z: float


class LLMStats(BaseModel):
    """How the llm engine did on one batch (absent when everything ran on rules)."""

    models: dict[str, str] = Field(description="Model per task: trace, analysis, remediation.")
    prompts: str = Field(description="Prompt files and versions used.")
    calls: dict[str, int] = Field(default_factory=dict, description="Structured calls per task.")
    requests: dict[str, int] = Field(
        default_factory=dict, description="HTTP requests per task, retries and repairs included."
    )
    prompt_chars: dict[str, int] = Field(default_factory=dict, description="Prompt characters sent per task.")
    retries: int = 0
    repairs: int = Field(0, description="Repair requests after output that failed validation.")
    tokens: dict[str, int] = Field(default_factory=dict, description="prompt, completion and total tokens.")
    token_budget: int = Field(0, description="Tokens the batch could spend (0: no limit).")
    budget_exhausted: bool = Field(False, description="The budget ran out and later work used rules.")
    fallbacks: dict[str, int] = Field(
        default_factory=dict, description="Items that fell back to rules, as agent.reason -> count."
    )
    rejected: dict[str, int] = Field(
        default_factory=dict, description="Model values rejected by validation, by kind."
    )
    dropped_citations: int = Field(0, description="Cited source ids that were not among those retrieved.")


class CascadeStats(BaseModel):
    """engine auto: which complaints the rules engine kept, which went to the model, what it saved."""

    threshold: float = Field(description="Calibrated label confidence below which a complaint was sent.")
    threshold_source: str = Field(description="Where the threshold came from (setting or calibration curve).")
    kept: int = Field(description="Complaints kept by rules (confident enough); never sent.")
    sent: int = Field(description="Complaints sent to the model.")
    fell_back: int = Field(description="Sent, but the model's answer was unusable: rules result used.")
    calls: int = Field(description="Tracing + attribution calls made.")
    calls_saved: int = Field(description="Estimate: calls if every complaint were sent, less calls.")
    tokens_per_complaint: float | None = Field(
        description="Measured: tokens of the tracing calls made per complaint sent; null when none was sent."
    )
    tokens_saved: int = Field(description="Estimate: kept complaints x tokens_per_complaint.")
    note: str = Field(
        "calls_saved and tokens_saved are estimates from the calls that were made",
        description="How the savings were reckoned.",
    )


class CutCandidate(BaseModel):
    """One distance cut the batch's clustering tried."""

    threshold: float = Field(description="Cosine distance at which the average-linkage tree was cut.")
    problems: int = Field(description="Groups of at least the minimum size at this cut.")
    largest_share: float = Field(description="The largest group's share of the clustered voices.")
    silhouette: float | None = Field(description="Silhouette (cosine, on a sample); null if undefined.")


class ClusterCut(BaseModel):
    """How the batch's own similarity structure chose its clustering cut (run.json: clustering)."""

    threshold: float | None = Field(description="The chosen cut; null when the batch was too small to cut.")
    method: Literal["silhouette", "one_group", "too_few"] = Field(
        description="silhouette: best-scoring candidate; one_group: no cut separated anything; "
        "too_few: fewer voices than two minimum-size groups."
    )
    silhouette: float | None = Field(description="The chosen cut's silhouette.")
    candidates: list[CutCandidate] = Field(description="Every cut tried, with its score.")
    split: int = Field(description="Oversized groups clustered again inside themselves.")
    kept_whole: int = Field(description="Oversized groups kept whole: their members say the same thing.")
    centre_weight: float | None = Field(
        None, description="Weight of the batch's own mean in the centre; the rest is the exemplars' mean."
    )
    largest_share: float | None = Field(None, description="The largest problem's share of the grouped batch.")


class RunStats(BaseModel):
    """run.json: counts, timings and engine use."""

    batch_id: str
    source: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float = 0
    complaints_per_second: float = 0
    counts: dict[str, int]
    timings: dict[str, float]
    engine_use: dict[str, int]
    fallbacks: int = 0
    versions: dict[str, str]
    periods: list[str] = Field(default_factory=list)
    resumed: bool = Field(False, description="This run continued an interrupted batch from its checkpoint.")
    reused: bool = Field(False, description="The batch had already finished; its stored result was returned.")
    llm: LLMStats | None = Field(None, description="LLM calls, tokens and fallbacks; null on rules.")
    cascade: CascadeStats | None = Field(None, description="engine auto's routing and savings, else null.")
    tracking: TrackingSummary | None = Field(None, description="Since last time; null when not tracked.")
    clustering: ClusterCut | None = Field(None, description="How the common problems' cut was chosen.")
    feedback: dict[str, int] | None = Field(
        None,
        description="Results that followed a reviewer's correction: self, duplicate, near_duplicate, "
        "and corrections loaded; null when there are none.",
    )


class BatchResult(BaseModel):
    """Everything a batch produced."""

    batch_id: str
    results: list[ComplaintResult]
    problems: list[Problem]
    label_spikes: list[LabelSpike] = Field(default_factory=list)
    errors: list[RowError]
    stats: RunStats
