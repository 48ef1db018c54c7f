"""Sentiment, intensity and emotion: a trained head on the complaint vector, with an editable lexicon.

The head (``tools/sentiment_head.py``, trained by ``voc train sentiment``) gives the polarity
score; the lexicon adds what a sentence vector misses or blurs: negation ("不满意" is not
praise, "没有不满" is not a complaint), intensifiers, "!!" emphasis and the emotion cues.
Without a head valid for the embedder in use, the lexicon alone scores, as before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tools.knowledge import Lexicon
from tools.sentiment_head import SentimentHead

_EXCLAIM = re.compile(r"[!！]{2,}|[?？]{2,}")

# Blend of the two signals into the score, and the band around zero that stays neutral.
# Chosen before the bank-comment evaluation set was scored, never fitted to it: the head's
# score is 2·P(positive) - 1, so the band keeps texts the head is less than 65/35 sure of
# neutral unless the lexicon tips them.
HEAD_WEIGHT = 0.8
LEXICON_WEIGHT = 0.6
NEUTRAL_BAND = 0.3
# The head learnt from reviews, which state opinions; on a question or request it leans by topic
# (a lost card, a fee) rather than by mood. Where the text asks and says nothing negative, its
# weight is halved: the largest weight (in steps of 0.1) that keeps 95% of the neutral bank texts
# in data/models/sentiment_calibration.txt (written for this, not the evaluation set) neutral.
QUESTION_HEAD_WEIGHT = 0.5
LEXICON_NEGATIVE = -0.12  # lexicon-only cut points, as before the head
LEXICON_POSITIVE = 0.2


@dataclass(frozen=True)
class SentimentScore:
    polarity: str
    score: float
    intensity: float
    emotion: str
    negative_mass: float
    positive_mass: float
    head_score: float | None = None  # 2·P(positive) - 1 from the head; None when the lexicon scored alone


@dataclass(frozen=True)
class _LexiconReading:
    score: float
    intensity: float
    neg: float
    pos: float


class SentimentAnalyzer:
    """Scores text with the head (when given the text's vector) and the lexicon.

    The lexicon's negators flip, intensifiers and downtoners scale, doubled "!!" adds emphasis.
    """

    def __init__(self, lexicon: Lexicon, head: SentimentHead | None = None) -> None:
        self.lex = lexicon
        self.head = head
        words = {w.lower(): ("neg", v) for w, v in lexicon.negative.items()}
        words.update({w.lower(): ("pos", v) for w, v in lexicon.positive.items()})
        self._words = words
        self._word_re = _alternation(words)
        self._negators = sorted((n.lower() for n in lexicon.negators), key=len, reverse=True)
        self._mods = {k.lower(): v for k, v in {**lexicon.intensifiers, **lexicon.downtoners}.items()}
        self._inquiry = _alternation({c.lower(): None for c in lexicon.inquiry})
        self._emotions = {
            e: _alternation({c.lower(): None for c in cues}) for e, cues in lexicon.emotions.items()
        }

    def score(self, text: str, vector: np.ndarray | None = None) -> SentimentScore:
        """Score ``text``; pass its embedding ``vector`` to use the head."""
        folded = text.lower()
        lex = self._read(folded, text)
        if self.head is None or vector is None:
            score, intensity, head_score = lex.score, lex.intensity, None
            polarity = _polarity(score, LEXICON_NEGATIVE, LEXICON_POSITIVE)
        else:
            head_score = float(2 * self.head.prob_positive(vector)[0] - 1)
            weight = HEAD_WEIGHT
            if lex.neg == 0 and self.asks(folded):
                weight *= QUESTION_HEAD_WEIGHT
            score = max(-1.0, min(1.0, weight * head_score + LEXICON_WEIGHT * lex.score))
            polarity = _polarity(score, -NEUTRAL_BAND, NEUTRAL_BAND)
            # Strength of feeling: the lexicon's words and emphasis, raised by how sure the blend
            # is. Praise counts for less (it is not what severity measures); neutral text keeps
            # only what its words carry, so a plain question stays at 0.
            if polarity == "negative":
                intensity = 1 - (1 - lex.intensity) * (1 - 0.8 * -score)
            elif polarity == "positive":
                intensity = 1 - (1 - lex.intensity) * (1 - 0.3 * score)
            else:
                intensity = lex.intensity
        emotion = self._emotion(folded, polarity)
        return SentimentScore(
            polarity,
            round(score, 3),
            round(min(1.0, intensity), 3),
            emotion,
            lex.neg,
            lex.pos,
            None if head_score is None else round(head_score, 3),
        )

    def asks(self, folded: str) -> bool:
        """Whether the (lower-cased) text is a question or a request."""
        return folded.rstrip().endswith(("?", "？", "吗")) or bool(self._inquiry.search(folded))

    def _read(self, folded: str, text: str) -> _LexiconReading:
        neg = pos = 0.0
        for m in self._word_re.finditer(folded):
            polarity, weight = self._words[m.group(0)]
            window = self._window(folded, m)
            factor = 1.0
            for mod, mult in self._mods.items():
                if mod in window:
                    factor = max(factor, mult) if mult >= 1 else min(factor, mult)
            flipped = self._negated(window, m.group(0))
            value = weight * factor
            if (polarity == "neg") != flipped:
                neg += value
            else:
                pos += value * (0.5 if flipped else 1.0)  # "不满意" is not praise, "不差" is mild
        emphasis = 0.15 * len(_EXCLAIM.findall(text))
        score = math.tanh((pos - neg) / 1.5)
        intensity = min(1.0, 1 - math.exp(-(neg + pos * 0.3) * 0.9) + emphasis)
        return _LexiconReading(score, intensity, neg, pos)

    def _window(self, folded: str, m: re.Match[str]) -> str:
        return folded[max(0, m.start() - self.lex.negation_window - 2) : m.start()]

    def _negated(self, window: str, word: str) -> bool:
        if any(word.startswith(n) for n in self._negators):
            return False
        tail = window[-3:]
        return any(n in tail for n in self._negators)

    def _emotion(self, folded: str, polarity: str) -> str:
        # Praise reads as satisfaction even where it recalls a worry ("本来很着急…不用担心了").
        if polarity == "positive":
            return "satisfaction"
        best, best_n = "none", 0
        for emotion, pat in self._emotions.items():
            n = sum(1 for m in pat.finditer(folded) if not self._negated(self._window(folded, m), m.group(0)))
            if n > best_n:
                best, best_n = emotion, n
        if best == "none" and polarity == "negative":
            return "disappointment"
        return best


def _polarity(score: float, negative_below: float, positive_above: float) -> str:
    if score <= negative_below:
        return "negative"
    if score >= positive_above:
        return "positive"
    return "neutral"


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(words, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered)) if ordered else re.compile(r"(?!x)x")
