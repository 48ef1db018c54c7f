"""Reviewers' corrections in the warehouse: stored, undone, folded into what each complaint was taught,
and loaded at the start of a run as the exemplars and overrides later runs learn from.

Corrections key on the warehouse's identity of a complaint, ``(source, id)``, and borrow its vector
from the warehouse's vector cache, so they live in ``warehouse.db`` beside the complaints. The SQL is
plain (no SQLite-only functions) so the storage layer can move it to Postgres as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tools.audit import now_text
from tools.learning import FIELDS, Learned, Taught
from tools.sql import Conn, Row

SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    source TEXT NOT NULL,
    complaint_id TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    l2 TEXT,
    department_id TEXT,
    grade TEXT,
    problem_id TEXT,
    confirmed INTEGER NOT NULL DEFAULT 0,
    previous TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    actor TEXT NOT NULL,
    door TEXT NOT NULL,
    created_at TEXT NOT NULL,
    undone_at TEXT,
    undone_by TEXT
);
CREATE INDEX IF NOT EXISTS corrections_complaint ON corrections(source, complaint_id);
"""
_COLUMNS = (
    "id, seq, source, complaint_id, text_hash, l2, department_id, grade, problem_id, confirmed, previous, "
    "warnings, actor, door, created_at, undone_at, undone_by"
)


@dataclass
class Correction:
    """One stored correction (a reviewer's answer for some fields of one complaint)."""

    id: str
    seq: int
    source: str
    complaint_id: str
    text_hash: str
    l2: str | None
    department_id: str | None
    grade: str | None
    problem_id: str | None
    confirmed: bool
    previous: dict[str, Any]
    warnings: list[str]
    actor: str
    door: str
    created_at: str
    undone_at: str | None = None
    undone_by: str | None = None

    def values(self) -> dict[str, str]:
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not None}

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "complaint_id": self.complaint_id,
            **{f: getattr(self, f) for f in FIELDS},
            "confirmed": self.confirmed,
            "previous": self.previous,
            "warnings": self.warnings,
            "by": self.actor,
            "door": self.door,
            "at": self.created_at,
            "undone_at": self.undone_at,
            "undone_by": self.undone_by,
        }


@dataclass
class NewCorrection:
    source: str
    complaint_id: str
    text_hash: str
    values: dict[str, str]
    confirmed: bool = False
    previous: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _row(r: Row) -> Correction:
    return Correction(
        id=r["id"],
        seq=r["seq"],
        source=r["source"],
        complaint_id=r["complaint_id"],
        text_hash=r["text_hash"],
        l2=r["l2"],
        department_id=r["department_id"],
        grade=r["grade"],
        problem_id=r["problem_id"],
        confirmed=bool(r["confirmed"]),
        previous=json.loads(r["previous"]),
        warnings=json.loads(r["warnings"]),
        actor=r["actor"],
        door=r["door"],
        created_at=r["created_at"],
        undone_at=r["undone_at"],
        undone_by=r["undone_by"],
    )


def get(conn: Conn, correction_id: str) -> Correction | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM corrections WHERE id = ?", (correction_id,)).fetchone()
    return _row(row) if row else None


def for_complaint(conn: Conn, source: str, complaint_id: str) -> list[Correction]:
    """A complaint's corrections, oldest first (undone ones included)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM corrections WHERE source = ? AND complaint_id = ? ORDER BY seq",
        (source, complaint_id),
    )
    return [_row(r) for r in rows]


def active(conn: Conn) -> list[Correction]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM corrections WHERE undone_at IS NULL ORDER BY seq")
    return [_row(r) for r in rows]


def taught_values(corrections: list[Correction]) -> dict[str, str]:
    """What a complaint was taught: per field, the latest correction not undone that set it."""
    out: dict[str, str] = {}
    for c in sorted(corrections, key=lambda c: c.seq):
        if c.undone_at is None:
            out.update(c.values())
    return out


def create(conn: Conn, new: NewCorrection, actor: str, door: str) -> Correction:
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM corrections").fetchone()[0]
    cid = f"COR-{seq:04d}"
    conn.execute(
        f"INSERT INTO corrections ({_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
        (
            cid,
            seq,
            new.source,
            new.complaint_id,
            new.text_hash,
            new.values.get("l2"),
            new.values.get("department_id"),
            new.values.get("grade"),
            new.values.get("problem_id"),
            int(new.confirmed),
            json.dumps(new.previous, ensure_ascii=False),
            json.dumps(new.warnings, ensure_ascii=False),
            actor,
            door,
            now_text(),
        ),
    )
    made = get(conn, cid)
    assert made is not None
    return made


def undo(conn: Conn, correction_id: str, actor: str) -> None:
    conn.execute(
        "UPDATE corrections SET undone_at = ?, undone_by = ? WHERE id = ? AND undone_at IS NULL",
        (now_text(), actor, correction_id),
    )


def version(conn: Conn) -> str:
    """Changes whenever a correction is added or undone: a run's batch id includes it."""
    n, top, undone = conn.execute(
        "SELECT COUNT(*), COALESCE(MAX(seq), 0), COUNT(undone_at) FROM corrections"
    ).fetchone()
    return f"{n}.{top}.{undone}"


