"""``/v1/actions``: a tracked problem's remediation as owned work, its status history and its effect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.dependencies import ActionsDep, Reader, Writer
from api.errors import responses
from loop.actions import Action, Status
from services.actions import ActionIn, ActionList, ActionUpdate
from services.security import actor_of

router = APIRouter(prefix="/v1", tags=["actions"])

ActionId = Annotated[str, Path(min_length=1, max_length=32, description="An action id, e.g. ACT-0001.")]


@router.post(
    "/actions",
    response_model=Action,
    status_code=201,
    responses=responses(401, 403, 404, 422, 429),
    summary="Open an action for a tracked problem",
)
def open_action(body: Annotated[ActionIn, Body()], who: Writer, actions: ActionsDep) -> Action:
    """Owner, handling class, due date, goals, measures and target metrics (`from_proposal`: from the
    problem's latest remediation proposal). Status starts `open`. Recorded in the audit trail
    (action.open) and the outbox (action.created)."""
    return actions.open(
        actor_of(who), body.problem_id, owner=body.owner, due=body.due, from_proposal=body.from_proposal
    )


@router.get(
    "/actions",
    response_model=ActionList,
    responses=responses(401, 403, 422, 429, 503),
    summary="Actions with their status, history and effect, oldest first",
)
def list_actions(
    who: Reader,
    actions: ActionsDep,
    status: Annotated[Status | None, Query(description="Only actions with this status.")] = None,
    overdue: Annotated[bool, Query(description="Only unfinished actions past their due date.")] = False,
) -> ActionList:
    """Each action's effect (for done ones, after every batch): the problem's complaints in equal
    windows before and after the fix date, the rate ratio with its 95% interval (exact conditional
    Poisson), the control ratio of comparable problems without an action, and the verdict (pending,
    improving, effective, not_effective, regressed) in words. Recorded in the audit trail
    (actions.read)."""
    return actions.list(actor_of(who), status=status, overdue=overdue)


@router.get(
    "/actions/{action_id}",
    response_model=Action,
    responses=responses(401, 403, 404, 429, 503),
    summary="One action: history and effect",
)
def get_action(action_id: ActionId, who: Reader, actions: ActionsDep) -> Action:
    """Recorded in the audit trail (actions.read)."""
    return actions.show(actor_of(who), action_id)


@router.patch(
    "/actions/{action_id}",
    response_model=Action,
    responses=responses(401, 403, 404, 409, 422, 429),
    summary="Move an action to another status",
)
def update_action(
    action_id: ActionId, body: Annotated[ActionUpdate, Body()], who: Writer, actions: ActionsDep
) -> Action:
    """`in_progress`, `done` (needs `fixed_on` and `note`, the root cause), `cancelled` or `reopened`;
    an illegal move is 409 and changes nothing. Recorded in the history and the audit trail
    (action.update)."""
    return actions.update(actor_of(who), action_id, body.status, fixed_on=body.fixed_on, note=body.note)
