"""Personal names after a cue (户名, 客户, name:) or before an honorific (先生, 女士), Chinese or English."""

from __future__ import annotations

import re

from tools.pii.found import Found
from tools.pii.spans import replace_spans, stars, word_start

# Common Chinese surnames: a name is only taken as a name when it starts with one, so verbs after
# "客户" ("客户来电", "客户反映") are never mistaken for names.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝"
)
_COMPOUND_SURNAMES = (
    "欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|令狐|长孙|宇文|司徒|夏侯|端木|独孤|南宫|西门"
)
_SURNAME = rf"(?:{_COMPOUND_SURNAMES}|[{_SURNAMES}])"
# Characters that (almost) never occur in a given name but often follow one: a name stops there.
_NOT_GIVEN = (
    "的了在于来去说称反投到卡账向给是与及等把被将已也都就要不没用办转汇号户这那他她它们您你我请帮让对从因"
    "所但而还再又很太最过款钱额次年日昨今前后上下近当每些个位条笔份件项并或即且便该此虽某客服网点行报先"
)
# A given-name character never starts an honorific: "曾先生", "王小姐" are a surname and a title.
_GIVEN = rf"(?:(?!先生|女士|小姐)(?![{_NOT_GIVEN}])[\u4e00-\u9fff])"
# After the bare cues (客户, 本人, ...) a name must also be made of common given-name characters and be
# followed by punctuation or a reporting verb: "客户方面反映" and "客户向客服投诉" are not names.
_COMMON_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文辉力永健世广志义兴良海山仁波宁贵福生龙元全胜"
    "学祥才发武新利清飞彬富顺信子昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚"
    "庆民友裕河哲江浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以家致树炎德时泰盛雄琛钧冠"
    "策腾楠榕风航弘慧巧美淑惠珠翠雅芝玉萍红娥玲芬燕彩春菊凤洁梅琳素云莲真环雪荣爱妹香月莺媛瑞凡佳嘉琼勤珍"
    "贞莉娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺"
    "咏卿聪澜纯毓悦昭冰爽琬茗羽希欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可舒影荔小一宇轩涵梓睿彤萱诗雨琪"
    "铭昊熙阳鑫俊峰帆凯毅雷洪金银铁根柱宝财喜寿东南西北夏冬立正道鹰蕾蓝莹婧昕玥桐兵卓坤奕妮娇孝宸岳川庭廷"
    "忠旻晖晗曦柏楷洲澄瀚灿炜烨煜璇皓礼芮萌钰锋霖驰骁骏鸿"
)
# What may follow a name after a bare cue: not a Chinese character, an honorific, or the first
# character of the verbs, adverbs and time words that start the rest of a complaint sentence
# ("客户李娜今天来电", "客户张伟已经报警", "客户王芳对此不满").
_NAME_TERMINATOR = (
    r"(?=[^\u4e00-\u9fff]|$|先生|女士|小姐|夫妇|一家|"
    r"[今昨前上下早晚当近多再又也都已曾一现希认质通情需对要想说去到在于因由从把被将和与及等向给跟同称表反投"
    r"来致打拨咨询申办持的是本很非十特感担怀发收接提不没未仍还只就才刚自亲所使用登买购存取转汇贷开挂补看查听"
    r"遇觉告报举重为急强坚拒无态电名卡账代])"
)
_WEAK_CUES = frozenset({"客户", "本人", "消费者", "家属", "用户"})
_SURNAME_FIRST = _SURNAMES + "".join(c[0] for c in _COMPOUND_SURNAMES.split("|"))
# The cue and its connector; the regex starts with plain words so the engine can skip text quickly.
_NAME_CUE = re.compile(
    r"(?P<cue>账户名称|账户名|客户名称|客户姓名|客户名|户名|姓名|持卡人|开户人|收款人|付款人|户主|联系人|转账给|汇款给|"
    r"转给|汇给|我叫|名叫|名字叫|名字是|投诉人|申请人|借款人|收件人|投保人|被保险人|客户|本人|消费者|家属|用户)"
    r"\s*[\"'“”]?\s*(?:是|为|叫|:|=)?\s*[\"'“”]?\s*"
    rf"(?=[{_SURNAME_FIRST}])"
)
_COMMON_GIVEN_CHAR = rf"(?:(?!先生|女士|小姐)[{_COMMON_GIVEN}])"
_WEAK_NAME = re.compile(rf"{_SURNAME}{_COMMON_GIVEN_CHAR}{{1,2}}{_NAME_TERMINATOR}")
# Surnames that are also everyday words after "客户" (客户向柜员反映, 客户高峰期, 客户方面表示); with
# them a bare cue only takes common given-name characters.
_WORDLIKE_SURNAMES = "向于和时应常全连单查包关成安方明高严商房费万钱齐管尚游项解师麻司宁车路金文温华江吉曾申"
# A rarer given name ("客户周平珩来电") after a bare cue: any surname but the word-like ones, and only
# before punctuation, an honorific or a reporting verb.
_WEAK_RARE_NAME = re.compile(
    rf"(?:{_COMPOUND_SURNAMES}|(?![{_WORDLIKE_SURNAMES}])[{_SURNAMES}]){_GIVEN}{{1,2}}"
    r"(?=[^\u4e00-\u9fff]|$|先生|女士|小姐|来电|致电|反映|称|表示|投诉|反馈|说|要求|询问|咨询|多次|已经|今天|"
    r"昨天|对此|通过|代为|今年|本人)"
)
_STRONG_NAME = re.compile(rf"{_SURNAME}{_GIVEN}{{1,2}}")
# Words that start with a surname character and often follow these cues; never names.
_NOT_NAMES = frozenset(
    """商户 商家 商场 方面 方式 方法 于是 曾经 高度 高兴 严重 全家 全部 全额 明确 明显 明天 常常 金额 金融
    连续 费用 单位 成功 关于 关注 关心 查询 包括 应该 应当 经理 时间 时候 管理 安装 安全 安心 房东 房贷
    车辆 车主 简单 陆续 万元 万一 钱款 任何 宁愿 宁可 马上 解释 解决 程序 程度 申请 余额 余款 师傅 管家
    尚未 黄金 麻烦 游戏 项目 司法 和解 时效 双方 温和 齐全 卫生 江西 吉林 宁夏 华东 华南 华北 华西 东南 西南
    高峰 高端 高速 金卡 金条 白金 黄金卡 钟表 文明 文件 明细 明白""".split()
)
_NAME_EN_CUES = ("name", "holder", "payee", "beneficiary", "recipient")
# Matched against the lower-cased text; the name itself is then read case-sensitively.
_NAME_EN_CUE = re.compile(
    r"(?:my name is|my name's|(?:account|card)[ -]?holder(?:'s)?(?: name)?|payee(?: name)?"
    r"|beneficiary(?: name)?|recipient(?: name)?"
    r"|(?:account|customer|full|user)[ _]?name(?=[\"']?\s*(?::|=|is\s))|name(?=[\"']?\s*(?::|=|is\s)))"
    r"[\"']?\s*(?:is\s|:|=)?\s*[\"']?"
)
_NAME_EN_VALUE = re.compile(rf"[A-Z][A-Za-z'-]+(?: [A-Z][A-Za-z'-]+){{0,2}}|{_SURNAME}{_GIVEN}{{1,2}}")
_HONORIFIC = re.compile("先生|女士|小姐")
_HONORED_NAME = re.compile(
    rf"(?:{_COMPOUND_SURNAMES}|[{_SURNAMES}]){_COMMON_GIVEN_CHAR}{{1,2}}"
    rf"|(?:{_COMPOUND_SURNAMES}|(?![{_WORDLIKE_SURNAMES}])[{_SURNAMES}]){_GIVEN}{{1,2}}"
)


