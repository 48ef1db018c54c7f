"""Near-duplicate detection: exact matches after normalisation, then MinHash LSH over char 3-grams."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import numpy as np

_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def _key(text: str) -> str:
    return _STRIP.sub("", text.lower())


class _Hasher:
    """64-bit hashes of shingles, cached because shingles repeat across a batch."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def __call__(self, gram: str) -> int:
        h = self._cache.get(gram)
        if h is None:
            h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
            self._cache[gram] = h
        return h


def _grams(key: str) -> set[str]:
    return {key[i : i + 3] for i in range(max(1, len(key) - 2))}


# MinHash LSH: 10 bands of 6 hashes. A pair with 3-gram Jaccard similarity 0.9 (one character
# changed in a 60-character text) becomes a candidate with probability > 0.999, one at 0.3
# (two complaints about the same topic) with < 0.01; candidates are then checked exactly.
_BANDS, _ROWS = 10, 6
_rng = np.random.default_rng(20261101)
_MUL = _rng.integers(1, 2**63, size=_BANDS * _ROWS, dtype=np.uint64) | np.uint64(1)
_ADD = _rng.integers(0, 2**63, size=_BANDS * _ROWS, dtype=np.uint64)


def _minhash(grams: set[str], hasher: _Hasher) -> np.ndarray:
    h = np.fromiter((hasher(g) for g in grams), dtype=np.uint64, count=len(grams))
    return (h[:, None] * _MUL[None, :] + _ADD[None, :]).min(axis=0)  # wraps mod 2**64


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def find_duplicates(items: list[tuple[str, str]], min_similarity: float = 0.8) -> dict[str, str]:
    """Map each duplicate id to the id of the first earlier item it duplicates.

    ``items`` are (id, text) pairs in submission order. Two texts are near-duplicates when the
    Jaccard similarity of their char 3-grams (after dropping case, spaces and punctuation) is
    at least ``min_similarity``. Texts shorter than 12 characters are only matched exactly:
    short texts collide too easily.
    """
    dup_of: dict[str, str] = {}
    first_by_key: dict[str, str] = {}
    hasher = _Hasher()
    bands: list[dict[bytes, list[tuple[int, str, str]]]] = [defaultdict(list) for _ in range(_BANDS)]
    for order, (ident, text) in enumerate(items):
        key = _key(text)
        if key in first_by_key:
            dup_of[ident] = first_by_key[key]
            continue
        first_by_key[key] = ident
        if len(key) < 12:
            continue
        grams = _grams(key)
        sig = _minhash(grams, hasher)
        parts = [sig[b * _ROWS : (b + 1) * _ROWS].tobytes() for b in range(_BANDS)]
        candidates = {(o, i, k) for b, part in enumerate(parts) for o, i, k in bands[b].get(part, ())}
        matches = [(o, i) for o, i, k in candidates if _jaccard(grams, _grams(k)) >= min_similarity]
        if matches:
            dup_of[ident] = min(matches)[1]  # the earliest original it duplicates
            continue
        for b, part in enumerate(parts):
            bands[b][part].append((order, ident, key))
    return dup_of
