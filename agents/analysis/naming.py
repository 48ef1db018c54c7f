"""Naming common problems like a person would: a key phrase in the members' own words, label beside it."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from tools.clustering import words

_WORD = re.compile(r"^[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9'-]*$")
_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class NamingRules:
    """``naming.yaml``: what never becomes a keyword or a name, and how long a name may be."""

    redaction: re.Pattern[str]
    boilerplate: frozenset[str]
    edge_words: frozenset[str]
    max_chars: int = 14
    max_words: int = 6
    max_tokens: int = 4
    min_share: float = 0.2
    min_concentration: float = 0.5
    phrases_per_problem: int = 5

    def is_redaction(self, token: str) -> bool:
        return bool(self.redaction.fullmatch(token))


@lru_cache(maxsize=4)
def load_naming(path: str) -> NamingRules:
    """Read ``naming.yaml``; a missing file still keeps redaction marks and masks out of names."""
    p = Path(path)
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) if p.is_file() else {}
    raw = raw or {}
    patterns = [str(x) for x in raw.get("redaction", [])] or [r"x{2,}", r"\*+"]
    return NamingRules(
        redaction=re.compile("|".join(f"(?:{x})" for x in patterns), re.IGNORECASE),
        boilerplate=frozenset(str(w).lower() for w in raw.get("boilerplate", [])),
        edge_words=frozenset(str(w).lower() for w in raw.get("edge_words", [])),
        max_chars=int(raw.get("max_chars", 14)),
        max_words=int(raw.get("max_words", 6)),
        max_tokens=int(raw.get("max_tokens", 4)),
        min_share=float(raw.get("min_share", 0.2)),
        min_concentration=float(raw.get("min_concentration", 0.5)),
        phrases_per_problem=int(raw.get("phrases_per_problem", 5)),
    )


def _runs(text: str, rules: NamingRules) -> list[list[str]]:
    """Runs of word tokens: punctuation, digits, masks and redaction marks end a run."""
    runs: list[list[str]] = [[]]
    for tok in words(text):
        tok = tok.strip().lower()
        if not tok:
            continue  # spaces between English words keep the run going
        if not _WORD.match(tok) or rules.is_redaction(tok):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(tok)
    return [r for r in runs if r]


def _join(tokens: Sequence[str]) -> str:
    out = tokens[0]
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        out += (" " if _LATIN.search(prev[-1]) and _LATIN.search(tok[0]) else "") + tok
    return out


def _candidates(text: str, rules: NamingRules, stopwords: frozenset[str]) -> dict[str, int]:
    """Every phrase of 1 to ``max_tokens`` tokens the text holds that could be a name, with its length."""
    out: dict[str, int] = {}
    edges = rules.edge_words | stopwords
    for run in _runs(text, rules):
        for i in range(len(run)):
            first = run[i]
            if first in edges or len(first) < 2:
                continue
            for j in range(i, min(i + rules.max_tokens, len(run))):
                span = run[i : j + 1]
                if any(t in rules.boilerplate for t in span):
                    break
                last = span[-1]
                if last in edges or (len(last) < 2 and not _CJK.match(last)):
                    continue
                out[_join(span)] = len(span)
    return out


def _fits(phrase: str, rules: NamingRules) -> bool:
    if _CJK.search(phrase):
        return len(phrase.replace(" ", "")) <= rules.max_chars
    return len(phrase.split()) <= rules.max_words


def key_phrases(
    texts_by_cluster: dict[int, Sequence[str]], rules: NamingRules, stopwords: frozenset[str]
) -> dict[int, list[str]]:
    """Phrases frequent in a cluster's members and rare in the other clusters, longest that holds.

    A phrase must be used by at least two members (and ``min_share`` of them), and more than
    ``min_concentration`` of its uses in the batch's clusters must fall in this one (a phrase the
    members of other problems write as much is the batch's boilerplate). It scores by the
    share of members that use it, times how specific it is to the cluster (c-TF-IDF over
    documents), times a bonus per extra token, so a phrase beats the single words it is made of;
    a phrase is dropped when a longer one holding it is used by almost as many members.
    """
    docs = {c: [_candidates(t, rules, stopwords) for t in texts] for c, texts in texts_by_cluster.items()}
    df = {c: Counter(p for d in ds for p in d) for c, ds in docs.items()}
    tokens = {p: n for ds in docs.values() for d in ds for p, n in d.items()}
    total: Counter[str] = Counter()
    for counts in df.values():
        total.update(counts)
    avg = sum(len(ds) for ds in docs.values()) / max(len(docs), 1)
    out: dict[int, list[str]] = {}
    for c, counts in df.items():
        size = max(len(docs[c]), 1)
        floor = max(2, math.ceil(rules.min_share * size))
        # A phrase the members of other problems use as much is this batch's boilerplate.
        kept = {
            p: n
            for p, n in counts.items()
            if n >= floor and n > rules.min_concentration * total[p] and _fits(p, rules)
        }
        scored = []
        for p, n in kept.items():
            if any(len(q) > len(p) and p in q and m >= 0.7 * n for q, m in kept.items()):
                continue
            specificity = math.log(1 + avg / total[p])
            scored.append(((n / size) * specificity * (1 + 0.5 * (min(tokens[p], 3) - 1)), p))
        scored.sort(key=lambda x: (-x[0], x[1]))
        out[c] = [p for _, p in scored[: rules.phrases_per_problem]]
    return out


def problem_name(phrases: Sequence[str], label_name: str, rules: NamingRules) -> str:
    """``收不到验证码（身份认证）``: the best phrase (two when the first is one short word), label beside."""
    if not phrases:
        return label_name
    head = phrases[0]
    for extra in phrases[1:3]:
        if extra in head or head in extra:
            continue
        latin = not _CJK.search(head + extra)
        joined = f"{head}, {extra}" if latin else f"{head}、{extra}"
        # Only a single short word needs company; a real phrase says enough alone.
        if _fits(joined, rules) and (len(head.split()) < 2 if latin else len(head) < 4):
            head = joined
        break
    return f"{head}（{label_name}）"
