"""``voc eval``: run the pipeline on a labelled dataset and score it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from evals.calibration import FieldReliability, measure, raw_run, samples
from evals.dataset import DEFAULT_DATASET, fund_safety_theme, load_dataset, spike_theme
from evals.scoring import EvalScores, score
from tools.deps import Deps


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
    )
