"""Data files as tables: reading and writing a service matrix or taxonomy kept as CSV or XLSX.

A bank keeps its service matrix in a spreadsheet: one row per department, several values in a
cell separated by ``|`` (or ``;``, ``、``, ``，``), column names in English or Chinese. This
module reads such a workbook (or CSV file) into :class:`Sheet` objects whose rows know their
sheet, row number and column headers, so the loaders in ``tools.matrix`` and ``tools.taxonomy``
can build their models and report a bad cell as "matrix.xlsx, sheet 部门, row 7, column
keywords: ...". It also writes models back out as spreadsheets (``voc data export``).

A workbook holds several sheets (departments, channels, products, ...). A CSV file holds one; the
others sit beside it as ``<stem>.<sheet>.csv`` (``matrix.csv``, ``matrix.channels.csv``, ...).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tools.datafile import DataFileError, file_digest

TABLE_SUFFIXES = (".csv", ".xlsx")

# Short values (keywords, aliases, channels) may be separated by any of these; long free text
# (exemplar complaints, which contain commas and 、) only by ``|`` or a line break.
_SPLIT_TERMS = re.compile(r"[|｜;；、，\n]")
_SPLIT_TEXT = re.compile(r"[|｜\n]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_table(path: Path | str) -> bool:
    """Whether ``path`` is read as a table (CSV or XLSX) rather than YAML/JSON."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def check_id(value: str) -> str:
    """An id is a key, not an identifier: any Unicode name, stripped, non-empty, no control characters."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (tabs, line breaks, ...)")
    return value


def normalise_header(header: str) -> str:
    """``Owner Role``, ``owner_role`` and ``owner-role`` are one column; Chinese is kept as is."""
    return re.sub(r"[\s_\-（）()/]+", "_", header.strip().lower()).strip("_")


def split_values(value: str, *, text: bool = False) -> list[str]:
    """The values in a multi-value cell, stripped, empty ones dropped."""
    parts = (_SPLIT_TEXT if text else _SPLIT_TERMS).split(value)
    return [p.strip() for p in parts if p.strip()]


def cell_text(value: object) -> str:
    """A cell as text: numbers typed into Excel (12378, 12378.0) read as ``12378``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass
class Row:
    """One data row: its cells by canonical column name, and where it came from."""

    sheet: Sheet
    number: int  # as the spreadsheet shows it: the header is row 1
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "")

    def values(self, column: str, *, text: bool = False) -> list[str]:
        return split_values(self.get(column), text=text)

    def where(self, column: str | None = None) -> str:
        """``matrix.xlsx, sheet 部门, row 7, column 关键词 (keywords)``."""
        parts = [self.sheet.file]
        if self.sheet.name:
            parts.append(f"sheet {self.sheet.name}")
        parts.append(f"row {self.number}")
        if column:
            header = self.sheet.headers.get(column, column)
            parts.append(f"column {header}" + (f" ({column})" if header != column else ""))
        return ", ".join(parts)


@dataclass
class Sheet:
    """A sheet (or CSV file); :meth:`use` maps its columns to canonical names and reads its rows."""

    file: str  # the file name shown in errors
    name: str  # the sheet name; "" for a CSV file
    table: list[list[str]] = field(default_factory=list, repr=False)
    headers: dict[str, str] = field(default_factory=dict)  # canonical column -> header as written
    rows: list[Row] = field(default_factory=list)

    def use(self, columns: Mapping[str, Sequence[str]]) -> Sheet:
        """Read the rows with ``columns`` (canonical column -> the headers that name it).

        The first non-empty row is the header. Headers no alias names are kept under their
        normalised form (see :func:`unused_columns`). Fully empty rows are skipped.
        """
        lookup = {normalise_header(a): canon for canon, aliases in columns.items() for a in (canon, *aliases)}
        self.headers, self.rows = {}, []
        start = next((i for i, row in enumerate(self.table) if any(row)), None)
        if start is None:
            return self
        keys: list[str | None] = []
        for header in self.table[start]:
            key = lookup.get(normalise_header(header), normalise_header(header)) if header else None
            if key and key in self.headers:
                where = Row(self, start + 1, {}).where()
                raise DataFileError(self.file, [f"{where}, column {header}: a second column for {key}"])
            if key:
                self.headers[key] = header
            keys.append(key)
        for number, row in enumerate(self.table[start + 1 :], start=start + 2):
            cells = {k: v for k, v in zip(keys, row, strict=False) if k and v}
            if cells:
                self.rows.append(Row(self, number, cells))
        return self


@dataclass
class Workbook:
    """The sheets of a data file, by name as written."""

    path: Path
    sheets: list[Sheet]

    def find(self, names: Iterable[str]) -> Sheet | None:
        wanted = {normalise_header(n) for n in names}
        for sheet in self.sheets:
            if normalise_header(sheet.name) in wanted:
                return sheet
        return None