def _mask_name(value: str) -> str:
    if value[:1].isascii():
        return " ".join(w[0] + stars(len(w) - 1) for w in value.split(" "))
    return value[0] + stars(len(value) - 1)


def _chinese_name_after(text: str, cue: re.Match[str]) -> str | None:
    """The name right after a cue, or None: bare cues (客户, 本人) need a common given name followed by
    the start of the rest of a sentence, or a rarer one followed by punctuation or a reporting verb;
    account cues (户名, 收款人) take any two or three characters."""
    weak = cue.group("cue") in _WEAK_CUES
    if weak:
        found = _WEAK_NAME.match(text, cue.end()) or _WEAK_RARE_NAME.match(text, cue.end())
    else:
        found = _STRONG_NAME.match(text, cue.end())
    if found is None:
        return None
    value = found.group(0)
    # After a bare cue a common word is likelier than a name ("客户黄金卡"); after an account cue a
    # three-character name that starts like a word is still a name ("转账给黄金建").
    return None if value in _NOT_NAMES or (weak and value[:2] in _NOT_NAMES) else value


def _mask_chinese_names(text: str, found: Found) -> str:
    spans: list[tuple[int, int, str]] = []
    for cue in _NAME_CUE.finditer(text):
        if spans and cue.start() < spans[-1][1]:
            continue
        value = _chinese_name_after(text, cue)
        if value is not None:
            spans.append((cue.end(), cue.end() + len(value), found.add("name", _mask_name(value), value)))
    return replace_spans(text, spans)


def _mask_english_names(text: str, found: Found) -> str:
    lowered = text.lower()
    if len(lowered) != len(text) or not any(cue in lowered for cue in _NAME_EN_CUES):
        return text
    spans = []
    for cue in _NAME_EN_CUE.finditer(lowered):
        name = _NAME_EN_VALUE.match(text, cue.end())
        if name is None or not word_start(lowered, cue.start()) or name.group(0) in _NOT_NAMES:
            continue
        value = name.group(0)
        spans.append((name.start(), name.end(), found.add("name", _mask_name(value), value)))
    return replace_spans(text, spans)


def _mask_honored_names(text: str, found: Found) -> str:
    """ "李建国先生", "王芳女士": a full name before an honorific, without any other cue."""
    spans: list[tuple[int, int, str]] = []
    for m in _HONORIFIC.finditer(text):
        end = m.start()
        for size in (4, 3, 2):
            start = end - size
            if start < 0 or (spans and start < spans[-1][1]):
                continue
            value = text[start:end]
            if size == 4 and not value.startswith(tuple(_COMPOUND_SURNAMES.split("|"))):
                continue
            if _HONORED_NAME.fullmatch(value) and value not in _NOT_NAMES:
                spans.append((start, end, found.add("name", _mask_name(value), value)))
                break
    return replace_spans(text, spans)


def mask_names(text: str, found: Found) -> str:
    """Names after a Chinese cue, then before an honorific, then after an English cue."""
    text = _mask_chinese_names(text, found)
    if "先生" in text or "女士" in text or "小姐" in text:
        text = _mask_honored_names(text, found)
    return _mask_english_names(text, found)
