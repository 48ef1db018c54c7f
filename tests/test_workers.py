"""The scaled mode end to end: `voc serve --no-workers` and `voc worker` processes on one Postgres
database and one Chroma server, all real processes, killed with SIGKILL (or frozen with SIGSTOP)
halfway through a batch. Nothing is mocked.

The processes use the char n-gram embedder (the knowledge store builds in seconds) and small
chunks, so a batch has a few hundred chunk tasks and every kill lands mid-batch: the tests poll
the database until the moment they want, then kill.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evals.history import generate
from tests.api_helpers import KEYS, RW_KEY, auth, free_port
from tests.chroma_helpers import ChromaServer
from tests.pg import fresh_database

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
LEASE = 6  # seconds: VOC_API_LEASE_SECONDS for every process here
CHUNK = 8  # complaints per chunk task
BIG = 1600  # complaints in a batch that must still be running when a worker dies


def _env(url: str, chroma_url: str, home: Path, keep: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOC_", "OPENAI_"))}
    env.update(
        PYTHONPATH=str(REPO),  # this checkout's code, not whatever `voc` is installed
        VOC_HOME=str(home),  # each process a home of its own, as on separate machines
        VOC_DATABASE_URL=url,
        VOC_CHROMA_URL=chroma_url,
        VOC_EMBEDDER="char-ngram",
        VOC_ENGINE="rules",
        VOC_API_KEYS=KEYS,
        VOC_CHUNK_SIZE=str(CHUNK),
        VOC_API_LEASE_SECONDS=str(LEASE),
        VOC_API_KEEP_CHECKPOINTS=str(keep).lower(),
    )
    return env


class Proc:
    """One ``voc ...`` process of this checkout; its output goes to a log the failures quote."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *args],
                cwd=REPO,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.log.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case a test froze it
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """API servers and workers over one fresh database; the database read directly to check."""

    def __init__(self, url: str, chroma_url: str, root: Path) -> None:
        self.url = url
        self.chroma_url = chroma_url
        self.root = root
        self.procs: list[Proc] = []
        self.keep_checkpoints = True

    def env(self, name: str) -> dict[str, str]:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        return _env(self.url, self.chroma_url, home, self.keep_checkpoints)

    def api(self) -> tuple[Proc, str]:
        """A `voc serve --no-workers`, answering /healthz; its base URL."""
        port = free_port()
        name = f"api-{len(self.procs)}"
        proc = Proc(
            ["serve", "--no-workers", "--port", str(port), "--log-level", "warning"],
            self.env(name),
            self.root / f"{name}.log",
        )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        self.until(lambda: _answers(f"{base}/healthz"), 180, "the API to answer", proc)
        return proc, base

    def worker(self) -> tuple[Proc, str]:
        """A `voc worker`, registered; its worker id."""
        name = f"worker-{len(self.procs)}"
        proc = Proc(["worker", "--log-level", "warning"], self.env(name), self.root / f"{name}.log")
        self.procs.append(proc)
        found: dict[str, str] = {}

        def registered() -> bool:
            rows = self.rows("SELECT id FROM voc_jobs.workers WHERE pid = %s", proc.pid)
            if rows:
                found["id"] = rows[0]["id"]
            return bool(rows)

        self.until(registered, 180, "the worker to register", proc)
        return proc, found["id"]

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        try:
            with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                return conn.execute(query, args).fetchall()
        except psycopg.errors.UndefinedTable:
            return []  # no process has created the tables yet

    def job(self, batch_id: str) -> dict[str, Any]:
        return self.rows(
            "SELECT status, runner, attempts, done, total, failure FROM voc_jobs.jobs WHERE id = %s", batch_id
        )[0]

    def chunks(self, batch_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT chunk, status, runner, attempt FROM voc_jobs.chunk_tasks WHERE batch_id = %s "
            "ORDER BY chunk",
            batch_id,
        )

    def until(self, ok: Callable[[], bool], timeout: float, what: str, *watch: Proc) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            for p in watch:
                p.check_alive()
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in self.procs)
                # Who waits on what in the database: a frozen or dead process's locks show here.
                sessions = self.rows(
                    "SELECT pid, state, wait_event_type, wait_event, left(query, 160) AS query, "
                    "now() - xact_start AS in_transaction FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
                # Where the work stands: each batch's chunks by runner and status, each worker's count.
                work = self.rows(
                    "SELECT batch_id, runner, status, count(*) AS n FROM voc_jobs.chunk_tasks "
                    "GROUP BY batch_id, runner, status ORDER BY batch_id, runner, status"
                )
                fleet = self.rows(
                    "SELECT id, busy, batches, chunks_done, "
                    "extract(epoch FROM now()) - heartbeat AS silent_s FROM voc_jobs.workers"
                )
                pytest.fail(
                    f"timed out after {timeout} s waiting for {what}\n{sessions}\n{work}\n{fleet}\n{logs}"
                )
            time.sleep(0.1)

    def voc_workers(self) -> dict[str, Any]:
        """`voc workers --json`, as an operator would run it."""
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "workers", "--json"],
            cwd=REPO,
            env=self.env("cli"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def close(self) -> None:
        for p in self.procs:
            p.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def cluster(chroma: ChromaServer, tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database() as url:
        c = Cluster(url, chroma.url, tmp_path)
        try:
            yield c
        finally:
            c.close()


@pytest.fixture(scope="module")
def big_batch() -> list[dict[str, Any]]:
    rows = generate(months=1, per_month=2000, seed=3).rows[:BIG]
    assert len(rows) == BIG
    return rows


def post(base: str, rows: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    headers = auth(RW_KEY) | ({"Idempotency-Key": key} if key else {})
    r = httpx.post(f"{base}/v1/batches", json={"complaints": rows}, headers=headers, timeout=120)
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


def wait_done(c: Cluster, base: str, batch_id: str, timeout: float = 600) -> dict[str, Any]:
    status: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal status
        status = httpx.get(f"{base}/v1/batches/{batch_id}", headers=auth(RW_KEY), timeout=30).json()
        return status["status"] in ("done", "failed")

    c.until(finished, timeout, f"batch {batch_id} to finish")
    return status


def result_ids(base: str, batch_id: str) -> list[str]:
    ids: list[str] = []
    offset: int | None = 0
    with httpx.Client(base_url=base, headers=auth(RW_KEY), timeout=60) as http:
        while offset is not None:
            page = http.get(
                f"/v1/batches/{batch_id}/results", params={"offset": offset, "limit": 1000}
            ).json()
            ids += [item["id"] for item in page["items"]]
            offset = page["next_offset"]
    return ids


def assert_one_chain(c: Cluster, batch_id: str) -> int:
    """The batch's checkpoints form one chain: one root, and no checkpoint is the parent of two
    (two writers resuming the same checkpoint would fork it). Returns its length."""
    rows = c.rows(
        "SELECT checkpoint_id, parent_checkpoint_id FROM voc_checkpoints.checkpoints "
        "WHERE thread_id = %s AND checkpoint_ns = ''",
        batch_id,
    )
    assert len(rows) > 3, rows  # kept (VOC_API_KEEP_CHECKPOINTS), not compacted to the last one
    roots = [r for r in rows if r["parent_checkpoint_id"] is None]
    assert len(roots) == 1, roots
    parents = Counter(r["parent_checkpoint_id"] for r in rows if r["parent_checkpoint_id"] is not None)
    forks = {p: n for p, n in parents.items() if n > 1}
    assert not forks, f"the checkpoint chain forks at {forks}"
    ids = {r["checkpoint_id"] for r in rows}
    assert set(parents) <= ids  # every parent is stored: nothing of the chain was lost
    return len(rows)


def assert_every_complaint_once(c: Cluster, base: str, batch_id: str, rows: list[dict[str, Any]]) -> None:
    final = wait_done(c, base, batch_id)
    assert final["status"] == "done", final
    assert final["stats"]["counts"]["accepted"] == len(rows)
    assert Counter(result_ids(base, batch_id)) == Counter(r["id"] for r in rows)
    chunks = c.chunks(batch_id)
    assert len(chunks) == math.ceil(len(rows) / CHUNK)
    assert {ch["status"] for ch in chunks} == {"done"}


def mid_batch(c: Cluster, batch_id: str, min_done: int, queued: int = 40) -> Callable[[], bool]:
    """The batch runs, some of its chunks are done and many are still queued."""

    def ok() -> bool:
        chunks = c.chunks(batch_id)
        by = Counter(ch["status"] for ch in chunks)
        return by["done"] >= min_done and by["queued"] >= queued and c.job(batch_id)["status"] == "running"

    return ok


def half_way_with_two_workers(
    cluster: Cluster, rows: list[dict[str, Any]]
) -> tuple[dict[str, Proc], str, str, str]:
    """Two workers and an API; ``rows`` posted as one batch and run until half way. The workers by
    id, the API's base URL, the batch id and the id of the worker driving it."""
    workers = dict([cluster.worker()[::-1], cluster.worker()[::-1]])
    _, base = cluster.api()
    batch_id = post(base, rows)["batch_id"]
    cluster.until(lambda: cluster.job(batch_id)["runner"] is not None, 120, "a worker to claim the batch")
    driver = cluster.job(batch_id)["runner"]
    cluster.until(mid_batch(cluster, batch_id, 20), 300, "the batch to be half way", *workers.values())
    return workers, base, batch_id, driver


def test_a_killed_worker_s_chunks_are_redone_and_it_shows_as_silent(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    w1, id1 = cluster.worker()
    w2, id2 = cluster.worker()
    _, base = cluster.api()
    cluster.until(lambda: _answers(f"{base}/readyz"), 120, "/readyz")
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["checks"]["workers"]["detail"].startswith("2 voc worker process(es) alive")
    # Workers run below the API's priority by default, so accepting stays fast beside them.
    assert os.getpriority(os.PRIO_PROCESS, w1.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)

    batch_id = post(base, big_batch)["batch_id"]
    cluster.until(lambda: cluster.job(batch_id)["runner"] is not None, 120, "a worker to claim the batch")
    driver = cluster.job(batch_id)["runner"]
    victim, victim_id, survivor_id = (w2, id2, id1) if driver == id1 else (w1, id1, id2)

    def victim_busy() -> bool:
        done = cluster.rows("SELECT chunks_done FROM voc_jobs.workers WHERE id = %s", victim_id)[0][
            "chunks_done"
        ]
        held = [ch for ch in cluster.chunks(batch_id) if ch["runner"] == victim_id]
        # Some chunks still queued, so that what it held is redone while others are still to do.
        return done >= 3 and bool(held) and mid_batch(cluster, batch_id, 10, queued=10)()

    # Frozen first, so what it holds cannot change between the look and the kill.
    held: list[int] = []
    while not held:
        cluster.until(victim_busy, 300, "the second worker to have done some chunks", victim)
        os.kill(victim.pid, signal.SIGSTOP)
        held = [ch["chunk"] for ch in cluster.chunks(batch_id) if ch["runner"] == victim_id]
        if not held:  # between two chunks: let it claim the next one
            os.kill(victim.pid, signal.SIGCONT)
    victim.kill()
    killed_at = time.monotonic()

    assert_every_complaint_once(cluster, base, batch_id, big_batch)
    job = cluster.job(batch_id)
    assert job["attempts"] == 1  # the driver lived: the batch was never restarted
    # What the dead worker held went to the other once its lease ran out, and counts as a retry.
    redone = {ch["chunk"]: ch for ch in cluster.chunks(batch_id) if ch["chunk"] in held}
    assert all(ch["status"] == "done" and ch["attempt"] >= 2 for ch in redone.values()), redone
    assert_one_chain(cluster, batch_id)

    # The operator's view: the dead worker is silent once its lease has run out; /readyz counts one.
    time.sleep(max(0.0, LEASE + 1 - (time.monotonic() - killed_at)))
    listed = {w["id"]: w for w in cluster.voc_workers()["workers"]}
    assert listed[victim_id]["alive"] is False and listed[survivor_id]["alive"] is True
    assert listed[survivor_id]["chunks_done"] > 0
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["checks"]["workers"]["detail"].startswith("1 voc worker process(es) alive"), ready


def test_a_batch_whose_driver_is_killed_resumes_on_the_other_worker(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    workers, base, batch_id, driver = half_way_with_two_workers(cluster, big_batch)
    workers[driver].kill()

    assert_every_complaint_once(cluster, base, batch_id, big_batch)
    job = cluster.job(batch_id)
    assert job["attempts"] == 2, job  # taken over once, by the other worker
    status = httpx.get(f"{base}/v1/batches/{batch_id}", headers=auth(RW_KEY)).json()
    assert status["stats"]["resumed"] is True  # from its checkpoint, not started over
    assert_one_chain(cluster, batch_id)


def test_a_frozen_driver_cannot_write_into_the_batch_another_worker_took_over(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    """SIGSTOP, not SIGKILL: the driver's process is alive (so only its lease can tell), the other
    worker takes the batch over, then the frozen one wakes up mid-run with its graph still going.
    The lease fence must stop its checkpoint writes, or the chain would fork."""
    workers, base, batch_id, driver = half_way_with_two_workers(cluster, big_batch)
    frozen = workers[driver]
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        cluster.until(
            lambda: cluster.job(batch_id)["runner"] not in (None, driver),
            LEASE * 6,
            "the batch to be taken over",
        )
        # Let the new driver write a few checkpoints of its own before the old one wakes up.
        time.sleep(2)
    finally:
        os.kill(frozen.pid, signal.SIGCONT)

    assert_every_complaint_once(cluster, base, batch_id, big_batch)
    job = cluster.job(batch_id)
    assert job["attempts"] == 2, job
    assert_one_chain(cluster, batch_id)
    frozen.check_alive()  # it lost the batch, not its life
    # It noticed (a fenced checkpoint write, or its wait for a chunk) and gave the batch up.
    assert f"is no longer held by {driver}" in frozen.log.read_text(errors="replace")


def test_a_driver_that_lost_its_batch_while_frozen_goes_back_to_work(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    """As above, but it stays frozen until the other worker has finished the batch and (as by
    default) dropped its chunk rows. Awake again, its graph still waits for the chunks it had
    queued; it must see it lost the batch and give up, not wait for ever holding its only
    driving slot: once the other worker is gone, the next batch needs it."""
    cluster.keep_checkpoints = False
    workers, base, batch_id, driver = half_way_with_two_workers(cluster, big_batch)
    frozen = workers.pop(driver)
    (other,) = workers.values()
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        finished = wait_done(cluster, base, batch_id)
        assert finished["status"] == "done"
        assert not cluster.chunks(batch_id)  # forgotten by the worker that finished it
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    other.kill()
    rows = big_batch[:40]
    follow_up = post(base, rows)["batch_id"]
    final = wait_done(cluster, base, follow_up, timeout=120)
    assert final["status"] == "done", final
    assert Counter(result_ids(base, follow_up)) == Counter(r["id"] for r in rows)
    assert not cluster.chunks(batch_id)  # and it queued nothing again for the batch it lost


def test_a_batch_accepted_before_the_api_is_killed_finishes(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    cluster.worker()
    api, base = cluster.api()
    rows = big_batch[:200]
    batch_id = post(base, rows)["batch_id"]
    api.kill()
    _, base2 = cluster.api()
    r = httpx.get(f"{base2}/v1/batches/{batch_id}", headers=auth(RW_KEY))
    assert r.status_code == 200 and r.json()["batch_id"] == batch_id
    assert_every_complaint_once(cluster, base2, batch_id, rows)


def test_concurrent_retries_to_two_apis_make_one_batch_per_idempotency_key(
    cluster: Cluster, big_batch: list[dict[str, Any]]
) -> None:
    cluster.worker()
    cluster.worker()
    bases = [cluster.api()[1], cluster.api()[1]]
    keys = [f"order-{i}" for i in range(6)]
    payloads = {k: big_batch[i * 30 : (i + 1) * 30] for i, k in enumerate(keys)}
    answers: dict[str, list[str]] = {k: [] for k in keys}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(keys) * 4)

    def send(key: str, base: str) -> None:
        try:
            start.wait(60)
            got = post(base, payloads[key], key)["batch_id"]
            with lock:
                answers[key].append(got)
        except BaseException as exc:  # noqa: BLE001  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(k, bases[i % 2]))
        for k in keys
        for i in range(4)  # 2 per API
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert all(len(ids) == 4 and len(set(ids)) == 1 for ids in answers.values()), answers
    batch_ids = {ids[0] for ids in answers.values()}
    assert len(batch_ids) == len(keys)
    stored = cluster.rows("SELECT id FROM voc_jobs.jobs")
    assert {r["id"] for r in stored} == batch_ids
    for key in keys:
        assert_every_complaint_once(cluster, bases[1], answers[key][0], payloads[key])
