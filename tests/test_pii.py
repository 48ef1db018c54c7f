"""Personal-data masking (tools/pii/) and text normalisation (tools/text.py)."""

from __future__ import annotations

import re

import pytest

from tests.privacy_helpers import with_id_check, with_luhn
from tools.pii import id18_valid, luhn_valid, mask, mask_text
from tools.text import normalize

# Valid numbers to plant, shared with the leak tests (their MOD 11-2 sum is written apart from tools/pii/).
id18 = with_id_check
luhn_complete = with_luhn


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


# ── hardened masking: every writing the issue lists ───────────────────────────


def residence_permit(area: str) -> str:
    """A Hong Kong/Macau/Taiwan residence permit number (18 digits, MOD 11-2) for ``area``."""
    return id18(f"{area}19900101123")


@pytest.mark.parametrize("area", ["810000", "820000", "830000"])
def test_residence_permits_are_masked_as_ids(area: str) -> None:
    value = residence_permit(area)
    masked, report = mask(f"港澳台居民居住证号码{value}办卡被拒")
    assert_masked(masked, value, 3, 4)
    assert report.counts["id_card"] == 1


@pytest.mark.parametrize(
    "written",
    [f"{ID_VALID[:6]} {ID_VALID[6:14]} {ID_VALID[14:]}", f"{ID_VALID[:6]}-{ID_VALID[6:14]}-{ID_VALID[14:]}"],
    ids=["spaced", "hyphens"],
)
def test_id_written_in_groups_is_masked(written: str) -> None:
    masked, _ = mask(f"身份证{written}，请核实")
    assert f"{ID_VALID[:3]}{'*' * 11}{ID_VALID[-4:]}" in masked
    assert ID_VALID[6:14] not in masked


def test_lower_case_x_check_digit_masks_like_upper_case() -> None:
    value = id_with_x_check()
    upper, _ = mask(f"证件{value}")
    lower, _ = mask(f"证件{value[:-1]}x")
    assert upper == lower
    assert value[:-1] not in lower


def test_id_glued_to_an_english_label_is_masked() -> None:
    masked, _ = mask(f"ID{ID_VALID} / ID: {ID_VALID}")
    assert ID_VALID not in masked
    assert masked.count(f"{ID_VALID[:3]}{'*' * 11}{ID_VALID[-4:]}") == 2


CARD17 = luhn_complete("6228480012345678")
CARD18 = luhn_complete("62284800123456789")


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        (CARD17, CARD17),
        (CARD18, CARD18),
        ("6222-0212-3456-7894", "6222021234567894"),
        ("6222 0212\n3456 7894", "6222021234567894"),
        ("6217002340\n001234568", CARD19),
        ("621700 2340001234568", CARD19),
        ("6217 0023 4000 1234 568", CARD19),
    ],
    ids=[
        "17-digit",
        "18-digit",
        "hyphens",
        "line-break-between-groups",
        "line-break-mid-number",
        "6-13",
        "4x4+3",
    ],
)
def test_card_writings_are_masked_to_one_stable_token(written: str, digits: str) -> None:
    assert luhn_valid(digits)
    masked, report = mask(f"卡号{written}被盗刷")
    assert digits not in re.sub(r"\D", "", masked)
    assert f"{digits[:4]}{'*' * (len(digits) - 8)}{digits[-4:]}" in masked
    assert report.counts["bank_card"] == 1


def test_card_before_yuandan_is_still_a_card_not_an_amount() -> None:
    masked, _ = mask(f"卡号{CARD16}元旦那天被盗刷")
    assert CARD16 not in masked and "元旦" in masked


MOBILE_WRITINGS = [
    "13700138000",
    "137 0013 8000",
    "137-0013-8000",
    "+86 137 0013 8000",
    "+86-13700138000",
    "(+86)13700138000",
    "(+86) 137-0013-8000",
    "0086 13700138000",
    "0086-13700138000",
    "8613700138000",
    "86-137-0013-8000",
    "+8613700138000",
    "１３７ ００１３ ８０００",
    "＋８６－１３７００１３８０００",
]


@pytest.mark.parametrize("written", MOBILE_WRITINGS)
@pytest.mark.parametrize("normalised", [True, False], ids=["normalised", "raw"])
def test_every_mobile_writing_masks_to_the_same_token(written: str, normalised: bool) -> None:
    text = f"客户手机{written}，微信同号"
    masked, report = mask(normalize(text) if normalised else text)
    assert "137****8000" in masked
    assert "13700138000" not in re.sub(r"\D", "", masked)
    assert "0013" not in masked and "００１３" not in masked
    assert report.counts == {"mobile": 1}


