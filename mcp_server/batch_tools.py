"""The MCP batch tools: analyse a small batch now, or submit a large one, follow it and read its report."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from mcp_server.models import Accepted, Analysis, BatchProgress, BatchReport, ProblemView, RunSummary
from mcp_server.registry import READ_ONLY, WRITES, Entry
from mcp_server.runtime import STAGE_TEXT, Complaints, Relay, actor, caller, in_thread, submission
from tools.schema import BatchResult

Source = Annotated[str | None, Field(max_length=200, description="Where it came from, e.g. crm-2026-10.")]
BatchId = Annotated[str, Field(min_length=1, max_length=64, description="The id submit_batch returned.")]


async def analyze_complaints(ctx: Context, complaints: Complaints, source: Source = None) -> Analysis:
    """Analyse up to 200 complaints now (more: submit_batch): per complaint the owner department,
    人机物法环 root cause, grade, severity (0-100) and priority (P1-P4); the common problems, ranked, top
    ones with proposals. Bad rows: row_errors. Nothing is kept."""
    svc, who = await caller(ctx, "write")
    sub = submission(complaints, source)
    relay = Relay(ctx)
    via = actor(ctx, who)

    def work() -> BatchResult:
        limit = svc.api.sync_max_complaints
        svc.batches.check_limits(sub.rows, limit, "call; use submit_batch for larger batches")
        return svc.batches.analyze_now(sub, who, on_progress=relay, via=via)

    return Analysis.of(await in_thread(work))


async def submit_batch(
    ctx: Context,
    complaints: Complaints,
    source: Source = None,
    idempotency_key: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry-safe: the same key and payload give the same batch.",
        ),
    ] = None,
    track: bool = True,
) -> Accepted:
    """Queue up to 200,000 complaints for background analysis; answers with its batch_id at once. Rows
    are validated and masked first; refused rows show in the status. Then get_batch_status (wait_seconds)
    and get_batch_report. track: follow problems over time (an id resent from one source updates it)."""
    svc, who = await caller(ctx, "write")
    sub = submission(complaints, source, track)
    via = actor(ctx, who)
    return Accepted.of(await in_thread(lambda: svc.batches.submit(sub, who, idempotency_key, via)))


async def get_batch_status(
    ctx: Context,
    batch_id: BatchId,
    wait_seconds: Annotated[
        int, Field(ge=0, le=60, description="Wait up to this long for the batch to end.")
    ] = 0,
) -> BatchProgress:
    """Where a submitted batch is: queued, running, done or failed; complaints traced (done of
    total) and stage; the first 50 refused rows; the run summary once done. wait_seconds waits for
    the end in one call. A batch is its submitter's (or an admin's)."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    status = await in_thread(lambda: svc.batches.status(batch_id, who, via))
    deadline = anyio.current_time() + wait_seconds
    sent = -1
    while status.status in ("queued", "running") and anyio.current_time() < deadline:
        if status.progress.done > sent:
            sent = status.progress.done
            stage = STAGE_TEXT.get(status.progress.stage or "", status.status)
            await ctx.report_progress(sent, status.progress.total or None, stage)
        await anyio.sleep(0.5)
        # Polling while waiting: the first read above is the one the audit trail records.
        status = await in_thread(lambda: svc.batches.watch(batch_id, who))
    return BatchProgress.of(status)


async def get_batch_report(
    ctx: Context,
    batch_id: BatchId,
    format: Annotated[
        Literal["summary", "markdown"],
        Field(description="summary: ranked problems as data; markdown: the full report."),
    ] = "summary",
    top: Annotated[int, Field(ge=1, le=100, description="How many problems (summary).")] = 10,
) -> BatchReport:
    """A done batch's common problems, P1 first, with impact (0-100), share, growth, spikes, owners
    and proposals citing their sources, plus the run summary; format=markdown gives the whole report
    instead. No per-complaint results."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)

    def work() -> BatchReport:
        job = svc.batches.job(batch_id, who)
        if job.status != "done" or job.stats is None:
            why = f": {job.failure}" if job.status == "failed" else ""
            raise ToolError(
                f"the batch is {job.status}{why} ({job.done}/{job.total} complaints traced); "
                "call get_batch_status with wait_seconds and ask again once it is done"
            )
        summary = RunSummary.of(job.stats)
        if format == "markdown":
            text, _ = svc.batches.report(batch_id, who, "md", via)
            return BatchReport(
                batch_id=job.id, summary=summary, problems_total=summary.problems, markdown=text
            )
        out = svc.batches.problems(batch_id, who, via)
        return BatchReport(
            batch_id=job.id,
            summary=summary,
            problems=[ProblemView.of(p) for p in out.problems[:top]],
            problems_total=len(out.problems),
            label_spikes=out.label_spikes,
        )

    return await in_thread(work)


TOOLS: list[Entry] = [
    (analyze_complaints, "Analyse complaints now", READ_ONLY),
    (submit_batch, "Submit a large batch", WRITES),
    (get_batch_status, "Batch status", READ_ONLY),
    (get_batch_report, "Batch report", READ_ONLY),
]
