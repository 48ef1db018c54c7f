"""Remediation llm engine: one call per top problem writes goals and measures from the retrieved sources."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field

from agents.model_text import clean
from agents.remediation.retrieval import retrieve
from agents.remediation.rules import propose_rules
from tools.knowledge import Case, KnowledgeEntry
from tools.llm import LLM, LLMError, Meter, neutralise, wrap_complaint
from tools.schema import Measure, Problem, Proposal

if TYPE_CHECKING:
    from tools.deps import Deps

MAX_GOALS = 3
MAX_MEASURES = 8
MAX_MEASURE_CHARS = 200
REPRESENTATIVE_CHARS = 300


class DraftMeasure(BaseModel):
    """One concrete measure."""

    text: str = Field(description="What to do, concretely, in one or two sentences.")
    term: Literal["short", "long"] = Field(description="short: stop the bleeding; long: root fix.")
    sources: list[str] = Field(
        default_factory=list, description='Ids of the <source id="..."> elements it relies on.'
    )


class DraftProposal(BaseModel):
    """Submit the goals and measures for the problem, citing only the source ids given."""

    goals: list[str] = Field(min_length=1, description="1-3 experience and qualitative goals.")
    measures: list[DraftMeasure] = Field(min_length=1, description="3-6 measures, short and long term.")


def _case_block(c: Case) -> str:
    parts = [c.title, f"问题：{c.problem}", f"根因：{c.root_cause}", f"措施：{'；'.join(c.measures)}"]
    if c.short_term:
        parts.append(f"短期：{c.short_term}")
    if c.long_term:
        parts.append(f"长期：{c.long_term}")
    if c.result:
        parts.append(f"效果：{c.result}")
    return f'<source id="{c.id}" kind="case">\n' + "\n".join(parts) + "\n</source>"


def _entry_block(e: KnowledgeEntry) -> str:
    return f'<source id="{e.id}" kind="knowledge">\n{e.title}\n{e.text}\n</source>'


def _problem_block(p: Problem, deps: Deps) -> str:
    label = deps.taxonomy.label(p.l2).name if p.l2 in deps.taxonomy.label_ids else p.l2
    lines = [
        f"名称：{neutralise(p.name)}",
        f"根因：{p.l2}（{label}）；等级 {p.grade}；优先级 {p.priority}；投诉 {p.impact.complaints} 件",
        f"关键词：{neutralise('、'.join(p.keywords[:6]))}",
    ]
    if p.summary:
        lines.append(f"摘要：{neutralise(p.summary)}")
    lines += [
        wrap_complaint(f"{p.id}-{k + 1}", r.text[:REPRESENTATIVE_CHARS])
        for k, r in enumerate(p.representatives[:3])
    ]
    return "\n".join(lines)


def _source_id(raw: str, allowed: dict[str, str]) -> str | None:
    key = re.sub(r"[\s〔〕\[\]【】()（）`]", "", raw).upper()
    return allowed.get(key)


def propose_llm(problem: Problem, centroid: np.ndarray, as_of: date, deps: Deps, meter: Meter) -> Proposal:
    """A proposal whose goals and measures the model wrote from the retrieved sources.

    The rules proposal is built first and supplies everything code decides: the owner, the
    handling class, the deadline, the metrics with their baselines and the quantitative goal.
    A cited id that was not retrieved is dropped and counted; on failure the rules proposal stands.
    """
    llm: LLM = deps.llm  # type: ignore[assignment]
    base = propose_rules(problem, centroid, as_of, deps)
    cases, entries, refs = retrieve(problem, centroid, deps)
    allowed = {r.id.upper(): r.id for r in refs}
    baseline = next((m.baseline for m in base.metrics if m.name == "月投诉量"), problem.impact.complaints)
    target = next((m.target for m in base.metrics if m.name == "月投诉量"), None)
    messages = llm.prompts["remediate"].messages(
        problem=_problem_block(problem, deps),
        sources="\n".join([*(_case_block(c) for c in cases), *(_entry_block(e) for e in entries)])
        or "（无）",
        owner=f"{base.owner_department}（{base.owner_role}）",
        handling_class=base.handling_class,
        deadline=base.deadline.isoformat(),
        baseline=f"{baseline:g}" if isinstance(baseline, float) else str(baseline),
        target=f"{target:g}" if isinstance(target, float) else str(target or "-"),
    )
    try:
        draft = llm.structured("remediation", DraftProposal, messages, meter)
    except LLMError as exc:
        meter.add(f"fallback.remediation.{exc.kind}")
        meter.add("fallback_items.proposals")
        return base
    dropped = 0
    measures = []
    for m in draft.measures[:MAX_MEASURES]:
        text = clean(m.text, MAX_MEASURE_CHARS)
        if not text:
            continue
        cited = []
        for raw in dict.fromkeys(m.sources):
            sid = _source_id(raw, allowed)
            if sid is None:
                dropped += 1
            elif sid not in cited:
                cited.append(sid)
        measures.append(Measure(text=text, term=m.term, sources=cited))
    meter.add("citations.dropped", dropped)
    if not measures:
        meter.add("fallback.remediation.no_measures")
        meter.add("fallback_items.proposals")
        return base
    goals = [g for g in (clean(x, MAX_MEASURE_CHARS) for x in draft.goals[:MAX_GOALS]) if g]
    used = {s for m in measures for s in m.sources}
    return base.model_copy(
        update={
            # The first goal is the quantitative one code computed from the baseline.
            "goals": base.goals[:1] + goals,
            "measures": measures,
            "sources": [r for r in refs if r.id in used] + [r for r in refs if r.id not in used],
            "engine": "llm",
        }
    )
