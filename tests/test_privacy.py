"""No planted personal value leaks through any door, with the llm engine on a scripted model.

Each door runs as a user runs it: ``voc analyze`` as a subprocess, ``voc serve`` as a real
uvicorn process, ``voc mcp`` over stdio. All three use the llm engine against the scripted
OpenAI-compatible server on loopback, so the prompts the model received are a sink too. After
each door's batch we search every response, error body, log line and every file under its
VOC_HOME (job store, audit log, checkpoints, Chroma) for every written form of every value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.api_helpers import ADMIN_KEY, RW_KEY, auth, home_like, wait_done
from tests.fake_openai import FakeOpenAI
from tests.privacy_helpers import CARD16, MOBILE_A, NEEDLES, ROWS, leaks_in, leaks_under, records
from tests.test_api_server import Server
from tools.deps import Deps

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def llm_env(model: FakeOpenAI) -> dict[str, str]:
    return {"VOC_ENGINE": "llm", "VOC_LLM_BASE_URL": model.base_url, "VOC_LLM_MODEL": "fake-model"}


def prompts_since(model: FakeOpenAI, start: int) -> list[dict[str, Any]]:
    return [r["body"] for r in model.requests[start:]]


def report(capsys: pytest.CaptureFixture[str], door: str, sinks: int, leaks: list[tuple[str, str]]) -> None:
    with capsys.disabled():
        print(f"\n[leak test] {door}: {len(NEEDLES)} planted values x {sinks} sinks -> {len(leaks)} found")


def test_cli_door_leaks_nothing(
    deps: Deps, model: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = home_like(deps, tmp_path / "home")
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records()) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VOC_HOME": str(home), **llm_env(model)}
    first = len(model.requests)

    def voc(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, capture_output=True
        )

    run = voc("analyze", str(batch), "--out", str(out))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in results] == [p.id for p in ROWS]
    assert {r["engine"] for r in results} == {"llm"}
    errors = (out / "errors.jsonl").read_text(encoding="utf-8")
    assert "received_at" in errors and "text" in errors  # the bad rows are named, by field
    audit = voc("audit", "--json")
    purge = voc("purge", "--older-than", "30", "--dry-run", "--json")
    assert audit.returncode == 0 and purge.returncode == 0

    prompts = prompts_since(model, first)
    assert prompts, "the llm engine never called the model"
    leaks = (
        leaks_in("analyze stdout+stderr", run.stdout + run.stderr)
        + leaks_in("audit output", audit.stdout + audit.stderr)
        + leaks_in("purge output", purge.stdout + purge.stderr)
        + leaks_under(out, "out")
        + leaks_under(home, "VOC_HOME")
        + leaks_in("prompts", prompts)
    )
    sinks = 4 + sum(1 for p in [*out.rglob("*"), *home.rglob("*")] if p.is_file())
    report(capsys, "CLI", sinks, leaks)
    assert leaks == []


def test_http_door_leaks_nothing(
    deps: Deps, model: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = home_like(deps, tmp_path / "home")
    log = tmp_path / "server.log"
    srv = Server(home, log, env={**llm_env(model), "VOC_CHUNK_SIZE": "10"})
    first = len(model.requests)
    bodies: list[tuple[str, bytes]] = []
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60, headers=auth(RW_KEY)) as http:

            def call(method: str, url: str, **kw: Any) -> httpx.Response:
                r = http.request(method, url, **kw)
                bodies.append((f"{method} {url} -> {r.status_code}", r.content))
                return r

            accepted = call("POST", "/v1/batches", json={"complaints": records()})
            assert accepted.status_code == 202, accepted.text
            batch_id = accepted.json()["batch_id"]
            assert wait_done(http.get, batch_id, timeout=240)["status"] == "done"
            base = f"/v1/batches/{batch_id}"
            for url in (base, f"{base}/results", f"{base}/problems", f"{base}/events"):
                assert call("GET", url).status_code == 200
            for fmt in ("md", "html", "json"):
                assert call("GET", f"{base}/report", params={"format": fmt}).status_code == 200
            sync = call("POST", "/v1/analyze", json={"complaints": records()[:2]})
            assert sync.status_code == 200, sync.text
            # Bad requests: the error names the problem, never the value.
            assert call("POST", "/v1/batches", json={"complaints": f"卡号{CARD16}"}).status_code == 422
            bad_field = call(
                "POST", "/v1/batches", json={"complaints": [{"id": 7, "text": f"回电{MOBILE_A}"}]}
            )
            assert bad_field.status_code in (202, 422)
            garbage = call(
                "POST", "/v1/batches", content=f"卡号{CARD16} 电话{MOBILE_A}".encode(), headers=auth(RW_KEY)
            )
            assert garbage.status_code in (400, 415, 422)
            audit = call("GET", "/v1/audit", headers=auth(ADMIN_KEY))
            assert audit.status_code == 200 and batch_id in audit.text
    finally:
        srv.stop()

    prompts = prompts_since(model, first)
    assert prompts, "the llm engine never called the model"
    leaks = [hit for sink, body in bodies for hit in leaks_in(sink, body)]
    leaks += (
        leaks_in("server log", log.read_bytes())
        + leaks_under(home, "VOC_HOME")
        + leaks_in("prompts", prompts)
    )
    sinks = len(bodies) + 2 + sum(1 for p in home.rglob("*") if p.is_file())
    report(capsys, "HTTP", sinks, leaks)
    assert leaks == []


def test_mcp_door_leaks_nothing(
    deps: Deps, model: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = home_like(deps, tmp_path / "home")
    stderr = tmp_path / "mcp-stderr.log"
    # The server's stderr (its log) goes to a file we can search afterwards.
    cmd = f"exec '{sys.executable}' -m cli.main mcp 2>>'{stderr}'"
    params = StdioServerParameters(
        command="/bin/sh", args=["-c", cmd], env={"VOC_HOME": str(home), **llm_env(model)}, cwd=str(REPO)
    )
    good = [r for r in records() if r["id"].startswith("p-")]
    first = len(model.requests)

    async def session() -> list[tuple[str, Any]]:
        outputs: list[tuple[str, Any]] = []
        async with Client(params) as client:

            async def tool(name: str, args: dict[str, Any]) -> Any:
                result = await client.call_tool(name, args)
                texts = [getattr(c, "text", "") for c in result.content]
                outputs.append(
                    (f"{name} -> {'error' if result.is_error else 'ok'}", [texts, result.structured_content])
                )
                return result

            analysed = await tool("analyze_complaints", {"complaints": good})
            assert not analysed.is_error, analysed.content[0].text
            await tool("analyze_complaints", {"complaints": records()[-2:]})  # only bad rows
            await tool("trace_root_cause", {"text": ROWS[0].text})
            await tool("attribute_complaint", {"text": ROWS[1].text, "channel": "APP"})
            await tool("assess_priority", {"complaints": good[:4]})
            await tool("suggest_remediation", {"problem": ROWS[2].text})
            await tool("search_knowledge", {"query": f"卡号{CARD16}被盗刷"})
            submitted = await tool("submit_batch", {"complaints": records()})
            batch_id = submitted.structured_content["batch_id"]
            await tool("get_batch_status", {"batch_id": batch_id, "wait_seconds": 120})
            for fmt in ("summary", "md"):
                await tool("get_batch_report", {"batch_id": batch_id, "format": fmt})
        return outputs

    outputs = anyio.run(session)
    prompts = prompts_since(model, first)
    assert prompts, "the llm engine never called the model"
    leaks = [hit for sink, body in outputs for hit in leaks_in(sink, body)]
    leaks += leaks_in("mcp stderr", stderr.read_bytes()) + leaks_under(home, "VOC_HOME")
    leaks += leaks_in("prompts", prompts)
    sinks = len(outputs) + 2 + sum(1 for p in home.rglob("*") if p.is_file())
    report(capsys, "MCP", sinks, leaks)
    assert leaks == []
