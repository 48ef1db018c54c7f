"""voc problems, voc alerts, voc periods: problems tracked across periods, early warnings, exposure."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.table import Table

from cli.common import HomeOpt, console, dump_json, err
from loop.queries import AlertView, ProblemDetail, TrackedProblem
from services.errors import AuditUnavailable, NotFound, ServiceError, Unprocessable
from services.tracking import SHAPES, TrackingService
from tools.audit import AuditLog, cli_actor
from tools.settings import Settings
from tools.sql import database

app = typer.Typer()

# What --json prints, exactly: the stable part of the views (HTTP and MCP give more).
PROBLEM_KEYS = ("id", "name", "status", "l2", "department", "first_seen", "last_seen")
POINT_KEYS = ("period", "complaints", "customers")
ALERT_KEYS = (
    "id",
    "problem_id",
    "label",
    "period",
    "level",
    "observed",
    "expected",
    "limit",
    "p_value",
    "kind",
)
TESTS = {"poisson_exact": "exact", "control_limit": "control limit"}
BARS = "▁▂▃▄▅▆▇█"
STATUS_STYLE = {
    "new": "yellow",
    "rising": "bold red",
    "regressed": "red",
    "steady": "",
    "falling": "green",
    "dormant": "grey50",
}


class StatusChoice(StrEnum):
    """The --status values."""

    new = "new"
    rising = "rising"
    steady = "steady"
    falling = "falling"
    dormant = "dormant"
    regressed = "regressed"


class LevelChoice(StrEnum):
    """The --level values."""

    warning = "warning"
    alarm = "alarm"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PeriodOpt = Annotated[
    str | None,
    typer.Option("--period", help="A period key: 2026-09 (month), 2026-W36 (week) or 2026-09-03 (day)."),
]


def _group_home(ctx: typer.Context, home: Path | None) -> Path | None:
    """--home given to the subcommand, else to its group (voc problems --home DIR show ID)."""
    if home is not None or ctx.parent is None:
        return home
    given = ctx.parent.params.get("home")
    return given if isinstance(given, Path) else None


def _where(service: TrackingService) -> str:
    """Where the warehouse is, for messages: its file, or its Postgres schema."""
    return database(service.settings, "warehouse").where


def _service(home: Path | None) -> TrackingService:
    """The tracking service alone: no engine, no models, no workers."""
    settings = Settings(home=home) if home is not None else Settings()
    return TrackingService(settings, AuditLog(database(settings, "audit")))


def _fail(exc: ServiceError, service: TrackingService, period: str | None = None) -> NoReturn:
    """A service error as a message and an exit code: 2 for a bad argument or unknown id, 1 when the
    read could not be recorded."""
    if isinstance(exc, Unprocessable) and period is not None and exc.fields and exc.fields[0].loc == "period":
        # The CLI may name what its own user typed; the other doors never echo it.
        length = service.settings.period
        err.print(
            f"[bold red]Malformed period key[/] {period!r}: expected {SHAPES[length]} "
            f"(this warehouse tracks {length} periods; VOC_PERIOD)."
        )
        raise typer.Exit(2)
    if isinstance(exc, AuditUnavailable):
        err.print(f"[bold red]Cannot record this read in the audit log[/]: {exc.message}")
        raise typer.Exit(1)
    err.print(f"[bold red]Error[/]: {exc.message}")
    raise typer.Exit(2 if isinstance(exc, NotFound | Unprocessable) else 1)


def sparkline(counts: list[int]) -> str:
    """One character per period, scaled to the largest count; a dot for none."""
    top = max(counts, default=0)
    return "".join("·" if c <= 0 else BARS[(c * len(BARS) + top - 1) // top - 1] for c in counts)


def _at(problem: TrackedProblem, period: str | None) -> tuple[int, int | None]:
    """The count in ``period`` (the latest by default) and its change from the period before."""
    series = problem.series
    index = next((i for i, s in enumerate(series) if s.period == period), len(series) - 1)
    if index < 0:
        return 0, None
    count = series[index].complaints
    return count, (count - series[index - 1].complaints if index > 0 else None)


def _status(status: str | None) -> str:
    if status is None:
        return ""
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


# -- voc problems ------------------------------------------------------------------------------

problems_app = typer.Typer(invoke_without_command=True)


@problems_app.callback()
def problems(
    ctx: typer.Context,
    status: Annotated[
        StatusChoice | None, typer.Option("--status", help="Only problems with this status.")
    ] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="Only this department, e.g. 网络金融部.")
    ] = None,
    dimension: Annotated[
        str | None, typer.Option("--dimension", help="Only this root-cause dimension: 人, 机, 物, 法 or 环.")
    ] = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """List tracked problems, the biggest in the latest period first.

    A tracked problem (TP-0001, ...) is one thing customers keep complaining
    about, followed period after period under an id that does not change.
    Every tracked batch (voc analyze, HTTP, MCP) adds its negative voices:
    one close to a known problem joins it, the others open new problems.
    A period is the month of received_at (VOC_PERIOD: month, week or day).

    Status in a period, from a statistical test rather than a ratio:
      new        first seen in this period
      rising     significantly more than its history makes likely (voc alerts)
      steady     within what its history makes likely
      falling    significantly fewer
      dormant    no complaints for VOC_DORMANT_AFTER periods in a row (2)
      regressed  back after being dormant
    With --period, the status in that period.

    Count is the latest period's (or --period's), Change the difference from
    the period before, Series one mark per period (· for none).

    Examples:

      voc problems --status rising

      voc problems --department 网络金融部 --period 2026-10

      voc problems show TP-0012

      voc problems --json > problems.json
    """
    if ctx.invoked_subcommand is not None:
        return
    service = _service(home)
    try:
        found = service.problems(
            cli_actor(),
            status=status.value if status else None,
            department=department,
            dimension=dimension,
            period=period,
        ).problems
    except ServiceError as exc:
        _fail(exc, service, period)
    if as_json:
        dump_json(
            {
                "problems": [
                    {
                        **p.model_dump(include=set(PROBLEM_KEYS)),
                        "series": [s.model_dump(include=set(POINT_KEYS)) for s in p.series],
                    }
                    for p in found
                ]
            }
        )
        return
    if not found:
        filtered = any(v is not None for v in (status, department, dimension, period))
        console.print(
            "No tracked problem matches these filters."
            if filtered
            else f"No tracked problems yet in {_where(service)}: analyse a batch "
            "(voc analyze FILE; tracking is on unless VOC_TRACK=false)."
        )
        return
    latest = period or max(s.period for p in found for s in p.series)
    table = Table(
        title=f"Tracked problems · {latest} · biggest first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("Id", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Department", overflow="fold")
    table.add_column("Seen", no_wrap=True)
    table.add_column("Count", justify="right", no_wrap=True)
    table.add_column("Change", justify="right", no_wrap=True)
    table.add_column("Series", no_wrap=True)
    for p in found:
        count, change = _at(p, period)
        table.add_row(
            p.id,
            _status(p.status),
            p.name,
            p.department or "",
            f"{p.first_seen}…{p.last_seen or ''}",
            str(count),
            "" if change is None else f"{change:+d}",
            sparkline([s.complaints for s in p.series]),
        )
    console.print(table)


@problems_app.command("show")
def show(
    ctx: typer.Context,
    problem_id: Annotated[
        str, typer.Argument(help="A tracked problem id, e.g. TP-0012.", show_default=False)
    ],
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Show one tracked problem: its series, lineage, alerts, recent complaints.

    Per period: complaints, distinct customers, share of the period's
    complaints, grade mix, most frequent priority, department and status.
    Lineage: the problem it split from, or merged into. Alerts: as in
    voc alerts. Recent complaints: the newest five, masked.

    Examples:

      voc problems show TP-0012

      voc problems show TP-0012 --json
    """
    service = _service(_group_home(ctx, home))
    try:
        found = service.problem(cli_actor(), problem_id)
    except NotFound:
        err.print(
            f"[bold red]No tracked problem {problem_id!r}[/] in {_where(service)}. `voc problems` lists them."
        )
        raise typer.Exit(2) from None
    except ServiceError as exc:
        _fail(exc, service)
    if as_json:
        dump_json(found.model_dump(mode="json"))
        return
    _show(found)


