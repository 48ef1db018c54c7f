"""A ``voc worker`` process: drives queued batches and computes chunk tasks, beside any number of others.

Every worker shares one database (``VOC_DATABASE_URL``; a SQLite ``VOC_HOME`` works on one
machine) and claims two kinds of work from it:

- **batches** (the job store's ``jobs``): the worker holding a batch's lease runs its LangGraph
  graph, writing its checkpoints (fenced by that lease on Postgres, see graph/checkpoints.py);
- **chunks** (graph/chunk_queue.py): the fan-out of every running batch. ``concurrency`` slot
  threads claim them, from any batch, oldest first, so one big batch is spread over every
  worker's slots and gets faster with more workers, not only many batches.

A worker registers itself (``voc workers`` lists the live ones, ``/readyz`` checks them) and beats
every few seconds, extending the leases of what it holds. A worker killed mid-chunk leaves its
leases to run out; another worker takes those chunks again (only one claim can store a chunk's
output), and a batch whose driver died is queued again and resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time

from graph.build import compute_chunk
from graph.chunk_queue import ChunkQueue, Claimed
from services.config import ApiSettings
from services.holder import DepsHolder
from services.jobs import JobStore
from services.runner import JobRunner
from tools.settings import Settings
from tools.sql import database, process_id

log = logging.getLogger("voc.worker")

BEAT_EVERY = 2.0


def _where(claimed: Claimed) -> tuple[str, int]:
    return claimed.batch_id, claimed.chunk


class Worker:
    def __init__(self, settings: Settings, api: ApiSettings, concurrency: int = 1) -> None:
        self.settings = settings
        self.jobs = JobStore(database(settings, "jobs"))
        self.holder = DepsHolder(settings, self.jobs)
        self.queue = ChunkQueue(self.jobs.db, api.lease_seconds, api.max_attempts)
        self.concurrency = concurrency
        self.runner = JobRunner(
            self.jobs,
            self.holder,
            concurrency,
            api.lease_seconds,
            api.max_attempts,
            chunk_queue=self.queue,
            keep_checkpoints=api.keep_checkpoints,
            # The process's own id: its database sessions carry it, so they can be ended if it
            # goes silent (JobStore.end_silent_workers_sessions).
            runner_id=process_id(),
        )
        self.id = self.runner.runner_id
        self._stop = threading.Event()
        self._slots: list[threading.Thread] = []
        self._busy = 0
        self._done = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the models and data, register, and start claiming."""
        self.holder.start()
        self.jobs.worker_started(self.id, socket.gethostname(), os.getpid(), self.concurrency)
        self.runner.start()
        for i in range(self.concurrency):
            t = threading.Thread(target=self._slot, name=f"voc-chunk-{i}", daemon=True)
            t.start()
            self._slots.append(t)
        threading.Thread(target=self._beat, name="voc-beat", daemon=True).start()
        log.info("worker %s: %d slot(s)", self.id, self.concurrency)

    def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; running batches resume elsewhere from their checkpoints."""
        self._stop.set()
        self.runner.stop(grace)
        deadline = time.monotonic() + grace
        for t in self._slots:
            t.join(max(0.0, deadline - time.monotonic()))
        self.jobs.worker_stopped(self.id)

    def serve_forever(self) -> None:
        """Run until interrupted (SIGINT/SIGTERM raise KeyboardInterrupt/SystemExit in the caller)."""
        while not self._stop.wait(1.0):
            pass

    # -- threads -------------------------------------------------------------------------------

    def _slot(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.queue.claim(self.id)
            except Exception:
                log.exception("cannot claim a chunk")
                claimed = None
            if claimed is None:
                self._stop.wait(0.2)
                continue
            self._compute(claimed)

    def _compute(self, claimed: Claimed) -> None:
        with self._lock:
            self._busy += 1
        try:
            deps = dataclasses.replace(self.holder.get(), chunk_queue=self.queue)
            out = compute_chunk(claimed.task, deps, claimed.batch_id)
            if self.queue.complete(claimed, self.id, out):
                with self._lock:
                    self._done += 1
            else:
                log.warning(
                    "chunk %s/%d: lease lost; another worker's result stands", claimed.batch_id, claimed.chunk
                )
        except Exception:
            log.exception("chunk %s/%d failed (attempt %d)", *_where(claimed), claimed.attempt)
            self.queue.release(claimed, self.id)
        finally:
            with self._lock:
                self._busy -= 1

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_EVERY):
            try:
                self.queue.heartbeat(self.id)
                with self._lock:
                    busy, done = self._busy, self._done
                self.jobs.worker_beat(self.id, busy, self.runner.driving(), done)
            except Exception:
                log.exception("heartbeat failed")
