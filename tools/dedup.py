"""Near-duplicate detection: exact matches after normalisation, then an exact similarity join over
char 3-grams (prefix filtering: no pair at or above the threshold is ever missed)."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np

_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def _key(text: str) -> str:
    return _STRIP.sub("", text.lower())


def _grams(key: str) -> np.ndarray:
    """The distinct char 3-grams of a normalised text, each as one integer: three code points of
    21 bits side by side, so equal grams are equal numbers."""
    cp = np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return np.unique((cp[:-2] << np.uint64(42)) | (cp[1:-1] << np.uint64(21)) | cp[2:])


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    both = len(np.intersect1d(a, b, assume_unique=True))
    return both / (len(a) + len(b) - both)


def find_duplicates(items: list[tuple[str, str]], min_similarity: float = 0.8) -> dict[str, str]:
    """Map each duplicate id to the id of the first earlier item it duplicates.

    ``items`` are (id, text) pairs in submission order. Two texts are near-duplicates when the
    Jaccard similarity of their char 3-grams (after dropping case, spaces and punctuation) is
    at least ``min_similarity``. Texts shorter than 12 characters are only matched exactly:
    short texts collide too easily.

    Candidates come from prefix filtering: with every text's grams ordered rarest first (by
    their frequency in this batch), two texts with Jaccard similarity >= t share at least one
    gram among the first ``n - ceil(t * n) + 1`` of either. Only those first grams are indexed,
    mostly rare ones, so a batch of complaints written to one template stays cheap, and each
    candidate is then checked exactly.
    """
    dup_of: dict[str, str] = {}
    first_by_key: dict[str, str] = {}
    fuzzy: list[tuple[str, np.ndarray]] = []  # (id, grams) of first copies long enough
    for ident, text in items:
        key = _key(text)
        if key in first_by_key:
            dup_of[ident] = first_by_key[key]
            continue
        first_by_key[key] = ident
        if len(key) >= 12:
            fuzzy.append((ident, _grams(key)))
    if not fuzzy:
        return dup_of
    # Each gram's rank: rarest first, ties by value, the same order for every text.
    distinct, inverse, counts = np.unique(
        np.concatenate([g for _, g in fuzzy]), return_inverse=True, return_counts=True
    )
    rank = np.empty(len(distinct), np.int64)
    rank[np.lexsort((distinct, counts))] = np.arange(len(distinct))
    ranks = np.split(rank[inverse], np.cumsum([len(g) for _, g in fuzzy[:-1]]))
    index: dict[int, list[int]] = defaultdict(list)
    for n, (ident, grams) in enumerate(fuzzy):
        size = len(grams)
        prefix = np.sort(ranks[n])[: size - math.ceil(min_similarity * size - 1e-9) + 1].tolist()
        candidates = {m for token in prefix for m in index.get(token, ())}
        # Only texts of these sizes can reach the threshold; earlier texts are checked first, so
        # the earliest original it duplicates is the one named.
        smallest, largest = min_similarity * size - 1e-9, size / min_similarity + 1e-9
        for m in sorted(candidates):
            other = fuzzy[m][1]
            if smallest <= len(other) <= largest and _jaccard(grams, other) >= min_similarity:
                dup_of[ident] = fuzzy[m][0]
                break
        else:
            for token in prefix:
                index[token].append(n)
    return dup_of
