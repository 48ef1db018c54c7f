"""Naming common problems: key phrases in the members' own words, the label beside them."""

from __future__ import annotations

import pytest

from agents.analysis.naming import NamingRules, key_phrases, load_naming, problem_name
from tools.clustering import load_stopwords
from tools.settings import REPO_DATA


@pytest.fixture(scope="module")
def naming() -> NamingRules:
    return load_naming(str(REPO_DATA / "naming.yaml"))


@pytest.fixture(scope="module")
def stop() -> frozenset[str]:
    return load_stopwords(str(REPO_DATA / "stopwords.txt"))


def test_a_phrase_members_share_beats_the_single_words_in_it(naming: NamingRules, stop) -> None:
    clusters = {
        0: [
            "尊敬的领导，手机银行升级后闪退，希望贵行尽快处理",
            "昨天升级后闪退，什么都点不了，希望贵行尽快处理",
            "手机银行又是升级后闪退，没法转账",
            "升级后闪退已经三天了",
        ],
        1: [
            "尊敬的领导，网点排队两个小时，希望贵行尽快处理",
            "周末网点排队太久，只开一个窗口",
            "网点排队一上午才办完",
            "网点排队的人太多了",
        ],
    }
    phrases = key_phrases(clusters, naming, stop)
    assert phrases[0][0] == "升级后闪退"
    assert phrases[1][0] == "网点排队"
    for found in phrases.values():
        assert not any("贵行" in p or "尊敬" in p or "尽快" in p for p in found), found


def test_redaction_marks_masks_and_batch_boilerplate_never_become_phrases(naming: NamingRules, stop) -> None:
    clusters = {
        0: [
            "On XX/XX/XXXX I found a XXXX account on my credit report. This is identity theft.",
            "XXXX XXXX opened an account in my name; identity theft, see police report. Thank you.",
            "My name is J*** S****, card 4111********1111. Identity theft accounts on my credit report.",
        ],
        1: [
            "The debt collector keeps calling me at work about XXXX. It is on my credit report.",
            "A debt collector keeps calling my family, {$1200.00}, on XX/XX/XXXX.",
            "This debt collector keeps calling even after my letter. My credit report shows it.",
        ],
    }
    phrases = key_phrases(clusters, naming, stop)
    assert "identity theft" in phrases[0]
    assert "debt collector keeps calling" in phrases[1]
    every = [p for found in phrases.values() for p in found]
    assert not any("xx" in p or "*" in p or "$" in p or "thank" in p for p in every), every
    # Both problems' members write it: it tells neither apart.
    assert "credit report" not in every


def test_a_name_is_a_short_phrase_with_the_label_beside_it(naming: NamingRules) -> None:
    assert problem_name(["升级后闪退", "转账"], "面客系统", naming) == "升级后闪退（面客系统）"
    assert problem_name(["闪退", "升级"], "面客系统", naming) == "闪退、升级（面客系统）"
    assert (
        problem_name(["identity theft", "police report"], "外部环境", naming) == "identity theft（外部环境）"
    )
    assert problem_name(["charges", "card issuer"], "外部环境", naming) == "charges, card issuer（外部环境）"
    assert problem_name([], "外部环境", naming) == "外部环境"
    long = problem_name(["信用卡境外盗刷后追款慢", "客服电话一直打不通"], "外部环境", naming)
    assert long == "信用卡境外盗刷后追款慢（外部环境）"
