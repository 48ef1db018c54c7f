"""``/v1/review``: the results the engine is unsure of, and flagged ones, grouped by tracked problem."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import Reader, ReviewDep
from api.errors import responses
from services.review import ReviewQueue
from services.security import actor_of

router = APIRouter(prefix="/v1", tags=["review"])


@router.get(
    "/review",
    response_model=ReviewQueue,
    responses=responses(401, 403, 422, 429, 503),
    summary="The review queue: unsure and flagged results, grouped by tracked problem",
)
def review_queue(
    who: Reader,
    review: ReviewDep,
    batch: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only this batch's results.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReviewQueue:
    """Every analysed complaint kept in the warehouse whose label confidence is below the review
    threshold (VOC_REVIEW_THRESHOLD, else read off the calibration curve), and every one whose text
    carried instructions aimed at a model. Grouped by tracked problem so a whole problem can be
    confirmed at once; the group holding the least confident result comes first, and within a group
    the least confident first. Text is masked and cut to a snippet. Recorded in the audit trail
    (review.read)."""
    return review.queue(actor_of(who), batch=batch, offset=offset, limit=limit)
