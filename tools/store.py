"""The Chroma knowledge store: knowledge entries, cases, taxonomy exemplars, service matrix.

Chroma is an index, not the source of truth: every collection is built from the files in
``data/`` with deterministic ids and upserts, and rebuilt when those files or the embedder
change (a digest of both is kept in the collection's metadata). We always pass our own
vectors, so Chroma's default embedding function (which downloads a model) is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.embeddings import Embedder, Kind

COLLECTIONS = ("knowledge", "cases", "taxonomy", "service_matrix")


@dataclass(frozen=True)
class Doc:
    """One record to index."""

    id: str
    text: str
    metadata: dict[str, str | int | float | bool]


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is cosine similarity (1 is identical)."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Source:
    """The documents of one collection and how to embed them."""

    collection: str
    docs: Callable[[], list[Doc]]
    digest: str
    kind: Kind = "passage"


def make_client(path: Path | None = None, url: str | None = None) -> Any:
    """A Chroma client: an HTTP client when ``url`` is given, else on-disk at ``path``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        return chromadb.HttpClient(
            host=parsed.hostname or "localhost",
            port=parsed.port or 8000,
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    if path is None:
        raise ValueError("a Chroma path or URL is required")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


class KnowledgeStore:
    """Collections over the editable domain data, kept in step with it."""

    def __init__(self, client: Any, embedder: Embedder, sources: Sequence[Source]) -> None:
        self._client = client
        self._embedder = embedder
        self._sources = {s.collection: s for s in sources}
        self._collections: dict[str, Any] = {}

    def _collection(self, name: str) -> Any:
        if name not in self._collections:
            self._collections[name] = self._client.get_or_create_collection(
                name=f"voc_{name}",
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[name]

    def _wanted_digest(self, source: Source) -> str:
        return f"{source.digest}:{self._embedder.name}"

    def is_current(self, name: str) -> bool:
        meta = self._collection(name).metadata or {}
        return bool(meta.get("digest") == self._wanted_digest(self._sources[name]))

    def ensure_built(
        self, force: bool = False, progress: Callable[[str, int], None] | None = None
    ) -> dict[str, int]:
        """Build stale collections from their sources; return how many records each got."""
        built: dict[str, int] = {}
        for name, source in self._sources.items():
            if not force and self.is_current(name):
                continue
            docs = source.docs()
            col = self._collection(name)
            vectors = self._embedder.embed([d.text for d in docs], kind=source.kind)
            wanted = {d.id for d in docs}
            existing = set(col.get(include=[])["ids"])
            stale = sorted(existing - wanted)
            if stale:
                col.delete(ids=stale)
            for i in range(0, len(docs), 256):
                part = docs[i : i + 256]
                col.upsert(
                    ids=[d.id for d in part],
                    documents=[d.text for d in part],
                    metadatas=[d.metadata or {"_": ""} for d in part],
                    embeddings=vectors[i : i + 256],
                )
            col.modify(metadata={"digest": self._wanted_digest(source), "count": len(docs)})
            built[name] = len(docs)
            if progress:
                progress(name, len(docs))
        return built

    def counts(self) -> dict[str, int]:
        return {name: int(self._collection(name).count()) for name in self._sources}

    def search(
        self,
        collection: str,
        query: np.ndarray | str,
        k: int = 5,
        where: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """Nearest records to ``query`` (a vector or a text to embed as a query)."""
        if isinstance(query, str):
            query = self._embedder.embed([query], kind="query")[0]
        col = self._collection(collection)
        n = col.count()
        if n == 0:
            return []
        res = col.query(
            query_embeddings=[np.asarray(query, dtype=np.float32)],
            n_results=min(k, n),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for i, ident in enumerate(res["ids"][0]):
            hits.append(
                Hit(
                    id=ident,
                    score=round(1.0 - float(res["distances"][0][i]), 4),
                    text=res["documents"][0][i] or "",
                    metadata=dict(res["metadatas"][0][i] or {}),
                )
            )
        return hits

    def all_vectors(self, collection: str) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Every record's id, vector and metadata, ordered by id, for in-memory scoring."""
        res = self._collection(collection).get(include=["embeddings", "metadatas"])
        order = sorted(range(len(res["ids"])), key=lambda i: res["ids"][i])
        ids = [res["ids"][i] for i in order]
        if not ids:
            return [], np.zeros((0, self._embedder.dim), dtype=np.float32), []
        vecs = np.asarray([res["embeddings"][i] for i in order], dtype=np.float32)
        metas = [dict(res["metadatas"][i] or {}) for i in order]
        return ids, vecs, metas
