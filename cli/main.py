"""The ``voc`` command line: analyse complaint batches, run the demo, manage the knowledge store."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
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

from graph.deps import make_deps
from graph.run import PreparedBatch, batch_id_for, prepare_batch, run_prepared
from tools.audit import AuditError, AuditLog, cli_actor
from tools.datafile import DataFileError
from tools.deps import Deps
from tools.ingest import InputFileError, read_rows
from tools.report import write_outputs
from tools.schema import BatchResult
from tools.settings import REPO_DATA, LLMConfigError, Settings

if TYPE_CHECKING:
    from api.retention import PurgeReport

app = typer.Typer(
    name="voc",
    help=(
        "VOC Tracer (客户声音溯源): turn complaint batches into owned, explained, prioritised "
        "problems with remediation proposals. Runs offline by default.\n\n"
        "Start with `voc demo`, then `voc analyze your_batch.csv --out reports/`.\n\n"
        "Who did what, when: `voc audit --days 7`.\n\n"
        "Keep data no longer than needed: `voc purge --older-than 90 --dry-run`, then `--yes`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
kb_app = typer.Typer(
    help="Inspect and rebuild the Chroma knowledge store built from data/.", no_args_is_help=True
)
app.add_typer(kb_app, name="kb")

console = Console()
err = Console(stderr=True)
SAMPLE = REPO_DATA / "samples" / "complaints.jsonl"
STAGE_LABEL = {
    "ingest": "Ingest (validate, mask)",
    "attribute_and_trace": "Attribute + trace",
    "analyze": "Analyse (cluster, score)",
    "remediate": "Remediation proposals",
    "report": "Report",
}

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="State directory (Chroma store, checkpoints). Default: $VOC_HOME or ~/.voc."),
]


class EngineChoice(StrEnum):
    """The --engine values."""

    rules = "rules"
    llm = "llm"
    auto = "auto"


EngineOpt = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help="rules (offline), llm (the OpenAI-compatible endpoint in VOC_LLM_BASE_URL and "
        "VOC_LLM_MODEL) or auto (llm when both are set). Default: $VOC_ENGINE, else auto.",
        show_default=False,
    ),
]


def _settings(home: Path | None = None, engine: EngineChoice | None = None, **paths: Path | None) -> Settings:
    overrides: dict[str, object] = {f"{k}_path": v for k, v in paths.items() if v is not None}
    if home is not None:
        overrides["home"] = home
    if engine is not None:
        overrides["engine"] = engine.value
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        settings.resolved_engine()
    except LLMConfigError as exc:
        err.print(f"[bold red]Engine[/]: {exc} (or use --engine rules)")
        raise typer.Exit(2) from None
    return settings


def _deps(settings: Settings) -> Deps:
    try:
        with console.status("Loading data files and the knowledge store…") as status:

            def built(name: str, n: int) -> None:
                status.update(f"Indexed {n} {name} records into the knowledge store…")

            return make_deps(settings, on_build=built)
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {exc}")
        raise typer.Exit(3) from None


def _analyze(input_path: Path, out: Path, settings: Settings, fresh: bool) -> BatchResult:
    try:
        rows = read_rows(input_path)
    except InputFileError as exc:
        err.print(f"[bold red]Cannot read input[/]: {exc}")
        raise typer.Exit(2) from None
    deps = _deps(settings)
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
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_LABEL.get(stage, stage), total=max(total, 1))
            progress.update(tasks[stage], completed=done, total=max(total, 1))

        on_progress("ingest", 0, 1)
        prepared = prepare_batch(rows, deps)
        batch_id = batch_id_for(prepared.complaints, deps)
        _audit_run(settings, batch_id, prepared)
        result = run_prepared(
            prepared, deps, source=str(input_path), batch_id=batch_id, fresh=fresh, on_progress=on_progress
        )
        for task_id in tasks.values():
            progress.update(task_id, completed=progress.tasks[task_id].total)
    dims = [(d.id, d.name) for d in deps.taxonomy.dimensions]
    paths = write_outputs(result, out, dims)
    _summary(result, paths["report_html"], out)
    return result


def _audit_run(settings: Settings, batch_id: str, prepared: PreparedBatch) -> None:
    """Record the run before it starts: the ledger dates the batch's checkpoint for ``voc purge``
    even if the run is interrupted, and the trail says who ran it. A failure warns, no more:
    the person at this terminal can read the files anyway."""
    audit = AuditLog(settings.audit_db)
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


def _summary(result: BatchResult, html: Path, out: Path) -> None:
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
    if s.llm is not None:
        requests = sum(s.llm.requests.values())
        tokens = s.llm.tokens.get("total", 0)
        spent = " · token budget spent" if s.llm.budget_exhausted else ""
        head.add_row("LLM", f"{requests} requests · {tokens:,} tokens · {s.fallbacks} fallbacks{spent}")
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
        typer.Option("--service-matrix", help="Your own service matrix YAML (see data/service_matrix.yaml)."),
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option("--taxonomy", help="Your own taxonomy YAML (see data/taxonomy.yaml).")
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Ignore any checkpoint of this batch and analyse it again from the start."
        ),
    ] = False,
    home: HomeOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Analyse a complaint batch: attribution, root cause, common problems, priorities, proposals.

    Bad rows are listed in errors.jsonl (row, field, reason) and the rest are analysed.
    An interrupted run resumes where it stopped when you run the same command again.
    """
    settings = _settings(home, engine, service_matrix=service_matrix, taxonomy=taxonomy)
    _analyze(input, out, settings, fresh)


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
) -> None:
    """Analyse the bundled sample (two months of a retail bank's complaints) into ./voc-demo/."""
    settings = _settings(home, engine)
    how = (
        f"llm engine, {settings.llm_model} at {settings.llm_base_url}"
        if settings.resolved_engine() == "llm"
        else "offline, rules engine"
    )
    console.print(f"Analysing the bundled sample [bold]{SAMPLE.name}[/] ({how})…")
    _analyze(SAMPLE, out, settings, fresh=fresh)


