"""Personal-data masking (tools/pii.py) and text normalisation (tools/text.py)."""

from __future__ import annotations

import re

import pytest

from tools.pii import id18_valid, luhn_valid, mask, mask_text
from tools.text import normalize

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id18(first17: str) -> str:
    """A resident ID number with the correct GB 11643 MOD 11-2 check character."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the digit that makes it pass the Luhn check."""
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


def luhn_broken(prefix: str) -> str:
    """``prefix`` plus a final digit that makes it fail the Luhn check."""
    good = luhn_complete(prefix)
    return prefix + str((int(good[-1]) + 1) % 10)


def id_with_x_check() -> str:
    """A valid ID whose check character is X (found by varying the sequence number)."""
    for seq in range(1000):
        value = id18(f"11010519880315{seq:03d}")
        if value.endswith("X"):
            return value
    raise AssertionError("no X check digit found")


def assert_masked(masked: str, raw_digits: str, keep_head: int, keep_tail: int) -> None:
    """The raw value is gone and a ``head***tail`` mask of the same length is in its place."""
    assert raw_digits not in masked
    shape = re.escape(raw_digits[:keep_head]) + r"\*+" + re.escape(raw_digits[-keep_tail:])
    found = re.search(shape, masked)
    assert found, f"no {raw_digits[:keep_head]}***{raw_digits[-keep_tail:]} mask in {masked!r}"
    assert len(found.group(0)) == len(raw_digits)


CARD16 = luhn_complete("622202123456789")  # 16 digits
CARD19 = "6217002340001234568"  # 19 digits, Luhn-valid
ID_VALID = "110105198803152315"


# ── text.normalize ────────────────────────────────────────────────────────────


def test_normalize_full_width_digits_and_punctuation_become_ascii() -> None:
    assert normalize("电话１３７００１３８０００，金额５０００元！") == "电话13700138000,金额5000元!"
    assert normalize("ＡＢＣ：（测试）") == "ABC:(测试)"


def test_normalize_collapses_whitespace_and_keeps_single_line_breaks() -> None:
    text = "  手机银行\u3000\u3000闪退 \t 了\r\n\r\n\n   请  处理\u200b  "
    assert normalize(text) == "手机银行 闪退 了\n请 处理"


# ── check digits ──────────────────────────────────────────────────────────────


def test_id18_valid_accepts_correct_check_digit_and_rejects_others() -> None:
    assert id18_valid(ID_VALID)
    for d in "0123456789X":
        if d != ID_VALID[-1]:
            assert not id18_valid(ID_VALID[:17] + d)


def test_id18_valid_handles_x_check_digit_in_either_case() -> None:
    value = id_with_x_check()
    assert id18_valid(value)
    assert id18_valid(value[:17] + "x")
    assert not id18_valid(value[:17] + "0")


@pytest.mark.parametrize("value", ["", "11010519880315231", "1101051988031523150", "11010519880315231A"])
def test_id18_valid_rejects_wrong_length_or_characters(value: str) -> None:
    assert not id18_valid(value)


def test_luhn_valid() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert luhn_valid(CARD16) and luhn_valid(CARD19)
    assert not luhn_valid(luhn_broken("622202123456789"))
    assert not luhn_valid("4111 1111 1111 1111")  # callers strip separators first
    assert not luhn_valid("")


# ── masking: what must be masked ──────────────────────────────────────────────


def test_id18_glued_to_chinese_text_is_masked() -> None:
    masked, report = mask(f"身份证号{ID_VALID}办理挂失")
    assert_masked(masked, ID_VALID, 3, 4)
    assert masked.startswith("身份证号110") and masked.endswith("2315办理挂失")
    assert report.counts["id_card"] == 1


def test_id18_with_x_check_digit_is_masked() -> None:
    value = id_with_x_check()
    masked, report = mask(f"证件号码{value}。")
    assert value not in masked and value[:-1] not in masked
    assert re.search(re.escape(value[:3]) + r"\*+" + re.escape(value[-4:]), masked)
    assert report.counts["id_card"] == 1


def test_legacy_15_digit_id_is_masked() -> None:
    value = "110105880315231"
    assert not luhn_valid(value)
    masked, report = mask(f"老身份证{value}还能用吗")
    assert_masked(masked, value, 3, 4)
    assert report.counts["id_card"] == 1


def test_legacy_15_digit_number_passing_luhn_is_still_masked() -> None:
    value = luhn_complete("11010588031523")
    masked, report = mask(f"身份证{value}办理")
    assert value not in masked
    assert report.total == 1


