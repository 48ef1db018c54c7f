"""voc analyze and voc demo: run the pipeline on a batch file and print its summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.common import CascadeThresholdOpt, EngineOpt, HomeOpt, build_settings, console, err, load_deps
from graph.run import PreparedBatch, batch_id_for, prepare_batch, run_prepared
from tools.audit import AuditError, AuditLog, cli_actor
from tools.datafile import DataFileError
from tools.ingest import InputFileError, ReadInfo, read_batch
from tools.report import write_outputs
from tools.schema import BatchResult, CascadeStats, TrackingSummary
from tools.settings import REPO_DATA, Settings
from tools.sql import database

app = typer.Typer()

SAMPLE = REPO_DATA / "samples" / "complaints.jsonl"
STAGE_LABEL = {
    "ingest": "Ingest (validate, mask)",
    "attribute_and_trace": "Attribute + trace",
    "analyze": "Analyse (cluster, score)",
    "remediate": "Remediation proposals",
    "track": "Track (warehouse, trends)",
    "report": "Report",
}
SOURCE_MAX = 200
# "Since last time" in the summary: problems' statuses worth a look, in the report's words and order.
NEWS = {"new": "new", "rising": "rising", "regressed": "back again", "falling": "falling"}

NoTrackOpt = Annotated[
    bool,
    typer.Option(
        "--no-track",
        help="Analyse without keeping anything: the batch stays out of the warehouse "
        "(VOC_HOME/warehouse.db), its problems get no tracked ids or trends and the report no "
        "'since last time'. Default: keep it, unless VOC_TRACK=false.",
    ),
]
SourceOpt = Annotated[
    str,
    typer.Option(
        "--source",
        help="The system the complaint ids come from (crm, hotline, ...): the namespace they belong to in "
        "the warehouse. The same id sent again from the same source, in a later export, updates that "
        "complaint and is never counted twice; the same id from another source is another complaint.",
        metavar="NAME",
    ),
]


def _aliases_file(settings: Settings) -> Path:
    """data/column_aliases.yaml, or the copy in VOC_HOME/data/ when there is one."""
    edited = settings.edited_data_dir / "column_aliases.yaml"
    return edited if edited.is_file() else settings.data_dir / "column_aliases.yaml"


def _nothing_to_analyse(info: ReadInfo, prepared: PreparedBatch, out: Path) -> str:
    """One line on why no row of the batch can be analysed: how the file was read, what was wrong."""
    how = info.describe()
    head = f"Nothing to analyse in {info.name}" + (f" ({how})" if how else "")
    if not prepared.received:
        return f"{head}: no rows under the header"
    rejected = [e for e in prepared.errors if e.severity == "error"]
    reasons = Counter((e.field, e.reason) for e in rejected)
    (field, reason), n = reasons.most_common(1)[0] if reasons else (("row", "unreadable"), 0)
    rows = "the only row was" if prepared.received == 1 else f"all {prepared.received} rows were"
    return f"{head}: {rows} rejected, most often {field}: {reason} ({n} of them); see {out / 'errors.jsonl'}"


def _analyze(
    input_path: Path,
    out: Path,
    settings: Settings,
    fresh: bool,
    track: bool,
    source: str,
    encoding: str | None = None,
    column_spec: str | None = None,
) -> BatchResult:
    source = source.strip()
    tracking = track and settings.track
    if tracking and not 0 < len(source) <= SOURCE_MAX:
        err.print(f"[bold red]--source[/]: give a name of 1 to {SOURCE_MAX} characters")
        raise typer.Exit(2)
    try:
        aliases = _aliases_file(settings)
        batch = read_batch(input_path, encoding=encoding, columns=column_spec, aliases=aliases)
    except InputFileError as exc:
        err.print(f"[bold red]Cannot read input[/]: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {escape(str(exc))}")
        raise typer.Exit(3) from None
    rows, info = batch.rows, batch.info
    how = info.describe()
    if how:
        line = f"Read {info.name} as {how[8:]}" if how.startswith("read as ") else f"Read {info.name}: {how}"
        console.print(escape(line), soft_wrap=True, highlight=False)
    deps = load_deps(settings)
    prepared = prepare_batch(rows, deps)
    if not prepared.complaints:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "errors.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(e.model_dump_json() + "\n" for e in prepared.errors)
        err.print(escape(_nothing_to_analyse(info, prepared, out)), soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage == "track" and not tracking:
                return  # the step is skipped; no bar for it
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_LABEL.get(stage, stage), total=max(total, 1))
            progress.update(tasks[stage], completed=done, total=max(total, 1))

        on_progress("ingest", 0, 1)
        # A tracked run is another batch than an untracked one (and than one under another source):
        # neither reuses the other's stored result.
        batch_id = batch_id_for(prepared.complaints, deps, source if tracking else None)
        _audit_run(settings, batch_id, prepared)
        result = run_prepared(
            prepared,
            deps,
            source=str(input_path),
            batch_id=batch_id,
            fresh=fresh,
            on_progress=on_progress,
            track=tracking,
            track_source=source,
        )
        for task_id in tasks.values():
            progress.update(task_id, completed=progress.tasks[task_id].total)
    _note_done(settings, result)
    dims = [(d.id, d.name) for d in deps.taxonomy.dimensions]
    paths = write_outputs(result, out, dims)
    _summary(result, paths["report_html"], out, tracking)
    return result


def _note_done(settings: Settings, result: BatchResult) -> None:
    """Queue the batch.done webhook event (delivered by voc serve or voc webhooks deliver)."""
    from services.webhooks import note_cli_batch_done
    from tools.sql import DB_ERRORS

    try:
        note_cli_batch_done(settings, result)
    except (OSError,) + DB_ERRORS as exc:
        err.print(f"[yellow]batch.done event not queued ({type(exc).__name__}); the run is complete.[/]")


def _audit_run(settings: Settings, batch_id: str, prepared: PreparedBatch) -> None:
    """Record the run before it starts: the ledger dates the batch's checkpoint for ``voc purge``
    even if the run is interrupted, and the trail says who ran it. A failure warns, no more:
    the person at this terminal can read the files anyway."""
    audit = AuditLog(database(settings, "audit"))
    rejected = sum(e.severity == "error" for e in prepared.errors)
    try:
        audit.note_run(batch_id, "cli")
        audit.record(
            cli_actor(),
            "batch.submit",
            batch_id,
            received=prepared.received,
            accepted=len(prepared.complaints),
            rejected=rejected,
        )
    except AuditError as exc:
        err.print(f"[yellow]Audit log not written ({exc}); the run goes on.[/]")


def _tracking_line(t: TrackingSummary | None, tracking: bool) -> str:
    """One line on what the warehouse kept and which tracked problems changed since the period before."""
    if not tracking:
        return "off: nothing kept"
    if t is None:
        return "nothing kept (no complaint accepted)"
    source = "" if t.source == "default" else f" (source {t.source})"
    problems = [c for c in t.changes if c.kind == "problem"]
    news = [
        f"{n} {word}" for status, word in NEWS.items() if (n := sum(c.status == status for c in problems))
    ]
    news += [
        f"{n} {level}" for level in ("alarm", "warning") if (n := sum(c.alert == level for c in problems))
    ]
    return f"{t.stored} kept{source} · {t.tracked_problems} tracked problems · {t.period}: " + (
        ", ".join(news) or "nothing new, rising or falling"
    )


def cascade_line(k: CascadeStats) -> str:
    """engine auto in one line: where the complaints went and what that saved (an estimate)."""
    return (
        f"threshold {k.threshold}: {k.kept} kept by rules · {k.sent} sent to the model "
        f"({k.fell_back} fell back) · saved ~{k.calls_saved} calls, ~{k.tokens_saved:,} tokens (estimate)"
    )


def _summary(result: BatchResult, html: Path, out: Path, tracking: bool) -> None:
    s = result.stats
    c = s.counts
    console.print()
    head = Table(title="VOC Tracer · batch summary", show_header=False, title_justify="left")
    note = ""
    if s.reused:
        note = "  (analysed earlier with the same data; stored result reused, --fresh to redo)"
    elif s.resumed:
        note = "  (resumed from checkpoint)"
    head.add_row("Batch", result.batch_id + note)
    head.add_row(
        "Rows",
        f"{c['received']} received · {c['accepted']} analysed · "
        f"{c['rejected']} rejected · {c['warnings']} warnings",
    )
    head.add_row(
        "Negative voices", f"{c['negative_voices']} · {c['grouped']} grouped into {c['problems']} problems"
    )
    head.add_row("Masked personal data", str(c["pii_masked"]))
    if c.get("injection_flagged"):
        flagged = c["injection_flagged"]
        head.add_row("Instructions in text", f"{flagged} complaints flagged; ignored, not obeyed")
    head.add_row("Time", f"{s.seconds:.1f} s · {s.complaints_per_second:.1f} complaints/s")
    head.add_row("Engine", ", ".join(f"{k}: {v}" for k, v in s.engine_use.items()) or "-")
    head.add_row("Tracking", _tracking_line(s.tracking, tracking))
    if s.llm is not None:
        requests = sum(s.llm.requests.values())
        tokens = s.llm.tokens.get("total", 0)
        spent = " · token budget spent" if s.llm.budget_exhausted else ""
        head.add_row("LLM", f"{requests} requests · {tokens:,} tokens · {s.fallbacks} fallbacks{spent}")
    if s.cascade is not None:
        head.add_row("Cascade", cascade_line(s.cascade))
    console.print(head)
    if result.problems:
        top = Table(title="Top problems", title_justify="left")
        for col in ("#", "Priority", "Problem", "Grade", "Complaints", "Owner", "Spike"):
            top.add_column(col, overflow="fold", min_width=12 if col == "Problem" else None)
        colors = {"P1": "bold red", "P2": "bold dark_orange", "P3": "yellow", "P4": "grey50"}
        for p in result.problems[:8]:
            top.add_row(
                str(p.rank),
                f"[{colors[p.priority]}]{p.priority}[/]",
                p.name,
                p.grade,
                str(p.impact.complaints),
                p.department,
                f"×{p.spike.ratio}" if p.spike else "",
            )
        console.print(top)
    if c["rejected"]:
        console.print(f"[yellow]{c['rejected']} rows were rejected; see {out / 'errors.jsonl'}[/]")
    console.print(
        f"Report: [bold]{html}[/]  (also report.md, results.jsonl, problems.json, run.json in {out})"
    )


@app.command()
def analyze(
    input: Annotated[
        Path,
        typer.Argument(
            help="Complaint batch: .json, .jsonl, .csv or .xlsx with columns id, text and optional "
            "channel, received_at, customer_id, customer_segment, business_line, product.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for results.jsonl, problems.json, errors.jsonl, report.md/.html and run.json.",
        ),
    ] = Path("voc-out"),
    service_matrix: Annotated[
        Path | None,
        typer.Option(
            "--service-matrix",
            help="Your own service matrix: YAML/JSON like data/service_matrix.yaml, or a CSV/XLSX "
            "sheet with one row per department (start from `voc data export`).",
        ),
    ] = None,
    taxonomy: Annotated[
        Path | None,
        typer.Option(
            "--taxonomy",
            help="Your own taxonomy: YAML/JSON like data/taxonomy.yaml, or a CSV/XLSX sheet with one "
            "row per L2 label.",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Ignore any checkpoint of this batch and analyse it again from the start."
        ),
    ] = False,
    home: HomeOpt = None,
    engine: EngineOpt = None,
    cascade_threshold: CascadeThresholdOpt = None,
    no_track: NoTrackOpt = False,
    source: SourceOpt = "default",
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="The text encoding of a CSV, JSON or JSONL file (utf-8, utf-16, gb18030, gbk, ...). "
            "Default: detected (UTF-8 with or without BOM, UTF-16 with BOM, else GB18030).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Which column fills which field when its name is not id, text, ... or an alias in "
            "data/column_aliases.yaml: FIELD=COLUMN pairs, e.g. text=诉求内容,id=流水号.",
            metavar="FIELD=COLUMN,...",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Analyse a complaint batch: attribution, root cause, common problems, priorities, proposals.

    Bad rows are listed in errors.jsonl (row, field, reason) and the rest are analysed; when no
    row can be analysed the command says why in one line and exits with code 2.
    An interrupted run resumes where it stopped when you run the same command again.

    The batch is also kept in the warehouse (VOC_HOME/warehouse.db, masked), where problems are
    tracked across periods: the report says what is new, rising, back again or falling since
    the period before. Send each month's (or week's) export as it comes; a complaint sent
    again, with the same --source and id, is updated, never counted twice.
    """
    settings = build_settings(
        home, engine, cascade_threshold, service_matrix=service_matrix, taxonomy=taxonomy
    )
    _analyze(
        input, out, settings, fresh, track=not no_track, source=source, encoding=encoding, column_spec=columns
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the demo report.")] = Path(
        "voc-demo"
    ),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Analyse again even if the sample was analysed before.")
    ] = False,
    home: HomeOpt = None,
    engine: EngineOpt = None,
    cascade_threshold: CascadeThresholdOpt = None,
    no_track: NoTrackOpt = False,
    source: SourceOpt = "default",
) -> None:
    """Analyse the bundled sample (two months of a retail bank's complaints) into ./voc-demo/.

    Like voc analyze, it keeps the sample in the warehouse of --home (tracked problems, trends);
    use --no-track, or a --home of its own, to keep it apart from your own batches.
    """
    settings = build_settings(home, engine, cascade_threshold)
    how = "offline, rules engine"
    if settings.resolved_engine() == "llm":
        how = f"llm engine, {settings.llm_model} at {settings.llm_base_url}"
        how = f"cascade: rules, then the unsure to the {how}" if settings.cascade else how
    console.print(f"Analysing the bundled sample [bold]{SAMPLE.name}[/] ({how})…")
    _analyze(SAMPLE, out, settings, fresh=fresh, track=not no_track, source=source)
