"""The joint llm call of tracing and attribution: its reply, its per-chunk log, its checked owners."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from agents.model_text import for_note
from tools.llm import LLM, LLMError, Meter, wrap_complaint
from tools.pii import mask_text
from tools.schema import Complaint, Emotion, Engine, Evidence, Polarity

if TYPE_CHECKING:
    from tools.deps import Deps

MAX_QUOTE_CHARS = 80
# Both halves of a complaint's answer, for a failure that loses the whole item.
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
class OwnerDraft:
    """A validated owner from the tracing call, waiting for the attribution llm engine."""

    department_id: str
    product: str | None
    confidence: float
    evidence: list[Evidence]


@dataclass
class TriageLog:
    """What one chunk's llm tracing leaves for attribution and for each complaint's result."""

    meter: Meter
    drafts: dict[str, OwnerDraft] = field(default_factory=dict)
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


def ask(
    complaints: list[Complaint], deps: Deps, meter: Meter
) -> list[tuple[list[int], dict[str, TracedComplaint] | LLMError]]:
    """The joint call over batches of about ten complaints: each batch's indices and its reply.

    Attribution rides on the tracing call, which is how 100 complaints cost about ten calls
    rather than two hundred.
    """
    llm: LLM = deps.llm  # type: ignore[assignment]
    batches = _batches(len(complaints), llm.batch_size)
    replies = llm.map(lambda idx: _call(deps, [complaints[i] for i in idx], meter), batches)
    return list(zip(batches, replies, strict=True))


def owner_draft(item: TracedComplaint, c: Complaint, deps: Deps, log: TriageLog) -> OwnerDraft | None:
    """The owner half of one answer, checked against the service matrix; None when rejected."""
    dept_id = item.department_id.strip()
    known = {d.id for d in deps.matrix.departments}
    if dept_id not in known:
        log.meter.add("rejected.department")
        log.fallback(
            c.id,
            ("attribution",),
            "unknown_department",
            f"department {for_note(dept_id)!r} is not in the matrix",
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
            log.note(c.id, f"product {for_note(item.product)!r} is not listed for {dept.id}; dropped")
    folded = c.text.lower()
    evidence = [ev for q in item.owner_evidence[:3] if (ev := locate(folded, q, dept.id))]
    return OwnerDraft(dept.id, product, min(0.99, item.confidence), evidence)
