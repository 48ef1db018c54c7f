"""Problems tracked across periods, through every door: ``voc problems``/``alerts``/``periods``, the
``/v1/problems``, ``/v1/alerts`` and ``/v1/periods`` routes and the MCP tracking tools, on one real
history (two months of the bundled sample, analysed and tracked batch by batch into a temp VOC_HOME).

What a user would notice: the same ids and counts whichever door answers, filters that filter,
clear errors for an unknown id or a malformed period, exposure that turns counts into rates and
rebuilds the alerts at once, reads in the audit trail, and no complaint text in it.
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
from tests.api_helpers import KEYS, READ_KEY, RW_KEY, WRITE_KEY, auth
from tools.audit import AuditLog, AuditQuery
from tools.deps import Deps
from tools.ingest import rows_from_records

runner = CliRunner()
REMOTE = ("203.0.113.7", 50000)
MOBILE = "13812345678"
# The latest complaint of the month, about the app crashing, with a phone number in it.
LATE = {
    "id": "LATE-1",
    "text": f"手机银行升级以后一打开就闪退，登录不上，重装也没用，请回电{MOBILE}",
    "channel": "APP",
    "received_at": "2026-10-31T20:00:00+08:00",
}
PROBLEM_KEYS = ["id", "name", "status", "l2", "department", "first_seen", "last_seen", "series"]
POINT_KEYS = ["period", "complaints", "customers"]
ALERT_KEYS = [
    "id",
    "problem_id",
    "label",
    "period",
    "level",
    "observed",
    "expected",
    "limit",
    "p_value",
    "kind",
]


def at_home(deps: Deps, home: Path) -> Deps:
    """The session's dependencies (knowledge store already built) with their state under ``home``."""
    return dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))


