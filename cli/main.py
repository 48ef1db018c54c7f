"""The ``voc`` command line: analyse complaint batches, run the demo, manage the knowledge store."""

from __future__ import annotations

import sys

import typer

from cli import (
    actions,
    analyze,
    audit,
    data,
    db,
    evaluate,
    feedback,
    kb,
    review,
    serve,
    tracking,
    train,
    webhooks,
    workers,
)

app = typer.Typer(
    name="voc",
    help=(
        "VOC Tracer (客户声音溯源): turn complaint batches into owned, explained, prioritised "
        "problems with remediation proposals. Runs offline by default.\n\n"
        "Start with `voc demo`, then `voc analyze your_batch.csv --out reports/`.\n\n"
        "What keeps coming back, period after period: `voc problems --status rising`, `voc alerts`.\n\n"
        "Fix it and prove it worked: `voc actions open TP-0012 --from-proposal`, then "
        "`voc actions show ACT-0001`.\n\n"
        "Teach it: `voc feedback add C-1024 --l2 机-面客系统`, `voc feedback stats`.\n\n"
        "Who did what, when: `voc audit --days 7`.\n\n"
        "Tickets out: `voc webhooks add URL --events problem.new,problem.alert`.\n\n"
        "Your own service matrix or taxonomy as a spreadsheet: `voc data export --format xlsx`.\n\n"
        "Keep data no longer than needed: `voc purge --older-than 90 --dry-run`, then `--yes`.\n\n"
        "Rebuild the trained sentiment head from its public corpus: `voc train sentiment`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# Added without a name, a group's commands sit at the top level; --help lists them in this order.
app.add_typer(analyze.app)
app.add_typer(evaluate.app)
app.add_typer(serve.app)
app.add_typer(workers.app)
app.add_typer(audit.app)
app.add_typer(tracking.problems_app, name="problems")
app.add_typer(tracking.app)
app.add_typer(tracking.periods_app, name="periods")
app.add_typer(review.app)
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(actions.app, name="actions")
app.add_typer(feedback.app, name="feedback")
app.add_typer(kb.app, name="kb")
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(db.app, name="db")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
