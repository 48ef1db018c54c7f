"""``voc bench --history``: months of complaints added one by one to a fresh warehouse; time per month,
re-analysis of a month already seen, warehouse size, ``voc problems`` latency and id stability."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from evals.history import generate
from graph.run import run_batch
from loop.queries import TrackingReader
from loop.warehouse import Warehouse
from tools.deps import Deps
from tools.ingest import rows_from_records


class MonthRun(BaseModel):
    period: str
    complaints: int
    seconds: float
    embed_seconds: float
    track_seconds: float
    warehouse_mb: float
    tracked_problems: int


class ThemeStability(BaseModel):
    theme: str
    complaints: int = 0
    main_problem: str | None = None
    share_in_main: float = 0.0  # of the theme's tracked complaints, the share in its main problem
    months_on_main: int = 0  # months in which most of the theme's complaints went to that problem
    months_present: int = 0


class HistoryBenchReport(BaseModel):
    months: int
    per_month: int
    embedder: str
    months_run: list[MonthRun]
    rerun_period: str
    rerun_seconds: float
    rerun_speedup: float
    problems_latency_ms: float
    alerts_latency_ms: float
    warehouse_mb: float
    tracked_problems: int
    stability: list[ThemeStability]


def _mb(path: Path) -> float:
    files = [path, path.with_name(path.name + "-wal")]
    return round(sum(p.stat().st_size for p in files if p.exists()) / 2**20, 2)


def run_history_bench(
    deps: Deps,
    months: int = 12,
    per_month: int = 5000,
    seed: int = 0,
    on_month: Callable[[MonthRun], None] | None = None,
) -> HistoryBenchReport:
    """Add ``months`` generated months one at a time to a warehouse in a temporary home."""
    history = generate(months=months, per_month=per_month, seed=seed)
    with tempfile.TemporaryDirectory(prefix="voc-history-bench-") as tmp:
        home = Path(tmp)
        local = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))
        db = local.settings.warehouse_db
        runs: list[MonthRun] = []
        first_seconds = 0.0
        for period, rows in zip(history.months, history.by_month(), strict=True):
            t0 = time.perf_counter()
            result = run_batch(
                rows_from_records(rows), local, source="bench-history", track=True, track_source="bench"
            )
            seconds = time.perf_counter() - t0
            first_seconds = first_seconds or seconds
            tracking = result.stats.tracking
            run = MonthRun(
                period=period,
                complaints=len(result.results),
                seconds=round(seconds, 2),
                embed_seconds=round(result.stats.timings.get("embed", 0.0), 2),
                track_seconds=round(result.stats.timings.get("track", 0.0), 2),
                warehouse_mb=_mb(db),
                tracked_problems=tracking.tracked_problems if tracking else 0,
            )
            runs.append(run)
            if on_month:
                on_month(run)
        # The first month again, as an overlapping export would bring it: every vector is cached.
        t0 = time.perf_counter()
        run_batch(
            rows_from_records(history.by_month()[0]),
            local,
            source="bench-history",
            track=True,
            track_source="bench",
            fresh=True,
        )
        rerun = time.perf_counter() - t0
        reader = TrackingReader(Warehouse(db))
        t0 = time.perf_counter()
        problems = reader.problems()
        problems_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        reader.alerts()
        alerts_ms = (time.perf_counter() - t0) * 1000
        stability = _stability(db, history.theme_of, history.months)
        size = _mb(db)
    return HistoryBenchReport(
        months=months,
        per_month=per_month,
        embedder=deps.embedder.name,
        months_run=runs,
        rerun_period=history.months[0],
        rerun_seconds=round(rerun, 2),
        rerun_speedup=round(first_seconds / rerun, 1) if rerun else 0.0,
        problems_latency_ms=round(problems_ms, 1),
        alerts_latency_ms=round(alerts_ms, 1),
        warehouse_mb=size,
        tracked_problems=len(problems),
        stability=stability,
    )


def _stability(db: Path, theme_of: dict[str, str], months: list[str]) -> list[ThemeStability]:
    """How steadily each planted theme kept one tracked id, month after month."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, period, tracked_id FROM complaints WHERE tracked_id IS NOT NULL")
        by_theme: dict[str, list[tuple[str, str]]] = {}
        for cid, period, tp in rows:
            theme = theme_of.get(cid)
            if theme:
                by_theme.setdefault(theme, []).append((period, tp))
    out = []
    for theme, pairs in sorted(by_theme.items()):
        votes = Counter(tp for _, tp in pairs)
        main, n_main = votes.most_common(1)[0]
        present = on_main = 0
        for m in months:
            month = Counter(tp for period, tp in pairs if period == m)
            if month:
                present += 1
                on_main += month.most_common(1)[0][0] == main
        out.append(
            ThemeStability(
                theme=theme,
                complaints=len(pairs),
                main_problem=main,
                share_in_main=round(n_main / len(pairs), 3),
                months_on_main=on_main,
                months_present=present,
            )
        )
    return out
