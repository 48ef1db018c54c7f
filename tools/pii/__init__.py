"""Personal-data masking applied once at ingest, before text is stored, logged or embedded.

Input contract: ingest passes NFKC-normalised text (``tools.text.normalize``). Other callers (ids,
metadata, API error paths) may pass raw strings, so ``mask`` folds full-width digits, letters, "＋" and
"＠" to ASCII itself, and "－（）：" and the ideographic space only where they touch a digit; on normalised
text that is a no-op, on raw text it is the only change besides the masks (the complaint's own "，"
and "（…）" stay as written).

Never relies on ``\\b``: Chinese characters count as word characters, so values are delimited with
look-arounds on digits and letters instead. Digit values are found as one "run" of digit groups joined
by a single space, hyphen or line break, then cut into values by shape and checksum, so a card written
``6217 0023 4000 1234 568``, a mobile written ``+86 137 0013 8000`` and two numbers side by side are
all read correctly without one pattern swallowing its neighbour.

Masks keep enough shape to stay readable and are stable: each mask is a function of the value's
digits alone (not of how it was written), so two complaints about one card still link.
"""

from __future__ import annotations

import re

from tools.pii.addresses import mask_addresses
from tools.pii.checksums import id18_check_char, id18_valid, luhn_valid, taiwan_id_valid
from tools.pii.credentials import mask_secrets
from tools.pii.digit_runs import mask_runs
from tools.pii.emails import mask_emails
from tools.pii.found import Found, MaskReport
from tools.pii.fullwidth import fold_full_width
from tools.pii.names import mask_names
from tools.pii.permits import mask_permits

__all__ = [
    "MaskReport",
    "id18_check_char",
    "id18_valid",
    "luhn_valid",
    "mask",
    "mask_text",
    "taiwan_id_valid",
]

_HAS_DIGIT = re.compile(r"[0-9]")


def mask(text: str) -> tuple[str, MaskReport]:
    """Replace personal data in ``text``; return the masked text and what was replaced."""
    found = Found()
    text = fold_full_width(text)
    # Order matters: e-mails first (a QQ mailbox's local part is a digit run), then secrets (a code
    # is not a phone), then lettered permits, then digit runs, then names (cues may sit next to digits),
    # and last the echoes of values that were recognised by their context.
    text = mask_emails(text, found)
    text = mask_secrets(text, found)
    if _HAS_DIGIT.search(text):
        text = mask_permits(text, found)
        text = mask_runs(text, found)
        text = mask_addresses(text, found)
    text = mask_names(text, found)
    if found.echoes:
        text = found.mask_echoes(text)
    return text, found.report


def mask_text(text: str) -> str:
    """Mask ``text`` and drop the report; for identifiers and free fields."""
    return mask(text)[0]
