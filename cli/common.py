"""What every voc command shares: the consoles, the --home and --engine options, settings and deps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from graph.deps import make_deps
from tools.datafile import DataFileError
from tools.deps import Deps
from tools.settings import LLMConfigError, Settings
from tools.store import StoreBuildTimeout, StoreUnavailable

console = Console()
err = Console(stderr=True)


def dump_json(doc: Any) -> None:
    """Print a document as the --json output of every command."""
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))


def refuse(exc: Any) -> None:
    """Print a service's refusal: its message, then each field it names (the row and field of bad input)."""
    err.print(f"[bold red]Error[/]: {escape(exc.message)}")
    for f in exc.fields or []:
        err.print(f"  {f.loc}: {escape(f.msg)}")


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
        help="rules (offline), llm (every complaint to the OpenAI-compatible endpoint in "
        "VOC_LLM_BASE_URL and VOC_LLM_MODEL) or auto (with both set, rules first and only the "
        "complaints it is unsure of to the model; else rules). Default: $VOC_ENGINE, else auto.",
        show_default=False,
    ),
]
CascadeThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--cascade-threshold",
        min=0.0,
        max=1.0,
        help="--engine auto: send complaints whose calibrated label confidence is below this to the "
        "model (0: none, 1: all). Default: $VOC_CASCADE_THRESHOLD, else read off the calibration "
        "curve for $VOC_CASCADE_TARGET (0.85).",
        show_default=False,
    ),
]


def build_settings(
    home: Path | None = None,
    engine: EngineChoice | None = None,
    cascade_threshold: float | None = None,
    **paths: Path | None,
) -> Settings:
    """Settings with the command's options on top; an engine that cannot run ends it here with exit 2."""
    overrides: dict[str, object] = {f"{k}_path": v for k, v in paths.items() if v is not None}
    if cascade_threshold is not None:
        overrides["cascade_threshold"] = cascade_threshold
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


@contextmanager
def exit_on_data_file_error() -> Iterator[None]:
    """A broken data file ends the command with exit code 3 and the file's problem, not a traceback."""
    try:
        yield
    except DataFileError as exc:
        err.print(f"[bold red]Data file error[/]: {exc}")
        raise typer.Exit(3) from None


@contextmanager
def exit_on_store_error() -> Iterator[None]:
    """A Chroma server that cannot be reached (or a build held too long elsewhere) ends the command
    with exit code 1 and one line naming the server, not a traceback."""
    try:
        yield
    except (StoreUnavailable, StoreBuildTimeout) as exc:
        err.print(f"[bold red]Knowledge store[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None


def load_deps(settings: Settings) -> Deps:
    """Deps under a spinner: the first use of a home indexes data/ into the store, which takes a while."""
    with (
        exit_on_data_file_error(),
        exit_on_store_error(),
        console.status("Loading data files and the knowledge store…") as status,
    ):

        def built(name: str, n: int) -> None:
            status.update(f"Indexed {n} {name} records into the knowledge store…")

        deps = make_deps(settings, on_build=built)
    for warning in deps.matrix.load_warnings:
        err.print(f"[yellow]Service matrix warning[/]: {escape(warning)}", soft_wrap=True)
    return deps
