"""Deleting batches from everywhere they are kept: one (``DELETE /v1/batches/{id}``), or all past an age."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from graph.checkpoints import BatchSaver
from services.jobs import JobStore
from tools.audit import Actor, AuditError, AuditLog
from tools.settings import Settings

Kind = Literal["job", "run"]


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@contextmanager
def checkpoint_saver(path: Path) -> Iterator[BatchSaver | None]:
    """The checkpoint database, or None when there is none yet (never creates one)."""
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    try:
        yield BatchSaver(conn)
    finally:
        conn.close()


def thread_rows(saver: BatchSaver, thread_id: str | None = None) -> dict[str, int]:
    """Rows (checkpoints and pending writes) per thread, or of one thread."""
    counts: dict[str, int] = {}
    where, args = (" WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
    with saver.cursor(transaction=False) as cur:
        for table in ("checkpoints", "writes"):
            sql = f"SELECT thread_id, count(*) FROM {table}{where} GROUP BY thread_id"
            for tid, n in cur.execute(sql, args).fetchall():
                counts[tid] = counts.get(tid, 0) + int(n)
    return counts


def last_checkpoint_at(saver: BatchSaver, thread_id: str) -> datetime | None:
    """The newest checkpoint's own timestamp (through the saver, which unpacks it)."""
    # list() to the end: the saver holds its lock until its generator finishes.
    found = list(saver.list({"configurable": {"thread_id": thread_id}}, limit=1))
    ts = found[0].checkpoint.get("ts") if found else None
    return _aware(datetime.fromisoformat(ts)) if ts else None


def file_bytes(path: Path) -> int:
    """A database's size on disk, with its write-ahead log."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            total += p.stat().st_size
    return total


def vacuum(path: Path) -> str | None:
    """Rewrite a database so freed pages leave the file; the reason when it could not."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        try:
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"{path.name}: {exc}"
    return None


@dataclass
class Doomed:
    """A batch the purge would delete."""

    batch_id: str
    kind: Kind  # job: accepted over HTTP/MCP; run: a checkpoint thread only (CLI run, leftovers)
    since: datetime
    results: int = 0
    checkpoint_rows: int = 0


@dataclass
class Plan:
    older_than_days: int
    cutoff: datetime
    batches: list[Doomed] = field(default_factory=list)
    running: list[str] = field(default_factory=list)


class FileSize(BaseModel):
    name: str
    before: int = Field(description="Bytes, with the write-ahead log.")
    after: int


class PurgeReport(BaseModel):
    """What a purge removed (or, on a dry run, would remove)."""

    older_than_days: int
    cutoff: datetime = Field(description="Batches accepted or last run before this were removed.")
    dry_run: bool
    batches: int = Field(description="Batches removed: jobs + runs.")
    jobs: int = Field(description="Batches accepted over HTTP or MCP (job rows).")
    runs: int = Field(description="Batches kept only as a checkpoint thread (CLI runs, leftovers).")
    results: int = Field(description="Per-complaint result rows.")
    checkpoint_threads: int
    checkpoint_rows: int = Field(description="Checkpoint and pending-write rows.")
    skipped_running: int = Field(description="Old batches left alone because they are running.")
    batch_ids: list[str]
    files: list[FileSize]
    bytes_reclaimed: int
    vacuum: str = Field(description="done, skipped (dry run), or why a file could not be rewritten.")


