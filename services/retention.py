"""Deleting batches from everywhere they are kept: one (``DELETE /v1/batches/{id}``), or all past an age."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from graph.checkpoints import Saver, open_saver
from loop.series import refresh
from loop.trends import TrendRules
from loop.warehouse import Warehouse
from services.actions import reverify
from services.jobs import JobStore
from tools.audit import Actor, AuditError, AuditLog
from tools.settings import Settings
from tools.sql import chunked, database, placeholders

Kind = Literal["job", "run"]


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _stamp(when: datetime) -> str:
    """``when`` as the warehouse writes its times (UTC ISO 8601), so the two compare as text."""
    return _aware(when).astimezone(UTC).isoformat()


# Cached vectors no kept complaint reads any more (a complaint's vector is cached under its
# embedder and the hash of the text it was read as).
_UNREFERENCED = "(embedder, text_hash) NOT IN (SELECT embedder, read_hash FROM complaints{where})"


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
    warehouse: int = 0  # complaints the warehouse holds from it (last stored by this batch)


@dataclass
class Plan:
    older_than_days: int
    cutoff: datetime
    batches: list[Doomed] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    aged: int = 0  # warehouse complaints of no purged batch, last updated before the cutoff
    vectors: int = 0  # cached vectors nothing would reference once those complaints are gone


@dataclass
class Forgotten:
    """What left the warehouse."""

    batches: dict[str, int] = field(default_factory=dict)  # complaints, per batch that had any
    aged: int = 0  # complaints of no purged batch, last updated before the cutoff
    vectors: int = 0  # cached vectors no kept complaint uses any more

    @property
    def complaints(self) -> int:
        return sum(self.batches.values()) + self.aged


class Deleted(NamedTuple):
    """What deleting one batch removed."""

    results: int
    checkpoint_rows: int
    warehouse: int  # its complaints in the warehouse


class FileSize(BaseModel):
    name: str
    before: int = Field(description="Bytes, with the write-ahead log.")
    after: int


class PurgeReport(BaseModel):
    """What a purge removed (or, on a dry run, would remove)."""

    older_than_days: int
    cutoff: datetime = Field(
        description="Batches accepted or last run before this were removed, and warehouse complaints last "
        "updated before it."
    )
    dry_run: bool
    batches: int = Field(description="Batches removed: jobs + runs.")
    jobs: int = Field(description="Batches accepted over HTTP or MCP (job rows).")
    runs: int = Field(description="Batches kept only as a checkpoint thread (CLI runs, leftovers).")
    results: int = Field(description="Per-complaint result rows.")
    checkpoint_threads: int
    checkpoint_rows: int = Field(description="Checkpoint and pending-write rows.")
    warehouse_complaints: int = Field(
        description="Complaints removed from the warehouse: those of the purged batches and any last "
        "updated before the cutoff."
    )
    warehouse_vectors: int = Field(
        description="Cached vectors no complaint kept in the warehouse uses any more."
    )
    skipped_running: int = Field(description="Old batches left alone because they are running.")
    batch_ids: list[str]
    files: list[FileSize]
    bytes_reclaimed: int
    vacuum: str = Field(description="done, skipped (dry run), or why a file could not be rewritten.")


class Retention:
    """Deletes batches from the job store, the checkpoint database and the warehouse; keeps the audit
    trail. One batch for ``DELETE /v1/batches/{id}``, every batch past an age for ``voc purge --older-than
    DAYS``.

    A batch is kept in up to four places: its job row and its result rows in ``VOC_HOME/voc.db`` (batches
    accepted over HTTP or MCP), its LangGraph checkpoint thread (thread id = batch id) in the
    checkpoint database, which holds the masked complaints, their vectors and the intermediate results,
    and, when it was tracked, its complaints in the warehouse (``VOC_HOME/warehouse.db``: masked text,
    labels, owner, hashed customer id, the vector cache). For a ``voc analyze`` run the thread is the
    only copy of its results; for a service batch it exists while the batch runs and stays if it failed.
    Deleting a batch removes all of them; the warehouse then rebuilds its series, statuses and alerts
    without those complaints. The audit trail (``audit.db``) keeps its record of the batch, by design.

    In the warehouse a complaint belongs to the batch that last stored it: a complaint sent again in a
    later batch stays when the earlier batch goes. The purge also removes warehouse complaints last
    updated before its cutoff, whatever their batch.

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
        store = database(self.settings, "jobs")
        if self._jobs is None and store.exists():
            self._jobs = JobStore(store)
        return self._jobs

    @property
    def warehouse(self) -> Warehouse | None:
        """The warehouse, if there is one (never created just to find it empty)."""
        store = database(self.settings, "warehouse")
        return Warehouse(store) if store.exists() else None

    # -- one batch ---------------------------------------------------------------------------

    def delete_job(self, job_id: str) -> Deleted | None:
        """Delete a service batch: the rows removed from each store; None while it runs."""
        jobs = self.jobs
        results = jobs.delete(job_id) if jobs is not None else None
        if results is None:
            return None
        checkpoint_rows = self._drop_threads([job_id]).get(job_id, 0)
        return Deleted(results, checkpoint_rows, self._forget([job_id]).complaints)

    def _forget(self, batch_ids: list[str], cutoff: datetime | None = None) -> Forgotten:
        """Remove the warehouse complaints of ``batch_ids`` (and, with a cutoff, every one last updated
        before it), the version history and cached vectors nothing needs any more, then rebuild the
        series, statuses and alerts without them."""
        forgotten = Forgotten()
        warehouse = self.warehouse
        if warehouse is None:
            return forgotten
        with warehouse.connect() as conn:
            # The vectors these complaints were read with, taken before they go.
            hashes: set[tuple[str, str]] = set()
            for part in chunked(batch_ids):
                hashes.update(
                    (r["embedder"], r["read_hash"])
                    for r in conn.execute(
                        "SELECT DISTINCT embedder, read_hash FROM complaints"
                        f" WHERE batch_id IN ({placeholders(len(part))})",
                        list(part),
                    )
                )
        for batch_id in batch_ids:
            if n := warehouse.delete_batch(batch_id):
                forgotten.batches[batch_id] = n
        with warehouse.connect() as conn:
            if cutoff is not None:
                stamp = _stamp(cutoff)
                forgotten.aged = conn.execute(
                    "DELETE FROM complaints WHERE updated_at < ?", (stamp,)
                ).rowcount
                conn.execute("DELETE FROM versions WHERE seen_at < ?", (stamp,))
            conn.execute("DELETE FROM versions WHERE (source, id) NOT IN (SELECT source, id FROM complaints)")
            unused = _UNREFERENCED.format(where="")
            if cutoff is not None:
                # The purge sweeps the whole cache (also the vector of a text a resent complaint replaced).
                forgotten.vectors = conn.execute(f"DELETE FROM vectors WHERE {unused}").rowcount
            else:
                # One batch: only the vectors its own complaints used. A running batch caches its
                # chunks' vectors before it stores its complaints; those are not taken from under it.
                for embedder, text_hash in sorted(hashes):
                    forgotten.vectors += conn.execute(
                        f"DELETE FROM vectors WHERE embedder = ? AND text_hash = ? AND {unused}",
                        (embedder, text_hash),
                    ).rowcount
        if forgotten.complaints:
            refresh(warehouse, self.settings.period, TrendRules(dormant_after=self.settings.dormant_after))
            # Fewer complaints may change whether a fix worked: judge every done action again.
            reverify(self.settings, self.audit, warehouse, "batch")
        return forgotten

    def _drop_threads(self, batch_ids: list[str]) -> dict[str, int]:
        """Delete checkpoint threads; the rows each had."""
        removed: dict[str, int] = {}
        with open_saver(self.settings, create=False) as saver:
            if saver is None:
                return removed
            for batch_id in batch_ids:
                n = saver.thread_rows(batch_id).get(batch_id, 0)
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
        with open_saver(self.settings, create=False) as saver:
            if saver is not None:
                self._plan_runs(plan, saver, job_ids)
        self._plan_warehouse(plan)
        return plan

    def _plan_runs(self, plan: Plan, saver: Saver, job_ids: set[str]) -> None:
        """Checkpoint rows of the planned jobs, and the CLI runs (and leftover threads) past the cutoff."""
        rows = saver.thread_rows()
        for d in plan.batches:
            d.checkpoint_rows = rows.get(d.batch_id, 0)
        runs = self.audit.runs()
        for thread_id, n in sorted(rows.items()):
            if thread_id in job_ids:
                continue  # aged, and kept or deleted, with its job
            since = runs.get(thread_id) or saver.last_checkpoint_at(thread_id)
            # A thread with no date at all is kept: it may be a run that has only just begun.
            if since is not None and _aware(since) < plan.cutoff:
                plan.batches.append(Doomed(thread_id, "run", _aware(since), 0, n))

    def _plan_warehouse(self, plan: Plan) -> None:
        """What the warehouse would lose: the planned batches' complaints, those last updated before the
        cutoff, and the cached vectors only they use. Read only."""
        store = database(self.settings, "warehouse")
        if not store.exists():
            return
        ids = [d.batch_id for d in plan.batches]
        stamp = _stamp(plan.cutoff)
        with store.connect() as db:
            if "complaints" not in db.tables():
                return  # a warehouse without its tables yet: nothing in it
            per_batch: dict[str, int] = {}
            for part in chunked(ids):
                per_batch.update(
                    (r[0], int(r[1]))
                    for r in db.execute(
                        "SELECT batch_id, count(*) FROM complaints"
                        f" WHERE batch_id IN ({placeholders(len(part))}) GROUP BY batch_id",
                        list(part),
                    )
                )
            doomed = f"batch_id IN ({placeholders(len(ids))}) OR updated_at < ?"
            args = [*ids, stamp]
            total = db.execute(f"SELECT count(*) FROM complaints WHERE {doomed}", args).fetchone()[0]
            unused = _UNREFERENCED.format(where=f" WHERE NOT ({doomed})")
            plan.vectors = db.execute(f"SELECT count(*) FROM vectors WHERE {unused}", args).fetchone()[0]
        for d in plan.batches:
            d.warehouse = per_batch.get(d.batch_id, 0)
        plan.aged = total - sum(per_batch.values())

    def report(self, plan: Plan) -> PurgeReport:
        """What ``plan`` would remove (a dry run)."""
        files = [FileSize(name=p.name, before=file_bytes(p), after=file_bytes(p)) for p in self._files()]
        return self._report(
            plan,
            plan.batches,
            len(plan.running),
            files,
            aged=plan.aged,
            vectors=plan.vectors,
            dry_run=True,
            vacuumed="skipped (dry run)",
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
        forgotten = self._forget([d.batch_id for d in removed], plan.cutoff)
        for d in removed:
            d.warehouse = forgotten.batches.get(d.batch_id, 0)
        self._forget_runs([d.batch_id for d in removed], plan.cutoff)
        for d in removed:
            self.audit.record_done(
                actor,
                "batch.purge",
                d.batch_id,
                results=d.results,
                checkpoint_rows=d.checkpoint_rows,
                warehouse_complaints=d.warehouse,
                older_than_days=plan.older_than_days,
            )
        failures = [f for f in (vacuum(p) for p in self._files()) if f]
        files = [FileSize(name=p.name, before=n, after=file_bytes(p)) for p, n in before.items()]
        vacuumed = "done" if not failures else "could not rewrite " + "; ".join(failures)
        report = self._report(
            plan,
            removed,
            skipped,
            files,
            aged=forgotten.aged,
            vectors=forgotten.vectors,
            dry_run=False,
            vacuumed=vacuumed,
        )
        self.audit.record_done(
            actor,
            "retention.purge",
            None,
            older_than_days=plan.older_than_days,
            batches=report.batches,
            results=report.results,
            checkpoint_threads=report.checkpoint_threads,
            checkpoint_rows=report.checkpoint_rows,
            warehouse_complaints=report.warehouse_complaints,
            warehouse_vectors=report.warehouse_vectors,
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
        s = self.settings
        return [p for p in (s.home / "voc.db", s.checkpoint_db, s.warehouse_db) if p.exists()]

    @staticmethod
    def _report(
        plan: Plan,
        batches: list[Doomed],
        skipped: int,
        files: list[FileSize],
        *,
        aged: int,
        vectors: int,
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
            warehouse_complaints=sum(d.warehouse for d in batches) + aged,
            warehouse_vectors=vectors,
            skipped_running=skipped,
            batch_ids=[d.batch_id for d in batches],
            files=files,
            bytes_reclaimed=max(0, sum(f.before - f.after for f in files)),
            vacuum=vacuumed,
        )
