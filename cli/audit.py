"""voc audit and voc purge: read the audit trail and delete old batches from VOC_HOME."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from cli.common import HomeOpt, console, err
from tools.audit import AuditError, AuditLog, cli_actor
from tools.settings import Settings
from tools.sql import database

if TYPE_CHECKING:
    from services.retention import PurgeReport

app = typer.Typer()


def _state_settings(home: Path | None) -> Settings:
    """Settings for commands that only touch files under VOC_HOME (no engine, no models)."""
    return Settings(home=home) if home is not None else Settings()


def _since(since: str | None, days: int | None) -> datetime | None:
    if since is not None and days is not None:
        err.print("[red]Give --since or --days, not both.[/]")
        raise typer.Exit(2)
    if days is not None:
        return datetime.now(UTC) - timedelta(days=days)
    if since is None:
        return None
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        err.print("[red]--since takes an ISO 8601 date or time, e.g. 2026-10-01 or 2026-10-01T08:00+08:00[/]")
        raise typer.Exit(2) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command("audit")
def audit_cmd(
    since: Annotated[
        str | None, typer.Option("--since", help="Only events from this time on (ISO 8601; UTC if no zone).")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=0, help="Only the last N days.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="key:NAME, local, mcp:stdio or user:LOGIN.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="e.g. batch.read; without a dot a whole family (batch, knowledge)."),
    ] = None,
    door: Annotated[str | None, typer.Option("--door", help="cli, http, mcp or batch.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="A batch id, entry or case id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many events.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as a JSON array.")] = False,
    home: HomeOpt = None,
) -> None:
    """Show the audit trail: who submitted, read or deleted which batch or knowledge entry, when.

    Newest first, with the door each action came through (cli, http or mcp).
    It holds ids, names, actions, counts and times, never complaint text.
    It lives in VOC_HOME/audit.db; voc purge never removes it.
    This read is recorded too.

    Examples:

      voc audit --days 7

      voc audit --target b-1f2e3d4c5b6a7980

      voc audit --actor key:crm --action batch.read --json
    """
    from tools.audit import DOORS, AuditQuery

    if door is not None and door not in DOORS:
        err.print("[red]--door must be cli, http, mcp or batch[/]")
        raise typer.Exit(2)
    q = AuditQuery(
        since=_since(since, days),
        actor=actor,
        action=action,
        door=door,
        target=target,
        limit=limit,
    )
    settings = _state_settings(home)
    try:
        events = AuditLog(database(settings, "audit")).read(q, cli_actor())
    except AuditError as exc:
        err.print(f"[bold red]Cannot read the audit log[/]: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False, indent=1))
        return
    table = Table(
        title=f"Audit trail · {database(settings, 'audit').where} · newest first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Door", no_wrap=True, min_width=4)
    for col in ("Actor", "Action", "Target", "Detail"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(
            e.ts.strftime("%Y-%m-%d %H:%M:%S"),
            e.door,
            e.actor,
            e.action,
            e.target or "",
            " ".join(f"{k}={v}" for k, v in e.detail.items()),
        )
    console.print(table)
    if len(events) == limit:
        console.print(f"[grey50]Showing the newest {limit}; use --limit or filters for more.[/]")


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.2f} MB"


def _purge_table(report: PurgeReport) -> Table:
    verb = "to remove" if report.dry_run else "removed"
    title = (
        f"voc purge · older than {report.older_than_days} days (before {report.cutoff:%Y-%m-%d %H:%M} UTC)"
    )
    if report.dry_run:
        title += " · DRY RUN, nothing removed"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_row(f"Batches {verb}", f"{report.batches} ({report.jobs} service jobs, {report.runs} CLI runs)")
    table.add_row("Result rows", str(report.results))
    table.add_row("Checkpoint threads", f"{report.checkpoint_threads} ({report.checkpoint_rows} rows)")
    table.add_row(
        "Warehouse", f"{report.warehouse_complaints} complaints · {report.warehouse_vectors} cached vectors"
    )
    if report.skipped_running:
        table.add_row("Skipped (running)", str(report.skipped_running))
    for f in report.files:
        table.add_row(f.name, f"{_mb(f.before)} → {_mb(f.after)}")
    table.add_row("Reclaimed", f"{report.bytes_reclaimed:,} bytes · vacuum: {report.vacuum}")
    return table


@app.command()
def purge(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=0,
            help="Delete batches accepted (service) or last run (CLI) more than DAYS days ago.",
            metavar="DAYS",
            show_default=False,
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for cron).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """Retention: delete batches older than DAYS with their results, checkpoints and warehouse data.

    Removed: service batches (job and result rows in VOC_HOME/voc.db),
    and checkpoint threads of service batches and of voc analyze runs
    (VOC_HOME/checkpoints.sqlite: masked complaints and their vectors),
    and from the warehouse (VOC_HOME/warehouse.db) the complaints of those
    batches and any complaint last updated more than DAYS days ago, with the
    cached vectors no complaint uses any more; tracked problems' series,
    statuses and alerts are rebuilt without them.
    The databases are then compacted so the files shrink.

    Left alone: running batches, and folders written by voc analyze --out.
    Kept on purpose: the audit trail (VOC_HOME/audit.db); it records this
    purge and every batch it removed.

    Examples:

      voc purge --older-than 90 --dry-run

      voc purge --older-than 90 --yes

      voc purge --older-than 30 --yes --json > purge-report.json
    """
    from services.retention import Retention

    settings = _state_settings(home)
    retention = Retention(settings, AuditLog(database(settings, "audit")))
    plan = retention.plan(older_than)
    if dry_run:
        _print_purge(retention.report(plan), as_json)
        return
    if plan.batches and not yes:
        console.print(_purge_table(retention.report(plan)))
        typer.confirm(f"Delete these {len(plan.batches)} batches for good?", abort=True)
    _print_purge(retention.purge(plan, cli_actor()), as_json)


def _print_purge(report: PurgeReport, as_json: bool) -> None:
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        console.print(_purge_table(report))
