"""Labelled evaluation datasets: loading, splitting, and the facts a dataset implies."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from evals.scoring import EvalRow
from tools.ingest import FIELDS, RawRow

DATASETS = Path(__file__).resolve().parent / "datasets"
DEFAULT_DATASET = DATASETS / "dev.jsonl"
# What a user would submit: exactly the fields ingest reads.
INPUT_FIELDS = FIELDS


def load_dataset(path: Path | str = DEFAULT_DATASET, split: str = "all") -> list[EvalRow]:
    """Rows of a labelled dataset; ``split`` is dev, holdout or all."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        row = EvalRow(
            id=rec["id"],
            text=rec["text"],
            lang=rec.get("lang", "zh"),
            split=rec.get("split", "dev"),
            expected=rec["expected"],
            record={k: rec[k] for k in INPUT_FIELDS if k in rec},
        )
        if split in ("all", row.split):
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows for split {split!r}")
    return rows


def to_raw_rows(rows: list[EvalRow]) -> list[RawRow]:
    """What a user would submit: the input fields only, never the labels."""
    return [RawRow(i, dict(r.record)) for i, r in enumerate(rows, start=1)]


def fund_safety_theme(rows: list[EvalRow]) -> str | None:
    """The theme whose members are mostly graded 特急."""
    grades: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r.expected.theme:
            grades[r.expected.theme][r.expected.grade] += 1
    best = [(c["特急"] / sum(c.values()), t) for t, c in grades.items() if c["特急"]]
    return max(best)[1] if best else None


def spike_theme(rows: list[EvalRow]) -> str | None:
    """The theme that grows most from the previous month to the last one."""
    months: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        when = r.record.get("received_at")
        if r.expected.theme and when:
            months[r.expected.theme][str(when)[:7]] += 1
    periods = sorted({m for c in months.values() for m in c})
    if len(periods) < 2:
        return None
    prev, cur = periods[-2], periods[-1]
    growth = [((c[cur] + 1) / (c[prev] + 1), t) for t, c in months.items() if c[cur] >= 5]
    best = max(growth) if growth else None
    return best[1] if best and best[0] >= 2 else None