@app.command("eval")
def eval_cmd(
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Labelled JSONL (default: evals/datasets/dev.jsonl).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="dev, holdout or all.")] = "all",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON report [default: voc-eval.json, or voc-pii.json with --pii]."),
    ] = None,
    home: HomeOpt = None,
    pii: Annotated[
        bool,
        typer.Option(
            "--pii",
            help="Score personal-data masking instead: recall and false-positive rate on a seeded "
            "synthetic set of planted values (IDs, permits, cards, phones, e-mail, codes, names) "
            "and look-alikes that must be kept (order numbers, amounts, timestamps). No models needed.",
        ),
    ] = False,
) -> None:
    """Score the agents against a labelled dataset: accuracy, macro-F1, ARI, top problem, spike.

    With --pii, score the masking of personal data instead (recall, false-positive rate, per kind).

    Examples:

      voc eval --split holdout

      voc eval --pii --out voc-pii.json
    """
    from evals.dataset import DEFAULT_DATASET
    from evals.run import run_eval

    if pii:
        from evals.pii import render_table, run

        out = out or Path("voc-pii.json")
        console.print(render_table(run(out)))
        console.print(f"Report with every miss: [bold]{out}[/]")
        return
    out = out or Path("voc-eval.json")
    if split not in ("dev", "holdout", "all"):
        err.print("[red]--split must be dev, holdout or all[/]")
        raise typer.Exit(2)
    deps = _deps(_settings(home))
    with console.status("Analysing the labelled dataset…"):
        report = run_eval(deps, dataset or DEFAULT_DATASET, split)
    s = report.scores
    table = Table(
        title=f"VOC Tracer eval · {Path(report.dataset).name} · split={split} · {s.rows} rows",
        title_justify="left",
    )
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for name in (
        "dimension_accuracy",
        "dimension_macro_f1",
        "l2_accuracy",
        "department_accuracy",
        "grade_accuracy",
        "negative_accuracy",
        "theme_ari",
        "theme_nmi",
    ):
        table.add_row(name, f"{getattr(s, name):.3f}")
    table.add_row(
        "top problem theme",
        f"{s.top_problem_theme} (fund safety: {s.fund_safety_theme}) "
        + ("✓" if s.fund_safety_ranks_first else "✗"),
    )
    table.add_row("spike detected", f"{s.spike_theme} " + ("✓" if s.spike_detected else "✗"))
    for lang, m in s.by_language.items():
        table.add_row(
            f"{lang} rows: dim / L2 / dept",
            f"{m['dimension_accuracy']:.3f} / {m['l2_accuracy']:.3f} / {m['department_accuracy']:.3f}",
        )
    console.print(table)
    conf = Table(title="Dimension confusion (rows: expected, columns: predicted)", title_justify="left")
    dims = sorted(s.dimension_confusion)
    conf.add_column("")
    for d in dims:
        conf.add_column(d, justify="right")
    for t in dims:
        conf.add_row(t, *[str(s.dimension_confusion[t].get(p, 0)) for p in dims])
    console.print(conf)
    out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    console.print(f"Report with every mismatch: [bold]{out}[/]")


