"""The measuring instruments: scorers on a labelled dataset and the benchmark."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from evals.bench import bench_records, run_bench
from evals.dataset import fund_safety_theme, load_dataset, spike_theme
from evals.run import run_eval
from tools.deps import Deps


def _tiny_dataset(path: Path) -> Path:
    rows = []
    crash = [
        "手机银行转账页面卡死，点了没反应",
        "转账时APP一直报错转不出去",
        "手机银行更新后转账界面白屏",
        "APP转账一直转圈最后失败",
        "用手机银行汇款总是提示系统繁忙",
        "手机银行转账按钮点不动",
    ]
    fraud = ["信用卡被盗刷了五千元，我人在家", "卡里的钱被陌生人转走了，已经报警", "收到短信发现有笔境外盗刷"]
    for i, t in enumerate(crash):
        month = "2026-07" if i == 0 else "2026-08"
        rows.append(
            {
                "id": f"c{i}",
                "text": t,
                "received_at": f"{month}-1{i}T10:00:00+08:00",
                "lang": "zh",
                "split": "dev",
                "expected": {
                    "department": "digital_banking",
                    "dimension": "机",
                    "l2": "机-面客系统",
                    "grade": "紧急",
                    "theme": "T02",
                },
            }
        )
    for i, t in enumerate(fraud):
        rows.append(
            {
                "id": f"f{i}",
                "text": t,
                "received_at": f"2026-0{7 + i % 2}-05T10:00:00+08:00",
                "lang": "zh",
                "split": "holdout",
                "expected": {
                    "department": "card_center",
                    "dimension": "环",
                    "l2": "环-外部环境",
                    "grade": "特急",
                    "theme": "T01",
                },
            }
        )
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def test_dataset_facts_and_splits(tmp_path: Path) -> None:
    path = _tiny_dataset(tmp_path / "d.jsonl")
    rows = load_dataset(path)
    assert len(rows) == 9 and len(load_dataset(path, "holdout")) == 3
    assert fund_safety_theme(rows) == "T01"
    assert spike_theme(rows) == "T02"
    # Labels never reach the pipeline's input.
    assert all("expected" not in r.record for r in rows)


def _kept(home: Path) -> int:
    """Complaints in the warehouse under ``home``."""
    if not (home / "warehouse.db").exists():
        return 0
    with sqlite3.connect(home / "warehouse.db") as db:
        return int(db.execute("SELECT count(*) FROM complaints").fetchone()[0])


def test_eval_scores_a_run(deps: Deps, tmp_path: Path) -> None:
    home = tmp_path / "home"
    deps = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))
    report = run_eval(deps, _tiny_dataset(tmp_path / "d.jsonl"))
    assert _kept(home) == 0  # labelled rows never enter the warehouse
    s = report.scores
    assert s.rows == 9
    for metric in (
        s.dimension_accuracy,
        s.dimension_macro_f1,
        s.l2_accuracy,
        s.department_accuracy,
        s.grade_accuracy,
        s.theme_ari,
        s.theme_nmi,
    ):
        assert 0.0 <= metric <= 1.0
    assert sum(sum(row.values()) for row in s.dimension_confusion.values()) == 9
    assert s.spike_theme == "T02" and s.fund_safety_theme == "T01"
    assert s.department_accuracy >= 0.6
    # Each planted theme names the problem holding it, in rank order, with its priority.
    assert {t["theme"] for t in s.theme_problems} == {"T01", "T02"}
    ranked = [t for t in s.theme_problems if t["rank"] is not None]
    assert [t["rank"] for t in ranked] == sorted(t["rank"] for t in ranked)
    assert all(t["priority"] in ("P1", "P2", "P3", "P4") for t in ranked)


def test_bench_reports_throughput_against_the_floor(deps: Deps, tmp_path: Path) -> None:
    records = bench_records(50, seed=3)
    assert len({r["id"] for r in records}) == 50
    home = tmp_path / "home"
    deps = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))
    report = run_bench(deps, 12, embed_sample=6)
    assert _kept(home) == 0  # nor do synthetic ones
    assert report.n == 12 and report.complaints_per_second > 0 and report.embed_only_per_second > 0
    assert report.ratio_to_embedding > 0 and report.peak_rss_mb > 50 and report.checkpoint_mb > 0
    assert {"embed", "trace", "attribute", "analyze"} <= set(report.stage_seconds)
