"""The batch checkpoint database: LangGraph's saver (SQLite, or Postgres with ``VOC_DATABASE_URL``)
plus a ledger of finished chunks."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.state import ChunkOutput
from tools.settings import Settings
from tools.sql import Database, Migration, database, rearm_idle_timer, upsert

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
_SAVE = upsert("voc_chunks", ["thread_id", "chunk", "type", "value"], ["thread_id", "chunk"])


def ledger(settings: Settings) -> Database:
    """Where checkpoints live: the checkpoint file, or the ``voc_checkpoints`` schema."""
    return database(settings, "checkpoints")


_READY: set[str] = set()  # Postgres stores set up by this process


def _setup_postgres(db: Database) -> None:
    """LangGraph's own tables, then the ledger, under the store's lock, so never concurrently.

    LangGraph creates its indexes CONCURRENTLY, which cannot run inside a transaction, so this
    runs on an autocommit connection holding the lock for the session instead."""
    with db.connect() as conn:
        conn.execute("SELECT pg_advisory_lock(?)", (db.lock_key,))
        try:
            conn.raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')
            PostgresSaver(conn.raw).setup()
            conn.script(_SCHEMA)
        finally:
            conn.execute("SELECT pg_advisory_unlock(?)", (db.lock_key,))


def upgrade(db: Database) -> int:
    """Create or upgrade the checkpoint store (``voc db upgrade`` and the first open); its version."""
    if db.dialect == "sqlite":
        return db.migrate([Migration(1, _SCHEMA)])
    if db.where not in _READY:
        _setup_postgres(db)
        _READY.add(db.where)
    with db.connect() as conn:
        return int(conn.execute("SELECT max(v) FROM checkpoint_migrations").fetchone()[0])


def save_chunk(db: Database, thread_id: str, chunk: int, output: ChunkOutput) -> None:
    """Make one finished chunk task durable now, whatever LangGraph's queue holds."""
    kind, blob = _SERDE.dumps_typed(output)
    upgrade(db)
    with db.transaction(serial=False) as conn:
        conn.execute(_SAVE, (thread_id, chunk, kind, blob))


def load_chunk(db: Database, thread_id: str, chunk: int) -> ChunkOutput | None:
    """The output a chunk task stored before the batch was interrupted, if any."""
    if not db.exists():
        return None
    upgrade(db)
    with db.connect() as conn:
        row = conn.execute(
            "SELECT type, value FROM voc_chunks WHERE thread_id = ? AND chunk = ?", (thread_id, chunk)
        ).fetchone()
    if row is None:
        return None
    return cast(ChunkOutput, _SERDE.loads_typed((row[0], bytes(row[1]))))