@app.command()
def bench(
    n: Annotated[int, typer.Option("--n", min=1, help="How many complaints to generate and analyse.")] = 1000,
    embed_sample: Annotated[
        int, typer.Option("--embed-sample", min=10, help="Texts embedded alone to measure the floor.")
    ] = 1000,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the numbers as JSON.")] = None,
    peer: Annotated[bool, typer.Option("--peer", help="Compare clustering with BERTopic instead.")] = False,
    home: HomeOpt = None,
) -> None:
    """Measure throughput end to end against the embedding-only floor, stage times and peak RSS.

    With --peer, instead compare our clustering with BERTopic on the same embeddings of the
    eval dataset (ARI against its planted themes, and wall time); `make bench-peer` installs it.
    """
    from evals.bench import run_bench

    deps = _deps(_settings(home))
    if peer:
        _peer(deps, out)
        return
    with console.status(f"Analysing {n} generated complaints…"):
        report = run_bench(deps, n, embed_sample=embed_sample)
    table = Table(title=f"VOC Tracer bench · n={n} · {report.embedder}", title_justify="left")
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_row(
        "end to end", f"{report.end_to_end_seconds:.1f} s · {report.complaints_per_second:.1f} complaints/s"
    )
    table.add_row(
        f"embedding only ({report.embed_only_sample} texts)",
        f"{report.embed_only_per_second:.1f} complaints/s "
        f"(before {report.embed_only_before_after[0]:.1f}, after {report.embed_only_before_after[1]:.1f})",
    )
    table.add_row("ratio (end to end / embedding)", f"{report.ratio_to_embedding:.2f}")
    for stage, secs in report.stage_seconds.items():
        table.add_row(f"stage: {stage}", f"{secs:.2f} s")
    table.add_row("peak RSS", f"{report.peak_rss_mb:.0f} MB")
    table.add_row("checkpoint database", f"{report.checkpoint_mb:.1f} MB")
    table.add_row("machine", f"{report.cpus} CPUs · load {report.load_average}")
    console.print(table)
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. Without API keys only loopback addresses are allowed.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Server processes; each analyses VOC_API_JOB_WORKERS batches at a time."
        ),
    ] = 1,
    home: HomeOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info",
) -> None:
    """Run the HTTP service for backend systems (OpenAPI docs at /docs).

    API keys come from VOC_API_KEYS ('KEY:read,write;KEY2:admin') or VOC_API_KEYS_FILE. With no
    keys the service runs in local-only mode and refuses to listen beyond this machine.
    Accepted batches are stored under VOC_HOME and resume after a restart.
    """
    import inspect
    import os

    import uvicorn

    from api.app import LOCAL_ONLY_WARNING
    from api.config import ApiSettings, is_loopback, load_keys
    from tools.deps import load_data

    if home is not None:
        os.environ["VOC_HOME"] = str(home)  # worker processes build their settings from the environment
    try:
        keys = load_keys(ApiSettings())
    except ValueError as exc:
        err.print(f"[bold red]Service configuration error[/]: {exc}")
        raise typer.Exit(4) from None
    if not keys and not is_loopback(host):
        err.print(
            f"[bold red]Refusing to listen on {host} without API keys.[/] Set VOC_API_KEYS (or "
            "VOC_API_KEYS_FILE), or listen on 127.0.0.1."
        )
        raise typer.Exit(4)
    settings = Settings()
    try:
        load_data(settings)
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {exc}")
        raise typer.Exit(3) from None
    if not keys:
        err.print(f"[bold yellow]{LOCAL_ONLY_WARNING}[/]")
    if workers > 1 and not settings.chroma_url:
        err.print(
            "[yellow]Several processes share the on-disk knowledge store; set VOC_CHROMA_URL to a "
            "Chroma server if you change knowledge data through the API.[/]"
        )
    console.print(f"VOC Tracer API on http://{host}:{port} (docs: /docs), state in {settings.home}")
    extra = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # With several processes uvicorn restarts a worker that has not finished starting within
        # this time; loading the model and (on first use) building the store takes longer than 5 s.
        extra["timeout_worker_healthcheck"] = 600
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        **extra,  # type: ignore[arg-type]
    )


