"""What the MCP tools return: compact views of the domain records (``tools.schema``), all text masked."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from services import models as shared
from services.models import BatchCounts, BatchState
from tools.knowledge import HandlingClass, Level, Priority
from tools.matrix import ServiceMatrix
from tools.schema import (
    Attribution,
    BatchResult,
    ComplaintResult,
    LabelSpike,
    Problem,
    Proposal,
    RootCause,
    RowError,
    RunStats,
)
from tools.store import Hit
from tools.taxonomy import Grade, Taxonomy

MAX_PROBLEMS = 10
MAX_ROW_ERRORS = 50
REPORT_URI = "voc://batches/{batch_id}/report"


def report_uri(batch_id: str) -> str:
    return REPORT_URI.format(batch_id=batch_id)


class Finding(BaseModel):
    """What the agents concluded about one complaint."""

    id: str
    department_id: str
    department: str = Field(description="Responsible department.")
    owner_role: str
    attribution_confidence: float
    channel: str | None
    product: str | None
    dimension: str | None = Field(description="人 机 物 法 环; null when it is not a complaint.")
    root_cause: str | None = Field(description="Taxonomy L2 label id, e.g. 机-面客系统.")
    root_cause_detail: str | None = Field(description="L3 label when a finer cue matched.")
    root_cause_confidence: float
    negative_voice: bool
    sentiment: str = Field(description="negative, neutral or positive, with the dominant emotion.")
    grade: Grade = Field(description="特急 > 紧急 > 重要 > 一般.")
    severity: float = Field(description="0-100.")
    priority: Priority = Field(description="P1 (critical) .. P4.")
    problem_id: str | None = Field(description="The common problem it belongs to, if any.")
    evidence: list[str] = Field(description="Words in the (masked) text behind the decisions.")
    engine: str

    @classmethod
    def of(cls, r: ComplaintResult) -> Finding:
        rc, at = r.root_cause, r.attribution
        words = [e.text for e in [*rc.evidence, *at.evidence]]
        return cls(
            id=r.id,
            department_id=at.department_id,
            department=at.department,
            owner_role=at.owner_role,
            attribution_confidence=at.confidence,
            channel=at.channel,
            product=at.product,
            dimension=rc.dimension,
            root_cause=rc.l2,
            root_cause_detail=rc.l3,
            root_cause_confidence=rc.confidence,
            negative_voice=rc.is_negative_voice,
            sentiment=f"{rc.sentiment.polarity}/{rc.sentiment.emotion}",
            grade=rc.grade,
            severity=r.severity.score,
            priority=r.priority,
            problem_id=r.problem_id,
            evidence=list(dict.fromkeys(words))[:6],
            engine=r.engine,
        )


class ProposalView(BaseModel):
    """A remediation proposal; sources are the cases and knowledge entries it relied on."""

    title: str
    owner_department: str
    owner_role: str
    handling_class: HandlingClass
    handling_reason: str
    deadline: date
    review_date: date
    goals: list[str]
    measures: list[str] = Field(description="[短期]/[长期] measure 〔source ids〕.")
    metrics: list[str] = Field(description="name: baseline -> target unit (how measured).")
    sources: list[str] = Field(description="id title (kind).")

    @classmethod
    def of(cls, p: Proposal) -> ProposalView:
        def measure(text: str, term: str, sources: list[str]) -> str:
            cited = f" 〔{'、'.join(sources)}〕" if sources else ""
            return f"[{'短期' if term == 'short' else '长期'}] {text}{cited}"

        def metric(name: str, unit: str, base: float | None, target: float | None, how: str) -> str:
            if base is None:
                return f"{name} ({unit}): baseline to be collected ({how})"
            return f"{name}: {base:g} -> {target if target is None else f'{target:g}'} {unit} ({how})"

        return cls(
            title=p.title,
            owner_department=p.owner_department,
            owner_role=p.owner_role,
            handling_class=p.handling_class,
            handling_reason=p.handling_reason,
            deadline=p.deadline,
            review_date=p.review_date,
            goals=p.goals,
            measures=[measure(m.text, m.term, m.sources) for m in p.measures],
            metrics=[metric(m.name, m.unit, m.baseline, m.target, m.how) for m in p.metrics],
            sources=[f"{s.id} {s.title} ({s.kind})" for s in p.sources],
        )


class ProblemView(BaseModel):
    """A common problem: similar negative voices grouped, scored and ranked."""

    id: str
    rank: int
    name: str = Field(description="Root-cause label and keywords.")
    priority: Priority
    grade: Grade
    root_cause: str = Field(description="Dominant L2 label.")
    department: str
    owner_role: str
    complaints: int
    customers: int
    severity: float = Field(description="0-100.")
    impact: float = Field(description="0-100.")
    impact_level: Level
    share: float = Field(description="Share of the negative voices.")
    growth: float | None = Field(description="This period over the previous; null without one.")
    spike: str | None = Field(description="Set when volume jumped against the previous period.")
    amount_at_stake: float = Field(description="Yuan mentioned, summed.")
    member_ids: list[str] = Field(description="First 50 complaint ids.")
    examples: list[str] = Field(description="Representative complaints (masked).")
    summary: str | None = None
    ranking: str | None = Field(None, description="Why it ranks where it does: the deciding factors.")
    proposal: ProposalView | None = None

    @classmethod
    def of(cls, p: Problem) -> ProblemView:
        spike = p.spike
        return cls(
            id=p.id,
            rank=p.rank,
            name=p.name,
            priority=p.priority,
            grade=p.grade,
            root_cause=p.l2,
            department=p.department,
            owner_role=p.owner_role,
            complaints=p.impact.complaints,
            customers=p.impact.customers,
            severity=p.severity,
            impact=p.impact.score,
            impact_level=p.impact.level,
            share=p.impact.share,
            growth=p.impact.growth,
            spike=f"{spike.period}: {spike.current} vs {spike.previous} (x{spike.ratio})" if spike else None,
            amount_at_stake=p.impact.amount_at_stake,
            member_ids=p.member_ids[:50],
            examples=[r.text for r in p.representatives[:2]],
            summary=p.summary,
            ranking=p.ranking.reason if p.ranking else None,
            proposal=ProposalView.of(p.proposal) if p.proposal else None,
        )


class RunSummary(BaseModel):
    received: int
    analysed: int
    rejected: int
    negative_voices: int
    problems: int
    pii_masked: int = Field(description="Personal-data values masked before analysis.")
    seconds: float

    @classmethod
    def of(cls, stats: RunStats) -> RunSummary:
        c = stats.counts
        return cls(
            received=c.get("received", 0),
            analysed=c.get("accepted", 0),
            rejected=c.get("rejected", 0),
            negative_voices=c.get("negative_voices", 0),
            problems=c.get("problems", 0),
            pii_masked=c.get("pii_masked", 0),
            seconds=stats.seconds,
        )


class Analysis(BaseModel):
    """A small batch analysed now: findings per complaint and the ranked common problems."""

    findings: list[Finding]
    problems: list[ProblemView] = Field(description="Ranked by priority; top ones carry a proposal.")
    problems_total: int
    label_spikes: list[LabelSpike]
    row_errors: list[RowError] = Field(description="Rows not analysed (or warned): row, field, reason.")
    summary: RunSummary

    @classmethod
    def of(cls, result: BatchResult) -> Analysis:
        return cls(
            findings=[Finding.of(r) for r in result.results],
            problems=[ProblemView.of(p) for p in result.problems[:MAX_PROBLEMS]],
            problems_total=len(result.problems),
            label_spikes=result.label_spikes,
            row_errors=result.errors,
            summary=RunSummary.of(result.stats),
        )


class Accepted(BatchCounts):
    """The batch is stored (masked) and queued; poll get_batch_status with its batch_id."""

    replayed: bool = Field(description="True when this idempotency_key was already used for this payload.")
    report_uri: str = Field(description="Resource with the report once the batch is done.")

    @classmethod
    def of(cls, accepted: shared.Accepted) -> Accepted:
        counts = accepted.model_dump(include=set(BatchCounts.model_fields))
        return cls(**counts, replayed=accepted.replayed, report_uri=report_uri(accepted.batch_id))


class BatchProgress(BatchState):
    """Where a batch is."""

    done: int = Field(description="Complaints attributed and traced so far.")
    total: int
    stage: str | None = Field(description="ingest, attribute_and_trace, analyze, remediate or report.")
    summary: RunSummary | None = Field(None, description="Once done.")

    @classmethod
    def of(cls, status: shared.BatchStatus) -> BatchProgress:
        state = status.model_dump(include=set(BatchState.model_fields))
        state["row_errors"] = status.row_errors[:MAX_ROW_ERRORS]
        return cls(
            **state,
            done=status.progress.done,
            total=status.progress.total,
            stage=status.progress.stage,
            summary=RunSummary.of(status.stats) if status.stats else None,
        )


class BatchReport(BaseModel):
    """A finished batch's ranked problems with proposals, or its Markdown report."""

    batch_id: str
    summary: RunSummary
    problems: list[ProblemView] = Field(default_factory=list, description="Empty when format is markdown.")
    problems_total: int
    label_spikes: list[LabelSpike] = Field(default_factory=list)
    markdown: str | None = Field(None, description="The report as Markdown (format=markdown).")


