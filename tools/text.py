"""Text normalisation shared by every stage: NFKC, whitespace, control characters."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\ufeff]")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def normalize(text: str) -> str:
    """NFKC-normalise (full-width digits and punctuation become ASCII), drop control
    characters and collapse runs of whitespace, keeping single line breaks."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


def fold(text: str) -> str:
    """Lower-case form used for matching cue phrases and keywords."""
    return text.lower()


def snippet(text: str, start: int, end: int, width: int = 12) -> str:
    """The matched span with a little context on each side, for evidence display."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    return f"{prefix}{text[left:right]}{suffix}"
