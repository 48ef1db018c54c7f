"""Changing the domain data over HTTP: knowledge entries, cases, the service matrix, the taxonomy.

A change is written to a candidate file, the whole data set is validated with it in place
(the same loaders and cross-checks as at start-up), and only then does it replace the copy in
``VOC_HOME/data/``. A bad file is refused with its problems and the old one stays in force.
The repository's ``data/`` is never written. Every change is recorded in the audit trail (ids
and file names only) once it is in force.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from api.errors import Conflict, InvalidDataFile, NotFound
from api.models import DataFileChanged, DataFileInfo, KnowledgeOverview
from api.state import DepsHolder, file_lock
from tools.audit import Actor, AuditLog
from tools.datafile import DataFileError, file_digest
from tools.deps import Deps, load_data
from tools.knowledge import Case, CasesFile, KnowledgeEntry, KnowledgeFile, load_cases, load_knowledge
from tools.settings import DATA_FILES, Settings


class KnowledgeService:
    def __init__(self, holder: DepsHolder, audit: AuditLog | None = None) -> None:
        self.holder = holder
        self.audit = audit or AuditLog(holder.settings.audit_db)
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
        by_name = {
            "service_matrix": deps.matrix.version,
            "taxonomy": deps.taxonomy.version,
            "knowledge": deps.knowledge.version,
            "cases": deps.cases.version,
            "scoring": deps.scoring.version,
            "remediation": deps.remediation.version,
            "lexicon": deps.lexicon.version,
        }
        files = [
            DataFileInfo(
                name=name,
                version=by_name[name],
                source=self.source(name),
                digest=file_digest(self.settings.path(name)),
            )
            for name in DATA_FILES
        ]
        return KnowledgeOverview(files=files, store=deps.store.counts())

    # -- entries and cases -------------------------------------------------------------------

    def add_entry(self, entry: KnowledgeEntry, via: Actor) -> DataFileChanged:
        def change(doc: KnowledgeFile) -> KnowledgeFile:
            if any(e.id == entry.id for e in doc.entries):
                raise Conflict(f"knowledge entry {entry.id} exists; delete it first to replace it")
            return doc.model_copy(update={"entries": [*doc.entries, entry]})

        changed = self._edit("knowledge", load_knowledge, change)
        self.audit.record_done(via, "knowledge.create", entry.id)
        return changed

    def delete_entry(self, entry_id: str, via: Actor) -> DataFileChanged:
        def change(doc: KnowledgeFile) -> KnowledgeFile:
            kept = [e for e in doc.entries if e.id != entry_id]
            if len(kept) == len(doc.entries):
                raise NotFound("no such knowledge entry")
            return doc.model_copy(update={"entries": kept})

        changed = self._edit("knowledge", load_knowledge, change)
        self.audit.record_done(via, "knowledge.delete", entry_id)
        return changed

    def add_case(self, case: Case, via: Actor) -> DataFileChanged:
        def change(doc: CasesFile) -> CasesFile:
            if any(c.id == case.id for c in doc.cases):
                raise Conflict(f"case {case.id} exists; delete it first to replace it")
            return doc.model_copy(update={"cases": [*doc.cases, case]})

        changed = self._edit("cases", load_cases, change)
        self.audit.record_done(via, "case.create", case.id)
        return changed

    def delete_case(self, case_id: str, via: Actor) -> DataFileChanged:
        def change(doc: CasesFile) -> CasesFile:
            kept = [c for c in doc.cases if c.id != case_id]
            if len(kept) == len(doc.cases):
                raise NotFound("no such case")
            return doc.model_copy(update={"cases": kept})

        changed = self._edit("cases", load_cases, change)
        self.audit.record_done(via, "case.delete", case_id)
        return changed

    def _edit(self, name: str, load: Callable[[Path], Any], change: Callable[[Any], Any]) -> DataFileChanged:
        with self._guard(name):
            # Read the file in force from disk: another process may have changed it.
            doc = change(load(self.settings.path(name)))
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
        return self._changed(name, deps)

    def _changed(self, name: str, deps: Deps) -> DataFileChanged:
        versions = {
            "knowledge": deps.knowledge.version,
            "cases": deps.cases.version,
            "service_matrix": deps.matrix.version,
            "taxonomy": deps.taxonomy.version,
        }
        return DataFileChanged(
            name=name, version=versions[name], digest=file_digest(self.settings.path(name))
        )
