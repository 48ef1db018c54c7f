"""Reading complaint batch files (JSON, JSONL, CSV, XLSX) into raw rows.

Unreadable rows come back with a problem (field, reason), not an exception; reasons never quote
the submitted value: it may hold personal data.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.ingest.columns import FIELDS, load_aliases, match, parse_columns, rename, shown
from tools.ingest.encoding import decode
from tools.ingest.errors import InputFileError

__all__ = ["FIELDS", "FORMATS", "InputFileError", "RawRow", "ReadInfo", "Batch"]

FORMATS = ("json", "jsonl", "csv", "xlsx")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
# A header is looked for in a sheet's first rows: exports often put a (merged) title row above it.
HEADER_SEARCH_ROWS = 10


@dataclass
class RawRow:
    """A row as read from the file: its 1-based row number and fields, or why it can't be read."""

    row: int
    data: dict[str, Any] | None
    problem: tuple[str, str] | None = None  # (field, reason)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in ("json", "csv", "xlsx"):
        return suffix
    if suffix in ("xlsm",):
        return "xlsx"
    raise InputFileError(f"{path.name}: unsupported file type '.{suffix}'; use .json, .jsonl, .csv or .xlsx")


@dataclass
class ReadInfo:
    """How a file was read: its format, the text encoding used (None for XLSX) and whether it was
    detected, and which column filled which field ({field: column as named in the file})."""

    name: str
    format: str
    encoding: str | None = None
    detected: bool = True
    columns: dict[str, str] = field(default_factory=dict)
    header_row: int | None = None

    def describe(self) -> str:
        """'read as GB18030; columns id=工单编号, text=投诉内容' (column names masked and cut short)."""
        parts = []
        if self.encoding:
            parts.append(f"read as {self.encoding}" + ("" if self.detected else " (--encoding)"))
        if self.header_row and self.header_row > 1:
            parts.append(f"header on row {self.header_row}")
        if self.columns:
            cols = [f"{f}={shown(c)}" if c != f else f for f, c in self.columns.items()]
            parts.append("columns " + ", ".join(cols))
        return "; ".join(parts)


@dataclass
class Batch:
    rows: list[RawRow]
    info: ReadInfo


