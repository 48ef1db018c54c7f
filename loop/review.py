"""The review queue's read of the warehouse: analysed complaints below a confidence, or flagged."""

from __future__ import annotations

from typing import Any

from loop.warehouse import Warehouse
from tools import injection


def candidates(warehouse: Warehouse, threshold: float, batch: str | None = None) -> list[dict[str, Any]]:
    """Every stored complaint (its latest version) whose label confidence is below ``threshold`` or
    whose text carried instructions aimed at a model, with its tracked problem's name; newest first.

    Complaints stored before the warehouse kept confidence (schema 6) have none and only enter when
    flagged."""
    if not warehouse.db.exists():
        return []
    where = "(c.label_confidence < ? OR c.flags LIKE ?)"
    args: list[Any] = [threshold, f'%"{injection.FLAG}"%']
    if batch is not None:
        where += " AND c.batch_id = ?"
        args.append(batch)
    with warehouse.db.connect() as conn:
        rows = conn.execute(
            "SELECT c.source, c.id, c.batch_id, c.period, c.text, c.negative, c.dimension, c.l2, c.l3, "
            "c.department_id, c.department, c.grade, c.priority, c.flags, c.tracked_id, c.label_confidence, "
            "c.department_confidence, c.grade_confidence, c.engine, c.updated_at, p.name AS problem_name "
            f"FROM complaints c LEFT JOIN problems p ON p.id = c.tracked_id WHERE {where} "
            "ORDER BY c.updated_at DESC, c.source, c.id",
            args,
        ).fetchall()
    return [dict(r) for r in rows]
