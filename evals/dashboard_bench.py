"""``voc bench --dashboard``: how fast the dashboard's pages render on a warehouse of real size.

A warehouse of ``months`` periods and ``problems`` tracked problems is written straight into a
temporary home (each problem's monthly count drawn from a Poisson around its own level and trend,
so some rise, some fall, some stop), its series, statuses and alerts built by the same code a
batch uses, and each page is then requested through the real app, several times, timing the
whole request. No complaint is embedded: the pages read only what the warehouse holds.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from loop.periods import next_period, period_range
from loop.series import rebuild
from loop.trends import TrendRules
from loop.warehouse import Warehouse
from tools.deps import Deps
from tools.sql import database

DIMENSIONS = ("人", "机", "物", "法", "环")
PAGES = ("/", "/problems", "/problems?dimension=机", "/problems/TP-0001", "/batches")


class PageTime(BaseModel):
    path: str
    median_ms: float
    max_ms: float
    bytes: int


class DashboardBench(BaseModel):
    months: int
    problems: int
    complaints: int
    build_seconds: float
    pages: list[PageTime]


def fill(warehouse: Warehouse, months: int, problems: int, seed: int = 0) -> int:
    """Write ``problems`` problems over ``months`` monthly periods; return the complaints written."""
    rng = np.random.default_rng(seed)
    last = "2025-01"
    for _ in range(months - 1):
        last = next_period(last)
    keys = period_range("2025-01", last)
    zero = np.zeros(384, dtype=np.float32).tobytes()
    rows = []
    problem_rows = []
    for p in range(1, problems + 1):
        pid = f"TP-{p:04d}"
        dim = DIMENSIONS[p % len(DIMENSIONS)]
        level = float(rng.uniform(2, 30))
        slope = float(rng.normal(0, 0.04))
        stop = int(rng.integers(months // 2, months * 2))  # some problems stop before the end
        start = int(rng.integers(0, months // 3))
        n = 0
        for i, key in enumerate(keys):
            if i < start or i >= stop:
                continue
            for k in range(int(rng.poisson(max(0.2, level * (1 + slope) ** i)))):
                cid = f"{pid}-{key}-{k}"
                rows.append(
                    (
                        "bench",
                        cid,
                        1,
                        cid,
                        "（已脱敏）样例投诉",
                        key,
                        f"{key}-15T10:00:00+08:00",
                        1,
                        dim,
                        f"{dim}-样例",
                        None,
                        f"D{p % 12}",
                        f"部门{p % 12}",
                        "重要",
                        ("P1", "P2", "P3", "P4")[int(rng.integers(0, 4))],
                        40.0,
                        None,
                        "bench",
                        pid,
                        "bench",
                        cid,
                        "[]",
                        "2026-01-01T00:00:00+00:00",
                    )
                )
                n += 1
        problem_rows.append(
            (
                pid,
                p,
                f"样例问题 {p}",
                f"{dim}-样例",
                dim,
                f"D{p % 12}",
                f"部门{p % 12}",
                keys[start],
                zero,
                n,
                None,
                "bench",
            )
        )
    with warehouse.connect() as conn:
        conn.executemany(
            "INSERT INTO complaints (source, id, version, text_hash, text, period, received_at, negative, "
            "dimension, l2, l3, department_id, department, grade, priority, severity, customer_hash, "
            "batch_id, tracked_id, embedder, read_hash, flags, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO problems (id, seq, name, l2, dimension, department_id, department, first_period, "
            "centroid_sum, n, merged_into, created_batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            problem_rows,
        )
        rebuild(conn, "month", TrendRules())
    return len(rows)


def run_dashboard_bench(deps: Deps, months: int = 24, problems: int = 200, repeat: int = 7) -> DashboardBench:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from services.config import ApiSettings

    with tempfile.TemporaryDirectory(prefix="voc-dash-bench-") as tmp:
        home = Path(tmp)
        settings = deps.settings.model_copy(update={"home": home})
        here = dataclasses.replace(deps, settings=settings)
        t0 = time.perf_counter()
        complaints = fill(Warehouse(database(settings, "warehouse")), months, problems)
        build = time.perf_counter() - t0
        pages = []
        local = ApiSettings(keys=None, keys_file=None, rate_per_minute=0)
        with TestClient(create_app(settings, api_settings=local, deps=here)) as client:
            for path in PAGES:
                times, size = [], 0
                for _ in range(repeat):
                    t = time.perf_counter()
                    r = client.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    size = len(r.content)
                median = statistics.median(times)
                pages.append(PageTime(path=path, median_ms=median, max_ms=max(times), bytes=size))
    return DashboardBench(
        months=months, problems=problems, complaints=complaints, build_seconds=build, pages=pages
    )
