"""voc review: the results the engine is unsure of, and flagged ones, grouped by tracked problem."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from cli.common import HomeOpt, console, err
from services.errors import AuditUnavailable, ServiceError
from services.review import ReviewQueue, ReviewService
from tools.audit import AuditLog, cli_actor
from tools.settings import Settings
from tools.sql import database

app = typer.Typer()


def _conf(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _print(q: ReviewQueue) -> None:
    if not q.total:
        console.print(f"Nothing to review (threshold {q.threshold}: {q.threshold_source}).")
        return
    shown = sum(len(g.items) for g in q.groups)
    console.print(
        f"[bold]Review queue[/]: {q.total} results · label confidence below {q.threshold} "
        f"({escape(q.threshold_source)}) or flagged · showing {shown}, least sure first",
        highlight=False,
    )
    for g in q.groups:
        name = f" {escape(g.problem_name)}" if g.problem_name else ""
        console.print(f"\n[bold]{g.problem_id}[/]{name} · {len(g.items)} to review", highlight=False)
        for i in g.items:
            console.print(
                f"  {escape(i.id)}  {i.label or '非投诉'} {_conf(i.label_confidence)} · "
                f"{escape(i.department or '-')} {_conf(i.department_confidence)} · "
                f"{i.grade} {_conf(i.grade_confidence)} · {i.engine or '-'}",
                highlight=False,
            )
            console.print(f"    why: {escape('; '.join(i.reasons))}", highlight=False)
            console.print(f"    text: {escape(i.text)}", highlight=False, soft_wrap=True)
    if q.next_offset is not None:
        console.print(f"\n{q.total - shown - q.offset} more; raise --limit to see them.")


@app.command()
def review(
    batch: Annotated[
        str | None, typer.Option("--batch", help="Only this batch's results (its id, b-...).", metavar="ID")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Show at most N results.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    home: HomeOpt = None,
) -> None:
    """List the results to check by hand: those whose label confidence is below the review threshold
    (VOC_REVIEW_THRESHOLD, else read off the calibration curve) and those whose text carried
    instructions aimed at a model. Grouped by tracked problem, so a whole problem can be confirmed at
    once; the least sure first. Reads every tracked batch in the warehouse (VOC_HOME/warehouse.db);
    text is masked. Recorded in the audit trail (review.read)."""
    settings = Settings(home=home) if home is not None else Settings()
    service = ReviewService(settings, AuditLog(database(settings, "audit")))
    try:
        q = service.queue(cli_actor(), batch=batch, limit=limit)
    except AuditUnavailable as exc:
        err.print(f"[bold red]Cannot record this read in the audit log[/]: {exc.message}")
        raise typer.Exit(1) from None
    except ServiceError as exc:
        err.print(f"[bold red]Error[/]: {exc.message}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(q.model_dump(mode="json"), ensure_ascii=False, indent=1))
        return
    _print(q)


__all__ = ["app"]
