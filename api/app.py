"""The FastAPI application: ``create_app()`` is the factory ``voc serve`` hands to uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.formparsers import MultiPartParser

from api import errors
from api.limits import BodyLimitMiddleware
from api.models import BatchIn, ProgressEvent
from api.routes import (
    actions,
    analyze,
    audit,
    batches,
    feedback,
    health,
    knowledge,
    review,
    tracking,
    webhooks,
)
from mcp_server.http import mount as mount_mcp
from services.config import ApiSettings, package_version
from services.factory import build_services
from services.security import LOCAL_ONLY_WARNING, Auth
from tools.deps import Deps
from tools.matrix import ServiceMatrix
from tools.settings import Settings
from tools.taxonomy import Taxonomy
from web.routes import mount as mount_dashboard

log = logging.getLogger("voc.api")

DESCRIPTION = """
VOC Tracer (客户声音溯源) over HTTP: submit complaint batches, follow them, collect attribution,
root causes, common problems, priorities and remediation proposals; manage the knowledge data.
Follow problems across batches and periods (stable TP ids, statuses, early-warning alerts) under
`/v1/problems`, `/v1/alerts` and `/v1/periods`; turn them into owned actions whose effect is verified
after every batch under `/v1/actions`. Confirm or correct a complaint's label, department, grade or
problem under `/v1/feedback`; later batches learn from it. Have events (new urgent problems, alerts,
actions, finished batches) POSTed to your systems, signed as Standard Webhooks says, through `/v1/webhooks`.

Authenticate with `Authorization: Bearer KEY` or `X-API-Key: KEY` (scopes: read, write, admin).
Error bodies name rows, fields and reasons and never repeat submitted text. Submissions, reads
and deletions of batches and changes to knowledge data are recorded in an audit trail of ids,
names and counts (`GET /v1/audit`, admin scope).
"""
# Schemas referenced from hand-written request bodies and event streams.
EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (BatchIn, ProgressEvent, ServiceMatrix, Taxonomy)


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None, deps: Deps | None = None
) -> FastAPI:
    """Build the app. With no arguments everything comes from ``VOC_*`` variables; tests pass
    prebuilt ``deps`` so the knowledge store is not rebuilt for every app."""
    settings = settings or (deps.settings if deps is not None else Settings())
    api_settings = api_settings or ApiSettings()
    auth = Auth(api_settings)  # a bad key configuration fails here, before serving anything

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if auth.local_only:
            log.warning(LOCAL_ONLY_WARNING)
        services = app.state.services = build_services(settings, api_settings, deps=deps, auth=auth)
        services.start()
        try:
            services.warm_up()
            yield
        finally:
            services.stop()

    app = FastAPI(
        title="VOC Tracer API",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    # Keep uploads in memory up to the body limit: a spooled temp file would put raw,
    # unmasked complaint text on disk.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, api_settings.max_body_bytes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api_settings.max_body_bytes)
    errors.install(app)
    for module in (health, batches, analyze, knowledge, tracking, review, actions, feedback, webhooks, audit):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    # The MCP server for assistants at /mcp (streamable HTTP), on this app's services and keys.
    mount_mcp(app, auth, api_settings, lambda: app.state.services)
    # The dashboard for people at /, on the same services and keys (a session cookie per key).
    mount_dashboard(app, settings, lambda: app.state.services)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in EXTRA_SCHEMAS:
        doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in doc.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, doc)
    app.openapi_schema = schema
    return schema
