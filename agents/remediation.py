"""Remediation (应用): proposals grounded in retrieved knowledge entries and past cases.

For one common problem the ``rules`` engine retrieves the nearest historical cases and
knowledge entries (re-ranked by shared root-cause labels and owner), then assembles goals,
short- and long-term measures, owner, handling class, deadline and metrics. Every measure
names the sources it came from, and every source listed was actually retrieved.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from tools.knowledge import Case, HandlingClass, KnowledgeEntry
from tools.schema import Measure, Metric, Problem, Proposal, SourceRef
from tools.store import Hit

if TYPE_CHECKING:
    from tools.deps import Deps
    from tools.llm import Meter

LABEL_BONUS = 0.06
DIMENSION_BONUS = 0.03
OWNER_BONUS = 0.03


def _rerank(hits: list[Hit], problem: Problem, key_labels: str, key_owner: str) -> list[Hit]:
    def bonus(h: Hit) -> float:
        labels = str(h.metadata.get(key_labels, "")).split(",")
        owners = str(h.metadata.get(key_owner, "")).split(",")
        b = LABEL_BONUS if problem.l2 in labels else 0.0
        if h.metadata.get("dimension") == problem.dimension:
            b += DIMENSION_BONUS
        if problem.department_id in owners:
            b += OWNER_BONUS
        return b

    return sorted(hits, key=lambda h: -(h.score + bonus(h)))


def retrieve(
    problem: Problem, centroid: np.ndarray, deps: Deps
) -> tuple[list[Case], list[KnowledgeEntry], list[SourceRef]]:
    """The cases and knowledge entries a proposal for ``problem`` may rely on."""
    limits = deps.scoring.remediation
    q = centroid / (np.linalg.norm(centroid) or 1.0)
    case_hits = _rerank(
        deps.store.search("cases", q, k=limits.cases_top_k * 3), problem, "labels", "owner_department"
    )
    kb_hits = _rerank(
        deps.store.search("knowledge", q, k=limits.knowledge_top_k * 3), problem, "labels", "departments"
    )
    case_by_id = {c.id: c for c in deps.cases.cases}
    entry_by_id = {e.id: e for e in deps.knowledge.entries}
    cases = [
        case_by_id[h.metadata["case_id"]]
        for h in case_hits[: limits.cases_top_k]
        if h.metadata.get("case_id") in case_by_id
    ]
    entries = [
        entry_by_id[h.metadata["entry_id"]]
        for h in kb_hits[: limits.knowledge_top_k]
        if h.metadata.get("entry_id") in entry_by_id
    ]
    refs = [
        SourceRef(id=c.id, kind="case", title=c.title, score=h.score)
        for c, h in zip(cases, case_hits, strict=False)
    ]
    refs += [
        SourceRef(id=e.id, kind="knowledge", title=e.title, score=h.score)
        for e, h in zip(entries, kb_hits, strict=False)
    ]
    return cases, entries, refs


def handling_class(problem: Problem, deps: Deps) -> tuple[HandlingClass, str]:
    rules = deps.remediation.classification
    share = problem.department_mix.get(problem.department_id, 0) / max(
        sum(problem.department_mix.values()), 1
    )
    threshold = float(rules.get("cross_department_share", 0.6))  # type: ignore[arg-type]
    if share < threshold:
        return "疑难复杂类", f"责任分散：首要责任部门仅占 {share:.0%}，需跨部门协同"
    quick = rules.get("quick_fix_labels", [])
    if isinstance(quick, list) and problem.l2 in quick and problem.grade not in ("特急", "紧急"):
        return "及时响应类", f"根因为{problem.l2}，可通过话术、培训或知识库快速修正"
    return "根源整改类", f"根因为{problem.l2}（{problem.grade}），需改动产品、制度或系统"


def propose_rules(problem: Problem, centroid: np.ndarray, as_of: date, deps: Deps) -> Proposal:
    """Assemble a proposal from retrieved cases, knowledge entries and the templates."""
    cfg = deps.remediation
    cases, entries, refs = retrieve(problem, centroid, deps)
    klass, reason = handling_class(problem, deps)
    days = cfg.handling_classes[klass].deadline_days[problem.priority]
    deadline = as_of + timedelta(days=days)
    review_after = cfg.targets.get("review_after_days", 30)
    review = deadline + timedelta(days=int(review_after) if isinstance(review_after, int) else 30)
    reductions = cfg.targets.get("reduction", {})
    reduction = float(reductions.get(problem.priority, 0.3)) if isinstance(reductions, dict) else 0.3
    baseline = problem.impact.current or problem.impact.complaints
    target = math.floor(baseline * (1 - reduction))

    # Only cases about the same root cause lend their measures; the nearest case always does.
    relevant = [c for i, c in enumerate(cases) if i == 0 or problem.l2 in c.labels]
    measures: list[Measure] = []
    for e in entries:
        if e.type in ("standard_answer", "service_standard", "policy", "regulation"):
            text = f"对照《{e.title}》统一一线答复口径并核查执行情况"
            measures.append(Measure(text=text, term="short", sources=[e.id]))
            break
    for c in relevant[:2]:
        if c.short_term:
            text = f"借鉴{c.id}“{c.title}”的短期做法：{c.short_term}"
            measures.append(Measure(text=text, term="short", sources=[c.id]))
    generic = cfg.measures.get(problem.dimension)
    if generic:
        measures += [Measure(text=t, term="short") for t in generic.short[:1]]
    for c in relevant[:2]:
        if c.long_term:
            text = f"借鉴{c.id}“{c.title}”的根源整改：{c.long_term}"
            measures.append(Measure(text=text, term="long", sources=[c.id]))
    if generic:
        measures += [Measure(text=t, term="long") for t in generic.long]
    seen: set[str] = set()
    measures = [m for m in measures if not (m.text in seen or seen.add(m.text))]  # type: ignore[func-returns-value]

    dept = deps.matrix.department(problem.department_id)
    pain = "、".join(problem.keywords[:3]) or problem.name
    fill = {
        "name": problem.name,
        "baseline": baseline,
        "target": target,
        "reduction": round(reduction * 100),
        "deadline": deadline.isoformat(),
        "pain": pain,
        "owner": dept.name,
    }
    goals = [tmpl.format(**fill) for tmpl in cfg.goals.values()]
    repeat_rate = round(100 * problem.impact.repeat_customers / max(problem.impact.customers, 1), 1)
    metrics = []
    for tmpl in cfg.metrics:
        if tmpl.name == "月投诉量":
            metrics.append(
                Metric(name=tmpl.name, unit=tmpl.unit, baseline=baseline, target=target, how=tmpl.how)
            )
        elif tmpl.name == "重复投诉率":
            metrics.append(
                Metric(
                    name=tmpl.name,
                    unit=tmpl.unit,
                    baseline=repeat_rate,
                    target=round(repeat_rate * 0.5, 1),
                    how=tmpl.how,
                )
            )
        else:
            metrics.append(Metric(name=tmpl.name, unit=tmpl.unit, baseline=None, target=None, how=tmpl.how))
    cited = {s for m in measures for s in m.sources}
    return Proposal(
        problem_id=problem.id,
        title=f"{problem.name} 整改方案",
        owner_department_id=dept.id,
        owner_department=dept.name,
        owner_role=dept.owner_role,
        handling_class=klass,
        handling_reason=reason,
        goals=goals,
        measures=measures,
        deadline=deadline,
        review_date=review,
        metrics=metrics,
        sources=[r for r in refs if r.id in cited] + [r for r in refs if r.id not in cited],
    )


def propose(
    problem: Problem, centroid: np.ndarray, as_of: date, deps: Deps, meter: Meter | None = None
) -> Proposal:
    """Write a proposal with the configured engine; ``llm`` falls back to rules on failure."""
    if deps.llm is None:
        return propose_rules(problem, centroid, as_of, deps)
    from agents.llm_remediation import propose_llm

    return propose_llm(problem, centroid, as_of, deps, meter or deps.llm.meter(None))
