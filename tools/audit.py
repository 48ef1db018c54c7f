"""The audit trail and the batch ledger, in SQLite at ``VOC_HOME/audit.db``.

The trail records who (an API key's name, the local user, the MCP stdio user) did what (submit,
read, delete, purge a batch; change knowledge data; read the trail) to which id, through which
door (cli, http, mcp), and when. It holds ids, actor names, actions, counts and timestamps only:
never complaint text, file names of uploads or anything else a caller typed. ``record`` refuses
details that are not numbers or short code words, so a slip in a caller cannot write text here.

Why a file of its own rather than a table in ``voc.db``:

* the retention purge deletes from ``voc.db`` and the checkpoint database and rewrites both
  (VACUUM); the trail must outlive what it describes and never be rewritten by that purge;
* it can be kept, copied and permissioned on its own (shipped to write-once storage, say)
  without copying a byte of complaint data with it;
* CLI runs write it too, and the CLI otherwise never opens the job store;
* appending an event never waits on the job store's write lock, which busy workers hold.

WAL mode and a busy timeout let several processes (``voc serve`` workers, ``voc mcp``, CLI runs)
append at once. Events are append-only: triggers refuse UPDATE and DELETE, which stops a bug (not
someone with write access to the file; copy the file elsewhere for that).

The ledger is the other table: each CLI run's batch id and when it last ran. CLI batches live only
as checkpoint threads, which carry no readable date of their own without unpacking them; the
purge uses the ledger to age them and forgets a ledger row when the batch is purged.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tools.sql import DB_ERRORS, Conn, Database, Migration

log = logging.getLogger("voc.audit")

# batch: what the system did on its own after a batch (an action verified or reopened).
Door = Literal["cli", "http", "mcp", "batch"]
DOORS: tuple[Door, ...] = ("cli", "http", "mcp", "batch")
Detail = dict[str, int | float | bool | str]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    door TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_target ON events(target, id);
CREATE INDEX IF NOT EXISTS events_actor ON events(actor, id);
CREATE TABLE IF NOT EXISTS ledger (
    batch_id TEXT PRIMARY KEY,
    door TEXT NOT NULL,
    last_run TEXT NOT NULL
);
"""
# The trail is append-only in the database itself, not only in this code.
_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgres": [
        "CREATE OR REPLACE FUNCTION voc_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS events_append_only ON events",
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION voc_append_only()",
    ],
}


def _baseline(conn: Conn) -> None:
    conn.script(SCHEMA)
    for statement in _APPEND_ONLY[conn.dialect]:
        conn.raw.execute(statement)


MIGRATIONS = [Migration(1, _baseline)]

