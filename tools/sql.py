"""One storage layer for every durable table: a SQLite file under ``VOC_HOME``, or a Postgres schema.

Every store (the job store, the warehouse, the audit trail, the checkpoint ledger) names a
:class:`Database` and talks to it through a :class:`Conn`. The stores write one SQL text, in the
common subset of the two dialects, with ``?`` placeholders; this module is the only place that
knows the differences:

- placeholders: ``?`` becomes ``%s`` on Postgres (and a literal ``%`` becomes ``%%``);
- ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING`` on Postgres; replacing
  upserts are written once with :func:`upsert` (``ON CONFLICT (key) DO UPDATE``, which both speak);
- DDL types: ``INTEGER`` is 64-bit on Postgres (``BIGINT``), ``REAL`` is ``DOUBLE PRECISION``,
  ``BLOB`` is ``BYTEA``, and ``INTEGER PRIMARY KEY AUTOINCREMENT`` is an identity column;
- rows: both return rows readable by position and by column name (``row[0]``, ``row["id"]``);
- transactions: :meth:`Database.transaction` is ``BEGIN IMMEDIATE`` on SQLite, and on Postgres a
  transaction holding the store's advisory lock, so writers are serialised the same way on both
  (the stores were written for SQLite's one writer at a time; work that must scale past it, such
  as claiming jobs, asks for ``transaction(serial=False)`` and uses row locks instead);
- schema versions: ``PRAGMA user_version`` on SQLite, a ``voc_schema`` table on Postgres, with
  :meth:`Database.migrate` applying numbered :class:`Migration` steps under the write lock, so
  several processes starting at once upgrade a store once.

With ``VOC_DATABASE_URL`` unset every store is a file under ``VOC_HOME`` as before; with it set,
every store is a schema (``voc_jobs``, ``voc_warehouse``, ...) in that one Postgres database, each
with its own small connection pool (psycopg 3, health-checked on checkout).
"""

from __future__ import annotations

import atexit
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from tools.settings import Settings

Dialect = Literal["sqlite", "postgres"]

# A session left idle inside a transaction this long is ended by the server. Our transactions
# never wait on anything but themselves; one idle that long belongs to a process that is frozen
# (stopped, swapped out, cut off) and would otherwise hold its row locks for as long as it stays
# so: the worker that took its batch over would wait on them, and the lease would not help.
IDLE_IN_TRANSACTION_MS = 60_000

# The stores and their files under VOC_HOME (the Postgres schema is ``voc_<name>``).
FILES = {
    "jobs": "voc.db",
    "warehouse": "warehouse.db",
    "audit": "audit.db",
}


try:
    import psycopg as _psycopg

    INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, _psycopg.IntegrityError)
    # What a statement raises after waiting longer than Conn.limit_lock_wait allows (Postgres).
    LOCK_WAIT_ERRORS: tuple[type[Exception], ...] = (_psycopg.errors.LockNotAvailable,)
    _DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, _psycopg.Error)
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only without it
    INTEGRITY_ERRORS = (sqlite3.IntegrityError,)
    LOCK_WAIT_ERRORS = ()
    _DRIVER_ERRORS = (sqlite3.Error,)


_PROCESS: tuple[int, str] | None = None


def new_runner_id() -> str:
    """A new id of something that runs work: ``host:pid:random`` (``services.runner.runner_gone``
    reads the host and pid back)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_id() -> str:
    """This process's id on every machine: ``host:pid:random`` (a new one after a fork). Its
    Postgres sessions carry it as their application name (:func:`session_name`), so another
    process can end them once this one is presumed dead (``JobStore.end_silent_workers_sessions``)."""
    global _PROCESS
    if _PROCESS is None or _PROCESS[0] != os.getpid():
        _PROCESS = (os.getpid(), new_runner_id())
    return _PROCESS[1]


def session_name(process: str) -> str:
    """The Postgres ``application_name`` of a process's sessions (at most 63 characters)."""
    return f"voc {process}"[:63]


class StorageError(RuntimeError):
    """A database could not be reached or refused an operation; the message names which one."""