class Retention:
    """Deletes batches from the job store and the checkpoint database; keeps the audit trail. One batch for
    ``DELETE /v1/batches/{id}``, every batch past an age for ``voc purge --older-than DAYS``.

    A batch is kept in up to three places: its job row and its result rows in ``VOC_HOME/voc.db`` (batches
    accepted over HTTP or MCP), and its LangGraph checkpoint thread (thread id = batch id) in the
    checkpoint database, which holds the masked complaints, their vectors and the intermediate results.
    For a ``voc analyze`` run that thread is the only copy; for a service batch it exists while the batch
    runs and stays if it failed. Deleting a batch removes all of them. The audit trail (``audit.db``)
    keeps its record of the batch, by design.

    A batch's age counts from when it was accepted (service batches: the job's ``created_at``) or last run
    (CLI batches: the ledger in ``audit.db``; a thread with no ledger entry, such as one left by an
    interrupted ``/v1/analyze``, is aged by its newest checkpoint's own timestamp). Running batches are
    never deleted: their worker would write them back.
    """

    def __init__(self, settings: Settings, audit: AuditLog, jobs: JobStore | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self._jobs = jobs

    @property
    def jobs(self) -> JobStore | None:
        """The job store, if there is one (the CLI never creates it just to find it empty)."""
        path = self.settings.home / "voc.db"
        if self._jobs is None and path.exists():
            self._jobs = JobStore(path)
        return self._jobs

    # -- one batch ---------------------------------------------------------------------------

    def delete_job(self, job_id: str) -> tuple[int, int] | None:
        """Delete a service batch: (result rows, checkpoint rows) removed; None while it runs."""
        jobs = self.jobs
        results = jobs.delete(job_id) if jobs is not None else None
        if results is None:
            return None
        return results, self._drop_threads([job_id]).get(job_id, 0)

    def _drop_threads(self, batch_ids: list[str]) -> dict[str, int]:
        """Delete checkpoint threads; the rows each had."""
        removed: dict[str, int] = {}
        with checkpoint_saver(self.settings.checkpoint_db) as saver:
            if saver is None:
                return removed
            for batch_id in batch_ids:
                n = thread_rows(saver, batch_id).get(batch_id, 0)
                if n:
                    saver.delete_thread(batch_id)
                    removed[batch_id] = n
        return removed

    # -- by age ------------------------------------------------------------------------------

    def plan(self, older_than_days: int, now: datetime | None = None) -> Plan:
        """The batches older than ``older_than_days``; nothing is deleted."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
        plan = Plan(older_than_days, cutoff)
        jobs = self.jobs
        job_ids: set[str] = set()
        if jobs is not None:
            results = jobs.result_counts()
            for job_id, status, created in jobs.ages():
                job_ids.add(job_id)
                if _aware(created) >= cutoff:
                    continue
                if status == "running":
                    plan.running.append(job_id)
                else:
                    plan.batches.append(Doomed(job_id, "job", _aware(created), results.get(job_id, 0)))
        with checkpoint_saver(self.settings.checkpoint_db) as saver:
            if saver is None:
                return plan
            rows = thread_rows(saver)
            for d in plan.batches:
                d.checkpoint_rows = rows.get(d.batch_id, 0)
            runs = self.audit.runs()
            for thread_id, n in sorted(rows.items()):
                if thread_id in job_ids:
                    continue  # aged, and kept or deleted, with its job
                since = runs.get(thread_id) or last_checkpoint_at(saver, thread_id)
                # A thread with no date at all is kept: it may be a run that has only just begun.
                if since is not None and _aware(since) < cutoff:
                    plan.batches.append(Doomed(thread_id, "run", _aware(since), 0, n))
        return plan

    def report(self, plan: Plan) -> PurgeReport:
        """What ``plan`` would remove (a dry run)."""
        files = [FileSize(name=p.name, before=file_bytes(p), after=file_bytes(p)) for p in self._files()]
        return self._report(
            plan, plan.batches, len(plan.running), files, dry_run=True, vacuumed="skipped (dry run)"
        )

    def purge(self, plan: Plan, actor: Actor) -> PurgeReport:
        """Delete what ``plan`` lists, rewrite the files so they shrink, and audit it all."""
        before = {p: file_bytes(p) for p in self._files()}
        removed: list[Doomed] = []
        skipped = len(plan.running)
        for d in plan.batches:
            if d.kind == "job":
                jobs = self.jobs
                n = jobs.delete(d.batch_id) if jobs is not None else None
                if n is None:  # claimed by a worker since the plan was made
                    skipped += 1
                    continue
                d.results = n
            removed.append(d)
        dropped = self._drop_threads([d.batch_id for d in removed])
        for d in removed:
            d.checkpoint_rows = dropped.get(d.batch_id, 0)
        self._forget_runs([d.batch_id for d in removed], plan.cutoff)
        for d in removed:
            self.audit.record_done(
                actor,
                "batch.purge",
                d.batch_id,
                results=d.results,
                checkpoint_rows=d.checkpoint_rows,
                older_than_days=plan.older_than_days,
            )
        failures = [f for f in (vacuum(p) for p in self._files()) if f]
        files = [FileSize(name=p.name, before=n, after=file_bytes(p)) for p, n in before.items()]
        vacuumed = "done" if not failures else "could not rewrite " + "; ".join(failures)
        report = self._report(plan, removed, skipped, files, dry_run=False, vacuumed=vacuumed)
        self.audit.record_done(
            actor,
            "retention.purge",
            None,
            older_than_days=plan.older_than_days,
            batches=report.batches,
            results=report.results,
            checkpoint_threads=report.checkpoint_threads,
            checkpoint_rows=report.checkpoint_rows,
            bytes_reclaimed=report.bytes_reclaimed,
        )
        return report

    def _forget_runs(self, batch_ids: list[str], cutoff: datetime) -> None:
        try:
            self.audit.forget_runs(batch_ids, before=cutoff)
        except AuditError:
            # Harmless: a ledger row without its thread ages out at the next purge.
            pass

    def _files(self) -> list[Path]:
        return [p for p in (self.settings.home / "voc.db", self.settings.checkpoint_db) if p.exists()]

    @staticmethod
    def _report(
        plan: Plan,
        batches: list[Doomed],
        skipped: int,
        files: list[FileSize],
        *,
        dry_run: bool,
        vacuumed: str,
    ) -> PurgeReport:
        return PurgeReport(
            older_than_days=plan.older_than_days,
            cutoff=plan.cutoff,
            dry_run=dry_run,
            batches=len(batches),
            jobs=sum(d.kind == "job" for d in batches),
            runs=sum(d.kind == "run" for d in batches),
            results=sum(d.results for d in batches),
            checkpoint_threads=sum(d.checkpoint_rows > 0 for d in batches),
            checkpoint_rows=sum(d.checkpoint_rows for d in batches),
            skipped_running=skipped,
            batch_ids=[d.batch_id for d in batches],
            files=files,
            bytes_reclaimed=max(0, sum(f.before - f.after for f in files)),
            vacuum=vacuumed,
        )