def counts(conn: Conn) -> dict[str, Any]:
    """Corrections in force and undone, and in force per field."""
    rows = active(conn)
    taught: dict[tuple[str, str], list[Correction]] = {}
    for c in rows:
        taught.setdefault((c.source, c.complaint_id), []).append(c)
    per_field = {f: 0 for f in FIELDS}
    for group in taught.values():
        for f in taught_values(group):
            per_field[f] += 1
    undone = conn.execute("SELECT COUNT(*) FROM corrections WHERE undone_at IS NOT NULL").fetchone()[0]
    return {
        "corrections": len(rows),
        "undone": int(undone),
        "complaints": len(taught),
        "confirmed": sum(1 for c in rows if c.confirmed),
        "with_warnings": sum(1 for c in rows if c.warnings),
        "fields": per_field,
    }


def load_learned(conn: Conn, embedder: str, taxonomy_dimension: dict[str, str]) -> Learned:
    """Every complaint's taught answer with its vector (from the cache), ready for a run."""
    groups: dict[tuple[str, str], list[Correction]] = {}
    for c in active(conn):
        groups.setdefault((c.source, c.complaint_id), []).append(c)
    taught: list[Taught] = []
    read_hashes: list[str | None] = []
    for (source, cid), group in groups.items():
        values = taught_values(group)
        if not values:
            continue
        stored = conn.execute(
            "SELECT text_hash, read_hash, embedder FROM complaints WHERE source = ? AND id = ?", (source, cid)
        ).fetchone()
        latest = group[-1]
        taught.append(
            Taught(
                correction_id=latest.id,
                source=source,
                complaint_id=cid,
                text_hash=stored["text_hash"] if stored else latest.text_hash,
                dimension=taxonomy_dimension.get(values["l2"]) if "l2" in values else None,
                **{f: values.get(f) for f in FIELDS},
            )
        )
        read_hashes.append(stored["read_hash"] if stored and stored["embedder"] == embedder else None)
    vectors = _vectors(conn, embedder, read_hashes)
    return Learned(version=version(conn), taught=taught, vectors=vectors)


def _vectors(conn: Conn, embedder: str, hashes: list[str | None]) -> np.ndarray | None:
    wanted = [h for h in hashes if h]
    if not wanted:
        return None
    found: dict[str, np.ndarray] = {}
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        marks = ",".join("?" * len(part))
        for h, blob in conn.execute(
            f"SELECT text_hash, vector FROM vectors WHERE embedder = ? AND text_hash IN ({marks})",
            [embedder, *part],
        ):
            found[h] = np.frombuffer(blob, dtype=np.float32)
    if not found:
        return None
    dim = len(next(iter(found.values())))
    out = np.zeros((len(hashes), dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        if h and h in found:
            out[i] = found[h]
    return out


def record_run(conn: Conn, batch_id: str, hits: dict[str, int]) -> None:
    """What the last tracked run took from the corrections (voc feedback stats shows it)."""
    doc = json.dumps({"batch_id": batch_id, "at": now_text(), **hits})
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('feedback_last_run', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (doc,),
    )


def last_run(conn: Conn) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'feedback_last_run'").fetchone()
    return json.loads(row[0]) if row else None
