"""``/v1/audit``: who submitted, read or deleted which batch or changed which data (admin; reads recorded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.dependencies import Admin, ServicesDep
from api.errors import responses
from api.models import AuditPage
from services.errors import AuditUnavailable, Unprocessable
from services.security import actor_of
from tools.audit import AuditError, AuditQuery, Door

router = APIRouter(prefix="/v1", tags=["audit"])


def since_of(since: datetime | None, days: int | None) -> datetime | None:
    """``since`` (a time; UTC if it names no zone) or ``days`` back from now, not both."""
    if since is not None and days is not None:
        raise Unprocessable("give since or days, not both")
    if days is not None:
        return datetime.now(UTC) - timedelta(days=days)
    if since is None:
        return None
    try:
        return (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise Unprocessable("since is out of range") from None


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=responses(401, 403, 422, 429, 503),
    summary="The audit trail, newest first (admin)",
)
async def read_audit(
    who: Admin,
    services: ServicesDep,
    since: Annotated[
        datetime | None, Query(description="Only events at or after this time (ISO 8601; UTC if no zone).")
    ] = None,
    days: Annotated[int | None, Query(ge=0, le=36500, description="Only the last N days.")] = None,
    actor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="e.g. key:crm, local, mcp:stdio, user:alice."),
    ] = None,
    action: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="e.g. batch.read; without a dot, a whole family (batch: batch.submit, ...).",
        ),
    ] = None,
    door: Annotated[Door | None, Query(description="cli, http, mcp or batch.")] = None,
    target: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="A batch id, entry or case id, or file name."),
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only events older than this event id (next_before).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Ids, actor names, actions, counts and times only: the trail never holds complaint text.
    This read is recorded too (action audit.read)."""
    q = AuditQuery(
        since=since_of(since, days),
        actor=actor,
        action=action,
        door=door,
        target=target,
        before=before,
        limit=limit,
    )
    try:
        items = await run_in_threadpool(services.audit.read, q, actor_of(who))
    except AuditError:
        raise AuditUnavailable("the audit log cannot be read or written; retry") from None
    nxt = items[-1].id if len(items) == limit else None
    return AuditPage(limit=limit, next_before=nxt, items=items)
