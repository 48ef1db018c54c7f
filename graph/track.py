"""The ``track`` node: keep the batch in the warehouse, update tracked problems, series and alerts."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime
from typing import Any, cast

import numpy as np
from langgraph.runtime import Runtime

from graph.state import BatchState, ProblemRecord, ResultRecord
from loop import actions, feedback
from loop.effect import EffectRules
from loop.periods import period_of
from loop.series import announce_new, rebuild
from loop.space import TrackingSpace
from loop.summary import summarise, trends_for
from loop.tracker import Tracker, TrackingRules, TrackItem
from loop.trends import TrendRules
from loop.warehouse import Warehouse
from tools.audit import AuditLog
from tools.deps import Deps
from tools.embeddings import from_bytes
from tools.sql import database


def tracking_rules(deps: Deps) -> TrackingRules:
    s = deps.settings
    return TrackingRules(
        assign_similarity=s.track_assign_similarity,
        match_similarity=s.track_match_similarity,
        related_similarity=s.track_related_similarity,
        merge_similarity=s.track_merge_similarity,
        distance_threshold=deps.scoring.clustering.distance_threshold,
        min_cluster=deps.scoring.clustering.min_size,
    )


def _items(state: BatchState, deps: Deps, warehouse: Warehouse) -> list[TrackItem]:
    """One item per analysed complaint, its text vector taken from the cache the chunks filled."""
    reference = state.get("as_of")
    as_of = date.fromisoformat(reference) if reference else date.today()
    processed = {p["id"]: p for p in state.get("processed", [])}
    results = {r["id"]: r for r in state.get("results", [])}
    names = {m: p["name"] for p in state.get("problems", []) for m in p["member_ids"]}
    keys = {i: p.get("read_hash", "") for i, p in processed.items()}
    cached = warehouse.cached_vectors(deps.embedder.name, [k for k in keys.values() if k])
    items = []
    for c in state.get("complaints", []):
        p, r = processed[c["id"]], results[c["id"]]
        rc, at = r["root_cause"], r["attribution"]
        at_text = c.get("received_at")
        received = datetime.fromisoformat(at_text) if at_text else None
        key = keys[c["id"]]
        items.append(
            TrackItem(
                id=c["id"],
                text=c["text"],
                period=period_of(received or as_of, deps.settings.period),
                received_at=c.get("received_at"),
                customer_id=c.get("customer_id"),
                negative=bool(rc["is_negative_voice"]),
                dimension=rc.get("dimension"),
                l2=rc.get("l2"),
                l3=rc.get("l3"),
                department_id=at.get("department_id"),
                department=at.get("department"),
                grade=rc["grade"],
                priority=r["priority"],
                severity=float(r["severity"]["score"]),
                flags=list(r.get("flags", [])),
                vector=cached[key] if key in cached else from_bytes(p["vector"]).astype(np.float32),
                read_hash=key,
                problem_name=names.get(c["id"]),
                evidence=tuple(dict.fromkeys(e["text"] for e in rc.get("evidence", []) if e.get("text")))[:6],
                label_confidence=rc.get("confidence"),
                department_confidence=at.get("confidence"),
                grade_confidence=r.get("grade_confidence"),
                engine=r.get("engine"),
            )
        )
    return items


def effect_rules(deps: Deps) -> EffectRules:
    s = deps.settings
    return EffectRules(
        period=s.period,
        transition_gap=s.action_transition_gap,
        min_periods=s.action_min_periods,
        max_window=s.action_max_window,
    )


def _keep_proposals(
    conn: Any, state: BatchState, tracked_of: dict[str, str | None], latest: str | None
) -> None:
    """Each tracked problem's newest proposal, for an action opened from it later."""
    proposals = {pr["problem_id"]: pr for pr in state.get("proposals", [])}
    for p in state.get("problems", []):
        proposal = proposals.get(p["id"])
        votes = Counter(tp for m in p["member_ids"] if (tp := tracked_of.get(m)))
        if not proposal or not votes or latest is None:
            continue
        tracked = min(votes, key=lambda t: (-votes[t], t))
        actions.keep_proposal(conn, tracked, state["batch_id"], latest, p["priority"], dict(proposal))


