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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELDS = (
    "id",
    "text",
    "channel",
    "received_at",
    "customer_id",
    "customer_segment",
    "business_line",
    "product",
)
FORMATS = ("json", "jsonl", "csv", "xlsx")
_SURROGATE = re.compile(r"[\udc80-\udcff]")


class InputFileError(ValueError):
    """The whole input file cannot be read (not a row-level problem)."""


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


def read_rows(path: Path | str) -> list[RawRow]:
    """Read every row of a batch file; unreadable rows come back with a problem, not an exception."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    return rows_from_bytes(path.read_bytes(), path.name)


def rows_from_bytes(data: bytes, name: str) -> list[RawRow]:
    """Read every row of a batch file held in memory (an upload); ``name`` tells its type."""
    fmt = detect_format(Path(name))
    if fmt == "xlsx":
        return list(_read_xlsx(data))
    text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", errors="surrogateescape")
    if fmt == "jsonl":
        return list(_read_jsonl(text))
    if fmt == "json":
        return list(_read_json(text, name))
    return list(_read_csv(text))


def rows_from_records(records: Iterable[Any]) -> list[RawRow]:
    """Rows from already-parsed records (an HTTP body, an MCP call)."""
    out = []
    for i, rec in enumerate(records, start=1):
        if isinstance(rec, dict):
            out.append(RawRow(i, rec))
        else:
            out.append(RawRow(i, None, ("row", "each complaint must be an object with id and text")))
    return out


def _read_jsonl(text: str) -> Iterator[RawRow]:
    # Split on "\n" only: str.splitlines() also breaks on U+2028/U+2029/U+0085, which JSON
    # allows unescaped inside strings, and would cut a valid row in two and shift row numbers.
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if _SURROGATE.search(line):
            yield RawRow(n, None, ("row", "line is not valid UTF-8 text"))
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


def _read_json(text: str, name: str) -> Iterator[RawRow]:
    if _SURROGATE.search(text):
        # A JSON document is parsed whole; invalid bytes make the file unreadable.
        raise InputFileError(f"{name}: not valid UTF-8; save it as UTF-8 or use JSONL/CSV")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    records = doc.get("complaints") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InputFileError(f'{name}: expected a list of complaints or {{"complaints": [...]}}')
    yield from rows_from_records(records)


def _read_csv(text: str) -> Iterator[RawRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "text" not in [f.strip() for f in reader.fieldnames]:
        raise InputFileError("CSV header must include at least the columns id and text")
    for n, rec in enumerate(reader, start=2):  # row 1 is the header, as a spreadsheet shows it
        rec = {(k or "").strip(): v for k, v in rec.items() if k is not None}
        bad = [k for k, v in rec.items() if isinstance(v, str) and _SURROGATE.search(v)]
        if bad:
            yield RawRow(n, None, (bad[0], "not valid UTF-8 text"))
            continue
        yield RawRow(n, rec)


def _read_xlsx(data: bytes) -> Iterator[RawRow]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a corrupt file
        raise InputFileError(f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
        raise InputFileError("the first worksheet is empty")
    names = [str(h).strip() if h is not None else "" for h in header]
    if "text" not in names:
        raise InputFileError("the first worksheet's header row must include id and text")
    for n, values in enumerate(rows, start=2):
        if values is None or all(v is None for v in values):
            continue
        yield RawRow(n, {k: v for k, v in zip(names, values, strict=False) if k})
    wb.close()
