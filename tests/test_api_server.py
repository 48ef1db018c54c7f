"""``voc serve`` as a real uvicorn process on a loopback port: a batch end to end over HTTP, and a
batch that survives ``kill -9`` of the server halfway through."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as voc
from tests.api_helpers import KEYS, READ_KEY, RW_KEY, auth, home_like, wait_done
from tools.deps import Deps

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One ``voc serve`` process; its log goes to a file the failure message quotes."""

    def __init__(self, home: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log = log
        self.env = env or {}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VOC_", "OPENAI_"))}
        env.update(
            VOC_API_KEYS=KEYS,
            VOC_API_JOB_WORKERS="1",
            # Small chunks, one at a time: many checkpoints, so a kill lands mid-batch.
            VOC_CHUNK_SIZE="2",
            VOC_MAX_CONCURRENCY="1",
        )
        env.update(self.env)
        cmd = [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port), "--home", str(self.home)]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"voc serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"voc serve not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def test_serve_refuses_unsafe_or_broken_configurations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("VOC_HOME", str(tmp_path))  # serve --home sets it; restored after the test
    monkeypatch.delenv("VOC_API_KEYS", raising=False)
    monkeypatch.delenv("VOC_API_KEYS_FILE", raising=False)
    result = runner.invoke(voc, ["serve", "--host", "0.0.0.0", "--home", str(tmp_path)])
    assert result.exit_code == 4 and "without API keys" in " ".join(result.output.split())
    monkeypatch.setenv("VOC_API_KEYS", "short:read")
    result = runner.invoke(voc, ["serve", "--home", str(tmp_path)])
    assert result.exit_code == 4 and "at least 16 characters" in " ".join(result.output.split())
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"name": "crm", "scopes": ["read"]}]}), encoding="utf-8")
    monkeypatch.delenv("VOC_API_KEYS")
    monkeypatch.setenv("VOC_API_KEYS_FILE", str(keys))
    result = runner.invoke(voc, ["serve", "--home", str(tmp_path)])
    assert result.exit_code == 4 and "keys[0]" in result.output


@pytest.fixture(scope="module")
def server(deps: Deps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    srv = Server(home_like(deps, root / "home"), root / "server.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def unique_records(sample_records: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for rec in sample_records:
        seen.setdefault(rec["id"], rec)
    return list(seen.values())


def test_a_batch_end_to_end_over_http(server: Server, unique_records: list[dict]) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/docs").status_code == 200
        assert http.post("/v1/batches", json={"complaints": unique_records[:1]}).status_code == 401
        r = http.post("/v1/batches", json={"complaints": unique_records[:6]}, headers=auth(RW_KEY))
        assert r.status_code == 202, r.text
        batch = r.json()
        events = []
        with http.stream("GET", f"{batch['status_url']}/events", headers=auth(RW_KEY)) as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
        assert events[-1][0] == "done"
        done = [e["progress"]["done"] for _, e in events]
        assert done == sorted(done) and done[-1] == 6
        stages = {None, "ingest", "attribute_and_trace", "analyze", "remediate", "track", "report"}
        assert {e["progress"]["stage"] for _, e in events} <= stages

        html = http.get(f"{batch['status_url']}/report?format=html", headers=auth(READ_KEY))
        assert html.status_code == 404  # another key's batch
        html = http.get(f"{batch['status_url']}/report?format=html", headers=auth(RW_KEY))
        assert html.status_code == 200 and "<html" in html.text and batch["batch_id"] in html.text
        md = http.get(f"{batch['status_url']}/report?format=md", headers=auth(RW_KEY))
        assert md.status_code == 200 and md.text.startswith("#")
        results = http.get(f"{batch['status_url']}/results", headers=auth(RW_KEY)).json()
        assert [r["id"] for r in results["items"]] == [rec["id"] for rec in unique_records[:6]]


def test_a_batch_survives_kill_9_of_the_server(server: Server, unique_records: list[dict]) -> None:
    records = unique_records[10:50]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/v1/batches", json={"complaints": records}, headers=auth(RW_KEY))
        assert r.status_code == 202, r.text
        batch_id = r.json()["batch_id"]
        deadline = time.monotonic() + 120
        while True:
            status = http.get(f"/v1/batches/{batch_id}", headers=auth(RW_KEY)).json()
            if status["progress"]["done"] >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    server.kill()
    assert status["status"] == "running" and 4 <= status["progress"]["done"] < len(records), status
    # The chunks finished before the kill are on disk (two complaints per chunk here), not only
    # in the memory of the process that died.
    con = sqlite3.connect(server.home / "checkpoints.sqlite")
    stored = con.execute("select count(*) from voc_chunks where thread_id = ?", (batch_id,)).fetchone()[0]
    con.close()
    assert stored >= 2, stored

    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        final = wait_done(http.get, batch_id, auth(RW_KEY), timeout=180)
        assert final["status"] == "done", final
        ids: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = http.get(
                f"/v1/batches/{batch_id}/results", params={"offset": offset, "limit": 7}, headers=auth(RW_KEY)
            ).json()
            ids += [item["id"] for item in page["items"]]
            offset = page["next_offset"]
    # Every complaint exactly once, none lost, none doubled by the resumed run.
    assert Counter(ids) == Counter(rec["id"] for rec in records)
    assert final["stats"]["resumed"] is True
    assert final["stats"]["counts"]["accepted"] == len(records)
