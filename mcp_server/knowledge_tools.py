"""The MCP knowledge tools: search the knowledge store, list the departments, read the taxonomy."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from mcp_server.models import Departments, KnowledgeHit, KnowledgeHits, TaxonomyView
from mcp_server.registry import READ_ONLY, Entry
from mcp_server.runtime import caller, in_thread, one


async def search_knowledge(
    ctx: Context,
    query: Annotated[str, Field(min_length=1, max_length=1000, description="What to look for, in words.")],
    collection: Annotated[
        Literal["knowledge", "cases", "taxonomy", "service_matrix"],
        Field(
            description="knowledge: policies, answers; cases: past remediations; taxonomy: "
            "label exemplars; service_matrix: departments.",
        ),
    ] = "knowledge",
    k: Annotated[int, Field(ge=1, le=20, description="How many results.")] = 5,
) -> KnowledgeHits:
    """Search the knowledge store by meaning, as the remediation agent does: policies, standard
    answers, fee rules, service standards, past complaint-reduction cases, label exemplars,
    department profiles. Quote an answer or precedent."""
    svc, _ = await caller(ctx, "read")

    def work() -> KnowledgeHits:
        deps = svc.holder.get()
        masked = one(deps, {"text": query}).text
        hits = deps.store.search(collection, masked, k=k)
        return KnowledgeHits(collection=collection, hits=[KnowledgeHit.of(h, collection) for h in hits])

    return await in_thread(work)


async def list_departments(ctx: Context) -> Departments:
    """The departments complaints are attributed to (service matrix): id, name, owner role, business
    lines, products, the root-cause labels each fixes wherever they occur, routing keywords. Use to
    pick a department_id."""
    svc, _ = await caller(ctx, "read")
    return Departments.of(svc.holder.get().matrix)


async def get_taxonomy(
    ctx: Context,
    dimension: Annotated[
        str | None, Field(max_length=8, description="Only this dimension, e.g. 机; all if omitted.")
    ] = None,
) -> TaxonomyView:
    """The 人机物法环 root-cause data dictionary: dimensions and their L2 labels (ids like 机-面客系统) with
    definition, when to use and not to use each, default grade, L3 sub-labels. Use to explain a
    traced label or choose a root_cause."""
    svc, _ = await caller(ctx, "read")
    t = svc.holder.get().taxonomy
    if dimension is not None and dimension not in t.dimension_ids:
        raise ToolError(f"unknown dimension; use one of {', '.join(t.dimension_ids)}")
    return TaxonomyView.of(t, dimension)


TOOLS: list[Entry] = [
    (search_knowledge, "Search the knowledge base", READ_ONLY),
    (list_departments, "List departments", READ_ONLY),
    (get_taxonomy, "Root-cause taxonomy", READ_ONLY),
]
