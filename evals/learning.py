"""``voc eval --learning-curve``: accuracy on a fixed test part after 0, 25, 50, 100 and 200 reviewers'
corrections drawn (seeded) from the rest of the labelled dataset.

The corrections go through the same mechanism a reviewer uses (``services.feedback`` in a temporary
``VOC_HOME``): the pool is analysed and kept in that home's warehouse once (its vectors cached), each
step imports the next corrections, and the test part is analysed again; after its first run its
vectors come from the cache, so a step costs the analysis, not the embedding.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from evals.dataset import DEFAULT_DATASET, load_dataset, to_raw_rows
from evals.scoring import EvalRow
from graph.run import run_batch
from services.feedback import FeedbackService
from tools.audit import Actor, AuditLog
from tools.deps import Deps
from tools.ingest import RawRow
from tools.schema import BatchResult
from tools.sql import database

STEPS = (0, 25, 50, 100, 200)
SEED = 14
CURVE_ACTOR = Actor("system:learning-curve", "cli")


class CurvePoint(BaseModel):
    corrections: int = Field(description="Corrections in force when the test part was analysed.")
    l2_accuracy: float = Field(description="On the test part's negative voices, as voc eval counts it.")
    department_accuracy: float = Field(description="On every test row.")
    grade_accuracy: float = Field(description="On the test part's negative voices.")
    followed: dict[str, int] = Field(
        default_factory=dict, description="Test results that kept a correction: duplicate, near_duplicate."
    )
    seconds: float = Field(description="Importing this step's corrections and analysing the test part.")


class LearningCurve(BaseModel):
    dataset: str
    seed: int
    test_rows: int
    pool_rows: int
    points: list[CurvePoint]
    setup_seconds: float = Field(description="Analysing and keeping the pool once (embedding it).")
    seconds: float


def _acc(pairs: list[tuple[str, str | None]]) -> float:
    return round(sum(a == b for a, b in pairs) / len(pairs), 4) if pairs else 0.0


def _point(k: int, test: list[EvalRow], result: BatchResult, seconds: float) -> CurvePoint:
    got = {r.id: r for r in result.results}
    scored = [(row, got[row.id]) for row in test if row.id in got]
    neg = [(row, res) for row, res in scored if row.expected.negative]
    return CurvePoint(
        corrections=k,
        l2_accuracy=_acc([(row.expected.l2, res.root_cause.l2) for row, res in neg]),
        department_accuracy=_acc([(r.expected.department, s.attribution.department_id) for r, s in scored]),
        grade_accuracy=_acc([(row.expected.grade, res.root_cause.grade) for row, res in neg]),
        followed={k: v for k, v in (result.stats.feedback or {}).items() if k != "loaded"},
        seconds=round(seconds, 2),
    )


def _correction(row: EvalRow, n: int) -> RawRow:
    """What a reviewer would record for a pool row: its labelled answer (a non-complaint keeps only
    its department: a label would make it a negative voice)."""
    rec = {"id": row.id, "source": "curve-pool", "department": row.expected.department}
    if row.expected.negative:
        rec.update(l2=row.expected.l2, grade=row.expected.grade)
    return RawRow(n, rec)


def learning_curve(
    deps: Deps, dataset: Path | str = DEFAULT_DATASET, steps: tuple[int, ...] = STEPS, seed: int = SEED
) -> LearningCurve:
    """Run the curve in a temporary home; the user's warehouse is never touched."""
    t_start = time.perf_counter()
    rows = load_dataset(dataset, "all")
    order = list(rows)
    random.Random(seed).shuffle(order)
    n_test = max(len(rows) // 4, len(rows) - max(steps))
    test, pool = order[:n_test], order[n_test:]
    points: list[CurvePoint] = []
    with tempfile.TemporaryDirectory(prefix="voc-curve-") as tmp:
        home = Path(tmp)
        local = dataclasses.replace(
            deps, settings=deps.settings.model_copy(update={"home": home}), indexes=dict(deps.indexes)
        )
        service = FeedbackService(local.settings, AuditLog(database(local.settings, "audit")))
        t0 = time.perf_counter()
        run_batch(to_raw_rows(pool), local, track=True, track_source="curve-pool")
        setup = time.perf_counter() - t0
        done = 0
        for k in steps:
            t1 = time.perf_counter()
            wanted = min(k, len(pool))
            if wanted > done:
                batch = [_correction(r, i) for i, r in enumerate(pool[done:wanted], 1)]
                service.import_rows(CURVE_ACTOR, batch)
                done = wanted
            result = run_batch(to_raw_rows(test), local, track=True, track_source="curve-test")
            points.append(_point(done, test, result, time.perf_counter() - t1))
    return LearningCurve(
        dataset=str(dataset),
        seed=seed,
        test_rows=len(test),
        pool_rows=len(pool),
        points=points,
        setup_seconds=round(setup, 2),
        seconds=round(time.perf_counter() - t_start, 2),
    )