def _raw_tables(path: Path) -> list[Sheet]:
    """Each sheet of an XLSX file, or a CSV file and its companions, unparsed."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a corrupt file
            raise DataFileError(path, [f"not a readable XLSX workbook ({type(exc).__name__})"]) from None
        try:
            return [
                Sheet(
                    path.name,
                    ws.title,
                    [[cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)],
                )
                for ws in wb.worksheets
            ]
        finally:
            wb.close()
    sheets = [Sheet(path.name, "", _read_csv(path))]
    for companion in companion_files(path):
        sheets.append(Sheet(companion.name, companion.name[len(path.stem) + 1 : -4], _read_csv(companion)))
    return sheets


def _read_csv(path: Path) -> list[list[str]]:
    from tools.ingest.encoding import decode  # tools.ingest imports the taxonomy, which imports this

    text = decode(path.read_bytes()).text
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        raise DataFileError(path, ["not UTF-8 or GB18030 text"])
    return [[cell_text(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""))]


def companion_files(path: Path | str) -> list[Path]:
    """The other sheets of a CSV data file: ``matrix.channels.csv`` beside ``matrix.csv``."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return []
    return sorted(p for p in path.parent.glob(f"{path.stem}.*.csv") if p.is_file() and p != path)


def read_workbook(path: Path | str) -> Workbook:
    """Every sheet of an XLSX file, or a CSV file and its ``<stem>.<sheet>.csv`` companions."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, ["file not found"])
    return Workbook(path, _raw_tables(path))


def row_errors(row: Row, exc: ValidationError, field_column: dict[str, str] | None = None) -> list[str]:
    """A pydantic error on a model built from ``row``, as "file, sheet, row, column: message" lines."""
    field_column = field_column or {}
    out = []
    for e in exc.errors():
        loc = e["loc"]
        column = field_column.get(str(loc[0]), str(loc[0])) if loc else None
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{row.where(column)}: {msg}")
    return out


# ── writing ───────────────────────────────────────────────────────────────────

Table = tuple[list[str], list[list[str]]]  # headers, rows


def join_values(values: Iterable[str], *, text: bool = False) -> str:
    """A list as one cell: ``a | b | c``; free text one value a line."""
    return ("\n" if text else " | ").join(values)


def write_xlsx(path: Path, sheets: dict[str, Table]) -> Path:
    """Write ``sheets`` (name -> headers, rows) as one workbook, header row bold and frozen."""
    from openpyxl import Workbook as XlsxWorkbook
    from openpyxl.styles import Alignment, Font

    wb = XlsxWorkbook()
    wb.remove(wb.active)
    for name, (headers, rows) in sheets.items():
        ws = wb.create_sheet(name)
        ws.append(headers)
        for row in rows:
            ws.append(row)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for i, header in enumerate(headers, start=1):
            width = max([len(header), *(min(len(r[i - 1]), 60) for r in rows)], default=10)
            ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, width + 2)
        for row_cells in ws.iter_rows(min_row=2):
            for cell in row_cells:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_csv(path: Path, sheets: dict[str, Table]) -> list[Path]:
    """Write the first sheet to ``path`` and each other one to ``<stem>.<sheet>.csv`` (UTF-8 with BOM,
    which Excel opens correctly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (name, (headers, rows)) in enumerate(sheets.items()):
        target = path if i == 0 else path.with_name(f"{path.stem}.{name}.csv")
        with target.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(headers)
            writer.writerows(rows)
        written.append(target)
    return written


# ── shared by the loaders ─────────────────────────────────────────────────────

ABOUT_SHEET = ("about", "说明", "信息", "元数据", "文件信息")
ABOUT_COLUMNS: dict[str, Sequence[str]] = {"key": ("项目", "字段", "field", "键"), "value": ("值", "内容")}
ABOUT_KEYS: dict[str, Sequence[str]] = {
    "version": ("版本", "版本号"),
    "name": ("名称",),
    "description": ("描述", "说明"),
}


def main_sheet(book: Workbook, names: Sequence[str], others: Sequence[Sequence[str]]) -> Sheet:
    """The sheet with one row per entry: the one called one of ``names``, else the first sheet that
    is not one of the ``others`` (a workbook of one sheet, or a CSV file, is its own main sheet)."""
    found = book.find(names)
    if found is not None:
        return found
    known = {normalise_header(n) for group in others for n in group}
    for sheet in book.sheets:
        if normalise_header(sheet.name) not in known:
            return sheet
    raise DataFileError(book.path, [f"no sheet called {' or '.join(names[:3])}"])


def read_about(book: Workbook) -> dict[str, str]:
    """version, name and description from the about sheet (``key``/``value`` rows), if there is one."""
    sheet = book.find(ABOUT_SHEET)
    if sheet is None:
        return {}
    sheet.use(ABOUT_COLUMNS)
    lookup = {normalise_header(a): k for k, aliases in ABOUT_KEYS.items() for a in (k, *aliases)}
    out: dict[str, str] = {}
    for row in sheet.rows:
        key = lookup.get(normalise_header(row.get("key")))
        if key is None:
            raise DataFileError(
                book.path,
                [f"{row.where('key')}: unknown item {row.get('key')!r}; use version, name or description"],
            )
        out[key] = row.get("value")
    return out


def unused_columns(sheet: Sheet, known: Iterable[str]) -> list[str]:
    """Warnings for columns a sheet has that no field takes (they are ignored)."""
    known = set(known)
    where = sheet.file + (f", sheet {sheet.name}" if sheet.name else "")
    return [f"{where}: column {h!r} is not used" for k, h in sheet.headers.items() if k not in known]


def version_of(path: Path) -> str:
    """A version for a table without one in its about sheet: its content hash."""

    return f"{path.name}@{file_digest(*data_files(path))[:8]}"


def data_files(path: Path | str) -> list[Path]:
    """A data file and, for a CSV table, its companion sheets: what its content hash covers."""
    return [Path(path), *companion_files(path)]
