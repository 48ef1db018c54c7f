"""voc worker / voc workers: analysis in processes of their own, on as many machines as needed."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import HomeOpt, build_settings, console, err, exit_on_data_file_error
from services.config import WORKER_NICE
from tools.sql import DB_ERRORS

app = typer.Typer()


@app.command("worker")
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=64,
            help="Chunk tasks computed at once (threads); one per core is the most that helps.",
        ),
    ] = 1,
    nice: Annotated[
        int,
        typer.Option(
            "--nice",
            min=0,
            max=19,
            help="Lower this process's CPU priority by this much (as `nice -n`), so an API on the same "
            "machine answers first; nothing changes on a machine of its own. 0 keeps the priority.",
        ),
    ] = WORKER_NICE,
    home: HomeOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info",
) -> None:
    """Analyse accepted batches in this process, beside any number of other workers.

    Every worker claims queued batches and the chunk tasks of every running batch from the shared
    database, so one big batch is spread over all of them. Point each at the same
    VOC_DATABASE_URL (Postgres; a SQLite VOC_HOME only works on one machine) and, on more than
    one machine, the same VOC_CHROMA_URL. Run `voc serve --no-workers` for the HTTP side.
    Stop with Ctrl-C or SIGTERM: what it was running resumes elsewhere from its checkpoint.
    """
    from services.config import ApiSettings
    from services.worker import Worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if nice:
        os.nice(nice)
    settings = build_settings(home)
    if not settings.database_url:
        err.print(
            "[yellow]No VOC_DATABASE_URL: this worker shares the SQLite files in "
            f"{settings.home} (workers on this machine only).[/]"
        )
    with exit_on_data_file_error():
        w = Worker(settings, ApiSettings(), concurrency)
        w.start()

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    console.print(f"voc worker {w.id}: {concurrency} slot(s), nice {os.nice(0)}; Ctrl-C stops it")
    try:
        w.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping: running work resumes from its checkpoint")
        w.stop()
        sys.exit(0)


@app.command("workers")
def workers(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOpt = None,
) -> None:
    """The `voc worker` processes that are running: where, since when, their load and last heartbeat."""
    from services.config import ApiSettings
    from services.jobs import JobStore
    from tools.sql import database

    settings = build_settings(home)
    try:
        jobs = JobStore(database(settings, "jobs"))
        rows = jobs.workers(within=ApiSettings().lease_seconds)
        queue = jobs.chunk_counts()
    except DB_ERRORS as exc:
        err.print(f"[bold red]Cannot read the workers' registry:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"workers": rows, "chunks": queue}, ensure_ascii=False, default=str, indent=2))
        return
    if not rows:
        console.print("No voc worker is running (start one with `voc worker`).")
        return
    table = Table(title="voc workers", title_justify="left")
    for col in ("Worker", "Host", "PID", "Slots", "Busy", "Batches", "Chunks done", "Heartbeat"):
        table.add_column(col, justify="right" if col not in ("Worker", "Host") else "left")
    for r in rows:
        beat = f"{r['age']:.0f} s ago" + ("" if r["alive"] else " [red](silent)[/]")
        table.add_row(
            r["id"],
            r["host"],
            str(r["pid"]),
            str(r["slots"]),
            str(r["busy"]),
            str(r["batches"]),
            str(r["chunks_done"]),
            beat,
        )
    console.print(table)
    console.print("Chunk tasks: " + (", ".join(f"{k} {v}" for k, v in sorted(queue.items())) or "none"))