def _keep_membership(conn: Any, state: BatchState, source: str, tracked_of: dict[str, str | None]) -> None:
    """A complaint a reviewer put in a tracked problem (or a duplicate of one) stays in it, whatever
    the tracker's similarity said; the series are rebuilt from the complaints after this."""
    for p in state.get("processed", []):
        note = p.get("corrected") or {}
        problem = note.get("problem_id")
        if not problem:
            continue
        live = conn.execute(
            "SELECT id FROM problems WHERE id = ? AND merged_into IS NULL", (problem,)
        ).fetchone()
        if live is None:
            continue
        conn.execute(
            "UPDATE complaints SET tracked_id = ? WHERE source = ? AND id = ?", (problem, source, p["id"])
        )
        tracked_of[p["id"]] = problem


def track(state: BatchState, runtime: Runtime[Deps]) -> BatchState:
    """Keep the batch and follow its problems over time (skipped when the caller said not to)."""
    if not state.get("track"):
        return {}
    t0 = time.perf_counter()
    deps = runtime.context
    warehouse = Warehouse(database(deps.settings, "warehouse"))
    items = _items(state, deps, warehouse)
    source = state.get("track_source") or "default"
    labels = {lab.id: lab.name for lab in deps.taxonomy.labels}
    with warehouse.connect() as conn:
        space = TrackingSpace(
            center=deps.indexes["tracing"].center,
            dimensions=tuple(deps.taxonomy.dimension_ids),
            labels=warehouse.label_columns(conn, [lab.id for lab in deps.taxonomy.labels]),
        )
        tracker = Tracker(
            warehouse, space, tracking_rules(deps), deps.embedder.name, lambda k: labels.get(k, k)
        )
        outcome = tracker.track(conn, items, source=source, batch_id=state["batch_id"])
        _keep_membership(conn, state, source, outcome.tracked_of)
        if hits := state.get("feedback_hits"):
            feedback.record_run(conn, state["batch_id"], {k: int(v) for k, v in hits.items()})
        rebuild(conn, deps.settings.period, TrendRules(dormant_after=deps.settings.dormant_after))
        # Events for webhooks, queued in this very transaction: they exist exactly when the change does.
        announce_new(conn, outcome.opened, state["batch_id"], source)
        latest = max(outcome.periods) if outcome.periods else None
        _keep_proposals(conn, state, outcome.tracked_of, latest)
        # Verdicts follow every batch: done actions verified or not, verified ones reopened if back.
        today = date.today()
        changes = actions.verify(conn, effect_rules(deps), today)
        actions.flag_overdue(conn, today)
        summary = summarise(conn, outcome, source, latest, len(items), state.get("vectors_reused", 0), labels)
        if summary is not None:
            summary.actions = actions.action_lines(conn, today)
        wanted = {tp for tp in outcome.tracked_of.values() if tp}
        trends = trends_for(conn, wanted, latest) if latest else {}
    actions.audit_changes(AuditLog(database(deps.settings, "audit")), changes, "batch")
    results: list[ResultRecord] = []
    for r in state.get("results", []):
        results.append(cast(ResultRecord, {**r, "tracked_problem_id": outcome.tracked_of.get(r["id"])}))
    problems: list[ProblemRecord] = []
    for p in state.get("problems", []):
        votes = Counter(tp for m in p["member_ids"] if (tp := outcome.tracked_of.get(m)))
        tracked = min(votes, key=lambda t: (-votes[t], t)) if votes else None
        trend: dict[str, Any] | None = trends.get(tracked) if tracked else None
        problems.append(cast(ProblemRecord, {**p, "tracked_id": tracked, "trend": trend}))
    return {
        "results": results,
        "problems": problems,
        "tracking": summary.model_dump(mode="json") if summary else {},
        "timings": {"track": time.perf_counter() - t0},
    }
