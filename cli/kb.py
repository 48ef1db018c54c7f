"""voc kb: rebuild and search the Chroma knowledge store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import (
    HomeOpt,
    build_settings,
    console,
    err,
    exit_on_data_file_error,
    exit_on_store_error,
    load_deps,
)
from graph.deps import make_deps
from tools.store import store_location

app = typer.Typer(
    help="Inspect and rebuild the Chroma knowledge store built from data/.", no_args_is_help=True
)


@app.command("rebuild")
def kb_rebuild(home: HomeOpt = None) -> None:
    """Re-embed every knowledge entry, case, taxonomy exemplar and department from data/.

    With VOC_CHROMA_URL the server's collections are rebuilt; processes using them switch to the
    new ones when they are complete, and superseded ones are removed.
    """
    settings = build_settings(home)
    with exit_on_data_file_error(), exit_on_store_error():
        deps = make_deps(settings, build_store=False)
        with console.status("Rebuilding the knowledge store…") as status:

            def done(name: str, n: int) -> None:
                status.update(f"Indexed {n} {name} records…")

            built = deps.store.ensure_built(force=True, progress=done)
    table = Table(title=f"Knowledge store at {store_location(settings)}", title_justify="left")
    table.add_column("Collection")
    table.add_column("Records", justify="right")
    table.add_column("Version")
    for name, n in built.items():
        table.add_row(name, str(n), deps.store.collection_name(name))
    console.print(table)


@app.command("search")
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
    deps = load_deps(build_settings(home))
    hits = deps.store.search(collection, query, k=k)
    table = Table(title=f"{collection}: {query}", title_justify="left")
    table.add_column("Id")
    table.add_column("Score", justify="right")
    table.add_column("Text")
    for h in hits:
        table.add_row(h.id, f"{h.score:.3f}", h.text[:120].replace("\n", " "))
    console.print(table)
