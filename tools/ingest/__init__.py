"""Reading complaint batches (JSON, JSONL, CSV, XLSX) and turning rows into masked complaints."""

from tools.ingest.prepare import parse_time, prepare
from tools.ingest.read import (
    FIELDS,
    FORMATS,
    Batch,
    InputFileError,
    RawRow,
    ReadInfo,
    batch_from_bytes,
    detect_format,
    read_batch,
    read_rows,
    records_from_bytes,
    rows_from_bytes,
    rows_from_records,
)

__all__ = [
    "FIELDS",
    "FORMATS",
    "Batch",
    "InputFileError",
    "RawRow",
    "ReadInfo",
    "batch_from_bytes",
    "detect_format",
    "read_batch",
    "records_from_bytes",
    "parse_time",
    "prepare",
    "read_rows",
    "rows_from_bytes",
    "rows_from_records",
]
