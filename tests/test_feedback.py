"""Reviewers' corrections (issue 14) through every door: ``voc feedback``, ``/v1/feedback`` under a real
uvicorn with keys and scopes, and the MCP tool over stdio; what later runs learn from them (the corrected
complaint, its duplicates and near-duplicates, similar complaints through exemplars) and undoing it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from agents.tracing.rules import trace_rules
from api.app import create_app
from cli.main import app as cli
from graph.run import run_batch
from services.config import ApiSettings
from tests.api_helpers import KEYS, READ_KEY, RW_KEY, auth, home_like, served
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.learning import Learned, Taught
from tools.schema import BatchResult, Complaint

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
SECRET_PHONE = "13812345678"


def at_home(deps: Deps, home: Path, **settings: Any) -> Deps:
    return dataclasses.replace(
        deps,
        settings=deps.settings.model_copy(update={"home": home, **settings}),
        indexes=dict(deps.indexes),
    )


def voc(*args: str, code: int = 0) -> Any:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def by_id(result: BatchResult) -> dict[str, Any]:
    return {r.id: r for r in result.results}


@pytest.fixture(scope="module")
def rows(sample_records: list[dict]) -> list[dict]:
    return [r for r in sample_records if str(r.get("received_at", "")).startswith("2026-09")][:30]


@pytest.fixture(scope="module")
def home(deps: Deps, rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Thirty complaints of September tracked under source ``sep`` (the knowledge store copied in)."""
    home = home_like(deps, tmp_path_factory.mktemp("feedback") / "home")
    run_batch(rows_from_records(rows), at_home(deps, home), track=True, track_source="sep")
    return home


def stored(home: Path, source: str = "sep") -> dict[str, tuple[str, str, str]]:
    with sqlite3.connect(home / "warehouse.db") as conn:
        found = conn.execute(
            "SELECT id, l2, department_id, grade FROM complaints WHERE source = ? ORDER BY id", (source,)
        )
        return {r[0]: (r[1], r[2], r[3]) for r in found}


def other_than(value: str, choices: list[str]) -> str:
    return next(c for c in choices if c != value)


def test_a_correction_is_kept_followed_by_duplicates_and_undone(
    deps: Deps, home: Path, rows: list[dict]
) -> None:
    h = str(home)
    local = at_home(deps, home)
    target = rows[0]
    l2, dept, grade = stored(home)[target["id"]]
    new_l2 = other_than(l2, ["环-外部环境", "物-产品设计"])
    new_dept = other_than(dept, ["consumer_protection", "card_center"])
    new_grade = other_than(grade, ["特急", "一般"])
    added = voc(
        "feedback", "add", target["id"], "--l2", new_l2, "--department", new_dept,
        "--grade", new_grade, "--by", "质检员甲", "--json", "--home", h,
    )  # fmt: skip
    out = json.loads(added.output)
    assert out["status"] == "stored" and out["correction"]["id"] == "COR-0001"
    assert out["correction"]["by"] == "user:质检员甲" and out["correction"]["at"]
    again = json.loads(voc("feedback", "add", target["id"], "--l2", new_l2, "--json", "--home", h).output)
    assert again["status"] == "unchanged"  # nothing is counted twice

    # The next run keeps it for the complaint, and for the same text under another id.
    twin = {**target, "id": "twin-1", "received_at": "2026-09-30T10:00:00+08:00"}
    result = run_batch(rows_from_records([*rows, twin]), local, track=True, track_source="sep")
    got = by_id(result)[target["id"]]
    answer = (got.root_cause.l2, got.attribution.department_id, got.root_cause.grade)
    assert answer == (new_l2, new_dept, new_grade)
    assert got.corrected and got.corrected.match == "self" and got.corrected.correction_id == "COR-0001"
    assert got.root_cause.confidence == 1.0 and got.attribution.confidence == 1.0
    assert got.grade_confidence == 1.0
    assert got.engine == "rules"  # the engine stays truthful; `corrected` says what overrode it
    copy = by_id(result)["twin-1"]
    assert copy.corrected and copy.corrected.match == "duplicate" and copy.root_cause.l2 == new_l2
    assert result.stats.feedback and result.stats.feedback["self"] == 1
    assert stored(home)[target["id"]] == (new_l2, new_dept, new_grade)
    stats = json.loads(voc("feedback", "stats", "--json", "--home", h).output)
    assert stats["fields"]["l2"] == 1 and stats["exemplars_per_label"] == {new_l2: 1}
    assert stats["last_run"]["self"] == 1 and stats["last_run"]["duplicate"] == 1

    # Undone: the next run goes back to the engine's own answer.
    voc("feedback", "undo", "COR-0001", "--home", h)
    voc("feedback", "undo", "COR-0001", "--home", h, code=2)  # already undone
    result = run_batch(rows_from_records(rows), local, track=True, track_source="sep")
    back = by_id(result)[target["id"]]
    assert (back.root_cause.l2, back.attribution.department_id, back.root_cause.grade) == (l2, dept, grade)
    assert back.corrected is None
    trail = json.loads(voc("audit", "--json", "--home", h).output)
    actions = [e["action"] for e in trail]
    assert "feedback.add" in actions and "feedback.undo" in actions


