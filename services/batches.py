"""Batches for both doors: parse a submission, check the limits, store it masked, report on it, delete it."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from graph.run import PreparedBatch, open_checkpointer, prepare_batch, run_prepared
from graph.run import Progress as OnProgress
from services.config import ApiSettings, Principal
from services.errors import (
    AuditUnavailable,
    Busy,
    Conflict,
    IdempotencyConflict,
    NotFinished,
    NotFound,
    NoValidRows,
    RowsOverLimit,
    Unprocessable,
    field_errors,
)
from services.holder import DepsHolder
from services.jobs import Job, JobStore
from services.models import Accepted, BatchOptions, BatchStatus, Links, ProblemsOut, Progress, ResultsPage
from services.retention import Retention
from services.runner import JobRunner
from services.security import actor_of
from tools.audit import Actor, AuditError, AuditLog
from tools.ingest import RawRow, rows_from_bytes, rows_from_records
from tools.pii import mask_text
from tools.report import render
from tools.schema import BatchResult, LabelSpike, Problem, RowError
from tools.settings import Settings
from tools.text import normalize

UPLOAD_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json", ".xlsx", ".xlsm")
REPORT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}


@dataclass
class Submission:
    """A parsed request: raw rows (never stored), options, and a hash of the whole payload."""

    rows: list[RawRow]
    options: BatchOptions
    payload_hash: str
    source: str | None


def parse_options(raw: Any, where: tuple[str, ...] = ("body", "options")) -> BatchOptions:
    try:
        return BatchOptions.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise Unprocessable(
            "the options are not valid", fields=field_errors(list(exc.errors()), where)
        ) from None


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def parse_json(body: bytes) -> Submission:
    """``{"complaints": [...], "options": {...}}`` or a bare list of complaints."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise Unprocessable(f"the body is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError:
        raise Unprocessable("the body is not valid UTF-8 JSON") from None
    except RecursionError:
        raise Unprocessable("the body nests too deeply") from None
    records, raw_options = (doc, None) if isinstance(doc, list) else (None, None)
    if isinstance(doc, dict):
        records, raw_options = doc.get("complaints"), doc.get("options")
        unknown = sorted(set(doc) - {"complaints", "options"})
        if unknown:
            raise Unprocessable(
                "unknown top-level field(s); send complaints and options",
                fields=field_errors([{"loc": (k,), "msg": "not a known field"} for k in unknown], ("body",)),
            )
    if not isinstance(records, list) or not records:
        raise Unprocessable('send {"complaints": [...]} with at least one complaint')
    options = parse_options(raw_options)
    digest = hashlib.sha256(b"json\0" + _canonical({"complaints": records, "options": raw_options or {}}))
    return Submission(rows_from_records(records), options, digest.hexdigest(), options.source)


def parse_file(data: bytes, name: str, options: BatchOptions, options_doc: Any) -> Submission:
    """An uploaded file (CSV, JSONL, JSON or XLSX; ``name`` ends in one of ``UPLOAD_SUFFIXES``)."""
    suffix = Path(name).suffix.lower()
    # The file's own name is never echoed (it may name a person); errors call it upload.<type>.
    rows = rows_from_bytes(data, f"upload{suffix}")
    digest = hashlib.sha256(
        b"file\0" + suffix.encode() + b"\0" + data + b"\0" + _canonical(options_doc or {})
    )
    source = options.source or (mask_text(normalize(name))[:200] or None)
    return Submission(rows, options, digest.hexdigest(), source)


def _masked_id(value: Any) -> str | None:
    if value is None:
        return None
    text = mask_text(normalize(str(value)))
    return text[:128] or None


def links(batch_id: str) -> Links:
    base = f"/v1/batches/{batch_id}"
    return Links(
        status=base,
        results=f"{base}/results",
        problems=f"{base}/problems",
        report=f"{base}/report",
        events=f"{base}/events",
    )


