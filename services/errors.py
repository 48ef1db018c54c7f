"""Domain errors and the one description of them (code, status, message, rows, fields) each door renders."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tools.pii import mask_text
from tools.schema import RowError


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


class ServiceError(Exception):
    """An error a caller can act on. ``status`` is its HTTP status; ``headers`` are what an HTTP answer adds
    (Retry-After, WWW-Authenticate).

    An error names rows, fields and reasons; it never echoes submitted text, which may hold personal data.
    Field errors lose pydantic's ``input`` and ``ctx`` for the same reason.
    """

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

    def detail(self) -> ErrorDetail:
        return ErrorDetail(
            code=self.code,
            message=self.message,
            rows=self.rows,
            rows_total=self.rows_total,
            problems=self.problems,
            fields=self.fields,
        )

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.detail())


class _RetryLater(ServiceError):
    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class NotFinished(Conflict):
    code = "not_finished"


class Unprocessable(ServiceError):
    status, code = 422, "invalid_request"


class RowsOverLimit(Unprocessable):
    code = "rows_over_limit"


class NoValidRows(Unprocessable):
    code = "no_valid_rows"


class IdempotencyConflict(Unprocessable):
    code = "idempotency_key_reused"


class InvalidDataFile(Unprocessable):
    code = "invalid_data_file"


class RateLimited(_RetryLater):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests for this key; retry after {retry_after} s", retry_after)


class Busy(_RetryLater):
    status, code = 503, "busy"


class AuditUnavailable(_RetryLater):
    status, code = 503, "audit_unavailable"


def _loc(parts: tuple[Any, ...]) -> str:
    # Dict keys in a location were submitted too; mask them like any other submitted text.
    return ".".join(str(p) if isinstance(p, int) else mask_text(str(p)) for p in parts)


def field_errors(errors: list[Any], prefix: tuple[Any, ...] = ()) -> list[FieldError]:
    """Pydantic errors without ``input`` or ``ctx``: location and message only."""
    return [FieldError(loc=_loc(prefix + tuple(e.get("loc", ()))), msg=str(e.get("msg", ""))) for e in errors]