def test_a_near_duplicate_follows_and_a_similar_complaint_moves(deps: Deps, rows: list[dict]) -> None:
    text = rows[1]["text"]
    near = text + "，请尽快处理"
    a, b = deps.embedder.embed([text, near], kind="query")
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine < 1.0
    # The threshold is configuration: at the pair's cosine the edited text follows, above it it does not.
    taught = Learned(
        version="t",
        taught=[Taught("COR-9", "sep", rows[1]["id"], "h", "环-外部环境", "环", "card_center", "特急", None)],
        vectors=np.asarray([a], dtype=np.float32),
    )
    follows = taught.match(None, ["x"], ["other"], np.asarray([b]), threshold=cosine - 1e-4)
    assert follows[0] is not None and follows[0][1] == "near_duplicate"
    assert taught.match(None, ["x"], ["other"], np.asarray([b]), threshold=min(1.0, cosine + 1e-3)) == [None]

    # Exemplar effect: a complaint about the same thing in other words, not a near-duplicate, moves to
    # the label a reviewer gave the other one (the hotline's reach, not the bot).
    probe = "客服电话一直打不通，转人工要等半小时"
    teach = "电话客服打不通，等人工等了快半小时"
    vec_probe, vec_teach = deps.embedder.embed([probe, teach], kind="query")
    similar = float(vec_probe @ vec_teach / np.linalg.norm(vec_probe) / np.linalg.norm(vec_teach))
    assert similar < deps.settings.feedback_duplicate_similarity
    complaint = Complaint(id="p", row=1, text=probe)
    before = trace_rules([complaint], np.asarray([vec_probe]), deps)[0]
    label = "环-渠道可达"
    taught_many = Learned(
        version="t",
        taught=[Taught("COR-1", "s", "t1", "h1", label, label[0], None, None, None)],
        vectors=np.asarray([vec_teach], dtype=np.float32),
    )
    after = trace_rules([complaint], np.asarray([vec_probe]), deps, taught_many)[0]
    assert after.l2 == label != before.l2


def test_import_stores_good_rows_names_bad_ones_and_is_idempotent(home: Path, rows: list[dict]) -> None:
    h = str(home)
    good_a, good_b = rows[2]["id"], rows[3]["id"]
    lines = [
        "id,l2,department,grade",
        f"{good_a},人-服务态度,远程银行中心,",
        f"{rows[4]['id']},人-不存在,,",
        f"{rows[5]['id']},,no_such_department,",
        f"{rows[6]['id']},,,很急",
        f"NOT-{SECRET_PHONE},人-服务态度,,",
        f"{good_b},,,特急",
    ]
    path = home.parent / "reviewed.csv"
    path.write_bytes("\n".join(lines).encode("gb18030"))  # read as banks save it: GBK
    first = voc("feedback", "import", str(path), "--json", "--home", h, code=2)
    report = json.loads(first.stdout)
    assert report["stored"] == 2 and report["unchanged"] == 0
    refused = {(e["row"], e["field"]) for e in report["rejected"]}
    assert refused == {(3, "l2"), (4, "department"), (5, "grade"), (6, "id")}
    assert SECRET_PHONE not in first.output  # an id that looks like a phone number is masked
    second = json.loads(voc("feedback", "import", str(path), "--json", "--home", h, code=2).stdout)
    assert second["stored"] == 0 and second["unchanged"] == 2
    shown = json.loads(voc("feedback", "show", good_a, "--json", "--home", h).output)["corrections"]
    assert len(shown) == 1 and shown[0]["department_id"] == "remote_banking"


def test_an_id_in_two_sources_needs_a_source(deps: Deps, home: Path, rows: list[dict]) -> None:
    run_batch(rows_from_records(rows[:2]), at_home(deps, home), track=True, track_source="oct")
    h = str(home)
    result = voc("feedback", "add", rows[0]["id"], "--grade", "一般", "--home", h, code=2)
    assert "several sources" in result.output and "--source" in result.output
    args = ("feedback", "add", rows[0]["id"], "--grade", "一般", "--source", "oct", "--json", "--home", h)
    ok = json.loads(voc(*args).output)
    assert ok["correction"]["source"] == "oct"
    voc("feedback", "undo", rows[0]["id"], "--source", "oct", "--home", h)


