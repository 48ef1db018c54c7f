"""``run_batch``: the one entry into the core for every door (CLI, HTTP, MCP)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from agents.attribution import canonical_channel
from graph.build import build_graph
from graph.checkpoints import Saver, open_saver
from graph.learning import feedback_version
from graph.state import BatchState, ComplaintRecord, ErrorRecord
from tools.deps import Deps
from tools.ingest import RawRow, prepare
from tools.schema import (
    BatchResult,
    Complaint,
    ComplaintResult,
    LabelSpike,
    Problem,
    RowError,
    RunStats,
)

Progress = Callable[[str, int, int], None]
STAGES = ("ingest", "attribute_and_trace", "analyze", "remediate", "track", "report")


def batch_id_for(complaints: list[Complaint], deps: Deps, track_source: str | None = None) -> str:
    """A deterministic id from the accepted (masked) content and the data versions, so
    rerunning the same input resumes or reuses its checkpoint instead of starting over.
    A tracked run is another batch than an untracked one, and than one tracked under another source;
    a run after reviewers' corrections changed (their version) is another batch too."""
    h = hashlib.sha256()
    for c in complaints:
        h.update(c.model_dump_json().encode())
    h.update(json.dumps(deps.versions, sort_keys=True).encode())
    if track_source is not None:
        h.update(f"track:{track_source}".encode())
    feedback = feedback_version(deps)
    if feedback is not None:
        h.update(f"feedback:{feedback}".encode())
    return "b-" + h.hexdigest()[:16]


@contextmanager
def open_checkpointer(deps: Deps) -> Iterator[Saver]:
    """The checkpointer of ``deps.settings`` (SQLite in ``VOC_HOME``, or Postgres); a thread per batch."""
    with open_saver(deps.settings, fence=deps.batch_owner) as saver:
        assert saver is not None
        yield saver


@dataclass
class PreparedBatch:
    """A batch after validation and masking: safe to store, log or queue."""

    complaints: list[Complaint]
    errors: list[RowError]
    received: int
    prepare_seconds: float = 0.0
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def prepare_batch(rows: list[RawRow], deps: Deps) -> PreparedBatch:
    """Validate, normalise and mask rows; nothing raw survives past this call."""
    t0 = time.perf_counter()
    started_at = datetime.now(UTC).isoformat()
    index = deps.indexes["attribution"]
    complaints, errors = prepare(
        rows,
        canonical_channel=lambda v: canonical_channel(index, v),
        max_text_chars=deps.settings.max_text_chars,
    )
    return PreparedBatch(complaints, errors, len(rows), time.perf_counter() - t0, started_at)


def run_batch(
    rows: list[RawRow],
    deps: Deps,
    *,
    source: str | None = None,
    batch_id: str | None = None,
    fresh: bool = False,
    on_progress: Progress | None = None,
    track: bool | None = None,
    track_source: str | None = None,
) -> BatchResult:
    """Validate, mask and analyse a batch; resume it from its checkpoint if it was interrupted."""
    prepared = prepare_batch(rows, deps)
    return run_prepared(
        prepared,
        deps,
        source=source,
        batch_id=batch_id,
        fresh=fresh,
        on_progress=on_progress,
        track=track,
        track_source=track_source,
    )


def run_prepared(
    prepared: PreparedBatch,
    deps: Deps,
    *,
    source: str | None = None,
    batch_id: str | None = None,
    fresh: bool = False,
    on_progress: Progress | None = None,
    track: bool | None = None,
    track_source: str | None = None,
    keep_history: bool = False,
) -> BatchResult:
    """Analyse an already prepared batch; with a known ``batch_id`` an interrupted run resumes.

    ``keep_history`` leaves every checkpoint of the run in place (otherwise only the newest is kept).

    ``track`` (default: ``VOC_TRACK``, on) keeps the batch in the warehouse under ``track_source``
    (default ``default``): the id a complaint has within its source is its identity over time."""
    complaints, errors = prepared.complaints, prepared.errors
    tracking = deps.settings.track if track is None else track
    source_key = (track_source or "default") if tracking else None
    batch_id = batch_id or batch_id_for(complaints, deps, source_key)
    total = len(complaints)
    config: dict[str, Any] = {
        "configurable": {"thread_id": batch_id},
        "recursion_limit": deps.settings.recursion_limit,
        # Chunk tasks queued for other workers only wait here: let enough of them be in flight.
        "max_concurrency": deps.settings.max_concurrency if deps.chunk_queue is None else 64,
    }
    with open_checkpointer(deps) as saver:
        graph = build_graph(saver)
        if fresh:
            saver.delete_thread(batch_id)
        snapshot = graph.get_state(config)
        finished = bool(snapshot.values.get("stats")) and not snapshot.next
        resumed = bool(snapshot.next)
        if not finished:
            done = len(snapshot.values.get("processed", []))
            if on_progress:
                on_progress("attribute_and_trace", done, total)
            payload: BatchState | None = (
                None
                if resumed
                else {
                    "batch_id": batch_id,
                    "started_at": prepared.started_at,
                    "source": source,
                    "received": prepared.received,
                    "complaints": [cast(ComplaintRecord, c.model_dump(mode="json")) for c in complaints],
                    "errors": [cast(ErrorRecord, e.model_dump(mode="json")) for e in errors],
                    "timings": {"ingest": prepared.prepare_seconds},
                    "track": tracking,
                    "track_source": source_key or "default",
                }
            )
            for update in graph.stream(
                payload, config, context=deps, stream_mode="updates", durability="sync"
            ):
                for node, value in update.items():
                    if node == "attribute_and_trace" and value:
                        done += len(value.get("processed", []))
                        if on_progress:
                            on_progress(node, done, total)
                    elif on_progress and node in STAGES:
                        on_progress(node, 1, 1)
        state = graph.get_state(config).values
        if not finished and not keep_history:
            saver.compact(batch_id)
    return _result(state, resumed=resumed, reused=finished)


def _result(state: BatchState, *, resumed: bool, reused: bool) -> BatchResult:
    stats = RunStats.model_validate(state["stats"])
    stats.resumed = resumed
    stats.reused = reused
    return BatchResult(
        batch_id=state["batch_id"],
        results=[ComplaintResult.model_validate(r) for r in state.get("results", [])],
        problems=[Problem.model_validate(p) for p in state.get("problems", [])],
        label_spikes=[LabelSpike.model_validate(s) for s in state.get("label_spikes", [])],
        errors=[RowError.model_validate(e) for e in state.get("errors", [])],
        stats=stats,
    )
