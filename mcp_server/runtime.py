"""What every MCP tool call shares: its services, caller, audit actor, errors, masked input, progress."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from graph.run import prepare_batch
from services.batches import Submission, parse_json
from services.config import Principal, Scope
from services.errors import Busy, ServiceError
from services.factory import Services
from services.models import ComplaintIn
from services.security import LOCAL as LOCAL_NAME
from services.security import actor_of
from tools.audit import Actor
from tools.deps import Deps
from tools.ingest import RawRow
from tools.schema import Complaint

T = TypeVar("T")

LOCAL = Principal(LOCAL_NAME, frozenset({"read", "write", "admin"}), 0)  # the stdio user
# Set on the ASGI scope by mcp_server.http once the caller's key is checked.
PRINCIPAL_KEY = "voc.principal"
READY_WAIT_SECONDS = 45.0
STAGE_TEXT = {
    "attribute_and_trace": "attribute and trace",
    "analyze": "analyse: cluster, score, rank",
    "remediate": "remediation proposals",
    "report": "report",
}

Complaints = Annotated[list[ComplaintIn], Field(min_length=1)]


@dataclass
class Runtime:
    """What the lifespan owns and every handler reads: the services, built in the background so a
    client's handshake is answered at once (handlers wait for :meth:`ready`)."""

    services: Services | None = None
    error: str | None = None
    started: threading.Event = field(default_factory=threading.Event)

    async def ready(self) -> Services:
        if not self.started.is_set():
            # Bounded: many clients give up on a call after a minute, and a first start in an empty
            # VOC_HOME (embedding the knowledge store) can take longer than that on a busy machine.
            done = await anyio.to_thread.run_sync(self.started.wait, READY_WAIT_SECONDS)
            if not done:
                raise ToolError("the server is still loading its knowledge store; retry in a minute")
        if self.error or self.services is None:
            raise ToolError(f"the server could not start: {self.error}")
        return self.services


# -- helpers -----------------------------------------------------------------------------------


def runtime_of(ctx: Context) -> Runtime:
    return cast(Runtime, ctx.request_context.lifespan_context)


async def caller(ctx: Context, scope: Scope) -> tuple[Services, Principal]:
    """The ready services and who is calling. stdio and in-process callers are the local user;
    HTTP callers are the principal whose key mcp_server.http checked, and need ``scope``."""
    svc = await runtime_of(ctx).ready()
    request = ctx.request_context.request
    if request is None:
        return svc, LOCAL
    who = getattr(request, "scope", {}).get(PRINCIPAL_KEY)
    if not isinstance(who, Principal):
        raise ToolError("not authenticated; send an API key as 'Authorization: Bearer KEY'")
    try:
        return svc, svc.auth.authorize(who, scope)
    except ServiceError as exc:
        raise tool_error(exc) from None


def actor(ctx: Context, who: Principal) -> Actor:
    """How the audit trail names this caller: ``mcp:stdio`` for the local user over stdio (or in
    process), else the HTTP caller's key (or ``local`` in local-only mode), through the mcp door."""
    if ctx.request_context.request is None:
        return Actor("mcp:stdio", "mcp")
    return actor_of(who, "mcp")


def tool_error(exc: ServiceError) -> ToolError:
    """A domain error as the tool's error text: rows, fields and reasons, never submitted text."""
    if isinstance(exc, Busy):
        return ToolError("every analysis slot is busy; retry in a moment, or use submit_batch")
    error = exc.detail()
    lines = [error.message]
    rows = error.rows or []
    lines += [f"row {r.row}{f' (id {r.id})' if r.id else ''} {r.field}: {r.reason}" for r in rows[:20]]
    if (error.rows_total or len(rows)) > 20:
        lines.append(f"... and {(error.rows_total or len(rows)) - 20} more rows")
    lines += [f"{f.loc}: {f.msg}" for f in error.fields or []]
    return ToolError("\n".join(lines))


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking core work off the event loop; domain errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ServiceError as exc:
        raise tool_error(exc) from None


def submission(complaints: list[ComplaintIn], source: str | None, track: bool = True) -> Submission:
    """The same parsed submission the HTTP service builds from a JSON body."""
    records = []
    for i, c in enumerate(complaints, start=1):
        rec = c.model_dump(exclude_none=True)
        rec["id"] = str(c.id) if c.id is not None else f"c{i}"
        records.append(rec)
    doc: dict[str, Any] = {"complaints": records}
    options: dict[str, Any] = {}
    if source is not None:
        options["source"] = source
    if not track:  # the default stays out of the payload, so earlier idempotent batches still match
        options["track"] = False
    if options:
        doc["options"] = options
    try:
        return parse_json(json.dumps(doc, ensure_ascii=False).encode())
    except ServiceError as exc:
        raise tool_error(exc) from None


def one(deps: Deps, fields: dict[str, Any]) -> Complaint:
    """Validate and mask a single text (a complaint, a problem description, a query)."""
    prepared = prepare_batch([RawRow(1, {"id": "input", **fields})], deps)
    if not prepared.complaints:
        err = prepared.errors[0]
        raise ToolError(f"{err.field}: {err.reason}")
    return prepared.complaints[0]


class Relay:
    """Relays the core's progress callbacks, made on a worker thread, as MCP progress
    notifications: complaints traced, then one step each for analysis, proposals and report."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.n = 0
        self.sent = -1.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "attribute_and_trace":
            self.n = total
            value = float(done)
        elif stage in STAGE_TEXT:
            value = float(self.n + 1 + list(STAGE_TEXT).index(stage))
        else:
            return
        if value <= self.sent:  # progress must only go up
            return
        self.sent = value
        message = STAGE_TEXT[stage] + (f": {done}/{total}" if stage == "attribute_and_trace" else "")
        anyio.from_thread.run(self.ctx.report_progress, value, float(self.n + 4), message)
