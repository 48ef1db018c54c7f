"""Creating and upgrading every store at once (``voc db upgrade``), and saying where each one is."""

from __future__ import annotations

from dataclasses import dataclass

from graph import checkpoints
from loop.warehouse import Warehouse
from services.jobs import JobStore
from tools import audit
from tools.settings import Settings
from tools.sql import Database, database

STORES = ("jobs", "warehouse", "audit", "checkpoints")


@dataclass(frozen=True)
class StoreVersion:
    name: str
    where: str
    dialect: str
    before: int
    after: int


def _version(db: Database) -> int:
    if not db.exists():
        return 0
    if db.name == "checkpoints" and db.dialect == "postgres":
        with db.connect() as conn:
            if "checkpoint_migrations" not in conn.tables():
                return 0
            return int(conn.execute("SELECT coalesce(max(v), 0) FROM checkpoint_migrations").fetchone()[0])
    return db.version()


def upgrade(settings: Settings) -> list[StoreVersion]:
    """Bring every store to this version's schema; idempotent, and safe when several processes run it
    at once (each store upgrades under its own lock, see tools/sql.py)."""
    out = []
    for name in STORES:
        db = database(settings, name)
        before = _version(db)
        if name == "jobs":
            JobStore(db)
        elif name == "warehouse":
            Warehouse(db)
        elif name == "audit":
            db.migrate(audit.MIGRATIONS)
        else:
            checkpoints.upgrade(db)
        out.append(StoreVersion(name, db.where, db.dialect, before, _version(db)))
    return out


def status(settings: Settings) -> list[StoreVersion]:
    """Where each store is and its schema version; creates nothing."""
    out = []
    for name in STORES:
        db = database(settings, name)
        v = _version(db)
        out.append(StoreVersion(name, db.where, db.dialect, v, v))
    return out
