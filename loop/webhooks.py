"""Webhook subscriptions and deliveries in the warehouse, and the Standard Webhooks signature.

Events are queued in two outboxes: the warehouse's (``problem.*``, ``action.*``, written with the
tracker's or an action's own transaction) and the job store's (``batch.done``, written with the
batch's done mark in ``voc.db``). A dispatcher *fans out* each new event of either into one delivery
per matching subscription, remembering in ``meta`` the last sequence number of each outbox it has
read, then *claims* due deliveries one at a time (a lease, so two dispatchers never send the same
attempt at once), sends them and *settles* them: sent, scheduled again with exponential backoff, or
dead-lettered after the last attempt. A dispatcher killed mid-attempt leaves a claim that the next
one takes over once the claimant's process is gone or its lease has run out: nothing is lost, and
a receiver may see an event twice (at-least-once; the ``webhook-id`` header lets it de-duplicate).

A subscription receives the events queued after it was created, never older ones.

Nothing here talks to the network; the dispatcher (``services/webhooks.py``) does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from loop import outbox
from tools.sql import Conn, Database, upsert

if TYPE_CHECKING:
    from loop.warehouse import Warehouse

ORIGINS = ("warehouse", "jobs")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
STOPPED = "the dispatcher stopped during the attempt"


# ── signatures (https://www.standardwebhooks.com) ────────────────────────────────────────────────


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret; ``ValueError`` if it is not one (16 to 64 bytes)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_ followed by base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part of the webhook secret after whsec_ is not valid base64") from None
    if not 16 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 16 to 64 bytes (24 are generated)")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def body_of(event: str, created_at: str, payload: str) -> str:
    """The request body: ``{"type", "timestamp", "data"}`` as the specification suggests, with the
    payload exactly as it was queued."""
    head = json.dumps({"type": event, "timestamp": created_at}, ensure_ascii=False)
    return head[:-1] + ', "data": ' + payload + "}"


# ── the store ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: list[str]
    created_at: str


@dataclass(frozen=True)
class DeliveryCounts:
    """A subscription's deliveries by state, and its failed attempts so far."""

    sent: int = 0
    pending: int = 0
    dead: int = 0
    failed_attempts: int = 0


@dataclass(frozen=True)
class Claim:
    """One attempt a dispatcher holds: what to send where, signed with which secret."""

    event_id: str
    subscription_id: str
    url: str
    secret: str
    event: str
    payload: str
    created_at: str
    attempt: int
    claimed_by: str

    @property
    def body(self) -> str:
        return body_of(self.event, self.created_at, self.payload)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _jobs_events(jobs: Database | None, after: int) -> list[outbox.Event]:
    """New events of the job store's outbox (none when it does not exist yet)."""
    if jobs is None or not jobs.exists():
        return []
    with jobs.connect() as conn:
        if "outbox" not in conn.tables():
            return []  # a voc.db written before the outbox existed
        return outbox.since(conn, after)


def _jobs_last_seq(jobs: Database | None) -> int:
    if jobs is None or not jobs.exists():
        return 0
    with jobs.connect() as conn:
        if "outbox" not in conn.tables():
            return 0
        return outbox.last_seq(conn)