def test_http_corrects_with_the_write_scope_and_names_bad_fields(
    deps: Deps, home: Path, rows: list[dict]
) -> None:
    api = ApiSettings(keys=KEYS, keys_file=None, job_workers=1)
    app = create_app(deps=at_home(deps, home), api_settings=api)
    cid = rows[7]["id"]
    with served(app) as url, httpx.Client(base_url=url) as c:
        body = {"id": cid, "source": "sep", "l2": "机-面客系统", "grade": "紧急"}
        assert c.post("/v1/feedback", json=body, headers=auth(READ_KEY)).status_code == 403
        made = c.post("/v1/feedback", json=body, headers=auth(RW_KEY))
        assert made.status_code == 201, made.text
        cor = made.json()["correction"]
        assert cor["by"].startswith("key:") and cor["door"] == "http" and cor["l2"] == "机-面客系统"
        assert c.post("/v1/feedback", json=body, headers=auth(RW_KEY)).json()["status"] == "unchanged"
        wrong = {"id": cid, "source": "sep", "l2": "nope", "grade": "x"}
        bad = c.post("/v1/feedback", json=wrong, headers=auth(RW_KEY))
        assert bad.status_code == 422
        assert {f["loc"] for f in bad.json()["error"]["fields"]} == {"l2", "grade"}
        unknown = {"id": f"x{SECRET_PHONE}", "grade": "一般"}
        missing = c.post("/v1/feedback", json=unknown, headers=auth(RW_KEY))
        assert missing.status_code == 404 and SECRET_PHONE not in missing.text
        stats = c.get("/v1/feedback/stats", headers=auth(READ_KEY)).json()
        assert stats["fields"]["l2"] >= 1
        assert c.delete(f"/v1/feedback/{cor['id']}", headers=auth(READ_KEY)).status_code == 403
        undone = c.delete(f"/v1/feedback/{cor['id']}", headers=auth(RW_KEY))
        assert undone.status_code == 200 and undone.json()["undone"] == [cor["id"]]
        assert c.delete(f"/v1/feedback/{cor['id']}", headers=auth(RW_KEY)).status_code == 409
        shown = c.get(f"/v1/feedback/{cid}", params={"source": "sep"}, headers=auth(READ_KEY)).json()
        assert shown["corrections"][-1]["undone_at"]


@pytest.mark.slow
def test_mcp_over_stdio_corrects_and_undoes(home: Path, rows: list[dict]) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp"],
        env={"VOC_HOME": str(home), "VOC_ENGINE": "rules"},
        cwd=str(REPO),
    )
    cid = rows[8]["id"]

    async def main() -> tuple[Any, Any, Any]:
        async with Client(params) as client:
            bad = await client.call_tool("correct_complaint", {"id": cid, "l2": "nope"})
            made = await client.call_tool(
                "correct_complaint", {"id": cid, "department": "信用卡中心", "problem": None}
            )
            undone = await client.call_tool("correct_complaint", {"id": cid, "action": "undo"})
            return bad, made, undone

    bad, made, undone = anyio.run(main)
    assert bad.is_error and "l2" in bad.content[0].text
    assert not made.is_error, made.content[0].text
    out = made.structured_content
    assert out["status"] == "stored" and out["answer"]["department_id"] == "card_center"
    assert undone.structured_content["status"] == "undone" and undone.structured_content["ids"] == out["ids"]
    shown = json.loads(voc("feedback", "show", out["ids"][0], "--json", "--home", str(home)).output)
    first = shown["corrections"][0]
    assert first["by"] == "mcp:stdio" and first["undone_by"] == "mcp:stdio"


def test_a_complaint_put_in_a_tracked_problem_stays_there(deps: Deps, home: Path, rows: list[dict]) -> None:
    cid = rows[9]["id"]
    with sqlite3.connect(home / "warehouse.db") as conn:
        now = conn.execute(
            "SELECT tracked_id FROM complaints WHERE source = 'sep' AND id = ?", (cid,)
        ).fetchone()[0]
        other = conn.execute(
            "SELECT id FROM problems WHERE merged_into IS NULL AND id IS NOT ? ORDER BY id LIMIT 1", (now,)
        ).fetchone()[0]
    voc("feedback", "add", cid, "--problem", other, "--source", "sep", "--home", str(home))
    voc("feedback", "add", cid, "--problem", "TP-9999", "--source", "sep", "--home", str(home), code=2)
    result = run_batch(rows_from_records(rows), at_home(deps, home), track=True, track_source="sep")
    got = by_id(result)[cid]
    assert got.tracked_problem_id == other and got.corrected and got.corrected.fields == ["problem"]
