"""The batch graph's nodes and wiring: ingest, attribute_and_trace per chunk, analyze, remediate, report."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from agents import analysis, cascade
from agents.analysis import PRIORITIES, Item
from agents.attribution import attribute
from agents.remediation import propose
from agents.tracing import trace
from graph import checkpoints
from graph.learning import apply_owners, apply_taught, learned_for
from graph.state import (
    BatchState,
    ChunkOutput,
    ChunkTask,
    LabelSpikeRecord,
    ProblemRecord,
    ProcessedRecord,
    ProposalRecord,
    RemediationTask,
    ResultRecord,
)
from graph.track import track
from loop.vectors import embed_cached
from loop.warehouse import Warehouse
from tools import injection
from tools.calibration import calibrate
from tools.deps import Deps
from tools.embeddings import from_bytes, to_bytes
from tools.schema import (
    Attribution,
    CascadeStats,
    ClusterCut,
    Complaint,
    ComplaintResult,
    LLMStats,
    Problem,
    Proposal,
    RootCause,
    RunStats,
    TrackingSummary,
)
from tools.sql import database


def _batch(runtime: Runtime[Deps]) -> str | None:
    """The batch's checkpoint thread: the key its parallel tasks share a token budget under."""
    info = runtime.execution_info
    return info.thread_id if info else None


def ingest(state: BatchState, runtime: Runtime[Deps]) -> BatchState:
    """Complaints arrive validated and masked (see run.py); record the batch's reference date."""
    latest = max((at for c in state.get("complaints", []) if (at := c.get("received_at"))), default=None)
    as_of = datetime.fromisoformat(latest).date() if latest else date.today()
    return {"as_of": as_of.isoformat()}


def route_chunks(state: BatchState, runtime: Runtime[Deps]) -> list[Send] | Literal["analyze"]:
    """Fan out one task per chunk of complaints, or go straight on when there are none."""
    complaints = state.get("complaints", [])
    if not complaints:
        return "analyze"
    size = runtime.context.settings.chunk_size
    return [
        Send(
            "attribute_and_trace",
            ChunkTask(
                chunk=i // size,
                complaints=complaints[i : i + size],
                track=state.get("track", False),
                source=state.get("track_source") or "default",
            ),
        )
        for i in range(0, len(complaints), size)
    ]


def attribute_and_trace(state: ChunkTask, runtime: Runtime[Deps]) -> ChunkOutput:
    """Embed a chunk once, trace each complaint's root cause, then attribute its owner; or, when a
    worker drives the batch, have any worker do it (graph/chunk_queue.py)."""
    deps = runtime.context
    thread = _batch(runtime)
    if thread is not None:
        stored = checkpoints.load_chunk(checkpoints.ledger(deps.settings), thread, state["chunk"])
        if stored is not None:  # finished before the batch was interrupted
            return stored
        if deps.chunk_queue is not None:
            deps.chunk_queue.submit(thread, state, owner=deps.batch_owner)
            # Not copied into the ledger: the done chunk task is already the durable copy (a resumed
            # batch finds it there), and a second write per chunk only adds a row lock that a
            # frozen driver could hold against the one that took its batch over.
            return cast(ChunkOutput, deps.chunk_queue.wait(thread, state["chunk"], owner=deps.batch_owner))
    return compute_chunk(state, deps, thread)


