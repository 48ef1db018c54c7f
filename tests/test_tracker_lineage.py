"""A problem that splits off another, and two that grow together, are recorded as lineage: the ids a
user already knows never change silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loop.queries import TrackingReader
from loop.space import TrackingSpace
from loop.tracker import Tracker, TrackingRules, TrackItem
from loop.warehouse import Warehouse

RULES = TrackingRules(
    assign_similarity=0.9,
    match_similarity=0.8,
    related_similarity=0.6,
    merge_similarity=0.75,
    distance_threshold=0.3,
    min_cluster=2,
)
SPACE = TrackingSpace(center=np.zeros(2, np.float32), dimensions=("机",), labels=())


def items(period: str, direction: tuple[float, float], n: int, start: int) -> list[TrackItem]:
    vec = np.array(direction, np.float32)
    return [
        TrackItem(
            id=f"c{start + i}",
            text=f"{period} complaint {start + i}",
            period=period,
            received_at=None,
            customer_id=f"u{start + i}",
            negative=True,
            dimension=None,
            l2=None,
            l3=None,
            department_id="it",
            department="信息科技部",
            grade="重要",
            priority="P2",
            severity=50.0,
            flags=[],
            vector=vec,
            read_hash=f"h{start + i}",
        )
        for i in range(n)
    ]


def test_a_split_and_a_merge_are_on_record(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.db")
    tracker = Tracker(warehouse, SPACE, RULES, embedder="test")
    batches = [
        items("2026-01", (1.0, 0.0), 3, 0),  # opens TP-0001
        items("2026-02", (1.0, 1.0), 3, 10),  # 0.71 from TP-0001: a new problem that split from it
        items("2026-03", (1.0, 0.6), 3, 20),  # joins TP-0002 and pulls it within 0.75 of TP-0001
    ]
    outcomes = []
    for batch in batches:
        with warehouse.connect() as conn:
            outcomes.append(tracker.track(conn, batch, source="default", batch_id=batch[0].period))
    assert outcomes[0].opened == ["TP-0001"]
    assert outcomes[1].opened == ["TP-0002"]
    assert outcomes[2].merged == [("TP-0002", "TP-0001")]
    # Every complaint now belongs to the older id, and both records say what happened.
    assert set(outcomes[2].tracked_of.values()) == {"TP-0001"}
    with warehouse.connect() as conn:
        assert {r[0] for r in conn.execute("SELECT DISTINCT tracked_id FROM complaints")} == {"TP-0001"}
    detail = TrackingReader(warehouse).problem("TP-0001")
    assert detail is not None
    kinds = {(ln.kind, ln.problem_id, ln.related_id) for ln in detail.lineage}
    assert ("split_from", "TP-0002", "TP-0001") in kinds
    assert ("merged_into", "TP-0002", "TP-0001") in kinds
