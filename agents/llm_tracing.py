"""The ``llm`` engine for tracing and attribution: one call per batch of about ten complaints.

One call reads a batch of complaints and names, for each, its root-cause label and its
responsible department (attribution rides on the tracing call, which is how 100 complaints
cost about ten calls rather than two hundred). Code then decides what the model may not:

- labels and departments must exist in the taxonomy and the service matrix; an unknown one is
  rejected, never stored, and that part of the item falls back to the rules engine;
- evidence must be quoted verbatim from the complaint and is located in its text;
- everything that feeds a priority is computed by code: the grade comes from the label's
  default and the grade rules and is never milder than the rules engine's; intensity comes
  from the lexicon; the model can mark a row as a negative voice but never clear one. So an
  instruction inside a complaint cannot lower or set its priority.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from agents.attribution import AttributionIndex, _channel, attribute_rules
from agents.tracing import TracingIndex, _grade, trace_rules
from tools.llm import LLM, LLMError, Meter, wrap_complaint
from tools.pii import mask_text
from tools.schema import (
    Attribution,
    Complaint,
    Emotion,
    Engine,
    Evidence,
    LabelScore,
    Polarity,
    RootCause,
    Sentiment,
)
from tools.taxonomy import GRADES

if TYPE_CHECKING:
    from tools.deps import Deps

MAX_QUOTE_CHARS = 80
NO_EVIDENCE_CONFIDENCE = 0.5
BOTH = ("trace", "attribution")


class TracedComplaint(BaseModel):
    """Root cause and responsible department of one complaint."""

    id: str = Field(description='The id of the <complaint id="..."> element, exactly.')
    is_complaint: bool = Field(
        description="True when the customer reports a problem or is dissatisfied; false for a plain "
        "question, suggestion or praise."
    )
    label: str | None = Field(description="Primary root-cause label id from the list, e.g. 机-面客系统.")
    l3: str | None = Field(None, description="An L3 name listed under that label, or null.")
    secondary: list[str] = Field(default_factory=list, description="Up to 3 other label ids that apply.")
    polarity: Polarity = Field(description="negative, neutral or positive.")
    emotion: Emotion = Field(description="The customer's dominant emotion.")
    department_id: str = Field(description="Responsible department id from the list.")
    product: str | None = Field(None, description="A product name listed for that department, or null.")
    cause_evidence: list[str] = Field(
        default_factory=list, description="1-3 short phrases copied verbatim from the text for the label."
    )
    owner_evidence: list[str] = Field(
        default_factory=list,
        description="1-3 short phrases copied verbatim from the text for the department.",
    )
    confidence: float = Field(ge=0, le=1, description="Confidence in the label and department, 0-1.")


class RecordTraces(BaseModel):
    """Record the root cause and the responsible department of every complaint in the batch."""

    items: list[TracedComplaint] = Field(description="One item per complaint, in any order.")


@dataclass
class Draft:
    """A validated owner from the tracing call, waiting for :func:`attribute_llm`."""

    department_id: str
    product: str | None
    confidence: float
    evidence: list[Evidence]


@dataclass
class TriageLog:
    """What one chunk's llm tracing leaves for attribution and for each complaint's result."""

    meter: Meter
    drafts: dict[str, Draft] = field(default_factory=dict)
    traced: set[str] = field(default_factory=set)
    notes: dict[str, list[str]] = field(default_factory=dict)
    fell_back: set[str] = field(default_factory=set)

    def note(self, cid: str, text: str) -> None:
        self.notes.setdefault(cid, []).append(text)

    def engine(self, cid: str) -> Engine:
        """``llm`` when the model's answer was used for the cause or the owner."""
        return "llm" if cid in self.traced or cid in self.drafts else "rules"

    def engine_note(self, cid: str) -> str | None:
        notes = self.notes.get(cid)
        return "; ".join(notes) if notes else None

    def fallback(self, cid: str, parts: tuple[str, ...], kind: str, reason: str) -> None:
        """Record that ``parts`` (trace, attribution) of one complaint used rules, and why."""
        self.note(cid, f"{' and '.join(parts)} by rules: {reason}")
        for part in parts:
            self.meter.add(f"fallback.{part}.{kind}")
        if cid not in self.fell_back:
            self.fell_back.add(cid)
            self.meter.add("fallback_items.complaints")


def new_log(deps: Deps, batch: str | None) -> TriageLog:
    """A log for one graph task of batch ``batch``."""
    llm: LLM = deps.llm  # type: ignore[assignment]
    return TriageLog(meter=llm.meter(batch))


