"""``voc eval``: run the pipeline on a labelled dataset and score it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from evals.calibration import FieldReliability, kept_points, measure, raw_run, samples
from evals.dataset import DEFAULT_DATASET, fund_safety_theme, load_dataset, spike_theme
from evals.scoring import EvalRow, EvalScores, score
from tools.calibration import cascade_threshold
from tools.deps import Deps
from tools.schema import BatchResult


class CascadeCheck(BaseModel):
    """engine auto on the labelled rows: what the rules engine would keep at the threshold in force."""

    threshold: float
    rows: int
    kept_share: float = Field(description="Share of rows at or above the threshold (kept by rules).")
    kept_accuracy: float | None = Field(description="Share of kept results right (label and department).")
    overall_accuracy: float = Field(description="Share of all rules results right, for comparison.")


class EvalReport(BaseModel):
    dataset: str
    split: str
    versions: dict[str, str]
    seconds: float
    scores: EvalScores
    reliability: dict[str, FieldReliability] = Field(
        default_factory=dict,
        description="Per field (label, department, grade): ECE of the raw and the calibrated confidence.",
    )
    cascade: CascadeCheck | None = Field(
        None, description="Kept share and accuracy; null without calibration."
    )


def run_eval(deps: Deps, dataset: Path | str = DEFAULT_DATASET, split: str = "all") -> EvalReport:
    """Analyse the dataset's rows as a user would submit them and score the results."""
    rows = load_dataset(dataset, split)
    # Raw scores, so both they and the calibrated confidence can be measured; track=False (inside):
    # labelled evaluation rows must never enter the user's warehouse and its trends.
    result = raw_run(deps, rows, f"eval:{Path(dataset).name}:{split}")
    scores = score(rows, result, fund_safety_theme(rows), spike_theme(rows))
    return EvalReport(
        dataset=str(dataset),
        split=split,
        versions=deps.versions,
        seconds=result.stats.seconds,
        scores=scores,
        reliability=measure(samples(rows, result), deps.calibration),
        cascade=cascade_check(deps, rows, result),
    )


def cascade_check(deps: Deps, rows: list[EvalRow], result: BatchResult) -> CascadeCheck | None:
    """The cascade's threshold in force, applied to the analysed rows."""
    if deps.calibration is None:
        return None
    s = deps.settings
    limit, _ = cascade_threshold(deps.calibration, s.cascade_threshold, s.cascade_target)
    conf, right = kept_points(rows, result, deps.calibration)
    kept = [r for c, r in zip(conf, right, strict=True) if c >= limit]
    return CascadeCheck(
        threshold=limit,
        rows=len(conf),
        kept_share=round(len(kept) / len(conf), 4) if conf else 0.0,
        kept_accuracy=round(sum(kept) / len(kept), 4) if kept else None,
        overall_accuracy=round(sum(right) / len(right), 4) if right else 0.0,
    )
