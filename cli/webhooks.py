"""voc webhooks add | list | remove | deliver: signed events for ticketing and chat systems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import HomeOpt, console, err
from loop.outbox import EVENTS
from services.errors import NotFound, ServiceError
from services.webhooks import WebhookIn, WebhookService
from tools.audit import AuditLog, cli_actor
from tools.settings import Settings
from tools.sql import database

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Send events to other systems (a ticketing system, a chat bot) as signed HTTP POSTs.\n\n"
        f"Events: {', '.join(EVENTS)}. problem.new is sent for new tracked problems at P1 or P2; "
        "problem.alert for each new early warning; batch.done when a batch has finished.\n\n"
        "Each POST carries the headers webhook-id (the same on every retry: de-duplicate on it), "
        "webhook-timestamp and webhook-signature (Standard Webhooks: v1,<base64 HMAC-SHA256 of "
        '"id.timestamp.body"> keyed with the secret). The body holds ids, counts, priorities, '
        "periods and masked department names, never complaint text.\n\n"
        "voc serve delivers continuously; without it, run `voc webhooks deliver` (from cron, say).\n\n"
        "  voc webhooks add https://tickets.example.com/voc --events problem.new,problem.alert\n\n"
        "  voc webhooks list\n\n"
        "  voc webhooks deliver --wait 50"
    ),
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _service(home: Path | None) -> WebhookService:
    settings = Settings(home=home) if home is not None else Settings()
    return WebhookService(settings, AuditLog(database(settings, "audit")))


def _fail(exc: ServiceError, url: str | None = None) -> None:
    where = ""
    if url is not None and exc.fields and exc.fields[0].loc == "url":
        try:
            host = urlsplit(url.strip()).hostname
        except ValueError:
            host = None
        where = f" (host: {host})" if host else ""  # the user's own input, shown back to them only
    err.print(f"[bold red]Error[/]: {escape(exc.message)}{escape(where)}", soft_wrap=True)
    raise typer.Exit(2 if exc.status in (404, 422) else 1)


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST events: an http:// or https:// URL.")],
    events: Annotated[
        str,
        typer.Option(
            "--events", help=f"Comma-separated, among: {', '.join(EVENTS)}; or all.", show_default=False
        ),
    ],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="Signing secret whsec_<base64 of 16-64 bytes>; generated when left out."
        ),
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Subscribe URL to events; prints the subscription id and its signing secret (shown only now).

    The URL must be http(s). Hosts on loopback, private or link-local addresses (127.0.0.1,
    10.x, 192.168.x, 169.254.x, ::1, ...) are refused unless VOC_WEBHOOK_ALLOW_HOSTS lists the
    host name or a CIDR holding its address, e.g. VOC_WEBHOOK_ALLOW_HOSTS=hooks.intra,10.20.0.0/16.
    A subscription receives the events that happen after it was added.

    Exit codes: 0 added; 2 the URL, an event or the secret is not valid (nothing is stored).
    """
    service = _service(home)
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    try:
        body = WebhookIn(url=url, events=wanted or [""], secret=secret)
    except ValueError:
        err.print(
            "[bold red]Error[/]: give a URL of at most 2000 characters and at least one event with --events"
        )
        raise typer.Exit(2) from None
    try:
        created = service.add(cli_actor(), body)
    except ServiceError as exc:
        _fail(exc, url)
        return
    if as_json:
        typer.echo(json.dumps(created.model_dump(), ensure_ascii=False, indent=1))
        return
    console.print(f"Subscription [bold]{created.id}[/] for {', '.join(created.events)}")
    console.print(f"Secret: {created.secret}", highlight=False, soft_wrap=True)
    console.print(
        "[dim]Keep the secret: it is not shown again. Verify webhook-signature with it "
        "(any Standard Webhooks library does).[/]"
    )


@app.command("list")
def list_cmd(as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """List subscriptions with their delivery counts (sent, pending, dead-lettered, failed attempts).

    URLs are shown without their query string."""
    found = _service(home).list().webhooks
    if as_json:
        typer.echo(json.dumps([w.model_dump() for w in found], ensure_ascii=False, indent=1))
        return
    if not found:
        console.print("No webhook subscriptions. Add one with voc webhooks add URL --events ...")
        return
    table = Table(box=box.SIMPLE_HEAVY)
    for col in ("id", "url", "events"):
        table.add_column(col)
    for col in ("sent", "pending", "dead", "failed attempts"):
        table.add_column(col, justify="right")
    for w in found:
        table.add_row(
            w.id,
            escape(w.url),
            ", ".join(w.events),
            str(w.sent),
            str(w.pending),
            str(w.dead),
            str(w.failed_attempts),
        )
    console.print(table)


@app.command("remove")
def remove(
    subscription_id: Annotated[str, typer.Argument(help="The subscription id (wh_...).")],
    home: HomeOpt = None,
) -> None:
    """Remove a subscription; its undelivered events are dropped. Exit code 2 if there is none."""
    try:
        _service(home).remove(cli_actor(), subscription_id)
    except NotFound as exc:
        _fail(exc)
    console.print(f"Removed {escape(subscription_id)}")


@app.command("deliver")
def deliver(
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            max=3600,
            help="Keep going up to this many seconds while retries come due (0: one pass).",
        ),
    ] = 0.0,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Deliver the events waiting in the outbox once, and print what happened.

    For set-ups that only run the CLI (voc serve delivers continuously by itself): run it from
    cron, e.g. every minute. A failed attempt is retried with exponential backoff
    (VOC_WEBHOOK_BACKOFF, doubling up to VOC_WEBHOOK_BACKOFF_MAX) at a later run; after
    VOC_WEBHOOK_MAX_ATTEMPTS attempts it is dead-lettered. Several deliverers at once are safe.

    Exit code 0 even if receivers failed (see the counts); 1 if the outbox cannot be read.
    """
    service = _service(home)
    dispatcher = service.dispatcher()
    try:
        report = dispatcher.drain(wait=wait)
    finally:
        dispatcher.stop()
    if as_json:
        typer.echo(json.dumps(report.model_dump()))
        return
    console.print(
        f"Webhooks: {report.sent} sent · {report.retried} retried · {report.dead_lettered} dead-lettered"
        f" · {report.pending} pending"
    )
