"""Priorities a consumer-protection head would sign: money lost and conduct breaches come first."""

from __future__ import annotations

from datetime import date, datetime

from agents.analysis import Item, analyze_items
from agents.attribution import attribute
from agents.remediation import propose
from agents.tracing import trace
from tools.deps import Deps
from tools.money import amount_yuan
from tools.report import render
from tools.schema import BatchResult, Complaint, RunStats

# Customers who lost money, writing calmly.
CARD_FRAUD = [
    "您好，我的信用卡昨天出现三笔境外消费，合计8,600元，我本人一直在国内，卡也在身边，请协助处理。",
    "信用卡账单里有一笔2,350元的陌生交易，不是我本人消费，麻烦核实并退回。",
    "今天收到短信提示信用卡在外地刷了4,999元，我没有授权过这笔交易，请帮忙查一下。",
    "信用卡被盗刷了两笔，共计一万二，已经挂失了，希望银行尽快调查。",
    "我的信用卡在某购物网站被刷了3,200元，我从没在那里买过东西，请按否认交易处理。",
    "发现信用卡有一笔6,480元的不明消费，时间是凌晨，我当时在睡觉，请核查。",
]
# Customers furious about the app, losing nothing.
APP_RAGE = [
    "手机银行这个破APP太烂了！！！页面又卡又丑，点个按钮要等半天，气死我了，垃圾设计！",
    "你们的APP简直是垃圾！！改版以后什么都找不到，菜单乱七八糟，太恶心了，忍无可忍！",
    "手机银行的界面越改越难用，广告弹窗一个接一个，烦死了！！！愤怒！！！再这样我就销户！",
    "APP加载慢得要命，每次都转圈圈，我真的要崩溃了，你们的技术人员是干什么吃的！！",
    "新版手机银行难用到极点，字又小按钮又乱，我气得发抖，太差劲了！！！",
    "手机银行推送消息太多太烦人，关都关不掉，简直无法忍受！！气炸了！",
]
# Capital protection promised to elderly customers buying wealth products.
ELDERLY_MIS_SELLING = [
    "我父亲七十多岁了，理财经理跟他说这款产品保本保收益，结果现在亏了三万多。",
    "理财经理向我母亲推荐基金，承诺保本，说跟存款一样安全，老人家根本不懂，现在本金亏了一万。",
    "我今年68岁，支行理财经理说这个产品稳赚不赔、肯定保本，也没提示任何风险，现在亏了两万。",
    "我奶奶八十岁了，被理财经理说服买了理财，说保本还有高收益，根本没做风险评估，现在亏损严重。",
    "老年人去存钱，理财经理说有保本的高息理财，结果买的是高风险产品，亏了五万，也没告知风险。",
]


def _items(deps: Deps, groups: list[tuple[str, list[str], str]]) -> list[Item]:
    cs = [
        Complaint(
            id=f"{prefix}{i}",
            row=n + 1,
            text=t,
            period="2026-10",
            received_at=datetime(2026, 10, 15, 10, 0),
            customer_id=f"{prefix}-u{i}",
            customer_segment=segment,
        )
        for n, (prefix, i, t, segment) in enumerate(
            (prefix, i, t, segment) for prefix, texts, segment in groups for i, t in enumerate(texts)
        )
    ]
    vecs = deps.embedder.embed([c.text for c in cs])
    causes = trace(cs, vecs, deps)
    owners = attribute(cs, vecs, causes, deps)
    return [Item(c, a, r, v) for c, a, r, v in zip(cs, owners, causes, vecs, strict=True)]


def _problem_of(out, prefix: str):
    best = max(out.problems, key=lambda p: sum(m.startswith(prefix) for m in p.member_ids))
    assert sum(m.startswith(prefix) for m in best.member_ids) >= 3, "the group forms a problem"
    return best