@pytest.fixture(scope="module")
def history(deps: Deps, sample_records: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOC_HOME holding September's batch, then October's, each tracked as it came."""
    home = tmp_path_factory.mktemp("tracking") / "home"
    d = at_home(deps, home)
    for month, extra in (("2026-09", []), ("2026-10", [LATE])):
        rows = [r for r in sample_records if str(r.get("received_at", "")).startswith(month)] + extra
        run_batch(rows_from_records(rows), d, source=f"sample-{month}", track=True)
    return home


def copy_home(history: Path, tmp_path: Path) -> Path:
    """A second VOC_HOME with a consistent copy of the warehouse (SQLite's backup, WAL and all)."""
    home = tmp_path / "home"
    home.mkdir()
    src, dst = sqlite3.connect(history / "warehouse.db"), sqlite3.connect(home / "warehouse.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return home


def voc(*args: str) -> Any:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def voc_json(*args: str) -> Any:
    return json.loads(voc(*args, "--json").output)


def counts(problems: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Each problem's complaints per period, by id: what every door must agree on."""
    return {p["id"]: [(s["period"], s["complaints"]) for s in p["series"]] for p in problems}


def crash_problem(problems: list[dict]) -> dict:
    """The app-crash problem the sample plants: few in September, many more in October."""
    crash = [p for p in problems if p["l2"] == "机-面客系统"]
    assert crash, [p["name"] for p in problems]
    return max(crash, key=lambda p: p["series"][-1]["complaints"])


# -- the CLI -----------------------------------------------------------------------------------


def test_the_cli_lists_tracked_problems_as_exact_json_and_filters_them(history: Path) -> None:
    home = str(history)
    doc = voc_json("problems", "--home", home)
    assert list(doc) == ["problems"]
    problems = doc["problems"]
    assert len(problems) >= 10
    for p in problems:
        assert list(p) == PROBLEM_KEYS
        assert p["id"].startswith("TP-") and p["first_seen"] in ("2026-09", "2026-10")
        assert all(list(s) == POINT_KEYS for s in p["series"])
    assert len({p["id"] for p in problems}) == len(problems)
    latest = [p["series"][-1]["complaints"] for p in problems]
    assert latest == sorted(latest, reverse=True)  # the biggest this month first

    crash = crash_problem(problems)
    assert crash["status"] == "rising" and crash["department"] == "网络金融部"
    (sep, sep_n), (oct_, oct_n) = counts([crash])[crash["id"]]
    assert (sep, oct_) == ("2026-09", "2026-10") and oct_n > 3 * sep_n

    rising = voc_json("problems", "--status", "rising", "--home", home)["problems"]
    assert rising and {p["status"] for p in rising} == {"rising"}
    assert crash["id"] in {p["id"] for p in rising}
    assert counts(rising).items() <= counts(problems).items()
    # As of September everything it held was new.
    september = voc_json("problems", "--period", "2026-09", "--home", home)["problems"]
    assert september and {p["status"] for p in september} == {"new"}
    then = [next(s["complaints"] for s in p["series"] if s["period"] == "2026-09") for p in september]
    assert then == sorted(then, reverse=True)  # the biggest in September first
    online = voc_json("problems", "--department", "网络金融部", "--home", home)["problems"]
    assert crash["id"] in {p["id"] for p in online}
    assert all(p["department"] == "网络金融部" for p in online)

    table = voc("problems", "--home", home).output
    assert crash["id"] in table and "rising" in table and "Tracked problems" in table


def test_the_cli_shows_one_problem_and_its_alerts(history: Path) -> None:
    home = str(history)
    crash = crash_problem(voc_json("problems", "--home", home)["problems"])
    alerts = voc_json("alerts", "--home", home)
    assert list(alerts) == ["alerts"]
    for a in alerts["alerts"]:
        assert list(a) == ALERT_KEYS
    mine = [a for a in alerts["alerts"] if a["problem_id"] == crash["id"]]
    assert [(a["period"], a["level"]) for a in mine] == [("2026-10", "alarm")]
    assert mine[0]["observed"] == crash["series"][-1]["complaints"] > mine[0]["limit"] > mine[0]["expected"]
    # The label behind it rose too.
    assert any(a["label"] == "机-面客系统" and a["period"] == "2026-10" for a in alerts["alerts"])
    levels = {a["level"] for a in voc_json("alerts", "--level", "alarm", "--home", home)["alerts"]}
    assert levels == {"alarm"}
    assert voc_json("alerts", "--period", "2026-09", "--home", home) == {"alerts": []}

    shown = voc("problems", "show", crash["id"], "--home", home).output
    for text in (crash["id"], "2026-09", "2026-10", "Alerts", "Recent complaints", "138****5678"):
        assert text in shown, text
    assert MOBILE not in shown
    detail = voc_json("problems", "show", crash["id"], "--home", home)
    assert detail["id"] == crash["id"]
    assert [(s["period"], s["complaints"]) for s in detail["series"]] == counts([crash])[crash["id"]]
    assert detail["examples"][0]["id"] == LATE["id"] and "138****5678" in detail["examples"][0]["text"]
    assert [a["id"] for a in detail["alerts"]] == [a["id"] for a in mine]

    periods = voc("periods", "--home", home).output
    assert "2026-09" in periods and "2026-10" in periods


def test_the_cli_names_an_unknown_id_or_a_malformed_period_and_exits_2(history: Path) -> None:
    home = str(history)
    unknown = runner.invoke(cli, ["problems", "show", "TP-9999", "--home", home])
    assert unknown.exit_code == 2
    assert "No tracked problem 'TP-9999'" in unknown.output and "voc problems" in unknown.output
    for args in (
        ["problems", "--period", "2026-13"],
        ["alerts", "--period", "2026-13"],
        ["periods", "set", "2026-13", "--exposure", "1000"],
    ):
        bad = runner.invoke(cli, [*args, "--home", home])
        assert bad.exit_code == 2, args
        assert "Malformed period key '2026-13'" in bad.output and "YYYY-MM" in bad.output, bad.output
    wrong = runner.invoke(cli, ["problems", "--status", "booming", "--home", home])
    assert wrong.exit_code == 2
    nothing = runner.invoke(cli, ["periods", "set", "2026-10", "--exposure", "0", "--home", home])
    assert nothing.exit_code == 2 and "exposure" in nothing.output


def test_the_help_teaches_tracked_problems_statuses_and_exposure() -> None:
    top = voc("--help").output
    for command in ("problems", "alerts", "periods"):
        assert command in top
    problems = voc("problems", "--help").output
    for word in ("tracked problem", "rising", "dormant", "regressed", "VOC_PERIOD", "show"):
        assert word in problems, word
    assert "Exposure" in voc("periods", "--help").output
    assert "customers served" in voc("periods", "set", "--help").output
    assert "alarm" in voc("alerts", "--help").output


# -- HTTP and MCP answer the same ------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(deps: Deps, history: Path) -> Iterator[TestClient]:
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=at_home(deps, history), api_settings=api), client=REMOTE) as c:
        yield c


def test_http_gives_the_same_problems_and_alerts_to_the_right_key(client: TestClient, history: Path) -> None:
    cli_problems = voc_json("problems", "--home", str(history))["problems"]
    crash = crash_problem(cli_problems)
    r = client.get("/v1/problems", headers=auth(READ_KEY))
    assert r.status_code == 200, r.text
    problems = r.json()["problems"]
    assert [p["id"] for p in problems] == [p["id"] for p in cli_problems]
    assert counts(problems) == counts(cli_problems)
    rising = client.get("/v1/problems", params={"status": "rising"}, headers=auth(READ_KEY)).json()
    assert {p["id"] for p in rising["problems"]} == {
        p["id"] for p in voc_json("problems", "--status", "rising", "--home", str(history))["problems"]
    }
    detail = client.get(f"/v1/problems/{crash['id']}", headers=auth(READ_KEY))
    assert detail.status_code == 200
    assert detail.json()["series"][-1]["status"] == "rising"
    assert MOBILE not in detail.text

    alerts = client.get("/v1/alerts", params={"level": "alarm"}, headers=auth(READ_KEY)).json()["alerts"]
    cli_alerts = voc_json("alerts", "--level", "alarm", "--home", str(history))["alerts"]
    assert [(a["id"], a["observed"]) for a in alerts] == [(a["id"], a["observed"]) for a in cli_alerts]
    periods = client.get("/v1/periods", headers=auth(READ_KEY)).json()["periods"]
    assert [p["period"] for p in periods] == ["2026-09", "2026-10"]
    assert all(p["complaints"] > 100 and p["exposure"] is None for p in periods)

    missing = client.get("/v1/problems/TP-9999", headers=auth(READ_KEY))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = client.get("/v1/problems", params={"period": "2026-13"}, headers=auth(READ_KEY))
    assert bad.status_code == 422 and "period" in bad.text and "2026-13" not in bad.text
    assert client.get("/v1/problems", params={"status": "booming"}, headers=auth(READ_KEY)).status_code == 422
    assert client.get("/v1/problems").status_code == 401
    assert client.get("/v1/alerts", headers=auth("not-a-key-0123456789")).status_code == 401
    assert client.get("/v1/problems", headers=auth(WRITE_KEY)).status_code == 403  # write cannot read
    put = client.put("/v1/periods/2026-10", json={"exposure": 1000}, headers=auth(READ_KEY))
    assert put.status_code == 403  # read cannot change
    negative = client.put("/v1/periods/2026-10", json={"exposure": -5}, headers=auth(RW_KEY))
    assert negative.status_code == 422 and negative.json()["error"]["fields"][0]["loc"] == "body.exposure"
    schema = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/problems", "/v1/problems/{problem_id}", "/v1/alerts", "/v1/periods/{period}"):
        assert path in schema


def test_mcp_tools_give_the_same_ids_and_counts(deps: Deps, history: Path) -> None:
    server = build_server(
        at_home(deps, history), api_settings=ApiSettings(keys=None, keys_file=None, job_workers=1)
    )
    cli_problems = voc_json("problems", "--home", str(history))["problems"]
    crash = crash_problem(cli_problems)

    async def flow() -> tuple[Any, ...]:
        async with Client(server) as c:  # the client checks every result against its output schema
            listed = await c.call_tool("list_tracked_problems", {})
            rising = await c.call_tool("list_tracked_problems", {"status": "rising"})
            one = await c.call_tool("get_tracked_problem", {"problem_id": crash["id"]})
            missing = await c.call_tool("get_tracked_problem", {"problem_id": "TP-9999"})
            alerts = await c.call_tool("list_alerts", {"period": "2026-10"})
            bad = await c.call_tool("list_alerts", {"period": "2026-13"})
            return listed, rising, one, missing, alerts, bad

    listed, rising, one, missing, alerts, bad = anyio.run(flow)
    for result in (listed, rising, one, alerts):
        assert not result.is_error, result.content[0].text
    problems = listed.structured_content["problems"]
    assert [p["id"] for p in problems] == [p["id"] for p in cli_problems]
    assert {p["id"]: list(p["series"].items()) for p in problems} == counts(cli_problems)
    assert {p["id"] for p in rising.structured_content["problems"]} >= {crash["id"]}
    view = next(p for p in problems if p["id"] == crash["id"])
    # Rising since October, seen since September: what an assistant is asked.
    assert (view["status"], view["since"], view["first_seen"]) == ("rising", "2026-10", "2026-09")
    detail = one.structured_content
    assert detail["problem"]["id"] == crash["id"]
    assert [line.split(":")[0] for line in detail["periods"]] == ["2026-09", "2026-10"]
    assert detail["alerts"][0]["level"] == "alarm" and "138****5678" in detail["examples"][0]
    assert MOBILE not in json.dumps(detail, ensure_ascii=False)
    assert missing.is_error and "no such tracked problem" in missing.content[0].text
    cli_alerts = voc_json("alerts", "--period", "2026-10", "--home", str(history))["alerts"]
    assert [(a["problem_id"], a["label"], a["observed"]) for a in alerts.structured_content["alerts"]] == [
        (a["problem_id"], a["label"], a["observed"]) for a in cli_alerts
    ]
    assert bad.is_error and "period" in bad.content[0].text and "2026-13" not in bad.content[0].text


# -- exposure ------------------------------------------------------------------------------------


def test_exposure_turns_counts_into_rates_and_rebuilds_at_once(
    deps: Deps, history: Path, tmp_path: Path
) -> None:
    home = copy_home(history, tmp_path)
    crash = crash_problem(voc_json("problems", "--home", str(home))["problems"])
    before = voc_json("alerts", "--period", "2026-10", "--home", str(home))["alerts"]
    assert any(a["problem_id"] == crash["id"] for a in before)

    # September alone: October still has no exposure, so counts are still compared.
    out = voc("periods", "set", "2026-09", "--exposure", "1000", "--home", str(home)).output
    assert "2026-09" in out and "rebuilt" in out
    assert voc_json("alerts", "--period", "2026-10", "--home", str(home))["alerts"] == before

    # October served five and a half times the customers: the crash rate did not rise after all.
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=at_home(deps, home), api_settings=api), client=REMOTE) as c:
        put = c.put("/v1/periods/2026-10", json={"exposure": 5500}, headers=auth(RW_KEY))
        assert put.status_code == 200, put.text
        assert put.json()["exposure"] == 5500 and put.json()["complaints"] > 100
        served = c.get("/v1/periods", headers=auth(READ_KEY)).json()["periods"]
        assert [(p["period"], p["exposure"]) for p in served] == [("2026-09", 1000), ("2026-10", 5500)]
        after = c.get("/v1/alerts", params={"period": "2026-10"}, headers=auth(READ_KEY)).json()["alerts"]
    assert all(a["problem_id"] != crash["id"] for a in after)
    problems = voc_json("problems", "--home", str(home))["problems"]
    assert next(p for p in problems if p["id"] == crash["id"])["status"] != "rising"
    assert counts(problems) == counts(voc_json("problems", "--home", str(history))["problems"])
    listed = voc("periods", "--home", str(home)).output
    assert "1,000" in listed and "5,500" in listed

    trail = AuditLog(home / "audit.db").query(AuditQuery(action="periods.set"))
    assert [(e.target, e.door, e.detail["exposure"]) for e in trail] == [
        ("2026-10", "http", 5500.0),
        ("2026-09", "cli", 1000.0),
    ]