def compute_chunk(state: ChunkTask, deps: Deps, thread: str | None) -> ChunkOutput:
    """The work of one chunk task, wherever it runs (the driver, or a worker that claimed it)."""
    # The agents read the text with any instructions aimed at a model blanked out.
    complaints, blanked = injection.for_reading([Complaint.model_validate(c) for c in state["complaints"]])
    t0 = time.perf_counter()
    # An untracked run reads the cache if there is one, and creates nothing.
    keep = state.get("track", False)
    store = database(deps.settings, "warehouse")
    warehouse = Warehouse(store) if keep or store.exists() else None
    vectors, read_hashes, reused = embed_cached(
        deps.embedder, warehouse, [c.text for c in complaints], keep=keep
    )
    t1 = time.perf_counter()
    log = None
    if deps.llm is not None:
        from agents.triage import new_log

        log = new_log(deps, thread)
    learned = learned_for(deps, warehouse)
    if log is not None and deps.settings.cascade:
        causes, owners = cascade.trace_and_attribute(complaints, vectors, deps, log, learned)
    else:
        causes = trace(complaints, vectors, deps, log, learned)
    matches: list[Any] = [None] * len(complaints)
    if learned is not None:
        masked = [c["text"] for c in state["complaints"]]  # the text as stored, not as read
        ids = [c.id for c in complaints]
        matches = apply_taught(learned, deps, state.get("source"), ids, masked, vectors, causes)
    t2 = time.perf_counter()
    if not (log is not None and deps.settings.cascade):
        owners = attribute(complaints, vectors, causes, deps, log, learned)
    notes = apply_owners(learned, deps, matches, causes, owners) if learned is not None else matches
    t3 = time.perf_counter()
    processed = [
        ProcessedRecord(
            id=c.id,
            root_cause=rc.model_dump(mode="json"),
            attribution=at.model_dump(mode="json"),
            vector=to_bytes(v),
            engine=log.engine(c.id) if log else "rules",
            engine_note=log.engine_note(c.id) if log else None,
            flags=[injection.FLAG] if spans else [],
            blanked=[list(span) for span in spans],
            read_hash=key,
            corrected=note.model_dump(mode="json") if note is not None else None,
        )
        for c, rc, at, v, spans, key, note in zip(
            complaints, causes, owners, vectors, blanked, read_hashes, notes, strict=True
        )
    ]
    out = ChunkOutput(
        processed=processed,
        timings={"embed": t1 - t0, "trace": t2 - t1, "attribute": t3 - t2},
        vectors_reused=reused,
    )
    if learned is not None:
        hits = Counter(n.match for n in notes if n is not None)
        out["feedback_hits"] = {"loaded": 0.0, **{k: float(v) for k, v in hits.items()}}
        if state["chunk"] == 0:
            out["feedback_hits"]["loaded"] = float(len(learned))
    if log is not None:
        out["llm_usage"] = log.meter.usage()
    if thread is not None and deps.chunk_queue is None:
        checkpoints.save_chunk(checkpoints.ledger(deps.settings), thread, state["chunk"], out)
    return out


def analyze(state: BatchState, runtime: Runtime[Deps]) -> BatchState:
    """Score, cluster and rank; priorities come from the configured matrix only."""
    t0 = time.perf_counter()
    deps = runtime.context
    by_id = {p["id"]: p for p in state.get("processed", [])}
    complaints = [Complaint.model_validate(raw) for raw in state.get("complaints", [])]
    texts = {c.id: c.text for c in complaints}
    items = []
    # The same reading the chunk tasks had, from the spans they found.
    spans = [[(a, b) for a, b in by_id[c.id].get("blanked", [])] for c in complaints]
    for c in injection.reread(complaints, spans):
        p = by_id[c.id]
        items.append(
            Item(
                complaint=c,
                attribution=Attribution.model_validate(p["attribution"]),
                cause=RootCause.model_validate(p["root_cause"]),
                vector=from_bytes(p["vector"]),
            )
        )
    meter = deps.llm.meter(_batch(runtime)) if deps.llm is not None else None
    out = analysis.analyze(items, deps, meter)
    usage = meter.usage() if meter is not None else {}

    def shown(c: Complaint) -> dict[str, Any]:
        return dict(by_id[c.id])

    results = [
        ComplaintResult(
            id=it.complaint.id,
            row=it.complaint.row,
            text=texts[it.complaint.id],
            period=it.complaint.period,
            customer_segment=it.complaint.customer_segment,
            **shown_confidence(deps, it, shown(it.complaint)["engine"], shown(it.complaint).get("corrected")),
            severity=out.severities[it.complaint.id],
            priority=out.priorities[it.complaint.id],
            problem_id=out.problem_of.get(it.complaint.id),
            duplicate_of=it.complaint.duplicate_of,
            engine=by_id[it.complaint.id]["engine"],
            engine_note=by_id[it.complaint.id].get("engine_note"),
            flags=by_id[it.complaint.id].get("flags", []),
            corrected=by_id[it.complaint.id].get("corrected"),
        ).model_dump(mode="json")
        for it in items
    ]
    update: BatchState = {
        "results": [cast(ResultRecord, r) for r in results],
        "problems": [cast(ProblemRecord, p.model_dump(mode="json")) for p in out.problems],
        "label_spikes": [cast(LabelSpikeRecord, s.model_dump(mode="json")) for s in out.label_spikes],
        "centroids": {pid: to_bytes(v) for pid, v in out.centroids.items()},
        "timings": {"analyze": time.perf_counter() - t0},
    }
    if out.clustering is not None:
        update["clustering"] = out.clustering.model_dump(mode="json")
    if usage:
        update["llm_usage"] = usage
    return update


