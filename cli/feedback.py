"""voc feedback: reviewers confirm or correct a complaint's label, department, grade or tracked problem;
later runs in the same home learn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import HomeOpt, console, dump_json, err, refuse
from services.errors import ServiceError
from services.feedback import CorrectionIn, FeedbackService
from tools.audit import Actor, AuditLog, cli_actor
from tools.datafile import DataFileError
from tools.ingest import InputFileError, records_from_bytes
from tools.pii import mask_text
from tools.settings import Settings
from tools.sql import database

app = typer.Typer(
    help="Reviewers' corrections: confirm or correct a complaint's L2 label, department, grade or tracked "
    "problem. Later runs in the same home keep the answer for that complaint and its near-duplicates, and "
    "use it as an exemplar for similar complaints. voc feedback add ID --l2 人-服务态度 to start.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="The warehouse source of the id (needed when it is in several)."),
]
RefArg = Annotated[
    str, typer.Argument(help="A correction id (COR-0001) or a complaint id.", show_default=False)
]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who reviewed it (the audit trail's name). Default: your login.")
]


def _service(home: Path | None) -> FeedbackService:
    """The feedback service alone: no engine, no models."""
    settings = Settings(home=home) if home is not None else Settings()
    return FeedbackService(settings, AuditLog(database(settings, "audit")))


def _actor(by: str | None) -> Actor:
    if by and by.strip():
        return Actor(f"user:{mask_text(by.strip())[:64]}", "cli")
    return cli_actor()


def _fail(exc: ServiceError) -> NoReturn:
    """Exit 2 for a refused correction or an unknown id."""
    refuse(exc)
    raise typer.Exit(2)


def _describe(cor: dict[str, Any]) -> str:
    parts = [f"{k}={cor[k]}" for k in ("l2", "department_id", "grade", "problem_id") if cor.get(k)]
    return ", ".join(parts) + (" (confirmed)" if cor.get("confirmed") else "")


@app.command("add")
def add(
    complaint_id: Annotated[str, typer.Argument(help="The complaint's id.", show_default=False)],
    l2: Annotated[str | None, typer.Option("--l2", help="The right L2 label (id or name).")] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="The right department (id or name in the matrix).")
    ] = None,
    grade: Annotated[
        str | None, typer.Option("--grade", help="The right grade: 特急, 紧急, 重要 or 一般.")
    ] = None,
    problem: Annotated[
        str | None, typer.Option("--problem", help="The tracked problem it belongs to, e.g. TP-0003.")
    ] = None,
    dimension: Annotated[
        str | None, typer.Option("--dimension", help="The dimension --l2 should be in (a mismatch warns).")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Accept its stored label, department and grade as they are.")
    ] = False,
    source: SourceOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Confirm or correct one complaint that a tracked run kept in the warehouse.

    The answer is checked against the taxonomy and the service matrix, kept with who and when, and
    recorded in the audit trail. From the next run on, this complaint and its near-duplicates keep it
    (confidence 1.0, results say corrected), and similar complaints lean towards it. Undo with
    voc feedback undo.

    Examples:

      voc feedback add C-1024 --l2 机-面客系统 --department digital_banking --grade 紧急

      voc feedback add C-1024 --confirm

      voc feedback add C-1024 --problem TP-0003 --source branch-export
    """
    item = CorrectionIn(
        id=complaint_id,
        source=source,
        l2=l2,
        department=department,
        grade=grade,
        problem=problem,
        dimension=dimension,
        confirm=confirm,
    )
    try:
        out = _service(home).add(_actor(by), item)
    except ServiceError as exc:
        _fail(exc)
    if as_json:
        dump_json(out.model_dump(mode="json"))
        return
    cor = out.correction
    if out.status == "unchanged":
        console.print(f"Unchanged: {cor['id']} already says {escape(_describe(cor))}; nothing stored.")
    else:
        console.print(f"{cor['id']}: {escape(_describe(cor))} for {escape(cor['complaint_id'])}")
    for w in out.warnings:
        err.print(f"[yellow]Warning[/]: {escape(w)} (kept)")


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="CSV, JSONL, JSON or XLSX file.", show_default=False)],
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Text encoding (default: detected).")
    ] = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Import corrections from a file with an id column and any of l2, department, grade, problem
    (also source, dimension, confirm).

    Good rows are stored even when others are refused; each refused row is named with its field. A
    row whose answer is already in force is counted unchanged, so importing a file twice stores
    nothing twice. Exit code 2 when any row was refused.

    Example:

      voc feedback import reviewed.xlsx --by 质检组
    """
    if not path.is_file():
        err.print(f"[bold red]Error[/]: {escape(str(path))}: file not found")
        raise typer.Exit(2)
    try:
        rows = records_from_bytes(path.read_bytes(), path.name, encoding=encoding)
        report = _service(home).import_rows(_actor(by), rows)
    except (InputFileError, DataFileError) as exc:
        err.print(f"[bold red]Error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from None
    if as_json:
        dump_json(report.model_dump(mode="json"))
    else:
        refused = len({e.row for e in report.rejected})
        console.print(f"Stored {report.stored} · unchanged {report.unchanged} · refused {refused}")
        for e in report.rejected:
            err.print(f"  row {e.row} ({escape(e.id or '-')}) {e.field}: {escape(e.reason)}")
        for w in report.warnings:
            err.print(f"  [yellow]warning[/] row {w.row} ({escape(w.id or '-')}): {escape(w.reason)}")
    if report.rejected:
        raise typer.Exit(2)


@app.command("undo")
def undo(
    ref: RefArg,
    source: SourceOpt = None,
    by: ByOpt = None,
    home: HomeOpt = None,
) -> None:
    """Undo a correction, or every correction in force for a complaint; the next run goes back to the
    earlier answer (an older correction still in force, else the engine's own). Recorded in the audit trail.

    Examples:

      voc feedback undo COR-0007

      voc feedback undo C-1024 --source branch-export
    """
    try:
        out = _service(home).undo(_actor(by), ref, source)
    except ServiceError as exc:
        _fail(exc)
    console.print(f"Undone {', '.join(out.undone)} for {escape(out.complaint_id)}")


@app.command("show")
def show(
    ref: RefArg,
    source: SourceOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """A correction, or a complaint's corrections (undone ones too), oldest first."""
    try:
        found = _service(home).show(cli_actor(), ref, source).corrections
    except ServiceError as exc:
        _fail(exc)
    if as_json:
        dump_json({"corrections": found})
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("Id", "Complaint", "Answer", "By", "At", "Undone", "Warnings"):
        table.add_column(col, overflow="fold")
    for c in found:
        table.add_row(
            c["id"],
            escape(c["complaint_id"]),
            escape(_describe(c)),
            escape(c["by"]),
            c["at"][:19],
            (c["undone_at"] or "")[:19],
            escape("; ".join(c["warnings"])),
        )
    console.print(table)


@app.command("stats")
def stats(as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """What was learned: corrections in force by field, exemplars added per label, departments taught,
    contradictions with the data dictionary, and what the last tracked run took from them."""
    doc = _service(home).stats(cli_actor()).model_dump(mode="json")
    if as_json:
        dump_json(doc)
        return
    fields = ", ".join(f"{k} {v}" for k, v in doc["fields"].items())
    console.print(
        f"Corrections in force: {doc['corrections']} on {doc['complaints']} complaints "
        f"({doc['confirmed']} confirmations, {doc['undone']} undone) · by field: {fields}"
    )
    if doc["exemplars_per_label"]:
        console.print(
            "Exemplars added per label: "
            + ", ".join(f"{k} {v}" for k, v in doc["exemplars_per_label"].items())
        )
    if doc["department_evidence"]:
        console.print(
            "Department evidence: " + ", ".join(f"{k} {v}" for k, v in doc["department_evidence"].items())
        )
    for c in doc["contradictions"]:
        console.print(f"[yellow]Contradiction[/] {c['id']}: {escape('; '.join(c['warnings']))}")
    last = doc["last_run"]
    if last:
        console.print(
            f"Last tracked run {last['batch_id']}: {last.get('loaded', 0)} loaded · "
            f"{last.get('self', 0)} corrected · {last.get('duplicate', 0)} duplicates · "
            f"{last.get('near_duplicate', 0)} near-duplicates kept their answer"
        )
    else:
        console.print("[grey50]No tracked run has used them yet.[/]")
