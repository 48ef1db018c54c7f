"""The HTTP mapping of errors: domain errors, request validation and stray exceptions as ``ErrorBody``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import ErrorBody, ErrorDetail, InvalidDataFile, ServiceError, field_errors
from tools.datafile import DataFileError
from tools.ingest import InputFileError

log = logging.getLogger("voc.api")


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class _ErrorJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        # Parser messages can carry lone surrogates from undecodable input; never fail on them.
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return _ErrorJSON(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _simple(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return error_response(status, ErrorBody(error=ErrorDetail(code=code, message=message)), headers)


def install(app: FastAPI) -> None:
    """Map domain errors, validation errors and stray exceptions to :class:`ErrorBody` responses."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
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
        404: "No such batch, entry or tracked problem.",
        409: "The resource is not in a state that allows this.",
        413: "Request body over the configured limit.",
        415: "Unsupported Content-Type.",
        422: "Invalid request; rows, fields or data-file problems are named.",
        429: "Rate limit for this key; see Retry-After.",
        503: "Busy, not ready, or the audit log cannot be written; see Retry-After.",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}
