"""Secrets after a cue, Chinese or English (passwords, PINs, verification codes, CVVs), masked as ******."""

from __future__ import annotations

import re

from tools.pii.found import Found
from tools.pii.spans import replace_spans, word_start

_SECRET_TAIL = r"(?P<value>[0-9A-Za-z][0-9A-Za-z!@#$%^&*_.\-]{2,31})"
_SECRET_ZH = re.compile(
    r"(?P<cue>(?:短信验证码|手机验证码|验证码|校验码|动态码|动态密码|动态口令|交易密码|支付密码|查询密码|"
    r"取款密码|登录密码|网银密码|银行卡密码|卡密码|密码|口令|安全码)"
    r"[\"'”’]?\s*(?:(?:是|为|:|=)\s*){0,2}[\"'“‘【\[(]?\s*)" + _SECRET_TAIL
)
# Matched against the lower-cased text (same length) so the pattern can start with plain letters,
# which lets the engine skip ahead; the left word boundary is checked by hand.
_SECRET_EN = re.compile(
    r"(?P<cue>(?:(?:verification|security|sms|otp|auth|authentication|one[- ]time|login|access"
    r"|confirmation)[ _-]?code|passcode|password|passwd|pwd|pin(?:[ _-]?code)?|otp|cvv2?|cvn2?"
    r"|code(?<!error code)(?<!status code)(?<!promo code)(?<!zip code)(?<!postal code)(?<!product code)"
    r"(?=[\"']?\s*(?:is|was|:|=)))"
    r"(?![a-z])[\"']?\s*(?:(?:is|was)\s|:|=)?\s*[\"'(]?\s*)" + _SECRET_TAIL
)
_SECRET_EN_CUES = ("pass", "pwd", "pin", "otp", "cvv", "cvn", "code")
_SECRET_UNIT = re.compile(r"[年月日号次秒分位个条遍天元笔]")
_SHORT_SECRET_CUES = ("cvv", "cvn", "安全码")


def _secret_value(cue: str, value: str, text: str, value_start: int) -> str | None:
    """The secret after a cue with trailing punctuation trimmed, or None when it is not one:
    English words after English cues ("password is wrong") and counts ("验证码60秒") are not."""
    value = value.rstrip(".-_")
    minimum = 3 if cue.lower().startswith(_SHORT_SECRET_CUES) else 4
    if len(value) < minimum:
        return None
    if cue[:1].isascii():
        if not any(c.isdigit() for c in value) and ":" not in cue and "=" not in cue:
            return None
    elif _SECRET_UNIT.match(text, value_start + len(value)):
        return None
    return value


def _english_secrets(text: str, found: Found) -> str:
    lowered = text.lower()
    if len(lowered) != len(text) or not any(cue in lowered for cue in _SECRET_EN_CUES):
        return text
    spans = []
    for m in _SECRET_EN.finditer(lowered):
        start, end = m.span("value")
        value = _secret_value(text[m.start() : start], text[start:end], text, start)
        if value is None or not word_start(lowered, m.start()):
            continue
        spans.append((start, start + len(value), found.add("secret", "******", value)))
    return replace_spans(text, spans)


def mask_secrets(text: str, found: Found) -> str:
    """Codes and passwords after a Chinese cue, then after an English one."""

    def repl(m: re.Match[str]) -> str:
        value = _secret_value(m.group("cue"), m.group("value"), text, m.start("value"))
        if value is None:
            return m.group(0)
        return m.group("cue") + found.add("secret", "******", value) + m.group("value")[len(value) :]

    if "码" in text or "令" in text:
        text = _SECRET_ZH.sub(repl, text)
    return _english_secrets(text, found)
