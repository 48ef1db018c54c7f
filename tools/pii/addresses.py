"""House numbers in street and compound addresses (…路12号, …小区3栋), masked as **."""

from __future__ import annotations

import re

from tools.pii.found import Found

_ADDRESS_NO = re.compile(
    r"([路街道巷弄村区])(?:(?<=[\u4e00-\u9fff][路街道巷弄村])|(?<=[\u4e00-\u9fff]小区))([0-9]{1,5})(号|栋|幢|弄)"
)


def mask_addresses(text: str, found: Found) -> str:
    """House numbers right after a road, street, lane, village or compound name."""

    def repl(m: re.Match[str]) -> str:
        return m.group(1) + found.add("address", "**") + m.group(3)

    return _ADDRESS_NO.sub(repl, text)
