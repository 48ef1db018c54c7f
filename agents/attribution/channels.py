"""Channel lookups both attribution engines use: a submitted channel's canonical id, a complaint's channel."""

from __future__ import annotations

from agents.attribution.index import AttributionIndex
from tools.schema import Complaint


def canonical_channel(index: AttributionIndex, value: str) -> str | None:
    """Map a submitted channel (or an alias of one) to the matrix's channel id."""
    return index.channel_of.get(value.strip().lower())


def infer_channel(index: AttributionIndex, c: Complaint, folded: str) -> tuple[str | None, str]:
    """The channel a complaint came through and where that was read: its field, its text, or unknown."""
    if c.channel:
        return c.channel, "field"
    hits = index.channels_in_text.find(folded)
    if hits:
        first = min(hits, key=lambda k: hits[k][0].start)
        return first, "text"
    return None, "unknown"
