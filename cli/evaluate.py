"""voc eval and voc bench: score the agents on labelled data and measure their speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import HomeOpt, build_settings, console, err, load_deps
from services.config import WORKER_NICE
from tools.deps import Deps

if TYPE_CHECKING:
    from evals.calibration import FieldReliability
    from evals.sentiment import AucPair

app = typer.Typer()


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
    tracking: Annotated[
        bool,
        typer.Option(
            "--tracking",
            help="Show how the tracking thresholds (VOC_TRACK_*_SIMILARITY) fare on the planted themes: "
            "how often a complaint or a new month's cluster would join its own problem, or a wrong one.",
        ),
    ] = False,
    sentiment: Annotated[
        bool,
        typer.Option(
            "--sentiment",
            help="Score sentiment instead, on bank comments labelled negative/neutral/positive that "
            "the head never saw (evals/datasets/sentiment_bank.jsonl, or --dataset): ROC AUC "
            "negative-vs-positive and negative-vs-rest for the pipeline's score, the trained head "
            "alone and the lexicon alone.",
        ),
    ] = False,
    learning_curve: Annotated[
        bool,
        typer.Option(
            "--learning-curve",
            help="Show how reviewers' corrections help: L2, department and grade accuracy on a fixed "
            "test part after 0, 25, 50, 100 and 200 corrections drawn (seeded) from the rest, applied "
            "through voc feedback in a temporary home. Written to the eval JSON as learning_curve.",
        ),
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="First refit the confidence calibration on the dataset's dev split and write it "
            "(VOC_CALIBRATION_PATH, default data/models/calibration.json), then score as usual.",
        ),
    ] = False,
) -> None:
    """Score the agents against a labelled dataset: accuracy, macro-F1, ARI, top problem, spike,
    and how well label, department and grade confidence match how often they are right (ECE).

    With --pii, score the masking of personal data instead (recall, false-positive rate, per kind).
    With --tracking, calibrate the thresholds that keep tracked problems' ids stable.
    With --sentiment, score sentiment on labelled bank comments (goals: AUC 0.93 / 0.80).
    With --learning-curve, measure how accuracy grows with reviewers' corrections.

    Examples:

      voc eval --split holdout

      voc eval --calibrate --split holdout

      voc eval --pii --out voc-pii.json

      voc eval --sentiment
    """
    from evals.dataset import DEFAULT_DATASET
    from evals.run import run_eval

    if pii:
        from evals.pii import render_table, run

        out = out or Path("voc-pii.json")
        console.print(render_table(run(out)))
        console.print(f"Report with every miss: [bold]{out}[/]")
        return
    if tracking:
        _tracking(home, out)
        return
    if sentiment:
        _sentiment(home, dataset, out or Path("voc-sentiment.json"))
        return
    out = out or Path("voc-eval.json")
    if learning_curve:
        _learning_curve(home, dataset or DEFAULT_DATASET, out)
        return
    if split not in ("dev", "holdout", "all"):
        err.print("[red]--split must be dev, holdout or all[/]")
        raise typer.Exit(2)
    deps = load_deps(build_settings(home))
    if calibrate:
        deps = _calibrate(deps, dataset or DEFAULT_DATASET)
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
    for tp in s.theme_problems:
        table.add_row(
            f"theme {tp['theme']}: rank · priority",
            f"#{tp['rank']} · {tp['priority']} · {tp['grade']} · sev {tp['severity']} · imp {tp['impact']}"
            if tp["rank"]
            else "no problem",
        )
    for lang, m in s.by_language.items():
        table.add_row(
            f"{lang} rows: dim / L2 / dept",
            f"{m['dimension_accuracy']:.3f} / {m['l2_accuracy']:.3f} / {m['department_accuracy']:.3f}",
        )
    if report.cascade is not None:
        k = report.cascade
        kept = "-" if k.kept_accuracy is None else f"{k.kept_accuracy:.3f}"
        table.add_row(
            f"cascade: kept share / kept accuracy at {k.threshold}",
            f"{k.kept_share:.3f} / {kept} (all rules results: {k.overall_accuracy:.3f})",
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
    console.print(_reliability_table(report.reliability, deps))
    out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    console.print(f"Report with every mismatch: [bold]{out}[/]")


def _learning_curve(home: Path | None, dataset: Path, out: Path) -> None:
    from evals.learning import learning_curve

    deps = load_deps(build_settings(home))
    with console.status("Analysing the pool once, then the test part after each step of corrections…"):
        curve = learning_curve(deps, dataset)
    table = Table(
        title=f"Learning curve · {dataset.name} · test {curve.test_rows} rows · corrections from "
        f"{curve.pool_rows} (seed {curve.seed})",
        title_justify="left",
    )
    for col in ("Corrections", "L2 accuracy", "Department accuracy", "Grade accuracy", "Kept", "Seconds"):
        table.add_column(col, justify="right")
    for p in curve.points:
        kept = ", ".join(f"{k} {v}" for k, v in sorted(p.followed.items())) or "-"
        table.add_row(
            str(p.corrections),
            f"{p.l2_accuracy:.3f}",
            f"{p.department_accuracy:.3f}",
            f"{p.grade_accuracy:.3f}",
            kept,
            f"{p.seconds:.1f}",
        )
    console.print(table)
    console.print(f"Pool analysed once in {curve.setup_seconds:.1f} s; {curve.seconds:.1f} s in all.")
    out.write_text(
        json.dumps({"learning_curve": curve.model_dump(mode="json")}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    console.print(f"Written to [bold]{out}[/]")


def _calibrate(deps: Deps, dataset: Path) -> Deps:
    """Refit the confidence maps on the dev split, write them, and use them from now on."""
    import dataclasses

    from evals.calibration import fit_calibration
    from tools.calibration import save_calibration

    with console.status("Analysing the dev split with raw scores and fitting the maps…"):
        cal = fit_calibration(deps, dataset, "dev")
    path = deps.settings.calibration_file
    save_calibration(cal, path)
    fitted = ", ".join(f"{k} a={m.a:.3f} b={m.b:.3f} ({m.rows} rows)" for k, m in cal.fields.items())
    console.print(f"Wrote calibration {cal.version} to [bold]{path}[/]: {fitted}")
    return dataclasses.replace(deps, calibration=cal, versions={**deps.versions, "calibration": cal.version})


def _reliability_table(reliability: dict[str, FieldReliability], deps: Deps) -> Table:
    cal = deps.calibration
    table = Table(
        title=f"Confidence reliability (ECE, 10 bins) · calibration: {cal.version if cal else 'none'}",
        title_justify="left",
    )
    table.add_column("Field")
    for col in ("Rows", "Accuracy", "ECE raw", "ECE calibrated"):
        table.add_column(col, justify="right")
    table.add_column("Bins: confidence → share right (rows)")
    for name, r in reliability.items():
        table.add_row(
            name,
            str(r.rows),
            f"{r.accuracy:.3f}",
            f"{r.ece_raw:.3f}",
            "-" if r.ece_calibrated is None else f"{r.ece_calibrated:.3f}",
            " · ".join(f"{b.confidence:.2f}→{b.accuracy:.2f} ({b.rows})" for b in r.bins),
        )
    return table


def _sentiment(home: Path | None, dataset: Path | None, out: Path) -> None:
    from evals.sentiment import SENTIMENT_SET, run_sentiment_eval

    deps = load_deps(build_settings(home))
    with console.status("Embedding and scoring the labelled bank comments…"):
        report = run_sentiment_eval(deps, dataset or SENTIMENT_SET)
    counts = " · ".join(f"{n} {k}" for k, n in sorted(report.counts.items()))
    table = Table(title=f"Sentiment · {report.dataset} · {report.rows} rows ({counts})", title_justify="left")
    for col in ("Score", "AUC neg vs pos", "AUC neg vs rest"):
        table.add_column(col, justify="left" if col == "Score" else "right")

    def cells(p: AucPair | None) -> list[str]:
        values = (None, None) if p is None else (p.neg_vs_pos, p.neg_vs_rest)
        return ["-" if v is None else f"{v:.3f}" for v in values]

    table.add_row("pipeline (head + lexicon)", *cells(report.blend))
    table.add_row("head alone", *cells(report.head_only))
    table.add_row("lexicon alone", *cells(report.lexicon_only))
    for lang, p in report.by_language.items():
        table.add_row(f"pipeline, {lang} rows", *cells(p))
    table.add_row("goal", f"{report.goals['neg_vs_pos']:.2f}", f"{report.goals['neg_vs_rest']:.2f}")
    console.print(table)
    held = "-" if report.heldout_corpus_auc is None else f"{report.heldout_corpus_auc:.3f}"
    console.print(
        f"Head: {report.head} ({report.embedder}); its AUC on held-out corpus sentences: {held}. "
        f"Polarity accuracy {report.polarity_accuracy:.1%}; negative rows read as negative with "
        f"intensity > 0: {report.negative_with_intensity:.1%}."
    )
    out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    console.print(f"Report with every miss: [bold]{out}[/]")


def _tracking(home: Path | None, out: Path | None) -> None:
    from evals.tracking import calibrate_tracking

    deps = load_deps(build_settings(home))
    with console.status("Analysing the eval set and splitting its themes…"):
        report = calibrate_tracking(deps)
    for title, rows in (
        ("A complaint joins a problem (assign)", report.assign),
        ("A cluster continues a problem (match)", report.match),
    ):
        table = Table(title=f"{title} · {report.voices} voices, {report.themes} themes", title_justify="left")
        for col in ("Threshold", "Joins its own", "Joins a wrong one"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(f"{r.threshold:.2f}", f"{r.joins_own:.1%}", f"{r.joins_wrong:.1%}")
        console.print(table)
    console.print(
        f"Largest similarity between two themes' centroids: {report.max_between_themes:.3f} "
        f"(merge and related must stay above it). In force: {report.settings}"
    )
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


@app.command()
def bench(
    n: Annotated[int, typer.Option("--n", min=1, help="How many complaints to generate and analyse.")] = 1000,
    embed_sample: Annotated[
        int, typer.Option("--embed-sample", min=10, help="Texts embedded alone to measure the floor.")
    ] = 1000,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the numbers as JSON.")] = None,
    peer: Annotated[bool, typer.Option("--peer", help="Compare clustering with BERTopic instead.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Add generated months one by one to a fresh warehouse instead.")
    ] = False,
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Time the dashboard's pages on a large warehouse instead.")
    ] = False,
    months: Annotated[
        int, typer.Option("--months", min=2, help="With --history or --dashboard: how many months.")
    ] = 12,
    problems: Annotated[
        int, typer.Option("--problems", min=1, help="With --dashboard: how many tracked problems.")
    ] = 200,
    per_month: Annotated[
        int, typer.Option("--per-month", min=10, help="With --history: complaints per month (about).")
    ] = 5000,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="Worker counts to compare, e.g. 1,2: time one batch of N complaints analysed by that "
            "many `voc worker` processes (needs Postgres) instead.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="With --workers: the Postgres server to create throwaway databases on "
            "(default: VOC_DATABASE_URL).",
        ),
    ] = None,
    accept_posts: Annotated[
        int,
        typer.Option("--accept-posts", min=0, help="With --workers: POSTs timed while the workers are busy."),
    ] = 20,
    worker_nice: Annotated[
        int,
        typer.Option(
            "--worker-nice",
            min=0,
            max=19,
            help="With --workers: the workers' `voc worker --nice` (0: the API's priority).",
        ),
    ] = WORKER_NICE,
    home: HomeOpt = None,
) -> None:
    """Measure throughput end to end against the embedding-only floor, stage times and peak RSS.

    With --peer, instead compare our clustering with BERTopic on the same embeddings of the
    eval dataset (ARI against its planted themes, and wall time); `make bench-peer` installs it.

    With --history, generate MONTHS months of complaints (steady, rising, stopping, appearing and
    returning problems over seasonal noise) and add them month by month to a warehouse in a
    temporary home: time per month (it should not grow with history), the time to re-analyse a
    month already seen against its first run, the warehouse's size, how long `voc problems` takes,
    and how steadily each planted problem kept its tracked id.

    With --dashboard, write a warehouse of MONTHS months (24 is a good test) and PROBLEMS tracked
    problems into a temporary home and time each dashboard page through the real app.

    With --workers 1,2, for each count start `voc serve --no-workers` and that many single-threaded
    `voc worker` processes on a fresh database of the Postgres server (--database-url or
    VOC_DATABASE_URL), time one batch of N complaints from its 202 to done, then, with the most
    workers busy, time --accept-posts POSTs of 1,000-complaint batches.
    """
    from evals.bench import run_bench

    if workers is not None:
        _workers(workers, database_url, n, accept_posts, worker_nice, home, out)
        return
    deps = load_deps(build_settings(home))
    if peer:
        _peer(deps, out)
        return
    if history:
        _history(deps, months, per_month, out)
        return
    if dashboard:
        _dashboard(deps, months, problems, out)
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


def _workers(
    counts_text: str,
    database_url: str | None,
    n: int,
    accept_posts: int,
    nice: int,
    home: Path | None,
    out: Path | None,
) -> None:
    import tempfile

    from evals.workers_bench import BenchError, run_workers_bench

    try:
        counts = sorted({int(c) for c in counts_text.split(",") if c.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        err.print(f"[bold red]--workers takes worker counts like 1,2[/] (got {counts_text!r})")
        raise typer.Exit(2)
    settings = build_settings(home)
    url = database_url or settings.database_url
    if not url:
        err.print(
            "[bold red]voc bench --workers needs a Postgres server:[/] set VOC_DATABASE_URL or pass "
            "--database-url postgresql://... (it creates and drops a database per worker count)."
        )
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="voc-workers-bench-") as tmp:
        try:
            report = run_workers_bench(
                url,
                counts,
                Path(tmp),
                n=n,
                accept_posts=accept_posts,
                embedder=settings.embedder,
                nice=nice,
                on_step=lambda msg: err.print(f"  {msg}"),
            )
        except BenchError as exc:
            err.print(f"[bold red]Workers bench failed:[/] {exc}")
            raise typer.Exit(1) from None
    table = Table(
        title=f"Workers bench · n={n} · {report.embedder} · {report.cpus} CPUs", title_justify="left"
    )
    for col in (
        "Workers",
        "Seconds",
        "Complaints/s",
        "Speedup",
        "Cores used",
        "Chunks at once",
        "Load before",
        "Load after",
    ):
        table.add_column(col, justify="right")
    for r in report.runs:
        table.add_row(
            str(r.workers),
            f"{r.seconds:.1f}",
            f"{r.complaints_per_second:.1f}",
            f"{r.speedup:.2f}x",
            "-" if r.worker_cores is None else f"{r.worker_cores:.2f}",
            f"{r.chunks_at_once:.1f}",
            " ".join(f"{x:.1f}" for x in r.load_average_before),
            " ".join(f"{x:.1f}" for x in r.load_average_after),
        )
    console.print(table)
    if report.accept is not None:
        a = report.accept
        console.print(
            f"Accepting {a.posts} batches of {a.complaints_per_post:,} while {a.workers} worker(s) work: "
            f"p50 {a.p50_seconds:.3f} s · p99 {a.p99_seconds:.3f} s · max {a.max_seconds:.3f} s "
            f"(load {' '.join(f'{x:.1f}' for x in a.load_average)})"
        )
    console.print(
        "Cores used: the workers' CPU time over the wall time. On a machine busy with other work "
        "a second worker gets less than a core of its own; compare it with the speedup."
    )
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


def _dashboard(deps: Deps, months: int, problems: int, out: Path | None) -> None:
    from evals.dashboard_bench import run_dashboard_bench

    with console.status(f"Writing {months} months × {problems} problems and timing the pages…"):
        report = run_dashboard_bench(deps, months, problems)
    table = Table(
        title=f"Dashboard bench · {months} months · {problems} problems · {report.complaints:,} complaints",
        title_justify="left",
    )
    for col in ("Page", "Median ms", "Max ms", "KB"):
        table.add_column(col, justify="left" if col == "Page" else "right")
    for p in report.pages:
        table.add_row(p.path, f"{p.median_ms:.0f}", f"{p.max_ms:.0f}", f"{p.bytes / 1024:.0f}")
    console.print(table)
    console.print(f"Warehouse written and its series rebuilt in {report.build_seconds:.1f} s")
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


def _history(deps: Deps, months: int, per_month: int, out: Path | None) -> None:
    from evals.history_bench import MonthRun, run_history_bench

    table = Table(title=f"History bench · {months} months × about {per_month}", title_justify="left")
    for col in ("Month", "Complaints", "Seconds", "Embed s", "Track s", "Warehouse MB", "Tracked problems"):
        table.add_column(col, justify="left" if col == "Month" else "right")

    def on_month(run: MonthRun) -> None:
        err.print(f"  {run.period}: {run.complaints} complaints in {run.seconds:.1f} s")
        table.add_row(
            run.period,
            str(run.complaints),
            f"{run.seconds:.1f}",
            f"{run.embed_seconds:.1f}",
            f"{run.track_seconds:.2f}",
            f"{run.warehouse_mb:.1f}",
            str(run.tracked_problems),
        )

    report = run_history_bench(deps, months, per_month, on_month=on_month)
    console.print(table)
    console.print(
        f"Re-analysing {report.rerun_period} (every vector cached): {report.rerun_seconds:.1f} s, "
        f"{report.rerun_speedup:.1f}x faster than its first run"
    )
    console.print(
        f"voc problems: {report.problems_latency_ms:.0f} ms for {report.tracked_problems} problems · "
        f"voc alerts: {report.alerts_latency_ms:.0f} ms · warehouse {report.warehouse_mb:.1f} MB"
    )
    stab = Table(title="Planted problems and their tracked ids", title_justify="left")
    for col in ("Theme", "Complaints", "Main id", "Share in main id", "Months on main id"):
        stab.add_column(col, justify="left" if col in ("Theme", "Main id") else "right")
    for s in report.stability:
        stab.add_row(
            s.theme,
            str(s.complaints),
            s.main_problem or "-",
            f"{s.share_in_main:.0%}",
            f"{s.months_on_main}/{s.months_present}",
        )
    console.print(stab)
    if out:
        out.write_text(report.model_dump_json(indent=2), encoding="utf-8")


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
