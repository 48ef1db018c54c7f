"""Near-duplicate detection (tools/dedup.py)."""

from __future__ import annotations

import pytest

from tools.dedup import find_duplicates

# 60 characters: one complaint as a customer might write it.
BASE = (
    "我在手机银行转账的时候一直提示系统繁忙，试了三次都失败了，"
    "耽误了给供应商付款，希望尽快修复这个问题，请尽快处理一下吧谢谢"
)

# Other complaints about the same topic (mobile transfer failures), worded differently.
SAME_TOPIC = [
    "手机银行转账一直提示系统繁忙，给供应商付款失败了好几次，这个问题什么时候能修好，太耽误事了",
    "我在手机银行上转账总是失败，提示网络异常，重试了很多次还是不行，请技术部门尽快排查修复一下",
    "昨天晚上用手机银行给家里转账，页面一直转圈然后提示交易失败，钱也没扣，到底是什么原因",
    "手机银行转账失败三次了，客服说系统升级，可是升级也应该提前通知吧，耽误我还信用卡了",
]


def edit(text: str, pos: int, ch: str = "啊") -> str:
    """``text`` with the character at ``pos`` replaced."""
    return text[:pos] + ch + text[pos + 1 :]


def test_base_text_is_sixty_characters() -> None:
    assert len(BASE) == 60


def test_exact_duplicates_after_whitespace_punctuation_and_case_differences() -> None:
    items = [
        ("a", "APP 登录后闪退，无法使用！"),
        ("b", "app登录后闪退 无法使用"),
        ("c", "  APP，登录后闪退。。无法使用？？ "),
    ]
    assert find_duplicates(items) == {"b": "a", "c": "a"}


@pytest.mark.parametrize("pos", [0, 1, 17, 30, 45, 58, 59])
def test_one_character_changed_in_sixty_is_a_near_duplicate(pos: int) -> None:
    changed = edit(BASE, pos)
    assert changed != BASE
    assert find_duplicates([("orig", BASE), ("copy", changed)]) == {"copy": "orig"}


def test_one_character_changed_anywhere_is_a_near_duplicate() -> None:
    items = [("orig", BASE)] + [(f"c{i}", edit(BASE, i)) for i in range(len(BASE))]
    dups = find_duplicates(items)
    assert dups == {f"c{i}": "orig" for i in range(len(BASE))}


def test_distinct_complaints_on_the_same_topic_are_not_duplicates() -> None:
    items = [("base", BASE)] + [(f"t{i}", t) for i, t in enumerate(SAME_TOPIC)]
    assert find_duplicates(items) == {}


def test_short_texts_only_match_exactly() -> None:
    items = [
        ("a", "无法登录了"),
        ("b", "无法登陆了"),  # one character differs: too short to call a near-duplicate
        ("c", "无法登录了！"),  # same after punctuation is dropped
        ("d", "卡被冻结"),
        ("e", "卡被冻住"),
    ]
    assert find_duplicates(items) == {"c": "a"}


def test_first_occurrence_is_the_original() -> None:
    items = [
        ("first", BASE),
        ("other", SAME_TOPIC[0]),
        ("second", edit(BASE, 10)),
        ("third", BASE + "！"),
        ("fourth", edit(BASE, 50, "呀")),
    ]
    dups = find_duplicates(items)
    assert dups == {"second": "first", "third": "first", "fourth": "first"}
    assert "first" not in dups and "other" not in dups


def test_text_close_to_two_originals_points_to_the_earlier_one() -> None:
    def edits(positions: list[int]) -> str:
        out = list(BASE)
        for p in positions:
            out[p] = "啊"
        return "".join(out)

    far, middle = edits([10, 40, 20, 50]), edits([10, 40])  # far is not a duplicate of BASE
    assert find_duplicates([("a", BASE), ("b", far), ("c", middle)]) == {"c": "a"}
    assert find_duplicates([("b", far), ("a", BASE), ("c", middle)]) == {"c": "b"}


def test_order_decides_which_is_the_original() -> None:
    changed = edit(BASE, 20)
    assert find_duplicates([("x", changed), ("y", BASE)]) == {"y": "x"}


def test_empty_batch() -> None:
    assert find_duplicates([]) == {}


def test_no_pair_at_the_threshold_is_missed() -> None:
    """Every pair at or above the similarity threshold is found, not most of them (a sampling
    scheme such as MinHash misses some pairs near the threshold: counted twice)."""
    import random

    rng = random.Random(7)
    alphabet = BASE.replace("，", "") + "网点信用卡理财"

    def grams(text: str) -> set[str]:
        return {text[i : i + 3] for i in range(len(text) - 2)}

    items, expected = [], {}
    for n in range(300):
        base = "".join(rng.choice(alphabet) for _ in range(60))
        copy = list(base)
        for pos in rng.sample(range(60), 2):
            copy[pos] = "啊"
        near = "".join(copy)
        a, b = grams(base), grams(near)
        items += [(f"o{n}", base), (f"c{n}", near)]
        if len(a & b) / len(a | b) >= 0.8:
            expected[f"c{n}"] = f"o{n}"
    assert len(expected) > 100
    found = find_duplicates(items)
    assert {k: v for k, v in found.items() if k in expected} == expected
