"""Reading a batch from an HTTP request: a JSON body or a multipart file upload."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from api.errors import UnsupportedMediaType
from services.batches import UPLOAD_SUFFIXES, Submission, parse_file, parse_json, parse_options
from services.errors import Unprocessable


async def read_submission(request: Request) -> Submission:
    """Read a JSON body or a multipart upload (field ``file``, optional ``options`` as JSON)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _read_upload(request)
    if ctype in ("", "application/json") or ctype.endswith("+json"):
        return await run_in_threadpool(parse_json, await request.body())
    raise UnsupportedMediaType("send application/json or multipart/form-data with a file field")


async def _read_upload(request: Request) -> Submission:
    form = await request.form(max_files=1, max_fields=4)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("send the batch as a file field named 'file' (.csv, .jsonl, .json or .xlsx)")
        name = Path(upload.filename or "").name
        if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
            raise Unprocessable("unsupported file type; use .csv, .jsonl, .json or .xlsx")
        data = await upload.read()
        raw_options = form.get("options")
        if isinstance(raw_options, UploadFile):
            raise Unprocessable("options must be a JSON text field, not a file")
        try:
            options_doc = json.loads(raw_options) if raw_options else None
        except (ValueError, RecursionError):
            raise Unprocessable("the options field is not valid JSON") from None
    finally:
        await form.close()
    options = parse_options(options_doc)
    return await run_in_threadpool(parse_file, data, name, options, options_doc)
