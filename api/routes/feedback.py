"""``/v1/feedback``: reviewers confirm or correct a complaint's label, department, grade or problem."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from api.dependencies import FeedbackDep, Reader, Writer
from api.errors import responses
from services.feedback import CorrectionIn, CorrectionList, CorrectionOut, FeedbackStats, UndoOut
from services.security import actor_of

router = APIRouter(prefix="/v1", tags=["feedback"])

Ref = Annotated[
    str, Path(min_length=1, max_length=200, description="A correction id (COR-0001) or a complaint id.")
]
SourceQ = Annotated[
    str | None, Query(max_length=100, description="The complaint's source, when its id is in several.")
]


@router.post(
    "/feedback",
    response_model=CorrectionOut,
    status_code=201,
    responses=responses(401, 403, 404, 422, 429),
    summary="Confirm or correct one complaint",
)
def add_correction(
    body: Annotated[CorrectionIn, Body()], who: Writer, feedback: FeedbackDep, response: Response
) -> CorrectionOut:
    """Checked against the taxonomy and the service matrix (a refused field is named in `fields`);
    stored with the key's name and the time; recorded in the audit trail (feedback.add). `warnings`
    says where it contradicts the data dictionary (kept anyway). An answer already in force is 200
    with `status: unchanged` and stores nothing. Later batches in this home keep it for the complaint
    and its near-duplicates and lean similar complaints towards it."""
    out = feedback.add(actor_of(who), body)
    if out.status == "unchanged":
        response.status_code = 200
    return out


@router.get(
    "/feedback/stats",
    response_model=FeedbackStats,
    responses=responses(401, 403, 429),
    summary="What was learned from corrections",
)
def feedback_stats(who: Reader, feedback: FeedbackDep) -> FeedbackStats:
    """Corrections in force by field, exemplars added per label, departments taught, contradictions
    with the data dictionary, and what the last tracked batch took from them."""
    return feedback.stats(actor_of(who))


@router.get(
    "/feedback/{ref}",
    response_model=CorrectionList,
    responses=responses(401, 403, 404, 422, 429),
    summary="A correction, or a complaint's corrections",
)
def show_corrections(ref: Ref, who: Reader, feedback: FeedbackDep, source: SourceQ = None) -> CorrectionList:
    """Oldest first, undone ones included (with who undid them and when)."""
    return feedback.show(actor_of(who), ref, source)


@router.delete(
    "/feedback/{ref}",
    response_model=UndoOut,
    responses=responses(401, 403, 404, 409, 422, 429),
    summary="Undo a correction, or a complaint's corrections",
)
def undo_correction(ref: Ref, who: Writer, feedback: FeedbackDep, source: SourceQ = None) -> UndoOut:
    """The next batch goes back to the earlier answer (an older correction still in force, else the
    engine's). Recorded in the audit trail (feedback.undo); the correction is kept, marked undone."""
    return feedback.undo(actor_of(who), ref, source)
