"""Knowledge entries, historical remediation cases and the scoring/remediation/lexicon files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from tools.datafile import load_model
from tools.taxonomy import Grade

Priority = Literal["P1", "P2", "P3", "P4"]
Level = Literal["high", "medium", "low"]
HandlingClass = Literal["及时响应类", "根源整改类", "疑难复杂类"]


class KnowledgeEntry(BaseModel):
    """A policy, standard answer, product or fee rule, or service standard."""

    id: str = Field(min_length=1)
    type: str = "policy"
    title: str
    departments: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    text: str = Field(min_length=1)

    def document(self) -> str:
        return f"{self.title}\n{self.text}"


class CaseMetric(BaseModel):
    """A before/after measurement from a historical case."""

    name: str
    before: float
    after: float
    unit: str = ""


class Case(BaseModel):
    """A past complaint-reduction case that worked."""

    id: str = Field(min_length=1)
    title: str
    problem: str
    dimension: str
    labels: list[str] = Field(default_factory=list)
    root_cause: str = ""
    owner_department: str
    handling_class: HandlingClass
    measures: list[str] = Field(min_length=1)
    short_term: str = ""
    long_term: str = ""
    duration_days: int = 30
    metrics: list[CaseMetric] = Field(default_factory=list)
    result: str = ""

    def document(self) -> str:
        return (
            f"{self.title}\n问题：{self.problem}\n根因：{self.root_cause}\n措施：{'；'.join(self.measures)}"
        )


class KnowledgeFile(BaseModel):
    version: str
    entries: list[KnowledgeEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> KnowledgeFile:
        ids = [e.id for e in self.entries]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate entry ids: {', '.join(dupes)}")
        return self


class CasesFile(BaseModel):
    version: str
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CasesFile:
        ids = [c.id for c in self.cases]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate case ids: {', '.join(dupes)}")
        return self


class GradeRule(BaseModel):
    grade: Grade
    name: str
    cues: list[str]


class GradesConfig(BaseModel):
    points: dict[Grade, float]
    rules: list[GradeRule]


class MoneyConfig(BaseModel):
    """How the money at stake in one complaint becomes a 0-1 severity factor."""

    saturation: float = Field(10000, gt=0, description="Yuan at which the factor is full (linear below).")
    loss_floor: float = Field(
        0.5, ge=0, le=1, description="The factor when a loss cue matches, amount or not."
    )
    loss_cues: list[str] = Field(default_factory=list)
    # Foreign amounts are converted with these rough rates; a currency not listed counts at 1.
    rates: dict[str, float] = Field(default_factory=dict)


class ConductRule(BaseModel):
    """A conduct-rule breach (违规承诺、未揭示风险、适当性、个人信息泄露...) named by cue phrases."""

    name: str
    cues: list[str] = Field(min_length=1)
    vulnerable_only: bool = Field(
        False, description="Counts only for a vulnerable customer (segment or cue), e.g. elderly buying risk."
    )


class SeverityConfig(BaseModel):
    weights: dict[str, float]
    blocking_cues: list[str]
    urgency_cues: list[str]
    money: MoneyConfig = Field(default_factory=MoneyConfig)
    conduct: list[ConductRule] = Field(default_factory=list)
    levels: dict[Literal["high", "medium"], float]  # cut points: score >= high is high


class ImpactConfig(BaseModel):
    weights: dict[str, float]
    volume_saturation: float = 0.1
    growth_saturation: float = 3.0
    escalation_saturation: float = 0.5
    vulnerable_saturation: float = 0.5
    money_saturation: float = 100000
    escalation_cues: list[str]
    escalation_channels: list[str] = Field(default_factory=list)
    vulnerable_segments: list[str] = Field(default_factory=list)
    vulnerable_cues: list[str] = Field(default_factory=list)
    levels: dict[Literal["high", "medium"], float]  # cut points: score >= high is high


class PriorityConfig(BaseModel):
    matrix: dict[Level, dict[Level, Priority]]
    floors: dict[Grade, Priority] = Field(default_factory=dict)
    conduct_floor: Priority | None = None
    conduct_share: float = Field(0.25, gt=0, le=1)
    protected_over: list[Grade] = Field(default_factory=list)
    similar_size: float = Field(2.0, ge=1)

    @model_validator(mode="after")
    def _complete(self) -> PriorityConfig:
        for sev in ("high", "medium", "low"):
            row = self.matrix.get(sev)
            if row is None or set(row) != {"high", "medium", "low"}:
                raise ValueError(f"matrix.{sev} must map each of high, medium, low to P1-P4")
        return self


class SpikeConfig(BaseModel):
    min_count: int = 5
    min_ratio: float = 2.0
    min_z: float = 3.0


class ClusteringConfig(BaseModel):
    distance_threshold: float = Field(0.42, gt=0, lt=2)
    min_size: int = Field(3, ge=2)
    weights: dict[str, float]
    exact_above: int = 3000
    keywords_per_problem: int = 5


class RemediationLimits(BaseModel):
    max_proposals: int = 8
    min_priority: Priority = "P3"
    knowledge_top_k: int = 4
    cases_top_k: int = 3


class ScoringConfig(BaseModel):
    """``scoring.yaml``: grades, severity, impact, the priority matrix, spikes, clustering."""

    version: str
    grades: GradesConfig
    severity: SeverityConfig
    impact: ImpactConfig
    priority: PriorityConfig
    spikes: SpikeConfig
    clustering: ClusteringConfig
    remediation: RemediationLimits


class HandlingClassConfig(BaseModel):
    description: str
    deadline_days: dict[Priority, int]


class MetricTemplate(BaseModel):
    name: str
    unit: str
    how: str


class DimensionMeasures(BaseModel):
    short: list[str]
    long: list[str]


class RemediationConfig(BaseModel):
    """``remediation.yaml``: handling classes, targets, goal templates, generic measures."""

    version: str
    handling_classes: dict[HandlingClass, HandlingClassConfig]
    classification: dict[str, float | list[str]]
    targets: dict[str, dict[Priority, float] | int]
    goals: dict[str, str]
    label_measures: dict[str, DimensionMeasures] = Field(default_factory=dict)
    measures: dict[str, DimensionMeasures]
    metrics: list[MetricTemplate]


class Lexicon(BaseModel):
    """``lexicon.yaml``: the sentiment and intensity lexicon."""

    version: str
    negation_window: int = 3
    negators: list[str]
    intensifiers: dict[str, float]
    downtoners: dict[str, float]
    negative: dict[str, float]
    positive: dict[str, float]
    emotions: dict[str, list[str]]


def load_knowledge(path: Path | str) -> KnowledgeFile:
    return load_model(path, KnowledgeFile)


def load_cases(path: Path | str) -> CasesFile:
    return load_model(path, CasesFile)


def load_scoring(path: Path | str) -> ScoringConfig:
    return load_model(path, ScoringConfig)


def load_remediation(path: Path | str) -> RemediationConfig:
    return load_model(path, RemediationConfig)


def load_lexicon(path: Path | str) -> Lexicon:
    return load_model(path, Lexicon)
