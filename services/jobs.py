"""The job store: accepted batches, their progress and results, in SQLite (``VOC_HOME/voc.db``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph import chunk_queue
from graph.run import PreparedBatch
from loop import outbox
from tools.schema import BatchResult, Complaint, ComplaintResult, LabelSpike, Problem, RowError, RunStats
from tools.sql import INTEGRITY_ERRORS, Conn, Database, Migration, Row, placeholders, session_name

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL,
    received INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    source TEXT,
    prepared TEXT,
    row_errors TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    runner TEXT,
    heartbeat REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failure TEXT,
    idem_key TEXT,
    payload_hash TEXT,
    summary TEXT,
    track INTEGER,
    track_source TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(owner, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
    + outbox.SCHEMA
)
# Columns added since voc.db was first released, added to an older file when it is opened.
ADDED_COLUMNS = {"track": "INTEGER", "track_source": "TEXT"}


def _baseline(conn: Conn) -> None:
    """The tables a voc.db lacks, and the columns added since one was first written."""
    conn.script(SCHEMA)
    have = conn.columns("jobs")
    for name, kind in ADDED_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")


# Version 1 is the whole schema as of the storage layer; a voc.db from before it (version 0) gets
# the tables it lacks and the columns added since.
WORKERS = """
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    slots INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat REAL NOT NULL,
    busy INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    chunks_done INTEGER NOT NULL DEFAULT 0,
    stopped_at TEXT
);
"""

# 2: chunk tasks shared by worker processes, and the workers' registry (voc worker, voc workers).
MIGRATIONS = [Migration(1, _baseline), Migration(2, chunk_queue.SCHEMA + WORKERS)]

COLUMNS = (
    "id, owner, status, stage, done, total, received, accepted, rejected, warnings, source, "
    "row_errors, created_at, started_at, finished_at, runner, heartbeat, attempts, failure, "
    "idem_key, payload_hash, summary, track, track_source"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def batch_done(result: BatchResult, door: str) -> dict[str, Any]:
    """The ``batch.done`` payload: ids, counts, priorities and periods; never complaint text."""
    stats = result.stats
    counts = stats.counts
    tracking = stats.tracking
    priorities = {p: sum(1 for x in result.problems if x.priority == p) for p in ("P1", "P2", "P3", "P4")}
    return {
        "batch_id": result.batch_id,
        "door": door,
        "received": counts.get("received", 0),
        "accepted": counts.get("accepted", 0),
        "rejected": counts.get("rejected", 0),
        "warnings": counts.get("warnings", 0),
        "negative_voices": counts.get("negative_voices", 0),
        "problems": len(result.problems),
        "priorities": priorities,
        "periods": list(stats.periods),
        "seconds": round(stats.seconds, 2),
        "tracked": tracking is not None,
        "tracked_problems_opened": list(tracking.opened) if tracking else [],
    }


@dataclass
class Job:
    """A batch's row in the job store (without its complaints or results)."""

    id: str
    owner: str
    status: str
    stage: str | None
    done: int
    total: int
    received: int
    accepted: int
    rejected: int
    warnings: int
    source: str | None
    row_errors: list[RowError]
    created_at: str
    started_at: str | None
    finished_at: str | None
    runner: str | None
    heartbeat: float | None
    attempts: int
    failure: str | None
    idem_key: str | None
    payload_hash: str | None
    stats: RunStats | None
    track: bool | None  # None: a batch accepted before the option existed, run as VOC_TRACK says
    track_source: str | None  # the namespace of its complaint ids when tracked (None: "default")

    @classmethod
    def from_row(cls, row: Row) -> Job:
        d = dict(row)
        raw_summary = d.pop("summary")
        summary = json.loads(raw_summary) if raw_summary else None
        d["row_errors"] = [RowError.model_validate(e) for e in json.loads(d["row_errors"])]
        d["stats"] = RunStats.model_validate(summary["stats"]) if summary else None
        d["track"] = None if d["track"] is None else bool(d["track"])
        return cls(**d)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class JobStore:
    """All reads and writes of ``voc.db``; one short connection per call, safe across threads.

    A batch is written here, masked, before the service answers 202; from then on it is never lost.
    Workers claim queued batches with a conditional update, so several processes can share one database; a
    batch whose worker died (or went silent past its lease) is queued again and resumes from its LangGraph
    checkpoint, which uses the batch id as its thread.
    """

    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database("jobs", path=db, durable=True)
        self.db.migrate(MIGRATIONS)

    @property
    def path(self) -> Path | None:
        """The SQLite file, when the store is one (None on Postgres)."""
        return self.db.path

    def _connect(self) -> AbstractContextManager[Conn]:
        return self.db.connect()

    def _transaction(self) -> AbstractContextManager[Conn]:
        return self.db.transaction()

    def ping(self) -> None:
        with self._connect() as db:
            db.execute("SELECT count(*) FROM jobs WHERE status = 'queued'").fetchone()

    # -- accepting ---------------------------------------------------------------------------

    def find_idempotent(self, owner: str, idem_key: str) -> Job | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE owner = ? AND idem_key = ?", (owner, idem_key)
            ).fetchone()
        return Job.from_row(row) if row else None

    def insert(
        self,
        job_id: str,
        owner: str,
        prepared: PreparedBatch,
        source: str | None,
        idem_key: str | None,
        payload_hash: str,
        track: bool = True,
        track_source: str | None = None,
    ) -> tuple[Job, bool]:
        """Store a prepared batch as queued; with an idempotency key already used, return that job.

        ``track`` and ``track_source`` go to ``run_prepared`` when a worker runs it."""
        errors = [e.model_dump(mode="json") for e in prepared.errors]
        doc = {
            "complaints": [c.model_dump(mode="json") for c in prepared.complaints],
            "errors": errors,
            "received": prepared.received,
            "prepare_seconds": prepared.prepare_seconds,
            "started_at": prepared.started_at,
        }
        rejected = sum(e.severity == "error" for e in prepared.errors)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO jobs (id, owner, status, stage, done, total, received, accepted, rejected,"
                    " warnings, source, prepared, row_errors, created_at, idem_key, payload_hash, track,"
                    " track_source) VALUES (?, ?, 'queued', NULL, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        owner,
                        len(prepared.complaints),
                        prepared.received,
                        len(prepared.complaints),
                        rejected,
                        len(prepared.errors) - rejected,
                        source,
                        json.dumps(doc, ensure_ascii=False),
                        json.dumps(errors, ensure_ascii=False),
                        _now(),
                        idem_key,
                        payload_hash,
                        int(track),
                        track_source if track else None,
                    ),
                )
        except INTEGRITY_ERRORS:
            # Another request with the same key got there first.
            existing = self.find_idempotent(owner, idem_key) if idem_key else None
            if existing is None:
                raise
            return existing, False
        job = self.get(job_id)
        assert job is not None
        return job, True

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def recent(self, owner: str | None, limit: int = 50) -> list[Job]:
        """The newest batches first: one owner's, or everyone's with ``owner`` None."""
        query, args = f"SELECT {COLUMNS} FROM jobs", []
        if owner is not None:
            query += " WHERE owner = ?"
            args.append(owner)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC, id LIMIT ?", [*args, limit]).fetchall()
        return [Job.from_row(r) for r in rows]

    def prepared(self, job_id: str) -> PreparedBatch:
        with self._connect() as db:
            row = db.execute("SELECT prepared FROM jobs WHERE id = ?", (job_id,)).fetchone()
        doc = json.loads(row["prepared"])
        return PreparedBatch(
            complaints=[Complaint.model_validate(c) for c in doc["complaints"]],
            errors=[RowError.model_validate(e) for e in doc["errors"]],
            received=doc["received"],
            prepare_seconds=doc["prepare_seconds"],
            started_at=doc["started_at"],
        )

    def results(self, job_id: str, offset: int, limit: int) -> list[ComplaintResult]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT body FROM results WHERE job_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (job_id, limit if limit >= 0 else 2**62, offset),
            ).fetchall()
        return [ComplaintResult.model_validate_json(r["body"]) for r in rows]

    def count_results(self, job_id: str) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM results WHERE job_id = ?", (job_id,)).fetchone()[0])

    def summary(self, job_id: str) -> dict[str, Any]:
        with self._connect() as db:
            row = db.execute("SELECT summary FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row["summary"])

    def batch_result(self, job: Job) -> BatchResult:
        """The whole result of a finished batch, as ``run_batch`` returned it."""
        summary = self.summary(job.id)
        return BatchResult(
            batch_id=job.id,
            results=self.results(job.id, 0, -1),
            problems=[Problem.model_validate(p) for p in summary["problems"]],
            label_spikes=[LabelSpike.model_validate(s) for s in summary["label_spikes"]],
            errors=job.row_errors,
            stats=RunStats.model_validate(summary["stats"]),
        )

    # -- running -----------------------------------------------------------------------------

    def claim(self, runner: str) -> Job | None:
        """Take the oldest queued batch for ``runner``; None when there is none."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', runner = ?, heartbeat = ?, attempts = attempts + 1,"
                " started_at = COALESCE(started_at, ?), failure = NULL WHERE id = ?",
                (runner, time.time(), _now(), row["id"]),
            )
        return self.get(row["id"])

    def progress(self, job_id: str, runner: str, stage: str, done: int | None) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET stage = ?, done = COALESCE(?, done), heartbeat = ?"
                " WHERE id = ? AND runner = ? AND status = 'running'",
                (stage, done, time.time(), job_id, runner),
            )

    def heartbeat(self, runner: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET heartbeat = ? WHERE runner = ? AND status = 'running'", (time.time(), runner)
            )

    def finish(self, job_id: str, runner: str, result: BatchResult) -> bool:
        """Store the results and mark the batch done; False if another worker owns it now.

        The ``batch.done`` webhook event is queued in the same transaction as the done mark (this
        database has an outbox of its own: the warehouse is another file, and SQLite commits one
        file at a time)."""
        summary = {
            "problems": [p.model_dump(mode="json") for p in result.problems],
            "label_spikes": [s.model_dump(mode="json") for s in result.label_spikes],
            "stats": result.stats.model_dump(mode="json"),
        }
        with self._transaction() as db:
            owned = db.execute(
                "SELECT 1 FROM jobs WHERE id = ? AND runner = ? AND status = 'running'", (job_id, runner)
            ).fetchone()
            if not owned:
                return False
            db.execute("DELETE FROM results WHERE job_id = ?", (job_id,))
            db.executemany(
                "INSERT INTO results (job_id, seq, body) VALUES (?, ?, ?)",
                ((job_id, i, r.model_dump_json()) for i, r in enumerate(result.results)),
            )
            db.execute(
                "UPDATE jobs SET status = 'done', stage = 'report', done = total, finished_at = ?,"
                " summary = ?, prepared = NULL, runner = NULL, heartbeat = NULL WHERE id = ?",
                (_now(), json.dumps(summary, ensure_ascii=False), job_id),
            )
            outbox.emit(db, "batch.done", batch_done(result, door="service"), key=job_id)
        return True

    def emit_done(self, result: BatchResult, door: str) -> None:
        """Queue ``batch.done`` for a batch that has no job row (a ``voc analyze`` run); once per batch."""
        with self._transaction() as db:
            outbox.emit(db, "batch.done", batch_done(result, door=door), key=result.batch_id)

    def release(self, job_id: str, runner: str, failure: str | None, max_attempts: int) -> str:
        """Give a claimed batch back: queued again, or failed once it used up its attempts."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT attempts FROM jobs WHERE id = ? AND runner = ? AND status = 'running'",
                (job_id, runner),
            ).fetchone()
            if row is None:
                return "lost"
            status = "failed" if failure and row["attempts"] >= max_attempts else "queued"
            db.execute(
                "UPDATE jobs SET status = ?, runner = NULL, heartbeat = NULL, failure = ?,"
                " finished_at = CASE WHEN ? = 'failed' THEN ? ELSE NULL END WHERE id = ?",
                (status, failure, status, _now(), job_id),
            )
        return status

    def hand_back(self, runner: str) -> int:
        """At shutdown: the batches this runner still runs will resume; that is not a failed attempt."""
        with self._connect() as db:
            cur = db.execute(
                "UPDATE jobs SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
                " WHERE runner = ? AND status = 'running'",
                (runner,),
            )
            return cur.rowcount

    def reclaim(self, is_gone: Callable[[str], bool], lease_seconds: float, max_attempts: int) -> list[str]:
        """Queue again the running batches whose worker is gone or silent past its lease."""
        stale_before = time.time() - lease_seconds
        requeued = []
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, runner, heartbeat, attempts FROM jobs WHERE status = 'running'"
            ).fetchall()
            for row in rows:
                if not (is_gone(row["runner"] or "") or (row["heartbeat"] or 0) < stale_before):
                    continue
                if row["attempts"] >= max_attempts:
                    db.execute(
                        "UPDATE jobs SET status = 'failed', runner = NULL, finished_at = ?, failure = ?"
                        " WHERE id = ?",
                        (_now(), f"interrupted {row['attempts']} times; gave up", row["id"]),
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET status = 'queued', runner = NULL, heartbeat = NULL WHERE id = ?",
                        (row["id"],),
                    )
                    requeued.append(row["id"])
        return requeued

    # -- deleting (DELETE /v1/batches/{id}, voc purge) ----------------------------------------

    def delete(self, job_id: str) -> int | None:
        """Delete a batch that is not running, with its results: how many result rows went.

        None when it is running (or already gone). Checked and deleted in one write transaction,
        so a worker cannot claim the batch in between; a running batch's worker would write its
        checkpoints and results back.
        """
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] == "running":
                return None
            n = db.execute("DELETE FROM results WHERE job_id = ?", (job_id,)).rowcount
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return n

    def ages(self) -> list[tuple[str, str, datetime]]:
        """Every batch as (id, status, accepted at): what the retention purge ages batches by."""
        with self._connect() as db:
            rows = db.execute("SELECT id, status, created_at FROM jobs").fetchall()
        return [(r["id"], r["status"], datetime.fromisoformat(r["created_at"])) for r in rows]

    def result_counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT job_id, count(*) AS n FROM results GROUP BY job_id").fetchall()
        return {r["job_id"]: int(r["n"]) for r in rows}

    # -- the workers' registry (voc worker processes) ----------------------------------------

    def worker_started(self, worker_id: str, host: str, pid: int, slots: int) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO workers (id, host, pid, slots, started_at, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
                (worker_id, host, pid, slots, _now(), time.time()),
            )

    def worker_beat(self, worker_id: str, busy: int, batches: int, chunks_done: int) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE workers SET heartbeat = ?, busy = ?, batches = ?, chunks_done = ? WHERE id = ?",
                (time.time(), busy, batches, chunks_done, worker_id),
            )

    def worker_stopped(self, worker_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE workers SET stopped_at = ?, busy = 0 WHERE id = ?", (_now(), worker_id))

    def workers(self, within: float) -> list[dict[str, Any]]:
        """Workers that have not stopped, newest first, each with ``alive``: a heartbeat within
        ``within`` seconds. Rows of workers stopped or silent for a day are dropped."""
        now = time.time()
        with self._connect() as db:
            db.execute("DELETE FROM workers WHERE heartbeat < ?", (now - 86_400,))
            rows = db.execute(
                "SELECT id, host, pid, slots, started_at, heartbeat, busy, batches, chunks_done FROM workers "
                "WHERE stopped_at IS NULL ORDER BY started_at DESC"
            ).fetchall()
        return [
            {**dict(r), "alive": now - r["heartbeat"] <= within, "age": now - r["heartbeat"]} for r in rows
        ]

    def chunk_counts(self) -> dict[str, int]:
        """Chunk tasks by status (queued, running, done, failed)."""
        with self._connect() as db:
            rows = db.execute("SELECT status, count(*) FROM chunk_tasks GROUP BY status").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def end_silent_workers_sessions(self, within: float) -> int:
        """Postgres: end the database sessions of registered workers silent for longer than
        ``within`` (presumed dead; their batches and chunks go to others). A frozen process keeps
        its connections open, and one stopped while sending a pipeline holds its locks with no
        server timeout at all; this frees them. How many sessions were ended (SQLite: none, a
        frozen writer there is bounded by the other writers' busy timeout)."""
        if self.db.dialect != "postgres":
            return 0
        with self._connect() as db:
            silent = db.execute(
                "SELECT id FROM workers WHERE stopped_at IS NULL AND heartbeat < ?", (time.time() - within,)
            ).fetchall()
            if not silent:
                return 0
            names = [session_name(r["id"]) for r in silent]
            ended = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name IN ({placeholders(len(names))}) AND pid <> pg_backend_pid()",
                names,
            ).fetchall()
        return sum(1 for r in ended if r[0])

    def is_live_worker(self, runner: str, within: float) -> bool | None:
        """Whether a runner id is a registered worker with a recent heartbeat (None: not a worker)."""
        with self._connect() as db:
            row = db.execute("SELECT heartbeat, stopped_at FROM workers WHERE id = ?", (runner,)).fetchone()
        if row is None:
            return None
        return row["stopped_at"] is None and time.time() - row["heartbeat"] <= within

    # -- data generation (knowledge changes) -------------------------------------------------

    def generation(self) -> int:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'data_generation'").fetchone()
        return int(row["value"]) if row else 0

    def bump_generation(self) -> int:
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'data_generation'").fetchone()
            value = (int(row["value"]) if row else 0) + 1
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('data_generation', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(value),),
            )
        return value
