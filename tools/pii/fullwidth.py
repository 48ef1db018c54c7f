"""Full-width digits and letters, and the punctuation touching digits, folded to ASCII before masking."""

from __future__ import annotations

import re

_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
# Digits, letters, "＋" and "＠" are folded wherever they are; dashes, brackets, colons and the
# ideographic space only next to a digit, so "（0755）1234－5678" reads as a number while the
# complaint's own punctuation ("，", "（测试）") is left as written.
_FOLD_ALWAYS = {
    c: c - 0xFEE0 for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))
}
_FOLD_ALWAYS |= {0xFF0B: 0x2B, 0xFF20: 0x40}
_FOLD_NEAR_DIGIT = re.compile(r"(?<=[0-9])[－（）：\u3000]|[－（）：\u3000](?=[0-9])|（(?=[+＋]?[0-9])")
_FOLD_PUNCT = {0xFF0D: 0x2D, 0xFF08: 0x28, 0xFF09: 0x29, 0xFF1A: 0x3A, 0x3000: 0x20}


def fold_full_width(text: str) -> str:
    """Full-width digits and letters to ASCII, so un-normalised callers get the same masking.
    A no-op on text that went through ``tools.text.normalize`` (NFKC already did it)."""
    if not _FULL_WIDTH.search(text):
        return text
    text = text.translate(_FOLD_ALWAYS)
    return _FOLD_NEAR_DIGIT.sub(lambda m: m.group(0).translate(_FOLD_PUNCT), text)
