"""The VOC warehouse (``VOC_HOME/warehouse.db``): every tracked complaint, the vector cache, tracked
problems, their series, statuses, alerts, lineage and period exposures, the latest proposal per problem,
actions with their history and effects, and the outbox."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from loop import feedback, outbox, webhook_tables
from tools.sql import LOCK_WAIT_ERRORS, Conn, Database, Migration, Row, chunked, placeholders, upsert

log = logging.getLogger("voc.warehouse")
# Seconds a vector-cache write waits for another process's uncommitted copy of the same vectors.
VECTOR_CACHE_LOCK_WAIT = 5.0

# 3: webhooks (or actions); 4: both; 5: complaints.evidence; 6: confidence, engine; 7: corrections
SCHEMA_VERSION = 7
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    embedder TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (embedder, text_hash)
);
CREATE TABLE IF NOT EXISTS complaints (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    period TEXT NOT NULL,
    received_at TEXT,
    negative INTEGER NOT NULL,
    dimension TEXT,
    l2 TEXT,
    l3 TEXT,
    department_id TEXT,
    department TEXT,
    grade TEXT NOT NULL,
    priority TEXT NOT NULL,
    severity REAL NOT NULL,
    customer_hash TEXT,
    batch_id TEXT NOT NULL,
    tracked_id TEXT,
    embedder TEXT NOT NULL,
    read_hash TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '[]',
    evidence TEXT NOT NULL DEFAULT '[]',
    label_confidence REAL,
    department_confidence REAL,
    grade_confidence REAL,
    engine TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX IF NOT EXISTS complaints_period ON complaints(period);
CREATE INDEX IF NOT EXISTS complaints_tracked ON complaints(tracked_id, period);
CREATE INDEX IF NOT EXISTS complaints_batch ON complaints(batch_id);
CREATE TABLE IF NOT EXISTS versions (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (source, id, version)
);
CREATE TABLE IF NOT EXISTS problems (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    name TEXT NOT NULL,
    l2 TEXT,
    dimension TEXT,
    department_id TEXT,
    department TEXT,
    first_period TEXT NOT NULL,
    centroid_sum BLOB NOT NULL,
    n INTEGER NOT NULL,
    merged_into TEXT,
    created_batch TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage (
    problem_id TEXT NOT NULL,
    related_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    similarity REAL NOT NULL,
    PRIMARY KEY (problem_id, related_id, kind)
);
CREATE TABLE IF NOT EXISTS series (
    subject TEXT NOT NULL,
    key TEXT NOT NULL,
    period TEXT NOT NULL,
    complaints INTEGER NOT NULL,
    customers INTEGER NOT NULL,
    share REAL NOT NULL,
    grade_mix TEXT NOT NULL,
    priority TEXT,
    department TEXT,
    status TEXT,
    PRIMARY KEY (subject, key, period)
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    problem_id TEXT,
    label TEXT,
    period TEXT NOT NULL,
    level TEXT NOT NULL,
    observed INTEGER NOT NULL,
    expected REAL NOT NULL,
    "limit" REAL NOT NULL,
    p_value REAL NOT NULL,
    kind TEXT NOT NULL,
    basis TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_period ON alerts(period);
CREATE TABLE IF NOT EXISTS periods (period TEXT PRIMARY KEY, exposure REAL NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (
    problem_id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    period TEXT NOT NULL,
    priority TEXT NOT NULL,
    proposal TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    problem_id TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    owner_role TEXT,
    handling_class TEXT,
    due TEXT NOT NULL,
    fixed_on TEXT,
    root_cause TEXT,
    goals TEXT NOT NULL DEFAULT '[]',
    measures TEXT NOT NULL DEFAULT '[]',
    metrics TEXT NOT NULL DEFAULT '[]',
    target_ratio REAL NOT NULL,
    proposal_batch TEXT,
    verified_through TEXT,
    overdue_flagged INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_problem ON actions(problem_id);
CREATE TABLE IF NOT EXISTS action_history (
    action_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    fixed_on TEXT,
    note TEXT,
    PRIMARY KEY (action_id, seq)
);
CREATE TABLE IF NOT EXISTS effects (
    action_id TEXT PRIMARY KEY,
    effect TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
    + outbox.SCHEMA
    + webhook_tables.SCHEMA
    + feedback.SCHEMA
)


def text_hash(text: str) -> str:
    """The key a text's vector is cached under (with the embedder's name)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredComplaint:
    """A complaint as the warehouse keeps it (masked text only)."""

    source: str
    id: str
    version: int
    text_hash: str
    text: str
    period: str
    received_at: str | None
    negative: bool
    dimension: str | None
    l2: str | None
    l3: str | None
    department_id: str | None
    department: str | None
    grade: str
    priority: str
    severity: float
    customer_hash: str | None
    batch_id: str
    tracked_id: str | None
    embedder: str  # the vector is in the cache under (embedder, read_hash)
    read_hash: str
    flags: list[str]
    evidence: list[str] = field(default_factory=list)  # the root cause's evidence words (masked text)
    # As shown with the result (calibrated for rules results); None for complaints stored before v6.
    label_confidence: float | None = None
    department_confidence: float | None = None
    grade_confidence: float | None = None
    engine: str | None = None


