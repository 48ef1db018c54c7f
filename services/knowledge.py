"""Changing the domain data for both doors: knowledge entries, cases, the service matrix, the taxonomy."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.errors import Conflict, InvalidDataFile, NotFound
from services.holder import DepsHolder, file_lock
from services.models import DataFileChanged, DataFileInfo, KnowledgeOverview
from tools.audit import Actor, AuditLog
from tools.datafile import DataFileError, file_digest
from tools.deps import Deps, load_data
from tools.knowledge import Case, KnowledgeEntry, load_cases, load_knowledge
from tools.settings import DATA_FILES, Settings
from tools.sql import database


@dataclass(frozen=True)
class Records:
    """A list of records kept in one data file: knowledge entries or cases."""

    file: str  # the data file's name
    field: str  # the list in it
    noun: str  # how messages name one record
    action: str  # the audit trail's family: <action>.create, <action>.delete
    load: Callable[[Path], Any]


ENTRIES = Records("knowledge", "entries", "knowledge entry", "knowledge", load_knowledge)
CASES = Records("cases", "cases", "case", "case", load_cases)


class KnowledgeService:
    """Reads and changes of the data files; one change at a time across processes.

    A change is written to a candidate file, the whole data set is validated with it in place (the same
    loaders and cross-checks as at start-up), and only then does it replace the copy in
    ``VOC_HOME/data/``. A bad file is refused with its problems and the old one stays in force. The
    repository's ``data/`` is never written. Every change is recorded in the audit trail (ids and file
    names only) once it is in force.
    """

    def __init__(self, holder: DepsHolder, audit: AuditLog | None = None) -> None:
        self.holder = holder
        self.audit = audit or AuditLog(database(holder.settings, "audit"))
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self.holder.settings

    def source(self, name: str) -> str:
        if getattr(self.settings, f"{name}_path"):
            return "configured"
        return "edited" if self.settings.path(name).parent == self.settings.edited_data_dir else "default"

    def overview(self) -> KnowledgeOverview:
        deps = self.holder.get()
        versions = _versions(deps)
        files = [
            DataFileInfo(
                name=name,
                version=versions[name],
                source=self.source(name),
                digest=file_digest(self.settings.path(name)),
            )
            for name in DATA_FILES
        ]
        return KnowledgeOverview(files=files, store=deps.store.counts())

    # -- entries and cases -------------------------------------------------------------------

    def add(self, records: Records, record: KnowledgeEntry | Case, via: Actor) -> DataFileChanged:
        """Add a knowledge entry or a case; one with the same id is a conflict."""
        record_id = record.id

        def change(doc: Any) -> Any:
            kept = getattr(doc, records.field)
            if any(r.id == record_id for r in kept):
                raise Conflict(f"{records.noun} {record_id} exists; delete it first to replace it")
            return doc.model_copy(update={records.field: [*kept, record]})

        changed = self._edit(records, change)
        self.audit.record_done(via, f"{records.action}.create", record_id)
        return changed

    def delete(self, records: Records, record_id: str, via: Actor) -> DataFileChanged:
        def change(doc: Any) -> Any:
            old = getattr(doc, records.field)
            kept = [r for r in old if r.id != record_id]
            if len(kept) == len(old):
                raise NotFound(f"no such {records.noun}")
            return doc.model_copy(update={records.field: kept})

        changed = self._edit(records, change)
        self.audit.record_done(via, f"{records.action}.delete", record_id)
        return changed

    def _edit(self, records: Records, change: Callable[[Any], Any]) -> DataFileChanged:
        name = records.file
        with self._guard(name):
            # Read the file in force from disk: another process may have changed it.
            doc = change(records.load(self.settings.path(name)))
            text = yaml.safe_dump(doc.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
            return self._install(name, text.encode("utf-8"))

    # -- whole files -------------------------------------------------------------------------

    def raw(self, name: str) -> bytes:
        return self.settings.path(name).read_bytes()

    def replace(self, name: str, content: bytes, via: Actor) -> DataFileChanged:
        with self._guard(name):
            changed = self._install(name, content)
        self.audit.record_done(via, "knowledge.replace", name, bytes=len(content))
        return changed

    @contextmanager
    def _guard(self, name: str) -> Iterator[None]:
        """One change at a time, in this process and across processes sharing ``VOC_HOME``."""
        if getattr(self.settings, f"{name}_path"):
            raise Conflict(f"{name} is pinned by VOC_{name.upper()}_PATH; change that file instead")
        with self._lock, file_lock(self.settings.home / "locks" / "data.lock"):
            yield

    def _install(self, name: str, content: bytes) -> DataFileChanged:
        target_dir = self.settings.edited_data_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{name}.yaml"
        candidate = target_dir / f".{name}.{uuid.uuid4().hex}.yaml"
        candidate.write_bytes(content)
        try:
            # The whole data set with the candidate in place: cross-file checks apply too.
            load_data(self.settings.model_copy(update={f"{name}_path": candidate}))
        except (DataFileError, RecursionError) as exc:
            candidate.unlink(missing_ok=True)
            problems = exc.problems if isinstance(exc, DataFileError) else ["the file nests too deeply"]
            raise InvalidDataFile(
                f"the {name} file is not valid; the one in force is unchanged", problems=problems
            ) from None
        previous = target.read_bytes() if target.is_file() else None
        os.replace(candidate, target)
        try:
            deps = self.holder.mark_changed()
        except Exception:
            # Put the old file back so the running service and the next start agree.
            if previous is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(previous)
            self.holder.mark_changed()
            raise
        return DataFileChanged(
            name=name, version=_versions(deps)[name], digest=file_digest(self.settings.path(name))
        )


def _versions(deps: Deps) -> dict[str, str]:
    """The version of each data file in force, by name."""
    return {
        "service_matrix": deps.matrix.version,
        "taxonomy": deps.taxonomy.version,
        "knowledge": deps.knowledge.version,
        "cases": deps.cases.version,
        "scoring": deps.scoring.version,
        "remediation": deps.remediation.version,
        "lexicon": deps.lexicon.version,
    }