@pytest.mark.parametrize(
    ("written", "token"),
    [
        ("+852 9123 4567", "+852 ****4567"),
        ("+853 6612 3456", "+853 ****3456"),
        ("+886 912 345 678", "+886 *****5678"),
    ],
)
def test_hong_kong_macau_taiwan_mobiles_are_masked(written: str, token: str) -> None:
    masked, report = mask(f"境外号码{written}，请回电")
    assert token in masked
    assert report.counts["mobile"] == 1


@pytest.mark.parametrize(
    ("written", "token"),
    [
        ("010-12345678", "010-******78"),
        ("(010)12345678", "010-******78"),
        (normalize("（0755）1234－5678"), "0755-******78"),
        ("（0755）1234－5678", "0755-******78"),
        ("0755 12345678", "0755-******78"),
        ("0755-8321 1234", "0755-******34"),
        ("(021) 6123 4567", "021-******67"),
        ("01012345678", "010-******78"),
        ("075512345678", "0755-******78"),
        ("0571-8765432", "0571-*****32"),
    ],
)
def test_landline_writings_are_masked_keeping_the_area_code(written: str, token: str) -> None:
    masked, report = mask(f"办公电话{written}，工作日可联系")
    assert token in masked
    assert report.counts["landline"] == 1


@pytest.mark.parametrize("ext", ["-801", "转801"])
def test_landline_extension_is_kept_after_the_masked_number(ext: str) -> None:
    masked, report = mask(f"座机010-12345678{ext}找我")
    assert masked == f"座机010-******78{ext}找我"
    assert report.counts["landline"] == 1


@pytest.mark.parametrize(
    ("text", "token", "raw"),
    [
        ("邮箱zhang.san88@example.com谢谢", "z***@example.com谢谢", "zhang.san88"),
        ("发到13700138000@qq.com", "1***@qq.com", "13700138000"),
        ("Mail me: li_na@bank.com.cn.", "l***@bank.com.cn.", "li_na@"),
    ],
    ids=["glued-chinese", "qq-number", "sentence-end"],
)
def test_email_writings(text: str, token: str, raw: str) -> None:
    masked, report = mask(text)
    assert token in masked and raw not in masked
    assert report.counts == {"email": 1}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("验证码 482913", "482913"),
        ("短信验证码：482913", "482913"),
        ("验证码为：482913，请勿泄露", "482913"),
        ("验证码【482913】", "482913"),
        ("动态密码736201", "736201"),
        ("交易密码123456", "123456"),
        ("查询密码是246810", "246810"),
        ("取款密码为135790", "135790"),
        ("支付密码:135790", "135790"),
        ("密码是abc123", "abc123"),
        ("密码是Abc@12345!", "Abc@12345"),
        ("口令zx9981", "zx9981"),
        ("OTP 551234", "551234"),
        ("my password is abc123.", "abc123"),
        ("Password: hunter", "hunter"),
        ("PIN: 1234", "1234"),
        ("verification code 482913", "482913"),
        ("the code is 482913", "482913"),
        ('{"otp": "551234"}', "551234"),
        ("CVV 123", "123"),
    ],
)
def test_secret_writings_are_masked(text: str, secret: str) -> None:
    masked, report = mask(normalize(text))
    assert secret not in masked
    assert "******" in masked
    assert report.counts == {"secret": 1}


@pytest.mark.parametrize(
    "text",
    [
        "验证码收不到",
        "验证码60秒后才到",
        "验证码2024年就开始收不到",
        "密码错误三次被锁",
        "my password is wrong",
        "the code is not working",
        "error code: 1001",
        "PIN is blocked",
    ],
)
def test_secret_cues_without_a_secret_are_left_alone(text: str) -> None:
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