_COMPLAINT_COLUMNS = (
    "source, id, version, text_hash, text, period, received_at, negative, dimension, l2, l3, "
    "department_id, department, grade, priority, severity, customer_hash, batch_id, tracked_id, "
    "embedder, read_hash, flags, evidence, label_confidence, department_confidence, grade_confidence, engine"
)


_PUT_COMPLAINT = upsert(
    "complaints", [c.strip() for c in _COMPLAINT_COLUMNS.split(",")] + ["updated_at"], ["source", "id"]
)


def _complaint(row: Row) -> StoredComplaint:
    return StoredComplaint(
        source=row["source"],
        id=row["id"],
        version=row["version"],
        text_hash=row["text_hash"],
        text=row["text"],
        period=row["period"],
        received_at=row["received_at"],
        negative=bool(row["negative"]),
        dimension=row["dimension"],
        l2=row["l2"],
        l3=row["l3"],
        department_id=row["department_id"],
        department=row["department"],
        grade=row["grade"],
        priority=row["priority"],
        severity=row["severity"],
        customer_hash=row["customer_hash"],
        batch_id=row["batch_id"],
        tracked_id=row["tracked_id"],
        embedder=row["embedder"],
        read_hash=row["read_hash"],
        flags=json.loads(row["flags"]),
        evidence=json.loads(row["evidence"]),
        label_confidence=row["label_confidence"],
        department_confidence=row["department_confidence"],
        grade_confidence=row["grade_confidence"],
        engine=row["engine"],
    )


def _baseline(conn: Conn) -> None:
    """Every table (CREATE ... IF NOT EXISTS keeps the old ones), and the columns added to a table
    after it was first created."""
    conn.script(SCHEMA)
    have = conn.columns("complaints")
    if "evidence" not in have:
        conn.execute("ALTER TABLE complaints ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]'")
    for name, kind in (
        ("label_confidence", "REAL"),
        ("department_confidence", "REAL"),
        ("grade_confidence", "REAL"),
        ("engine", "TEXT"),
    ):
        if name not in have:
            conn.execute(f"ALTER TABLE complaints ADD COLUMN {name} {kind}")


# One idempotent step brings any older warehouse to SCHEMA_VERSION (the SQLite files of versions
# 1-5 carry their number in PRAGMA user_version); numbered steps after it go below as they come.
MIGRATIONS = [Migration(SCHEMA_VERSION, _baseline)]


