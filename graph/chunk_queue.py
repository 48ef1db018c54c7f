"""Chunk tasks shared by every worker process: one big batch is analysed by all of them at once.

A batch is driven by the worker that claimed it (its LangGraph run: fan-out, analysis, report,
tracking). In the scaled mode (``voc worker``) each chunk task of the fan-out does not compute its
chunk: it queues it here and waits, and whichever worker has a free slot claims it, computes it
(embed, trace, attribute) and stores the output. The driver's task then returns that output to
LangGraph as if it had computed it, so checkpoints, resumption and the rest of the graph are the
same as in one process.

Claims and exactly-once:

- A claim takes the oldest queued task, or one whose lease ran out (its worker died), with
  ``FOR UPDATE SKIP LOCKED`` on Postgres so concurrent claimers never wait on each other and
  never take the same task; on SQLite the store's one writer does the same. Each claim bumps the
  task's ``attempt``.
- :meth:`ChunkQueue.complete` stores the output and the done mark in one statement, and only if
  the task is still held by that claimant at that attempt: a worker that lost its lease (it was
  presumed dead and the task went to another) cannot overwrite the result, so every chunk's
  output is written exactly once.
- Workers extend the leases of the tasks they hold with every heartbeat.
- The rows of a batch go when its driver has finished it (or when the batch is deleted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graph.state import ChunkOutput, ChunkTask
from tools.sql import Conn, Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_tasks (
    batch_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    status TEXT NOT NULL,
    task BLOB NOT NULL,
    task_type TEXT NOT NULL,
    output BLOB,
    output_type TEXT,
    runner TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    queued_at REAL NOT NULL,
    done_at REAL,
    PRIMARY KEY (batch_id, chunk)
);
CREATE INDEX IF NOT EXISTS chunk_tasks_queue ON chunk_tasks(status, queued_at);
"""

_SERDE = JsonPlusSerializer()


class ChunkLost(RuntimeError):
    """A chunk task failed too often (every worker that took it died or raised)."""


class BatchLost(RuntimeError):
    """The driver waiting for a chunk no longer holds its batch (its lease ran out; another took it)."""


@dataclass(frozen=True)
class Claimed:
    batch_id: str
    chunk: int
    attempt: int
    task: ChunkTask


