"""Per-complaint analysis numbers: the analysed item, severity, level cut points, the priority matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tools.cues import CueIndex
from tools.knowledge import Level, Priority, ScoringConfig
from tools.money import amount_yuan as _amount_yuan
from tools.schema import Attribution, Complaint, Impact, RankFactor, Ranking, RootCause, Severity
from tools.taxonomy import Grade

PRIORITIES: tuple[Priority, ...] = ("P1", "P2", "P3", "P4")


@dataclass
class Item:
    """One analysed complaint as analysis sees it."""

    complaint: Complaint
    attribution: Attribution
    cause: RootCause
    vector: np.ndarray


def level(score: float, cuts: Mapping[Literal["high", "medium"], float]) -> Level:
    if score >= cuts["high"]:
        return "high"
    if score >= cuts["medium"]:
        return "medium"
    return "low"


def more_urgent(a: Priority, b: Priority) -> Priority:
    return a if PRIORITIES.index(a) <= PRIORITIES.index(b) else b


def priority_for(
    cfg: ScoringConfig, severity: Level, impact: Level, grade: Grade, conduct: bool = False
) -> Priority:
    """The matrix cell, raised to the grade's floor, and to the conduct floor for a conduct breach."""
    return priority_steps(cfg, severity, impact, grade, conduct)[0]


def amount_yuan(text: str, cfg: ScoringConfig | None = None) -> float:
    """Yuan named in ``text``, foreign amounts converted with the configured rates."""
    return _amount_yuan(text, cfg.severity.money.rates if cfg else None)


def is_vulnerable(complaint: Complaint, cfg: ScoringConfig, cues: CueIndex) -> bool:
    return complaint.customer_segment in cfg.impact.vulnerable_segments or cues.any(complaint.text.lower())


def score_severity(items: list[Item], cfg: ScoringConfig) -> dict[str, Severity]:
    """Severity per complaint from numbers and configured cue matches only."""
    blocking = CueIndex({"b": cfg.severity.blocking_cues}, check_denial=False)
    urgency = CueIndex({"u": cfg.severity.urgency_cues}, check_denial=False)
    money_cfg = cfg.severity.money
    loss = CueIndex({"l": money_cfg.loss_cues})
    rules = cfg.severity.conduct
    conduct = CueIndex({str(i): r.cues for i, r in enumerate(rules)})
    vulnerable = CueIndex({"v": cfg.impact.vulnerable_cues}, check_denial=False)
    w = cfg.severity.weights
    out = {}
    for it in items:
        folded = it.complaint.text.lower()
        amount = _amount_yuan(folded, money_cfg.rates)
        money = min(1.0, amount / money_cfg.saturation)
        if loss.any(folded):
            money = max(money, money_cfg.loss_floor)
        hits = conduct.find(folded)
        breaches = [
            rules[int(k)].name
            for k in sorted(hits, key=int)
            if not rules[int(k)].vulnerable_only or is_vulnerable(it.complaint, cfg, vulnerable)
        ]
        factors = {
            "grade": cfg.grades.points[it.cause.grade],
            "money": money,
            "conduct": 1.0 if breaches else 0.0,
            "blocking": 1.0 if blocking.any(folded) else 0.0,
            "urgency": 1.0 if urgency.any(folded) else 0.0,
            "intensity": it.cause.sentiment.intensity,
        }
        if not it.cause.is_negative_voice:
            factors = {k: v * 0.3 for k, v in factors.items()}
            breaches = []
        score = 100 * sum(w.get(k, 0) * v for k, v in factors.items()) / max(sum(w.values()), 1e-9)
        out[it.complaint.id] = Severity(
            score=round(score, 1),
            level=level(score, cfg.severity.levels),
            factors={k: round(v, 3) for k, v in factors.items()},
            amount=round(amount, 2),
            conduct=breaches,
        )
    return out


LEVEL_ZH = {"high": "高", "medium": "中", "low": "低"}
SEVERITY_LABELS = {
    "grade": "投诉等级",
    "money": "涉及资金",
    "conduct": "监管风险",
    "blocking": "业务受阻",
    "urgency": "时效紧迫",
    "intensity": "情绪强度",
}
IMPACT_LABELS = {
    "volume": "投诉规模",
    "growth": "环比增长",
    "escalation": "升级风险",
    "vulnerable": "特殊客群",
    "money": "涉及金额",
}


def priority_steps(
    cfg: ScoringConfig, severity: Level, impact: Level, grade: Grade, conduct: bool
) -> tuple[Priority, list[str]]:
    """The priority and, in words, how it was reached (matrix cell, then any floor that raised it)."""
    p = cfg.priority.matrix[severity][impact]
    steps = [f"矩阵：严重性{LEVEL_ZH[severity]} × 影响面{LEVEL_ZH[impact]} → {p}"]
    floor = cfg.priority.floors.get(grade)
    if floor and more_urgent(floor, p) != p:
        p = floor
        steps.append(f"底线：{grade}问题不低于 {floor}")
    if conduct and cfg.priority.conduct_floor and more_urgent(cfg.priority.conduct_floor, p) != p:
        p = cfg.priority.conduct_floor
        steps.append(f"底线：违规行为（监管风险）不低于 {p}")
    return p, steps


