"""``/v1/analyze``: a small batch analysed within the request."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.dependencies import BatchesDep, Writer
from api.errors import responses
from api.routes.batches import BATCH_BODY
from api.submission import read_submission
from tools.schema import BatchResult

router = APIRouter(prefix="/v1", tags=["analyze"])


@router.post(
    "/analyze",
    response_model=BatchResult,
    responses=responses(401, 403, 413, 415, 422, 429, 503),
    openapi_extra=BATCH_BODY,
    summary="Analyse a small batch now and return the whole result",
)
async def analyze(request: Request, who: Writer, batches: BatchesDep) -> BatchResult:
    """Same input and output as a batch, up to VOC_API_SYNC_MAX_COMPLAINTS rows; nothing is kept."""
    submission = await read_submission(request)
    return await run_in_threadpool(batches.analyze_now, submission, who)