class Warehouse:
    """The warehouse store: a SQLite file shared by every process using this ``VOC_HOME`` (WAL, short
    transactions), or the ``voc_warehouse`` schema in ``VOC_DATABASE_URL`` (see tools/sql.py)."""

    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database("warehouse", path=db)
        # Every chunk task opens the warehouse: once the schema is there, only a read is needed,
        # so parallel tasks never queue for a write lock just to learn that.
        self.db.migrate(MIGRATIONS)

    @property
    def path(self) -> Path | None:
        """The SQLite file, when the store is one (None on Postgres)."""
        return self.db.path

    def connect(self, serial: bool = True) -> AbstractContextManager[Conn]:
        """A connection in one write transaction: committed on success, rolled back on error.

        ``serial=False`` (Postgres) skips the warehouse-wide write lock, for writes that cannot
        conflict with anything (the vector cache's insert-if-absent)."""
        return self.db.transaction(serial=serial)

    def reading(self) -> AbstractContextManager[Conn]:
        """A connection for reads only: no write lock taken, so parallel tasks never wait for it."""
        return self.db.connect()

    # ── the vector cache ──────────────────────────────────────────────────────────────────────

    def cached_vectors(self, embedder: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already computed by ``embedder`` for these text hashes."""
        wanted = list(dict.fromkeys(hashes))
        out: dict[str, np.ndarray] = {}
        if not wanted:
            return out
        with self.db.connect() as conn:
            for part in chunked(wanted):
                rows = conn.execute(
                    "SELECT text_hash, vector FROM vectors WHERE embedder = ? "
                    f"AND text_hash IN ({placeholders(len(part))})",
                    [embedder, *part],
                )
                for h, blob in rows:
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def cache_vectors(self, embedder: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        try:
            with self.connect(serial=False) as conn:
                # Another process caching the same texts holds their keys until it commits; this
                # cache is not worth waiting long for (the vectors are cached by the next run).
                conn.limit_lock_wait(VECTOR_CACHE_LOCK_WAIT)
                conn.executemany(
                    "INSERT OR IGNORE INTO vectors (embedder, text_hash, vector) VALUES (?, ?, ?)",
                    [(embedder, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()],
                )
        except LOCK_WAIT_ERRORS:
            log.info("vector cache: %d vectors not cached, another process holds their keys", len(vectors))

    # ── identities ────────────────────────────────────────────────────────────────────────────

    def customer_salt(self, conn: Conn) -> bytes:
        """A secret of this warehouse: customer ids are kept only as keyed hashes."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'customer_salt'").fetchone()
        if row:
            return bytes.fromhex(row["value"])
        salt = secrets.token_bytes(16)
        conn.execute("INSERT INTO meta (key, value) VALUES ('customer_salt', ?)", (salt.hex(),))
        return salt

    def label_columns(self, conn: Conn, labels: Iterable[str]) -> tuple[str, ...]:
        """The tracking space's label columns: those seen before in their order, new ones appended,
        so a centroid stored last year still lines up after the taxonomy grows."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'label_columns'").fetchone()
        known: list[str] = json.loads(row["value"]) if row else []
        added = [lab for lab in labels if lab not in set(known)]
        if added or not row:
            known += added
            conn.execute(
                upsert("meta", ["key", "value"], ["key"]),
                ("label_columns", json.dumps(known, ensure_ascii=False)),
            )
        return tuple(known)

    # ── complaints ────────────────────────────────────────────────────────────────────────────

    def stored(self, conn: Conn, source: str, ids: list[str]) -> dict[str, StoredComplaint]:
        out: dict[str, StoredComplaint] = {}
        for part in chunked(ids):
            for row in conn.execute(
                f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                f"WHERE source = ? AND id IN ({placeholders(len(part))})",
                [source, *part],
            ):
                out[row["id"]] = _complaint(row)
        return out

    def put(self, conn: Conn, c: StoredComplaint) -> None:
        now = datetime.now(UTC).isoformat()
        conn.execute(
            _PUT_COMPLAINT,
            (
                c.source,
                c.id,
                c.version,
                c.text_hash,
                c.text,
                c.period,
                c.received_at,
                int(c.negative),
                c.dimension,
                c.l2,
                c.l3,
                c.department_id,
                c.department,
                c.grade,
                c.priority,
                c.severity,
                c.customer_hash,
                c.batch_id,
                c.tracked_id,
                c.embedder,
                c.read_hash,
                json.dumps(c.flags),
                json.dumps(c.evidence, ensure_ascii=False),
                c.label_confidence,
                c.department_confidence,
                c.grade_confidence,
                c.engine,
                now,
            ),
        )
        conn.execute(
            "INSERT OR IGNORE INTO versions (source, id, version, text_hash, batch_id, seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (c.source, c.id, c.version, c.text_hash, c.batch_id, now),
        )

    def members(self, conn: Conn, tracked_id: str) -> list[StoredComplaint]:
        rows = conn.execute(
            f"SELECT {_COMPLAINT_COLUMNS} FROM complaints WHERE tracked_id = ? ORDER BY period, source, id",
            (tracked_id,),
        )
        return [_complaint(r) for r in rows]

    def counts(self, conn: Conn) -> dict[str, Any]:
        one = conn.execute(
            "SELECT COUNT(*) AS complaints, COUNT(DISTINCT batch_id) AS batches, "
            "MIN(period) AS first, MAX(period) AS last FROM complaints"
        ).fetchone()
        problems = conn.execute("SELECT COUNT(*) FROM problems WHERE merged_into IS NULL").fetchone()[0]
        return {**dict(one), "problems": problems}

    def delete_batch(self, batch_id: str) -> int:
        """Forget the complaints last stored by ``batch_id``; the caller rebuilds the series."""
        with self.connect() as conn:
            n = conn.execute("DELETE FROM complaints WHERE batch_id = ?", (batch_id,)).rowcount
            conn.execute("DELETE FROM versions WHERE batch_id = ?", (batch_id,))
            return int(n)

    def recount_problems(self, conn: Conn) -> None:
        """After complaints were deleted: each problem's size from what is left, and a problem with
        none left stops attracting new complaints (its centroid is cleared). The centroids of the
        others keep the deleted complaints' share until their next members move them."""
        conn.execute(
            "UPDATE problems SET n = (SELECT COUNT(*) FROM complaints c WHERE c.tracked_id = problems.id)"
        )
        for pid, blob in conn.execute("SELECT id, centroid_sum FROM problems WHERE n = 0").fetchall():
            conn.execute("UPDATE problems SET centroid_sum = ? WHERE id = ?", (bytes(len(blob)), pid))

    # ── period exposure ───────────────────────────────────────────────────────────────────────

    def set_exposure(self, period: str, exposure: float) -> None:
        with self.connect() as conn:
            conn.execute(upsert("periods", ["period", "exposure"], ["period"]), (period, exposure))

    def exposures(self, conn: Conn) -> dict[str, float]:
        return {r["period"]: r["exposure"] for r in conn.execute("SELECT period, exposure FROM periods")}
