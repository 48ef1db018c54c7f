"""The bounded worker pool: threads that claim queued batches and run them through the core."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time

from graph.chunk_queue import ChunkQueue
from graph.run import open_checkpointer, run_prepared
from services.holder import DepsHolder
from services.jobs import Job, JobStore
from tools.sql import new_runner_id

log = logging.getLogger("voc.api")

# Runner ids of the pools alive in this process (a restarted app in one process gets a new id).
_LIVE: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runner_gone(runner: str) -> bool:
    """True when a runner id names a pool that certainly no longer runs (on this host)."""
    host, _, rest = runner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's worker: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return runner not in _LIVE
    return not _pid_alive(pid)


class JobRunner:
    """``workers`` threads claiming batches from the job store, plus one housekeeping thread.

    Each claimed batch runs ``run_prepared`` with the job id as its batch id, so its LangGraph checkpoint
    thread is the same on every attempt: a batch interrupted by a crash, a kill or a shutdown resumes from
    its last finished chunk instead of starting over.
    """

    HOUSEKEEPING_EVERY = 5.0

    def __init__(
        self,
        jobs: JobStore,
        holder: DepsHolder,
        workers: int,
        lease_seconds: float,
        max_attempts: int,
        chunk_queue: ChunkQueue | None = None,
        keep_checkpoints: bool = False,
        runner_id: str | None = None,
    ) -> None:
        self.jobs = jobs
        # With a chunk queue (a `voc worker`), the batches this runner drives have their chunks
        # computed by every worker; without one, by this process.
        self.chunk_queue = chunk_queue
        # VOC_API_KEEP_CHECKPOINTS: a finished batch's checkpoints and chunk rows stay (audit, debugging).
        self.keep_checkpoints = keep_checkpoints
        self.holder = holder
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.runner_id = runner_id or new_runner_id()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._running = 0
        self._count_lock = threading.Lock()
        self._housekeeper: threading.Thread | None = None
        self._driving = 0

    def start(self) -> None:
        _LIVE.add(self.runner_id)
        requeued = self.jobs.reclaim(runner_gone, self.lease_seconds, self.max_attempts)
        if requeued:
            log.warning("resuming %d interrupted batch(es): %s", len(requeued), ", ".join(requeued))
        # Daemon threads: a batch still running when the process exits is left at its last
        # checkpoint, exactly as after a crash, and the next start resumes it.
        self._running = self.workers
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"voc-worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self._housekeeper = threading.Thread(target=self._housekeep, name="voc-housekeeping", daemon=True)
        self._housekeeper.start()

    def driving(self) -> int:
        """Batches this runner is running now."""
        return self._driving

    def alive(self) -> int:
        """Worker threads still running."""
        return sum(t.is_alive() for t in self._workers)

    def notify(self) -> None:
        """A batch was queued: wake an idle worker now rather than at its next poll."""
        with self._wake:
            self._wake.notify()

    def stop(self, grace: float = 10.0) -> None:
        """Stop claiming batches and give running ones ``grace`` seconds to finish.

        A batch still running after that is not counted as a failed attempt: it resumes from
        its checkpoint at the next start (or in another process once this one has exited).
        """
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + grace
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.alive():
            n = self.jobs.hand_back(self.runner_id)
            log.warning("%d batch(es) still running at shutdown will resume from their checkpoint", n)
            # At interpreter exit the graph's executor threads drain their queue and cannot
            # save what they finish; that work is redone on resume, so the errors are noise.
            logging.getLogger("concurrent.futures").setLevel(logging.CRITICAL)

    def _work(self) -> None:
        try:
            self._claim_and_run()
        finally:
            with self._count_lock:
                self._running -= 1
                if self._running == 0:
                    # The last worker out: nothing of this pool runs in this process any more.
                    _LIVE.discard(self.runner_id)

    def _claim_and_run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.jobs.claim(self.runner_id)
            except Exception:
                log.exception("cannot claim a batch")
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            with self._count_lock:
                self._driving += 1
            try:
                self._run(job)
            except Exception:  # never let one batch take a worker thread down
                log.exception("batch %s: unexpected error in the worker", job.id)
            finally:
                with self._count_lock:
                    self._driving -= 1

    def _run(self, job: Job) -> None:
        log.info("batch %s: attempt %d, %d complaints", job.id, job.attempts, job.total)

        def on_progress(stage: str, done: int, total: int) -> None:
            counted = min(done, total) if stage == "attribute_and_trace" else None
            self.jobs.progress(job.id, self.runner_id, stage, counted)

        try:
            deps = self.holder.get()
            if self.chunk_queue is not None:
                deps = dataclasses.replace(deps, chunk_queue=self.chunk_queue, batch_owner=self.runner_id)
            prepared = self.jobs.prepared(job.id)
            result = run_prepared(
                prepared,
                deps,
                source=job.source,
                batch_id=job.id,
                on_progress=on_progress,
                track=job.track,
                track_source=job.track_source,
                keep_history=self.keep_checkpoints,
            )
        except Exception as exc:
            # The reason names the error type only: messages may quote (masked) complaint text.
            reason = f"analysis failed ({type(exc).__name__}); the server log has the details"
            status = self.jobs.release(job.id, self.runner_id, reason, self.max_attempts)
            log.exception("batch %s: %s, now %s", job.id, type(exc).__name__, status)
            return
        if self.jobs.finish(job.id, self.runner_id, result):
            log.info("batch %s: done in %.1f s", job.id, result.stats.seconds)
            if self.keep_checkpoints:
                return
            # The job store now holds the results; the checkpoint thread is no longer needed.
            with open_checkpointer(deps) as saver:
                saver.delete_thread(job.id)
            if self.chunk_queue is not None:
                self.chunk_queue.forget(job.id)

    def _housekeep(self) -> None:
        # Heartbeats go on while a worker still runs a batch, even after stop().
        while not self._stop.wait(self.HOUSEKEEPING_EVERY) or self.alive():
            try:
                self.jobs.heartbeat(self.runner_id)
                if not self._stop.is_set() and self.jobs.reclaim(
                    runner_gone, self.lease_seconds, self.max_attempts
                ):
                    self.notify()
                if not self._stop.is_set() and (
                    ended := self.jobs.end_silent_workers_sessions(self.lease_seconds)
                ):
                    log.warning("ended %d database session(s) of workers silent past their lease", ended)
            except Exception:
                log.exception("housekeeping failed")
            if self._stop.is_set():
                time.sleep(self.HOUSEKEEPING_EVERY)
