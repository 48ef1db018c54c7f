"""``voc bench``: end-to-end throughput against the embedding floor, stage times, peak memory."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from evals.dataset import DEFAULT_DATASET, load_dataset
from graph.run import run_batch
from tools.deps import Deps
from tools.ingest import RawRow
from tools.settings import REPO_DATA

_TAILS = [
    "",
    "",
    "请尽快处理。",
    "希望给个说法。",
    "已经是第二次反映了。",
    "麻烦尽快回电。",
    "非常失望。",
    "要求书面解释。",
    "这已经影响到我的生活了。",
    "please call me back.",
]


class BenchReport(BaseModel):
    """One benchmark run."""

    n: int
    embedder: str
    cpus: int
    load_average: list[float]
    end_to_end_seconds: float
    complaints_per_second: float
    embed_only_sample: int
    embed_only_per_second: float
    embed_only_before_after: list[float]
    ratio_to_embedding: float
    stage_seconds: dict[str, float]
    peak_rss_mb: float
    problems: int
    checkpoint_mb: float


def bench_records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` realistic complaints: the demo sample and the eval set, varied so none repeats."""
    pool: list[dict[str, Any]] = []
    for line in (REPO_DATA / "samples" / "complaints.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and str(rec.get("text", "")).strip() and len(rec["text"]) < 1000:
            pool.append(rec)
    if DEFAULT_DATASET.is_file():
        pool += [dict(r.record) for r in load_dataset(DEFAULT_DATASET)]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec = dict(rng.choice(pool))
        rec["id"] = f"BENCH-{i:06d}"
        rec["text"] = f"{rec['text']}{rng.choice(_TAILS)}"
        month = rng.choice(["09", "10"])
        rec["received_at"] = f"2026-{month}-{rng.randint(1, 28):02d}T{rng.randint(8, 20):02d}:00:00+08:00"
        rec["customer_id"] = f"CUST{rng.randint(0, n):07d}"
        out.append(rec)
    return out


def _embed_seconds(deps: Deps, texts: list[str]) -> float:
    """Seconds to embed ``texts`` alone, in the pipeline's chunk size."""
    t0 = time.perf_counter()
    for i in range(0, len(texts), deps.settings.chunk_size):
        vecs = deps.embedder.embed(texts[i : i + deps.settings.chunk_size], kind="query")
        assert isinstance(vecs, np.ndarray)
    return time.perf_counter() - t0


def run_bench(deps: Deps, n: int, seed: int = 7, embed_sample: int = 1000) -> BenchReport:
    """Analyse ``n`` complaints end to end, and embed a sample of the same texts alone.

    Half the sample is embedded before the pipeline and half after, so a change in the machine's
    load during a long run moves both sides of the ratio rather than only one.
    """
    records = bench_records(n, seed)
    rows = [RawRow(i, r) for i, r in enumerate(records, start=1)]
    sample = random.Random(seed).sample([r["text"] for r in records], min(embed_sample, n))
    half = len(sample) // 2
    before = _embed_seconds(deps, sample[:half])
    with tempfile.TemporaryDirectory(prefix="voc-bench-") as tmp:
        ckpt = Path(tmp) / "checkpoints.sqlite"
        # A home of its own: the bench must not add its generated complaints to the warehouse.
        settings = deps.settings.model_copy(update={"checkpoint_path": ckpt, "home": Path(tmp)})
        run_deps = dataclasses.replace(deps, settings=settings)
        t0 = time.perf_counter()
        # track=False: synthetic rows must never enter the user's warehouse and its trends.
        result = run_batch(rows, run_deps, source=f"bench:{n}", fresh=True, track=False)
        e2e = time.perf_counter() - t0
        ckpt_mb = ckpt.stat().st_size / 2**20 if ckpt.exists() else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after = _embed_seconds(deps, sample[half:])
    embed_rate = len(sample) / (before + after)
    rate = len(result.results) / e2e
    return BenchReport(
        n=n,
        embedder=deps.embedder.name,
        cpus=os.cpu_count() or 1,
        load_average=[round(x, 2) for x in os.getloadavg()],
        end_to_end_seconds=round(e2e, 2),
        complaints_per_second=round(rate, 2),
        embed_only_sample=len(sample),
        embed_only_per_second=round(embed_rate, 2),
        embed_only_before_after=[
            round(half / before, 2) if before else 0.0,
            round((len(sample) - half) / after, 2) if after else 0.0,
        ],
        ratio_to_embedding=round(rate / embed_rate, 3),
        stage_seconds={k: round(v, 2) for k, v in result.stats.timings.items()},
        peak_rss_mb=round(peak, 1),
        problems=len(result.problems),
        checkpoint_mb=round(ckpt_mb, 1),
    )
