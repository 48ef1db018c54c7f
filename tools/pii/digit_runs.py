"""Digit runs cut into values by shape and checksum: resident IDs, bank cards, mobiles and landlines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from tools.pii.checksums import is_card, is_id15, is_id18
from tools.pii.found import Found
from tools.pii.spans import stars

# One separator between digit groups: a space or two, a hyphen/dash (spaces allowed around it) or a
# single line break (a card wrapped across two lines).
_SEP = r"(?:[ \t]*\n[ \t]*|[ \t]?[-‐‑–—][ \t]?|[ \t]{1,2})"
_GROUP = r"[0-9]+(?:[Xx](?![0-9A-Za-z]))?"
# Starts with a digit so the engine can skip Chinese text quickly; the left boundary and a "+86" /
# "(010)" prefix are looked at by hand (``_run_start``), which a leading look-behind would make slow.
_RUN = re.compile(rf"{_GROUP}(?:{_SEP}{_GROUP})*(?![0-9*]|\.[0-9])")
_PREFIX_BEFORE = re.compile(r"(?:\((?:\+?86|0086|0[1-9][0-9]{1,2})\)[ \t]?|\+)$")
_TOKEN_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*")
# English labels sometimes glued to a number ("ID110...", "Tel138..."); other letters make a code.
_GLUED_LABELS = ("ID", "No", "NO", "Tel", "TEL")
_SEP_SPLIT = re.compile(f"({_SEP})")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_SHAPES = frozenset({(11,), (3, 4, 4), (3, 8), (7, 4)})
_LOCAL_SHAPES = frozenset({(7,), (8,), (3, 4), (4, 4), (4, 3)})
_AREA = re.compile(r"0(?:10|2[0-9]|[3-9][0-9]{2})")
# Country codes of Hong Kong, Macau and Taiwan with the length and first digit of a mobile there.
_INTL_MOBILE = {"852": (8, "5679"), "853": (8, "6"), "886": (9, "9")}
_AMOUNT_BEFORE = re.compile(r"(?:[¥$€£]|RMB|CNY|人民币)[ \t]?$")
_AMOUNT_AFTER = re.compile(r"[ \t]?(?:元(?!旦)|万|亿|块|美元|港币|%|RMB|CNY)")
# A unit after a run's last group makes that group a count or an amount ("… 7894 3次", "… 7894 5000元").
_UNIT_AFTER = re.compile(r"[ \t]?(?:[元万亿块次笔个天月日年号张位条秒分岁%]|美元|港币|RMB|CNY)")


@dataclass(frozen=True)
class _Around:
    """What surrounds a digit run: its "+86"/"(010)" prefix, a currency sign before, a unit after."""

    prefix: str
    amount_before: bool
    amount_after: bool
    unit_after: bool


@dataclass(frozen=True)
class _Value:
    """A value found in a digit run: groups ``start``..``end`` (exclusive) become ``masked``."""

    start: int
    end: int
    kind: str
    masked: str
    uses_prefix: bool


def _mask_id(value: str) -> str:
    return value[:3] + stars(len(value) - 7) + value[-4:]


def _mask_card(digits: str) -> str:
    return digits[:4] + stars(len(digits) - 8) + digits[-4:]


def _mask_mobile(digits: str) -> str:
    return digits[:3] + "****" + digits[-4:]


def _mask_landline(area: str, local: str) -> str:
    return f"{area}-{stars(len(local) - 2)}{local[-2:]}"


def _lengths(groups: Sequence[str]) -> tuple[int, ...]:
    return tuple(len(g) for g in groups)


def _national_mobile(groups: Sequence[str], prefix: str) -> tuple[str, Sequence[str]] | None:
    """(country code, national groups) once a +86/0086/86 or (+86) prefix is peeled off."""
    code = prefix.strip("()+ \t-")
    if code in ("86", "0086"):
        return "86", groups
    if code:  # "(010)" belongs to a landline
        return None
    head = groups[0]
    if head in ("86", "0086"):
        return "86", groups[1:]
    if len(groups) == 1 and head[:2] == "86" and len(head) == 13:
        return "86", [head[2:]]
    if len(groups) == 1 and head[:4] == "0086" and len(head) == 15:
        return "86", [head[4:]]
    if prefix.strip() == "+":
        for cc in _INTL_MOBILE:
            if head.startswith(cc):
                rest = [head[len(cc) :], *groups[1:]] if len(head) > len(cc) else list(groups[1:])
                return cc, rest
        return None
    return "", groups


def _mobile(groups: Sequence[str], prefix: str) -> str | None:
    """Mask of a mobile number written in any of the usual ways, else None."""
    found = _national_mobile(groups, prefix)
    if found is None or not found[1]:
        return None
    cc, national = found
    digits = "".join(national)
    if cc in ("", "86"):
        if _lengths(national) in _MOBILE_SHAPES and _MOBILE.fullmatch(digits):
            return _mask_mobile(digits)
        return None
    length, first = _INTL_MOBILE[cc]
    if len(digits) == length and digits[0] in first and len(national) <= 3:
        return f"+{cc} {stars(length - 4)}{digits[-4:]}"
    return None


def _landline(groups: Sequence[str], prefix: str) -> str | None:
    """Mask of a fixed-line number with its area code: 010-12345678, (0755)1234-5678, 075512345678."""
    code = prefix.strip("() \t")
    if code:
        if not _AREA.fullmatch(code):
            return None
        area, local = code, list(groups)
    elif len(groups) >= 2 and _AREA.fullmatch(groups[0]):
        area, local = groups[0], list(groups[1:])
    elif len(groups) == 1 and len(groups[0]) in (11, 12) and groups[0][0] == "0":
        digits = groups[0]
        cut = 3 if digits[1] in "12" else 4
        area, local = digits[:cut], [digits[cut:]]
        if not _AREA.fullmatch(area):
            return None
    else:
        return None
    number = "".join(local)
    if _lengths(local) not in _LOCAL_SHAPES or number[0] == "0":
        return None
    return _mask_landline(area, number)


def _card_shape(groups: Sequence[str]) -> bool:
    """One block, or groups of at least four digits with a shorter last one (4-4-4-4-3, 6-13)."""
    return len(groups) <= 6 and all(len(g) >= 4 for g in groups[:-1])


def _classify(groups: Sequence[str], prefix: str, amount: bool) -> tuple[str, str] | None:
    """(kind, mask) when ``groups`` joined are one personal value, else None.

    Checksummed values (IDs, cards) are trusted anywhere; values without a checksum (legacy IDs,
    phones) are refused next to a currency sign or unit, where a long number is an amount.
    """
    digits = "".join(groups)
    if any(g[-1] in "Xx" for g in groups[:-1]):
        return None
    if digits[-1] in "Xx":
        value = digits.upper()
        return ("id_card", _mask_id(value)) if len(value) == 18 and is_id18(value) else None
    if len(digits) == 18 and len(groups) <= 4 and is_id18(digits):
        return "id_card", _mask_id(digits)
    if not prefix and _card_shape(groups) and is_card(digits):
        return "bank_card", _mask_card(digits)
    if amount:
        return None
    if not prefix and len(digits) == 15 and (len(groups) == 1 or len(groups[0]) == 6) and is_id15(digits):
        return "id_card", _mask_id(digits)
    if (masked := _mobile(groups, prefix)) is not None:
        return "mobile", masked
    if (masked := _landline(groups, prefix)) is not None:
        return "landline", masked
    return None


def _sep_kind(sep: str) -> str:
    return "\n" if "\n" in sep else ("-" if sep.strip() else " ")


def _continues(
    groups: Sequence[str], seps: Sequence[str], i: int, j: int, kind: str, unit_after: bool
) -> bool:
    """Whether the written value ``groups[i:j]`` is really part of a longer grouped number: a short
    neighbouring group joined the way the value's own groups are joined ("6259 0143 4223 4818 25"
    is one 18-digit reference, not a card plus "25"). A line break never joins, nor does a last
    group followed by a unit ("… 7894 3次"); mobiles are exempt ("138 0013 8000 3次") and so is a
    landline's "-801" extension."""
    inner = {_sep_kind(s) for s in seps[i : j - 1]} - {"\n"}
    if not inner or kind == "mobile":
        return False
    if i > 0 and len(groups[i - 1]) <= 4 and _sep_kind(seps[i - 1]) in inner:
        return True
    if kind == "landline" or j == len(groups) or (j == len(groups) - 1 and unit_after):
        return False
    return len(groups[j]) < 4 and _sep_kind(seps[j - 1]) in inner


