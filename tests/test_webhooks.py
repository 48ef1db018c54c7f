"""Webhooks against a real HTTP receiver on loopback that fails its first attempts and checks every
signature with the Standard Webhooks reference library: tracked batches' problem.new, problem.alert
and batch.done events all arrive, none carries complaint text; kill -9 of a dispatcher mid-attempt
loses nothing; retries end in dead letters; bad URLs are refused with nothing stored."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as voc
from evals.history import History, generate
from graph.run import prepare_batch, run_prepared
from loop import outbox
from loop.warehouse import Warehouse
from services.config import ApiSettings
from services.errors import Unprocessable
from services.jobs import JobStore
from services.webhooks import DeliveryReport, WebhookIn, WebhookService, note_cli_batch_done
from tests.api_helpers import ADMIN_KEY, KEYS, READ_KEY, RW_KEY, auth, home_like, wait_done
from tools.audit import AuditLog, AuditQuery, cli_actor
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import Settings
from tools.sql import database

REPO = Path(__file__).resolve().parent.parent
FAST = {
    "webhook_allow_hosts": "127.0.0.1",
    "webhook_backoff": 0.05,
    "webhook_backoff_max": 0.2,
    "webhook_timeout": 5.0,
}


class Receiver:
    """A webhook endpoint on loopback: answers 500 to its first ``fail_first`` requests (or every one
    with ``always``), can hold a request open until released, and verifies every signature."""

    def __init__(self, fail_first: int = 0, always: int | None = None, stall_first: bool = False) -> None:
        self.fail_first = fail_first
        self.always = always
        self.stall_first = stall_first
        self.secret: str | None = None
        self.requests = 0
        self.attempts: list[str] = []  # webhook-id of every request answered
        self.received: list[dict[str, Any]] = []  # verified bodies of the 2xx answers
        self.bad_signatures = 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                    n = receiver.requests
                if receiver.stall_first and n == 1:
                    receiver.stalled.set()
                    receiver.release.wait(60)
                    return  # never answered: the dispatcher was killed meanwhile
                try:
                    data = Webhook(receiver.secret or "").verify(body, dict(self.headers))
                    ok = True
                except WebhookVerificationError:
                    ok = False
                status = 200
                if receiver.always is not None:
                    status = receiver.always
                elif n <= receiver.fail_first:
                    status = 500
                elif not ok:
                    status = 401
                with receiver._lock:
                    receiver.attempts.append(self.headers.get("webhook-id", ""))
                    if not ok:
                        receiver.bad_signatures += 1
                    if status == 200:
                        receiver.received.append(
                            {"id": self.headers["webhook-id"], "body": body.decode("utf-8"), "doc": data}
                        )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/voc?team=ops"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def service_at(home: Path, **settings: Any) -> WebhookService:
    s = Settings(home=home, engine="rules", **{**FAST, **settings})
    return WebhookService(s, AuditLog(database(s, "audit")))


def queued(home: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every event in both outboxes: id -> (event, payload)."""
    out = {}
    for db in ("warehouse.db", "voc.db"):
        if (home / db).exists():
            with sqlite3.connect(home / db) as conn:
                for eid, event, payload in conn.execute("SELECT id, event, payload FROM outbox"):
                    out[eid] = (event, json.loads(payload))
    return out


# ── tracked batches end to end ───────────────────────────────────────────────────────────────────


@dataclasses.dataclass
class Scenario:
    home: Path
    history: History
    receiver: Receiver
    report: DeliveryReport
    service: WebhookService
    masked_texts: list[str]


