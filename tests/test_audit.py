"""The audit trail: what each door records (HTTP, MCP, CLI), who may read it, and that it never
holds complaint text. Real SQLite files under a fresh VOC_HOME, the real app and CLI.

The app here uses the char n-gram embedder: knowledge changes re-embed a store collection, and
that should take milliseconds; the audit paths are the same whatever the embedder.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
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
from graph.deps import make_deps
from graph.run import prepare_batch, run_prepared
from mcp_server.server import build_server
from services.config import ApiSettings, load_keys
from services.jobs import JobStore
from tests.api_helpers import ADMIN_KEY, KEYS, READ_KEY, RW_KEY, WRITE_KEY, auth, wait_done
from tools.audit import Actor, AuditError, AuditLog, AuditQuery, cli_actor
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import Settings

REMOTE = ("203.0.113.7", 50000)
CARD = "6222021234567894"
MOBILE = "13812345678"
PHRASE = "柜台经理态度恶劣还摔了我的存折"
COMPLAINTS = [
    {"id": "t1", "text": f"信用卡{CARD}被盗刷两笔，电话{MOBILE}", "channel": "电话"},
    {"id": "t2", "text": "手机银行升级以后一直闪退，登录不上", "channel": "APP"},
    {"id": "t3", "text": PHRASE, "channel": "网点"},
]
runner = CliRunner()


def key_name(key: str) -> str:
    """The audit actor of a configured key (unnamed keys are named by their digest)."""
    names = {p.scopes: p.name for p in load_keys(ApiSettings(keys=KEYS)).values()}
    scopes = {READ_KEY: {"read"}, WRITE_KEY: {"write"}, RW_KEY: {"read", "write"}, ADMIN_KEY: {"admin"}}[key]
    return "key:" + names[frozenset(scopes)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit") / "home"


@pytest.fixture(scope="module")
def audit_deps(home: Path) -> Deps:
    return make_deps(Settings(home=home, embedder="char-ngram", engine="rules"))


@pytest.fixture(scope="module")
def client(audit_deps: Deps) -> Iterator[TestClient]:
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=audit_deps, api_settings=api), client=REMOTE) as c:
        yield c


def events(client: TestClient, **params: Any) -> list[dict]:
    r = client.get("/v1/audit", params=params, headers=auth(ADMIN_KEY))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# -- the log itself ------------------------------------------------------------------------------


def test_the_log_filters_pages_and_refuses_text(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    alice, crm = Actor("user:alice", "cli"), Actor("key:crm", "http")
    log.record(alice, "batch.submit", "b-1", received=3, accepted=2)
    log.record(crm, "batch.read", "b-1", part="results", items=2)
    log.record(crm, "knowledge.create", "KB-9")
    got = log.query(AuditQuery())
    assert [e.action for e in got] == ["knowledge.create", "batch.read", "batch.submit"]
    assert (
        got[2].actor == "user:alice"
        and got[2].door == "cli"
        and got[2].detail == {"received": 3, "accepted": 2}
    )
    assert got[0].ts.tzinfo is not None
    assert [e.action for e in log.query(AuditQuery(action="batch"))] == ["batch.read", "batch.submit"]
    assert [e.target for e in log.query(AuditQuery(actor="key:crm", door="http"))] == ["KB-9", "b-1"]
    assert len(log.query(AuditQuery(target="b-1"))) == 2
    first_page = log.query(AuditQuery(limit=2))
    older = log.query(AuditQuery(limit=2, before=first_page[-1].id))
    assert [e.action for e in older] == ["batch.submit"]
    # Details are counts and code words: text that slipped in would be a bug, and is refused.
    with pytest.raises(ValueError):
        log.record(crm, "batch.read", "b-1", part="我的信用卡被盗刷")
    # Append-only: the trail cannot be edited or pruned through SQL.
    db = sqlite3.connect(tmp_path / "audit.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM events")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE events SET actor = 'someone-else'")
    db.close()


def test_reading_the_log_is_recorded(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    log.record(Actor("local", "http"), "batch.delete", "b-2", results=4, checkpoint_rows=0)
    assert len(log.read(AuditQuery(), Actor("user:bob", "cli"))) == 1
    newest = log.query(AuditQuery(limit=1))[0]
    assert (newest.action, newest.actor, newest.detail) == ("audit.read", "user:bob", {"rows": 1})


# -- HTTP ----------------------------------------------------------------------------------------


def test_submit_read_delete_over_http_are_in_the_trail(client: TestClient, home: Path) -> None:
    rw = auth(RW_KEY)
    r = client.post("/v1/batches", json={"complaints": COMPLAINTS}, headers=rw)
    assert r.status_code == 202, r.text
    bid = r.json()["batch_id"]
    assert wait_done(client.get, bid, rw)["status"] == "done"
    assert client.get(f"/v1/batches/{bid}/results?limit=2", headers=rw).status_code == 200
    assert client.get(f"/v1/batches/{bid}/problems", headers=rw).status_code == 200
    assert client.get(f"/v1/batches/{bid}/report?format=json", headers=rw).status_code == 200

    # Another key's batch is not there for it to delete; the owner may.
    assert client.delete(f"/v1/batches/{bid}", headers=auth(WRITE_KEY)).status_code == 404
    assert client.delete(f"/v1/batches/{bid}", headers=auth(READ_KEY)).status_code == 403
    assert client.delete(f"/v1/batches/{bid}", headers=rw).status_code == 204
    assert client.get(f"/v1/batches/{bid}", headers=rw).status_code == 404
    assert client.delete(f"/v1/batches/{bid}", headers=rw).status_code == 404
    assert JobStore(home / "voc.db").count_results(bid) == 0

    trail = list(reversed(events(client, target=bid)))
    who = key_name(RW_KEY)
    assert {(e["actor"], e["door"]) for e in trail} == {(who, "http")}
    actions = [e["action"] for e in trail]
    assert actions[0] == "batch.submit" and actions[-1] == "batch.delete"
    parts = [e["detail"]["part"] for e in trail if e["action"] == "batch.read"]
    # wait_done polled the status several times: each poll is a read, and each is recorded.
    assert {"status", "results", "problems", "report"} == set(parts)
    assert trail[0]["detail"] == {"received": 3, "accepted": 3, "rejected": 0}
    results_read = next(e for e in trail if e["detail"].get("part") == "results")
    assert results_read["detail"] == {"part": "results", "offset": 0, "items": 2}
    assert trail[-1]["detail"] == {"results": 3, "checkpoint_rows": 0, "warehouse_complaints": 3}

    # The CLI reads the same trail.
    out = runner.invoke(cli, ["audit", "--target", bid, "--json", "--home", str(home)])
    assert out.exit_code == 0, out.output
    assert [e["action"] for e in json.loads(out.output)] == [e["action"] for e in reversed(trail)]
    table = runner.invoke(cli, ["audit", "--action", "batch.delete", "--home", str(home)])
    assert table.exit_code == 0 and "Time (UTC)" in table.output and bid[:8] in table.output


def _put_job(home: Path, job_id: str, owner: str, status: str) -> None:
    """A job row as a worker on another machine would leave it (inserted directly, so this app's
    own worker never gets to claim it first)."""
    with sqlite3.connect(home / "voc.db") as db:
        db.execute(
            "INSERT INTO jobs (id, owner, status, total, received, accepted, rejected, warnings, row_errors,"
            " created_at, runner, heartbeat, attempts) VALUES (?, ?, ?, 2, 2, 2, 0, 0, '[]', ?, ?, ?, 1)",
            (job_id, owner, status, "2026-01-01T00:00:00+00:00", "elsewhere:1:a", time.time()),
        )


def test_deleting_removes_the_checkpoint_and_refuses_a_running_batch(
    client: TestClient, audit_deps: Deps, home: Path
) -> None:
    owner = key_name(WRITE_KEY).removeprefix("key:")
    _put_job(home, "b-running00000001", owner, "running")
    _put_job(home, "b-failed000000001", owner, "failed")
    prepared = prepare_batch(rows_from_records(COMPLAINTS[:2]), audit_deps)
    run_prepared(prepared, audit_deps, batch_id="b-failed000000001")  # its checkpoint, as after a crash

    r = client.delete("/v1/batches/b-running00000001", headers=auth(WRITE_KEY))
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert client.delete("/v1/batches/b-failed000000001", headers=auth(ADMIN_KEY)).status_code == 204
    con = sqlite3.connect(audit_deps.settings.checkpoint_db)
    left = con.execute("SELECT count(*) FROM checkpoints WHERE thread_id = 'b-failed000000001'").fetchone()[0]
    con.close()
    assert left == 0
    deleted = events(client, target="b-failed000000001", action="batch.delete")[0]
    assert deleted["actor"] == key_name(ADMIN_KEY) and deleted["detail"]["checkpoint_rows"] > 0
    assert events(client, target="b-running00000001") == []
    with sqlite3.connect(home / "voc.db") as db:  # let no worker take it over later
        db.execute("UPDATE jobs SET status = 'failed' WHERE id = 'b-running00000001'")


def test_only_admin_reads_the_trail_with_filters_and_pages(client: TestClient) -> None:
    for key in (READ_KEY, WRITE_KEY, RW_KEY):
        assert client.get("/v1/audit", headers=auth(key)).status_code == 403
    assert client.get("/v1/audit").status_code == 401
    page = client.get("/v1/audit", params={"limit": 2}, headers=auth(ADMIN_KEY)).json()
    assert len(page["items"]) == 2 and page["next_before"] == page["items"][-1]["id"]
    more = client.get(
        "/v1/audit", params={"limit": 2, "before": page["next_before"]}, headers=auth(ADMIN_KEY)
    ).json()
    assert all(e["id"] < page["next_before"] for e in more["items"])
    # Reading the trail is on the trail.
    assert events(client, action="audit.read", limit=1)[0]["actor"] == key_name(ADMIN_KEY)
    assert events(client, since="2999-01-01T00:00:00") == []
    assert events(client, days=1, door="http")
    r = client.get("/v1/audit", params={"days": 1, "since": "2026-01-01"}, headers=auth(ADMIN_KEY))
    assert r.status_code == 422
    assert client.get("/v1/audit", params={"door": "fax"}, headers=auth(ADMIN_KEY)).status_code == 422
    assert "/v1/audit" in client.get("/openapi.json").json()["paths"]


def test_knowledge_changes_are_audited(client: TestClient) -> None:
    admin = auth(ADMIN_KEY)
    entry = {"id": "KB-AUDIT-1", "type": "standard_answer", "title": "审计测试条目", "text": "仅用于测试。"}
    assert client.post("/v1/knowledge/entries", json=entry, headers=admin).status_code == 201
    assert client.delete("/v1/knowledge/entries/KB-AUDIT-1", headers=admin).status_code == 200
    assert client.delete("/v1/knowledge/entries/KB-AUDIT-1", headers=admin).status_code == 404
    got = [(e["action"], e["actor"], e["door"]) for e in reversed(events(client, target="KB-AUDIT-1"))]
    assert got == [
        ("knowledge.create", key_name(ADMIN_KEY), "http"),
        ("knowledge.delete", key_name(ADMIN_KEY), "http"),
    ]
    matrix = client.get("/v1/knowledge/service-matrix?format=yaml", headers=admin).content
    r = client.put(
        "/v1/knowledge/service-matrix", content=matrix, headers={**admin, "Content-Type": "application/yaml"}
    )
    assert r.status_code == 200, r.text
    replaced = events(client, action="knowledge.replace", limit=1)[0]
    assert replaced["target"] == "service_matrix" and replaced["detail"] == {"bytes": len(matrix)}


def test_a_failed_audit_write_loses_no_batch_and_serves_no_data(
    client: TestClient, home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    audit: AuditLog = client.app.state.services.audit  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> int:
        raise AuditError("the audit log failed (disk full, in this test)")

    monkeypatch.setattr(audit, "record", broken)
    rw = auth(RW_KEY)
    with caplog.at_level(logging.ERROR, logger="voc.audit"):
        r = client.post("/v1/batches", json={"complaints": COMPLAINTS[1:]}, headers=rw)
    # The batch is stored and queued all the same; the missing event is in the server log.
    assert r.status_code == 202, r.text
    bid = r.json()["batch_id"]
    assert JobStore(home / "voc.db").get(bid) is not None
    assert "AUDIT EVENT NOT WRITTEN: batch.submit " + bid in caplog.text
    # Reads are refused rather than served without a trace.
    status = client.get(f"/v1/batches/{bid}", headers=rw)
    assert status.status_code == 503 and status.json()["error"]["code"] == "audit_unavailable"
    assert client.get("/v1/audit", headers=auth(ADMIN_KEY)).status_code == 503
    monkeypatch.undo()
    assert wait_done(client.get, bid, rw)["status"] == "done"


# -- MCP and CLI ---------------------------------------------------------------------------------


def test_mcp_calls_are_audited_as_the_stdio_user(audit_deps: Deps, home: Path) -> None:
    server = build_server(audit_deps, api_settings=ApiSettings(keys=None, keys_file=None, job_workers=1))

    async def flow() -> str:
        async with Client(server) as c:
            accepted = await c.call_tool("submit_batch", {"complaints": COMPLAINTS[1:]})
            bid = str(accepted.structured_content["batch_id"])
            await c.call_tool("get_batch_status", {"batch_id": bid, "wait_seconds": 60})
            await c.call_tool("get_batch_report", {"batch_id": bid})
            return bid

    bid = anyio.run(flow)
    trail = AuditLog(home / "audit.db").query(AuditQuery(target=bid))
    assert {(e.actor, e.door) for e in trail} == {("mcp:stdio", "mcp")}
    # One read for the status however long it waited, one for the report's problems.
    assert sorted(str(e.detail.get("part", e.action)) for e in trail) == [
        "batch.submit",
        "problems",
        "status",
    ]


def test_a_cli_run_is_audited_as_the_local_user(home: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in COMPLAINTS), encoding="utf-8")
    env = {"VOC_EMBEDDER": "char-ngram"}
    out = tmp_path / "out"
    args = ["analyze", str(batch), "--out", str(out), "--home", str(home), "--engine", "rules"]
    r = runner.invoke(cli, args, env=env)
    assert r.exit_code == 0, r.output
    bid = json.loads((out / "run.json").read_text())["batch_id"]
    trail = AuditLog(home / "audit.db").query(AuditQuery(target=bid))
    assert [(e.actor, e.door, e.action) for e in trail] == [(cli_actor().name, "cli", "batch.submit")]
    assert trail[0].detail == {"received": 3, "accepted": 3, "rejected": 0}
    assert bid in AuditLog(home / "audit.db").runs()  # the ledger voc purge ages CLI batches by


def test_the_audit_file_holds_no_complaint_text(home: Path) -> None:
    """Run last in this module: every flow above has written to the trail by now."""
    assert (home / "audit.db").is_file()
    data = b"".join(p.read_bytes() for p in home.glob("audit.db*"))
    for needle in (CARD, MOBILE, "6222********7894", "138****5678", PHRASE, "闪退", "盗刷"):
        assert needle.encode() not in data, needle
