"""Helpers shared by the HTTP service tests (not a test module)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tools.deps import Deps

READ_KEY = "reader-key-0123456789abcdef"
WRITE_KEY = "writer-key-0123456789abcdef"
RW_KEY = "crm-rw-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = f"{READ_KEY}:read;{WRITE_KEY}:write;{RW_KEY}:read,write;{ADMIN_KEY}:admin"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def home_like(deps: Deps, home: Path) -> Path:
    """A fresh VOC_HOME whose knowledge store is a copy of the session's, so nothing is re-embedded."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(deps.settings.chroma_dir, home / "chroma")
    return home


def wait_done(get: Any, batch_id: str, headers: dict[str, str] | None = None, timeout: float = 120) -> dict:
    """Poll a batch's status until it is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        status = get(f"/v1/batches/{batch_id}", headers=headers or {}).json()
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