class Housekeeping:
    """What the purge and the runner need from either saver beyond LangGraph's interface."""

    def thread_rows(self, thread_id: str | None = None) -> dict[str, int]:
        raise NotImplementedError

    def compact(self, thread_id: str) -> int:
        raise NotImplementedError

    def last_checkpoint_at(self, thread_id: str) -> datetime | None:
        """The newest checkpoint's own timestamp (through the saver, which unpacks it)."""
        saver = cast(BaseCheckpointSaver[Any], self)
        # list() to the end: the saver holds its lock until its generator finishes.
        found = list(saver.list({"configurable": {"thread_id": thread_id}}, limit=1))
        ts = found[0].checkpoint.get("ts") if found else None
        if not ts:
            return None
        when = datetime.fromisoformat(ts)
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class BatchSaver(Housekeeping, SqliteSaver):
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

    def thread_rows(self, thread_id: str | None = None) -> dict[str, int]:
        """Rows (checkpoints and pending writes) per thread, or of one thread."""
        self.setup()
        counts: dict[str, int] = {}
        where, args = (" WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
        with self.cursor(transaction=False) as cur:
            for table in ("checkpoints", "writes"):
                sql = f"SELECT thread_id, count(*) FROM {table}{where} GROUP BY thread_id"
                for tid, n in cur.execute(sql, args).fetchall():
                    counts[tid] = counts.get(tid, 0) + int(n)
        return counts

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


class LeaseLost(RuntimeError):
    """This process no longer holds the batch it was writing checkpoints for."""


class PgBatchSaver(Housekeeping, PostgresSaver):
    """LangGraph's Postgres saver on the ``voc_checkpoints`` schema, with the same housekeeping.

    With ``fence`` (the runner id of a worker driving a batch), every checkpoint write happens in a
    transaction that first share-locks the batch's job row and checks that this runner still holds
    it. A worker presumed dead whose batch went to another cannot write after that: the reaper's
    update waits for a write in progress, and every later write fails with :class:`LeaseLost`. So
    two processes never fork a batch's checkpoint chain.
    """

    def __init__(self, db: Database, conn: Any, fence: str | None = None, jobs_schema: str = "") -> None:
        super().__init__(conn)
        self.db = db
        self.fence = fence
        self.jobs_schema = jobs_schema
        if fence is not None:
            self.lock = threading.RLock()  # type: ignore[assignment]  # held around LangGraph's own use

    def _check_lease(self, config: Any) -> None:
        thread_id = config["configurable"]["thread_id"]
        row = self.conn.execute(  # type: ignore[union-attr]
            f'SELECT 1 FROM "{self.jobs_schema}".jobs WHERE id = %s AND runner = %s '
            "AND status = 'running' FOR SHARE",
            (thread_id, self.fence),
        ).fetchone()
        if row is None:
            raise LeaseLost(f"batch {thread_id} is no longer held by {self.fence}")

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if self.fence is None:
            return super().put(config, checkpoint, metadata, new_versions)
        with self.lock, self.conn.transaction():  # type: ignore[union-attr]
            self._check_lease(config)
            saved = super().put(config, checkpoint, metadata, new_versions)
            rearm_idle_timer(self.conn)
            return saved

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        if self.fence is None:
            return super().put_writes(config, writes, task_id, task_path)
        with self.lock, self.conn.transaction():  # type: ignore[union-attr]
            self._check_lease(config)
            super().put_writes(config, writes, task_id, task_path)
            rearm_idle_timer(self.conn)

    def setup(self) -> None:
        upgrade(self.db)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        with self.db.transaction(serial=False) as conn:
            conn.execute("DELETE FROM voc_chunks WHERE thread_id = ?", (thread_id,))

    def thread_rows(self, thread_id: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        where, args = (" WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
        with self.db.connect() as conn:
            for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
                sql = f"SELECT thread_id, count(*) FROM {table}{where} GROUP BY thread_id"
                for tid, n in conn.execute(sql, args).fetchall():
                    counts[tid] = counts.get(tid, 0) + int(n)
        return counts

    def compact(self, thread_id: str) -> int:
        """Keep only what the newest checkpoint needs (LangGraph's own ``keep_latest`` prune)."""
        before = sum(self.thread_rows(thread_id).values())
        self.prune([thread_id], strategy="keep_latest")
        with self.db.transaction(serial=False) as conn:
            chunks = conn.execute("DELETE FROM voc_chunks WHERE thread_id = ?", (thread_id,)).rowcount
        return max(0, before - sum(self.thread_rows(thread_id).values())) + chunks


Saver = BatchSaver | PgBatchSaver
_OPEN_LOCK = threading.Lock()


@contextmanager
def open_saver(
    settings: Settings, *, create: bool = True, fence: str | None = None
) -> Iterator[Saver | None]:
    """The checkpointer of these settings; one thread per batch. Without ``create``, None when
    there is no checkpoint store yet (the purge never creates one just to find it empty). With
    ``fence`` (Postgres), writes need the batch's lease (see :class:`PgBatchSaver`)."""
    db = ledger(settings)
    if not create and not db.exists():
        yield None
        return
    if db.path is None:
        upgrade(db)
        with db.connect() as conn:
            yield PgBatchSaver(db, conn.raw, fence, database(settings, "jobs").schema)
        return
    db.path.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(str(db.path), timeout=60, check_same_thread=False)
    # On a new file (only there does it take effect), let BatchSaver.compact hand pages back.
    raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
    try:
        yield BatchSaver(raw)
    finally:
        raw.close()
