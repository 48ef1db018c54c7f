"""The dependency container handed to every agent and node, and the data files it is built from."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.datafile import file_digest
from tools.datatable import data_files
from tools.embeddings import Embedder
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
from tools.sentiment_head import SentimentHead
from tools.settings import Settings
from tools.store import Doc, KnowledgeStore, Source
from tools.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from tools.calibration import Calibration
    from tools.llm import LLM


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
    # The LLM client when the llm engine is on; None means every agent runs on rules.
    llm: LLM | None = None
    # The trained sentiment head for this embedder; None means the lexicon scores sentiment alone.
    sentiment_head: SentimentHead | None = None
    # Maps raw rules-engine confidence to calibrated; None shows the raw scores.
    calibration: Calibration | None = None
    # Set by a ``voc worker`` driving a batch: chunk tasks are queued for every worker to compute
    # (graph/chunk_queue.py) instead of being computed by the driver. None: computed here.
    chunk_queue: Any = None
    # The runner holding this batch's lease: the Postgres checkpointer writes only while it does.
    batch_owner: str | None = None


def knowledge_sources(settings: Settings, deps_data: dict[str, Any]) -> list[Source]:
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
        Source("taxonomy", exemplar_docs, file_digest(*data_files(settings.path("taxonomy"))), kind="query"),
        Source("service_matrix", matrix_docs, file_digest(*data_files(settings.path("service_matrix")))),
    ]


def package_version() -> str:
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
