"""``/v1/batches``: submit a batch, follow it, collect its results and report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.dependencies import BatchesDep, Reader, Writer
from api.errors import responses
from api.models import ProgressEvent
from api.submission import read_submission
from services.batches import BatchService
from services.config import Principal
from services.models import Accepted, BatchStatus, ProblemsOut, ResultsPage

router = APIRouter(prefix="/v1/batches", tags=["batches"])

BatchId = Annotated[str, Path(max_length=64, description="The batch id returned on submission.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe submission: the same key and payload return the same batch; "
        "the same key with another payload is refused (422).",
    ),
]

BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A JSON batch, or a file upload (CSV, JSONL, JSON or XLSX) in the field 'file' "
        "with optional 'options' as JSON text. Rows that break the row rules (missing text, bad "
        "date, duplicate id) are listed as row errors and the rest is analysed; rows over the "
        "size limits make the whole request 422.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "options": {"type": "string", "description": "BatchOptions as JSON."},
                    },
                }
            },
        },
    }
}
EVENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `progress` while the batch runs, then one `done` or `failed`. "
        "Each event's data is a ProgressEvent.",
        "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/ProgressEvent"}}},
    }
}
REPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as Markdown, HTML, or JSON (the batch result without per-complaint rows).",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses=responses(401, 403, 413, 415, 422, 429),
    openapi_extra=BATCH_BODY,
    summary="Submit a complaint batch for analysis",
)
async def submit_batch(
    request: Request,
    response: Response,
    who: Writer,
    batches: BatchesDep,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Validate and mask the batch, store it, queue it; answer once it is safely stored."""
    submission = await read_submission(request)
    accepted = await run_in_threadpool(batches.submit, submission, who, idempotency_key)
    response.headers["Location"] = accepted.status_url
    return accepted


@router.get(
    "/{batch_id}",
    response_model=BatchStatus,
    responses=responses(401, 403, 404, 422, 429, 503),
    summary="Status, progress and row errors",
)
def get_batch(batch_id: BatchId, who: Reader, batches: BatchesDep) -> BatchStatus:
    return batches.status(batch_id, who)


@router.get(
    "/{batch_id}/results",
    response_model=ResultsPage,
    responses=responses(401, 403, 404, 409, 422, 429, 503),
    summary="Per-complaint results, a page at a time",
)
def get_results(
    batch_id: BatchId,
    who: Reader,
    batches: BatchesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ResultsPage:
    return batches.results(batch_id, who, offset, limit)


@router.get(
    "/{batch_id}/problems",
    response_model=ProblemsOut,
    responses=responses(401, 403, 404, 409, 422, 429, 503),
    summary="Common problems ranked by priority, with remediation proposals",
)
def get_problems(batch_id: BatchId, who: Reader, batches: BatchesDep) -> ProblemsOut:
    return batches.problems(batch_id, who)


@router.get(
    "/{batch_id}/report",
    response_class=Response,
    responses={**REPORT, **responses(401, 403, 404, 409, 422, 429, 503)},
    summary="The batch report as md, html or json",
)
def get_report(
    batch_id: BatchId,
    who: Reader,
    batches: BatchesDep,
    format: Annotated[Literal["md", "html", "json"], Query(description="md, html or json")] = "md",
) -> Response:
    text, media_type = batches.report(batch_id, who, format)
    disposition = f'inline; filename="report-{batch_id}.{format}"'
    return Response(text, media_type=media_type, headers={"Content-Disposition": disposition})


@router.delete(
    "/{batch_id}",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 409, 422, 429),
    summary="Delete a batch: its job, results and checkpoint (owner or admin)",
)
def delete_batch(batch_id: BatchId, who: Writer, batches: BatchesDep) -> Response:
    """Removes the stored batch, its per-complaint results and its checkpoint thread (masked
    complaints and their vectors). A running batch is refused with 409. The audit trail keeps
    its record of the batch, this deletion included."""
    batches.delete(batch_id, who)
    return Response(status_code=204)


@router.get(
    "/{batch_id}/events",
    response_class=StreamingResponse,
    responses={**EVENTS, **responses(401, 403, 404, 422, 429, 503)},
    summary="Follow a batch: server-sent progress events until it is done",
)
async def follow_batch(
    batch_id: BatchId, request: Request, who: Reader, batches: BatchesDep
) -> StreamingResponse:
    # 404 now rather than mid-stream; this first read is the one the audit trail records.
    await run_in_threadpool(batches.status, batch_id, who)
    return StreamingResponse(
        _events(request, batches, batch_id, who),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


async def _events(
    request: Request, batches: BatchService, batch_id: str, who: Principal
) -> AsyncIterator[str]:
    last, n, quiet = "", 0, 0.0
    yield "retry: 2000\n\n"
    while True:
        status = await run_in_threadpool(batches.watch, batch_id, who)
        event = ProgressEvent(
            batch_id=status.batch_id, status=status.status, progress=status.progress, failure=status.failure
        )
        data = event.model_dump_json()
        if data != last:
            n, last, quiet = n + 1, data, 0.0
            kind = status.status if status.status in ("done", "failed") else "progress"
            yield f"id: {n}\nevent: {kind}\ndata: {data}\n\n"
            if kind != "progress":
                return
        elif quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
