"""``voc eval``: run the pipeline on a labelled dataset and score it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from evals.dataset import DEFAULT_DATASET, fund_safety_theme, load_dataset, spike_theme, to_raw_rows
from evals.scoring import EvalScores, score
from graph.run import run_batch
from tools.deps import Deps


class EvalReport(BaseModel):
    dataset: str
    split: str
    versions: dict[str, str]
    seconds: float
    scores: EvalScores


def run_eval(deps: Deps, dataset: Path | str = DEFAULT_DATASET, split: str = "all") -> EvalReport:
    """Analyse the dataset's rows as a user would submit them and score the results."""
    rows = load_dataset(dataset, split)
    # track=False: labelled evaluation rows must never enter the user's warehouse and its trends.
    result = run_batch(
        to_raw_rows(rows), deps, source=f"eval:{Path(dataset).name}:{split}", fresh=True, track=False
    )
    scores = score(rows, result, fund_safety_theme(rows), spike_theme(rows))
    return EvalReport(
        dataset=str(dataset), split=split, versions=deps.versions, seconds=result.stats.seconds, scores=scores
    )
