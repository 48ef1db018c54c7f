"""Negation-aware sentiment, intensity and emotion from an editable lexicon."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tools.knowledge import Lexicon

_EXCLAIM = re.compile(r"[!！]{2,}|[?？]{2,}")


@dataclass(frozen=True)
class SentimentScore:
    polarity: str
    score: float
    intensity: float
    emotion: str
    negative_mass: float
    positive_mass: float


class SentimentAnalyzer:
    """Scores text with the lexicon: negators flip, intensifiers and downtoners scale."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon
        words = {w.lower(): ("neg", v) for w, v in lexicon.negative.items()}
        words.update({w.lower(): ("pos", v) for w, v in lexicon.positive.items()})
        self._words = words
        self._word_re = _alternation(words)
        self._negators = sorted((n.lower() for n in lexicon.negators), key=len, reverse=True)
        self._mods = {k.lower(): v for k, v in {**lexicon.intensifiers, **lexicon.downtoners}.items()}
        self._emotions = {
            e: _alternation({c.lower(): None for c in cues}) for e, cues in lexicon.emotions.items()
        }

    def score(self, text: str) -> SentimentScore:
        folded = text.lower()
        neg = pos = 0.0
        for m in self._word_re.finditer(folded):
            polarity, weight = self._words[m.group(0)]
            window = folded[max(0, m.start() - self.lex.negation_window - 2) : m.start()]
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
        net = pos - neg
        score = math.tanh(net / 1.5)
        intensity = min(1.0, 1 - math.exp(-(neg + pos * 0.3) * 0.9) + emphasis)
        if score <= -0.12:
            polarity = "negative"
        elif score >= 0.2:
            polarity = "positive"
        else:
            polarity = "neutral"
        emotion = self._emotion(folded, polarity)
        return SentimentScore(polarity, round(score, 3), round(intensity, 3), emotion, neg, pos)

    def _negated(self, window: str, word: str) -> bool:
        if any(word.startswith(n) for n in self._negators):
            return False
        tail = window[-3:]
        return any(n in tail for n in self._negators)

    def _emotion(self, folded: str, polarity: str) -> str:
        best, best_n = "none", 0
        for emotion, pat in self._emotions.items():
            n = len(pat.findall(folded))
            if n > best_n:
                best, best_n = emotion, n
        if best == "none":
            if polarity == "positive":
                return "satisfaction"
            if polarity == "negative":
                return "disappointment"
        return best


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(words, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered)) if ordered else re.compile(r"(?!x)x")
