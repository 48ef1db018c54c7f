"""Scorers: compare a batch's results with the labelled expectations of an eval dataset."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field
from sklearn.metrics import adjusted_rand_score, f1_score, normalized_mutual_info_score

from tools.schema import BatchResult


class Expected(BaseModel):
    """What a labeller says the system should conclude for one complaint."""

    department: str
    dimension: str
    l2: str
    grade: str
    theme: str | None = None
    negative: bool = True


class EvalRow(BaseModel):
    id: str
    text: str
    lang: str = "zh"
    split: str = "dev"
    expected: Expected
    record: dict[str, Any] = Field(default_factory=dict, description="The row as submitted.")


class EvalScores(BaseModel):
    """One eval run's numbers."""

    rows: int
    dimension_accuracy: float
    dimension_macro_f1: float
    l2_accuracy: float
    department_accuracy: float
    grade_accuracy: float
    negative_accuracy: float
    theme_ari: float
    theme_nmi: float
    top_problem_theme: str | None
    fund_safety_theme: str | None
    fund_safety_ranks_first: bool
    spike_theme: str | None
    spike_detected: bool
    theme_problems: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per planted theme, in rank order: the problem holding most of its rows, with its "
        "rank, priority, grade and severity (rank null when no problem holds the theme).",
    )
    dimension_confusion: dict[str, dict[str, int]]
    by_language: dict[str, dict[str, float]] = Field(default_factory=dict)
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Mismatches, for reading.")


def _acc(pairs: list[tuple[Any, Any]]) -> float:
    return round(sum(a == b for a, b in pairs) / len(pairs), 4) if pairs else 0.0


def score(
    rows: list[EvalRow],
    result: BatchResult,
    fund_safety_theme: str | None = None,
    spike_theme: str | None = None,
) -> EvalScores:
    """Score ``result`` against ``rows`` (matched by id)."""
    by_id = {r.id: r for r in result.results}
    scored = [(row, by_id[row.id]) for row in rows if row.id in by_id]
    neg = [(row, res) for row, res in scored if row.expected.negative]
    dims_true = [row.expected.dimension for row, _ in neg]
    dims_pred = [res.root_cause.dimension or "-" for _, res in neg]
    labels = sorted(set(dims_true))
    confusion = {
        t: dict(Counter(p for tt, p in zip(dims_true, dims_pred, strict=True) if tt == t)) for t in labels
    }

    themed = [(row, res) for row, res in scored if row.expected.theme]
    truth = [row.expected.theme for row, _ in themed]
    pred = [res.problem_id or f"none:{res.id}" for _, res in themed]
    ari = adjusted_rand_score(truth, pred) if themed else 0.0
    nmi = normalized_mutual_info_score(truth, pred) if themed else 0.0

    theme_of = {row.id: row.expected.theme for row in rows}

    def majority_theme(member_ids: list[str]) -> str | None:
        themes = Counter(theme_of.get(m) for m in member_ids if theme_of.get(m))
        return themes.most_common(1)[0][0] if themes else None

    top_theme = majority_theme(result.problems[0].member_ids) if result.problems else None
    spiking = {majority_theme(p.member_ids) for p in result.problems if p.spike}

    theme_problems: list[dict[str, Any]] = []
    for theme in sorted({row.expected.theme for row, _ in themed if row.expected.theme}):
        ids = {row.id for row, _ in themed if row.expected.theme == theme}
        best = max(result.problems, key=lambda p: len(ids & set(p.member_ids)), default=None)
        if best is None or not ids & set(best.member_ids):
            theme_problems.append({"theme": theme, "rank": None, "priority": None})
            continue
        theme_problems.append(
            {
                "theme": theme,
                "rank": best.rank,
                "priority": best.priority,
                "grade": best.grade,
                "severity": best.severity,
                "impact": best.impact.score,
                "complaints": best.impact.complaints,
            }
        )
    theme_problems.sort(key=lambda t: (t["rank"] is None, t["rank"] or 0, t["theme"]))

    by_language: dict[str, dict[str, float]] = {}
    for lang in sorted({row.lang for row, _ in scored}):
        sub = [(row, res) for row, res in neg if row.lang == lang]
        by_language[lang] = {
            "rows": len(sub),
            "dimension_accuracy": _acc([(r.expected.dimension, s.root_cause.dimension) for r, s in sub]),
            "l2_accuracy": _acc([(r.expected.l2, s.root_cause.l2) for r, s in sub]),
            "department_accuracy": _acc(
                [(r.expected.department, s.attribution.department_id) for r, s in sub]
            ),
        }
    errors = [
        {
            "id": row.id,
            "expected": row.expected.model_dump(),
            "got": {
                "department": res.attribution.department_id,
                "l2": res.root_cause.l2,
                "grade": res.root_cause.grade,
                "negative": res.root_cause.is_negative_voice,
            },
        }
        for row, res in scored
        if (row.expected.l2, row.expected.department, row.expected.grade)
        != (res.root_cause.l2, res.attribution.department_id, res.root_cause.grade)
    ]
    return EvalScores(
        rows=len(scored),
        dimension_accuracy=_acc(list(zip(dims_true, dims_pred, strict=True))),
        dimension_macro_f1=round(
            float(f1_score(dims_true, dims_pred, labels=labels, average="macro", zero_division=0)), 4
        )
        if neg
        else 0.0,
        l2_accuracy=_acc([(row.expected.l2, res.root_cause.l2) for row, res in neg]),
        department_accuracy=_acc(
            [(row.expected.department, res.attribution.department_id) for row, res in scored]
        ),
        grade_accuracy=_acc([(row.expected.grade, res.root_cause.grade) for row, res in neg]),
        negative_accuracy=_acc(
            [(row.expected.negative, res.root_cause.is_negative_voice) for row, res in scored]
        ),
        theme_ari=round(float(ari), 4),
        theme_nmi=round(float(nmi), 4),
        top_problem_theme=top_theme,
        fund_safety_theme=fund_safety_theme,
        fund_safety_ranks_first=bool(fund_safety_theme and top_theme == fund_safety_theme),
        spike_theme=spike_theme,
        spike_detected=bool(spike_theme and spike_theme in spiking),
        theme_problems=theme_problems,
        dimension_confusion=confusion,
        by_language=by_language,
        errors=errors,
    )
