"""Travel permits and Taiwan IDs: 回乡证, 往来港澳通行证 and 台胞证 numbers, lettered or after their name."""

from __future__ import annotations

import re

from tools.pii.checksums import taiwan_id_valid
from tools.pii.found import Found
from tools.pii.spans import stars

# 回乡证 H/M + 8 or 10 digits, 往来港澳通行证 C + letter/digit + 7 digits, 台胞证 8 digits (10 with a
# bracketed letter in old booklets), Taiwan national ID (checksummed). Nine-character letter forms
# (C12345678, H12345678) look like any product or complaint code, so they are masked only when the
# text is about documents at all; ids and free fields masked on their own keep such codes.
_PERMIT = re.compile(
    r"[A-Z](?<![0-9A-Za-z*][A-Z])"
    r"(?:(?P<long>(?<=[HM])[0-9]{10}|(?<=C)[A-Z][0-9]{7})|(?P<tw>[12][0-9]{8})|(?P<short>(?<=[HMC])[0-9]{8}))"
    r"(?![0-9A-Za-z])"
)
_PERMIT_CONTEXT = re.compile(r"证|通行|港|澳|台|(?i:permit|passport|travel|document|(?<![a-z])id(?![a-z]))")
_TW_PERMIT_CUES = ("通行证", "台胞证", "回乡证", "permit", "Permit", "MTP")
_TW_PERMIT = re.compile(
    r"((?:台胞证|台湾居民来往大陆通行证|通行证|回乡证|MTP|[Pp]ermit)[^0-9]{0,8}?)"
    r"(?<![0-9A-Za-z])([0-9]{8}(?:[0-9]{2})?(?:\([A-Z0-9]\))?)(?![0-9A-Za-z])"
)


def _mask_permit_value(value: str) -> str:
    """Keep the letter prefix (H, M, CA, A), the last two digits and an old booklet's "(B)"."""
    body, bracket, suffix = value.partition("(")
    head = len(body) - len(body.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return body[:head] + stars(len(body) - head - 2) + body[-2:] + bracket + suffix


def mask_permits(text: str, found: Found) -> str:
    """Lettered permit numbers and Taiwan IDs, then 台胞证-style digit numbers after a permit's name."""
    context: list[bool] = []

    def about_documents() -> bool:
        if not context:
            context.append(_PERMIT_CONTEXT.search(text) is not None)
        return context[0]

    def letter_form(m: re.Match[str]) -> str:
        value = m.group(0)
        if m.group("tw") and not taiwan_id_valid(value):
            return value
        if m.group("short") and not about_documents():
            return value
        return found.add("travel_permit", _mask_permit_value(value))

    def digit_form(m: re.Match[str]) -> str:
        return m.group(1) + found.add("travel_permit", _mask_permit_value(m.group(2)), m.group(2))

    text = _PERMIT.sub(letter_form, text)
    if any(cue in text for cue in _TW_PERMIT_CUES):
        text = _TW_PERMIT.sub(digit_form, text)
    return text
