"""The storage layer (tools/sql.py) on SQLite and on a real Postgres: the same SQL text, the same rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tools import sql
from tools.settings import Settings

STEPS = [
    sql.Migration(
        1,
        """
        CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, score REAL, blob BLOB);
        CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL);
        """,
    ),
]


def add_note(conn: sql.Conn) -> None:
    if "note" not in conn.columns("items"):
        conn.execute("ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT ''")


def test_same_sql_same_rows_on_both(backend: Settings) -> None:
    db = sql.database(backend, "warehouse")
    assert db.dialect == ("postgres" if backend.database_url else "sqlite")
    assert not db.exists()
    assert db.migrate(STEPS) == 1
    assert db.exists()
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO items (id, n, score, blob) VALUES (?, ?, ?, ?)",
            [("a", 1, 0.5, b"\x00\x01"), ("b", 2**40, None, None)],
        )
        # INSERT OR IGNORE keeps the first row; the upsert replaces by key.
        conn.execute("INSERT OR IGNORE INTO items (id, n) VALUES (?, ?)", ("a", 99))
        conn.execute(sql.upsert("items", ["id", "n", "score"], ["id"]), ("b", 3, 1.5))
        seq = conn.execute("INSERT INTO log (what) VALUES (?) RETURNING seq", ("50% done",)).fetchone()[0]
    assert seq == 1
    with db.connect() as conn:
        rows = conn.execute("SELECT id, n, score, blob FROM items ORDER BY id").fetchall()
        assert [dict(r) for r in rows] == [
            {"id": "a", "n": 1, "score": 0.5, "blob": b"\x00\x01"},
            {"id": "b", "n": 3, "score": 1.5, "blob": None},
        ]
        assert rows[0][1] == rows[0]["n"] == 1
        ids = ["a", "b", "zz"]
        hit = conn.execute(f"SELECT count(*) FROM items WHERE id IN ({sql.placeholders(len(ids))})", ids)
        assert hit.fetchone()[0] == 2
        assert conn.execute("SELECT what FROM log WHERE what LIKE '50%'").fetchone()["what"] == "50% done"
    # A later step adds a column to the existing table; running it again changes nothing.
    assert db.migrate([*STEPS, sql.Migration(2, add_note)]) == 2
    assert db.migrate([*STEPS, sql.Migration(2, add_note)]) == 2
    with db.connect() as conn:
        assert "note" in conn.columns("items")
        assert db.version(conn) == 2


def test_a_failed_transaction_leaves_nothing(backend: Settings) -> None:
    db = sql.database(backend, "jobs")
    db.migrate(STEPS)
    with pytest.raises(RuntimeError), db.transaction() as conn:
        conn.execute("INSERT INTO items (id, n) VALUES (?, ?)", ("x", 1))
        raise RuntimeError("boom")
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_concurrent_upgrades_apply_each_step_once(backend: Settings) -> None:
    db = sql.database(backend, "audit")
    applied: list[int] = []

    def step(conn: sql.Conn) -> None:
        applied.append(1)
        conn.execute("CREATE TABLE counted (x INTEGER)")  # fails if run twice

    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            sql.Database(db.name, path=db.path, url=db.url).migrate([sql.Migration(1, step)])
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert applied == [1]


def test_stores_do_not_share_tables(backend: Settings) -> None:
    """Two stores may both have a table of one name (voc.db and warehouse.db both keep an outbox)."""
    one, two = sql.database(backend, "jobs"), sql.database(backend, "warehouse")
    for db in (one, two):
        db.migrate(STEPS)
    with one.transaction() as conn:
        conn.execute("INSERT INTO items (id, n) VALUES ('only-in-jobs', 1)")
    with two.connect() as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0


FROZEN_WRITER = """
import os, signal, sys
from tools import sql
sql.IDLE_IN_TRANSACTION_MS = 1000  # the real setting is a minute; the mechanism is the same
db = sql.Database("warehouse", url=sys.argv[1])
with db.transaction(serial=False) as conn:
    conn.executemany("INSERT INTO items (id, n) VALUES (?, ?)", [(f"k{i}", i) for i in range(200)])
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
"""


def test_a_frozen_writer_does_not_hold_its_row_locks_for_ever() -> None:
    """A process stopped in the middle of a transaction (SIGSTOP, swapped out, cut off) keeps its
    connection open, so only the server can end it. After a batch insert (sent as a pipeline) the
    server must still end it: another writer of the same keys gets through, the frozen one's rows
    are gone. This hung a worker for ten minutes in CI before the fix."""
    from tests.pg import fresh_database

    with fresh_database() as url:
        db = sql.Database("warehouse", url=url)
        db.migrate(STEPS)
        child = subprocess.Popen(
            [sys.executable, "-c", FROZEN_WRITER, url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "holding"
            with db.transaction(serial=False) as conn:
                conn.execute("SET LOCAL lock_timeout = '20s'")  # without the fix: LockNotAvailable
                conn.execute("INSERT OR IGNORE INTO items (id, n) VALUES (?, ?)", ("k7", -1))
            with db.connect() as conn:
                assert [tuple(r) for r in conn.execute("SELECT id, n FROM items")] == [("k7", -1)]
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            if child.stdout is not None:
                child.stdout.close()


def test_url_passwords_never_show() -> None:
    db = sql.Database("jobs", url="postgresql://voc:s3cret@db.internal:5432/voc")
    assert "s3cret" not in db.where and "db.internal" in db.where
    with pytest.raises(sql.StorageError) as err:
        sql.Database("jobs", url="postgresql://voc:s3cret@127.0.0.1:1/voc").ping()
    assert "s3cret" not in str(err.value)
