"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.dependencies import ServicesDep
from api.models import Check, Health, Ready
from services.factory import Services
from tools.store import KnowledgeStore

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "A check failed; see checks."}},
    summary="The job store and knowledge store answer and the embedder is loaded",
)
def readyz(services: ServicesDep, response: Response) -> Ready:
    checks: dict[str, Check] = {}
    try:
        services.jobs.ping()
        checks["job_store"] = Check(ok=True, detail=services.jobs.db.dialect)
    except Exception as exc:
        checks["job_store"] = Check(ok=False, detail=f"unreachable ({type(exc).__name__})")
    try:
        deps = services.holder.get()
    except Exception as exc:
        checks["knowledge_store"] = Check(ok=False, detail=f"not loaded ({type(exc).__name__})")
    else:
        # No key is needed here, so the detail says which kind of store, never its address.
        where = "chroma server" if deps.settings.chroma_url else "on disk"
        checks["knowledge_store"] = _store_check(deps.store, where)
        checks["embedder"] = Check(
            ok=services.embedder_ready, detail=deps.embedder.name if services.embedder_ready else "not loaded"
        )
    alive = services.runner.alive()
    checks["workers"] = _workers_check(services, alive)
    ready = all(c.ok for c in checks.values()) and "embedder" in checks
    if not ready:
        response.status_code = 503
    return Ready(status="ready" if ready else "not_ready", checks=checks)


def _store_check(store: KnowledgeStore, where: str) -> Check:
    """The store answers (a Chroma server's heartbeat) and every collection of this data version is built."""
    try:
        store.ping()
        counts = store.counts()
    except Exception as exc:
        return Check(ok=False, detail=f"{where}: unreachable ({type(exc).__name__})")
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        return Check(ok=False, detail=f"{where}: not built: {', '.join(empty)}")
    return Check(ok=True, detail=f"{where}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def _workers_check(services: Services, alive: int) -> Check:
    """In-process workers, or (``voc serve --no-workers``) the heartbeats of ``voc worker`` processes."""
    if services.api.run_batches:
        return Check(ok=alive > 0, detail=f"{alive} of {services.runner.workers} running")
    try:
        live = [w for w in services.jobs.workers(within=services.api.lease_seconds) if w["alive"]]
    except Exception as exc:
        return Check(ok=False, detail=f"registry unreachable ({type(exc).__name__})")
    slots = sum(w["slots"] for w in live)
    return Check(ok=bool(live), detail=f"{len(live)} voc worker process(es) alive, {slots} slot(s)")
