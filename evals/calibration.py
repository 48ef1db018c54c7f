"""Confidence calibration on the labelled set: fit the maps (``voc eval --calibrate``) and measure ECE."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from evals.dataset import DEFAULT_DATASET, load_dataset, to_raw_rows
from evals.scoring import EvalRow
from graph.run import run_batch
from tools.calibration import (
    FIELDS,
    Bin,
    CalibratedField,
    Calibration,
    build_calibration,
    cascade_curve,
    expected_calibration_error,
    raw_scores,
    reliability,
)
from tools.deps import Deps
from tools.schema import BatchResult, ComplaintResult

Samples = dict[CalibratedField, tuple[list[float], list[bool]]]


class FieldReliability(BaseModel):
    """How well one field's confidence says how often it is right, before and after calibration."""

    rows: int
    accuracy: float
    ece_raw: float = Field(description="Expected calibration error of the raw scores (10 bins).")
    ece_calibrated: float | None = Field(description="The same for the calibrated confidence; null: no map.")
    bins: list[Bin] = Field(description="Reliability bins of the confidence shown (calibrated with a map).")


def raw_run(deps: Deps, rows: list[EvalRow], source: str) -> BatchResult:
    """The rows analysed with raw confidence shown, never kept in the warehouse."""
    raw = dataclasses.replace(deps, calibration=None)
    return run_batch(to_raw_rows(rows), raw, source=source, fresh=True, track=False)


def samples(rows: list[EvalRow], result: BatchResult) -> Samples:
    """Per field, the raw scores and whether the result was right, rules-engine results only.

    Label and grade are judged on negative voices, the department on every row, as the scores are.
    """
    by_id = {r.id: r for r in result.results}
    out: Samples = {name: ([], []) for name in FIELDS}
    for row in rows:
        res = by_id.get(row.id)
        if res is None or res.engine != "rules":
            continue
        raw = raw_scores(res.root_cause, res.attribution)
        right: dict[CalibratedField, bool] = {
            "label": res.root_cause.l2 == row.expected.l2,
            "department": res.attribution.department_id == row.expected.department,
            "grade": res.root_cause.grade == row.expected.grade,
        }
        for name in FIELDS:
            if name == "department" or row.expected.negative:
                out[name][0].append(raw[name])
                out[name][1].append(right[name])
    return out


def result_right(row: EvalRow, res: ComplaintResult) -> bool:
    """A result is right when its department is, and its label is (a complaint) or it was not read
    as a negative voice (not a complaint): what keeping the rules engine's answer risks."""
    if res.attribution.department_id != row.expected.department:
        return False
    if row.expected.negative:
        return res.root_cause.l2 == row.expected.l2
    return not res.root_cause.is_negative_voice


def kept_points(rows: list[EvalRow], result: BatchResult, cal: Calibration) -> tuple[list[float], list[bool]]:
    """Each rules result's calibrated label confidence and whether it was right (the cascade's view)."""
    by_id = {r.id: r for r in result.results}
    conf, right = [], []
    for row in rows:
        res = by_id.get(row.id)
        if res is None or res.engine != "rules":
            continue
        conf.append(cal.apply("label", res.root_cause.confidence))
        right.append(result_right(row, res))
    return conf, right


def measure(s: Samples, cal: Calibration | None) -> dict[str, FieldReliability]:
    """ECE per field for the raw scores and, with a map, for the calibrated confidence."""
    out: dict[str, FieldReliability] = {}
    for name in FIELDS:
        scores, right = s[name]
        shown = [cal.apply(name, x) for x in scores] if cal else scores
        out[name] = FieldReliability(
            rows=len(scores),
            accuracy=round(sum(right) / len(right), 4) if right else 0.0,
            ece_raw=expected_calibration_error(scores, right),
            ece_calibrated=expected_calibration_error(shown, right) if cal else None,
            bins=reliability(shown, right),
        )
    return out


def fit_calibration(deps: Deps, dataset: Path | str = DEFAULT_DATASET, split: str = "dev") -> Calibration:
    """Analyse ``split`` with raw scores and fit each field's map to how often it was right."""
    rows = load_dataset(dataset, split)
    result = raw_run(deps, rows, f"calibrate:{Path(dataset).name}:{split}")
    s = samples(rows, result)
    recipe: dict[str, str | int | None] = {
        "dataset": Path(dataset).name,
        "split": split,
        "rows": len(rows),
        "date": datetime.now(UTC).date().isoformat(),
        "seed": None,  # the fit is deterministic
        "taxonomy": deps.versions.get("taxonomy"),
        "service_matrix": deps.versions.get("service_matrix"),
        "embedder": deps.versions.get("embedder"),
    }
    cal = build_calibration(s, recipe)
    # The curve is read on the same rows through the fitted map (two parameters: little to overfit).
    return cal.model_copy(update={"curve": cascade_curve(*kept_points(rows, result, cal))})
