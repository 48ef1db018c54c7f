"""voc actions: a tracked problem's remediation as owned work, and whether the fix worked."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import HomeOpt, console, dump_json, err, refuse
from loop.actions import Action
from services.actions import ActionService, action_json
from services.errors import AuditUnavailable, ServiceError
from tools.audit import AuditLog, cli_actor
from tools.settings import Settings
from tools.sql import database

app = typer.Typer(
    help="Actions: a tracked problem's remediation as owned work with a due date, a status history "
    "and a verified effect. voc actions open TP-0012 --from-proposal to start.",
    no_args_is_help=True,
)

VERDICT_STYLE = {
    "effective": "green",
    "improving": "cyan",
    "pending": "grey50",
    "not_effective": "red",
    "regressed": "bold red",
}


class StatusChoice(StrEnum):
    """The --status values of voc actions list."""

    open = "open"
    in_progress = "in_progress"
    done = "done"
    verified = "verified"
    not_effective = "not_effective"
    cancelled = "cancelled"
    reopened = "reopened"


class MoveChoice(StrEnum):
    """The statuses a person sets (verified and not_effective come from the verification)."""

    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"
    reopened = "reopened"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _service(home: Path | None) -> ActionService:
    """The action service alone: no engine, no models."""
    settings = Settings(home=home) if home is not None else Settings()
    return ActionService(settings, AuditLog(database(settings, "audit")))


def _fail(exc: ServiceError) -> NoReturn:
    """Exit 2 for a bad argument, unknown id or illegal move; 1 when the read could not be recorded."""
    if isinstance(exc, AuditUnavailable):
        err.print(f"[bold red]Cannot record this read in the audit log[/]: {exc.message}")
        raise typer.Exit(1)
    refuse(exc)
    raise typer.Exit(2)


def _verdict(v: str | None) -> str:
    if v is None:
        return ""
    style = VERDICT_STYLE.get(v, "")
    return f"[{style}]{v}[/]" if style else v


@app.command("open")
def open_action(
    problem_id: Annotated[
        str, typer.Argument(help="A tracked problem id, e.g. TP-0012.", show_default=False)
    ],
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Owner department. Default: the proposal's, else the problem's."),
    ] = None,
    due: Annotated[
        str | None,
        typer.Option(
            "--due",
            help="Due date, YYYY-MM-DD. Default: from the proposal's handling class and priority "
            "(remediation.yaml), else VOC_ACTION_DUE_DAYS (15) days from today.",
        ),
    ] = None,
    from_proposal: Annotated[
        bool,
        typer.Option(
            "--from-proposal",
            help="Take owner, handling class, goals, measures, target metrics and deadline from the "
            "problem's latest remediation proposal.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Open an action for a tracked problem and print its id (ACT-0001, ...).

    An action is the remediation of one tracked problem as owned work:
    owner department and role, handling class, due date, the proposal's
    goals, measures and target metrics. Its status moves
    open -> in_progress -> done -> verified | not_effective, plus
    cancelled and reopened. Marking it done needs the fix date and a
    root-cause note; after every batch its effect is measured (voc actions show).

    Examples:

      voc actions open TP-0012 --from-proposal

      voc actions open TP-0007 --owner 信用卡中心 --due 2026-12-31
    """
    service = _service(home)
    try:
        created = service.open(cli_actor(), problem_id, owner=owner, due=due, from_proposal=from_proposal)
    except ServiceError as exc:
        _fail(exc)
    typer.echo(created.id)