@pytest.mark.parametrize(
    ("text", "name", "token"),
    [
        ("户名：张三丰，", "张三丰", "张**"),
        ("户名张三丰的账户", "张三丰", "张**"),
        ("姓名:王芳", "王芳", "王*"),
        ("持卡人欧阳娜娜本人", "欧阳娜娜", "欧***"),
        ("开户人是李建国,", "李建国", "李**"),
        ("收款人为李娜,金额5000元", "李娜", "李*"),
        ("付款人：赵敏，", "赵敏", "赵*"),
        ("户主刘洋。", "刘洋", "刘*"),
        ("联系人陈杰,电话打不通", "陈杰", "陈*"),
        ("转账给王建国5000元", "王建国", "王**"),
        ("汇款给周敏2万元", "周敏", "周*"),
        ("账户名称为吴晓燕", "吴晓燕", "吴**"),
        ("客户孙建华来电", "孙建华", "孙**"),
        ("本人蔡莉兵,", "蔡莉兵", "蔡**"),
        ('"姓名": "郑浩"', "郑浩", "郑*"),
        ("李建国先生来电", "李建国", "李**"),
        ("my name is Zhang Wei.", "Zhang Wei", "Z**** W**"),
        ("account holder: John Smith", "John Smith", "J*** S****"),
        ("name: Li Na", "Li Na", "L* N*"),
        ('{"name": "Li Na"}', "Li Na", "L* N*"),
    ],
)
def test_names_next_to_account_context_are_masked(text: str, name: str, token: str) -> None:
    masked, report = mask(normalize(text))
    assert name not in masked
    assert token in masked
    assert report.counts["name"] == 1


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("客户李娜今天来电", "客户李*今天来电"),
        ("客户张伟已经报警", "客户张*已经报警"),
        ("客户王芳对此不满", "客户王*对此不满"),
        ("本人王建国今年60岁", "本人王**今年60岁"),
        ("用户王磊说APP闪退", "用户王*说APP闪退"),
        ("家属李秀英代为投诉", "家属李**代为投诉"),
        ("客户周平珩来电反映", "客户周**来电反映"),
        ("客户赵湛,要求退款", "客户赵*,要求退款"),
        ("马杰晟先生来电", "马**先生来电"),
    ],
    ids=[
        "today",
        "already",
        "about-this",
        "age",
        "user",
        "family",
        "rare-given",
        "rare-given-comma",
        "honorific",
    ],
)
def test_names_after_bare_cues_in_running_sentences(text: str, token: str) -> None:
    assert mask(text)[0] == token


@pytest.mark.parametrize(
    "text",
    [
        "客户曾先生来电",
        "客户王小姐称",
        "客户申报材料",
        "客户曾表示,不接受",
        "客户向柜员反映",
        "客户高兴,",
        "客户黄金卡被降级",
    ],
)
def test_titles_and_words_after_bare_cues_are_not_names(text: str) -> None:
    assert mask(text)[0] == text


def test_an_account_cue_takes_a_name_that_starts_like_a_word() -> None:
    assert mask("转账给黄金建5000元")[0] == "转账给黄**5000元"


def test_a_name_found_by_its_cue_is_masked_where_it_recurs() -> None:
    masked, report = mask("客户张伟来电称卡被盗刷，张伟要求退款。张伟\n已报警")
    assert "张伟" not in masked
    assert masked.count("张*") == 3
    assert report.counts["name"] == 3


@pytest.mark.parametrize(
    "text",
    [
        "客户来电反映手机银行闪退",
        "客户反映网点排队太久",
        "客户方面表示理解",
        "客户向客服投诉三次",
        "客户为商户,反映结算款未到账",
        "收款人为商户,不是个人",
        "客户高度关注此事",
        "客户于昨日来电",
        "客户曾多次来电",
        "客户经理王先生说会回电",
        "客户王某来电",
        "持卡人本人到场办理",
        "转账给对方后才发现被骗",
        "联系人电话打不通",
        "The account holder is not me",
        "name of the branch",
    ],
)
def test_cue_words_followed_by_ordinary_words_are_not_names(text: str) -> None:
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


@pytest.mark.parametrize(
    ("text", "value", "token"),
    [
        ("回乡证H12345678过期了", "H12345678", "H******78"),
        ("港澳居民来往内地通行证M1234567890", "M1234567890", "M********90"),
        ("往来港澳通行证C12345678", "C12345678", "C******78"),
        ("往来港澳通行证号码CA1234567", "CA1234567", "CA*****67"),
        ("通行证:CA1234567", "CA1234567", "CA*****67"),
        ("台胞证12345678", "12345678", "******78"),
        ("台湾居民来往大陆通行证号码:\n87654321", "87654321", "******21"),
        ("台胞证号12345678(B)", "12345678(B)", "******78(B)"),
        ("Taiwan ID A123456789", "A123456789", "A*******89"),
        ("MTP permit no. 12345678", "12345678", "******78"),
    ],
)
def test_travel_permits_are_masked(text: str, value: str, token: str) -> None:
    masked, report = mask(normalize(text))
    assert value not in masked
    assert token in masked
    assert report.counts["travel_permit"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "工单号C12345678",
        "型号M12345678的POS机坏了",
        "身份证明A123456788",
        "航班CA1234延误",
        "订单12345678已取消",
    ],
    ids=["bare-ticket-id", "model-number", "tw-checksum-fails", "flight", "8-digit-without-permit-cue"],
)
def test_permit_shaped_codes_without_document_context_are_kept(text: str) -> None:
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


