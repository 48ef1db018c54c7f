"""The complaint grade from the grade rules and the label's default, for both tracing engines."""

from __future__ import annotations

import re

from agents.tracing.index import TracingIndex
from tools.cues import Match
from tools.taxonomy import GRADES, Grade, Label

_MONEY = re.compile(
    r"\d[\d,.]*\s*(?:元|块|万|欧元|美元|港币|英镑|usd|sgd|hkd|eur|rmb)|钱|余额|款项|扣款|消费|取现|刷了|被刷"
    r"|charges?|charged|debited|withdrawn|\$\s?\d"
)


def grade_for(index: TracingIndex, folded: str, label: Label | None) -> tuple[Grade, str, list[Match]]:
    """Grade, the reason shown for it and the matches behind it; ``label`` None: not a complaint."""
    hits = index.grade_rules.find(folded)
    ranked = sorted(hits, key=lambda key: GRADES.index(index.grade_rule_names[key][0]))
    if ranked:
        grade, name = index.grade_rule_names[ranked[0]]
        default = label.default_grade if label else "一般"
        if GRADES.index(default) < GRADES.index(grade) and default != "特急":
            return default, f"标签默认等级（{label.id if label else ''}）", hits[ranked[0]]
        return grade, f"规则：{name}", hits[ranked[0]]
    if label is None:
        return "一般", "非投诉类声音", []
    # A fund-safety label keeps 特急 only when money is actually in play; otherwise 紧急.
    if label.default_grade == "特急":
        money = _MONEY.search(folded)
        if money:
            hit = Match("money", money.group(0), money.start(), money.end())
            return "特急", f"标签默认等级（{label.id}），涉及资金", [hit]
        return "紧急", f"标签默认等级（{label.id}），未见资金损失证据", []
    return label.default_grade, f"标签默认等级（{label.id}）", []