class BatchService:
    """Accepting, running synchronously, reading back and deleting batches, with an audit trail.

    Every method that stores, hands out or deletes batch data records it in the audit log as ``via`` (the
    HTTP caller by default; the MCP server passes its own). Changes are recorded after they are made and a
    failed audit write is logged, not raised: an accepted batch is stored and will run, and a failed
    answer would only make the caller submit it again. Reads are recorded before the data is handed out,
    and a read that cannot be recorded is refused (503): nothing is lost by that, and no batch is read
    without a trace.

    The analysis itself is the core's (``prepare_batch`` and ``run_prepared``); this module only parses,
    checks, stores and shapes.
    """

    def __init__(
        self,
        settings: Settings,
        api: ApiSettings,
        jobs: JobStore,
        holder: DepsHolder,
        runner: JobRunner,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.api = api
        self.jobs = jobs
        self.holder = holder
        self.runner = runner
        self.audit = audit
        self.retention = Retention(settings, self.audit, jobs)
        self._sync_slots = threading.BoundedSemaphore(api.job_workers)

    def _read(self, via: Actor, batch_id: str, **detail: int | str) -> None:
        """No trace, no data: record a read before it is answered."""
        try:
            self.audit.record(via, "batch.read", batch_id, **detail)
        except AuditError:
            raise AuditUnavailable(
                "the audit log cannot be written; batch data is not served without it"
            ) from None

    # -- checks ------------------------------------------------------------------------------

    def check_limits(self, rows: list[RawRow], max_rows: int, what: str) -> None:
        """Batch size and text length limits: 422 naming the rows over them."""
        if len(rows) > max_rows:
            first = rows[max_rows].row
            raise RowsOverLimit(
                f"the batch has {len(rows)} rows; the limit is {max_rows} per {what}",
                rows=[
                    RowError(
                        row=first,
                        field="row",
                        reason=f"this row and the {len(rows) - max_rows - 1} after it are over the limit",
                    )
                ],
                rows_total=len(rows) - max_rows,
            )
        limit = self.settings.max_text_chars
        over = []
        for raw in rows:
            text = raw.data.get("text") if raw.data else None
            if isinstance(text, str | int | float) and len(value := normalize(str(text))) > limit:
                over.append(
                    RowError(
                        row=raw.row,
                        id=_masked_id(raw.data.get("id") if raw.data else None),
                        field="text",
                        reason=f"text has {len(value)} characters; the limit is {limit}",
                    )
                )
        if over:
            raise RowsOverLimit(
                f"{len(over)} row(s) have text over the limit of {limit} characters; shorten or split them",
                rows=over[: self.api.row_errors_shown],
                rows_total=len(over),
            )

    def _prepare(self, sub: Submission) -> PreparedBatch:
        prepared = prepare_batch(sub.rows, self.holder.get())
        if not prepared.complaints:
            raise NoValidRows(
                "no row could be accepted; fix the rows listed",
                rows=prepared.errors[: self.api.row_errors_shown],
                rows_total=len(prepared.errors),
            )
        return prepared

    # -- accepting ---------------------------------------------------------------------------

    def submit(
        self, sub: Submission, who: Principal, idem_key: str | None, via: Actor | None = None
    ) -> Accepted:
        """Validate and mask, store the masked batch, queue it; replay an idempotent retry.

        The batch is stored before it is audited (see the class docstring); a replay is not a
        new submission and is not recorded again.
        """
        key = hashlib.sha256(idem_key.encode()).hexdigest() if idem_key else None
        if key and (earlier := self.jobs.find_idempotent(who.name, key)):
            return self._replay(earlier, sub.payload_hash)
        self.check_limits(sub.rows, self.settings.max_batch_rows, "batch")
        prepared = self._prepare(sub)
        job, created = self.jobs.insert(
            "b-" + secrets.token_hex(8),
            who.name,
            prepared,
            sub.source,
            key,
            sub.payload_hash,
            track=sub.options.track,
            # Only a source the caller named is a namespace of ids; an upload's file name is not.
            track_source=sub.options.source or "default",
        )
        if not created:
            return self._replay(job, sub.payload_hash)
        self.runner.notify()
        self.audit.record_done(
            via or actor_of(who),
            "batch.submit",
            job.id,
            received=job.received,
            accepted=job.accepted,
            rejected=job.rejected,
        )
        return self._accepted(job, replayed=False)

    def _replay(self, job: Job, payload_hash: str) -> Accepted:
        if job.payload_hash != payload_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different payload; use a new key for a new batch"
            )
        return self._accepted(job, replayed=True)

    def _accepted(self, job: Job, replayed: bool) -> Accepted:
        return Accepted(
            batch_id=job.id,
            status=job.status,
            status_url=links(job.id).status,
            received=job.received,
            accepted=job.accepted,
            rejected=job.rejected,
            warnings=job.warnings,
            replayed=replayed,
        )

    def analyze_now(
        self, sub: Submission, who: Principal, on_progress: OnProgress | None = None, via: Actor | None = None
    ) -> BatchResult:
        """Analyse a small batch in the request; nothing but its audit entry is kept once it is answered
        (not in the warehouse either: ``track`` is off whatever the options say)."""
        self.check_limits(sub.rows, self.api.sync_max_complaints, "synchronous request; use POST /v1/batches")
        prepared = self._prepare(sub)
        if not self._sync_slots.acquire(timeout=30):
            raise Busy("every synchronous slot is busy; retry, or use POST /v1/batches", retry_after=15)
        try:
            deps = self.holder.get()
            batch_id = "s-" + secrets.token_hex(8)
            try:
                result = run_prepared(
                    prepared, deps, source=sub.source, batch_id=batch_id, on_progress=on_progress, track=False
                )
            finally:
                with open_checkpointer(deps) as saver:
                    saver.delete_thread(batch_id)
        finally:
            self._sync_slots.release()
        c = result.stats.counts
        self.audit.record_done(
            via or actor_of(who),
            "batch.analyze",
            batch_id,
            received=c.get("received", 0),
            accepted=c.get("accepted", 0),
            rejected=c.get("rejected", 0),
        )
        return result

    # -- reading -----------------------------------------------------------------------------

    def job(self, batch_id: str, who: Principal) -> Job:
        """The batch if this caller may see it: its own, or any with the admin scope."""
        job = self.jobs.get(batch_id)
        if job is None or (job.owner != who.name and not who.allows("admin")):
            raise NotFound("no such batch")
        return job

    def recent(self, who: Principal, limit: int = 50) -> list[Job]:
        """The batches this caller may see, newest first: its own, or all with the admin scope."""
        return self.jobs.recent(None if who.allows("admin") else who.name, limit)

    def finished_job(self, batch_id: str, who: Principal) -> Job:
        job = self.job(batch_id, who)
        if job.status == "failed":
            raise NotFinished(f"the batch failed: {job.failure}")
        if job.status != "done":
            raise NotFinished(f"the batch is {job.status}; follow {links(job.id).events} or poll its status")
        return job

    def status(self, batch_id: str, who: Principal, via: Actor | None = None) -> BatchStatus:
        """The batch's status, recorded as a read."""
        out = self.watch(batch_id, who)
        self._read(via or actor_of(who), out.batch_id, part="status")
        return out

    def watch(self, batch_id: str, who: Principal) -> BatchStatus:
        """The status again, unrecorded: for following a batch whose first read was recorded
        (the event stream, MCP's wait), which polls twice a second."""
        job = self.job(batch_id, who)
        return BatchStatus(
            batch_id=job.id,
            status=job.status,
            progress=Progress(done=job.done, total=job.total, stage=job.stage),
            received=job.received,
            accepted=job.accepted,
            rejected=job.rejected,
            warnings=job.warnings,
            source=job.source,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            failure=job.failure if job.status == "failed" else None,
            row_errors=job.row_errors[: self.api.row_errors_shown],
            row_errors_total=len(job.row_errors),
            links=links(job.id),
            stats=job.stats,
        )

    def results(
        self, batch_id: str, who: Principal, offset: int, limit: int, via: Actor | None = None
    ) -> ResultsPage:
        job = self.finished_job(batch_id, who)
        total = self.jobs.count_results(job.id)
        items = self.jobs.results(job.id, offset, limit)
        nxt = offset + len(items)
        self._read(via or actor_of(who), job.id, part="results", offset=offset, items=len(items))
        return ResultsPage(
            batch_id=job.id,
            offset=offset,
            limit=limit,
            total=total,
            next_offset=nxt if nxt < total else None,
            items=items,
        )

    def problems(self, batch_id: str, who: Principal, via: Actor | None = None) -> ProblemsOut:
        job = self.finished_job(batch_id, who)
        summary = self.jobs.summary(job.id)
        self._read(via or actor_of(who), job.id, part="problems", problems=len(summary["problems"]))
        return ProblemsOut(
            batch_id=job.id,
            problems=[Problem.model_validate(p) for p in summary["problems"]],
            label_spikes=[LabelSpike.model_validate(s) for s in summary["label_spikes"]],
        )

    def report(self, batch_id: str, who: Principal, fmt: str, via: Actor | None = None) -> tuple[str, str]:
        job = self.finished_job(batch_id, who)
        result = self.jobs.batch_result(job)
        dims = [(d.id, d.name) for d in self.holder.get().taxonomy.dimensions]
        text = render(result, fmt, dims)
        self._read(via or actor_of(who), job.id, part="report", format=fmt)
        return text, REPORT_TYPES[fmt]

    # -- deleting ----------------------------------------------------------------------------

    def delete(self, batch_id: str, who: Principal, via: Actor | None = None) -> None:
        """Delete a batch (its owner, or admin): the job, its results, its checkpoint thread and its
        complaints in the warehouse (whose series, statuses and alerts are then rebuilt without them).

        A running batch is refused (409): its worker would write it back. The audit trail keeps
        the batch's entries, this one included.
        """
        job = self.job(batch_id, who)
        removed = self.retention.delete_job(job.id)
        if removed is None:
            if self.jobs.get(job.id) is None:
                raise NotFound("no such batch")  # deleted by another request meanwhile
            raise Conflict("the batch is running; delete it once it is done or failed")
        self.audit.record_done(
            via or actor_of(who),
            "batch.delete",
            job.id,
            results=removed.results,
            checkpoint_rows=removed.checkpoint_rows,
            warehouse_complaints=removed.warehouse,
        )