# ── hardened masking: what must be left alone ─────────────────────────────────


def order_failing_both(prefix: str, length: int) -> str:
    """An order number of ``length`` digits starting with ``prefix`` that fails Luhn and MOD 11-2."""
    for tail in range(10 ** (length - len(prefix))):
        value = f"{prefix}{tail:0{length - len(prefix)}d}"
        if not luhn_valid(value) and not id18_valid(value):
            return value
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "value",
    [
        "202410151234567",
        "916417740302548",
        order_failing_both("20241015123456", 16),
        order_failing_both("622202123456789", 16),
        order_failing_both("62170023400012345", 18),
        order_failing_both("11010519880315231", 18),
        order_failing_both("955880123456789012", 19),
        "2024 1015 1234 5678",
    ],
    ids=[
        "15-date",
        "15-nine",
        "16-date",
        "16-card-bin",
        "18-card-bin",
        "18-id-shaped",
        "19-card-bin",
        "16-spaced",
    ],
)
def test_order_numbers_failing_the_checksums_are_kept(value: str) -> None:
    for text in (f"订单号{value}的退款还没到账", f"流水号:{value},请核实", f"Reference {value} was charged."):
        masked, report = mask(text)
        assert masked == text
        assert report.total == 0


def test_a_grouped_reference_is_not_cut_into_a_card_and_a_remainder() -> None:
    card = luhn_complete("625901434223481")
    ref = next(card + f"{n:02d}" for n in range(100) if not luhn_valid(card + f"{n:02d}"))
    written = " ".join(ref[i : i + 4] for i in range(0, len(ref), 4))
    text = f"流水号{written}请核实"
    assert mask(text)[0] == text


@pytest.mark.parametrize("tail", [" 5000元", " 3次", " 2024年"])
def test_a_grouped_card_followed_by_an_amount_or_count_is_still_masked(tail: str) -> None:
    masked, _ = mask(f"卡号6222 0212 3456 7894{tail}被盗刷")
    assert masked == f"卡号6222********7894{tail}被盗刷"


def test_a_grouped_reference_is_not_read_as_a_landline() -> None:
    text = "于9558 8040 0771 6263 900扣款"
    assert mask(text)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        "金额1,380,000.00元",
        "手续费13800元",
        "转账¥5000",
        "转账¥13800138000",
        "余额13800138000.00元",
        "人民币138001380元",
        "2024-10-15 12:30:45 扣款",
        "流水20241015123045",
        "时间戳1697354400",
        "时间戳1697354400000",
        "2024-10-15T12:30:45+08:00",
        "2024年10月15日",
        "2024/10/15 12:30",
        "客服电话400-820-8888,95588也打不通,10086",
        "产品代码ZY13800138000",
        "SKU-2024-0815",
        "版本v6.2.1",
        "VOC-2609-0001",
        "CUST157030",
        "C-001",
    ],
)
def test_amounts_timestamps_codes_and_ids_are_kept(text: str) -> None:
    masked, report = mask(text)
    assert masked == text
    assert report.total == 0


def test_raw_full_width_text_keeps_its_own_punctuation() -> None:
    masked, report = mask("手机１３７００１３８０００，（测试）谢谢！")
    assert masked == "手机137****8000，（测试）谢谢！"
    assert report.counts == {"mobile": 1}


def test_masks_are_stable_across_writings_and_texts() -> None:
    writings = [
        CARD16,
        " ".join(CARD16[i : i + 4] for i in range(0, 16, 4)),
        "-".join([CARD16[:8], CARD16[8:]]),
    ]
    tokens = {re.search(r"\d{4}\*+\d{4}", mask(f"卡{w}被盗刷")[0]).group(0) for w in writings}  # type: ignore[union-attr]
    assert tokens == {f"{CARD16[:4]}********{CARD16[-4:]}"}


def test_an_echoed_code_does_not_reach_into_another_mask() -> None:
    masked, report = mask("验证码8000，手机13700138000，再说一遍8000")
    assert masked == "验证码******，手机137****8000，再说一遍******"
    assert report.counts == {"secret": 2, "mobile": 1}


def test_report_never_holds_raw_values() -> None:
    _, report = mask(f"我叫孙建华，验证码482913，卡号{CARD16}")
    dumped = repr(report) + repr(vars(report))
    for raw in ("孙建华", "建华", "482913", CARD16):
        assert raw not in dumped
