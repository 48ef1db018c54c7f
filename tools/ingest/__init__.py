"""Reading complaint batches (JSON, JSONL, CSV, XLSX) and turning rows into masked complaints."""

from tools.ingest.prepare import parse_time, prepare
from tools.ingest.read import (
    FIELDS,
    FORMATS,
    InputFileError,
    RawRow,
    detect_format,
    read_rows,
    rows_from_bytes,
    rows_from_records,
)

__all__ = [
    "FIELDS",
    "FORMATS",
    "InputFileError",
    "RawRow",
    "detect_format",
    "parse_time",
    "prepare",
    "read_rows",
    "rows_from_bytes",
    "rows_from_records",
]
