"""The trained sentiment head: a logistic regression on the complaint vector, read from a small file.

The file (``data/models/sentiment_head.json``) holds the weights, the embedder they are valid
for and the recipe that made them; ``voc train sentiment`` rebuilds it. Applying it is one dot
product per complaint, so nothing beyond numpy is needed at run time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HEAD_FORMAT = 1
log = logging.getLogger("voc.sentiment")
DEFAULT_HEAD = Path(__file__).resolve().parent.parent / "data" / "models" / "sentiment_head.json"


class HeadFileError(ValueError):
    """The head file is missing, malformed or for another vector size."""


@dataclass(frozen=True)
class SentimentHead:
    """P(positive) = sigmoid(vector · coef + intercept), for vectors from ``embedder``."""

    embedder: str
    coef: np.ndarray
    intercept: float
    version: str
    recipe: dict[str, Any] = field(default_factory=dict)

    def prob_positive(self, vectors: np.ndarray) -> np.ndarray:
        """Probability that each row's text is positive rather than negative."""
        z = np.atleast_2d(vectors).astype(np.float64) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> str:
        body = {
            "format": HEAD_FORMAT,
            "version": self.version,
            "embedder": self.embedder,
            "dim": int(self.coef.shape[0]),
            "intercept": round(float(self.intercept), 8),
            "coef": [round(float(x), 8) for x in self.coef],
            "recipe": self.recipe,
        }
        return json.dumps(body, ensure_ascii=False, indent=1) + "\n"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")


def load_head(path: Path = DEFAULT_HEAD) -> SentimentHead:
    """Read a head file written by :meth:`SentimentHead.save`; raises :class:`HeadFileError`."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != HEAD_FORMAT:
            raise HeadFileError(f"{path.name}: format {body.get('format')!r}, expected {HEAD_FORMAT}")
        coef = np.asarray(body["coef"], dtype=np.float64)
        if coef.ndim != 1 or coef.shape[0] != int(body["dim"]) or not np.all(np.isfinite(coef)):
            raise HeadFileError(f"{path.name}: coef does not match dim {body['dim']}")
        return SentimentHead(
            embedder=str(body["embedder"]),
            coef=coef,
            intercept=float(body["intercept"]),
            version=str(body["version"]),
            recipe=dict(body.get("recipe", {})),
        )
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise HeadFileError(f"cannot read sentiment head {path}: {e}") from e


_warned: set[tuple[str, str]] = set()


def head_for(path: Path, embedder: str) -> tuple[SentimentHead | None, str]:
    """The head at ``path`` if it was trained on ``embedder``'s vectors, else None and why.

    Why is logged once per process and reason: sentiment then comes from the lexicon alone.
    """
    try:
        head = load_head(path)
    except HeadFileError as e:
        return None, _say(f"lexicon only: {e}")
    if head.embedder != embedder:
        return None, _say(
            f"lexicon only: the sentiment head was trained on {head.embedder} vectors, "
            f"the embedder in use is {embedder} (voc train sentiment builds one for it)"
        )
    return head, head.version


def _say(note: str) -> str:
    key = ("sentiment", note)
    if key not in _warned:
        _warned.add(key)
        log.warning("sentiment: %s", note)
    return note
