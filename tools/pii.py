"""Personal-data masking applied once at ingest, before text is stored, logged or embedded.

Works on NFKC-normalised text (full-width digits are already ASCII) and never relies on
``\\b``: Chinese characters count as word characters, so digit runs are delimited with
look-arounds on digits instead. Masks keep enough shape to stay readable and are stable:
the same value always masks to the same string, so two complaints about one card still link.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id18_valid(value: str) -> bool:
    """MOD 11-2 check of an 18-character resident ID number (GB 11643)."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_valid(digits: str) -> bool:
    """Luhn check used by bank card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _plausible_birth(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    return 1900 <= year <= 2030 and 1 <= month <= 12 and 1 <= day <= 31


@dataclass
class MaskReport:
    """What a masking pass replaced, by kind (counts only; never the values)."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_D = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"

_ID18 = re.compile(_D + r"([1-9]\d{5}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[0-9Xx])" + _E)
_ID15 = re.compile(_D + r"([1-9]\d{5}\d{2}[01]\d[0-3]\d\d{3})" + _E)
_CARD = re.compile(_D + r"((?:\d[ -]?){15,18}\d)" + _E)
_MOBILE = re.compile(r"(?<![0-9])((?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0\d{2,3}[ -]?\d{7,8})(?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_SECRET = re.compile(
    r"((?:验证码|动态码|校验码|密码|口令|pin|PIN|password|code)\s*(?:是|为|:|=)?\s*)([0-9A-Za-z]{4,12})"
)
# Common Chinese surnames: a name is only taken as a name when it starts with one, so verbs
# after "客户" ("客户来电", "客户反映") are never mistaken for names.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝"
)
_NAME = re.compile(
    r"((?:我叫|名叫|名字叫|户名|姓名|持卡人|开户人|账户名|客户名|客户|投诉人|消费者|本人|申请人|借款人|家属)"
    r"\s*(?:是|为|:)?\s*)"
    rf"([{_SURNAMES}][\u4e00-\u9fff]{{1,2}})"
    r"(?=[，,。.；;、\s：:(（]|来电|致电|反映|称|表示|投诉|到|在|于|卡|账|的|先生|女士|$)"
)
_ADDRESS_NO = re.compile(r"([\u4e00-\u9fff](?:路|街|道|巷|弄|村|小区))(\d{1,5})(号|栋|幢|弄)")


def _stars(n: int) -> str:
    return "*" * max(n, 1)


def _mask_id(value: str) -> str:
    return value[:3] + _stars(len(value) - 7) + value[-4:]


def _mask_card(digits: str) -> str:
    return digits[:4] + _stars(len(digits) - 8) + digits[-4:]


def _mask_mobile(digits: str) -> str:
    return digits[:3] + "****" + digits[-4:]


def mask(text: str) -> tuple[str, MaskReport]:
    """Replace personal data in ``text``; return the masked text and what was replaced."""
    report = MaskReport()

    def sub(pattern: re.Pattern[str], fn: Callable[[re.Match[str]], str | None]) -> None:
        nonlocal text

        def repl(m: re.Match[str]) -> str:
            out = fn(m)
            return m.group(0) if out is None else out

        text = pattern.sub(repl, text)

    def id18(m: re.Match[str]) -> str | None:
        value = m.group(1)
        if id18_valid(value) and _plausible_birth(value[6:14]):
            report.counts["id_card"] += 1
            return _mask_id(value)
        return None

    def id15(m: re.Match[str]) -> str | None:
        value = m.group(1)
        if _plausible_birth("19" + value[6:12]):
            # A 15-digit number is also a possible card; a valid Luhn sum says card. The card
            # pattern only covers 16-19 digits, so mask it as a card here or it would leak.
            if luhn_valid(value):
                report.counts["bank_card"] += 1
                return _mask_card(value)
            report.counts["id_card"] += 1
            return _mask_id(value)
        return None

    def card(m: re.Match[str]) -> str | None:
        raw = m.group(1)
        digits = re.sub(r"[ -]", "", raw)
        if 16 <= len(digits) <= 19 and luhn_valid(digits):
            report.counts["bank_card"] += 1
            return _mask_card(digits)
        return None

    def mobile(m: re.Match[str]) -> str | None:
        digits = re.sub(r"[ +-]", "", m.group(1))
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if len(digits) != 11:
            return None
        report.counts["mobile"] += 1
        return _mask_mobile(digits)

    def landline(m: re.Match[str]) -> str:
        value = m.group(1)
        report.counts["landline"] += 1
        return value[:4] + _stars(len(value) - 6) + value[-2:]

    def email(m: re.Match[str]) -> str:
        local, _, domain = m.group(0).partition("@")
        report.counts["email"] += 1
        return local[:1] + "***@" + domain

    def secret(m: re.Match[str]) -> str:
        report.counts["secret"] += 1
        return m.group(1) + "******"

    def name(m: re.Match[str]) -> str:
        value = m.group(2)
        report.counts["name"] += 1
        return m.group(1) + value[0] + _stars(len(value) - 1)

    def address(m: re.Match[str]) -> str:
        report.counts["address"] += 1
        return m.group(1) + "**" + m.group(3)

    # Order matters: IDs before cards (an ID is 18 digits too), secrets before phones.
    sub(_ID18, id18)
    sub(_ID15, id15)
    sub(_CARD, card)
    sub(_SECRET, secret)
    sub(_MOBILE, mobile)
    sub(_LANDLINE, landline)
    sub(_EMAIL, email)
    sub(_NAME, name)
    sub(_ADDRESS_NO, address)
    return text, report


def mask_text(text: str) -> str:
    """Mask ``text`` and drop the report; for identifiers and free fields."""
    return mask(text)[0]