def _catalog(deps: Deps) -> tuple[str, str]:
    """The taxonomy and the service matrix as the prompt lists them; built once per Deps."""
    cached = deps.indexes.get("llm_catalog")
    if cached:
        return cached
    labels = []
    for lab in deps.taxonomy.labels:
        l3 = "、".join(x.name for x in lab.l3)
        labels.append(f"- {lab.id}｜{lab.name}：{lab.definition}" + (f"｜L3：{l3}" if l3 else ""))
    depts = []
    for d in deps.matrix.departments:
        products = "、".join(p.name for p in d.products)
        depts.append(f"- {d.id}｜{d.name}：{d.description}" + (f"｜产品：{products}" if products else ""))
    catalog = ("\n".join(labels), "\n".join(depts))
    deps.indexes["llm_catalog"] = catalog
    return catalog


def _batches(n: int, size: int) -> list[list[int]]:
    """Indices split into ceil(n/size) batches of near-equal size."""
    if n == 0:
        return []
    count = -(-n // size)
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [list(range(bounds[i], bounds[i + 1])) for i in range(count)]


def _fields(c: Complaint) -> list[tuple[str, str | None]]:
    line = mask_text(c.business_line) if c.business_line else None
    return [("渠道", c.channel), ("业务条线", line), ("产品", c.product)]


def _short(value: object, limit: int = 30) -> str:
    """A model-supplied value fit to quote in a note: masked, one line, short."""
    text = mask_text(" ".join(str(value).split()))
    return text if len(text) <= limit else text[:limit] + "…"


def locate(folded: str, quote: str, supports: str) -> Evidence | None:
    """Find a quoted phrase in the (lower-cased) complaint text; invented quotes return None."""
    q = unicodedata.normalize("NFKC", quote).strip().strip("\"'“”‘’「」『』").lower()
    if not q or len(q) > MAX_QUOTE_CHARS:
        return None
    start = folded.find(q)
    if start < 0:
        return None
    return Evidence(text=folded[start : start + len(q)], start=start, end=start + len(q), supports=supports)


def _call(deps: Deps, complaints: list[Complaint], meter: Meter) -> dict[str, TracedComplaint] | LLMError:
    """One request for one batch: the items by complaint id, or the error that stopped it."""
    llm: LLM = deps.llm  # type: ignore[assignment]
    labels, departments = _catalog(deps)
    keys = {str(k + 1): c for k, c in enumerate(complaints)}
    # Local keys, not the submitted ids: an id is untrusted text too, and short keys are cheap.
    block = "\n".join(wrap_complaint(k, c.text, _fields(c)) for k, c in keys.items())
    messages = llm.prompts["trace_attribute"].messages(
        labels=labels, departments=departments, complaints=block, count=str(len(keys))
    )
    try:
        reply = llm.structured("trace", RecordTraces, messages, meter)
    except LLMError as exc:
        return exc
    out: dict[str, TracedComplaint] = {}
    for item in reply.items:
        c = keys.get(item.id.strip())
        if c is not None and c.id not in out:
            out[c.id] = item
    return out


def trace_llm(
    complaints: list[Complaint], vectors: np.ndarray, deps: Deps, log: TriageLog | None = None
) -> list[RootCause]:
    """Trace with the model in batches; rules for every item the model could not answer well."""
    llm: LLM = deps.llm  # type: ignore[assignment]
    log = log or new_log(deps, None)
    rules = trace_rules(complaints, vectors, deps)
    batches = _batches(len(complaints), llm.batch_size)
    replies = llm.map(lambda idx: _call(deps, [complaints[i] for i in idx], log.meter), batches)
    index: TracingIndex = deps.indexes["tracing"]
    out = list(rules)
    for idx, reply in zip(batches, replies, strict=True):
        for i in idx:
            c = complaints[i]
            if isinstance(reply, LLMError):
                log.fallback(c.id, BOTH, reply.kind, reply.reason)
                continue
            item = reply.get(c.id)
            if item is None:
                log.fallback(c.id, BOTH, "missing", "missing from the model's reply")
                continue
            cause = _cause(item, c, rules[i], index, deps, log)
            if cause is not None:
                out[i] = cause
                log.traced.add(c.id)
            draft = _draft(item, c, deps, log)
            if draft is not None:
                log.drafts[c.id] = draft
    return out


def _cause(
    item: TracedComplaint, c: Complaint, rules: RootCause, index: TracingIndex, deps: Deps, log: TriageLog
) -> RootCause | None:
    folded = c.text.lower()
    if item.label is None:
        reason = "the model gave no label" + ("" if item.is_complaint else " (not a complaint)")
        log.fallback(c.id, ("trace",), "no_label", reason)
        return None
    if item.label not in deps.taxonomy.label_ids:
        log.meter.add("rejected.label")
        log.fallback(
            c.id, ("trace",), "unknown_label", f"label {_short(item.label)!r} is not in the taxonomy"
        )
        return None
    label = deps.taxonomy.label(item.label)
    l3 = None
    if item.l3:
        if item.l3 in {x.name for x in label.l3}:
            l3 = item.l3
        else:
            log.meter.add("rejected.l3")
            log.note(c.id, f"L3 {_short(item.l3)!r} is not under {label.id}; dropped")
    secondary = []
    for sec in dict.fromkeys(item.secondary):
        if sec == label.id:
            continue
        if sec not in deps.taxonomy.label_ids:
            log.meter.add("rejected.secondary")
            log.note(c.id, f"secondary label {_short(sec)!r} is not in the taxonomy; dropped")
            continue
        lab = deps.taxonomy.label(sec)
        secondary.append(
            LabelScore(label=lab.id, dimension=lab.dimension, score=round(item.confidence / 2, 3))
        )
    # The model may add a negative voice the rules missed, never clear one (that would sink a
    # complaint to P4 on the strength of its own text).
    negative = item.is_complaint or rules.is_negative_voice
    grade, reason, grade_hits = _grade(index, folded, label if negative else None)
    if GRADES.index(rules.grade) < GRADES.index(grade):
        grade, reason = rules.grade, f"{rules.grade_reason}（规则引擎判定更严重，保留）"
    evidence = [ev for q in item.cause_evidence[:3] if (ev := locate(folded, q, label.id))]
    confidence = min(0.99, item.confidence)
    if not evidence and negative:
        confidence = min(confidence, NO_EVIDENCE_CONFIDENCE)
        log.note(c.id, "no verbatim evidence for the label; confidence capped")
    evidence += [
        Evidence(text=m.cue, start=m.start, end=m.end, supports=f"grade:{grade}") for m in grade_hits[:2]
    ]
    # Intensity and score come from the lexicon (they feed severity); the model names the mood.
    lex = rules.sentiment
    sign = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[item.polarity]
    score = lex.score if lex.score * sign > 0 else round(sign * lex.intensity, 3)
    return RootCause(
        dimension=label.dimension,
        l2=label.id,
        l3=l3,
        confidence=round(confidence, 3),
        secondary=secondary[:3],
        sentiment=Sentiment(
            polarity=item.polarity, score=score, intensity=lex.intensity, emotion=item.emotion
        ),
        is_negative_voice=negative,
        grade=grade,
        grade_reason=reason,
        evidence=evidence,
    )


def _draft(item: TracedComplaint, c: Complaint, deps: Deps, log: TriageLog) -> Draft | None:
    dept_id = item.department_id.strip()
    known = {d.id for d in deps.matrix.departments}
    if dept_id not in known:
        log.meter.add("rejected.department")
        log.fallback(
            c.id,
            ("attribution",),
            "unknown_department",
            f"department {_short(dept_id)!r} is not in the matrix",
        )
        return None
    dept = deps.matrix.department(dept_id)
    product = None
    if item.product:
        wanted = item.product.strip().lower()
        for p in dept.products:
            if wanted in {p.name.lower(), *(a.lower() for a in p.aliases)}:
                product = p.name
                break
        else:
            log.meter.add("rejected.product")
            log.note(c.id, f"product {_short(item.product)!r} is not listed for {dept.id}; dropped")
    folded = c.text.lower()
    evidence = [ev for q in item.owner_evidence[:3] if (ev := locate(folded, q, dept.id))]
    return Draft(dept.id, product, min(0.99, item.confidence), evidence)


def attribute_llm(
    complaints: list[Complaint],
    vectors: np.ndarray,
    causes: list[RootCause],
    deps: Deps,
    log: TriageLog | None = None,
) -> list[Attribution]:
    """Owners from the tracing call's validated drafts; rules for the rest."""
    if log is None:
        # Called on its own: the owners come from the same joint call tracing makes.
        log = new_log(deps, None)
        trace_llm(complaints, vectors, deps, log)
    missing = [i for i, c in enumerate(complaints) if c.id not in log.drafts]
    rules = attribute_rules(
        [complaints[i] for i in missing],
        vectors[missing] if len(missing) else vectors[:0],
        [causes[i] for i in missing],
        deps,
    )
    by_rules = dict(zip(missing, rules, strict=True))
    index: AttributionIndex = deps.indexes["attribution"]
    out = []
    for i, c in enumerate(complaints):
        if i in by_rules:
            out.append(by_rules[i])
            continue
        d = log.drafts[c.id]
        dept = deps.matrix.department(d.department_id)
        folded = c.text.lower()
        channel, source = _channel(index, c, folded)
        line = index.line_of.get(c.business_line.lower()) if c.business_line else None
        if line is None and d.product:
            line = next((p.business_line for p in dept.products if p.name == d.product), None)
        if line is None and dept.business_lines:
            line = dept.business_lines[0]
        out.append(
            Attribution(
                channel=channel,
                channel_source=source,
                business_line=line,
                product=c.product or d.product,
                department_id=dept.id,
                department=dept.name,
                owner_role=dept.owner_role,
                confidence=round(d.confidence, 3),
                alternatives=[],
                evidence=d.evidence,
            )
        )
    return out
