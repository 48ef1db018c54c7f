"""Tracking through every door: what `voc analyze`, `POST /v1/batches` and MCP `submit_batch` keep in
the warehouse (or, told not to, don't), under which source, what the report says since last time,
and that deleting a batch takes its complaints out of the warehouse again.

Real parts: the session's embedder and knowledge store, each test in a VOC_HOME of its own (so its
warehouse starts empty), the real CLI, app and MCP server.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from graph.run import run_batch
from mcp_server.server import build_server
from services.config import ApiSettings
from services.jobs import SCHEMA, JobStore
from tests.api_helpers import KEYS, RW_KEY, auth, home_like, wait_done
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


def sql(path: Path, query: str, *args: Any) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, args).fetchall()


def kept(home: Path) -> dict[tuple[str, str], str]:
    """The warehouse's complaints: (source, id) -> the batch that last stored it."""
    path = home / "warehouse.db"
    if not path.exists():
        return {}
    return {(s, i): b for s, i, b in sql(path, "SELECT source, id, batch_id FROM complaints")}


def series_consistent(home: Path) -> bool:
    """Every series (tracked problems', root-cause labels') adds up to the complaints the warehouse holds."""
    path = home / "warehouse.db"
    counted = sql(path, "SELECT subject, key, sum(complaints) FROM series GROUP BY subject, key")
    held = sql(
        path,
        "SELECT 'problem', tracked_id, count(*) FROM complaints"
        " WHERE tracked_id IS NOT NULL GROUP BY tracked_id UNION ALL"
        " SELECT 'label', l2, count(*) FROM complaints WHERE negative AND l2 IS NOT NULL GROUP BY l2",
    )
    return {(s, k): n for s, k, n in counted if n} == {(s, k): n for s, k, n in held}


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


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


# -- voc analyze -----------------------------------------------------------------------------------


def test_analyze_keeps_nothing_with_no_track_and_keeps_ids_under_their_source(
    deps: Deps, sample_records: list[dict], tmp_path: Path
) -> None:
    home = home_like(deps, tmp_path / "home")
    batch = write_jsonl(tmp_path / "batch.jsonl", records(sample_records, 6, "cli"))

    def analyze(out: str, *options: str) -> tuple[Any, dict]:
        args = ["analyze", str(batch), "--out", str(tmp_path / out), "--home", str(home), "--engine", "rules"]
        result = runner.invoke(cli, [*args, *options])
        assert result.exit_code == 0, result.output
        return result, json.loads((tmp_path / out / "run.json").read_text())

    result, run = analyze("off", "--no-track")
    assert kept(home) == {} and run["tracking"] is None
    assert "Tracking" in result.output and "off: nothing kept" in result.output
    assert "本批未纳入跟踪" in (tmp_path / "off" / "report.md").read_text()
    lines = (tmp_path / "off" / "results.jsonl").read_text().splitlines()
    assert all(json.loads(line)["tracked_problem_id"] is None for line in lines)
    if (home / "warehouse.db").exists():
        assert sql(home / "warehouse.db", "SELECT count(*) FROM vectors") == [(0,)]

    result, run = analyze("crm", "--source", "crm")
    ids = {f"cli-{i}" for i in range(1, 7)}
    assert set(kept(home)) == {("crm", i) for i in ids}
    assert run["tracking"]["source"] == "crm" and run["tracking"]["stored"] == 6
    assert "6 kept" in result.output and "source crm" in result.output
    # The same export again is the same complaints, updated and never counted twice...
    _, again = analyze("crm-again", "--source", "crm", "--fresh")
    assert len(kept(home)) == 6 and again["tracking"]["warehouse_complaints"] == 6
    # ...while the same ids from another system are other complaints.
    _, other = analyze("hotline", "--source", "hotline")
    assert set(kept(home)) == {(s, i) for s in ("crm", "hotline") for i in ids}
    assert other["tracking"]["warehouse_complaints"] == 12 and other["batch_id"] != run["batch_id"]

    help_text = runner.invoke(cli, ["analyze", "--help"]).output
    assert "--no-track" in help_text and "--source" in help_text and "never counted twice" in help_text


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


# -- HTTP ------------------------------------------------------------------------------------------