@app.command("list")
def list_actions(
    status: Annotated[
        StatusChoice | None, typer.Option("--status", help="Only actions with this status.")
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only unfinished actions past their due date.")
    ] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """List actions, oldest first, with their status and verdict.

    Verdict (updated after every batch, for actions marked done):
      pending        too early: too few periods after the fix
      improving      lower, not yet beyond chance or down to the target
      effective      lower beyond chance (95% interval below 1), target met
      not_effective  enough periods after the fix and no drop that counts
      regressed      back after a verified fix: the action is reopened

    Examples:

      voc actions list --overdue

      voc actions list --status done --json
    """
    service = _service(home)
    try:
        found = service.list(cli_actor(), status=status.value if status else None, overdue=overdue).actions
    except ServiceError as exc:
        _fail(exc)
    if as_json:
        dump_json({"actions": [action_json(a) for a in found]})
        return
    if not found:
        empty = "No actions yet: voc actions open TP-ID."
        console.print("No action matches." if status or overdue else empty)
        return
    table = Table(title="Actions · oldest first", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("Id", "Problem", "Status", "Owner", "Due", "Fixed", "Verdict", "Ratio (95% CI)"):
        table.add_column(col, overflow="fold")
    for a in found:
        e = a.effect
        ratio = "" if e is None or e.rate_ratio is None else _ratio(e.rate_ratio, e.ci_low, e.ci_high)
        due = f"[bold red]{a.due} overdue[/]" if a.overdue else str(a.due)
        table.add_row(
            a.id,
            a.problem_id,
            a.status,
            a.owner or "",
            due,
            str(a.fixed_on or ""),
            _verdict(e.verdict if e else None),
            ratio,
        )
    console.print(table)
    console.print("[grey50]voc actions show ID for its history and effect.[/]")


def _ratio(ratio: float, low: float | None, high: float | None) -> str:
    top = "∞" if high is None else f"{high:.2f}"
    return f"{ratio:.2f} ({(low or 0):.2f}–{top})"


@app.command("show")
def show(
    action_id: Annotated[str, typer.Argument(help="An action id, e.g. ACT-0001.", show_default=False)],
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Show one action: owner, due date, history and its effect.

    The effect compares the problem's complaints in equal windows before and
    after the fix date (the fix's own period left out as the transition,
    VOC_ACTION_TRANSITION_GAP): per exposure when every period has one, else
    as a share of each period's complaints, else raw counts. The rate ratio
    has a 95% interval from the exact conditional Poisson test; comparable
    problems without an action (same department or dimension) are the control.

    Examples:

      voc actions show ACT-0003

      voc actions show ACT-0003 --json
    """
    service = _service(home)
    try:
        found = service.show(cli_actor(), action_id)
    except ServiceError as exc:
        _fail(exc)
    if as_json:
        dump_json(action_json(found))
        return
    _show(found)


def _show(a: Action) -> None:
    console.print(f"[bold]{a.id}[/] on {a.problem_id} {a.problem_name or ''}  [bold]{a.status}[/]")
    due = f"[bold red]{a.due} (overdue)[/]" if a.overdue else str(a.due)
    parts = [f"owner {a.owner or '-'}", f"due {due}", f"target ratio ≤ {a.target_ratio:.2f}"]
    if a.handling_class:
        parts.insert(1, a.handling_class)
    if a.fixed_on:
        parts.append(f"fixed on {a.fixed_on}")
    console.print(" · ".join(parts))
    if a.root_cause:
        console.print(f"Root cause: {escape(a.root_cause)}")
    for g in a.goals:
        console.print(f"Goal: {escape(g)}")
    for m in a.measures:
        console.print(f"Measure: {escape(m)}")
    history = Table(title="History", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("When (UTC)", "Who", "From", "To", "Note"):
        history.add_column(col, overflow="fold")
    for h in a.history:
        note = (f"fixed on {h.fixed_on}; " if h.fixed_on else "") + (h.note or "")
        history.add_row(h.at, h.actor, h.from_status or "", h.to_status, escape(note))
    console.print(history)
    e = a.effect
    if e is None:
        console.print("Effect: measured once the action is done (voc actions update ID --status done ...).")
        return
    console.print(f"Effect: {_verdict(e.verdict)}")
    console.print(e.summary, highlight=False)


@app.command("update")
def update(
    action_id: Annotated[str, typer.Argument(help="An action id, e.g. ACT-0001.", show_default=False)],
    status: Annotated[
        MoveChoice,
        typer.Option("--status", help="in_progress, done, cancelled or reopened.", show_default=False),
    ],
    fixed_on: Annotated[
        str | None, typer.Option("--fixed-on", help="The fix date, YYYY-MM-DD; needed for done.")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="The root cause found (needed for done), or the reason.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Move an action to another status.

    Allowed: open -> in_progress, done, cancelled; in_progress -> done,
    cancelled; done -> reopened, cancelled; not_effective -> reopened,
    cancelled; verified or cancelled -> reopened. done needs --fixed-on
    (not in the future) and --note (the root cause). verified and
    not_effective are set by the verification after each batch. An illegal
    move changes nothing and exits with code 2.

    Examples:

      voc actions update ACT-0003 --status in_progress

      voc actions update ACT-0003 --status done --fixed-on 2026-10-15 --note "新版本兼容性缺陷已修复"
    """
    service = _service(home)
    try:
        moved = service.update(cli_actor(), action_id, status.value, fixed_on=fixed_on, note=note)
    except ServiceError as exc:
        _fail(exc)
    verdict = f" · effect {moved.effect.verdict}" if moved.effect else ""
    console.print(f"{moved.id}: {moved.status}{verdict}")
