"""Actions for every door: open one for a tracked problem (from its proposal or by hand), list, show and
move it through its statuses, each change in its history, the audit trail and the outbox."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field

from loop import actions as store
from loop.actions import Action, IllegalMove, NewAction
from loop.effect import EffectRules
from loop.warehouse import Warehouse
from services.errors import AuditUnavailable, Conflict, FieldError, NotFound, Unprocessable
from tools.audit import Actor, AuditError, AuditLog, Door
from tools.knowledge import load_remediation
from tools.pii import mask_text
from tools.settings import Settings
from tools.sql import database

MAX_NOTE = 2000
MAX_OWNER = 100
PERSON_STATUSES = ("in_progress", "done", "cancelled", "reopened")


class IllegalTransition(Conflict):
    code = "illegal_transition"


class ActionList(BaseModel):
    """Actions, oldest first."""

    actions: list[Action]


class ActionIn(BaseModel):
    """Opening an action for a tracked problem."""

    problem_id: str = Field(min_length=1, max_length=32, description="A tracked problem id, e.g. TP-0012.")
    owner: str | None = Field(
        None,
        max_length=MAX_OWNER,
        description="Owner department; default: the proposal's, else the problem's.",
    )
    due: str | None = Field(
        None,
        max_length=10,
        description="Due date, YYYY-MM-DD, today or later; default: the proposal's handling class and "
        "priority in remediation.yaml, else VOC_ACTION_DUE_DAYS (15) from today.",
    )
    from_proposal: bool = Field(
        False,
        description="Take owner, handling class, goals, measures, target metrics and deadline from the "
        "problem's latest remediation proposal.",
    )


class ActionUpdate(BaseModel):
    """A status change."""

    status: str = Field(max_length=16, description="in_progress, done, cancelled or reopened.")
    fixed_on: str | None = Field(
        None, max_length=10, description="The fix date, YYYY-MM-DD; required (with note) for done."
    )
    note: str | None = Field(
        None, max_length=MAX_NOTE, description="The root cause found (required for done), or the reason."
    )


EFFECT_KEYS = ("verdict", "rate_ratio", "ci_low", "ci_high", "control_ratio", "basis")
WINDOW_KEYS = ("periods", "complaints", "exposure")


def action_json(a: Action) -> dict[str, Any]:
    """An action as ``voc actions show --json`` and ``list --json`` print it."""
    e = a.effect
    effect = None
    if e is not None:
        effect = {
            **e.model_dump(mode="json", include=set(EFFECT_KEYS)),
            "before": e.before.model_dump(include=set(WINDOW_KEYS)),
            "after": e.after.model_dump(include=set(WINDOW_KEYS)),
        }
    return {
        "id": a.id,
        "problem_id": a.problem_id,
        "status": a.status,
        "owner": a.owner,
        "due": a.due.isoformat(),
        "fixed_on": a.fixed_on.isoformat() if a.fixed_on else None,
        "history": [h.model_dump(mode="json", by_alias=True) for h in a.history],
        "effect": effect,
    }


def effect_rules(settings: Settings) -> EffectRules:
    """The windows and verdict thresholds in force (VOC_PERIOD, VOC_ACTION_*)."""
    return EffectRules(
        period=settings.period,
        transition_gap=settings.action_transition_gap,
        min_periods=settings.action_min_periods,
        max_window=settings.action_max_window,
    )


def _date(value: str | date | None, field: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Unprocessable(
            f"{field} is not a date (YYYY-MM-DD)", fields=[FieldError(loc=field, msg="expected YYYY-MM-DD")]
        ) from None


def reverify(settings: Settings, audit: AuditLog, warehouse: Warehouse, door: Door) -> int:
    """Re-measure every done action after the warehouse changed outside a batch (an exposure
    recorded, a batch deleted or purged); return how many changed status."""
    with warehouse.connect() as conn:
        changes = store.verify(conn, effect_rules(settings), date.today())
    store.audit_changes(audit, changes, door)
    return len(changes)


# A tracked problem's actions and its latest proposal (module level: the class has a method `list`).
ProblemActions = tuple[list[Action], dict[str, Any] | None]


class ActionService:
    """Actions in the warehouse (``VOC_HOME/warehouse.db``): opened from a tracked problem, moved by
    people (open -> in_progress -> done; cancelled; reopened) and verified after every batch (done ->
    verified or not_effective; verified -> reopened when the problem comes back).

    Changes are recorded in the audit trail (``action.open``, ``action.update``) and the outbox
    (``action.created``); reads are recorded before they are answered (``actions.read``) and refused
    with 503 when they cannot be. Reads also flag actions that have just become overdue
    (``action.overdue``, once per action).
    """

    def __init__(self, settings: Settings, audit: AuditLog, today: Callable[[], date] = date.today) -> None:
        self.settings = settings
        self.audit = audit
        self.today = today

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(database(self.settings, "warehouse"))

    def _read(self, via: Actor, target: str | None, **detail: int | str) -> None:
        try:
            self.audit.record(via, "actions.read", target, **detail)
        except AuditError:
            raise AuditUnavailable(
                "the audit log cannot be written; actions are not served without it"
            ) from None

    # -- reads -------------------------------------------------------------------------------

    def list(
        self,
        via: Actor,
        *,
        status: str | None = None,
        overdue: bool = False,
        fixed_since: str | date | None = None,
    ) -> ActionList:
        """Actions, oldest first; with ``status`` only those, with ``overdue`` only unfinished ones
        past their due date, with ``fixed_since`` only those whose fix date is that day or later."""
        since = _date(fixed_since, "fixed_since")
        if status is not None and status not in store.STATUSES:
            raise Unprocessable(
                f"status must be one of {', '.join(store.STATUSES)}",
                fields=[FieldError(loc="status", msg=f"expected one of {', '.join(store.STATUSES)}")],
            )
        today = self.today()
        with self.warehouse.connect() as conn:
            store.flag_overdue(conn, today)
            found = store.find(conn, today, status=status, overdue=overdue)
        if since is not None:
            found = [a for a in found if a.fixed_on is not None and a.fixed_on >= since]
        self._read(via, None, items=len(found))
        return ActionList(actions=found)

    def show(self, via: Actor, action_id: str) -> Action:
        """One action with its history and its effect (windows, counts, ratio, interval, verdict)."""
        today = self.today()
        with self.warehouse.connect() as conn:
            store.flag_overdue(conn, today)
            found = store.get(conn, action_id, today)
        if found is None:
            raise NotFound("no such action (ids look like ACT-0001)")
        self._read(via, found.id, status=found.status)
        return found

    def for_problem(self, via: Actor, problem_id: str) -> ProblemActions:
        """A tracked problem's actions (oldest first) and its latest remediation proposal, if any."""
        today = self.today()
        with self.warehouse.connect() as conn:
            store.flag_overdue(conn, today)
            found = store.find(conn, today, problem_id=problem_id)
            proposal = store.latest_proposal(conn, problem_id)
        self._read(via, problem_id, items=len(found))
        return found, proposal

    # -- changes -----------------------------------------------------------------------------

    def open(
        self,
        via: Actor,
        problem_id: str,
        *,
        owner: str | None = None,
        due: str | date | None = None,
        from_proposal: bool = False,
    ) -> Action:
        """Open an action for a tracked problem; nothing is written when anything is wrong."""
        today = self.today()
        due_on = _date(due, "due")
        if due_on is not None and due_on < today:
            raise Unprocessable(
                "due is in the past", fields=[FieldError(loc="due", msg="expected today or a later date")]
            )
        if owner is not None and not (owner.strip() and len(owner) <= MAX_OWNER):
            raise Unprocessable(
                "owner must be a department name",
                fields=[FieldError(loc="owner", msg=f"expected 1 to {MAX_OWNER} characters")],
            )
        remediation = load_remediation(self.settings.path("remediation"))
        reductions = remediation.targets.get("reduction", {})
        with self.warehouse.connect() as conn:
            problem = conn.execute("SELECT * FROM problems WHERE id = ?", (problem_id,)).fetchone()
            if problem is None:
                raise NotFound("no such tracked problem (ids look like TP-0001; voc problems lists them)")
            if problem["merged_into"]:
                raise Unprocessable(
                    f"{problem['id']} was merged into {store.live_problem(conn, problem['id'])}; "
                    "open the action there",
                    fields=[FieldError(loc="problem_id", msg="a merged problem")],
                )
            latest = conn.execute(
                "SELECT priority, department FROM series WHERE subject = 'problem' AND key = ? "
                "AND complaints > 0 ORDER BY period DESC LIMIT 1",
                (problem["id"],),
            ).fetchone()
            priority: Any = latest["priority"] if latest and latest["priority"] else "P4"
            new = NewAction(
                problem_id=problem["id"],
                due=due_on or date.fromordinal(today.toordinal() + self.settings.action_due_days),
                target_ratio=1 - float(reductions.get(priority, 0.3))
                if isinstance(reductions, dict)
                else 0.7,
                owner=(latest["department"] if latest else None) or problem["department"],
            )
            if from_proposal:
                proposal = store.latest_proposal(conn, problem["id"])
                if proposal is None:
                    raise Unprocessable(
                        f"{problem['id']} has no remediation proposal yet (proposals are made for a batch's "
                        "top problems); open it without --from-proposal",
                        fields=[FieldError(loc="from_proposal", msg="no proposal for this problem")],
                    )
                self._from_proposal(new, proposal, remediation, today, due_on is None)
            if owner is not None:
                new.owner = mask_text(owner.strip())
            action_id = store.create(conn, new, via.name)
            created = store.get(conn, action_id, today)
        assert created is not None
        self.audit.record_done(via, "action.open", action_id, problem=created.problem_id, status="open")
        return created

    @staticmethod
    def _from_proposal(
        new: NewAction, proposal: dict[str, Any], remediation: Any, today: date, set_due: bool
    ) -> None:
        new.owner = proposal.get("owner_department") or new.owner
        new.owner_role = proposal.get("owner_role")
        new.handling_class = proposal.get("handling_class")
        new.goals = list(proposal.get("goals", []))
        new.measures = [
            f"[{'短期' if m.get('term') == 'short' else '长期'}] {m.get('text', '')}"
            for m in proposal.get("measures", [])
        ]
        new.metrics = list(proposal.get("metrics", []))
        new.proposal_batch = proposal.get("batch_id")
        volume = next((m for m in new.metrics if m.get("name") == "月投诉量"), None)
        if volume and volume.get("baseline") and volume.get("target") is not None:
            ratio = float(volume["target"]) / float(volume["baseline"])
            if math.isfinite(ratio) and 0 <= ratio < 1:
                new.target_ratio = ratio
        klass = remediation.handling_classes.get(new.handling_class) if new.handling_class else None
        days = klass.deadline_days.get(proposal.get("priority")) if klass else None
        if set_due and days:
            new.due = date.fromordinal(today.toordinal() + int(days))

    def update(
        self,
        via: Actor,
        action_id: str,
        status: str,
        *,
        fixed_on: str | date | None = None,
        note: str | None = None,
    ) -> Action:
        """Move an action to ``status`` (in_progress, done, cancelled, reopened); ``done`` needs the fix
        date and a root-cause note. An illegal move is 409 and changes nothing."""
        today = self.today()
        if status not in store.STATUSES:
            raise Unprocessable(
                f"status must be one of {', '.join(PERSON_STATUSES)}",
                fields=[FieldError(loc="status", msg=f"expected one of {', '.join(PERSON_STATUSES)}")],
            )
        fixed = _date(fixed_on, "fixed_on")
        if note is not None and len(note) > MAX_NOTE:
            raise Unprocessable(
                "note is too long", fields=[FieldError(loc="note", msg=f"at most {MAX_NOTE}")]
            )
        masked = mask_text(note.strip()) if note and note.strip() else None
        with self.warehouse.connect() as conn:
            before = store.get(conn, action_id, today)
            if before is None:
                raise NotFound("no such action (ids look like ACT-0001)")
            try:
                store.move(conn, action_id, status, via.name, today, fixed, masked)
            except IllegalMove as exc:
                raise IllegalTransition(str(exc)) from None
            # A fix already far enough in the past is judged at once.
            changes = store.verify(conn, effect_rules(self.settings), today)
            after = store.get(conn, action_id, today)
        assert after is not None
        self.audit.record_done(via, "action.update", action_id, status=status, previous=before.status)
        store.audit_changes(self.audit, changes, via.door)
        return after
