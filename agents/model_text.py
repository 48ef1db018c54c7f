"""Text a model wrote, made safe to show in a result or to quote in an engine note."""

from __future__ import annotations

import re

from tools.pii import mask_text


def clean(text: str, limit: int) -> str:
    """Model text made safe to show: one line, no markup, personal data masked, bounded."""
    text = re.sub(r"[<>\r\n\t]+", " ", text)
    text = mask_text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def for_note(value: object, limit: int = 30) -> str:
    """A model-supplied value fit to quote in an engine note: masked, one line, short."""
    text = mask_text(" ".join(str(value).split()))
    return text if len(text) <= limit else text[:limit] + "…"