@pytest.mark.parametrize("card", [CARD16, CARD19], ids=["16-digit", "19-digit"])
def test_luhn_valid_card_is_masked_keeping_first_and_last_four(card: str) -> None:
    masked, report = mask(f"我的卡号{card}被冻结了")
    assert_masked(masked, card, 4, 4)
    assert masked == f"我的卡号{card[:4]}{'*' * (len(card) - 8)}{card[-4:]}被冻结了"
    assert report.counts["bank_card"] == 1


def test_card_written_with_spaces_is_masked() -> None:
    masked, report = mask("卡号 6217 0023 4000 1234 568 昨天被盗刷")
    for group in ("0023", "4000", "1234 568", CARD19):
        assert group not in masked
    assert "6217" + "*" * 11 + "4568" in masked
    assert report.counts["bank_card"] == 1


def test_same_card_masks_to_the_same_string_in_different_texts() -> None:
    a, _ = mask(f"卡号{CARD16}被盗刷")
    b, _ = mask(f"请冻结 {CARD16} 这张卡")
    token = CARD16[:4] + "*" * 8 + CARD16[-4:]
    assert token in a and token in b


@pytest.mark.parametrize(
    "text",
    ["13812345678", "138 1234 5678", "138-1234-5678", "+86-139-0012-3456", "+86 13900123456"],
)
def test_mobile_numbers_are_masked(text: str) -> None:
    digits = re.sub(r"\D", "", text)[-11:]
    masked, report = mask(f"联系电话{text}，尽快回电")
    assert digits not in masked
    assert digits[3:7] not in masked
    assert f"{digits[:3]}****{digits[-4:]}" in masked
    assert report.counts["mobile"] == 1


def test_full_width_mobile_is_masked_after_normalize() -> None:
    masked, report = mask(normalize("我的手机１３７００１３８０００一直收不到短信"))
    assert "13700138000" not in masked
    assert "137****8000" in masked
    assert report.counts["mobile"] == 1


def test_email_is_masked_keeping_domain() -> None:
    masked, report = mask("请把回单发到 zhang.san88@example.com 谢谢")
    assert "zhang.san88" not in masked
    assert "z***@example.com" in masked
    assert report.counts["email"] == 1


@pytest.mark.parametrize(
    ("text", "secret"),
    [("验证码是482913，我没有告诉别人", "482913"), ("对方问我密码是123456对不对", "123456")],
)
def test_verification_codes_and_passwords_are_masked(text: str, secret: str) -> None:
    masked, report = mask(text)
    assert secret not in masked
    assert "******" in masked
    assert report.counts["secret"] == 1


def test_name_next_to_account_context_is_masked() -> None:
    masked, report = mask(f"我叫孙建华，卡号{CARD16}被扣了两次年费")
    assert "孙建华" not in masked and "建华" not in masked
    assert "我叫孙**，" in masked
    assert CARD16 not in masked
    assert report.counts["name"] == 1 and report.counts["bank_card"] == 1


def test_mask_report_counts_each_kind_and_total() -> None:
    text = (
        f"我叫孙建华，身份证{ID_VALID}，卡号{CARD16}，手机13812345678，"
        "备用 139 0012 3456，邮箱 a.b@example.com，验证码是482913"
    )
    masked, report = mask(text)
    assert dict(report.counts) == {
        "name": 1,
        "id_card": 1,
        "bank_card": 1,
        "mobile": 2,
        "email": 1,
        "secret": 1,
    }
    assert report.total == 7
    for raw in ("孙建华", ID_VALID, CARD16, "13812345678", "139 0012 3456", "a.b@", "482913"):
        assert raw not in masked
    assert mask_text(text) == masked


# ── masking: what must be left alone ──────────────────────────────────────────


def test_16_digit_order_number_failing_luhn_is_not_masked() -> None:
    order = luhn_broken("202609031021004")
    assert len(order) == 16 and not luhn_valid(order)
    text = f"订单号{order}的退款还没到账"
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


@pytest.mark.parametrize(
    "text",
    [
        "转账5000元没有到账",
        "2026-09-03 10:21:00 收到扣款短信",
        "9月3日扣了2笔，每笔199.00元",
        "客服工号10086说三个工作日处理",
    ],
)
def test_amounts_dates_and_short_numbers_are_not_masked(text: str) -> None:
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


def test_18_digit_number_with_wrong_id_checksum_and_failing_luhn_is_not_masked() -> None:
    wrong = next(
        ID_VALID[:17] + d
        for d in "0123456789"
        if not id18_valid(ID_VALID[:17] + d) and not luhn_valid(ID_VALID[:17] + d)
    )
    text = f"流水号{wrong}"
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0
