"""``/v1/knowledge``: knowledge entries, cases, the service matrix and the taxonomy (admin to change)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.dependencies import Admin, KnowledgeDep, Reader, ServicesDep
from api.errors import UnsupportedMediaType, responses
from api.models import CasesOut, EntriesOut
from services.knowledge import CASES, ENTRIES
from services.models import DataFileChanged, KnowledgeOverview
from services.security import actor_of
from tools.deps import Deps
from tools.knowledge import Case, KnowledgeEntry
from tools.matrix import ServiceMatrix
from tools.taxonomy import Taxonomy

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge"])

READ = responses(401, 403, 422, 429)
WRITE = responses(401, 403, 404, 409, 413, 422, 429)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
EntryId = Annotated[str, Path(min_length=1, max_length=200)]
Format = Annotated[Literal["json", "yaml"], Query(description="json (parsed) or yaml (the file as it is)")]


def _file_body(model: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": "The whole file, as YAML (as in data/) or JSON.",
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}},
            },
        }
    }


def _yaml_or(model_name: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"The {model_name} in force.",
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    }


@router.get(
    "", response_model=KnowledgeOverview, responses=READ, summary="Data files in force and store counts"
)
def overview(who: Reader, knowledge: KnowledgeDep) -> KnowledgeOverview:
    return knowledge.overview()


@router.get("/entries", response_model=EntriesOut, responses=READ, summary="List knowledge entries")
def list_entries(who: Reader, services: ServicesDep) -> EntriesOut:
    doc = services.holder.get().knowledge
    return EntriesOut(version=doc.version, entries=doc.entries)


@router.post(
    "/entries",
    status_code=201,
    response_model=DataFileChanged,
    responses=WRITE,
    summary="Add a knowledge entry",
)
def add_entry(entry: KnowledgeEntry, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return knowledge.add(ENTRIES, entry, actor_of(who))


@router.delete(
    "/entries/{entry_id}", response_model=DataFileChanged, responses=WRITE, summary="Delete a knowledge entry"
)
def delete_entry(entry_id: EntryId, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return knowledge.delete(ENTRIES, entry_id, actor_of(who))


@router.get("/cases", response_model=CasesOut, responses=READ, summary="List historical remediation cases")
def list_cases(who: Reader, services: ServicesDep) -> CasesOut:
    doc = services.holder.get().cases
    return CasesOut(version=doc.version, cases=doc.cases)


@router.post("/cases", status_code=201, response_model=DataFileChanged, responses=WRITE, summary="Add a case")
def add_case(case: Case, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return knowledge.add(CASES, case, actor_of(who))


@router.delete("/cases/{case_id}", response_model=DataFileChanged, responses=WRITE, summary="Delete a case")
def delete_case(case_id: EntryId, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return knowledge.delete(CASES, case_id, actor_of(who))


def _data_file_routes(
    name: str,
    model: type[BaseModel],
    current: Callable[[Deps], BaseModel],
    what: str,
    get_summary: str,
    put_summary: str,
) -> None:
    """GET (parsed, or the YAML file as it is) and PUT of a whole data file."""
    path, short = "/" + name.replace("_", "-"), name.rsplit("_", 1)[-1]

    def get_file(who: Reader, services: ServicesDep, format: Format = "json") -> Any:
        if format == "yaml":
            return Response(services.knowledge.raw(name), media_type="application/yaml")
        return current(services.holder.get())

    async def put_file(request: Request, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
        return await run_in_threadpool(knowledge.replace, name, await _file(request), actor_of(who))

    router.get(
        path,
        name=f"get_{short}",
        response_model=model,
        responses={**_yaml_or(what), **READ},
        summary=get_summary,
    )(get_file)
    router.put(
        path,
        name=f"put_{short}",
        response_model=DataFileChanged,
        responses=responses(401, 403, 409, 413, 415, 422, 429),
        openapi_extra=_file_body(model.__name__),
        summary=put_summary,
    )(put_file)


_data_file_routes(
    "service_matrix",
    ServiceMatrix,
    lambda deps: deps.matrix,
    "service matrix",
    "The service matrix in force",
    "Replace the service matrix (validated; a bad file changes nothing)",
)
_data_file_routes(
    "taxonomy",
    Taxonomy,
    lambda deps: deps.taxonomy,
    "taxonomy",
    "The 人机物法环 taxonomy in force",
    "Replace the taxonomy (validated against the service matrix too; a bad file changes nothing)",
)


async def _file(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (*YAML_TYPES, "application/json"):
        raise UnsupportedMediaType("send the file as application/yaml or application/json")
    return await request.body()
