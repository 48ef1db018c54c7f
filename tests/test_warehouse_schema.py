"""The warehouse's schema upgrade when several tasks open an older file at once (as chunk tasks do)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from loop.warehouse import SCHEMA_VERSION, Warehouse


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
    start = threading.Barrier(9)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Warehouse(path)
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    start.wait()
    threading.Event().wait(0.5)
    writer.execute("COMMIT")
    writer.close()
    for t in threads:
        t.join()
    assert not errors, errors
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "evidence" in {r[1] for r in conn.execute("PRAGMA table_info(complaints)")}
    conn.close()


def test_a_new_warehouse_created_by_many_tasks_at_once(tmp_path: Path) -> None:
    # The first batch after installing: every chunk task finds no file and creates it.
    for attempt in range(5):
        path = tmp_path / f"fresh-{attempt}.db"
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def open_it(p: Path = path, b: threading.Barrier = start, errs: list[BaseException] = errors) -> None:
            b.wait()
            try:
                Warehouse(p)
            except BaseException as exc:  # noqa: BLE001 - collected and reported below
                errs.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