def read_batch(
    path: Path | str,
    *,
    encoding: str | None = None,
    columns: str | dict[str, str] | None = None,
    aliases: Path | str | None = None,
) -> Batch:
    """Read every row of a batch file, with how it was read; unreadable rows come back with a
    problem, not an exception. ``encoding`` overrides detection; ``columns`` (``text=诉求内容,...``
    or a dict) names columns the aliases don't match; ``aliases`` is another alias file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    return batch_from_bytes(path.read_bytes(), path.name, encoding=encoding, columns=columns, aliases=aliases)


def read_rows(path: Path | str, **options: Any) -> list[RawRow]:
    """Read every row of a batch file (see :func:`read_batch`)."""
    return read_batch(path, **options).rows


def rows_from_bytes(data: bytes, name: str, **options: Any) -> list[RawRow]:
    """Read every row of a batch file held in memory (an upload); ``name`` tells its type."""
    return batch_from_bytes(data, name, **options).rows


def batch_from_bytes(
    data: bytes,
    name: str,
    *,
    encoding: str | None = None,
    columns: str | dict[str, str] | None = None,
    aliases: Path | str | None = None,
) -> Batch:
    """Like :func:`read_batch`, for a file held in memory; ``name`` tells its type."""
    fmt = detect_format(Path(name))
    explicit = columns if isinstance(columns, dict) else parse_columns(columns)
    table = load_aliases(aliases)
    info = ReadInfo(name=name, format=fmt)
    if fmt == "xlsx":
        return Batch(_table(_xlsx_records(data), info, table, explicit), info)
    decoded = decode(data, encoding)
    info.encoding, info.detected = decoded.encoding, decoded.detected
    text = decoded.text
    if "\x00" in text[:8192]:
        raise InputFileError(f"{name}: not a text file (binary data); save it as CSV, JSON or JSONL text")
    if fmt == "csv":
        return Batch(_table(_csv_records(text), info, table, explicit), info)
    records = _read_jsonl(text, decoded.encoding) if fmt == "jsonl" else _read_json(text, info)
    rows = []
    mappings: dict[tuple[str, ...], dict[str, str]] = {}  # records mostly share their keys
    for raw in records:
        if raw.data is not None:
            keys = tuple(raw.data)
            if keys not in mappings:
                mappings[keys] = match(list(keys), table, explicit, strict=False)
                for column, fld in mappings[keys].items():
                    info.columns.setdefault(fld, column)
            raw = RawRow(raw.row, rename(raw.data, mappings[keys]))
        rows.append(raw)
    return Batch(rows, info)


def records_from_bytes(data: bytes, name: str, *, encoding: str | None = None) -> list[RawRow]:
    """Rows of a plain table that is not a complaint batch (reviewers' corrections): the same formats and
    encodings as a batch, the first non-blank row of a sheet as its header, keys as written (no aliases)."""
    fmt = detect_format(Path(name))
    if fmt == "xlsx":
        records = _xlsx_records(data)
    else:
        decoded = decode(data, encoding)
        text = decoded.text
        if "\x00" in text[:8192]:
            raise InputFileError(f"{name}: not a text file (binary data); save it as CSV, JSON or JSONL text")
        if fmt != "csv":
            info = ReadInfo(name=name, format=fmt, encoding=decoded.encoding)
            rows = _read_jsonl(text, decoded.encoding) if fmt == "jsonl" else _read_json(text, info)
            return list(rows)
        records = _csv_records(text)
    out: list[RawRow] = []
    header: list[str] | None = None
    for n, values in enumerate(records, start=1):
        if _blank(values):
            continue
        if header is None:
            header = _names(values)
            continue
        rec = {k: v for k, v in zip(header, values, strict=False) if k}
        bad = [k for k, v in rec.items() if isinstance(v, str) and _SURROGATE.search(v)]
        out.append(RawRow(n, None, (bad[0], "not valid text")) if bad else RawRow(n, rec))
    return out


def rows_from_records(records: Iterable[Any]) -> list[RawRow]:
    """Rows from already-parsed records (an HTTP body, an MCP call)."""
    out = []
    for i, rec in enumerate(records, start=1):
        if isinstance(rec, dict):
            out.append(RawRow(i, rec))
        else:
            out.append(RawRow(i, None, ("row", "each complaint must be an object with id and text")))
    return out


def _read_jsonl(text: str, encoding: str) -> Iterator[RawRow]:
    # Split on "\n" only: str.splitlines() also breaks on U+2028/U+2029/U+0085, which JSON
    # allows unescaped inside strings, and would cut a valid row in two and shift row numbers.
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if _SURROGATE.search(line):
            yield RawRow(n, None, ("row", f"line is not valid {encoding} text"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(n, None, ("row", f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            yield RawRow(n, None, ("row", "each line must be a JSON object with id and text"))
            continue
        yield RawRow(n, obj)


def _read_json(text: str, info: ReadInfo) -> Iterator[RawRow]:
    name = info.name
    if _SURROGATE.search(text):
        # A JSON document is parsed whole; invalid bytes make the file unreadable.
        raise InputFileError(
            f"{name}: not valid {info.encoding} text; save it as UTF-8, name its encoding with "
            "--encoding, or use JSONL/CSV"
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    records = doc.get("complaints") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InputFileError(f'{name}: expected a list of complaints or {{"complaints": [...]}}')
    yield from rows_from_records(records)


def _csv_records(text: str) -> list[list[Any]]:
    head = text[:20_000].split("\n", HEADER_SEARCH_ROWS)[:HEADER_SEARCH_ROWS]
    delimiter = "\t" if sum(x.count("\t") for x in head) > sum(x.count(",") for x in head) else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx_records(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a corrupt file
        raise InputFileError(f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        records = [list(values) for values in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    if not any(not _blank(r) for r in records):
        raise InputFileError("the first worksheet is empty")
    return records


def _blank(values: list[Any] | tuple[Any, ...] | None) -> bool:
    return not values or all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _names(values: list[Any]) -> list[str]:
    return [str(v).strip() if v is not None else "" for v in values]


def _table(
    records: list[list[Any]],
    info: ReadInfo,
    aliases: dict[str, tuple[str, int]],
    explicit: dict[str, str],
) -> list[RawRow]:
    """Rows of a sheet (CSV or XLSX), numbered as a spreadsheet shows them. The header is the
    first of the first rows with a column for text; rows above it (a title) and blank rows are
    skipped."""
    header_at = None
    for i, values in enumerate(records[:HEADER_SEARCH_ROWS]):
        if not _blank(values) and "text" in match(_names(values), aliases, explicit, strict=False).values():
            header_at = i
            break
    if header_at is None:
        # Nothing looks like a header: say what the likeliest one (two or more cells) holds.
        candidates = [i for i, v in enumerate(records[:HEADER_SEARCH_ROWS]) if not _blank(v)]
        wide = [i for i in candidates if sum(not _blank([v]) for v in records[i]) >= 2]
        at = (wide or candidates or [0])[0]
        names = _names(records[at]) if records else []
        mapping = match(names, aliases, explicit)  # a missing --columns column is named here
        found = [f"{fld}={shown(col)}" if col != fld else fld for col, fld in mapping.items()]
        others = [shown(n) for n in names if n and n not in mapping]
        listed = []
        if found:
            listed.append("matched " + ", ".join(found))
        if others:
            listed.append("other columns " + ", ".join(others[:12]) + (" …" if len(others) > 12 else ""))
        how = f" (read as {info.encoding})" if info.encoding else ""
        raise InputFileError(
            f"{info.name}{how}: no column for text in the header"
            + (f" ({'; '.join(listed)})" if listed else " (no header row found)")
            + "; the header needs id and text columns, or name them with --columns text=COLUMN,id=COLUMN"
        )
    names = _names(records[header_at])
    mapping = match(names, aliases, explicit)
    info.header_row = header_at + 1
    info.columns = {fld: col for col, fld in sorted(mapping.items(), key=lambda kv: FIELDS.index(kv[1]))}
    label = info.encoding or "text"
    rows: list[RawRow] = []
    for n, values in enumerate(records[header_at + 1 :], start=header_at + 2):
        if _blank(values):
            continue
        rec = rename({k: v for k, v in zip(names, values, strict=False) if k}, mapping)
        bad = [k for k, v in rec.items() if isinstance(v, str) and _SURROGATE.search(v)]
        if bad:
            rows.append(RawRow(n, None, (bad[0], f"not valid {label} text")))
            continue
        rows.append(RawRow(n, rec))
    return rows
