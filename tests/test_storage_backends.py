"""The durable stores on both backends (SQLite files, and a fresh Postgres database): what several
processes rely on when they share one database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from graph.run import PreparedBatch
from services.jobs import JobStore
from services.storage import upgrade
from tools.audit import Actor, AuditLog, AuditQuery
from tools.schema import Complaint
from tools.settings import Settings
from tools.sql import DB_ERRORS, database


def prepared(n: int = 3) -> PreparedBatch:
    return PreparedBatch(
        complaints=[Complaint(row=i + 1, id=f"c{i}", text=f"第{i}条投诉：手机银行闪退") for i in range(n)],
        errors=[],
        received=n,
        prepare_seconds=0.0,
        started_at="2026-12-01T00:00:00+00:00",
    )


def test_the_audit_trail_is_append_only_in_the_database_itself(backend: Settings) -> None:
    log = AuditLog(database(backend, "audit"))
    crm = Actor("key:crm", "http")
    first = log.record(crm, "batch.submit", "b-1", received=3)
    second = log.record(crm, "batch.read", "b-1", items=3)
    assert second > first
    assert [e.action for e in log.query(AuditQuery(target="b-1"))] == ["batch.read", "batch.submit"]
    db = database(backend, "audit")
    for statement in ("DELETE FROM events", "UPDATE events SET actor = 'someone-else'"):
        with pytest.raises(DB_ERRORS, match="append-only"), db.transaction() as conn:
            conn.execute(statement)
    assert len(log.query(AuditQuery())) == 2


def test_one_idempotency_key_makes_one_batch_however_many_ask_at_once(backend: Settings) -> None:
    upgrade(backend)
    stores = [JobStore(database(backend, "jobs")) for _ in range(4)]  # as if four API processes
    barrier = threading.Barrier(8)

    def submit(i: int) -> tuple[str, bool]:
        barrier.wait()
        job, new = stores[i % 4].insert(f"b-{i}", "key:crm", prepared(), None, "order-42", "hash-1")
        return job.id, new

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, range(8)))
    assert len({job_id for job_id, _ in answers}) == 1
    assert sum(new for _, new in answers) == 1
    assert len(stores[0].recent(None)) == 1


def test_each_queued_batch_is_claimed_by_exactly_one_worker(backend: Settings) -> None:
    jobs = JobStore(database(backend, "jobs"))
    for i in range(6):
        jobs.insert(f"b-{i}", "local", prepared(), None, None, f"h{i}")
    barrier = threading.Barrier(4)

    def claim_all(worker: int) -> list[str]:
        own = JobStore(database(backend, "jobs"))
        barrier.wait()
        got = []
        while (job := own.claim(f"host:{worker}")) is not None:
            got.append(job.id)
        return got

    with ThreadPoolExecutor(4) as pool:
        claimed = [b for got in pool.map(claim_all, range(4)) for b in got]
    assert sorted(claimed) == [f"b-{i}" for i in range(6)]
    # Finishing needs the claim: another runner's finish changes nothing.
    job = jobs.get("b-0")
    assert job is not None and job.runner is not None
    assert jobs.release("b-0", "someone-else", "boom", 3) == "lost"
    assert jobs.release("b-0", job.runner, None, 3) == "queued"


def test_a_batch_whose_worker_went_silent_is_queued_again(backend: Settings) -> None:
    jobs = JobStore(database(backend, "jobs"))
    jobs.insert("b-1", "local", prepared(), None, None, "h")
    assert jobs.claim("far-away-host:123:abc") is not None
    assert jobs.reclaim(lambda runner: False, lease_seconds=3600, max_attempts=3) == []
    assert jobs.reclaim(lambda runner: False, lease_seconds=-1, max_attempts=3) == ["b-1"]
    again = jobs.claim("another-host:9:def")
    assert again is not None and again.id == "b-1" and again.attempts == 2


def test_voc_db_upgrade_is_idempotent_and_reports_every_store(backend: Settings) -> None:
    first = upgrade(backend)
    assert [s.name for s in first] == ["jobs", "warehouse", "audit", "checkpoints"]
    assert all(s.before == 0 and s.after > 0 for s in first)
    again = upgrade(backend)
    assert [(s.before, s.after) for s in again] == [(s.after, s.after) for s in first]
    assert {s.dialect for s in again} == {"postgres" if backend.database_url else "sqlite"}


def test_caching_vectors_never_waits_long_on_another_process(backend: Settings) -> None:
    """Two processes embedding the same texts both cache them; the second must not hang behind
    the first's uncommitted copy (a frozen worker held one for ten minutes once). It caches what it
    can and goes on; the vectors are there once the first commits."""
    import numpy as np

    from loop.warehouse import Warehouse

    warehouse = Warehouse(database(backend, "warehouse"))
    vector = np.ones(4, dtype=np.float32)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with warehouse.connect(serial=False) as conn:
            sql = "INSERT INTO vectors (embedder, text_hash, vector) VALUES (?, ?, ?)"
            conn.execute(sql, ("e", "h1", vector.tobytes()))
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        other = threading.Thread(target=warehouse.cache_vectors, args=("e", {"h1": vector, "h2": vector}))
        other.start()
        other.join(timeout=30 if backend.database_url else 0.5)
        waited_out = not other.is_alive()
    finally:
        release.set()
        holder.join()
    if backend.database_url:  # SQLite has one writer at a time: the second simply waits its turn
        assert waited_out, "cache_vectors still waiting for another transaction after 30 s"
    other.join()
    assert set(warehouse.cached_vectors("e", ["h1", "h2"])) >= {"h1"}


def test_a_silent_worker_s_database_sessions_are_ended(backend: Settings) -> None:
    """A worker frozen past its lease keeps its connections, and whatever it had locked, for as
    long as it stays frozen. The others end its sessions (Postgres); a live worker's are kept."""
    from tools.sql import session_name

    jobs = JobStore(database(backend, "jobs"))
    jobs.worker_started("host-a:11:frozen", "host-a", 11, 1)
    jobs.worker_started("host-b:22:alive", "host-b", 22, 1)
    with jobs.db.transaction() as conn:
        conn.execute("UPDATE workers SET heartbeat = heartbeat - 600 WHERE id = 'host-a:11:frozen'")
    if not backend.database_url:
        assert jobs.end_silent_workers_sessions(within=60) == 0
        return
    import psycopg

    frozen = psycopg.connect(backend.database_url, application_name=session_name("host-a:11:frozen"))
    alive = psycopg.connect(backend.database_url, application_name=session_name("host-b:22:alive"))
    try:
        frozen.execute("SELECT 1")  # inside a transaction now, as a stopped process would be
        alive.execute("SELECT 1")
        assert jobs.end_silent_workers_sessions(within=60) == 1
        with pytest.raises(psycopg.OperationalError):
            frozen.execute("SELECT 1")
        alive.execute("SELECT 1")  # still served
    finally:
        frozen.close()
        alive.close()
