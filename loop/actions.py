"""Actions: a tracked problem's remediation as owned work with a due date, a status history and a verified
effect. The store and its state machine; every change is written with its history row and its outbox
event in the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from loop import outbox
from loop.effect import Effect, EffectRules, came_back, measure
from tools.audit import Actor, AuditLog, Door
from tools.schema import ActionLine
from tools.sql import Conn, Row, upsert

Status = Literal["open", "in_progress", "done", "verified", "not_effective", "cancelled", "reopened"]
STATUSES: tuple[Status, ...] = (
    "open",
    "in_progress",
    "done",
    "verified",
    "not_effective",
    "cancelled",
    "reopened",
)
# Work not finished yet: only these can be overdue.
UNFINISHED: tuple[Status, ...] = ("open", "in_progress", "reopened")
# What a person may do from each status. verified and not_effective are the verification's to set.
MOVES: dict[str, tuple[Status, ...]] = {
    "open": ("in_progress", "done", "cancelled"),
    "in_progress": ("done", "cancelled"),
    "reopened": ("in_progress", "done", "cancelled"),
    "done": ("reopened", "cancelled"),
    "verified": ("reopened",),
    "not_effective": ("reopened", "cancelled"),
    "cancelled": ("reopened",),
}
VERIFIER = "system:verification"


class IllegalMove(ValueError):
    """A status change the state machine does not allow, or one missing what it needs."""


class HistoryEntry(BaseModel):
    """One change of an action: who, when, from, to."""

    at: str = Field(description="UTC time.")
    actor: str = Field(description="key:NAME, local, mcp:stdio, user:LOGIN, or system:verification.")
    from_status: Status | None = Field(alias="from")
    to_status: Status = Field(alias="to")
    fixed_on: date | None = None
    note: str | None = Field(None, description="The root-cause note or reason given (masked).")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class Action(BaseModel):
    """A tracked problem's remediation as owned work."""

    id: str = Field(description="ACT-0001, ...")
    problem_id: str
    problem_name: str | None = None
    status: Status
    owner: str | None = Field(None, description="Owner department.")
    owner_role: str | None = None
    handling_class: str | None = None
    due: date
    overdue: bool = Field(description="Unfinished (open, in_progress, reopened) and past its due date.")
    fixed_on: date | None = None
    root_cause: str | None = Field(None, description="The root-cause note given when it was marked done.")
    goals: list[str] = Field(default_factory=list)
    measures: list[str] = Field(default_factory=list)
    metrics: list[dict[str, Any]] = Field(default_factory=list, description="Target metrics with baselines.")
    target_ratio: float = Field(description="The most the complaint rate may be after the fix, as a ratio.")
    created_at: str
    updated_at: str
    history: list[HistoryEntry] = Field(default_factory=list)
    effect: Effect | None = None


@dataclass
class NewAction:
    """What opening an action takes."""

    problem_id: str
    due: date
    target_ratio: float
    owner: str | None = None
    owner_role: str | None = None
    handling_class: str | None = None
    goals: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    proposal_batch: str | None = None


@dataclass(frozen=True)
class Change:
    """A status the verification (or the overdue check) changed, for the audit trail."""

    action_id: str
    problem_id: str
    from_status: str
    to_status: str
    verdict: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def live_problem(conn: Conn, problem_id: str) -> str:
    """The problem a (possibly merged) id lives on as."""
    seen = {problem_id}
    current = problem_id
    while True:
        row = conn.execute("SELECT merged_into FROM problems WHERE id = ?", (current,)).fetchone()
        if row is None or not row[0] or row[0] in seen:
            return current
        current = row[0]
        seen.add(current)


# -- proposals -----------------------------------------------------------------------------------


def keep_proposal(
    conn: Conn,
    problem_id: str,
    batch_id: str,
    period: str,
    priority: str,
    proposal: dict[str, Any],
) -> None:
    """The latest proposal made for a tracked problem, for ``voc actions open --from-proposal``."""
    conn.execute(
        upsert("proposals", ["problem_id", "batch_id", "period", "priority", "proposal"], ["problem_id"]),
        (problem_id, batch_id, period, priority, json.dumps(proposal, ensure_ascii=False)),
    )