@pytest.fixture()
def http(deps: Deps, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    home = tmp_path / "home"
    api = ApiSettings(keys=KEYS, job_workers=1, sync_max_complaints=5, rate_per_minute=0)
    with TestClient(create_app(deps=home_deps(deps, home), api_settings=api), client=REMOTE) as c:
        yield c, home


def test_http_batches_are_kept_unless_track_is_false_and_delete_takes_them_out(
    http: tuple[TestClient, Path], sample_records: list[dict]
) -> None:
    client, home = http
    rw = auth(RW_KEY)

    def submit(tag: str, start: int, options: dict | None = None) -> str:
        body: dict[str, Any] = {"complaints": records(sample_records[start:], 5, tag)}
        if options is not None:
            body["options"] = options
        r = client.post("/v1/batches", json=body, headers=rw)
        assert r.status_code == 202, r.text
        assert wait_done(client.get, r.json()["batch_id"], rw)["status"] == "done"
        return str(r.json()["batch_id"])

    default = submit("plain", 40)
    untracked = submit("off", 45, {"track": False, "source": "crm"})
    crm = submit("crm", 50, {"source": "crm"})
    assert kept(home) == {
        **{("default", f"plain-{i}"): default for i in range(1, 6)},
        **{("crm", f"crm-{i}"): crm for i in range(1, 6)},
    }
    assert client.get(f"/v1/batches/{untracked}", headers=rw).json()["stats"]["tracking"] is None
    assert client.get(f"/v1/batches/{crm}", headers=rw).json()["stats"]["tracking"]["source"] == "crm"
    assert "本批未纳入跟踪" in client.get(f"/v1/batches/{untracked}/report?format=md", headers=rw).text
    assert [r[0] for r in sql(home / "voc.db", "SELECT track FROM jobs ORDER BY created_at")] == [1, 0, 1]
    # The synchronous door keeps nothing, whatever the options say.
    body = {"complaints": records(sample_records[40:], 3, "sync"), "options": {"track": True}}
    assert client.post("/v1/analyze", json=body, headers=rw).status_code == 200
    assert not any(i.startswith("sync-") for _, i in kept(home))
    bad = client.post("/v1/batches", json={**body, "options": {"track": "maybe"}}, headers=rw)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["loc"] == "body.options.track"

    def vectors() -> int:
        return int(sql(home / "warehouse.db", "SELECT count(*) FROM vectors")[0][0])

    assert vectors() == 10  # each tracked text once; the untracked batch cached none
    negative = "SELECT count(*) FROM complaints WHERE batch_id = ? AND negative AND l2 IS NOT NULL"
    assert sql(home / "warehouse.db", negative, default)[0][0] > 0  # its labels' series count them
    assert series_consistent(home)
    assert client.delete(f"/v1/batches/{default}", headers=rw).status_code == 204
    assert set(kept(home)) == {("crm", f"crm-{i}") for i in range(1, 6)}
    assert series_consistent(home) and vectors() == 5
    assert sql(home / "warehouse.db", "SELECT count(*) FROM versions WHERE batch_id = ?", default) == [(0,)]


def test_an_older_job_store_gains_the_track_columns(tmp_path: Path) -> None:
    path = tmp_path / "voc.db"
    old_schema = SCHEMA.replace(",\n    track INTEGER,\n    track_source TEXT\n", "\n")
    assert "track" not in old_schema
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO jobs (id, owner, status, total, received, accepted, rejected, warnings, row_errors,"
            " created_at) VALUES ('b-old', 'crm', 'done', 1, 1, 1, 0, 0, '[]', '2026-01-01T00:00:00+00:00')"
        )
    store = JobStore(path)
    JobStore(path)  # a second process opening it changes nothing more
    job = store.get("b-old")
    assert job is not None and job.track is None and job.track_source is None
    columns = [r[1] for r in sql(path, "PRAGMA table_info(jobs)")]
    assert columns.count("track") == 1 and columns.count("track_source") == 1


# -- MCP -------------------------------------------------------------------------------------------


def test_mcp_submit_batch_tracks_unless_told_not_to(
    deps: Deps, sample_records: list[dict], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    api = ApiSettings(keys=None, keys_file=None, job_workers=1, sync_max_complaints=5)
    server = build_server(home_deps(deps, home), api_settings=api)

    async def main() -> list[str]:
        ids = []
        async with Client(server) as c:
            for tag, extra in (("mcp-off", {"track": False}), ("mcp-on", {"source": "assistant"})):
                args = {"complaints": records(sample_records[60:], 4, tag), **extra}
                accepted = await c.call_tool("submit_batch", args)
                assert not accepted.is_error, accepted.content
                assert isinstance(accepted.structured_content, dict)
                bid = accepted.structured_content["batch_id"]
                status = await c.call_tool("get_batch_status", {"batch_id": bid, "wait_seconds": 60})
                assert isinstance(status.structured_content, dict)
                assert status.structured_content["status"] == "done", status.structured_content
                ids.append(bid)
            # analyze_complaints answers now and keeps nothing.
            args = {"complaints": records(sample_records[60:], 3, "mcp-now")}
            assert not (await c.call_tool("analyze_complaints", args)).is_error
        return ids

    _, tracked = anyio.run(main)
    assert kept(home) == {("assistant", f"mcp-on-{i}"): tracked for i in range(1, 5)}
