"""Webhooks for every door: subscriptions (add, list, remove) and the dispatcher that delivers the
outbox's events, signed as the Standard Webhooks specification says.

``voc serve`` runs one dispatcher thread per process (:meth:`Dispatcher.start`); ``voc webhooks
deliver`` runs one pass (:meth:`Dispatcher.drain`) for set-ups that only run the CLI. Several
dispatchers on one ``VOC_HOME`` share the work through claims (see ``loop/webhooks.py``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, Field

from loop.outbox import EVENTS
from loop.webhooks import Claim, DeliveryCounts, Subscription, WebhookStore, new_secret, secret_key, sign
from services.config import package_version
from services.errors import FieldError, NotFound, Unprocessable
from services.jobs import JobStore
from services.runner import runner_gone
from tools.audit import Actor, AuditLog
from tools.schema import BatchResult
from tools.settings import Settings
from tools.sql import database
from tools.webhook_url import AllowList, Resolver, WebhookUrlError, check_url, system_resolver

log = logging.getLogger("voc.webhooks")


class WebhookIn(BaseModel):
    """A new subscription."""

    url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where to POST events: http(s); loopback and private hosts only when listed in "
        "VOC_WEBHOOK_ALLOW_HOSTS.",
    )
    events: list[str] = Field(
        min_length=1, max_length=len(EVENTS), description=f"Events to receive, among: {', '.join(EVENTS)}."
    )
    secret: str | None = Field(
        None,
        max_length=200,
        description="Signing secret, whsec_ + base64 of 16-64 bytes; generated when left out.",
    )


class WebhookOut(BaseModel):
    """A subscription and its deliveries so far (the URL's query string is not shown)."""

    id: str = Field(description="Subscription id, wh_...")
    url: str
    events: list[str]
    created_at: str
    sent: int = Field(description="Events delivered (a 2xx answer).")
    pending: int = Field(description="Events waiting for their next attempt or being sent.")
    dead: int = Field(description="Events given up after VOC_WEBHOOK_MAX_ATTEMPTS attempts.")
    failed_attempts: int = Field(description="Attempts that failed (each retried until the last).")


class WebhookCreated(BaseModel):
    """The new subscription with its signing secret, shown this once."""

    id: str
    url: str
    events: list[str]
    created_at: str
    secret: str = Field(description="Verify each delivery's webhook-signature with it; not shown again.")


class Webhooks(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryReport(BaseModel):
    """What one delivery pass did."""

    sent: int = Field(0, description="Deliveries the receivers took (2xx).")
    retried: int = Field(0, description="Failed attempts scheduled again with backoff.")
    dead_lettered: int = Field(0, description="Deliveries given up after their last attempt.")
    pending: int = Field(0, description="Deliveries still waiting for a later attempt.")


def shown_url(url: str) -> str:
    """A URL as listings show it: without its query string, which may carry a token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "…" if parts.query else "", ""))


def _view(sub: Subscription, c: DeliveryCounts) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=shown_url(sub.url),
        events=sub.events,
        created_at=sub.created_at,
        sent=c.sent,
        pending=c.pending,
        dead=c.dead,
        failed_attempts=c.failed_attempts,
    )


def backoff(settings: Settings, attempt: int, rng: random.Random) -> float:
    """Seconds before the attempt after ``attempt`` failed: doubling from VOC_WEBHOOK_BACKOFF up to
    VOC_WEBHOOK_BACKOFF_MAX, the second half of it jittered so receivers coming back up are not hit
    by every dispatcher at once."""
    full = min(settings.webhook_backoff_max, settings.webhook_backoff * 2 ** max(attempt - 1, 0))
    return full / 2 + rng.uniform(0, full / 2)


@dataclass
class _Tally:
    sent: int = 0
    retried: int = 0
    dead: int = 0


class Dispatcher:
    """Delivers the outbox: fan-out, claim, send, settle; at least once, with retries and dead letters."""

    def __init__(
        self,
        settings: Settings,
        store: WebhookStore,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.resolver = resolver
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.allow = AllowList.parse(settings.webhook_allow_hosts)
        self._rng = random.Random()
        self._client = httpx.Client(
            timeout=settings.webhook_timeout,
            follow_redirects=False,  # a redirect could lead past the host check
            transport=transport,
            headers={"user-agent": f"voc-tracer-webhooks/{package_version()}"},
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lease(self) -> float:
        # Long enough for connect, send and read to each use their timeout, with room to spare.
        return 3 * self.settings.webhook_timeout + 10

    # -- one attempt ---------------------------------------------------------------------------

    def _attempt(self, claim: Claim) -> tuple[bool, int | None, str]:
        try:
            check_url(claim.url, self.allow, self.resolver)
        except WebhookUrlError:
            return False, None, "the host is not allowed (now); see VOC_WEBHOOK_ALLOW_HOSTS"
        timestamp = int(time.time())
        body = claim.body
        headers = {
            "content-type": "application/json",
            "webhook-id": claim.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(claim.secret, claim.event_id, timestamp, body),
        }
        try:
            resp = self._client.post(claim.url, content=body.encode("utf-8"), headers=headers)
        except httpx.TimeoutException:
            return False, None, "timed out"
        except httpx.HTTPError as exc:
            return False, None, f"request failed ({type(exc).__name__})"
        if 200 <= resp.status_code < 300:
            return True, resp.status_code, ""
        return False, resp.status_code, f"HTTP {resp.status_code}"

    def _one(self, tally: _Tally) -> bool:
        """Claim and send one due delivery; False when none is due."""
        claim = self.store.claim(self.claimant, self.lease, self.settings.webhook_max_attempts, runner_gone)
        if claim is None:
            return False
        ok, status, error = self._attempt(claim)
        if ok:
            self.store.sent(claim, status or 200)
            tally.sent += 1
            log.info("webhook %s: %s sent (attempt %d)", claim.subscription_id, claim.event_id, claim.attempt)
            return True
        last = claim.attempt >= self.settings.webhook_max_attempts
        retry_at = None if last else time.time() + backoff(self.settings, claim.attempt, self._rng)
        if self.store.failed(claim, status, error, retry_at):
            if last:
                tally.dead += 1
            else:
                tally.retried += 1
        log.warning(
            "webhook %s: %s attempt %d failed (%s)%s",
            claim.subscription_id,
            claim.event_id,
            claim.attempt,
            error,
            "; dead-lettered" if last else "",
        )
        return True

    # -- a pass, and the background loop -------------------------------------------------------

    def drain(self, wait: float = 0.0) -> DeliveryReport:
        """Fan out new events, then send every delivery that is due. With ``wait`` > 0, keep going
        for up to that many seconds while retries come due (``voc webhooks deliver --wait``)."""
        deadline = time.monotonic() + wait
        tally = _Tally()
        self.store.fan_out()
        while not self._stop.is_set():
            while not self._stop.is_set() and self._one(tally):
                pass
            due, nxt = self.store.has_work()
            if due:
                continue
            if nxt is None:
                break
            pause = max(nxt - time.time(), 0.01)
            if time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
        pending = sum(c.pending for _, c in self.store.subscriptions())
        return DeliveryReport(
            sent=tally.sent, retried=tally.retried, dead_lettered=tally.dead, pending=pending
        )

    def start(self) -> None:
        """Deliver continuously in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="voc-webhooks", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        tally = _Tally()
        while not self._stop.is_set():
            try:
                self.store.fan_out()
                # Claims write; an idle poll only reads.
                while not self._stop.is_set() and self.store.has_work()[0] and self._one(tally):
                    pass
            except Exception:  # a locked or broken database must not end delivery for good
                log.exception("webhook delivery pass failed")
            self._stop.wait(self.settings.webhook_poll)

    def stop(self, grace: float = 5.0) -> None:
        """Stop after the attempt in flight (its claim is taken over later if it outlasts ``grace``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(grace)
        self._client.close()


class WebhookService:
    """Subscriptions for the doors; changes are recorded in the audit trail (``webhook.create``,
    ``webhook.delete``: ids only). Secrets are shown once, when a subscription is created."""

    def __init__(self, settings: Settings, audit: AuditLog, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.audit = audit
        self.resolver = resolver

    @cached_property
    def store(self) -> WebhookStore:
        # Opened on first use: building the services must not create files a door never reads.
        return WebhookStore(database(self.settings, "warehouse"), database(self.settings, "jobs"))

    def dispatcher(self, transport: httpx.BaseTransport | None = None) -> Dispatcher:
        return Dispatcher(self.settings, self.store, resolver=self.resolver, transport=transport)

    def check(self, body: WebhookIn) -> tuple[str, list[str], str]:
        """The URL, events and secret of a new subscription, or 422 naming the field at fault."""
        try:
            url = check_url(body.url, AllowList.parse(self.settings.webhook_allow_hosts), self.resolver)
        except WebhookUrlError as exc:
            raise Unprocessable(str(exc), fields=[FieldError(loc="url", msg=str(exc))]) from None
        events = list(dict.fromkeys(EVENTS if "all" in body.events else body.events))
        bad = [i for i, e in enumerate(events) if e not in EVENTS]
        if bad:
            msg = f"not a known event; known: {', '.join(EVENTS)} (or all)"
            raise Unprocessable(
                f"unknown event(s); known: {', '.join(EVENTS)} (or all)",
                fields=[FieldError(loc=f"events.{i}", msg=msg) for i in bad],
            )
        secret = body.secret or new_secret()
        try:
            secret_key(secret)
        except ValueError as exc:
            raise Unprocessable(str(exc), fields=[FieldError(loc="secret", msg=str(exc))]) from None
        return url, events, secret

    def add(self, via: Actor, body: WebhookIn) -> WebhookCreated:
        url, events, secret = self.check(body)
        sub = self.store.add(url, events, secret)
        self.audit.record_done(via, "webhook.create", sub.id, events=len(events))
        return WebhookCreated(id=sub.id, url=url, events=events, created_at=sub.created_at, secret=secret)

    def list(self) -> Webhooks:
        return Webhooks(webhooks=[_view(s, c) for s, c in self.store.subscriptions()])

    def remove(self, via: Actor, subscription_id: str) -> None:
        if not self.store.remove(subscription_id):
            raise NotFound("no such webhook subscription (ids look like wh_0123456789abcdef)")
        self.audit.record_done(via, "webhook.delete", subscription_id)


def note_cli_batch_done(settings: Settings, result: BatchResult) -> None:
    """Queue ``batch.done`` for a ``voc analyze`` run, which has no job row to mark done: in the job
    store's outbox, once per batch id (a re-run that reuses the result adds nothing)."""
    JobStore(database(settings, "jobs")).emit_done(result, door="cli")
