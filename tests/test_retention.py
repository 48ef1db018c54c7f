"""``voc purge``: old batches leave voc.db, the checkpoint database and the warehouse (rows and bytes),
recent ones stay readable, a dry run removes nothing, and the audit trail records it all and stays.

Real SQLite files under a fresh VOC_HOME, the real app (TestClient) and the real CLI (CliRunner).
Age is simulated the only way it can be: by writing old timestamps into the rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from graph.deps import make_deps
from graph.run import prepare_batch, run_prepared
from services.config import ApiSettings
from services.retention import Retention
from tests.api_helpers import ADMIN_KEY, KEYS, RW_KEY, auth, wait_done
from tools.audit import AuditLog, AuditQuery, cli_actor
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import Settings

REMOTE = ("203.0.113.7", 50000)
LONG_AGO = "2020-01-01T00:00:00+00:00"
CHAR_NGRAM = {"VOC_EMBEDDER": "char-ngram"}
runner = CliRunner()


def batch(tag: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{tag}-1", "text": f"手机银行升级以后一直闪退，登录不上（{tag}）", "channel": "APP"},
        {"id": f"{tag}-2", "text": f"信用卡被盗刷两笔，客服一直不处理（{tag}）", "channel": "电话"},
        {"id": f"{tag}-3", "text": f"网点排队两个小时，窗口只开一个（{tag}）", "channel": "网点"},
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("retention") / "home"


@pytest.fixture(scope="module")
def rdeps(home: Path) -> Deps:
    return make_deps(Settings(home=home, embedder="char-ngram", engine="rules"))


@pytest.fixture(scope="module")
def client(rdeps: Deps) -> Iterator[TestClient]:
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=rdeps, api_settings=api), client=REMOTE) as c:
        yield c


def sql(path: Path, query: str, *args: Any) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, args).fetchall()


def thread_rows(home: Path, thread_id: str) -> int:
    db = home / "checkpoints.sqlite"
    return sum(
        sql(db, f"SELECT count(*) FROM {table} WHERE thread_id = ?", thread_id)[0][0]
        for table in ("checkpoints", "writes")
    )


def submit(client: TestClient, tag: str) -> str:
    r = client.post("/v1/batches", json={"complaints": batch(tag)}, headers=auth(RW_KEY))
    assert r.status_code == 202, r.text
    bid = str(r.json()["batch_id"])
    assert wait_done(client.get, bid, auth(RW_KEY))["status"] == "done"
    return bid


def cli_run(home: Path, tmp_path: Path, tag: str) -> str:
    path = tmp_path / f"{tag}.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in batch(tag)), encoding="utf-8")
    out = tmp_path / f"out-{tag}"
    args = ["analyze", str(path), "--out", str(out), "--home", str(home), "--engine", "rules"]
    r = runner.invoke(cli, args, env=CHAR_NGRAM)
    assert r.exit_code == 0, r.output
    return str(json.loads((out / "run.json").read_text())["batch_id"])


def purge(home: Path, *args: str, input: str | None = None) -> Any:
    return runner.invoke(cli, ["purge", "--home", str(home), *args], input=input)


def test_purge_removes_old_batches_everywhere_and_keeps_recent_ones(
    client: TestClient, rdeps: Deps, home: Path, tmp_path: Path
) -> None:
    voc_db, checkpoints = home / "voc.db", home / "checkpoints.sqlite"
    old_job, new_job = submit(client, "old-api"), submit(client, "new-api")
    # A failed service batch keeps its checkpoint thread: insert one as a crashed worker leaves it.
    failed = "b-failed0000000ab"
    with sqlite3.connect(voc_db) as db:
        db.execute(
            "INSERT INTO jobs (id, owner, status, total, received, accepted, rejected, warnings, row_errors,"
            " created_at, attempts) VALUES (?, 'crm', 'failed', 3, 3, 3, 0, 0, '[]', ?, 3)",
            (failed, LONG_AGO),
        )
    run_prepared(prepare_batch(rows_from_records(batch("failed")), rdeps), rdeps, batch_id=failed)
    old_run, new_run = cli_run(home, tmp_path, "old-cli"), cli_run(home, tmp_path, "new-cli")
    # A recent batch whose complaints the warehouse last updated long ago: they go, the batch stays.
    stale = "b-stale000000000a"
    run_prepared(prepare_batch(rows_from_records(batch("stale")), rdeps), rdeps, batch_id=stale)
    warehouse = home / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute("UPDATE complaints SET updated_at = ? WHERE batch_id = ?", (LONG_AGO, stale))
    held = dict(sql(warehouse, "SELECT batch_id, count(*) FROM complaints GROUP BY batch_id"))
    assert held == {b: 3 for b in (old_job, new_job, failed, old_run, new_run, stale)}
    vectors = sql(warehouse, "SELECT count(*) FROM vectors")[0][0]

    with sqlite3.connect(voc_db) as db:
        db.execute("UPDATE jobs SET created_at = ? WHERE id = ?", (LONG_AGO, old_job))
    with sqlite3.connect(home / "audit.db") as db:
        db.execute("UPDATE ledger SET last_run = ? WHERE batch_id = ?", (LONG_AGO, old_run))
    old_results = sql(voc_db, "SELECT count(*) FROM results WHERE job_id = ?", old_job)[0][0]
    rows = {bid: thread_rows(home, bid) for bid in (failed, old_run, new_run)}
    assert old_results == 3 and all(rows.values()), rows
    expected = {
        "batches": 3,
        "jobs": 2,
        "runs": 1,
        "results": old_results,
        "checkpoint_threads": 2,
        "checkpoint_rows": rows[failed] + rows[old_run],
        "warehouse_complaints": 12,
        "warehouse_vectors": 12,  # each text of theirs once, used by no complaint that stays
        "skipped_running": 0,
    }

    # A dry run reports the same counts and removes nothing.
    size = checkpoints.stat().st_size
    dry = purge(home, "--older-than", "30", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["dry_run"] is True and {k: report[k] for k in expected} == expected
    assert sorted(report["batch_ids"]) == sorted([old_job, failed, old_run])
    table = purge(home, "--older-than", "30", "--dry-run")
    assert "DRY RUN" in table.output and "2 service jobs, 1 CLI runs" in table.output
    # Without --yes it asks; "no" removes nothing either.
    refused = purge(home, "--older-than", "30", input="n\n")
    assert refused.exit_code == 1 and "for good?" in refused.output
    assert thread_rows(home, old_run) == rows[old_run] and checkpoints.stat().st_size == size
    assert sql(voc_db, "SELECT count(*) FROM jobs WHERE id IN (?, ?)", old_job, failed)[0][0] == 2
    assert dict(sql(warehouse, "SELECT batch_id, count(*) FROM complaints GROUP BY batch_id")) == held
    assert sql(warehouse, "SELECT count(*) FROM vectors")[0][0] == vectors
    assert "12 complaints · 12 cached vectors" in table.output

    done = purge(home, "--older-than", "30", "--yes", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["dry_run"] is False and {k: report[k] for k in expected} == expected
    files = {f["name"]: f for f in report["files"]}
    assert set(files) == {"voc.db", "checkpoints.sqlite", "warehouse.db"} and report["vacuum"] == "done"
    assert files["checkpoints.sqlite"]["after"] < files["checkpoints.sqlite"]["before"]
    assert report["bytes_reclaimed"] == sum(f["before"] - f["after"] for f in report["files"]) > 0
    assert checkpoints.stat().st_size == files["checkpoints.sqlite"]["after"]

    # Gone from the job store and the checkpoint database...
    for bid in (old_job, failed):
        assert sql(voc_db, "SELECT count(*) FROM jobs WHERE id = ?", bid)[0][0] == 0
        assert sql(voc_db, "SELECT count(*) FROM results WHERE job_id = ?", bid)[0][0] == 0
    for bid in (failed, old_run):
        assert thread_rows(home, bid) == 0
    assert client.get(f"/v1/batches/{old_job}", headers=auth(RW_KEY)).status_code == 404
    # ...and from the warehouse, whose series now count only what it still holds...
    left = dict(sql(warehouse, "SELECT batch_id, count(*) FROM complaints GROUP BY batch_id"))
    assert left == {new_job: 3, new_run: 3}
    assert sql(warehouse, "SELECT count(*) FROM vectors")[0][0] == vectors - 12
    assert sql(warehouse, "SELECT count(*) FROM versions")[0][0] == 6
    counted = sql(warehouse, "SELECT coalesce(sum(complaints), 0) FROM series WHERE subject = 'problem'")
    assert counted == sql(warehouse, "SELECT count(*) FROM complaints WHERE tracked_id IS NOT NULL")
    # ...while the recent ones stay, and stay readable.
    assert thread_rows(home, new_run) == rows[new_run]
    assert client.get(f"/v1/batches/{new_job}", headers=auth(RW_KEY)).json()["status"] == "done"
    page = client.get(f"/v1/batches/{new_job}/results", headers=auth(RW_KEY)).json()
    assert [r["id"] for r in page["items"]] == [r["id"] for r in batch("new-api")]

    # The trail keeps every purged batch's story, the purge included; the ledger forgets them.
    audit = AuditLog(home / "audit.db")
    me = cli_actor().name
    purged = audit.query(AuditQuery(action="batch.purge"))
    assert {(e.target, e.actor, e.door) for e in purged} == {
        (b, me, "cli") for b in (old_job, failed, old_run)
    }
    assert next(e for e in purged if e.target == old_job).detail["results"] == old_results
    assert next(e for e in purged if e.target == old_run).detail["warehouse_complaints"] == 3
    summary = audit.query(AuditQuery(action="retention.purge"))
    assert len(summary) == 1 and summary[0].detail["batches"] == 3
    assert summary[0].detail["warehouse_complaints"] == 12 and summary[0].detail["warehouse_vectors"] == 12
    assert summary[0].detail["bytes_reclaimed"] == report["bytes_reclaimed"]
    assert [e.action for e in reversed(audit.query(AuditQuery(target=old_job)))][0] == "batch.submit"
    assert old_run not in audit.runs() and new_run in audit.runs()

    again = json.loads(purge(home, "--older-than", "30", "--yes", "--json").output)
    assert again["batches"] == 0 and again["checkpoint_rows"] == 0 and again["warehouse_complaints"] == 0


def test_threads_without_a_ledger_entry_age_by_their_checkpoint_and_running_ones_stay(
    client: TestClient, rdeps: Deps, home: Path
) -> None:
    leftover = "s-leftover000000a"  # as an interrupted POST /v1/analyze leaves it: no job, no ledger
    run_prepared(prepare_batch(rows_from_records(batch("leftover")), rdeps), rdeps, batch_id=leftover)
    running = "b-running0000000a"
    with sqlite3.connect(home / "voc.db") as db:
        db.execute(
            "INSERT INTO jobs (id, owner, status, total, received, accepted, rejected, warnings, row_errors,"
            " created_at, runner, heartbeat, attempts) VALUES (?, 'crm', 'running', 3, 3, 3, 0, 0, '[]', ?,"
            " 'elsewhere:1:a', ?, 1)",
            (running, LONG_AGO, time.time()),
        )
    try:
        retention = Retention(rdeps.settings, AuditLog(home / "audit.db"))
        now = retention.plan(30)
        assert leftover not in [d.batch_id for d in now.batches]
        assert now.running == [running] and running not in [d.batch_id for d in now.batches]
        later = retention.plan(30, now=datetime.now(UTC) + timedelta(days=40))
        found = next(d for d in later.batches if d.batch_id == leftover)
        assert found.kind == "run" and datetime.now(UTC) - found.since < timedelta(minutes=10)
        assert found.checkpoint_rows == thread_rows(home, leftover) > 0
        # The admin can still not delete a running batch over HTTP.
        assert client.delete(f"/v1/batches/{running}", headers=auth(ADMIN_KEY)).status_code == 409
    finally:
        with sqlite3.connect(home / "voc.db") as db:  # let no worker take it over later
            db.execute("UPDATE jobs SET status = 'failed' WHERE id = ?", (running,))


def test_help_teaches_audit_and_purge() -> None:
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "voc purge --older-than 90" in top.output and "voc audit" in top.output
    help_text = runner.invoke(cli, ["purge", "--help"]).output
    for words in (
        "--older-than",
        "--dry-run",
        "--yes",
        "Examples",
        "voc purge --older-than 90 --dry-run",
        "audit",
    ):
        assert words in help_text, words
    assert "voc audit --days 7" in runner.invoke(cli, ["audit", "--help"]).output