def _show(p: ProblemDetail) -> None:
    console.print(f"[bold]{p.id}[/] {p.name}  {_status(p.status)}")
    where = " · ".join(x for x in (p.department, p.l2, p.dimension) if x)
    console.print(f"{where} · seen {p.first_seen}…{p.last_seen or ''} · {p.complaints} complaints in all")
    series = Table(title="Series", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("Period", "Complaints", "Customers", "Share"):
        series.add_column(col, justify="left" if col == "Period" else "right", no_wrap=True)
    series.add_column("Grades", overflow="fold")
    series.add_column("Priority", no_wrap=True)
    series.add_column("Department", overflow="fold")
    series.add_column("Status", no_wrap=True)
    for s in p.series:
        series.add_row(
            s.period,
            str(s.complaints),
            str(s.customers),
            f"{s.share:.1%}",
            " ".join(f"{g} {n}" for g, n in s.grade_mix.items()),
            s.priority or "",
            s.department or "",
            _status(s.status),
        )
    console.print(series)
    for link in p.lineage:
        if link.kind == "split_from":
            text = (
                f"{link.problem_id} split from {link.related_id}"
                if link.problem_id == p.id
                else f"{link.problem_id} split from it"
            )
        else:
            text = (
                f"{link.problem_id} merged into {link.related_id}"
                if link.problem_id == p.id
                else f"{link.problem_id} merged into it"
            )
        console.print(f"Lineage: {text} in {link.period} (similarity {link.similarity:.2f})")
    if p.alerts:
        alerts = Table(title="Alerts", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("Period", "Level", "Observed", "Expected", "Limit", "p-value", "Test"):
            alerts.add_column(col, justify="right" if col in ("Observed", "Expected", "Limit") else "left")
        for a in p.alerts:
            alerts.add_row(
                a.period,
                _level(a.level),
                str(a.observed),
                f"{a.expected:.1f}",
                f"{a.limit:g}",
                f"{a.p_value:.2g}",
                _test(a),
            )
        console.print(alerts)
    if p.examples:
        recent = Table(
            title="Recent complaints (masked)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
        )
        recent.add_column("Period", no_wrap=True)
        recent.add_column("Id", overflow="fold")
        recent.add_column("Grade", no_wrap=True)
        recent.add_column("Text", overflow="fold", ratio=1)
        for e in p.examples:
            text = e.text if len(e.text) <= 160 else e.text[:159] + "…"
            recent.add_row(e.period, e.id, f"{e.grade} {e.priority}", text)
        console.print(recent, highlight=False)


def _test(a: AlertView) -> str:
    """Which test raised it, on counts or on rates (per exposure)."""
    return f"{TESTS.get(a.kind, a.kind)}, {a.basis}s"


def _level(level: str) -> str:
    return "[bold red]alarm[/]" if level == "alarm" else "[yellow]warning[/]"


# -- voc alerts --------------------------------------------------------------------------------


@app.command("alerts")
def alerts(
    period: PeriodOpt = None,
    level: Annotated[
        LevelChoice | None, typer.Option("--level", help="warning (p <= 0.025) or alarm (p <= 0.005).")
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Early warnings: problems and labels above what their history predicts.

    Tracked problems and root-cause labels whose count in a period (a rate,
    once periods have an exposure) is higher than their history makes likely.
    Newest period first. A short history is tested against the previous
    period (Test: exact, the exact Poisson test), a longer one against a
    control limit from its history; on counts, or on rates with exposures.
    warning: one-sided p-value <= 0.025; alarm: p <= 0.005.
    Observed is the period's count, Expected what the history predicts,
    Limit the largest count that would not have alarmed.

    Examples:

      voc alerts --period 2026-10

      voc alerts --level alarm --json
    """
    service = _service(home)
    try:
        found = service.alerts(cli_actor(), period=period, level=level.value if level else None).alerts
    except ServiceError as exc:
        _fail(exc, service, period)
    if as_json:
        dump_json({"alerts": [a.model_dump(include=set(ALERT_KEYS)) for a in found]})
        return
    if not found:
        console.print(
            "No alerts." if period or level else "No alerts yet: nothing has risen beyond its history."
        )
        return
    table = Table(
        title="Alerts · newest period first", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("Period", no_wrap=True)
    table.add_column("Level", no_wrap=True)
    table.add_column("Subject", overflow="fold")
    for col in ("Observed", "Expected", "Limit"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("p-value", no_wrap=True)
    table.add_column("Test", no_wrap=True)
    for a in found:
        table.add_row(
            a.period,
            _level(a.level),
            a.problem_id or f"label {a.label}",
            str(a.observed),
            f"{a.expected:.1f}",
            f"{a.limit:g}",
            f"{a.p_value:.2g}",
            _test(a),
        )
    console.print(table)
    console.print("[grey50]voc problems show ID for a problem's series and complaints.[/]")


# -- voc periods -------------------------------------------------------------------------------

periods_app = typer.Typer(invoke_without_command=True)


@periods_app.callback()
def periods(ctx: typer.Context, as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """List the warehouse's periods with their complaints and exposure.

    Exposure is what a period's complaints are measured against: customers
    served or interactions. When every period compared has one, statuses and
    alerts compare rates instead of counts, so a busier month is not taken
    for a worse one. Record it with voc periods set.

    Examples:

      voc periods

      voc periods set 2026-10 --exposure 1250000
    """
    if ctx.invoked_subcommand is not None:
        return
    service = _service(home)
    found = service.periods().periods
    if as_json:
        dump_json({"periods": [p.model_dump() for p in found]})
        return
    if not found:
        console.print(f"No periods yet in {_where(service)}: analyse a batch first.")
        return
    table = Table(title=f"Periods ({service.settings.period})", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Period", no_wrap=True)
    table.add_column("Complaints", justify="right")
    table.add_column("Exposure", justify="right")
    table.add_column("Per 10,000", justify="right")
    for p in found:
        table.add_row(
            p.period,
            str(p.complaints),
            "" if p.exposure is None else f"{p.exposure:,.0f}",
            "" if not p.exposure else f"{p.complaints / p.exposure * 10_000:.2f}",
        )
    console.print(table)


@periods_app.command("set")
def periods_set(
    ctx: typer.Context,
    period: Annotated[str, typer.Argument(help="The period key, e.g. 2026-10 (month).", show_default=False)],
    exposure: Annotated[
        float,
        typer.Option(
            "--exposure",
            help="Customers served or interactions in the period (> 0).",
            show_default=False,
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """Record a period's exposure and rebuild statuses and alerts with it.

    Exposure: customers served or interactions in the period. Statuses and
    alerts compare rates once every period compared has one; until then,
    counts. Setting a period again replaces its exposure. Every series,
    status and alert is rebuilt at once. Recorded in the audit trail.

    Examples:

      voc periods set 2026-09 --exposure 1180000

      voc periods set 2026-10 --exposure 1250000
    """
    service = _service(_group_home(ctx, home))
    try:
        info = service.set_exposure(cli_actor(), period, exposure)
    except ServiceError as exc:
        _fail(exc, service, period)
    alerts = service.reader.alerts(period=period)
    console.print(
        f"{info.period}: exposure {info.exposure:,.0f} for {info.complaints} complaints; series, statuses "
        f"and alerts rebuilt ({len(alerts)} alert{'s' if len(alerts) != 1 else ''} in {info.period})."
    )