_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_WORD = re.compile(r"[A-Za-z0-9_.:-]{0,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TARGET = 200


class AuditError(Exception):
    """The audit log could not be written or read (locked past the timeout, disk full, unreadable)."""


@dataclass(frozen=True)
class Actor:
    """Who acts, as the trail names them, and through which door."""

    name: str
    door: Door


def cli_actor() -> Actor:
    """The person running a ``voc`` command: their login on this machine."""
    try:
        login = getpass.getuser()
    except Exception:  # no login name (some containers): still say it was a CLI run
        login = "unknown"
    return Actor(f"user:{login}", "cli")


def utc_text(when: datetime) -> str:
    """One fixed ISO form (UTC, microseconds), so stored times sort and compare as text."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def now_text() -> str:
    return utc_text(datetime.now(UTC))


class AuditEvent(BaseModel):
    """One entry of the audit trail."""

    id: int = Field(description="Increasing; pass as `before` to page further back.")
    ts: datetime = Field(description="When, in UTC.")
    actor: str = Field(
        description="key:NAME (an API key's name), local (local-only HTTP), mcp:stdio, user:LOGIN (CLI), "
        "or system:verification (an action's effect verified after a batch)."
    )
    door: Door = Field(description="cli, http, mcp, or batch (done by the system after a batch).")
    action: str = Field(
        description="e.g. batch.submit, batch.read, batch.delete, batch.purge, knowledge.create."
    )
    target: str | None = Field(description="The batch id, knowledge entry or case id, or data file name.")
    detail: Detail = Field(description="Counts and code words only; never text.")


@dataclass
class AuditQuery:
    """Filters for reading the trail; newest first, ``before`` an event id for the next page."""

    since: datetime | None = None
    actor: str | None = None
    action: str | None = None
    door: Door | None = None
    target: str | None = None
    before: int | None = None
    limit: int = 100

    def where(self) -> tuple[str, list[object]]:
        """SQL conditions. An action without a dot (``batch``) matches that family (``batch.*``)."""
        parts: list[str] = []
        args: list[object] = []
        if self.since is not None:
            parts.append("ts >= ?")
            args.append(utc_text(self.since))
        for column in ("actor", "door", "target"):
            value = getattr(self, column)
            if value is not None:
                parts.append(f"{column} = ?")
                args.append(value)
        if self.action is not None:
            if "." in self.action:
                parts.append("action = ?")
                args.append(self.action)
            else:
                parts.append("substr(action, 1, ?) = ?")
                args += [len(self.action) + 1, self.action + "."]
        if self.before is not None:
            parts.append("id < ?")
            args.append(self.before)
        return (" WHERE " + " AND ".join(parts)) if parts else "", args


def _clean_detail(detail: Detail) -> str:
    """Counts and code words only: a value that could be text a caller typed is a bug, refused here."""
    for key, value in detail.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"audit detail key {key!r} is not a plain name")
        if isinstance(value, str) and not _WORD.fullmatch(value):
            raise ValueError(f"audit detail {key} must be a count or a short code word")
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"audit detail {key} must be a count or a short code word")
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


def _clean_target(target: str | None) -> str | None:
    if target is None:
        return None
    return _CONTROL.sub("", target)[:MAX_TARGET]


class AuditLog:
    """Appends to and reads ``audit.db``; one short connection per call, safe across threads and processes."""

    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database("audit", path=db, durable=True)
        self._ready = False

    @property
    def path(self) -> Path | None:
        """The SQLite file, when the trail is one (None on Postgres)."""
        return self.db.path

    @contextmanager
    def _connect(self) -> Iterator[Conn]:
        try:
            if not self._ready:
                self.db.migrate(MIGRATIONS)
                self._ready = True
            with self.db.connect() as db:
                yield db
        except AuditError:
            raise
        except DB_ERRORS + (OSError,) as exc:
            raise AuditError(f"the audit log failed ({type(exc).__name__}: {exc})") from exc

    # -- writing -----------------------------------------------------------------------------

    def record(
        self, actor: Actor, action: str, target: str | None = None, **detail: int | float | bool | str
    ) -> int:
        """Append one event; its id. Raises :class:`AuditError` when it cannot be written."""
        body = _clean_detail(detail)
        with self._connect() as db:
            row = db.execute(
                "INSERT INTO events (ts, actor, door, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (now_text(), actor.name, actor.door, action, _clean_target(target), body),
            ).fetchone()
            return int(row[0])

    def record_done(
        self, actor: Actor, action: str, target: str | None = None, **detail: int | float | bool | str
    ) -> None:
        """Append an event for something already done (stored, deleted, changed).

        A failure is logged as an error, not raised: the change has happened and cannot be
        undone, and failing the request would make the caller believe it had not (and retry a
        submission as a second batch). The log line names the action and id so it can be
        added to the trail by hand.
        """
        try:
            self.record(actor, action, target, **detail)
        except AuditError as exc:
            log.error(
                "AUDIT EVENT NOT WRITTEN: %s %s by %s via %s (%s)",
                action,
                target,
                actor.name,
                actor.door,
                exc,
            )

    # -- reading -----------------------------------------------------------------------------

    def query(self, q: AuditQuery) -> list[AuditEvent]:
        where, args = q.where()
        with self._connect() as db:
            rows = db.execute(
                f"SELECT id, ts, actor, door, action, target, detail FROM events{where}"
                " ORDER BY id DESC LIMIT ?",
                (*args, q.limit),
            ).fetchall()
        return [AuditEvent.model_validate({**dict(r), "detail": json.loads(r["detail"])}) for r in rows]

    def read(self, q: AuditQuery, actor: Actor) -> list[AuditEvent]:
        """Read the trail and record that it was read; no trace, no answer (raises AuditError)."""
        events = self.query(q)
        self.record(actor, "audit.read", None, rows=len(events))
        return events

    # -- the batch ledger --------------------------------------------------------------------

    def note_run(self, batch_id: str, door: Door) -> None:
        """A batch ran now (a CLI run): its age for the purge counts from the last run."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO ledger (batch_id, door, last_run) VALUES (?, ?, ?)"
                " ON CONFLICT(batch_id) DO UPDATE SET door = excluded.door, last_run = excluded.last_run",
                (batch_id, door, now_text()),
            )

    def runs(self) -> dict[str, datetime]:
        """Every ledger entry: batch id -> when it last ran."""
        if not self.db.exists():
            return {}
        with self._connect() as db:
            rows = db.execute("SELECT batch_id, last_run FROM ledger").fetchall()
        return {r["batch_id"]: datetime.fromisoformat(r["last_run"]) for r in rows}

    def forget_runs(self, batch_ids: list[str], before: datetime | None = None) -> int:
        """Drop ledger rows of purged or deleted batches (and, with ``before``, any older row)."""
        with self._connect() as db:
            n = 0
            for batch_id in batch_ids:
                n += db.execute("DELETE FROM ledger WHERE batch_id = ?", (batch_id,)).rowcount
            if before is not None:
                n += db.execute("DELETE FROM ledger WHERE last_run < ?", (utc_text(before),)).rowcount
            return n