def test_calm_card_fraud_ranks_above_an_angry_app_problem_of_similar_size(deps: Deps) -> None:
    items = _items(deps, [("fraud", CARD_FRAUD, "普通客户"), ("app", APP_RAGE, "普通客户")])
    out = analyze_items(items, deps)
    fraud, app = _problem_of(out, "fraud"), _problem_of(out, "app")
    assert fraud.id != app.id
    assert fraud.grade == "特急"
    assert fraud.rank < app.rank
    assert fraud.priority in ("P1", "P2")
    assert fraud.priority <= app.priority  # "P1" < "P2": at least as urgent
    # The ranking says why, naming the money at stake.
    assert fraud.ranking is not None and fraud.ranking.protected
    assert "资金损失" in fraud.ranking.reason and "¥" in fraud.ranking.reason
    money = next(f for f in fraud.ranking.factors if f.name == "severity.money")
    assert money.value > 0.5
    # The angry wording weighs less than the money lost.
    assert fraud.severity > app.severity
    # Every complaint in the fraud problem keeps the fund-safety floor.
    assert all(out.priorities[m] in ("P1", "P2") for m in fraud.member_ids)


def test_capital_protection_promised_to_elderly_customers_is_at_least_p2(deps: Deps) -> None:
    items = _items(deps, [("elder", ELDERLY_MIS_SELLING, "老年客户"), ("app", APP_RAGE, "普通客户")])
    out = analyze_items(items, deps)
    mis = _problem_of(out, "elder")
    assert mis.priority in ("P1", "P2")
    assert mis.ranking is not None and mis.ranking.protected
    assert "监管风险" in mis.ranking.reason and "承诺保本保收益" in mis.ranking.reason
    conduct = next(f for f in mis.ranking.factors if f.name == "severity.conduct")
    assert conduct.value >= 0.5
    assert mis.rank < _problem_of(out, "app").rank
    # The complaint-level priority follows the conduct floor too.
    assert all(out.priorities[m] in ("P1", "P2") for m in mis.member_ids if m.startswith("elder"))


def test_the_same_angry_words_without_money_or_breach_get_no_floor(deps: Deps) -> None:
    out = analyze_items(_items(deps, [("app", APP_RAGE, "普通客户")]), deps)
    app = _problem_of(out, "app")
    assert app.ranking is not None and not app.ranking.protected
    assert "资金损失" not in app.ranking.reason and "监管风险" not in app.ranking.reason


def test_ranking_explanation_is_in_both_reports(deps: Deps) -> None:
    items = _items(deps, [("fraud", CARD_FRAUD, "普通客户"), ("app", APP_RAGE, "普通客户")])
    out = analyze_items(items, deps)
    result = BatchResult(
        batch_id="b-test",
        results=[],
        problems=out.problems,
        errors=[],
        stats=RunStats(
            batch_id="b-test",
            started_at=datetime(2026, 10, 31),
            counts={"accepted": len(items)},
            timings={},
            engine_use={},
            versions={},
        ),
    )
    fraud = _problem_of(out, "fraud")
    assert fraud.ranking is not None
    for fmt in ("md", "html", "json"):
        assert fraud.ranking.reason.split("；")[0] in render(result, fmt), fmt


def test_card_fraud_measures_come_from_its_own_label(deps: Deps) -> None:
    items = _items(deps, [("fraud", CARD_FRAUD, "普通客户")])
    out = analyze_items(items, deps)
    fraud = _problem_of(out, "fraud")
    proposal = propose(fraud, out.centroids[fraud.id], date(2026, 10, 31), deps)
    own = deps.remediation.label_measures[fraud.l2]
    generic = [m for m in proposal.measures if m.basis]
    assert generic, "generic measures are listed with where they came from"
    assert all(m.basis == f"标签 {fraud.l2}" for m in generic)
    assert {m.text for m in generic} <= set(own.short + own.long)
    texts = " ".join(m.text for m in proposal.measures)
    assert "人工坐席" not in texts and "窗口" not in texts


def test_amounts_are_read_in_the_forms_customers_write_them() -> None:
    assert amount_yuan("共三万八") == 38000
    assert amount_yuan("一万二就没了") == 12000
    assert amount_yuan("合计8,600元") == 8600
    assert amount_yuan("spent SGD 4,300", {"sgd": 5.3}) == 4300 * 5.3
    assert amount_yuan("2026年9月3日，尾号0917，十几条短信，一块去网点") == 0


def test_every_label_has_measures_of_its_own(deps: Deps) -> None:
    missing = [lab for lab in deps.taxonomy.label_ids if lab not in deps.remediation.label_measures]
    assert not missing
    texts = [t for m in deps.remediation.label_measures.values() for t in m.short + m.long]
    assert len(texts) == len(set(texts)), "no two labels share a measure"
