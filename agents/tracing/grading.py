"""The complaint grade from the grade rules and the label's default, for both tracing engines."""

from __future__ import annotations

import re

from agents.tracing.index import TracingIndex
from tools.cues import Match
from tools.grade_reasons import BY_DEFAULT, BY_RULE, NOT_COMPLAINT
from tools.money import find_amounts
from tools.taxonomy import GRADES, Grade, Label

_MONEY = re.compile(
    r"\d[\d,.]*\s*(?:元|块|万|欧元|美元|港币|英镑|usd|sgd|hkd|eur|rmb)|钱|余额|款项|扣款|消费|取现|刷了|被刷"
    r"|charges?|charged|debited|withdrawn|\$\s?\d"
)


def _money(folded: str) -> Match | None:
    m = _MONEY.search(folded)
    if m:
        return Match("money", m.group(0), m.start(), m.end())
    amounts = find_amounts(folded)  # 三万八, sgd 4,300, 金额3,650
    return Match("money", amounts[0].text, amounts[0].start, amounts[0].end) if amounts else None


def grade_for(index: TracingIndex, folded: str, label: Label | None) -> tuple[Grade, str, list[Match]]:
    """Grade, the reason shown for it and the matches behind it; ``label`` None: not a complaint.

    A rule only ever raises the label's default. A fund-safety label (default 特急) keeps 特急
    when money is in play and is 紧急 otherwise, whatever milder rule also matched.
    """
    hits = index.grade_rules.find(folded)
    ranked = sorted(hits, key=lambda key: GRADES.index(index.grade_rule_names[key][0]))
    if label is not None and label.default_grade == "特急":
        top = index.grade_rule_names[ranked[0]] if ranked else None
        if top and top[0] == "特急":
            return "特急", f"{BY_RULE}{top[1]}", hits[ranked[0]]
        money = _money(folded)
        if money:
            return "特急", f"{BY_DEFAULT}（{label.id}），涉及资金", [money]
        return "紧急", f"{BY_DEFAULT}（{label.id}），未见资金损失证据", hits[ranked[0]] if ranked else []
    if ranked:
        grade, name = index.grade_rule_names[ranked[0]]
        default = label.default_grade if label else "一般"
        if GRADES.index(default) < GRADES.index(grade):
            return default, f"{BY_DEFAULT}（{label.id if label else ''}）", hits[ranked[0]]
        return grade, f"{BY_RULE}{name}", hits[ranked[0]]
    if label is None:
        return "一般", NOT_COMPLAINT, []
    return label.default_grade, f"{BY_DEFAULT}（{label.id}）", []