class WebhookStore:
    """Subscriptions, fanned-out events and deliveries; every change in one short warehouse transaction."""

    def __init__(self, warehouse: Database | Path, jobs: Database | Path | None) -> None:
        self.db = warehouse if isinstance(warehouse, Database) else Database("warehouse", path=warehouse)
        self.jobs_db = jobs if not isinstance(jobs, Path) else Database("jobs", path=jobs, durable=True)

    @cached_property
    def warehouse(self) -> Warehouse:
        """The warehouse, its schema brought up to date; opened (and created) on first use."""
        from loop.warehouse import Warehouse  # its schema includes this module's tables

        return Warehouse(self.db)

    def _exists(self) -> bool:
        """Whether there is a warehouse yet (a dispatcher polling an empty home creates nothing)."""
        if not self.db.exists():
            return False
        self.warehouse  # noqa: B018 - bring an older file's schema up to date before reading it
        return True

    # -- subscriptions -------------------------------------------------------------------------

    def add(self, url: str, events: list[str], secret: str) -> Subscription:
        """Store a subscription; it receives the events queued from now on."""
        sub = Subscription(f"wh_{secrets.token_hex(8)}", url, list(events), _now_iso())
        jobs_after = _jobs_last_seq(self.jobs_db)
        with self.warehouse.connect() as conn:
            conn.execute(
                "INSERT INTO webhooks (id, url, events, secret, created_at, after_warehouse, after_jobs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    url,
                    json.dumps(sub.events),
                    secret,
                    sub.created_at,
                    outbox.last_seq(conn),
                    jobs_after,
                ),
            )
        return sub

    def subscriptions(self) -> list[tuple[Subscription, DeliveryCounts]]:
        if not self._exists():
            return []
        with self.warehouse.connect() as conn:
            rows = conn.execute("SELECT id, url, events, created_at FROM webhooks ORDER BY created_at, id")
            subs = [Subscription(r[0], r[1], json.loads(r[2]), r[3]) for r in rows.fetchall()]
            counts: dict[str, dict[str, int]] = {}
            for sid, status, n, attempts in conn.execute(
                "SELECT subscription_id, status, COUNT(*), SUM(attempts) FROM webhook_deliveries "
                "GROUP BY subscription_id, status"
            ):
                c = counts.setdefault(sid, {"sent": 0, "pending": 0, "dead": 0, "attempts": 0})
                c["sent" if status == "sent" else "dead" if status == "dead" else "pending"] += n
                c["attempts"] += attempts or 0
        out = []
        for s in subs:
            c = counts.get(s.id, {"sent": 0, "pending": 0, "dead": 0, "attempts": 0})
            failed = c["attempts"] - c["sent"]
            out.append((s, DeliveryCounts(c["sent"], c["pending"], c["dead"], max(failed, 0))))
        return out

    def remove(self, subscription_id: str) -> bool:
        """Delete a subscription and its deliveries, sent or not; False when there is none."""
        if not self._exists():
            return False
        with self.warehouse.connect() as conn:
            n = conn.execute("DELETE FROM webhooks WHERE id = ?", (subscription_id,)).rowcount
            conn.execute("DELETE FROM webhook_deliveries WHERE subscription_id = ?", (subscription_id,))
        return n > 0

    # -- fan-out -------------------------------------------------------------------------------

    def _cursor(self, conn: Conn, origin: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"webhooks.cursor.{origin}",)).fetchone()
        return int(row[0]) if row else 0

    def fan_out(self) -> int:
        """Turn the events queued since the last call into deliveries; returns the deliveries made.

        Idle calls only read; the write lock is taken when there is something new."""
        if not self._exists():
            return 0
        with self.db.connect() as conn:
            news = {
                "warehouse": outbox.last_seq(conn) > self._cursor(conn, "warehouse"),
                "jobs": _jobs_last_seq(self.jobs_db) > self._cursor(conn, "jobs"),
            }
        made = 0
        for origin in ORIGINS:
            while news[origin]:
                n, more = self._fan_out_some(origin)
                made += n
                news[origin] = more
        return made

    def _fan_out_some(self, origin: str) -> tuple[int, bool]:
        limit = 500
        made = 0
        with self.warehouse.connect() as conn:
            cursor = self._cursor(conn, origin)
            events = outbox.since(conn, cursor, limit) if origin == "warehouse" else []
            if origin == "jobs":
                events = _jobs_events(self.jobs_db, cursor)[:limit]
            if not events:
                return 0, False
            subs = conn.execute(f"SELECT id, events, after_{origin} FROM webhooks").fetchall()
            for ev in events:
                wanted = [s[0] for s in subs if ev.event in json.loads(s[1]) and ev.seq > s[2]]
                if not wanted:
                    continue
                conn.execute(
                    "INSERT OR IGNORE INTO webhook_events (id, origin, seq, event, payload, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (ev.id, origin, ev.seq, ev.event, ev.payload, ev.created_at),
                )
                for sid in wanted:
                    made += conn.execute(
                        "INSERT OR IGNORE INTO webhook_deliveries (event_id, subscription_id, status, "
                        "attempts, next_attempt_at) VALUES (?, ?, 'pending', 0, ?)",
                        (ev.id, sid, time.time()),
                    ).rowcount
            conn.execute(
                upsert("meta", ["key", "value"], ["key"]), (f"webhooks.cursor.{origin}", str(events[-1].seq))
            )
        return made, len(events) == limit

    # -- claims --------------------------------------------------------------------------------

    def has_work(self, now: float | None = None) -> tuple[bool, float | None]:
        """(something is due now, when the next pending attempt is due)."""
        if not self._exists():
            return False, None
        now = time.time() if now is None else now
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE claimed_until END) "
                "FROM webhook_deliveries WHERE status IN ('pending', 'delivering')"
            ).fetchone()
        nxt = row[0]
        return (nxt is not None and nxt <= now), nxt

    def claim(
        self, claimant: str, lease: float, max_attempts: int, is_gone: Callable[[str], bool]
    ) -> Claim | None:
        """Take the next due delivery for ``claimant`` for ``lease`` seconds; None when none is due.

        Attempts held by a claimant that is gone (or past its lease) first go back to pending, or to
        the dead letters if that was their last attempt: that attempt counts, since the receiver may
        have had it."""
        if not self._exists():
            return None
        now = time.time()
        with self.warehouse.connect() as conn:
            for event_id, sid, holder, until, attempts in conn.execute(
                "SELECT event_id, subscription_id, claimed_by, claimed_until, attempts "
                "FROM webhook_deliveries WHERE status = 'delivering'"
            ).fetchall():
                if (until or 0) >= now and not is_gone(holder or ""):
                    continue
                conn.execute(
                    "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, claimed_by = NULL, "
                    "claimed_until = NULL, last_error = ? WHERE event_id = ? AND subscription_id = ?",
                    ("dead" if attempts >= max_attempts else "pending", now, STOPPED, event_id, sid),
                )
            row = conn.execute(
                "SELECT d.event_id, d.subscription_id, d.attempts, w.url, w.secret, e.event, e.payload, "
                "e.created_at FROM webhook_deliveries d JOIN webhooks w ON w.id = d.subscription_id "
                "JOIN webhook_events e ON e.id = d.event_id "
                "WHERE d.status = 'pending' AND d.next_attempt_at <= ? "
                "ORDER BY d.next_attempt_at, e.seq LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'delivering', attempts = attempts + 1, "
                "claimed_by = ?, claimed_until = ? WHERE event_id = ? AND subscription_id = ?",
                (claimant, now + lease, row[0], row[1]),
            )
        return Claim(row[0], row[1], row[3], row[4], row[5], row[6], row[7], row[2] + 1, claimant)

    def sent(self, claim: Claim, status: int) -> None:
        """The receiver took it (2xx). Marked sent even if the lease ran out meanwhile."""
        with self.warehouse.connect() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'sent', last_status = ?, last_error = NULL, "
                "claimed_by = NULL, claimed_until = NULL, delivered_at = ? "
                "WHERE event_id = ? AND subscription_id = ? AND status != 'sent'",
                (status, _now_iso(), claim.event_id, claim.subscription_id),
            )

    def failed(self, claim: Claim, status: int | None, error: str, retry_at: float | None) -> bool:
        """The attempt failed: retried at ``retry_at``, or dead-lettered when that is None.

        False when the claim was no longer this dispatcher's (its lease ran out and another took it)."""
        with self.warehouse.connect() as conn:
            n = conn.execute(
                "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, last_status = ?, "
                "last_error = ?, claimed_by = NULL, claimed_until = NULL "
                "WHERE event_id = ? AND subscription_id = ? AND status = 'delivering' AND claimed_by = ?",
                (
                    "dead" if retry_at is None else "pending",
                    retry_at if retry_at is not None else time.time(),
                    status,
                    error[:200],
                    claim.event_id,
                    claim.subscription_id,
                    claim.claimed_by,
                ),
            ).rowcount
        return n > 0
