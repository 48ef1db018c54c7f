"""Analysis rules engine: negative voices clustered into common problems, scored on impact, ranked."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agents.analysis.scoring import (
    PRIORITIES,
    Item,
    level,
    lift_protected,
    priority_for,
    ranking_for,
    score_problem,
    score_severity,
)
from tools.clustering import cluster_vectors, ctfidf_keywords, load_stopwords, tokenize
from tools.cues import CueIndex
from tools.embeddings import normalize_rows
from tools.knowledge import Level, Priority, ScoringConfig
from tools.schema import Impact, LabelSpike, Problem, Representative, Severity, Spike
from tools.taxonomy import GRADES, Grade

if TYPE_CHECKING:
    from tools.deps import Deps


@dataclass
class AnalysisOutput:
    severities: dict[str, Severity]
    priorities: dict[str, Priority]
    problem_of: dict[str, str]
    problems: list[Problem]
    centroids: dict[str, np.ndarray]
    label_spikes: list[LabelSpike]


def super_embed(items: list[Item], center: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    """Text vector plus weighted one-hots of the metadata that defines a common problem."""
    # Centring on the taxonomy exemplars' mean spreads E5's compressed similarities.
    text = normalize_rows(np.vstack([it.vector for it in items]) - center)
    blocks: list[np.ndarray] = [text * weights.get("text", 1.0)]
    fields = {
        "label": lambda it: it.cause.l2,
        "dimension": lambda it: it.cause.dimension,
        "business_line": lambda it: it.attribution.business_line,
        "channel": lambda it: it.attribution.channel,
        "segment": lambda it: it.complaint.customer_segment,
    }
    for name, get in fields.items():
        wt = weights.get(name, 0.0)
        if wt <= 0:
            continue
        values = sorted({str(get(it)) for it in items})
        col = {v: j for j, v in enumerate(values)}
        onehot = np.zeros((len(items), len(values)), dtype=np.float32)
        for i, it in enumerate(items):
            v = get(it)
            if v is not None:
                onehot[i, col[str(v)]] = 1.0
        blocks.append(onehot * wt)
    return normalize_rows(np.hstack(blocks))


def _grade_of(grades: list[Grade]) -> Grade:
    """The most serious grade that at least a quarter of the members carry."""
    counts = Counter(grades)
    cum = 0
    for g in GRADES:
        cum += counts.get(g, 0)
        if cum >= 0.25 * len(grades):
            return g
    return "一般"


def analyze_items(items: list[Item], deps: Deps) -> AnalysisOutput:
    """Score every complaint and build the ranked common problems, named by c-TF-IDF keywords.

    Priorities come from numbers only (severity, impact, the configured matrix), so no text
    inside a complaint can set one.
    """
    cfg = deps.scoring
    severities = score_severity(items, cfg)
    negatives = [it for it in items if it.cause.is_negative_voice]
    originals = [it for it in negatives if not it.complaint.duplicate_of]
    periods = sorted({it.complaint.period for it in negatives if it.complaint.period})
    current = periods[-1] if periods else None
    previous = periods[-2] if len(periods) > 1 else None

    labels = np.full(len(originals), -1)
    if originals:
        # The exemplars' mean is a stable "complaint space" centre, whatever the batch size.
        center = deps.indexes["tracing"].center
        emb = super_embed(originals, center, cfg.clustering.weights)
        labels = cluster_vectors(
            emb, cfg.clustering.distance_threshold, cfg.clustering.min_size, cfg.clustering.exact_above
        )
    members: dict[int, list[Item]] = defaultdict(list)
    for it, lab in zip(originals, labels.tolist(), strict=True):
        if lab >= 0:
            members[lab].append(it)
    cluster_of = {
        it.complaint.id: lab for it, lab in zip(originals, labels.tolist(), strict=True) if lab >= 0
    }
    dup_members: dict[int, list[Item]] = defaultdict(list)
    for it in negatives:
        src = it.complaint.duplicate_of
        if src and src in cluster_of:
            dup_members[cluster_of[src]].append(it)

    stop = load_stopwords(str(deps.settings.data_dir / "stopwords.txt"))
    keywords = ctfidf_keywords(
        {lab: [tokenize(it.complaint.text, stop) for it in its] for lab, its in members.items()},
        cfg.clustering.keywords_per_problem,
    )
    esc = CueIndex({"e": cfg.impact.escalation_cues}, check_denial=False)
    vul = CueIndex({"v": cfg.impact.vulnerable_cues}, check_denial=False)
    total_neg = max(len(originals), 1)
    drafts = []
    for lab, its in members.items():
        n = len(its)
        ids = [it.complaint.id for it in its]
        customers = Counter(it.complaint.customer_id or it.complaint.id for it in its)
        per_period = Counter(it.complaint.period for it in its if it.complaint.period)
        cur = per_period.get(current, 0) if current else n
        prev = per_period.get(previous, 0) if previous else 0
        growth = (cur / prev) if prev else None
        escalated = sum(
            1
            for it in its
            if (it.attribution.channel in cfg.impact.escalation_channels)
            or esc.any(it.complaint.text.lower())
        )
        vulnerable = sum(
            1
            for it in its
            if (it.complaint.customer_segment in cfg.impact.vulnerable_segments)
            or vul.any(it.complaint.text.lower())
        )
        money = sum(severities[i].amount for i in ids)
        if previous is None:
            growth_f = 0.0
        elif prev == 0:
            growth_f = 1.0 if cur >= cfg.spikes.min_count else 0.0
        else:
            growth_f = min(1.0, max(0.0, (cur / prev - 1) / (cfg.impact.growth_saturation - 1)))
        imp = cfg.impact
        factors = {
            "volume": min(1.0, (n / total_neg) / imp.volume_saturation),
            "growth": growth_f,
            "escalation": min(1.0, (escalated / n) / imp.escalation_saturation),
            "vulnerable": min(1.0, (vulnerable / n) / imp.vulnerable_saturation),
            "money": min(1.0, money / imp.money_saturation),
        }
        impact_score = (
            100
            * sum(imp.weights.get(k, 0) * v for k, v in factors.items())
            / max(sum(imp.weights.values()), 1e-9)
        )
        grade = _grade_of([it.cause.grade for it in its])
        imp_level = level(impact_score, imp.levels)
        label_mix = Counter(it.cause.l2 or "-" for it in its)
        dept_mix = Counter(it.attribution.department_id for it in its)
        top_label = label_mix.most_common(1)[0][0]
        top_dept = dept_mix.most_common(1)[0][0]
        dept = deps.matrix.department(top_dept)
        vecs = np.vstack([it.vector for it in its])
        centroid = vecs.mean(axis=0)
        closest = np.argsort(-(vecs @ centroid))[:3]
        spike = None
        if current and previous:
            z = (cur - prev) / math.sqrt(max(prev, 1))
            ratio = cur / max(prev, 1)
            if cur >= cfg.spikes.min_count and ratio >= cfg.spikes.min_ratio and z >= cfg.spikes.min_z:
                spike = Spike(
                    period=current, current=cur, previous=prev, ratio=round(ratio, 2), z=round(z, 2)
                )
        label_name = (
            deps.taxonomy.label(top_label).name if top_label in deps.taxonomy.label_ids else top_label
        )
        score = score_problem([severities[i] for i in ids], grade, imp_level, top_label, cfg)
        kws = keywords.get(lab, [])
        drafts.append(
            {
                "cluster": lab,
                "name": f"{label_name}｜{'、'.join(kws[:3])}" if kws else label_name,
                "keywords": kws,
                "dimension": top_label.split("-")[0],
                "l2": top_label,
                "department_id": dept.id,
                "department": dept.name,
                "owner_role": dept.owner_role,
                "grade": grade,
                "severity": score.severity,
                "severity_level": score.level,
                "impact": Impact(
                    score=round(impact_score, 1),
                    level=imp_level,
                    complaints=n,
                    customers=len(customers),
                    share=round(n / total_neg, 4),
                    current_period=current,
                    current=cur,
                    previous=prev,
                    growth=round(growth, 2) if growth is not None else None,
                    escalation_share=round(escalated / n, 3),
                    vulnerable_share=round(vulnerable / n, 3),
                    repeat_customers=sum(1 for v in customers.values() if v > 1),
                    amount_at_stake=round(money, 2),
                    factors={k: round(v, 3) for k, v in factors.items()},
                ),
                "priority": score.priority,
                "member_ids": ids + [d.complaint.id for d in dup_members.get(lab, [])],
                "representatives": [
                    Representative(id=its[j].complaint.id, text=its[j].complaint.text) for j in closest
                ],
                "label_mix": dict(label_mix.most_common()),
                "department_mix": dict(dept_mix.most_common()),
                "channel_mix": dict(Counter(it.attribution.channel or "未知" for it in its).most_common()),
                "period_counts": dict(sorted(per_period.items())),
                "spike": spike,
                "_centroid": centroid,
                "_score": score,
            }
        )
    # Money lost and conduct breaches never rank below a lesser problem of similar size.
    lift_protected([d["_score"] for d in drafts], cfg)
    for d in drafts:
        d["priority"] = d["_score"].priority
        d["ranking"] = ranking_for(d["_score"], d["impact"], cfg)
    drafts.sort(
        key=lambda d: (
            PRIORITIES.index(d["priority"]),
            not d["_score"].protected,
            GRADES.index(d["grade"]),
            -(d["severity"] + d["impact"].score),
            d["member_ids"][0],
        )
    )
    problems: list[Problem] = []
    centroids: dict[str, np.ndarray] = {}
    problem_of: dict[str, str] = {}
    impact_level_of: dict[str, Level] = {}
    for rank, d in enumerate(drafts, start=1):
        pid = f"PRB-{rank:03d}"
        centroids[pid] = d.pop("_centroid")
        d.pop("_score")
        d.pop("cluster")
        problems.append(Problem(id=pid, rank=rank, **d))
        for mid in d["member_ids"]:
            problem_of[mid] = pid
        impact_level_of[pid] = d["impact"].level
    priorities: dict[str, Priority] = {}
    for it in items:
        cid = it.complaint.id
        imp_lvl: Level = impact_level_of.get(problem_of.get(cid, ""), "low")
        priorities[cid] = priority_for(
            cfg, severities[cid].level, imp_lvl, it.cause.grade, conduct=bool(severities[cid].conduct)
        )
        if not it.cause.is_negative_voice:
            priorities[cid] = "P4"
    return AnalysisOutput(
        severities=severities,
        priorities=priorities,
        problem_of=problem_of,
        problems=problems,
        centroids=centroids,
        label_spikes=_label_spikes(negatives, current, previous, cfg),
    )


def _label_spikes(
    items: list[Item], current: str | None, previous: str | None, cfg: ScoringConfig
) -> list[LabelSpike]:
    if not (current and previous):
        return []
    counts: Counter[tuple[str, str]] = Counter(
        (it.cause.l2 or "-", it.complaint.period or "") for it in items if not it.complaint.duplicate_of
    )
    out = []
    for label in sorted({lab for lab, _ in counts}):
        cur, prev = counts.get((label, current), 0), counts.get((label, previous), 0)
        z = (cur - prev) / math.sqrt(max(prev, 1))
        ratio = cur / max(prev, 1)
        if cur >= cfg.spikes.min_count and ratio >= cfg.spikes.min_ratio and z >= cfg.spikes.min_z:
            out.append(
                LabelSpike(
                    label=label,
                    period=current,
                    current=cur,
                    previous=prev,
                    ratio=round(ratio, 2),
                    z=round(z, 2),
                )
            )
    return sorted(out, key=lambda s: -s.z)
