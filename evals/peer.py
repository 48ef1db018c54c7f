"""Side-by-side with a peer: BERTopic on the same embeddings of the same negative voices.

BERTopic is an optional bench dependency (``make bench-peer`` installs it); it is given the
very vectors our pipeline computed, so the comparison is of the clustering alone: BERTopic's
UMAP + HDBSCAN on the text vectors against our analysis stage on the super embedding.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from agents.analysis import Item, analyze_items
from agents.attribution import attribute
from agents.tracing import trace
from evals.dataset import DEFAULT_DATASET, load_dataset, to_raw_rows
from graph.run import prepare_batch
from tools.deps import Deps


class PeerResult(BaseModel):
    name: str
    seconds: float
    ari: float
    nmi: float
    clusters: int
    unclustered: int


class PeerReport(BaseModel):
    dataset: str
    voices: int
    themed: int
    ours: PeerResult
    bertopic: PeerResult | None
    note: str = ""


def _score(
    name: str, seconds: float, ids: list[str], labels: dict[str, str | None], theme: dict[str, str]
) -> PeerResult:
    themed = [i for i in ids if theme.get(i)]
    truth = [theme[i] for i in themed]
    pred = [labels.get(i) or f"none:{i}" for i in themed]
    return PeerResult(
        name=name,
        seconds=round(seconds, 3),
        ari=round(float(adjusted_rand_score(truth, pred)), 4),
        nmi=round(float(normalized_mutual_info_score(truth, pred)), 4),
        clusters=len({labels[i] for i in ids if labels.get(i)}),
        unclustered=sum(1 for i in ids if not labels.get(i)),
    )


def compare_with_bertopic(deps: Deps, dataset: Path | str = DEFAULT_DATASET, seed: int = 42) -> PeerReport:
    """Embed the dataset once, then cluster its negative voices both ways and score both."""
    rows = load_dataset(dataset)
    theme = {r.id: r.expected.theme for r in rows if r.expected.theme}
    prepared = prepare_batch(to_raw_rows(rows), deps)
    complaints = prepared.complaints
    vectors = deps.embedder.embed([c.text for c in complaints], kind="query")
    causes = trace(complaints, vectors, deps)
    owners = attribute(complaints, vectors, causes, deps)
    items = [Item(c, a, r, v) for c, a, r, v in zip(complaints, owners, causes, vectors, strict=True)]
    negatives = [it for it in items if it.cause.is_negative_voice and not it.complaint.duplicate_of]
    ids = [it.complaint.id for it in negatives]

    t0 = time.perf_counter()
    out = analyze_items(items, deps)
    ours = _score("voc-tracer analysis stage", time.perf_counter() - t0, ids, dict(out.problem_of), theme)

    peer = None
    note = ""
    try:
        import numpy as np
        from bertopic import BERTopic
        from hdbscan import HDBSCAN
        from sklearn.feature_extraction.text import CountVectorizer
        from umap import UMAP

        from tools.clustering import tokenize

        vecs = np.vstack([it.vector for it in negatives])
        t1 = time.perf_counter()
        model = BERTopic(
            embedding_model=None,
            umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed),
            hdbscan_model=HDBSCAN(
                min_cluster_size=deps.scoring.clustering.min_size,
                metric="euclidean",
                cluster_selection_method="eom",
                prediction_data=True,
            ),
            vectorizer_model=CountVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False),
        )
        topics, _ = model.fit_transform([it.complaint.text for it in negatives], embeddings=vecs)
        seconds = time.perf_counter() - t1
        labels = {i: (f"t{t}" if t >= 0 else None) for i, t in zip(ids, topics, strict=True)}
        peer = _score("BERTopic (UMAP + HDBSCAN)", seconds, ids, labels, theme)
    except ImportError as exc:
        note = f"BERTopic not installed ({exc.name}); run `make bench-peer` to install it."
    return PeerReport(
        dataset=str(dataset),
        voices=len(ids),
        themed=sum(1 for i in ids if i in theme),
        ours=ours,
        bertopic=peer,
        note=note,
    )
