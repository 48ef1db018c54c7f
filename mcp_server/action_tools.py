"""The MCP action tools: open an action for a tracked problem, and ask whether fixes worked.

Thin wrappers over ``services.actions`` (as ``voc actions`` and ``/v1/actions``): the same ids, statuses,
due dates and effects, the same rules, the audit trail naming the caller (``mcp:stdio``, or the HTTP
caller's key)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from loop.actions import Action, Status
from loop.effect import Basis, Effect, Verdict, Window
from mcp_server.registry import READ_ONLY, WRITES, Entry
from mcp_server.runtime import actor, caller, in_thread
from services.actions import MAX_NOTE, MAX_OWNER


class EffectView(BaseModel):
    """Whether a done action's fix worked: the problem's rate after the fix against before."""

    verdict: Verdict
    basis: Basis
    before: Window
    after: Window
    rate_ratio: float | None
    ci_low: float | None
    ci_high: float | None
    control_ratio: float | None
    summary: str

    @classmethod
    def of(cls, e: Effect) -> EffectView:
        return cls(**e.model_dump(include=set(cls.model_fields)))


class ActionView(BaseModel):
    """A tracked problem's remediation as owned work, and its effect once done."""

    id: str
    problem_id: str
    problem_name: str | None
    status: Status
    overdue: bool
    owner: str | None
    due: date
    fixed_on: date | None
    effect: EffectView | None

    @classmethod
    def of(cls, a: Action) -> ActionView:
        return cls(
            **a.model_dump(include=set(cls.model_fields) - {"effect"}),
            effect=EffectView.of(a.effect) if a.effect else None,
        )


class ActionList(BaseModel):
    """Actions, oldest first."""

    actions: list[ActionView]


class ActionAnswer(BaseModel):
    """The action as it stands after the call."""

    action: ActionView


async def list_actions(
    ctx: Context,
    status: Status | None = None,
    overdue: bool = False,
    fixed_since: date | None = None,
) -> ActionList:
    """Actions on tracked problems, oldest first, and whether each fix worked (last month's fixes:
    fixed_since = its first day): complaints in equal windows before and after the fix, rate_ratio with
    95% interval, control_ratio of like problems without an action, verdict, in words."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    found = await in_thread(
        lambda: svc.actions.list(via, status=status, overdue=overdue, fixed_since=fixed_since)
    )
    return ActionList(actions=[ActionView.of(a) for a in found.actions])


async def open_action(
    ctx: Context,
    problem_id: Annotated[str, Field(max_length=32)],
    from_proposal: bool = True,
    owner: Annotated[str | None, Field(max_length=MAX_OWNER)] = None,
    due: date | None = None,
) -> ActionAnswer:
    """Open an action (owned remediation work, due date) for a tracked problem, e.g. a rising one.
    from_proposal: owner, goals, measures, target, deadline from its latest proposal (none: an error;
    retry with false). owner, due (today or later) override. A person marks it done (voc actions
    update), then its effect is measured."""
    svc, who = await caller(ctx, "write")
    via = actor(ctx, who)
    opened = await in_thread(
        lambda: svc.actions.open(via, problem_id, owner=owner, due=due, from_proposal=from_proposal)
    )
    return ActionAnswer(action=ActionView.of(opened))


async def update_action(
    ctx: Context,
    action_id: Annotated[str, Field(max_length=32)],
    status: Literal["in_progress", "done", "cancelled", "reopened"],
    fixed_on: date | None = None,
    note: Annotated[str | None, Field(max_length=MAX_NOTE)] = None,
) -> ActionAnswer:
    """Move an action: in_progress when work starts, done when the fix is live (needs fixed_on, the day
    it took effect, and note, the root cause found), cancelled, or reopened. After done, every batch
    compares complaints before and after fixed_on and sets verified or not_effective."""
    svc, who = await caller(ctx, "write")
    via = actor(ctx, who)
    moved = await in_thread(lambda: svc.actions.update(via, action_id, status, fixed_on=fixed_on, note=note))
    return ActionAnswer(action=ActionView.of(moved))


TOOLS: list[Entry] = [
    (list_actions, "Actions and whether fixes worked", READ_ONLY),
    (open_action, "Open an action", WRITES),
    (update_action, "Move an action", WRITES),
]