class ChunkQueue:
    """The ``chunk_tasks`` table of the job store, shared by every worker."""

    def __init__(self, db: Database, lease_seconds: float = 60.0, max_attempts: int = 3) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

    # -- the driver's side ---------------------------------------------------------------------

    def submit(self, batch_id: str, task: ChunkTask, owner: str | None = None) -> None:
        """Queue a chunk; a chunk already queued (a resumed batch) keeps its row and any output.

        With ``owner`` (the driver's runner id), only while it still holds the batch: a driver that
        lost its lease must not queue work again for a batch another driver may have finished."""
        kind, blob = _SERDE.dumps_typed(task)
        with self.db.transaction(serial=False) as conn:
            if owner is not None:
                self._check_owner(conn, batch_id, owner)
            conn.execute(
                "INSERT OR IGNORE INTO chunk_tasks (batch_id, chunk, status, task, task_type, queued_at) "
                "VALUES (?, ?, 'queued', ?, ?, ?)",
                (batch_id, task["chunk"], blob, kind, time.time()),
            )

    @staticmethod
    def _check_owner(conn: Conn, batch_id: str, owner: str) -> None:
        held = conn.execute(
            "SELECT 1 FROM jobs WHERE id = ? AND runner = ? AND status = 'running'", (batch_id, owner)
        ).fetchone()
        if held is None:
            raise BatchLost(f"batch {batch_id} is no longer held by {owner}")

    def output(self, batch_id: str, chunk: int) -> ChunkOutput | None:
        """The stored output of a done chunk; None while it is not done. Raises :class:`ChunkLost`
        when the chunk failed ``max_attempts`` times."""
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT status, output, output_type FROM chunk_tasks WHERE batch_id = ? AND chunk = ?",
                (batch_id, chunk),
            ).fetchone()
        if row is None:
            return None
        if row["status"] == "failed":
            raise ChunkLost(f"chunk {chunk} of batch {batch_id} failed {self.max_attempts} times")
        if row["status"] != "done":
            return None
        return cast(ChunkOutput, _SERDE.loads_typed((row["output_type"], bytes(row["output"]))))

    def wait(
        self, batch_id: str, chunk: int, poll: float = 0.2, owner: str | None = None, check_every: float = 2.0
    ) -> ChunkOutput:
        """Block until a worker has stored the chunk's output.

        With ``owner``, raise :class:`BatchLost` once the driver no longer holds the batch. Without
        that, a driver presumed dead (frozen, cut off) that comes back would wait for ever: its
        graph cannot end before every task it started does, and the chunk rows go when the driver
        that took the batch over finishes it."""
        checked = time.monotonic()
        while True:
            out = self.output(batch_id, chunk)
            if out is not None:
                return out
            if owner is not None and time.monotonic() - checked >= check_every:
                checked = time.monotonic()
                with self.db.connect() as conn:
                    self._check_owner(conn, batch_id, owner)
            time.sleep(poll)

    def forget(self, batch_id: str) -> int:
        with self.db.transaction(serial=False) as conn:
            return conn.execute("DELETE FROM chunk_tasks WHERE batch_id = ?", (batch_id,)).rowcount

    # -- the workers' side ---------------------------------------------------------------------

    def claim(self, runner: str) -> Claimed | None:
        """Take the oldest chunk that is queued, or whose worker's lease ran out; None if none."""
        now = time.time()
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        with self.db.transaction(serial=self.db.dialect == "sqlite") as conn:
            row = conn.execute(
                "SELECT batch_id, chunk, attempt FROM chunk_tasks WHERE status = 'queued' "
                "OR (status = 'running' AND lease_until < ?) ORDER BY queued_at, chunk LIMIT 1" + lock,
                (now,),
            ).fetchone()
            if row is None:
                return None
            batch_id, chunk, attempt = row["batch_id"], int(row["chunk"]), int(row["attempt"]) + 1
            if attempt > self.max_attempts:
                conn.execute(
                    "UPDATE chunk_tasks SET status = 'failed', runner = NULL "
                    "WHERE batch_id = ? AND chunk = ?",
                    (batch_id, chunk),
                )
                return None
            got = conn.execute(
                "UPDATE chunk_tasks SET status = 'running', runner = ?, attempt = ?, lease_until = ? "
                "WHERE batch_id = ? AND chunk = ? RETURNING task, task_type",
                (runner, attempt, now + self.lease_seconds, batch_id, chunk),
            ).fetchone()
        task = cast(ChunkTask, _SERDE.loads_typed((got["task_type"], bytes(got["task"]))))
        return Claimed(batch_id, chunk, attempt, task)

    def complete(self, claimed: Claimed, runner: str, output: ChunkOutput) -> bool:
        """Store a chunk's output and mark it done, in one statement, if this claim still holds it;
        False when it does not (the lease ran out and another worker took it)."""
        kind, blob = _SERDE.dumps_typed(output)
        with self.db.transaction(serial=False) as conn:
            n = conn.execute(
                "UPDATE chunk_tasks SET status = 'done', output = ?, output_type = ?, done_at = ?, "
                "runner = NULL, lease_until = NULL WHERE batch_id = ? AND chunk = ? AND runner = ? "
                "AND attempt = ? AND status = 'running'",
                (blob, kind, time.time(), claimed.batch_id, claimed.chunk, runner, claimed.attempt),
            ).rowcount
        return n == 1

    def release(self, claimed: Claimed, runner: str) -> None:
        """Give a chunk back after an error: queued again (it counts as an attempt)."""
        with self.db.transaction(serial=False) as conn:
            conn.execute(
                "UPDATE chunk_tasks SET status = 'queued', runner = NULL, lease_until = NULL "
                "WHERE batch_id = ? AND chunk = ? AND runner = ? AND attempt = ?",
                (claimed.batch_id, claimed.chunk, runner, claimed.attempt),
            )

    def heartbeat(self, runner: str) -> int:
        """Extend the leases of every chunk ``runner`` holds; how many it holds."""
        with self.db.connect() as conn:
            return conn.execute(
                "UPDATE chunk_tasks SET lease_until = ? WHERE runner = ? AND status = 'running'",
                (time.time() + self.lease_seconds, runner),
            ).rowcount

    def pending(self) -> dict[str, int]:
        """Chunks by status (for ``voc workers``)."""
        with self.db.connect() as conn:
            rows = conn.execute("SELECT status, count(*) FROM chunk_tasks GROUP BY status").fetchall()
        return {r[0]: int(r[1]) for r in rows}
