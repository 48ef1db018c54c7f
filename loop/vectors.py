"""Embed once, ever: text vectors cached in the warehouse by embedder and text hash."""

from __future__ import annotations

import numpy as np

from loop.warehouse import Warehouse, text_hash
from tools.embeddings import Embedder


def embed_cached(
    embedder: Embedder, warehouse: Warehouse | None, texts: list[str], *, keep: bool
) -> tuple[np.ndarray, list[str], int]:
    """Vectors for ``texts`` (the text the agents read), their cache keys and how many were cached.

    Only texts the cache lacks reach the embedder; with ``keep`` the new vectors are cached.
    Without a warehouse every text is embedded."""
    keys = [text_hash(t) for t in texts]
    cached = warehouse.cached_vectors(embedder.name, keys) if warehouse is not None else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    fresh: dict[str, np.ndarray] = {}
    if missing:
        computed = embedder.embed([texts[i] for i in missing], kind="query")
        fresh = {keys[i]: np.asarray(v, dtype=np.float32) for i, v in zip(missing, computed, strict=True)}
        if keep and warehouse is not None:
            warehouse.cache_vectors(embedder.name, fresh)
    if not texts:
        return np.zeros((0, embedder.dim), np.float32), keys, 0
    vectors = np.vstack([cached[k] if k in cached else fresh[k] for k in keys]).astype(np.float32)
    return vectors, keys, len(texts) - len(missing)
