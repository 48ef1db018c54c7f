"""Tracking through every door: what `voc analyze`, `POST /v1/batches` and MCP `submit_batch` keep in
the warehouse (or, told not to, don't), under which source, what the report says since last time,
and that deleting a batch takes its complaints out of the warehouse again.

Real parts: the session's embedder and knowledge store, each test in a VOC_HOME of its own (so its
warehouse starts empty), the real CLI, app and MCP server.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typer.testing import CliRunner

from graph.run import run_batch
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.report import render

REMOTE = ("203.0.113.7", 50000)
runner = CliRunner()
# The mobile app that will not open after an update: the theme that grows from month 1 to month 2.
APP_WORDS = ("闪退", "启动页", "打不开", "进不去", "白屏", "崩")


def home_deps(deps: Deps, home: Path) -> Deps:
    """The session's dependencies with their state (checkpoints, job store, warehouse) under ``home``."""
    return dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))


def records(sample_records: list[dict], n: int, tag: str, month: str = "2026-09") -> list[dict]:
    """``n`` sample texts as new complaints ``tag-1``... received in ``month``."""
    return [
        {
            "id": f"{tag}-{i}",
            "text": r["text"],
            "channel": r.get("channel"),
            "received_at": f"{month}-10 10:00",
        }
        for i, r in enumerate(sample_records[:n], start=1)
    ]


def test_the_report_says_what_rose_since_last_time(
    deps: Deps, sample_records: list[dict], tmp_path: Path
) -> None:
    d = home_deps(deps, tmp_path / "home")
    app = [r for r in sample_records if any(w in r["text"] for w in APP_WORDS)]
    other = [r for r in sample_records if r not in app]
    assert len(app) >= 28
    month1 = records(app[:3], 3, "m1-app", "2026-07") + records(other[:12], 12, "m1-other", "2026-07")
    month2 = records(app[3:28], 25, "m2-app", "2026-08") + records(other[12:24], 12, "m2-other", "2026-08")
    first = run_batch(rows_from_records(month1), d)
    assert first.stats.tracking is not None and first.stats.tracking.period == "2026-07"
    second = run_batch(rows_from_records(month2), d)
    t = second.stats.tracking
    assert t is not None and t.period == "2026-08" and t.warehouse_complaints == len(month1) + len(month2)

    # The app theme is news: up from a handful to 25 or so, with an alert that says it is no chance.
    app_ids = {r["id"] for r in month2 if r["id"].startswith("m2-app")}
    tracked = {r.tracked_problem_id for r in second.results if r.id in app_ids}
    grown = [
        c for c in t.changes if c.kind == "problem" and c.id in tracked and c.status in ("new", "rising")
    ]
    assert grown, t.changes
    top = max(grown, key=lambda c: c.complaints)
    assert top.complaints >= 15 and top.previous <= 5 and top.alert in ("warning", "alarm")
    assert top.p_value is not None and top.p_value < 0.025

    md = render(second, "md", [(x.id, x.name) for x in deps.taxonomy.dimensions])
    since = md.split("## 自上期以来 Since last time", 1)[1].split("## 重点问题", 1)[0]
    heading = {"new": "### 新出现 New", "rising": "### 上升 Rising"}[top.status]
    assert heading in since
    row = next(line for line in since.splitlines() if f"`{top.id}`" in line)
    assert f"| {top.complaints} | {top.previous} |" in row and ("告警 alarm" in row or "预警 warning" in row)
    # The top-problems table names the tracked problem and its status.
    table = md.split("## 重点问题 Top problems", 1)[1].split("##", 1)[0]
    assert "跟踪 Tracked" in table and any(
        f"`{top.id}`" in line and top.status in line for line in table.splitlines()
    )
    html = render(second, "html")
    assert "自上期以来 Since last time" in html and top.id in html
