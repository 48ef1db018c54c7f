"""The ``Deps`` in force, rebuilt in every process after a data change, and the lock processes share."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graph.deps import make_deps
from services.jobs import JobStore
from tools.deps import Deps
from tools.settings import Settings

log = logging.getLogger("voc.api")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process using this ``VOC_HOME``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class DepsHolder:
    """The ``Deps`` in force. A data change bumps a generation counter in the job store; every
    process notices it (at most a second late) and rebuilds its ``Deps``, reusing the embedder."""

    CHECK_EVERY = 1.0

    def __init__(self, settings: Settings, jobs: JobStore, deps: Deps | None = None) -> None:
        self.settings = settings
        self._jobs = jobs
        self._lock = threading.RLock()
        self._deps = deps
        self._generation = jobs.generation()
        self._checked = time.monotonic()

    def start(self) -> Deps:
        """Build ``Deps`` if none was given; one process at a time builds the knowledge store (the
        file lock covers this machine, the store's build claim every machine on a Chroma server)."""
        with self._lock:
            if self._deps is None:
                with file_lock(self.settings.home / "locks" / "store.lock"):
                    self._deps = make_deps(self.settings)
            return self._deps

    def get(self) -> Deps:
        deps = self._deps
        if deps is None:
            raise RuntimeError("dependencies are not built yet")
        if time.monotonic() - self._checked >= self.CHECK_EVERY:
            self._checked = time.monotonic()
            if self._jobs.generation() != self._generation:
                deps = self.reload()
        return deps

    def reload(self) -> Deps:
        """Rebuild from the data files in force (stale store collections are re-embedded)."""
        with self._lock:
            generation = self._jobs.generation()
            old = self._deps
            with file_lock(self.settings.home / "locks" / "store.lock"):
                deps = make_deps(self.settings, embedder=old.embedder if old else None)
            self._deps, self._generation = deps, generation
            log.info("data files reloaded (generation %d)", generation)
            return deps

    def mark_changed(self) -> Deps:
        """After this process changed a data file: tell the others, then rebuild."""
        self._jobs.bump_generation()
        return self.reload()
