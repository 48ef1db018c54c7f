"""What one masking pass found: counts by kind, and echoes of context-found values masked where they recur."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class MaskReport:
    """What a masking pass replaced, by kind (counts only; never the values)."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Found:
    """One masking pass: the report, plus the values found only through their context (a name after
    "户名", a code after "验证码") so later bare mentions in the same text are masked too. The raw
    values live only for the pass and never reach the report."""

    def __init__(self) -> None:
        self.report = MaskReport()
        self.echoes: dict[str, tuple[str, str]] = {}

    def add(self, kind: str, masked: str, raw: str = "") -> str:
        """Count one ``kind`` value and return its mask; ``raw`` is remembered for echoes."""
        self.report.counts[kind] += 1
        if len(raw) >= 2:
            self.echoes[raw] = (kind, masked)
        return masked

    def mask_echoes(self, text: str) -> str:
        """ "客户张伟来电……张伟称": repeat the masks of context-found values wherever they recur.
        A code or name written in letters and digits only counts as itself, not inside a longer token
        or another value's mask (a PIN "8000" stays out of "138****8000")."""
        for raw in sorted(self.echoes, key=len, reverse=True):
            if raw not in text:
                continue
            kind, masked = self.echoes[raw]
            pattern = re.escape(raw)
            if raw[0].isascii():
                pattern = rf"(?<![0-9A-Za-z*]){pattern}(?![0-9A-Za-z*])"
            text, n = re.subn(pattern, masked.replace("\\", "\\\\"), text)
            self.report.counts[kind] += n
        return text
