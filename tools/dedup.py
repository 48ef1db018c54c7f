"""Near-duplicate detection: exact matches after normalisation, then SimHash over char 3-grams."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

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


def simhash(text: str, hasher: _Hasher | None = None) -> int:
    """64-bit SimHash of the text's char 3-grams."""
    hasher = hasher or _Hasher()
    key = _key(text)
    grams = {key[i : i + 3] for i in range(max(1, len(key) - 2))}
    counts = [0] * 64
    for g in grams:
        h = hasher(g)
        for bit in range(64):
            counts[bit] += 1 if (h >> bit) & 1 else -1
    return sum(1 << bit for bit in range(64) if counts[bit] > 0)


def find_duplicates(items: list[tuple[str, str]], max_distance: int = 3) -> dict[str, str]:
    """Map each duplicate id to the id of the first earlier item it duplicates.

    ``items`` are (id, text) pairs in submission order. Texts shorter than 12 characters
    are only matched exactly: short texts collide too easily.
    """
    dup_of: dict[str, str] = {}
    first_by_key: dict[str, str] = {}
    hasher = _Hasher()
    bands: list[dict[int, list[tuple[str, int]]]] = [defaultdict(list) for _ in range(4)]
    for ident, text in items:
        key = _key(text)
        if key in first_by_key:
            dup_of[ident] = first_by_key[key]
            continue
        first_by_key[key] = ident
        if len(key) < 12:
            continue
        h = simhash(text, hasher)
        found = None
        for b in range(4):
            part = (h >> (16 * b)) & 0xFFFF
            for other_id, other_h in bands[b][part]:
                if bin(h ^ other_h).count("1") <= max_distance:
                    found = other_id
                    break
            if found:
                break
        if found:
            dup_of[ident] = found
            continue
        for b in range(4):
            bands[b][(h >> (16 * b)) & 0xFFFF].append((ident, h))
    return dup_of
