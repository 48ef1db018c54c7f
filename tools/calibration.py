"""Calibrated confidence: per field, a monotone map from the rules engine's raw score to the share right.

The raw scores (label, department, grade) keep steering the engines; only what a user reads is
mapped. Each map is Platt scaling, ``sigmoid(a * logit(raw) + b)`` with ``a >= 0``: two numbers
per field, fitted on the labelled set's dev split by ``voc eval --calibrate`` and kept with their
recipe in ``data/models/calibration.json``. Platt rather than isotonic regression: with about 200
rows an isotonic step function learns the dev rows by heart (in-sample error 0) and is far worse
on the holdout split.

The same file keeps the cascade curve: for each threshold on the calibrated label confidence, the
share of the calibration rows the rules engine keeps (confidence at or above it) and how often
those kept results were right (label and department). ``engine auto`` sends the complaints below
the threshold to the model; the review queue lists them. Both thresholds default to a point read
off this curve (see :func:`cascade_threshold` and :func:`review_threshold`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from tools.grade_reasons import grade_score
from tools.schema import Attribution, RootCause

CALIBRATION_FORMAT = 1
BINS = 10
CalibratedField = Literal["label", "department", "grade"]
FIELDS: tuple[CalibratedField, ...] = ("label", "department", "grade")
# Raw scores are clipped this far from 0 and 1 before the logit.
_EPS = 1e-3
log = logging.getLogger("voc.calibration")


def _logit(p: float) -> float:
    p = min(1 - _EPS, max(_EPS, p))
    return math.log(p / (1 - p))


class FieldMap(BaseModel):
    """One field's map: calibrated = sigmoid(a * logit(raw) + b)."""

    a: float = Field(ge=0, description="Slope on the raw score's logit; 0 means the raw score tells nothing.")
    b: float = Field(description="Intercept.")
    rows: int = Field(description="Rows it was fitted on.")
    accuracy: float = Field(description="Share right among those rows.")

    def apply(self, raw: float) -> float:
        return round(1 / (1 + math.exp(-(self.a * _logit(raw) + self.b))), 3)


# Thresholds tried for the cascade curve; a point keeping fewer rows than this is too noisy to steer by.
CURVE_STEP = 0.02
CURVE_MIN_ROWS = 20


class CurvePoint(BaseModel):
    """One threshold on the calibrated label confidence and what it would have done on the fit rows."""

    threshold: float = Field(description="Calibrated label confidence; below it a complaint is sent.")
    kept: int = Field(description="Rows at or above the threshold (kept by rules).")
    kept_share: float = Field(description="kept / rows.")
    kept_accuracy: float | None = Field(description="Share of kept rows right (label and department).")
    below: int = Field(description="Rows below the threshold (sent to the model).")
    below_accuracy: float | None = Field(description="Share of the rows below the threshold right.")


class Calibration(BaseModel):
    """The maps for label, department and grade confidence, and how they were made."""

    format: int = CALIBRATION_FORMAT
    version: str
    method: Literal["platt"] = "platt"
    recipe: dict[str, str | int | None] = Field(
        description="dataset, split, rows, date, seed (none: the fit is deterministic), data versions."
    )
    fields: dict[CalibratedField, FieldMap]
    curve: list[CurvePoint] = Field(
        default_factory=list, description="The cascade curve on the fit rows (empty in older files)."
    )

    def apply(self, name: CalibratedField, raw: float) -> float:
        return self.fields[name].apply(raw)


def load_calibration(path: Path) -> Calibration | None:
    """The maps in ``path``; None (raw scores shown) when the file is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        cal = Calibration.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        log.warning("calibration file %s unreadable, showing raw confidence: %s", path, exc)
        return None
    if cal.format != CALIBRATION_FORMAT or set(cal.fields) != set(FIELDS):
        log.warning("calibration file %s is for another format, showing raw confidence", path)
        return None
    return cal


def save_calibration(cal: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cal.model_dump_json(indent=1) + "\n", encoding="utf-8")


def raw_scores(cause: RootCause, attribution: Attribution) -> dict[CalibratedField, float]:
    """The rules engine's raw score behind each calibrated field."""
    return {
        "label": cause.confidence,
        "department": attribution.confidence,
        "grade": grade_score(cause.grade_reason, cause.confidence),
    }


def calibrate(
    cal: Calibration | None, cause: RootCause, attribution: Attribution
) -> tuple[RootCause, Attribution, float]:
    """Copies of a rules-engine result with calibrated confidences, and the grade's confidence.

    Without a calibration file the raw scores are shown as they are.
    """
    raw = raw_scores(cause, attribution)
    if cal is None:
        return cause, attribution, round(raw["grade"], 3)
    return (
        cause.model_copy(update={"confidence": cal.apply("label", raw["label"])}),
        attribution.model_copy(update={"confidence": cal.apply("department", raw["department"])}),
        cal.apply("grade", raw["grade"]),
    )


