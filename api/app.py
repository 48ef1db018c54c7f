"""The FastAPI application: ``create_app()`` is the factory ``voc serve`` hands to uvicorn."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.formparsers import MultiPartParser

from api import errors
from api.batches import BatchService
from api.config import ApiSettings
from api.jobs import JobStore
from api.knowledge import KnowledgeService
from api.limits import BodyLimitMiddleware
from api.models import BatchIn, ProgressEvent
from api.routes import analyze, audit, batches, health, knowledge
from api.runner import JobRunner
from api.security import Auth
from api.state import DepsHolder, Services
from tools.audit import AuditLog
from tools.clustering import cluster_vectors, tokenize
from tools.deps import Deps
from tools.matrix import ServiceMatrix
from tools.settings import Settings
from tools.taxonomy import Taxonomy

log = logging.getLogger("voc.api")

LOCAL_ONLY_WARNING = (
    "LOCAL-ONLY MODE: no API keys are configured (VOC_API_KEYS / VOC_API_KEYS_FILE), so every "
    "caller has every scope and only requests from this machine are served. Configure keys "
    "before exposing this service."
)
DESCRIPTION = """
VOC Tracer (客户声音溯源) over HTTP: submit complaint batches, follow them, collect attribution,
root causes, common problems, priorities and remediation proposals; manage the knowledge data.

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
        jobs = JobStore(settings.home / "voc.db")
        holder = DepsHolder(settings, jobs, deps)
        _warm_up(holder.start())
        runner = JobRunner(
            jobs, holder, api_settings.job_workers, api_settings.lease_seconds, api_settings.max_attempts
        )
        audit_log = AuditLog(settings.audit_db)
        app.state.services = Services(
            settings=settings,
            api=api_settings,
            jobs=jobs,
            holder=holder,
            runner=runner,
            batches=BatchService(settings, api_settings, jobs, holder, runner, audit_log),
            knowledge=KnowledgeService(holder, audit_log),
            auth=auth,
            audit=audit_log,
            embedder_ready=True,
        )
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(
        title="VOC Tracer API",
        version=_version(),
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
    for module in (health, batches, analyze, knowledge, audit):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    # --- MCP server for assistants at /mcp (streamable HTTP) -------------------------------
    # It shares this app's job store, workers, data and API keys; see mcp_server/http.py.
    from mcp_server.http import mount as mount_mcp

    mount_mcp(app, auth, api_settings, lambda: app.state.services)
    # -----------------------------------------------------------------------------------------
    return app


def _warm_up(deps: Deps) -> None:
    """Load the embedding model, jieba and scikit-learn now rather than in the first batch."""
    texts = ["手机银行升级后登录闪退", "信用卡被盗刷两笔"]
    cluster_vectors(deps.embedder.embed(texts, kind="query"), 0.5, 2)
    tokenize(texts[0])


def _version() -> str:
    try:
        return importlib.metadata.version("voc-tracer")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


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
