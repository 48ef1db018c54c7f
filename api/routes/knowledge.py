"""``/v1/knowledge``: knowledge entries, cases, the service matrix and the taxonomy.

Reading needs the ``read`` scope, changing needs ``admin``. Changes are validated with the
same loaders as at start-up and kept under ``VOC_HOME/data/``; a refused change leaves the
file in force untouched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.dependencies import Admin, KnowledgeDep, Reader, ServicesDep
from api.errors import UnsupportedMediaType, responses
from api.models import CasesOut, EntriesOut
from services.knowledge import CASES, ENTRIES
from services.models import DataFileChanged, KnowledgeOverview
from services.security import actor_of
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


@router.get(
    "/service-matrix",
    response_model=ServiceMatrix,
    responses={**_yaml_or("service matrix"), **READ},
    summary="The service matrix in force",
)
def get_matrix(who: Reader, services: ServicesDep, format: Format = "json") -> Any:
    if format == "yaml":
        return Response(services.knowledge.raw("service_matrix"), media_type="application/yaml")
    return services.holder.get().matrix


@router.put(
    "/service-matrix",
    response_model=DataFileChanged,
    responses=responses(401, 403, 409, 413, 415, 422, 429),
    openapi_extra=_file_body("ServiceMatrix"),
    summary="Replace the service matrix (validated; a bad file changes nothing)",
)
async def put_matrix(request: Request, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return await run_in_threadpool(knowledge.replace, "service_matrix", await _file(request), actor_of(who))


@router.get(
    "/taxonomy",
    response_model=Taxonomy,
    responses={**_yaml_or("taxonomy"), **READ},
    summary="The 人机物法环 taxonomy in force",
)
def get_taxonomy(who: Reader, services: ServicesDep, format: Format = "json") -> Any:
    if format == "yaml":
        return Response(services.knowledge.raw("taxonomy"), media_type="application/yaml")
    return services.holder.get().taxonomy


@router.put(
    "/taxonomy",
    response_model=DataFileChanged,
    responses=responses(401, 403, 409, 413, 415, 422, 429),
    openapi_extra=_file_body("Taxonomy"),
    summary="Replace the taxonomy (validated against the service matrix too; a bad file changes nothing)",
)
async def put_taxonomy(request: Request, who: Admin, knowledge: KnowledgeDep) -> DataFileChanged:
    return await run_in_threadpool(knowledge.replace, "taxonomy", await _file(request), actor_of(who))


async def _file(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (*YAML_TYPES, "application/json"):
        raise UnsupportedMediaType("send the file as application/yaml or application/json")
    return await request.body()