def fit_field(scores: Sequence[float], correct: Sequence[bool]) -> FieldMap:
    """Platt scaling of one field, deterministic; a slope that would turn negative is held at 0."""
    from sklearn.linear_model import LogisticRegression

    n, right = len(scores), sum(correct)
    # With one class only (or none) there is nothing to order: the smoothed share right, flat.
    if n == 0 or right in (0, n):
        return FieldMap(a=0.0, b=_logit((right + 1) / (n + 2)), rows=n, accuracy=right / n if n else 0.0)
    x = [[_logit(s)] for s in scores]
    # Weak regularisation: two parameters on a few hundred rows need little.
    model = LogisticRegression(C=100.0).fit(x, [int(c) for c in correct])
    a, b = float(model.coef_[0][0]), float(model.intercept_[0])
    if a < 0:
        a, b = 0.0, _logit(right / n)
    return FieldMap(a=round(a, 6), b=round(b, 6), rows=n, accuracy=round(right / n, 4))


def build_calibration(
    samples: dict[CalibratedField, tuple[list[float], list[bool]]], recipe: dict[str, str | int | None]
) -> Calibration:
    """Fit every field's map and name the result by its content."""
    fields = {name: fit_field(*samples[name]) for name in FIELDS}
    body = json.dumps({k: v.model_dump() for k, v in fields.items()}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()[:8]
    version = f"platt-{recipe.get('split')}-{recipe.get('rows')}-{digest}"
    return Calibration(version=version, recipe=recipe, fields=fields)


class Bin(BaseModel):
    """One reliability bin: its confidence range, rows, mean confidence and share right."""

    low: float
    high: float
    rows: int
    confidence: float
    accuracy: float


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> list[Bin]:
    """Equal-width bins over [0, 1]; only populated bins are listed."""
    out = []
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        idx = [i for i, c in enumerate(confidence) if lo <= c < hi or (k == bins - 1 and c == hi)]
        if idx:
            out.append(
                Bin(
                    low=lo,
                    high=hi,
                    rows=len(idx),
                    confidence=round(sum(confidence[i] for i in idx) / len(idx), 4),
                    accuracy=round(sum(bool(correct[i]) for i in idx) / len(idx), 4),
                )
            )
    return out


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS
) -> float:
    """ECE: the rows-weighted mean gap between confidence and share right over the bins."""
    n = len(confidence)
    gaps = [b.rows / n * abs(b.confidence - b.accuracy) for b in reliability(confidence, correct, bins)]
    return round(sum(gaps), 4) if n else 0.0


def cascade_curve(confidence: Sequence[float], correct: Sequence[bool]) -> list[CurvePoint]:
    """Kept share and kept accuracy at every threshold step, from the fit rows' calibrated label
    confidence and whether each result was right."""
    n = len(confidence)
    out = []
    for k in range(round(1 / CURVE_STEP) + 1):
        t = round(k * CURVE_STEP, 4)
        kept = [bool(correct[i]) for i in range(n) if confidence[i] >= t]
        below = [bool(correct[i]) for i in range(n) if confidence[i] < t]
        out.append(
            CurvePoint(
                threshold=t,
                kept=len(kept),
                kept_share=round(len(kept) / n, 4) if n else 0.0,
                kept_accuracy=round(sum(kept) / len(kept), 4) if kept else None,
                below=len(below),
                below_accuracy=round(sum(below) / len(below), 4) if below else None,
            )
        )
    return out


def threshold_from_curve(curve: Sequence[CurvePoint], target: float) -> float | None:
    """The lowest threshold from which kept accuracy stays at or above ``target`` at every higher
    step that still keeps enough rows to read; None when no step does."""
    steady = [p for p in curve if p.kept >= CURVE_MIN_ROWS and p.kept_accuracy is not None]
    chosen = None
    for p in reversed(steady):
        if p.kept_accuracy is None or p.kept_accuracy < target:
            break
        chosen = p.threshold
    return chosen


def cascade_threshold(cal: Calibration | None, explicit: float | None, target: float) -> tuple[float, str]:
    """The cascade threshold in force and where it came from.

    An explicit setting wins; else the curve's point for ``target``; without a curve (an older
    file, or none) the target itself, as the calibrated confidence is the chance a result is right.
    """
    if explicit is not None:
        return explicit, "VOC_CASCADE_THRESHOLD"
    if cal is not None and cal.curve:
        found = threshold_from_curve(cal.curve, target)
        if found is not None:
            return found, f"calibration {cal.version}, kept accuracy >= {target}"
        return 1.0, f"calibration {cal.version}: no threshold reaches {target}; every complaint is sent"
    return target, f"no calibration curve; confidence below the target {target}"


def review_threshold(
    cal: Calibration | None, explicit: float | None, below_accuracy: float, cascade: float
) -> tuple[float, str]:
    """The review threshold in force and where it came from: an explicit setting, else the highest
    step (not above ``cascade``) below which results were right at most ``below_accuracy`` of the
    time, else ``below_accuracy`` itself read as a calibrated confidence."""
    if explicit is not None:
        return explicit, "VOC_REVIEW_THRESHOLD"
    if cal is not None and cal.curve:
        fits = [
            p.threshold
            for p in cal.curve
            if p.threshold <= cascade
            and p.below >= CURVE_MIN_ROWS
            and p.below_accuracy is not None
            and p.below_accuracy <= below_accuracy
        ]
        if fits:
            return max(fits), f"calibration {cal.version}, below it right <= {below_accuracy}"
    return min(below_accuracy, cascade), f"{below_accuracy} read as a calibrated confidence (no curve point)"