@pytest.fixture(scope="module")
def scenario(deps: Deps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Six months in three tracked batches (two through the job store as the service runs them, one
    as voc analyze does), a receiver failing its first four requests, then one delivery run."""
    home = home_like(deps, tmp_path_factory.mktemp("hooks") / "home")
    local = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home, **FAST}))
    history = generate(months=6, per_month=30, seed=11)
    months = history.by_month()
    with Receiver(fail_first=4) as receiver:
        service = service_at(home)
        created = service.add(cli_actor(), WebhookIn(url=receiver.url, events=["all"]))
        receiver.secret = created.secret
        jobs = JobStore(home / "voc.db")
        for i, rows in enumerate([months[0] + months[1] + months[2] + months[3], months[4]]):
            prepared = prepare_batch(rows_from_records(rows), local)
            job, _ = jobs.insert(f"b-hooks{i}", "crm", prepared, None, None, f"h{i}", track=True)
            claimed = jobs.claim("test-runner")
            assert claimed is not None and claimed.id == job.id
            result = run_prepared(prepared, local, batch_id=job.id, track=True, track_source="default")
            assert jobs.finish(job.id, "test-runner", result)
        prepared = prepare_batch(rows_from_records(months[5]), local)
        result = run_prepared(prepared, local, track=True)
        note_cli_batch_done(local.settings, result)
        note_cli_batch_done(local.settings, result)  # a re-run of the same batch: announced once
        dispatcher = service.dispatcher()
        try:
            report = dispatcher.drain(wait=30)
        finally:
            dispatcher.stop()
        with sqlite3.connect(home / "warehouse.db") as conn:
            masked = [r[0] for r in conn.execute("SELECT text FROM complaints")]
        yield Scenario(home, history, receiver, report, service, masked)


def test_every_event_arrives_at_least_once_with_a_valid_signature(scenario: Scenario) -> None:
    events = queued(scenario.home)
    kinds = Counter(event for event, _ in events.values())
    assert kinds["batch.done"] == 3
    assert kinds["problem.new"] >= 1 and kinds["problem.alert"] >= 1
    got = {r["id"]: r["doc"] for r in scenario.receiver.received}
    assert set(got) == set(events)  # every event, and nothing else
    for eid, (event, payload) in events.items():
        assert got[eid]["type"] == event and got[eid]["data"] == payload
    # The first four requests were refused and retried; each retry kept its webhook-id.
    assert scenario.receiver.bad_signatures == 0
    assert len(scenario.receiver.attempts) == len(events) + 4
    assert scenario.report == DeliveryReport(sent=len(events), retried=4, dead_lettered=0, pending=0)
    listed = scenario.service.list().webhooks
    assert [(w.sent, w.pending, w.dead, w.failed_attempts) for w in listed] == [(len(events), 0, 0, 4)]
    assert "team=ops" not in listed[0].url  # the query string is not shown
    print(f"\nwebhook deliveries: {scenario.report.model_dump()} for {dict(kinds)}")


def test_payloads_carry_ids_and_figures_never_complaint_text(scenario: Scenario) -> None:
    texts = [r["text"] for r in scenario.history.rows] + scenario.masked_texts
    windows = {t[i : i + 12] for t in texts for i in range(0, max(len(t) - 11, 1))}
    for r in scenario.receiver.received:
        body = r["body"]
        assert not [t for t in texts if t in body]
        assert not [w for w in windows if w in body], r["doc"]["type"]
    news = [r["doc"]["data"] for r in scenario.receiver.received if r["doc"]["type"] == "problem.new"]
    assert news and {n["priority"] for n in news} <= {"P1", "P2"}
    assert all(set(n) >= {"problem_id", "complaints", "customers", "department"} for n in news)
    with sqlite3.connect(scenario.home / "warehouse.db") as conn:
        alerts = {r[0] for r in conn.execute("SELECT id FROM alerts")}
        urgent = {
            r[0] for r in conn.execute("SELECT DISTINCT key FROM series WHERE priority IN ('P1', 'P2')")
        }
    announced = [r["doc"]["data"] for r in scenario.receiver.received if r["doc"]["type"] == "problem.alert"]
    assert {a["alert_id"] for a in announced} == alerts
    assert {n["problem_id"] for n in news} <= urgent
    done = [r["doc"]["data"] for r in scenario.receiver.received if r["doc"]["type"] == "batch.done"]
    assert sorted(d["door"] for d in done) == ["cli", "service", "service"]
    assert sum(d["accepted"] for d in done) == len(scenario.history.rows)


# ── kill -9, dead letters ────────────────────────────────────────────────────────────────────────


def _emit_events(where: Path | Settings, n: int) -> list[str]:
    """``n`` events in the warehouse's outbox and one batch.done in the job store's, as the tracker
    and the job store queue them (inside their own transactions). ``where``: a SQLite home, or
    settings naming the stores (Postgres)."""
    s = where if isinstance(where, Settings) else Settings(home=where, engine="rules")
    ids = []
    with Warehouse(database(s, "warehouse")).connect() as conn:
        for i in range(n):
            ids.append(
                outbox.emit(conn, "problem.alert", {"alert_id": f"AL-TP-{i:04d}-2026-05", "observed": i})
            )
    jobs = JobStore(database(s, "jobs"))
    with jobs.db.transaction() as conn:
        ids.append(outbox.emit(conn, "batch.done", {"batch_id": "b-0", "accepted": 3}))
    return ids


def test_kill_9_of_the_dispatcher_mid_attempt_loses_no_event(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Receiver(stall_first=True) as receiver:
        service = service_at(home)
        receiver.secret = service.add(cli_actor(), WebhookIn(url=receiver.url, events=["all"])).secret
        ids = _emit_events(home, 5)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VOC_", "OPENAI_"))}
        env.update(VOC_WEBHOOK_ALLOW_HOSTS="127.0.0.1", VOC_WEBHOOK_TIMEOUT="60", PYTHONPATH=str(REPO))
        log = tmp_path / "deliver.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "webhooks", "deliver", "--home", str(home)],
                cwd=REPO,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        try:
            assert receiver.stalled.wait(120), log.read_text()
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        with sqlite3.connect(home / "warehouse.db") as conn:
            held = conn.execute(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivering'"
            ).fetchone()
        assert held[0] == 1  # the killed dispatcher's claim is still on record
        receiver.release.set()
        dispatcher = service_at(home).dispatcher()
        try:
            report = dispatcher.drain(wait=10)
        finally:
            dispatcher.stop()
        assert {r["id"] for r in receiver.received} == set(ids)
        assert report.sent == len(ids) and report.dead_lettered == 0 and report.pending == 0
        with sqlite3.connect(home / "warehouse.db") as conn:
            attempts = sorted(r[0] for r in conn.execute("SELECT attempts FROM webhook_deliveries"))
        assert attempts == [1] * (len(ids) - 1) + [2]  # the interrupted attempt counts


def test_retries_back_off_then_dead_letter(backend: Settings) -> None:
    """On SQLite and on Postgres: the outboxes, subscriptions and delivery claims."""
    home, url = backend.home, backend.database_url
    with Receiver(always=503) as receiver:
        service = service_at(home, webhook_max_attempts=3, database_url=url)
        receiver.secret = service.add(
            cli_actor(), WebhookIn(url=receiver.url, events=["problem.alert"])
        ).secret
        ids = _emit_events(service.settings, 2)[:2]  # the subscription does not want batch.done
        dispatcher = service.dispatcher()
        t0 = time.monotonic()
        try:
            report = dispatcher.drain(wait=10)
        finally:
            dispatcher.stop()
        assert report == DeliveryReport(sent=0, retried=4, dead_lettered=2, pending=0)
        assert time.monotonic() - t0 >= 0.05  # the retries waited their backoff
        assert Counter(receiver.attempts) == {ids[0]: 3, ids[1]: 3}  # same id on every retry
        [listed] = service.list().webhooks
        assert (listed.sent, listed.pending, listed.dead, listed.failed_attempts) == (0, 0, 2, 6)
        again = service_at(home, webhook_max_attempts=3, database_url=url).dispatcher()
        try:
            assert again.drain() == DeliveryReport()  # dead letters are not sent again
        finally:
            again.stop()


def test_events_before_a_subscription_are_not_sent_to_it(backend: Settings) -> None:
    with Receiver() as receiver:
        service = service_at(backend.home, database_url=backend.database_url)
        early = _emit_events(service.settings, 2)
        receiver.secret = service.add(cli_actor(), WebhookIn(url=receiver.url, events=["all"])).secret
        late = _emit_events(service.settings, 1)
        dispatcher = service.dispatcher()
        try:
            dispatcher.drain()
        finally:
            dispatcher.stop()
        assert {r["id"] for r in receiver.received} == set(late)
        assert not set(early) & {r["id"] for r in receiver.received}


# ── bad input ────────────────────────────────────────────────────────────────────────────────────

REFUSED = {
    "ftp://example.com/hook": "http:// or https://",
    "hooks.example.com/voc": "http:// or https://",
    "http://127.0.0.1:9000/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://localhost:9000/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://10.20.30.40/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://192.168.1.10/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://169.254.169.254/latest/meta-data": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://[::1]:8080/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://[::ffff:10.0.0.1]/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://0.0.0.0/hook": "VOC_WEBHOOK_ALLOW_HOSTS",
    "http://ops:hunter2@93.184.215.14/hook": "user name or password",
    "https:///nohost": "no host",
}


def fake_resolver(host: str, port: int) -> list[str]:
    table = {"localhost": ["127.0.0.1", "::1"], "hooks.intra.bank": ["10.20.0.7"]}
    if host not in table:
        raise OSError("no such host")
    return table[host]


def test_bad_urls_are_refused_clearly_and_nothing_is_stored(tmp_path: Path) -> None:
    service = WebhookService(
        Settings(home=tmp_path, engine="rules"), AuditLog(tmp_path / "audit.db"), resolver=fake_resolver
    )
    for url, reason in REFUSED.items():
        with pytest.raises(Unprocessable) as caught:
            service.add(cli_actor(), WebhookIn(url=url, events=["problem.new"]))
        assert reason in caught.value.message, url
        assert caught.value.fields and caught.value.fields[0].loc == "url"
        assert "hunter2" not in caught.value.message
    with pytest.raises(Unprocessable, match="does not resolve"):
        service.add(cli_actor(), WebhookIn(url="https://nowhere.invalid/x", events=["problem.new"]))
    with pytest.raises(Unprocessable, match="VOC_WEBHOOK_ALLOW_HOSTS"):
        service.add(cli_actor(), WebhookIn(url="https://hooks.intra.bank/x", events=["problem.new"]))
    with pytest.raises(Unprocessable, match="unknown event"):
        service.add(cli_actor(), WebhookIn(url="https://93.184.215.14/x", events=["problem.deleted"]))
    with pytest.raises(Unprocessable, match="whsec_"):
        service.add(cli_actor(), WebhookIn(url="https://93.184.215.14/x", events=["all"], secret="s3cret"))
    assert service.list().webhooks == []
    assert not (tmp_path / "warehouse.db").exists()  # nothing was stored, nor even created

    allowed = WebhookService(
        Settings(home=tmp_path, engine="rules", webhook_allow_hosts="hooks.intra.bank, 127.0.0.0/8"),
        AuditLog(tmp_path / "audit.db"),
        resolver=fake_resolver,
    )
    for url in ("https://hooks.intra.bank/x", "http://127.0.0.1:9000/hook", "https://93.184.215.14/x"):
        allowed.add(cli_actor(), WebhookIn(url=url, events=["problem.new"]))
    with pytest.raises(Unprocessable, match="VOC_WEBHOOK_ALLOW_HOSTS"):  # ::1 is not in 127.0.0.0/8
        allowed.add(cli_actor(), WebhookIn(url="http://localhost:9000/hook", events=["problem.new"]))
    assert len(allowed.list().webhooks) == 3


def test_the_cli_adds_lists_removes_and_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    monkeypatch.delenv("VOC_WEBHOOK_ALLOW_HOSTS", raising=False)
    bad = runner.invoke(voc, ["webhooks", "add", "ftp://example.com/x", "--events", "problem.new", *home])
    assert bad.exit_code == 2 and "http:// or https://" in bad.output
    bad = runner.invoke(voc, ["webhooks", "add", "http://127.0.0.1:8/x", "--events", "problem.new", *home])
    assert bad.exit_code == 2 and "VOC_WEBHOOK_ALLOW_HOSTS" in bad.output and "127.0.0.1" in bad.output
    bad = runner.invoke(voc, ["webhooks", "add", "https://93.184.215.14/x", "--events", "ticket.open", *home])
    assert bad.exit_code == 2 and "unknown event" in bad.output
    assert "No webhook subscriptions" in runner.invoke(voc, ["webhooks", "list", *home]).output

    monkeypatch.setenv("VOC_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ok = runner.invoke(
        voc,
        ["webhooks", "add", "http://127.0.0.1:8/x", "--events", "batch.done,problem.new", "--secret", secret]
        + home,
    )
    assert ok.exit_code == 0, ok.output
    assert secret in ok.output
    sub_id = ok.output.split("Subscription ")[1].split()[0]
    listed = json.loads(runner.invoke(voc, ["webhooks", "list", "--json", *home]).output)
    assert [(w["id"], w["events"]) for w in listed] == [(sub_id, ["batch.done", "problem.new"])]
    assert secret not in runner.invoke(voc, ["webhooks", "list", *home]).output
    assert runner.invoke(voc, ["webhooks", "remove", sub_id, *home]).exit_code == 0
    assert runner.invoke(voc, ["webhooks", "remove", sub_id, *home]).exit_code == 2
    out = runner.invoke(voc, ["webhooks", "deliver", *home])
    assert out.exit_code == 0 and "0 sent · 0 retried · 0 dead-lettered" in out.output
    helped = runner.invoke(voc, ["webhooks", "--help"]).output
    assert "webhook-signature" in helped and "voc webhooks deliver" in helped


# ── the HTTP door, and voc serve delivering by itself ────────────────────────────────────────────


def test_http_webhooks_need_the_right_scope_and_refuse_bad_urls(deps: Deps, tmp_path: Path) -> None:
    local = dataclasses.replace(
        deps, settings=deps.settings.model_copy(update={"home": home_like(deps, tmp_path / "home")})
    )
    api = ApiSettings(keys=KEYS, job_workers=1, rate_per_minute=0)
    with TestClient(create_app(deps=local, api_settings=api), client=("203.0.113.7", 50000)) as http:
        assert http.get("/v1/webhooks").status_code == 401
        assert http.get("/v1/webhooks", headers=auth(READ_KEY)).json() == {"webhooks": []}
        body = {"url": "https://93.184.215.14/hook", "events": ["problem.new"]}
        assert http.post("/v1/webhooks", json=body, headers=auth(RW_KEY)).status_code == 403
        bad = http.post(
            "/v1/webhooks", json={**body, "url": "http://10.9.8.7/internal"}, headers=auth(ADMIN_KEY)
        )
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["loc"] == "url"
        assert "10.9.8.7" not in bad.text and "internal" not in bad.text
        assert http.get("/v1/webhooks", headers=auth(READ_KEY)).json() == {"webhooks": []}
        made = http.post("/v1/webhooks", json=body, headers=auth(ADMIN_KEY))
        assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
        listed = http.get("/v1/webhooks", headers=auth(READ_KEY)).json()["webhooks"]
        assert [w["id"] for w in listed] == [made.json()["id"]] and "secret" not in listed[0]
        assert http.delete(f"/v1/webhooks/{made.json()['id']}", headers=auth(RW_KEY)).status_code == 403
        assert http.delete(f"/v1/webhooks/{made.json()['id']}", headers=auth(ADMIN_KEY)).status_code == 204
        assert http.delete(f"/v1/webhooks/{made.json()['id']}", headers=auth(ADMIN_KEY)).status_code == 404
    audit = AuditLog(local.settings.audit_db)
    actions = [e.action for e in audit.query(AuditQuery(action="webhook"))]
    assert sorted(actions) == ["webhook.create", "webhook.delete"]


@pytest.mark.slow
def test_voc_serve_delivers_batch_done_by_itself(
    deps: Deps, tmp_path: Path, sample_records: list[dict]
) -> None:
    from tests.test_api_server import Server

    home = home_like(deps, tmp_path / "home")
    env = {"VOC_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "VOC_WEBHOOK_POLL": "0.2", "VOC_WEBHOOK_BACKOFF": "0.1"}
    server = Server(home, tmp_path / "server.log", env=env)
    with Receiver(fail_first=1) as receiver:
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                made = http.post(
                    "/v1/webhooks",
                    json={"url": receiver.url, "events": ["batch.done"]},
                    headers=auth(ADMIN_KEY),
                )
                assert made.status_code == 201, made.text
                receiver.secret = made.json()["secret"]
                records = [{**r, "id": f"hook-{i}"} for i, r in enumerate(sample_records[:5])]
                sent = http.post("/v1/batches", json={"complaints": records}, headers=auth(RW_KEY))
                assert sent.status_code == 202, sent.text
                batch_id = sent.json()["batch_id"]
                assert wait_done(http.get, batch_id, auth(RW_KEY))["status"] == "done"
                deadline = time.monotonic() + 30
                while not receiver.received and time.monotonic() < deadline:
                    time.sleep(0.1)
        finally:
            server.stop()
    [got] = [r["doc"] for r in receiver.received]
    assert got["type"] == "batch.done" and got["data"]["batch_id"] == batch_id
    assert got["data"]["accepted"] == 5 and receiver.requests == 2  # one refused, one retried
