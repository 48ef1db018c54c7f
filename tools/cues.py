"""Multi-phrase matching with positions and a denial check, for cue phrases and keywords."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Explicit denials in front of a cue ("不是态度问题", "没有闪退") cancel it. Bare 不/没 do
# not: many cues are problems stated with them ("不到账"), and they are cues in their own right.
_DENIALS = ("不是", "并非", "没有", "并不", "并没", "并未", "不存在", "not ", "no ")


@dataclass(frozen=True)
class Match:
    key: str
    cue: str
    start: int
    end: int


def _pattern(cues: Iterable[str]) -> re.Pattern[str] | None:
    uniq = sorted({c.lower() for c in cues if c and c.strip()}, key=len, reverse=True)
    if not uniq:
        return None
    parts = []
    for c in uniq:
        esc = re.escape(c)
        # ASCII words match whole words only ("app" must not fire inside "happy").
        if c.isascii() and c[:1].isalnum():
            esc = rf"(?<![a-z0-9]){esc}(?![a-z0-9])"
        parts.append(esc)
    return re.compile("|".join(parts))


class CueIndex:
    """One compiled alternation per key (a label, a department, a grade rule, ...)."""

    def __init__(self, cues_by_key: Mapping[str, Iterable[str]], check_denial: bool = True) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for key, cues in cues_by_key.items():
            pat = _pattern(cues)
            if pat is not None:
                self._patterns.append((key, pat))
        self.check_denial = check_denial

    def find(self, folded: str) -> dict[str, list[Match]]:
        """All non-denied matches in ``folded`` (lower-cased text), grouped by key."""
        out: dict[str, list[Match]] = {}
        for key, pat in self._patterns:
            for m in pat.finditer(folded):
                if self.check_denial and denied(folded, m.start()):
                    continue
                out.setdefault(key, []).append(Match(key, m.group(0), m.start(), m.end()))
        return out

    def any(self, folded: str) -> bool:
        return bool(self.find(folded))


def denied(folded: str, start: int) -> bool:
    """Whether an explicit denial stands right before ``start``."""
    before = folded[max(0, start - 4) : start]
    return any(before.endswith(d) or d in before for d in _DENIALS)