def latest_proposal(conn: Conn, problem_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM proposals WHERE problem_id = ?", (problem_id,)).fetchone()
    if row is None:
        return None
    return {
        "batch_id": row["batch_id"],
        "period": row["period"],
        "priority": row["priority"],
        **json.loads(row["proposal"]),
    }


# -- the store -----------------------------------------------------------------------------------


def _history(
    conn: Conn,
    action_id: str,
    actor: str,
    old: str | None,
    new: str,
    fixed_on: date | None = None,
    note: str | None = None,
) -> None:
    seq = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM action_history WHERE action_id = ?", (action_id,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO action_history (action_id, seq, at, actor, from_status, to_status, fixed_on, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (action_id, seq, _now(), actor, old, new, fixed_on.isoformat() if fixed_on else None, note),
    )


def _payload(conn: Conn, action_id: str, **extra: Any) -> dict[str, Any]:
    """What an action event carries: ids, figures and the owner department, never text."""
    row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
    return {
        "action_id": row["id"],
        "problem_id": row["problem_id"],
        "status": row["status"],
        "owner": row["owner"],
        "due": row["due"],
        "fixed_on": row["fixed_on"],
        **extra,
    }


def create(conn: Conn, new: NewAction, actor: str) -> str:
    """Open an action; its id. Emits ``action.created`` in the same transaction."""
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM actions").fetchone()[0]
    action_id = f"ACT-{seq:04d}"
    now = _now()
    conn.execute(
        "INSERT INTO actions (id, seq, problem_id, status, owner, owner_role, handling_class, due, goals, "
        "measures, metrics, target_ratio, proposal_batch, created_at, updated_at) "
        "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            action_id,
            seq,
            new.problem_id,
            new.owner,
            new.owner_role,
            new.handling_class,
            new.due.isoformat(),
            json.dumps(new.goals, ensure_ascii=False),
            json.dumps(new.measures, ensure_ascii=False),
            json.dumps(new.metrics, ensure_ascii=False),
            new.target_ratio,
            new.proposal_batch,
            now,
            now,
        ),
    )
    _history(conn, action_id, actor, None, "open")
    outbox.emit(conn, "action.created", _payload(conn, action_id, target_ratio=new.target_ratio))
    return action_id