def shown_confidence(
    deps: Deps, it: Item, engine: str, corrected: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Attribution and root cause as shown, with calibrated confidence (rules results only).

    The maps were fitted on the rules engine's scores; a model's own confidence is shown as it
    gave it, and its grade has none. A field a reviewer corrected is shown with the confidence of
    the match: 1.0 for the complaint itself or the same text, the cosine for a near-duplicate.
    """
    if engine != "rules":
        cause, attribution, grade = it.cause, it.attribution, None
    else:
        cause, attribution, grade = calibrate(deps.calibration, it.cause, it.attribution)
    if corrected:
        sure, fields = float(corrected["similarity"]), corrected["fields"]
        if "l2" in fields:
            cause = cause.model_copy(update={"confidence": sure})
        if "department" in fields:
            attribution = attribution.model_copy(update={"confidence": sure})
        if "grade" in fields:
            grade = sure
    return {"attribution": attribution, "root_cause": cause, "grade_confidence": grade}


def route_problems(state: BatchState, runtime: Runtime[Deps]) -> list[Send] | Literal["track"]:
    """Fan out one remediation task per top problem at or above the configured priority."""
    limits = runtime.context.scoring.remediation
    cutoff = PRIORITIES.index(limits.min_priority)
    chosen = [p for p in state.get("problems", []) if PRIORITIES.index(p["priority"]) <= cutoff]
    chosen = chosen[: limits.max_proposals]
    if not chosen:
        return "track"
    return [
        Send(
            "remediate",
            RemediationTask(problem=p, centroid=state["centroids"][p["id"]], as_of=state["as_of"]),
        )
        for p in chosen
    ]


def remediate(state: RemediationTask, runtime: Runtime[Deps]) -> BatchState:
    """Write the remediation proposal for one problem."""
    t0 = time.perf_counter()
    deps = runtime.context
    problem = Problem.model_validate(state["problem"])
    meter = deps.llm.meter(_batch(runtime)) if deps.llm is not None else None
    proposal = propose(
        problem, from_bytes(state["centroid"]), date.fromisoformat(state["as_of"]), deps, meter
    )
    out: BatchState = {
        "proposals": [cast(ProposalRecord, proposal.model_dump(mode="json"))],
        "timings": {"remediate": time.perf_counter() - t0},
    }
    if meter is not None:
        out["llm_usage"] = meter.usage()
    return out


def report(state: BatchState, runtime: Runtime[Deps]) -> BatchState:
    """Attach proposals to their problems and compute the run statistics."""
    deps = runtime.context
    proposals = {p["problem_id"]: Proposal.model_validate(p) for p in state.get("proposals", [])}
    problems: list[ProblemRecord] = []
    for raw in state.get("problems", []):
        prob = Problem.model_validate(raw)
        prob.proposal = proposals.get(prob.id)
        problems.append(cast(ProblemRecord, prob.model_dump(mode="json")))
    results = state.get("results", [])
    errors = state.get("errors", [])
    engines = Counter(r["engine"] for r in results)
    periods = sorted({period for r in results if (period := r.get("period"))})
    counts = {
        "received": state.get("received", 0),
        "accepted": len(results),
        "rejected": sum(1 for e in errors if e.get("severity", "error") == "error"),
        "warnings": sum(1 for e in errors if e.get("severity") == "warning"),
        "negative_voices": sum(1 for r in results if r["root_cause"]["is_negative_voice"]),
        "duplicates": sum(1 for r in results if r.get("duplicate_of")),
        "grouped": sum(1 for r in results if r.get("problem_id")),
        "problems": len(problems),
        "proposals": len(proposals),
        "pii_masked": sum(c.get("pii_masked", 0) for c in state.get("complaints", [])),
        "injection_flagged": sum(1 for r in results if injection.FLAG in r.get("flags", [])),
    }
    started = datetime.fromisoformat(state["started_at"])
    finished = datetime.now(UTC)
    seconds = max((finished - started).total_seconds(), 1e-6)
    stats = RunStats(
        batch_id=state["batch_id"],
        source=state.get("source"),
        started_at=started,
        finished_at=finished,
        seconds=round(seconds, 3),
        complaints_per_second=round(len(results) / seconds, 2),
        counts=counts,
        timings=state.get("timings", {}),
        engine_use=dict(engines),
        versions=deps.versions,
        periods=periods,
        tracking=TrackingSummary.model_validate(state["tracking"]) if state.get("tracking") else None,
        clustering=ClusterCut.model_validate(state["clustering"]) if state.get("clustering") else None,
        feedback={k: int(v) for k, v in hits.items()} if (hits := state.get("feedback_hits")) else None,
    )
    if deps.llm is not None:
        deps.llm.close(_batch(runtime))
        stats.llm = llm_stats(state.get("llm_usage", {}), deps)
        stats.fallbacks = int(
            sum(v for k, v in state.get("llm_usage", {}).items() if k.startswith("fallback_items."))
        )
        if deps.settings.cascade:
            stats.cascade = cascade_stats(state.get("llm_usage", {}), deps)
    return {"problems": problems, "stats": stats.model_dump(mode="json")}


def cascade_stats(usage: dict[str, float], deps: Deps) -> CascadeStats:
    """What the cascade did in this batch, and an estimate of what it saved."""
    kept, sent = int(usage.get("cascade.kept", 0)), int(usage.get("cascade.sent", 0))
    calls = int(usage.get("calls.trace", 0))
    per = usage.get("task_tokens.trace", 0) / sent if sent else None
    limit, source = cascade.threshold(deps)
    return CascadeStats(
        threshold=limit,
        threshold_source=source,
        kept=kept,
        sent=sent,
        fell_back=int(usage.get("cascade.fell_back", 0)),
        calls=calls,
        calls_saved=max(0, int(usage.get("cascade.calls_if_all", 0)) - calls),
        tokens_per_complaint=round(per, 1) if per is not None else None,
        tokens_saved=round(kept * per) if per is not None else 0,
    )


def llm_stats(usage: dict[str, float], deps: Deps) -> LLMStats:
    """Fold the flat counters the tasks summed (``calls.trace`` ...) into run.json's shape."""
    llm = deps.llm
    assert llm is not None

    def group(prefix: str) -> dict[str, int]:
        return {k[len(prefix) :]: int(v) for k, v in sorted(usage.items()) if k.startswith(prefix)}

    return LLMStats(
        models=dict(llm.model_names),
        prompts=",".join(p.ref for p in llm.prompts.values()),
        calls=group("calls."),
        requests=group("requests."),
        prompt_chars=group("prompt_chars."),
        retries=int(usage.get("retries", 0)),
        repairs=sum(group("repairs.").values()),
        tokens=group("tokens."),
        token_budget=llm.budget,
        budget_exhausted=usage.get("budget_refusals", 0) > 0,
        fallbacks=group("fallback."),
        rejected=group("rejected."),
        dropped_citations=int(usage.get("citations.dropped", 0)),
    )


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the batch graph; pass a checkpointer to make runs resumable."""
    builder = StateGraph(BatchState, context_schema=Deps)
    builder.add_node(ingest)
    builder.add_node(attribute_and_trace, input_schema=ChunkTask)
    builder.add_node(analyze)
    builder.add_node(remediate, input_schema=RemediationTask)
    builder.add_node(track)
    builder.add_node(report)
    builder.add_edge(START, "ingest")
    builder.add_conditional_edges("ingest", route_chunks, ["attribute_and_trace", "analyze"])
    builder.add_edge("attribute_and_trace", "analyze")
    builder.add_conditional_edges("analyze", route_problems, ["remediate", "track"])
    builder.add_edge("remediate", "track")
    builder.add_edge("track", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)


def results_vectors(state: BatchState) -> dict[str, np.ndarray]:
    """Complaint vectors from a finished state, for callers that want to reuse them."""
    return {p["id"]: from_bytes(p["vector"]) for p in state.get("processed", [])}
