"""The graph state's typed records name exactly the keys the nodes write."""

from __future__ import annotations

import pytest
from langgraph.runtime import Runtime
from pydantic import BaseModel

from graph.build import attribute_and_trace
from graph.run import prepare_batch
from graph.state import (
    ChunkOutput,
    ChunkTask,
    ComplaintRecord,
    ErrorRecord,
    LabelSpikeRecord,
    ProblemRecord,
    ProcessedRecord,
    ProposalRecord,
    ResultRecord,
)
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.schema import Complaint, ComplaintResult, LabelSpike, Problem, Proposal, RowError


def keys(record: type) -> set[str]:
    return set(record.__required_keys__) | set(record.__optional_keys__)


@pytest.mark.parametrize(
    ("record", "model"),
    [
        (ComplaintRecord, Complaint),
        (ErrorRecord, RowError),
        (ResultRecord, ComplaintResult),
        (ProblemRecord, Problem),
        (ProposalRecord, Proposal),
        (LabelSpikeRecord, LabelSpike),
    ],
)
def test_a_record_has_the_fields_of_the_model_it_carries(record: type, model: type[BaseModel]) -> None:
    assert keys(record) == set(model.model_fields)


def test_a_chunk_task_writes_the_keys_of_its_records(deps: Deps, sample_records: list[dict]) -> None:
    prepared = prepare_batch(rows_from_records(sample_records[:3]), deps)
    task = ChunkTask(chunk=0, complaints=[c.model_dump(mode="json") for c in prepared.complaints])
    out = attribute_and_trace(task, Runtime(context=deps))
    assert set(out) <= keys(ChunkOutput)
    assert len(out["processed"]) == 3
    for processed in out["processed"]:
        assert set(processed) == keys(ProcessedRecord)
