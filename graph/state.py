"""Graph state: only serialisable data; keys written by parallel branches have reducers."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def add_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Sum per-stage seconds reported by parallel tasks."""
    out = dict(left or {})
    for k, v in (right or {}).items():
        out[k] = round(out.get(k, 0.0) + v, 4)
    return out


class BatchState(TypedDict, total=False):
    """The state of one batch run (one checkpoint thread)."""

    batch_id: str
    started_at: str
    source: str | None
    received: int
    complaints: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    # One record per complaint from the attribution+tracing fan-out:
    # {"id", "attribution", "root_cause", "vector": float16 bytes, "engine"}.
    processed: Annotated[list[dict[str, Any]], operator.add]
    results: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    label_spikes: list[dict[str, Any]]
    centroids: dict[str, bytes]
    as_of: str
    proposals: Annotated[list[dict[str, Any]], operator.add]
    timings: Annotated[dict[str, float], add_timings]
    # LLM counters (calls, requests, tokens, fallbacks...) summed over parallel tasks.
    llm_usage: Annotated[dict[str, float], add_timings]
    stats: dict[str, Any]


class ChunkTask(TypedDict):
    """Input of one attribution+tracing task."""

    chunk: int
    complaints: list[dict[str, Any]]


class RemediationTask(TypedDict):
    """Input of one remediation task."""

    problem: dict[str, Any]
    centroid: bytes
    as_of: str