class Traced(BaseModel):
    """The root cause of one complaint."""

    root_cause: RootCause
    label_name: str | None = Field(description="Readable name of the L2 label.")
    label_definition: str | None
    masked_text: str = Field(description="The text as analysed, personal data masked.")
    pii_masked: int


class Attributed(BaseModel):
    """Who owns one complaint."""

    attribution: Attribution
    root_cause: str | None = Field(description="The L2 label that weighed in on the owner.")
    masked_text: str
    pii_masked: int


class PriorityItem(BaseModel):
    id: str
    priority: Priority
    severity: float
    severity_level: Level
    grade: Grade
    root_cause: str | None
    department: str
    problem_id: str | None
    negative_voice: bool


class PriorityAssessment(BaseModel):
    """Priorities per complaint and the common problems behind them (no proposals)."""

    items: list[PriorityItem]
    problems: list[ProblemView]
    row_errors: list[RowError]


class Remediation(BaseModel):
    """A remediation proposal for a described problem, grounded in retrieved cases and entries."""

    root_cause: str = Field(description="The L2 label the problem was traced to (or given).")
    department: str
    grade: Grade
    priority: Priority
    proposal: ProposalView


class KnowledgeHit(BaseModel):
    id: str
    kind: str
    title: str
    score: float = Field(description="Cosine similarity, 1 is identical.")
    text: str
    labels: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, h: Hit, collection: str) -> KnowledgeHit:
        m = h.metadata
        ident = m.get("entry_id") or m.get("case_id") or m.get("department_id") or m.get("label") or h.id
        title = m.get("title") or m.get("name") or m.get("label") or ""
        labels = [x for x in str(m.get("labels") or m.get("label") or "").split(",") if x]
        kind = str(m.get("type") or collection)
        text = h.text[:800]
        return cls(id=str(ident), kind=kind, title=str(title), score=h.score, text=text, labels=labels)


