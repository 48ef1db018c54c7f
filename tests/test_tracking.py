"""Tracked problems over a synthetic eight-month history: the same ids and statuses whether the months
arrive one by one or all at once; resent months and a killed run change no count."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evals.history import History, generate
from graph.run import run_batch
from loop.queries import TrackingReader
from loop.warehouse import Warehouse
from tools.deps import Deps
from tools.ingest import rows_from_records

REPO = Path(__file__).resolve().parent.parent


def at_home(deps: Deps, home: Path) -> Deps:
    """The session's dependencies (store and indexes built once) with state under ``home``."""
    return dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))


def snapshot(home: Path) -> dict[str, Any]:
    """What a user sees: every tracked problem's series and statuses, the alerts, each complaint's id."""
    reader = TrackingReader(Warehouse(home / "warehouse.db"))
    problems = {
        p.id: [(s.period, s.complaints, s.customers, s.status) for s in p.series] for p in reader.problems()
    }
    alerts = sorted((a.id, a.level, a.observed) for a in reader.alerts())
    with sqlite3.connect(home / "warehouse.db") as conn:
        tracked = dict(conn.execute("SELECT id, tracked_id FROM complaints").fetchall())
        total = conn.execute("SELECT COUNT(*) FROM complaints").fetchone()[0]
    return {"problems": problems, "alerts": alerts, "tracked": tracked, "total": total}


def main_problem(snap: dict[str, Any], history: History, theme: str) -> str:
    """The tracked problem holding most of a theme's complaints."""
    votes = Counter(tp for cid, tp in snap["tracked"].items() if tp and history.theme_of.get(cid) == theme)
    assert votes, f"no tracked problem holds theme {theme}"
    return votes.most_common(1)[0][0]


@pytest.fixture(scope="module")
def history() -> History:
    return generate(months=8, per_month=30, seed=11)


@pytest.fixture(scope="module")
def monthly(deps: Deps, history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("monthly")
    local = at_home(deps, home)
    for month in history.by_month():
        run_batch(rows_from_records(month), local, track=True)
    return home


@pytest.fixture(scope="module")
def at_once(deps: Deps, history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("at-once")
    run_batch(rows_from_records(history.rows), at_home(deps, home), track=True)
    return home


def test_months_one_by_one_and_all_at_once_build_the_same_problems(monthly: Path, at_once: Path) -> None:
    one_by_one, together = snapshot(monthly), snapshot(at_once)
    assert one_by_one["total"] == together["total"] > 0
    assert one_by_one["tracked"] == together["tracked"]
    assert one_by_one["problems"] == together["problems"]
    assert one_by_one["alerts"] == together["alerts"]


def test_statuses_follow_the_planted_patterns(monthly: Path, history: History) -> None:
    snap = snapshot(monthly)
    months = history.months

    def statuses(theme: str) -> dict[str, str]:
        return {
            period: status for period, _, _, status in snap["problems"][main_problem(snap, history, theme)]
        }

    appearing = statuses("wealth_missell")
    assert min(appearing) == months[5] and appearing[months[5]] == "new"
    stopping = statuses("branch_queue")
    assert stopping[months[0]] == "new"
    assert stopping[months[7]] == "dormant"
    returning = statuses("double_debit")
    assert "dormant" in [returning[m] for m in months[3:6]]
    assert returning[months[6]] == "regressed"
    rising = statuses("card_fraud")
    assert "rising" in rising.values()
    steady = statuses("app_login")
    assert list(steady.values()).count("steady") >= 5


def test_a_resent_month_changes_no_count(deps: Deps, monthly: Path, history: History) -> None:
    before = snapshot(monthly)
    local = at_home(deps, monthly)
    again = run_batch(rows_from_records(history.by_month()[2]), local, track=True)
    assert again.stats.reused
    redone = run_batch(rows_from_records(history.by_month()[2]), local, track=True, fresh=True)
    assert redone.stats.tracking is not None and redone.stats.tracking.new_versions == 0
    assert snapshot(monthly) == before


def test_the_same_id_with_another_text_is_a_new_version(deps: Deps, tmp_path: Path, history: History) -> None:
    local = at_home(deps, tmp_path)
    first = history.by_month()[0][:12]
    run_batch(rows_from_records(first), local, track=True)
    edited = [dict(r) for r in first]
    edited[0]["text"] = edited[0]["text"] + "，而且到现在还没有人联系我"
    result = run_batch(rows_from_records(edited), local, track=True)
    assert result.stats.tracking is not None and result.stats.tracking.new_versions == 1
    flagged = next(r for r in result.results if r.id == edited[0]["id"])
    assert snapshot(tmp_path)["total"] == 12
    with sqlite3.connect(tmp_path / "warehouse.db") as conn:
        version, flags = conn.execute(
            "SELECT version, flags FROM complaints WHERE id = ?", (flagged.id,)
        ).fetchone()
    assert version == 2 and "new_version" in flags


def test_untracked_runs_keep_nothing(deps: Deps, tmp_path: Path, history: History) -> None:
    run_batch(rows_from_records(history.by_month()[0][:6]), at_home(deps, tmp_path), track=False)
    assert snapshot(tmp_path)["total"] == 0


def test_kill_9_during_a_batch_then_rerun_changes_no_count(
    deps: Deps, tmp_path: Path, history: History, at_once: Path
) -> None:
    home = tmp_path / "home"
    # The knowledge store is an index of data/: a copy saves the subprocess rebuilding it.
    shutil.copytree(deps.settings.chroma_dir, home / "chroma")
    for month in history.by_month()[:-1]:
        run_batch(rows_from_records(month), at_home(deps, home), track=True)
    months = history.write_month_files(tmp_path / "months")
    env = {**os.environ, "VOC_HOME": str(home), "VOC_ENGINE": "rules", "VOC_CHUNK_SIZE": "2"}
    env["VOC_MAX_CONCURRENCY"] = "1"

    log = tmp_path / "stderr.log"

    def analyze(path: Path) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "cli.main", "analyze", str(path), "--out", str(tmp_path / "out")]
        with log.open("ab") as err:
            return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)

    proc = analyze(months[-1])
    deadline = time.monotonic() + 600
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(home / "checkpoints.sqlite", timeout=1) as con:
                stored = con.execute("SELECT COUNT(*) FROM voc_chunks").fetchone()[0]
        except sqlite3.OperationalError:
            stored = 0
        if stored >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert analyze(months[-1]).wait(timeout=600) == 0, log.read_text(errors="replace")[-2000:]
    killed, together = snapshot(home), snapshot(at_once)
    assert killed["total"] == together["total"]
    assert killed["problems"] == together["problems"]


def test_the_thresholds_in_force_keep_wrong_joins_rare(deps: Deps) -> None:
    from evals.tracking import calibrate_tracking

    report = calibrate_tracking(deps, repeats=5)
    assign = next(r for r in report.assign if r.threshold == deps.settings.track_assign_similarity)
    # Five random splits are noisy: 2.2% wrong over twenty (voc eval --tracking), 3.1% over five.
    assert assign.joins_wrong <= 0.04 and assign.joins_own >= 0.7
    match = next(r for r in report.match if r.threshold == deps.settings.track_match_similarity)
    assert match.joins_wrong == 0 and match.joins_own >= 0.95
    # Two different problems never look alike enough to be merged or recorded as a split.
    assert report.max_between_themes < deps.settings.track_related_similarity
