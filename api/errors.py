"""Domain errors and their HTTP mapping, in one place.

Error bodies name rows, fields and reasons; they never echo submitted text, which may hold
personal data. Validation errors lose pydantic's ``input`` and ``ctx`` for the same reason.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tools.datafile import DataFileError
from tools.ingest import InputFileError
from tools.pii import mask_text
from tools.schema import RowError

log = logging.getLogger("voc.api")


class FieldError(BaseModel):
    loc: str = Field(description="Where in the request, e.g. body.options.source.")
    msg: str = Field(description="What is wrong.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. rows_over_limit.")
    message: str = Field(description="What went wrong and what to do about it.")
    rows: list[RowError] | None = Field(None, description="Rows at fault (row number, field, reason).")
    rows_total: int | None = Field(None, description="How many rows are at fault, if more are listed.")
    fields: list[FieldError] | None = Field(None, description="Request fields at fault.")
    problems: list[str] | None = Field(None, description="Problems found in a submitted data file.")


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class ApiError(Exception):
    """An error a caller can act on; ``status`` is the HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        rows: list[RowError] | None = None,
        rows_total: int | None = None,
        problems: list[str] | None = None,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rows = rows
        self.rows_total = rows_total
        self.problems = problems
        self.fields = fields
        self.headers = headers

    def body(self) -> ErrorBody:
        return ErrorBody(
            error=ErrorDetail(
                code=self.code,
                message=self.message,
                rows=self.rows,
                rows_total=self.rows_total,
                problems=self.problems,
                fields=self.fields,
            )
        )


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class NotFinished(Conflict):
    code = "not_finished"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "invalid_request"


class RowsOverLimit(Unprocessable):
    code = "rows_over_limit"


class NoValidRows(Unprocessable):
    code = "no_valid_rows"


class IdempotencyConflict(Unprocessable):
    code = "idempotency_key_reused"


class InvalidDataFile(Unprocessable):
    code = "invalid_data_file"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many requests for this key; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class Busy(ApiError):
    status, code = 503, "busy"

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class NotReady(ApiError):
    status, code = 503, "not_ready"


class AuditUnavailable(ApiError):
    status, code = 503, "audit_unavailable"

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class _ErrorJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        # Parser messages can carry lone surrogates from undecodable input; never fail on them.
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return _ErrorJSON(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _simple(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return error_response(status, ErrorBody(error=ErrorDetail(code=code, message=message)), headers)


def _loc(parts: tuple[Any, ...]) -> str:
    # Dict keys in a location were submitted too; mask them like any other submitted text.
    return ".".join(str(p) if isinstance(p, int) else mask_text(str(p)) for p in parts)


def field_errors(errors: list[Any], prefix: tuple[Any, ...] = ()) -> list[FieldError]:
    """Pydantic errors without ``input`` or ``ctx``: location and message only."""
    return [FieldError(loc=_loc(prefix + tuple(e.get("loc", ()))), msg=str(e.get("msg", ""))) for e in errors]


def install(app: FastAPI) -> None:
    """Map domain errors, validation errors and stray exceptions to :class:`ErrorBody` responses."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.body(), exc.headers)

    @app.exception_handler(DataFileError)
    async def _data_file(request: Request, exc: DataFileError) -> JSONResponse:
        return error_response(
            422, InvalidDataFile("the data file is not valid", problems=exc.problems).body()
        )

    @app.exception_handler(InputFileError)
    async def _input_file(request: Request, exc: InputFileError) -> JSONResponse:
        return _simple(422, "unreadable_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = ErrorBody(
            error=ErrorDetail(
                code="invalid_request",
                message="the request is not valid",
                fields=field_errors(list(exc.errors())),
            )
        )
        return error_response(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(exc.headers) if exc.headers else None
        return _simple(exc.status_code, codes.get(exc.status_code, "http_error"), message, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return _simple(500, "internal", "internal error; the server log has the details")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    text = {
        401: "Missing or invalid API key.",
        403: "The key lacks the scope this route needs.",
        404: "No such batch or entry.",
        409: "The resource is not in a state that allows this.",
        413: "Request body over the configured limit.",
        415: "Unsupported Content-Type.",
        422: "Invalid request; rows, fields or data-file problems are named.",
        429: "Rate limit for this key; see Retry-After.",
        503: "Busy, not ready, or the audit log cannot be written; see Retry-After.",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}
