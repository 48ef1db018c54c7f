"""Amounts of money named in a complaint: Arabic or Chinese numerals, yuan or a foreign currency."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_CURRENCY_PREFIX = r"us\$|hk\$|s\$|[$€£¥￥]|usd|hkd|sgd|eur|gbp|jpy|aud|mop|rmb|cny"
_CURRENCY_SUFFIX = (
    r"元|块|美元|港币|港元|新加坡元|新币|欧元|英镑|日元|澳元|澳门元"
    r"|usd|hkd|sgd|eur|gbp|jpy|aud|mop|rmb|cny|yuan"
)
_AMOUNT = re.compile(
    rf"(?:(?P<pre>{_CURRENCY_PREFIX})\s*)?"
    r"(?P<num>\d[\d,]*(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+)"
    rf"\s*(?P<mult>万|千)?\s*(?P<unit>{_CURRENCY_SUFFIX})?"
)
# A bare number counts as money right after one of these ("金额3,650", "共计 1,200").
_AMOUNT_WORDS = ("金额", "共计", "合计", "总计", "共", "total", "amount")
_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}


@dataclass(frozen=True)
class Amount:
    yuan: float
    text: str
    start: int
    end: int


def _below_wan(s: str) -> float:
    """A Chinese numeral below 10,000; "一千五" is 1,500 and "三百多" stops at 300."""
    total, digit, last_unit, zero = 0, 0, 0, False
    for ch in s:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
            zero = zero or ch in "零〇"
        elif ch in _UNITS:
            total += (digit or 1) * _UNITS[ch]
            digit, last_unit = 0, _UNITS[ch]
    if digit:
        # A digit after a unit with no 零 between abbreviates the next unit down: 一千五 = 1500.
        total += digit * (last_unit // 10 if last_unit >= 10 and not zero else 1)
    return float(total)


def chinese_number(s: str) -> float:
    """Value of a Chinese numeral such as 两万, 三万八 (38,000), 一万二 (12,000), 一千五."""
    if "万" in s:
        high, _, low = s.partition("万")
        value = (_below_wan(high) or 1) * 10000
        if len(low) == 1 and low in _DIGITS:
            return value + _DIGITS[low] * 1000  # 三万八 = 38,000
        return value + _below_wan(low)
    return _below_wan(s)


def find_amounts(folded: str, rates: Mapping[str, float] | None = None) -> list[Amount]:
    """Amounts of money in lower-cased text, converted to yuan with ``rates`` (currency -> yuan).

    Counts a number only when something says it is money: a currency before or after it, 万 or
    千 (三万八, 1.2万), or a word such as 金额 right before it; dates, card tails, counts do not.
    """
    rates = rates or {}
    out = []
    for m in _AMOUNT.finditer(folded):
        num, pre, mult, unit = m.group("num"), m.group("pre"), m.group("mult"), m.group("unit")
        arabic = num[0].isdigit()
        before = folded[max(0, m.start() - 4) : m.start()]
        is_money = bool(
            pre
            or unit
            or mult
            or (not arabic and ("万" in num or "千" in num))
            or before.endswith(_AMOUNT_WORDS)
        )
        if not is_money:
            continue
        if not arabic and unit == "块" and not any(u in num for u in "十百千万"):
            continue  # 一块 is mostly "together" (一块去), and 两块钱 is not worth counting
        if arabic:
            digits = num.replace(",", "")
            try:
                value = float(digits)
            except ValueError:
                continue
        else:
            value = chinese_number(num)
        if mult:
            value *= 10000 if mult == "万" else 1000
        currency = pre or unit or ""
        value *= rates.get(currency, 1.0)
        if value > 0:
            out.append(Amount(yuan=value, text=m.group(0).strip(), start=m.start(), end=m.end()))
    return out


def amount_yuan(text: str, rates: Mapping[str, float] | None = None) -> float:
    """Total yuan named in ``text``."""
    return sum(a.yuan for a in find_amounts(text.lower(), rates))