def _find_values(parts: Sequence[str], around: _Around) -> list[_Value]:
    """Cut a run of digit groups into values, left to right, longest candidate first."""
    groups, seps = parts[0::2], parts[1::2]
    prefix = around.prefix
    found: list[_Value] = []
    n, i = len(groups), 0
    offsets = list(accumulate((len(g) for g in groups), initial=0))
    while i < n:
        hit = None
        for j in range(min(n, i + 6), i, -1):
            size = offsets[j] - offsets[i]
            if size < 7 and not (i == 0 and prefix):
                break
            if size > 19:
                continue
            amount = (i == 0 and around.amount_before) or (j == n and around.amount_after)
            pre = prefix if i == 0 else ""
            result = _classify(groups[i:j], pre, amount)
            if result is None and pre:
                result = _classify(groups[i:j], "", amount)
                pre = ""
            if result is not None and not _continues(groups, seps, i, j, result[0], around.unit_after):
                hit = _Value(i, j, result[0], result[1], bool(pre))
                break
        if hit is None:
            i += 1
        else:
            found.append(hit)
            i = hit.end
    return found


def _rebuild(parts: Sequence[str], prefix: str, values: Sequence[_Value]) -> str:
    """The run with each value replaced by its mask; separators between values are kept."""
    groups, seps = parts[0::2], parts[1::2]
    out = [] if values and values[0].start == 0 and values[0].uses_prefix else [prefix]
    starts = {v.start: v for v in values}
    k = 0
    while k < len(groups):
        value = starts.get(k)
        if value is not None:
            out.append(value.masked)
            k = value.end
        else:
            out.append(groups[k])
            k += 1
        if k < len(groups):
            out.append(seps[k - 1])
    return "".join(out)


