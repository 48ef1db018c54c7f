"""Remediation rules engine: a proposal assembled from retrieved sources and the configured templates."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from agents.remediation.retrieval import retrieve
from tools.knowledge import DimensionMeasures, HandlingClass
from tools.schema import Measure, Metric, Problem, Proposal

if TYPE_CHECKING:
    from tools.deps import Deps


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


def generic_measures(problem: Problem, deps: Deps) -> tuple[DimensionMeasures | None, str]:
    """The problem's own L2 label's generic measures; its dimension's only when the label has none."""
    cfg = deps.remediation
    own = cfg.label_measures.get(problem.l2)
    if own is not None:
        return own, f"标签 {problem.l2}"
    return cfg.measures.get(
        problem.dimension
    ), f"维度 {problem.dimension}（标签 {problem.l2} 未配置专属措施）"


def propose_rules(problem: Problem, centroid: np.ndarray, as_of: date, deps: Deps) -> Proposal:
    """Assemble a proposal from retrieved cases, knowledge entries and the templates.

    Goals, short- and long-term measures, owner, handling class, deadline and metrics; every
    measure names the sources it came from, and every source listed was actually retrieved.
    """
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

    # Only cases about the same root cause (L2) lend their measures: a near case about another
    # label would bring its own fixes (queue staffing for a card-fraud problem).
    relevant = [c for c in cases if problem.l2 in c.labels]
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
    generic, basis = generic_measures(problem, deps)
    if generic:
        measures += [Measure(text=t, term="short", basis=basis) for t in generic.short[:1]]
    for c in relevant[:2]:
        if c.long_term:
            text = f"借鉴{c.id}“{c.title}”的根源整改：{c.long_term}"
            measures.append(Measure(text=text, term="long", sources=[c.id]))
    if generic:
        measures += [Measure(text=t, term="long", basis=basis) for t in generic.long]
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
