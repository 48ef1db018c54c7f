"""Lexicon sentiment, intensity and emotion (tools/sentiment.py)."""

from __future__ import annotations

import pytest

from tools.knowledge import load_lexicon
from tools.sentiment import SentimentAnalyzer, SentimentScore
from tools.settings import REPO_DATA


@pytest.fixture(scope="module")
def analyzer() -> SentimentAnalyzer:
    return SentimentAnalyzer(load_lexicon(REPO_DATA / "lexicon.yaml"))


def score(analyzer: SentimentAnalyzer, text: str) -> SentimentScore:
    result = analyzer.score(text)
    assert -1 <= result.score <= 1 and 0 <= result.intensity <= 1
    return result


def test_clear_anger_is_negative_and_more_intense_than_a_mild_complaint(analyzer: SentimentAnalyzer) -> None:
    angry = score(analyzer, "你们这是欺骗消费者，我非常愤怒，太过分了，必须给个说法")
    mild = score(analyzer, "转账到账有点慢，有点麻烦")
    assert angry.polarity == "negative" and mild.polarity == "negative"
    assert angry.emotion == "anger"
    assert angry.score < mild.score
    assert angry.intensity > mild.intensity + 0.3


def test_praise_is_positive_satisfaction(analyzer: SentimentAnalyzer) -> None:
    s = score(analyzer, "客服小王非常耐心专业，问题很快解决了，感谢，点赞")
    assert s.polarity == "positive"
    assert s.score > 0.5
    assert s.emotion == "satisfaction"


def test_plain_question_is_neutral(analyzer: SentimentAnalyzer) -> None:
    s = score(analyzer, "请问信用卡的账单日是每月几号？")
    assert s.polarity == "neutral"
    assert s.emotion == "none"
    assert s.intensity == 0


@pytest.mark.parametrize("text", ["我对处理结果不满意", "我对处理结果很不满", "这个收费不合理"])
def test_words_carrying_their_own_negation_are_negative(analyzer: SentimentAnalyzer, text: str) -> None:
    assert score(analyzer, text).polarity == "negative"


@pytest.mark.parametrize("text", ["我对这个处理没有不满", "对处理结果没什么不满的", "没有不满意"])
def test_double_negation_is_not_negative(analyzer: SentimentAnalyzer, text: str) -> None:
    assert score(analyzer, text).polarity != "negative"


def test_negator_flips_praise_into_complaint(analyzer: SentimentAnalyzer) -> None:
    assert score(analyzer, "客服很满意").polarity == "positive"
    negated = score(analyzer, "客服一点也不热情，很不专业")
    assert negated.polarity == "negative"


def test_negated_complaint_word_is_not_negative(analyzer: SentimentAnalyzer) -> None:
    assert score(analyzer, "这次没有生气").polarity != "negative"


def test_intensifier_raises_intensity_and_downtoner_lowers_it(analyzer: SentimentAnalyzer) -> None:
    plain = score(analyzer, "我很生气")
    strong = score(analyzer, "我非常生气")
    weak = score(analyzer, "我有点生气")
    assert weak.intensity < plain.intensity < strong.intensity
    assert strong.score < plain.score < weak.score < 0


def test_double_exclamation_raises_intensity(analyzer: SentimentAnalyzer) -> None:
    plain = score(analyzer, "扣费不合理")
    loud = score(analyzer, "扣费不合理!!")
    full_width = score(analyzer, "扣费不合理！！")
    assert loud.intensity > plain.intensity
    assert full_width.intensity == loud.intensity
    assert loud.polarity == plain.polarity == "negative"


def test_anxiety_is_recognised(analyzer: SentimentAnalyzer) -> None:
    s = score(analyzer, "卡里的钱被转走了，我很着急也很担心，钱还能回来吗")
    assert s.polarity == "negative"
    assert s.emotion == "anxiety"


def test_matching_ignores_case_for_english(analyzer: SentimentAnalyzer) -> None:
    assert score(analyzer, "TERRIBLE service, I am ANGRY").polarity == "negative"
    assert score(analyzer, "Thanks, very helpful").polarity == "positive"
