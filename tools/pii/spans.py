"""Shared by the masks: runs of stars, span replacement, and where an English cue's word starts."""

from __future__ import annotations

from collections.abc import Sequence


def stars(n: int) -> str:
    """The hidden part of a mask: ``n`` stars, never fewer than one."""
    return "*" * max(n, 1)


def replace_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end, replacement) applied; spans are sorted and do not overlap."""
    if not spans:
        return text
    pieces, last = [], 0
    for start, end, replacement in spans:
        pieces += [text[last:start], replacement]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def word_start(lowered: str, i: int) -> bool:
    """Whether an English cue found at ``i`` of the lower-cased text starts a word."""
    return i == 0 or not ("a" <= lowered[i - 1] <= "z")
