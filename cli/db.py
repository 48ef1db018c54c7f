"""voc db: create or upgrade every store (SQLite files in VOC_HOME, or Postgres with VOC_DATABASE_URL)."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import HomeOpt, build_settings, console, err
from services import storage
from tools.sql import DB_ERRORS

app = typer.Typer(
    help="The databases: where each store is (voc db status) and its schema upgrade (voc db upgrade). "
    "Set VOC_DATABASE_URL=postgresql://user@host/db to keep every store in Postgres; unset, they are "
    "SQLite files in VOC_HOME.",
    no_args_is_help=True,
)


def _table(title: str, rows: list[storage.StoreVersion], upgraded: bool) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Store")
    table.add_column("Where")
    table.add_column("Version", justify="right")
    for r in rows:
        version = f"{r.before} → {r.after}" if upgraded and r.before != r.after else str(r.after)
        table.add_row(r.name, r.where, version)
    return table


@app.command("upgrade")
def db_upgrade(home: HomeOpt = None) -> None:
    """Create the stores, or bring them to this version's schema. Safe to run again, and safe when
    several processes (API, workers) start at once: each store upgrades once, under its own lock.
    Run it once after installing a new version, before starting `voc serve` and `voc worker`."""
    settings = build_settings(home)
    try:
        rows = storage.upgrade(settings)
    except DB_ERRORS as exc:
        err.print(f"[bold red]Upgrade failed:[/] {exc}")
        raise typer.Exit(1) from None
    changed = sum(r.before != r.after for r in rows)
    title = f"Stores upgraded ({changed} changed)" if changed else "Stores already up to date"
    console.print(_table(title, rows, upgraded=True))


@app.command("status")
def db_status(home: HomeOpt = None) -> None:
    """Where each store is and its schema version (0: not created yet). Changes nothing."""
    settings = build_settings(home)
    try:
        rows = storage.status(settings)
    except DB_ERRORS as exc:
        err.print(f"[bold red]Cannot read the stores:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(_table("Stores", rows, upgraded=False))