class McpTransport(StrEnum):
    """The --transport values of voc mcp."""

    stdio = "stdio"
    http = "http"


@app.command("mcp")
def mcp_cmd(
    transport: Annotated[
        McpTransport,
        typer.Option(
            help="stdio: the assistant starts this command and talks over stdin/stdout. "
            "http: streamable HTTP at http://HOST:PORT/mcp for remote assistants."
        ),
    ] = McpTransport.stdio,
    host: Annotated[
        str, typer.Option(help="http only. Without API keys only loopback addresses are allowed.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="http only: TCP port.")] = 8001,
    home: HomeOpt = None,
    engine: EngineOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "warning",
) -> None:
    """Serve the agents to MCP assistants (Claude Desktop, IDE agents, in-house copilots).

    Register `voc mcp` as a stdio server in the assistant (see README). Batches submitted through
    it share the HTTP service's job store under VOC_HOME.

    Over http, callers send an API key from VOC_API_KEYS (as for voc serve) as
    'Authorization: Bearer KEY'; with no keys only this machine is served.
    """
    from api.config import ApiSettings, is_loopback, load_keys
    from mcp_server.server import build_server
    from tools.deps import load_data

    settings = _settings(home, engine)
    try:
        load_data(settings)
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {exc}")
        raise typer.Exit(3) from None
    if transport is McpTransport.stdio:
        # stdout is the protocol channel: nothing else may be printed there.
        build_server(settings=settings).run("stdio")
        return

    import uvicorn

    from api.app import LOCAL_ONLY_WARNING
    from api.security import Auth
    from mcp_server.http import http_app

    api_settings = ApiSettings()
    try:
        keys = load_keys(api_settings)
    except ValueError as exc:
        err.print(f"[bold red]Service configuration error[/]: {exc}")
        raise typer.Exit(4) from None
    if not keys and not is_loopback(host):
        err.print(
            f"[bold red]Refusing to listen on {host} without API keys.[/] Set VOC_API_KEYS (or "
            "VOC_API_KEYS_FILE), or listen on 127.0.0.1."
        )
        raise typer.Exit(4)
    if not keys:
        err.print(f"[bold yellow]{LOCAL_ONLY_WARNING}[/]")
    auth = Auth(api_settings)
    server = build_server(settings=settings, api_settings=api_settings, auth=auth)
    asgi = http_app(server, auth, host=host, api_settings=api_settings)
    console.print(f"VOC Tracer MCP on http://{host}:{port}/mcp, state in {settings.home}")
    uvicorn.run(asgi, host=host, port=port, log_level=log_level)


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
    door: Annotated[str | None, typer.Option("--door", help="cli, http or mcp.")] = None,
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
        err.print("[red]--door must be cli, http or mcp[/]")
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
        events = AuditLog(settings.audit_db).read(q, cli_actor())
    except AuditError as exc:
        err.print(f"[bold red]Cannot read the audit log[/]: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False, indent=1))
        return
    table = Table(
        title=f"Audit trail · {settings.audit_db} · newest first",
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
    """Retention: delete batches older than DAYS with their results and checkpoints.

    Removed: service batches (job and result rows in VOC_HOME/voc.db),
    and checkpoint threads of service batches and of voc analyze runs
    (VOC_HOME/checkpoints.sqlite: masked complaints and their vectors).
    The databases are then compacted so the files shrink.

    Left alone: running batches, and folders written by voc analyze --out.
    Kept on purpose: the audit trail (VOC_HOME/audit.db); it records this
    purge and every batch it removed.

    Examples:

      voc purge --older-than 90 --dry-run

      voc purge --older-than 90 --yes

      voc purge --older-than 30 --yes --json > purge-report.json
    """
    from api.retention import Retention

    settings = _state_settings(home)
    retention = Retention(settings, AuditLog(settings.audit_db))
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


def _peer(deps: Deps, out: Path | None) -> None:
    from evals.peer import compare_with_bertopic

    with console.status("Clustering the eval set's negative voices both ways…"):
        report = compare_with_bertopic(deps)
    table = Table(
        title=f"Clustering vs BERTopic · {report.voices} voices, {report.themed} in planted themes",
        title_justify="left",
    )
    for col in ("Method", "ARI", "NMI", "Clusters", "Unclustered", "Seconds"):
        table.add_column(col, justify="left" if col == "Method" else "right")
    for r in (report.ours, report.bertopic):
        if r is not None:
            table.add_row(
                r.name,
                f"{r.ari:.3f}",
                f"{r.nmi:.3f}",
                str(r.clusters),
                str(r.unclustered),
                f"{r.seconds:.1f}",
            )
    console.print(table)
    if report.note:
        console.print(f"[yellow]{report.note}[/]")
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


@kb_app.command("rebuild")
def kb_rebuild(home: HomeOpt = None) -> None:
    """Re-embed every knowledge entry, case, taxonomy exemplar and department from data/."""
    settings = _settings(home)
    try:
        deps = make_deps(settings, build_store=False)
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {exc}")
        raise typer.Exit(3) from None
    with console.status("Rebuilding the knowledge store…"):
        built = deps.store.ensure_built(force=True)
    table = Table(
        title=f"Knowledge store at {settings.chroma_url or settings.chroma_dir}", title_justify="left"
    )
    table.add_column("Collection")
    table.add_column("Records", justify="right")
    for name, n in built.items():
        table.add_row(name, str(n))
    console.print(table)


@kb_app.command("search")
def kb_search(
    query: Annotated[str, typer.Argument(help="What to look for, e.g. '信用卡盗刷 处理时限'.")],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="knowledge, cases, taxonomy or service_matrix.")
    ] = "knowledge",
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many results.")] = 5,
    home: HomeOpt = None,
) -> None:
    """Search the knowledge store the way the remediation agent does."""
    if collection not in ("knowledge", "cases", "taxonomy", "service_matrix"):
        err.print("[red]--collection must be one of knowledge, cases, taxonomy, service_matrix[/]")
        raise typer.Exit(2)
    deps = _deps(_settings(home))
    hits = deps.store.search(collection, query, k=k)
    table = Table(title=f"{collection}: {query}", title_justify="left")
    table.add_column("Id")
    table.add_column("Score", justify="right")
    table.add_column("Text")
    for h in hits:
        table.add_row(h.id, f"{h.score:.3f}", h.text[:120].replace("\n", " "))
    console.print(table)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
