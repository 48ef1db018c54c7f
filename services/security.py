"""Who may call the doors: API keys with scopes, local-only mode, a per-key rate limit, audit names."""

from __future__ import annotations

import math
import threading
import time

from services.config import ApiSettings, Principal, Scope, digest, is_loopback, load_keys
from services.errors import Forbidden, RateLimited, Unauthorized
from tools.audit import Actor, Door

LOCAL = "local"
LOCAL_ONLY_WARNING = (
    "LOCAL-ONLY MODE: no API keys are configured (VOC_API_KEYS / VOC_API_KEYS_FILE), so every "
    "caller has every scope and only requests from this machine are served. Configure keys "
    "before exposing this service."
)
# Starlette's and schemathesis' in-process test clients report this instead of an address.
IN_PROCESS_CLIENT = "testclient"


def actor_of(who: Principal, door: Door = "http") -> Actor:
    """How the audit trail names a caller: ``key:NAME`` for an API key (its name in the keys file,
    else ``key-`` and the start of its SHA-256; never the key), ``local`` in local-only mode."""
    return Actor(who.name if who.name == LOCAL else f"key:{who.name}", door)


class RateLimiter:
    """A token bucket per principal: ``rate_per_minute`` requests, refilled continuously."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, who: Principal) -> None:
        rate = who.rate_per_minute
        if rate <= 0:
            return
        per_second = rate / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who.name, (float(rate), now))
            tokens = min(float(rate), tokens + (now - last) * per_second)
            if tokens < 1.0:
                self._buckets[who.name] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1.0 - tokens) / per_second)))
            self._buckets[who.name] = (tokens - 1.0, now)


class Auth:
    """Who may call: configured keys, or (with none) only this machine, with every scope."""

    def __init__(self, settings: ApiSettings) -> None:
        self.keys = load_keys(settings)
        self.local_only = not self.keys
        self.local = Principal(LOCAL, frozenset({"read", "write", "admin"}), settings.rate_per_minute)
        self.limiter = RateLimiter()

    def authenticate(self, client_host: str | None, presented: str | None) -> Principal:
        if self.local_only:
            if client_host not in (None, IN_PROCESS_CLIENT) and not is_loopback(client_host):
                raise Forbidden(
                    "this service runs in local-only mode (no API keys configured) and accepts "
                    "requests from this machine only; configure VOC_API_KEYS to serve other hosts"
                )
            return self.local
        if not presented:
            raise Unauthorized("an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        who = self.keys.get(digest(presented))
        if who is None:
            raise Unauthorized("the API key is not valid")
        return who

    def authorize(self, who: Principal, scope: Scope) -> Principal:
        self.limiter.hit(who)
        if not who.allows(scope):
            raise Forbidden(f"this key lacks the '{scope}' scope")
        return who