@dataclass
class ProblemScore:
    """A common problem's severity, priority and the figures its ranking explanation shows."""

    severity: float
    level: Level
    impact_level: Level
    grade: Grade
    size: int
    label: str
    priority: Priority
    steps: list[str]
    conduct: bool
    breaches: Counter[str]
    loss_members: int
    amount: float
    factors: dict[str, float]

    @property
    def protected(self) -> bool:
        """Money lost (特急) or a conduct-rule breach."""
        return self.grade == "特急" or self.conduct


def score_problem(
    sevs: list[Severity], grade: Grade, impact_level: Level, label: str, cfg: ScoringConfig
) -> ProblemScore:
    """Severity of a problem (mean and 90th percentile of its members'), its level and priority."""
    scores = np.array([s.score for s in sevs])
    severity = float(0.7 * scores.mean() + 0.3 * np.percentile(scores, 90))
    sev_level = level(severity, cfg.severity.levels)
    n = len(sevs)
    conduct = sum(1 for s in sevs if s.conduct) / n >= cfg.priority.conduct_share
    priority, steps = priority_steps(cfg, sev_level, impact_level, grade, conduct)
    keys = sorted({k for s in sevs for k in s.factors})
    return ProblemScore(
        severity=round(severity, 1),
        level=sev_level,
        impact_level=impact_level,
        grade=grade,
        size=n,
        label=label,
        priority=priority,
        steps=steps,
        conduct=conduct,
        breaches=Counter(b for s in sevs for b in s.conduct),
        loss_members=sum(1 for s in sevs if s.factors.get("money", 0) >= cfg.severity.money.loss_floor),
        amount=round(sum(s.amount for s in sevs), 2),
        factors={k: float(np.mean([s.factors.get(k, 0.0) for s in sevs])) for k in keys},
    )


def lift_protected(scores: list[ProblemScore], cfg: ScoringConfig) -> None:
    """A money-loss or conduct problem takes the priority of any lesser problem of similar size above it."""
    ratio = cfg.priority.similar_size
    for a in scores:
        if not a.protected:
            continue
        for b in scores:
            if b.protected or b.grade not in cfg.priority.protected_over:
                continue
            if max(a.size, b.size) > ratio * min(a.size, b.size):
                continue
            if more_urgent(b.priority, a.priority) != a.priority:
                a.priority = b.priority
                a.steps.append(f"同等规模：不低于 {b.size} 件的{b.grade}问题（{b.label}，{b.priority}）")


def _yuan(v: float) -> str:
    return f"¥{v:,.0f}"


def ranking_for(ps: ProblemScore, impact: Impact, cfg: ScoringConfig) -> Ranking:
    """The factors behind a problem's severity, impact and priority, largest contribution first."""
    sw, iw = cfg.severity.weights, cfg.impact.weights
    s_total, i_total = max(sum(sw.values()), 1e-9), max(sum(iw.values()), 1e-9)
    f = ps.factors
    loss = f"{ps.loss_members} 件称资金受损（盗刷、被骗、错扣、亏损等）" if ps.loss_members else ""
    money_detail = "；".join(x for x in (f"涉及金额 {_yuan(ps.amount)}" if ps.amount else "", loss) if x)
    breaches = "、".join(f"{name}（{k} 件）" for name, k in ps.breaches.most_common())
    details = {
        "grade": f"{ps.grade}",
        "money": money_detail or "未提及金额或资金损失",
        "conduct": breaches or "未见违规行为线索",
        "blocking": f"{f.get('blocking', 0):.0%} 的投诉称无法办理",
        "urgency": f"{f.get('urgency', 0):.0%} 的投诉要求尽快处理",
        "intensity": f"平均情绪强度 {f.get('intensity', 0):.2f}",
    }
    growth = (
        f"本期 {impact.current} 件，上期 {impact.previous} 件"
        if impact.current_period and impact.previous
        else "无上期可比"
    )
    impact_details = {
        "volume": f"{impact.complaints} 件，占负面声音 {impact.share:.1%}",
        "growth": growth,
        "escalation": f"{impact.escalation_share:.0%} 有升级风险（监管转送、媒体、起诉等）",
        "vulnerable": f"{impact.vulnerable_share:.0%} 涉及老年、残障等特殊客群",
        "money": f"合计 {_yuan(impact.amount_at_stake)}",
    }
    factors = [
        RankFactor(
            name=f"severity.{k}",
            label=SEVERITY_LABELS.get(k, k),
            value=round(f.get(k, 0.0), 3),
            weight=w / s_total,
            detail=details.get(k, ""),
        )
        for k, w in sw.items()
    ] + [
        RankFactor(
            name=f"impact.{k}",
            label=IMPACT_LABELS.get(k, k),
            value=round(impact.factors.get(k, 0.0), 3),
            weight=w / i_total,
            detail=impact_details.get(k, ""),
        )
        for k, w in iw.items()
    ]
    factors.sort(key=lambda x: -x.value * x.weight)
    lead = []
    if ps.grade == "特急" or ps.loss_members >= cfg.priority.conduct_share * ps.size:
        lead.append(f"资金损失：{money_detail or '特急（资金安全）'}")
    if breaches:
        lead.append(f"监管风险：{breaches}")
    shown = {"severity.money", "severity.conduct"}
    rest = [x for x in factors if x.name not in shown and x.value > 0][: max(1, 3 - len(lead))]
    parts = lead + [f"{x.label}：{x.detail}" for x in rest]
    reason = "；".join(parts) + f"。{ps.priority}（{'；'.join(ps.steps)}）"
    return Ranking(reason=reason, priority_rule="；".join(ps.steps), protected=ps.protected, factors=factors)
