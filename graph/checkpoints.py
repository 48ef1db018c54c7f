"""The batch checkpoint database: LangGraph's SQLite saver plus a ledger of finished chunks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.state import ChunkOutput

# Why the ledger: LangGraph saves a task's writes from the same thread pool that runs the tasks,
# and the fan-out submits every chunk task of a batch at once, so the save of a finished chunk
# queues behind every chunk still waiting. For a large batch nothing inside the fan-out became
# durable until all of it was done, and a crash lost up to an hour of work. Each chunk task now
# stores its own output here as it finishes (``save_chunk``) and, when the batch is resumed,
# returns it instead of computing it again (``load_chunk``). The rows go when the batch is
# compacted after it finishes or when its thread is deleted.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS voc_chunks (
    thread_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    type TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (thread_id, chunk)
);
"""
_SERDE = JsonPlusSerializer()


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=60)
    try:
        conn.executescript(_SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def save_chunk(path: Path, thread_id: str, chunk: int, output: ChunkOutput) -> None:
    """Make one finished chunk task durable now, whatever LangGraph's queue holds."""
    kind, blob = _SERDE.dumps_typed(output)
    with _connect(path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO voc_chunks (thread_id, chunk, type, value) VALUES (?, ?, ?, ?)",
            (thread_id, chunk, kind, blob),
        )


def load_chunk(path: Path, thread_id: str, chunk: int) -> ChunkOutput | None:
    """The output a chunk task stored before the batch was interrupted, if any."""
    if not path.exists():
        return None
    with _connect(path) as conn:
        row = conn.execute(
            "SELECT type, value FROM voc_chunks WHERE thread_id = ? AND chunk = ?", (thread_id, chunk)
        ).fetchone()
    if row is None:
        return None
    return cast(ChunkOutput, _SERDE.loads_typed((row[0], row[1])))


class BatchSaver(SqliteSaver):
    """The SQLite saver whose thread deletion also forgets the thread's stored chunks."""

    def setup(self) -> None:
        if self.is_setup:
            return
        super().setup()
        self.conn.executescript(_SCHEMA)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        with self.lock, self.conn:
            self.conn.execute("DELETE FROM voc_chunks WHERE thread_id = ?", (thread_id,))

    def compact(self, thread_id: str) -> int:
        """Keep only the newest checkpoint of a finished batch; return how many rows were dropped.

        Every superstep stores the whole state again (every complaint's result and vector), so a
        finished batch's history is several times its final state. Nothing reads it: a finished
        batch is only ever read back whole, and resuming needs only the newest checkpoint.
        """
        self.setup()
        conn = self.conn
        with self.lock, conn:
            row = conn.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
                "ORDER BY checkpoint_id DESC LIMIT 1",
                (thread_id,),
            ).fetchone()
            if row is None:
                return 0
            dropped = 0
            for table in ("writes", "checkpoints"):
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id != ?",  # noqa: S608 - fixed names
                    (thread_id, row[0]),
                )
                dropped += cur.rowcount
            dropped += conn.execute("DELETE FROM voc_chunks WHERE thread_id = ?", (thread_id,)).rowcount
        conn.executescript("PRAGMA incremental_vacuum;")  # stepped to the end: every free page
        return dropped