def _run_start(text: str, start: int) -> tuple[str, bool]:
    """(prefix, free): the "+86"/"(010)" prefix just before a run, and whether the run stands on its
    own rather than continuing a longer number, a letter code or a mask."""
    prefix = ""
    if start and text[start - 1] in "+) \t":
        found = _PREFIX_BEFORE.search(text, max(0, start - 8), start)
        prefix = found.group(0) if found else ""
    outer = start - len(prefix)
    free = outer == 0 or text[outer - 1] not in _TOKEN_CHARS or text.endswith(_GLUED_LABELS, 0, outer)
    return prefix, free


def mask_runs(text: str, found: Found) -> str:
    """Digit runs that hold resident IDs, bank cards, mobiles or landlines, masked value by value."""
    pieces: list[str] = []
    last = 0
    for m in _RUN.finditer(text):
        body, start = m.group(0), m.start()
        prefix, free = _run_start(text, start)
        if (len(body) < 7 and not prefix) or not free:
            continue
        parts = _SEP_SPLIT.split(body)
        outer = start - len(prefix)
        around = _Around(
            prefix,
            amount_before=bool(_AMOUNT_BEFORE.search(text, max(0, outer - 4), outer)),
            amount_after=bool(_AMOUNT_AFTER.match(text, m.end())),
            unit_after=bool(_UNIT_AFTER.match(text, m.end())),
        )
        values = _find_values(parts, around)
        if not values:
            continue
        for v in values:
            found.add(v.kind, v.masked)
        pieces += [text[last:outer], _rebuild(parts, prefix, values)]
        last = m.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)
