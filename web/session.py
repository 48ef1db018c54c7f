"""The dashboard's session cookie: signed, HttpOnly, SameSite=Strict, with a CSRF token inside.

The cookie holds the SHA-256 of the API key the user signed in with (never the key), a random
CSRF token and an expiry, signed with HMAC-SHA256 under a secret kept in ``VOC_HOME``. In
local-only mode (no keys configured) a session without a key is issued on the first visit, so
changes from the page still carry a CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

COOKIE = "voc_session"
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    key_digest: str | None  # None: local-only mode, no key behind this session
    csrf: str
    expires: int


def load_secret(home: Path) -> bytes:
    """The signing secret, created once per ``VOC_HOME`` (mode 0600) so sessions survive restarts."""
    path = home / "dashboard.key"
    if path.is_file():
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    home.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


class SessionCodec:
    def __init__(self, secret: bytes, lifetime: int = LIFETIME_SECONDS) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def new(self, key_digest: str | None) -> Session:
        return Session(key_digest, secrets.token_urlsafe(24), int(time.time()) + self.lifetime)

    def encode(self, session: Session) -> str:
        body = json.dumps({"d": session.key_digest, "c": session.csrf, "e": session.expires}).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def decode(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``, or None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        payload, sig = cookie.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(raw["d"], str(raw["c"]), int(raw["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time():
            return None
        return session

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
