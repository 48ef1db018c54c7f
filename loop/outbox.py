"""The durable outbox: events written in the same transaction as the change that caused them.

A caller that changes the warehouse (a new tracked problem, an alert, an action's status) calls
:func:`emit` with the connection of that very transaction, so the event exists exactly when the
change does. Delivery is somebody else's job (the webhook dispatcher reads this table); nothing
here talks to the network.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tools.sql import Conn

EVENTS: tuple[str, ...] = (
    "problem.new",
    "problem.alert",
    "action.created",
    "action.overdue",
    "action.verified",
    "action.regressed",
    "batch.done",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Event:
    """One queued event, as the dispatcher reads it back."""

    seq: int
    id: str
    event: str
    payload: str  # JSON text, exactly as it will be sent under "data"
    created_at: str


class UnknownEvent(ValueError):
    """An event type outside :data:`EVENTS`."""


def emit(conn: Conn, event: str, data: dict[str, Any], *, key: str | None = None) -> str:
    """Queue ``event`` with ``data`` inside the caller's open transaction; return the event id.

    ``data`` carries ids, figures and masked names only, never complaint text. With ``key`` the id is
    derived from it and a second emit with the same event and key is a no-op, so a step that may
    run twice (a resumed batch) announces its outcome once.
    """
    if event not in EVENTS:
        raise UnknownEvent(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    if key is None:
        event_id = f"msg_{secrets.token_hex(12)}"
    else:
        event_id = "msg_" + hashlib.sha256(f"{event}\0{key}".encode()).hexdigest()[:24]
    conn.execute(
        "INSERT OR IGNORE INTO outbox (id, event, payload, created_at) VALUES (?, ?, ?, ?)",
        (
            event_id,
            event,
            json.dumps(data, ensure_ascii=False, sort_keys=True),
            datetime.now(UTC).isoformat(timespec="microseconds"),
        ),
    )
    return event_id


def last_seq(conn: Conn) -> int:
    """The newest event's sequence number (0 when there is none)."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])


def since(conn: Conn, after: int, limit: int = 500) -> list[Event]:
    """Events queued after sequence number ``after``, oldest first.

    In SQLite one writer commits at a time, so sequence numbers grow in commit order and a reader
    that remembers the last one it saw never skips an event committed later.
    """
    rows = conn.execute(
        "SELECT seq, id, event, payload, created_at FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    return [Event(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
