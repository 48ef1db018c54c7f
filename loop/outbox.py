"""The durable outbox: events written in the same transaction as the change that caused them.

A caller that changes the warehouse (a new tracked problem, an alert, an action's status) calls
:func:`emit` with the connection of that very transaction, so the event exists exactly when the
change does. Delivery is somebody else's job (the webhook dispatcher reads this table); nothing
here talks to the network.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime
from typing import Any

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


class UnknownEvent(ValueError):
    """An event type outside :data:`EVENTS`."""


def emit(conn: sqlite3.Connection, event: str, data: dict[str, Any]) -> str:
    """Queue ``event`` with ``data`` inside the caller's open transaction; return the event id.

    ``data`` carries ids, figures and masked names only, never complaint text.
    """
    if event not in EVENTS:
        raise UnknownEvent(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    event_id = f"msg_{secrets.token_hex(12)}"
    conn.execute(
        "INSERT INTO outbox (id, event, payload, created_at) VALUES (?, ?, ?, ?)",
        (
            event_id,
            event,
            json.dumps(data, ensure_ascii=False, sort_keys=True),
            datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    return event_id
