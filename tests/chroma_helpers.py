"""A real Chroma server (``chroma run`` from the chromadb package) for tests: one per session.

The ``chroma`` fixture is registered in conftest.py, so every test module shares one server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import free_port
from tools.store import make_client


def chroma_executable() -> str:
    """The ``chroma`` command installed with chromadb, beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.is_file() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` command from the chromadb package is not installed; these tests need it")
    return found


class ChromaServer:
    """``chroma run`` on a loopback port with its data in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = path.parent / f"chroma-{self.port}.log"

    def start(self) -> ChromaServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    chroma_executable(),
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"chroma run did not answer on {self.url} within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def names(self) -> list[str]:
        return sorted(c.name for c in make_client(url=self.url).list_collections())


@pytest.fixture(scope="session")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "db").start()
    yield server
    server.stop()
    close_http_clients()


def close_http_clients() -> None:
    """Close the HTTP sessions chromadb caches for the life of the process (it has no close())."""
    from chromadb.api.shared_system_client import SharedSystemClient

    for system in SharedSystemClient._identifier_to_system.values():
        for component in system.components():
            session = getattr(component, "_session", None)
            if isinstance(session, httpx.Client):
                session.close()