# Whatever either driver (or this layer) raises when a database fails.
DB_ERRORS: tuple[type[Exception], ...] = (*_DRIVER_ERRORS, StorageError)


class Row(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...
    def keys(self) -> Sequence[str]: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class Migration:
    """One numbered schema step. ``apply`` is a DDL script or a function of the connection; it runs
    inside the store's write transaction, once, when the store's version is below ``version``."""

    version: int
    apply: str | Callable[[Conn], None]


# ── SQL translation ─────────────────────────────────────────────────────────────────────────────


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """The Postgres text of one statement written for SQLite (placeholders, ``INSERT OR IGNORE``)."""
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "?" and not quoted:
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    text = "".join(out)
    head = re.match(r"\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\b", text, re.IGNORECASE)
    if head:
        if head.group(1).upper() == "REPLACE":
            raise StorageError("INSERT OR REPLACE is SQLite only: write it with tools.sql.upsert")
        text = "INSERT INTO" + text[head.end() :]
        text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return text


_DDL_TYPES = (
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


def ddl_for(dialect: Dialect, script: str) -> list[str]:
    """The statements of a schema script, in the dialect's types."""
    statements = [s.strip() for s in script.split(";") if s.strip()]
    if dialect == "sqlite":
        return statements
    for pattern, repl in _DDL_TYPES:
        statements = [pattern.sub(repl, s) for s in statements]
    return statements


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` setting every other column: SQLite's
    ``INSERT OR REPLACE`` for a row identified by its key, in SQL both dialects speak."""
    cols = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    rest = [c for c in columns if c not in key]
    action = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in rest) if rest else "DO NOTHING"
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {action}"


def placeholders(n: int) -> str:
    """``?, ?, ...`` for an ``IN (...)`` list of ``n`` values."""
    return ", ".join(["?"] * n) if n else "NULL"


def chunked(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Values in slices small enough for one ``IN (...)`` list on either dialect."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


# ── connections ─────────────────────────────────────────────────────────────────────────────────


class _PgRow(tuple[Any, ...]):
    """A Postgres row readable like ``sqlite3.Row``: by position, by column name, and as ``dict(row)``."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> _PgRow:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _configure(raw: Any) -> None:
    """Per new Postgres connection: numbers come back as SQLite gives them (SUM of integers is an
    int, AVG a float), never as ``Decimal``."""
    from psycopg.adapt import Loader

    class Number(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    raw.adapters.register_loader("numeric", Number)


def _pg_rows(cursor: Any) -> Callable[[Sequence[Any]], _PgRow]:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: _PgRow(values, index)


def rearm_idle_timer(raw: Any) -> None:
    """Call after a psycopg ``executemany`` inside a transaction (psycopg sends the rows as a
    pipeline). The message ending the pipeline leaves the server "idle in transaction" with its
    idle timer disarmed, so a process frozen right after would hold its locks for ever (the
    server's ``idle_in_transaction_session_timeout`` never fires). One plain statement re-arms it."""
    if raw.info.transaction_status != raw.info.transaction_status.IDLE:
        raw.execute("SELECT 1")


class Conn:
    """One connection of either dialect, speaking the SQLite text the stores are written in."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect: Dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        if self.dialect == "sqlite":
            return self.raw.execute(sql, params)
        return self.raw.execute(to_postgres(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        if self.dialect == "sqlite":
            return self.raw.executemany(sql, rows)
        cur = self.raw.cursor()
        cur.executemany(to_postgres(sql), list(rows))
        rearm_idle_timer(self.raw)
        return cur

    def limit_lock_wait(self, seconds: float) -> None:
        """In this transaction, fail with one of ``LOCK_WAIT_ERRORS`` rather than wait longer than
        ``seconds`` for another transaction's row locks (Postgres; on SQLite the connection's busy
        timeout already bounds every wait). For best-effort writes such as a cache."""
        if self.dialect == "postgres":
            self.raw.execute(f"SET LOCAL lock_timeout = {int(seconds * 1000)}")

    def script(self, ddl: str) -> None:
        """Run a schema script (``;``-separated statements) in this dialect's types."""
        for statement in ddl_for(self.dialect, ddl):
            self.raw.execute(statement)

    def columns(self, table: str) -> set[str]:
        """The column names a table has now (for steps that add columns to older stores)."""
        if self.dialect == "sqlite":
            return {r[1] for r in self.raw.execute(f"PRAGMA table_info({table})")}
        rows = self.raw.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {r[0] for r in rows}

    def tables(self) -> set[str]:
        if self.dialect == "sqlite":
            return {r[0] for r in self.raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = self.raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r[0] for r in rows}


_POOLS: dict[tuple[str, str], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()


def close_pools(url: str | None = None) -> None:
    """Close the pools of one database URL (all when ``None``), e.g. before dropping it."""
    with _POOLS_LOCK:
        for key in [k for k in _POOLS if url is None or k[0] == url]:
            _POOLS.pop(key).close()


atexit.register(close_pools)


def redact_url(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Database:
    """One store: a SQLite file (``path``) or a schema in a Postgres database (``url``)."""

    def __init__(
        self, name: str, *, path: Path | None = None, url: str | None = None, durable: bool = False
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("a Database is a SQLite path or a Postgres URL, not both or neither")
        self.name = name
        self.path = path
        self.url = url
        self.schema = f"voc_{name}"
        # durable: fsync every commit (SQLite synchronous=FULL); Postgres commits durably anyway.
        self.durable = durable
        self.dialect: Dialect = "sqlite" if path is not None else "postgres"
        self.lock_key = zlib.crc32(f"voc:{self.schema}".encode())

    def __repr__(self) -> str:
        return f"Database({self.name!r}, {self.where})"

    @property
    def where(self) -> str:
        """Where this store lives, for messages: a file path, or the URL without password + schema."""
        if self.path is not None:
            return str(self.path)
        return f"{redact_url(self.url or '')} (schema {self.schema})"

    def exists(self) -> bool:
        """Whether anything was ever written here (a file, or a schema with tables)."""
        if self.path is not None:
            return self.path.exists()
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ?", (self.schema,)
            ).fetchone()
        return bool(row[0])

    # -- connections ---------------------------------------------------------------------------

    def _pool(self) -> ConnectionPool:
        key = (self.url or "", self.schema)
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                import psycopg
                from psycopg_pool import ConnectionPool

                # One direct attempt first: an unreachable server fails now, with its reason,
                # instead of after the pool's retries.
                try:
                    psycopg.connect(self.url or "", connect_timeout=10).close()
                except psycopg.Error as exc:
                    raise StorageError(
                        f"cannot reach the database at {redact_url(self.url or '')}: "
                        f"{type(exc).__name__}: {redact_url(str(exc).strip().splitlines()[0])}"
                    ) from exc

                pool = ConnectionPool(
                    self.url or "",
                    min_size=1,
                    max_size=6,
                    kwargs={
                        "autocommit": True,
                        "application_name": session_name(process_id()),
                        "options": f"-c search_path={self.schema} "
                        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
                    },
                    check=ConnectionPool.check_connection,
                    configure=_configure,
                    name=self.schema,
                    open=False,
                )
                try:
                    pool.open(wait=True, timeout=15)
                except Exception as exc:
                    pool.close()
                    raise StorageError(
                        f"cannot reach the database at {redact_url(self.url or '')}: {type(exc).__name__}"
                    ) from exc
                _POOLS[key] = pool
        return pool

    @contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        raw.row_factory = sqlite3.Row
        try:
            raw.execute("PRAGMA synchronous=FULL" if self.durable else "PRAGMA synchronous=NORMAL")
            yield raw
        finally:
            raw.close()

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        """A connection in autocommit mode: each statement is its own transaction (reads, one-offs)."""
        if self.path is not None:
            with self._sqlite() as raw:
                yield Conn(raw, "sqlite")
            return
        with self._pool().connection() as raw:
            raw.row_factory = _pg_rows
            yield Conn(raw, "postgres")

    @contextmanager
    def transaction(self, serial: bool = True) -> Iterator[Conn]:
        """A connection inside one write transaction: committed on success, rolled back on error.

        ``serial`` (the default) serialises it against every other writer of this store, as SQLite
        always does; Postgres callers that lock their own rows pass ``serial=False``.
        """
        if self.path is not None:
            with self._sqlite() as raw:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    yield Conn(raw, "sqlite")
                except BaseException:
                    raw.execute("ROLLBACK")
                    raise
                raw.execute("COMMIT")
            return
        with self._pool().connection() as raw:
            raw.row_factory = _pg_rows
            with raw.transaction():
                if serial:
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
                yield Conn(raw, "postgres")

    # -- schema versions -----------------------------------------------------------------------

    def version(self, conn: Conn | None = None) -> int:
        if conn is None:
            with self.connect() as c:
                return self.version(c)
        if conn.dialect == "sqlite":
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = 'voc_schema'",
            (self.schema,),
        ).fetchone()
        if not row[0]:
            return 0
        found = conn.execute("SELECT max(version) FROM voc_schema").fetchone()
        return int(found[0] or 0)

    def migrate(self, migrations: Sequence[Migration]) -> int:
        """Bring this store to the newest version; safe when several processes start at once.

        A store already at the newest version costs one read. Otherwise the steps run inside one
        write transaction holding the store's lock, after reading the version again (another
        process may have upgraded it while this one waited). Returns the version.
        """
        latest = max((m.version for m in migrations), default=0)
        try:
            if self.path is not None:
                return self._migrate_sqlite(migrations, latest)
            return self._migrate_postgres(migrations, latest)
        except StorageError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot upgrade the {self.name} store at {self.where}: {exc}") from exc

    def _apply(self, conn: Conn, migrations: Sequence[Migration], current: int) -> None:
        for step in sorted(migrations, key=lambda m: m.version):
            if step.version > current:
                if isinstance(step.apply, str):
                    conn.script(step.apply)
                else:
                    step.apply(conn)

    def _migrate_sqlite(self, migrations: Sequence[Migration], latest: int) -> int:
        assert self.path is not None
        with self._sqlite() as raw:
            conn = Conn(raw, "sqlite")
            if self.version(conn) >= latest:
                return self.version(conn)
            _use_wal(raw)
            raw.execute("BEGIN IMMEDIATE")
            try:
                current = self.version(conn)
                if current < latest:
                    self._apply(conn, migrations, current)
                    raw.execute(f"PRAGMA user_version = {int(latest)}")
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
        return max(latest, current)

    def _migrate_postgres(self, migrations: Sequence[Migration], latest: int) -> int:
        with self.connect() as conn:
            current = self.version(conn)
            if current >= latest:
                return current
        with self._pool().connection() as raw:
            raw.row_factory = _pg_rows
            with raw.transaction():
                # The lock comes before the schema exists, so take it by key on the database.
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
                raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                raw.execute(
                    "CREATE TABLE IF NOT EXISTS voc_schema "
                    "(version BIGINT NOT NULL, applied_at TEXT NOT NULL)"
                )
                conn = Conn(raw, "postgres")
                current = self.version(conn)
                if current < latest:
                    self._apply(conn, migrations, current)
                    conn.execute(
                        "INSERT INTO voc_schema (version, applied_at) VALUES (?, now()::text)", (latest,)
                    )
        return max(latest, current)

    def ping(self) -> None:
        """Raise :class:`StorageError` unless the store answers a query now."""
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1").fetchone()
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"the {self.name} store at {self.where} does not answer: {type(exc).__name__}"
            ) from exc


def _use_wal(raw: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch a new file to WAL. The switch needs the file to itself and does not wait for a busy
    one, so several processes opening it at once retry until one has done it (later opens skip it)."""
    deadline = time.monotonic() + wait
    while raw.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            raw.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def database(settings: Settings, name: str) -> Database:
    """The named store for these settings: a schema in ``VOC_DATABASE_URL``, else a file in ``VOC_HOME``."""
    durable = name in ("jobs", "audit")
    if settings.database_url:
        return Database(name, url=settings.database_url, durable=durable)
    path = settings.checkpoint_db if name == "checkpoints" else settings.home / FILES[name]
    return Database(name, path=path, durable=durable)