def _action(conn: Conn, row: Row, today: date) -> Action:
    history = [
        HistoryEntry(
            at=h["at"],
            actor=h["actor"],
            from_status=h["from_status"],
            to_status=h["to_status"],
            fixed_on=h["fixed_on"],
            note=h["note"],
        )
        for h in conn.execute(
            "SELECT * FROM action_history WHERE action_id = ? ORDER BY seq", (row["id"],)
        ).fetchall()
    ]
    eff = conn.execute("SELECT effect FROM effects WHERE action_id = ?", (row["id"],)).fetchone()
    name = conn.execute("SELECT name FROM problems WHERE id = ?", (row["problem_id"],)).fetchone()
    due = date.fromisoformat(row["due"])
    return Action(
        id=row["id"],
        problem_id=row["problem_id"],
        problem_name=name[0] if name else None,
        status=row["status"],
        owner=row["owner"],
        owner_role=row["owner_role"],
        handling_class=row["handling_class"],
        due=due,
        overdue=row["status"] in UNFINISHED and due < today,
        fixed_on=row["fixed_on"],
        root_cause=row["root_cause"],
        goals=json.loads(row["goals"]),
        measures=json.loads(row["measures"]),
        metrics=json.loads(row["metrics"]),
        target_ratio=row["target_ratio"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        history=history,
        effect=Effect.model_validate_json(eff[0]) if eff else None,
    )


def get(conn: Conn, action_id: str, today: date) -> Action | None:
    row = conn.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
    return None if row is None else _action(conn, row, today)


def find(
    conn: Conn,
    today: date,
    status: str | None = None,
    overdue: bool = False,
    problem_id: str | None = None,
) -> list[Action]:
    """Actions, oldest first, optionally of one status, one problem, or only the overdue ones."""
    query, args = "SELECT * FROM actions", []
    clauses = []
    if status:
        clauses.append("status = ?")
        args.append(status)
    if problem_id:
        clauses.append("problem_id = ?")
        args.append(problem_id)
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    found = [_action(conn, r, today) for r in conn.execute(query + " ORDER BY seq", args).fetchall()]
    return [a for a in found if a.overdue] if overdue else found


def move(
    conn: Conn,
    action_id: str,
    to: str,
    actor: str,
    today: date,
    fixed_on: date | None = None,
    note: str | None = None,
) -> None:
    """A person's status change. ``done`` needs the fix date (not in the future) and a root-cause note.
    Raises :class:`IllegalMove` (nothing changed) when the state machine does not allow it."""
    row = conn.execute("SELECT status FROM actions WHERE id = ?", (action_id,)).fetchone()
    if row is None:
        raise KeyError(action_id)
    old = row["status"]
    if to not in STATUSES:
        raise IllegalMove(f"unknown status {to!r}; one of {', '.join(STATUSES)}")
    if to in ("verified", "not_effective"):
        raise IllegalMove(f"{to} is set by effect verification after each batch, not by hand")
    if to not in MOVES[old]:
        allowed = ", ".join(MOVES[old])
        raise IllegalMove(f"an action that is {old} cannot become {to}; from {old}: {allowed}")
    if to == "done":
        if fixed_on is None or not (note and note.strip()):
            raise IllegalMove("marking an action done needs the fix date (fixed_on) and a root-cause note")
        if fixed_on > today:
            raise IllegalMove("the fix date is in the future; mark the action done once the fix is in")
    elif fixed_on is not None:
        raise IllegalMove("a fix date is given only when marking an action done")
    sets = "status = ?, updated_at = ?"
    args: list[Any] = [to, _now()]
    if to == "done":
        sets += ", fixed_on = ?, root_cause = ?, verified_through = NULL"
        args += [fixed_on.isoformat() if fixed_on else None, note]
        conn.execute("DELETE FROM effects WHERE action_id = ?", (action_id,))
    if to in UNFINISHED:
        sets += ", overdue_flagged = 0"
    conn.execute(f"UPDATE actions SET {sets} WHERE id = ?", [*args, action_id])
    _history(conn, action_id, actor, old, to, fixed_on, note)


def flag_overdue(conn: Conn, today: date) -> list[str]:
    """Unfinished actions past their due date, each flagged (and ``action.overdue`` emitted) once."""
    marks = ",".join("?" * len(UNFINISHED))
    rows = conn.execute(
        f"SELECT id, due FROM actions WHERE status IN ({marks}) AND overdue_flagged = 0 AND due < ?",
        [*UNFINISHED, today.isoformat()],
    ).fetchall()
    flagged = []
    for r in rows:
        conn.execute("UPDATE actions SET overdue_flagged = 1 WHERE id = ?", (r["id"],))
        days = (today - date.fromisoformat(r["due"])).days
        outbox.emit(conn, "action.overdue", _payload(conn, r["id"], days_overdue=days))
        flagged.append(r["id"])
    return flagged


def _set_status(conn: Conn, action_id: str, old: str, new: str, note: str, **columns: Any) -> None:
    sets = ", ".join(["status = ?", "updated_at = ?", *(f"{k} = ?" for k in columns)])
    conn.execute(f"UPDATE actions SET {sets} WHERE id = ?", [new, _now(), *columns.values(), action_id])
    _history(conn, action_id, VERIFIER, old, new, note=note)


def _figures(e: Effect) -> dict[str, Any]:
    return {
        "verdict": e.verdict,
        "basis": e.basis,
        "rate_ratio": e.rate_ratio,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "before_complaints": e.before.complaints,
        "after_complaints": e.after.complaints,
        "before_periods": e.before.periods,
        "after_periods": e.after.periods,
        "control_ratio": e.control_ratio,
    }


def verify(conn: Conn, rules: EffectRules, today: date) -> list[Change]:
    """Re-measure every done, verified and not_effective action on what the warehouse now holds.

    done or not_effective -> verified when the verdict is effective (``action.verified``); done ->
    not_effective when it is not_effective; verified -> reopened when the problem has an alert (a rise
    beyond its history) in a period after the one it was verified through (``action.regressed``).
    """
    changes: list[Change] = []
    rows = conn.execute(
        "SELECT * FROM actions WHERE status IN ('done', 'verified', 'not_effective') "
        "AND fixed_on IS NOT NULL ORDER BY seq"
    ).fetchall()
    for row in rows:
        action_id, old = row["id"], row["status"]
        problem = live_problem(conn, row["problem_id"])
        effect = measure(conn, problem, date.fromisoformat(row["fixed_on"]), row["target_ratio"], rules)
        new = old
        if old == "verified":
            through = row["verified_through"] or ""
            alert = conn.execute(
                "SELECT period, observed, expected, p_value, level FROM alerts "
                "WHERE problem_id = ? AND period > ? ORDER BY period LIMIT 1",
                (problem, through),
            ).fetchone()
            back = (
                (alert["period"], alert["observed"], alert["expected"], alert["p_value"])
                if alert is not None
                else came_back(conn, problem, effect, through, rules)
            )
            if back is not None:
                period, observed, expected, p_value = back
                effect.verdict = "regressed"
                effect.regressed_in = period
                effect.summary += (
                    f" Then it came back: {observed} complaints by {period} where the level after the fix "
                    f"(or its history) expected {expected:.1f} (p={p_value:.2g}). Verdict: regressed; the "
                    "action is reopened."
                )
                new = "reopened"
                _set_status(conn, action_id, old, new, f"regressed in {period}", overdue_flagged=0)
                outbox.emit(
                    conn,
                    "action.regressed",
                    _payload(
                        conn,
                        action_id,
                        period=period,
                        observed=observed,
                        expected=expected,
                        p_value=p_value,
                        **_figures(effect),
                    ),
                )
        elif effect.verdict == "effective":
            new = "verified"
            through = effect.after.periods[-1]
            _set_status(conn, action_id, old, new, "effective", verified_through=through)
            outbox.emit(conn, "action.verified", _payload(conn, action_id, **_figures(effect)))
        elif effect.verdict == "not_effective" and old == "done":
            new = "not_effective"
            _set_status(conn, action_id, old, new, "not effective")
        conn.execute(
            upsert("effects", ["action_id", "effect", "updated_at"], ["action_id"]),
            (action_id, effect.model_dump_json(), _now()),
        )
        if new != old:
            changes.append(Change(action_id, row["problem_id"], old, new, effect.verdict))
    return changes


def audit_changes(audit: AuditLog, changes: list[Change], door: Door) -> None:
    """The verification's own status changes, in the audit trail under its name."""
    for c in changes:
        audit.record_done(
            Actor(VERIFIER, door),
            "action.verify",
            c.action_id,
            problem=c.problem_id,
            status=c.to_status,
            previous=c.from_status,
            verdict=c.verdict,
        )


def _window(periods: list[str], complaints: int) -> str:
    span = periods[0] if len(periods) == 1 else f"{periods[0]}…{periods[-1]}"
    return f"{span}: {complaints}"


def action_lines(conn: Conn, today: date) -> list[ActionLine]:
    """Every action not cancelled, as a report lists it."""
    lines = []
    for a in find(conn, today):
        if a.status == "cancelled":
            continue
        e = a.effect
        lines.append(
            ActionLine(
                id=a.id,
                problem_id=a.problem_id,
                problem_name=a.problem_name,
                status=a.status,
                owner=a.owner,
                due=a.due.isoformat(),
                overdue=a.overdue,
                fixed_on=a.fixed_on.isoformat() if a.fixed_on else None,
                verdict=e.verdict if e else None,
                rate_ratio=e.rate_ratio if e else None,
                ci_low=e.ci_low if e else None,
                ci_high=e.ci_high if e else None,
                basis=e.basis if e else None,
                before=_window(e.before.periods, e.before.complaints) if e and e.before.periods else None,
                after=_window(e.after.periods, e.after.complaints) if e and e.after.periods else None,
                control_ratio=e.control_ratio if e else None,
                summary=e.summary if e else None,
            )
        )
    return lines
