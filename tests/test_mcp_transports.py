"""The MCP server over real transports: ``voc mcp`` as a subprocess driven by the SDK's stdio client,
and streamable HTTP on a loopback port (standalone and mounted in the FastAPI app), with keys."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as voc
from mcp_server.http import http_app
from mcp_server.server import build_server
from services.config import ApiSettings
from services.security import Auth
from tests.api_helpers import KEYS, READ_KEY, RW_KEY, WRITE_KEY, auth, home_like, served
from tools.deps import Deps

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
pytestmark = pytest.mark.slow
MOBILE = "13912345678"
COMPLAINTS = [
    {"id": "s1", "text": f"手机银行升级后一直闪退，登录不上，请回电{MOBILE}", "channel": "APP"},
    {"id": "s2", "text": "信用卡被盗刷两笔共5000元，要求马上处理", "channel": "电话"},
    {"id": "s3", "text": "网点排队两个小时，柜员态度很差"},
]


def over_http(url: str, key: str | None, fn: Callable[[Client], Awaitable[T]], mode: str = "auto") -> T:
    async def main() -> T:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # The SDK's own default: a long read timeout, for streams of progress notifications.
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                return await fn(client)

    return anyio.run(main)


def test_stdio_session_with_voc_mcp_as_a_subprocess(deps: Deps, tmp_path: Path) -> None:
    home = home_like(deps, tmp_path / "home")  # the session's store: no re-embedding at start
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp"],
        env={"VOC_HOME": str(home), "VOC_ENGINE": "rules"},
        cwd=str(REPO),
    )

    async def main() -> tuple[Any, Any]:
        async with Client(params) as client:
            tools = await client.list_tools()
            return tools, await client.call_tool("analyze_complaints", {"complaints": COMPLAINTS})

    tools, result = anyio.run(main)
    assert len(tools.tools) == 19
    assert not result.is_error, result.content[0].text
    out = result.structured_content
    assert [f["id"] for f in out["findings"]] == ["s1", "s2", "s3"]
    by_id = {f["id"]: f for f in out["findings"]}
    assert by_id["s1"]["department_id"] == "digital_banking" and by_id["s2"]["grade"] == "特急"
    assert out["summary"]["pii_masked"] == 1 and MOBILE not in str(out)
    assert (home / "voc.db").is_file()  # the job store the HTTP service uses, in this VOC_HOME


def test_streamable_http_needs_a_key_once_keys_are_configured(deps: Deps) -> None:
    api = ApiSettings(keys=KEYS, keys_file=None, job_workers=1, rate_per_minute=0, max_body_bytes=64 * 1024)
    keys = Auth(api)
    app = http_app(build_server(deps, api_settings=api, auth=keys), keys, api_settings=api)
    with served(app) as base:
        url = f"{base}/mcp"
        bare = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
        assert bare.json()["error"]["code"] == "unauthorized"
        wrong = httpx.post(url, json={}, headers=auth("not-a-key-0123456789"))
        assert wrong.status_code == 401
        cross_site = httpx.post(url, json={}, headers={**auth(RW_KEY), "Origin": "https://evil.example"})
        assert cross_site.status_code == 403 and cross_site.json()["error"]["code"] == "forbidden_origin"
        big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"text": "投诉" * 40_000}}
        headers = {**auth(RW_KEY), "Accept": "application/json, text/event-stream"}
        assert httpx.post(url, json=big, headers=headers).status_code == 413
        with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as a transport error
            over_http(url, None, lambda c: c.list_tools())

        async def reader(c: Client) -> tuple[Any, Any]:
            found = await c.call_tool("search_knowledge", {"query": "信用卡盗刷", "k": 1})
            return found, await c.call_tool("analyze_complaints", {"complaints": COMPLAINTS[:1]})

        found, refused = over_http(url, READ_KEY, reader)
        assert not found.is_error and found.structured_content["hits"]
        assert refused.is_error and "lacks the 'write' scope" in refused.content[0].text

        progress: list[float] = []

        async def writer(c: Client) -> Any:
            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            return await c.call_tool(
                "analyze_complaints", {"complaints": COMPLAINTS}, progress_callback=on_progress
            )

        result = over_http(url, RW_KEY, writer)
        assert not result.is_error, result.content[0].text
        assert len(result.structured_content["findings"]) == 3 and progress == sorted(progress)
        assert len(progress) >= 3
        # A client of the 2025 protocol: a stateful session tied to the key that opened it.
        traced = over_http(
            url, RW_KEY, lambda c: c.call_tool("trace_root_cause", {"text": "被盗刷"}), "legacy"
        )
        assert traced.structured_content["root_cause"]["dimension"] == "环"


def test_the_http_service_serves_mcp_at_slash_mcp_on_the_same_job_store(deps: Deps) -> None:
    api = ApiSettings(keys=KEYS, keys_file=None, job_workers=1, rate_per_minute=0)
    with served(create_app(deps=deps, api_settings=api)) as base:
        assert httpx.post(f"{base}/mcp", json={}).status_code == 401
        assert "/mcp" not in httpx.get(f"{base}/openapi.json").json()["paths"]

        async def submit_and_wait(c: Client) -> tuple[Any, Any]:
            accepted = await c.call_tool("submit_batch", {"complaints": COMPLAINTS, "source": "copilot"})
            bid = accepted.structured_content["batch_id"]
            status = await c.call_tool("get_batch_status", {"batch_id": bid, "wait_seconds": 60})
            return accepted, status

        accepted, status = over_http(f"{base}/mcp", RW_KEY, submit_and_wait)
        bid = accepted.structured_content["batch_id"]
        assert status.structured_content["status"] == "done", status.content[0].text
        # The same batch over the REST API, owned by the same key.
        rest = httpx.get(f"{base}/v1/batches/{bid}", headers=auth(RW_KEY))
        assert rest.status_code == 200 and rest.json()["status"] == "done"
        assert rest.json()["source"] == "copilot"
        report = httpx.get(f"{base}/v1/batches/{bid}/report", params={"format": "md"}, headers=auth(RW_KEY))
        assert report.status_code == 200 and bid in report.text and MOBILE not in report.text
        assert httpx.get(f"{base}/v1/batches/{bid}", headers=auth(WRITE_KEY)).status_code == 403
        # Another key does not see it over MCP either.
        other = over_http(
            f"{base}/mcp", READ_KEY, lambda c: c.call_tool("get_batch_status", {"batch_id": bid})
        )
        assert other.is_error and "no such batch" in other.content[0].text


def test_voc_mcp_refuses_to_serve_http_beyond_this_machine_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOC_API_KEYS", raising=False)
    monkeypatch.delenv("VOC_API_KEYS_FILE", raising=False)
    runner = CliRunner()
    result = runner.invoke(voc, ["mcp", "--transport", "http", "--host", "0.0.0.0", "--home", str(tmp_path)])
    assert result.exit_code == 4 and "without API keys" in " ".join(result.output.split())
    monkeypatch.setenv("VOC_API_KEYS", "short:read")
    result = runner.invoke(voc, ["mcp", "--transport", "http", "--home", str(tmp_path)])
    assert result.exit_code == 4 and "at least 16 characters" in " ".join(result.output.split())