class KnowledgeHits(BaseModel):
    """Nearest records in the knowledge store."""

    collection: str
    hits: list[KnowledgeHit]


class DepartmentInfo(BaseModel):
    id: str
    name: str
    owner_role: str
    business_lines: list[str]
    products: list[str]
    owns_labels: list[str] = Field(description="Root-cause labels it fixes wherever they occur.")
    keywords: list[str] = Field(description="First keywords that route complaints to it.")


class Departments(BaseModel):
    """The service matrix's departments."""

    version: str
    channels: list[str]
    departments: list[DepartmentInfo]

    @classmethod
    def of(cls, m: ServiceMatrix) -> Departments:
        departments = [
            DepartmentInfo(
                id=d.id,
                name=d.name,
                owner_role=d.owner_role,
                business_lines=d.business_lines,
                products=[p.name for p in d.products],
                owns_labels=d.owns_labels,
                keywords=d.keywords[:12],
            )
            for d in m.departments
        ]
        return cls(version=m.version, channels=[c.id for c in m.channels], departments=departments)


class LabelInfo(BaseModel):
    id: str
    dimension: str
    name: str
    definition: str
    use_when: str
    not_use_when: str
    default_grade: Grade
    l3: list[str]


class DimensionInfo(BaseModel):
    id: str
    name: str
    description: str


class TaxonomyView(BaseModel):
    """The 人机物法环 data dictionary."""

    version: str
    dimensions: list[DimensionInfo]
    labels: list[LabelInfo]

    @classmethod
    def of(cls, t: Taxonomy, dimension: str | None = None) -> TaxonomyView:
        """The whole dictionary, or one dimension's part of it."""
        return cls(
            version=t.version,
            dimensions=[
                DimensionInfo(id=d.id, name=d.name, description=d.description)
                for d in t.dimensions
                if dimension in (None, d.id)
            ],
            labels=[
                LabelInfo(
                    id=lab.id,
                    dimension=lab.dimension,
                    name=lab.name,
                    definition=lab.definition,
                    use_when=lab.use_when,
                    not_use_when=lab.not_use_when,
                    default_grade=lab.default_grade,
                    l3=[x.name for x in lab.l3],
                )
                for lab in t.labels
                if dimension in (None, lab.dimension)
            ],
        )


__all__ = [
    "Accepted",
    "Analysis",
    "Attributed",
    "BatchProgress",
    "BatchReport",
    "Departments",
    "Finding",
    "KnowledgeHits",
    "PriorityAssessment",
    "Remediation",
    "TaxonomyView",
    "Traced",
]
