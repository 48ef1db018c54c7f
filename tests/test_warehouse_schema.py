"""The warehouse's schema upgrade when several tasks open an older file at once (as chunk tasks do)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from loop.warehouse import SCHEMA_VERSION, Warehouse


def open_at_once(
    path: Path, tasks: int = 8, while_held: sqlite3.Connection | None = None
) -> list[BaseException]:
    """``tasks`` threads open the warehouse at the same moment; the errors they met. With
    ``while_held``, that connection's write transaction is committed half a second after they start."""
    start = threading.Barrier(tasks + 1)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Warehouse(path)
        except BaseException as exc:  # noqa: BLE001 - collected and reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(tasks)]
    for t in threads:
        t.start()
    start.wait()
    if while_held is not None:
        threading.Event().wait(0.5)
        while_held.execute("COMMIT")
        while_held.close()
    for t in threads:
        t.join()
    return errors


def test_an_older_warehouse_opened_by_many_tasks_at_once_is_upgraded_once(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    Warehouse(path)
    old = sqlite3.connect(path)
    old.execute("ALTER TABLE complaints DROP COLUMN evidence")  # as a file from before schema 5
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    # Another task is writing when they arrive (as the first one to upgrade it would be).
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    errors = open_at_once(path, while_held=writer)
    assert not errors, errors
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "evidence" in {r[1] for r in conn.execute("PRAGMA table_info(complaints)")}
    conn.close()


def test_a_new_warehouse_created_by_many_tasks_at_once(tmp_path: Path) -> None:
    # The first batch after installing: every chunk task finds no file and creates it.
    for attempt in range(5):
        path = tmp_path / f"fresh-{attempt}.db"
        errors = open_at_once(path)
        assert not errors, errors
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
