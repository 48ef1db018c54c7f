"""voc data: the service matrix and taxonomy as spreadsheets to start your own from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.common import HomeOpt, build_settings, console, exit_on_data_file_error
from tools import datatable as dt
from tools.matrix import load_matrix, matrix_sheets
from tools.taxonomy import load_taxonomy, taxonomy_sheets

app = typer.Typer(help="Work with the service matrix and taxonomy as spreadsheets.", no_args_is_help=True)


class SheetFormat(StrEnum):
    """The --format values."""

    xlsx = "xlsx"
    csv = "csv"


@app.command("export")
def export(
    fmt: Annotated[
        SheetFormat,
        typer.Option("--format", "-f", help="xlsx (one workbook each) or csv (one file per sheet)."),
    ] = SheetFormat.xlsx,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path("."),
    service_matrix: Annotated[
        Path | None, typer.Option("--service-matrix", help="Export this matrix instead of the one in force.")
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option("--taxonomy", help="Export this taxonomy instead of the one in force.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write the service matrix and taxonomy in force (the bundled ones unless replaced) as
    service_matrix.xlsx and taxonomy.xlsx, or as CSV files, to edit and pass back with
    `voc analyze --service-matrix service_matrix.xlsx --taxonomy taxonomy.xlsx`."""
    settings = build_settings(home, service_matrix=service_matrix, taxonomy=taxonomy)
    with exit_on_data_file_error():
        matrix = load_matrix(settings.path("service_matrix"))
        tax = load_taxonomy(settings.path("taxonomy"))
    written: list[Path] = []
    for name, sheets in (("service_matrix", matrix_sheets(matrix)), ("taxonomy", taxonomy_sheets(tax))):
        target = out / f"{name}.{fmt.value}"
        if fmt is SheetFormat.xlsx:
            written.append(dt.write_xlsx(target, sheets))
        else:
            written.extend(dt.write_csv(target, sheets))
    console.print(
        f"Service matrix [bold]{matrix.name}[/] ({len(matrix.departments)} departments) and taxonomy "
        f"[bold]{tax.name}[/] ({len(tax.labels)} labels) written:"
    )
    for path in written:
        console.print(f"  {path}")