# -- the audit trail -----------------------------------------------------------------------------


def test_reads_are_in_the_audit_trail_without_complaint_text(history: Path) -> None:
    """Run after the flows above: the CLI, HTTP and MCP have all read this home's warehouse."""
    trail = AuditLog(history / "audit.db").query(AuditQuery(limit=10_000))
    reads = [e for e in trail if e.action in ("problems.read", "alerts.read")]
    assert {e.door for e in reads} == {"cli", "http", "mcp"}
    assert {e.actor for e in reads if e.door == "mcp"} == {"mcp:stdio"}
    assert all(e.actor.startswith("key:") for e in reads if e.door == "http")
    assert any(e.action == "problems.read" and e.target and e.detail.get("examples") for e in reads)
    for e in reads:
        assert e.target is None or e.target.startswith("TP-")
        assert all(isinstance(v, int) for v in e.detail.values()), e.detail
    # A refused read (unknown id, bad period) is not a read.
    assert "TP-9999" not in {e.target for e in trail}
    conn = sqlite3.connect(history / "warehouse.db")
    try:
        texts = [row[0] for row in conn.execute("SELECT text FROM complaints")]
        names = [row[0] for row in conn.execute("SELECT name FROM problems")]
    finally:
        conn.close()
    data = b"".join(p.read_bytes() for p in history.glob("audit.db*")).decode("utf-8", "replace")
    for text in [*texts, *names, MOBILE, "138****5678"]:
        assert text not in data, text
