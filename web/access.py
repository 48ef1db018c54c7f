"""Who is looking at the dashboard: the session cookie, local-only mode, scopes and CSRF."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request, Response

from services.config import Principal, Scope
from services.errors import ServiceError
from services.factory import Services
from web.session import COOKIE, Session, SessionCodec


class SignInRequired(Exception):
    """No valid session while keys are configured: the page sends the browser to /login."""


class CsrfRejected(ServiceError):
    status, code = 403, "csrf_rejected"


@dataclass
class Viewer:
    principal: Principal
    session: Session
    fresh: bool  # a session issued by this request: its cookie must be set on the answer

    @property
    def can_write(self) -> bool:
        return self.principal.allows("write")

    @property
    def is_admin(self) -> bool:
        return self.principal.allows("admin")


def viewer_of(request: Request, services: Services, codec: SessionCodec, scope: Scope = "read") -> Viewer:
    """The caller behind this request, checked for ``scope``.

    Local-only mode (no keys configured): this machine only, every scope; a session without a
    key is issued on the first visit so that forms still carry a CSRF token. With keys: the
    session from ``/login``, whose key must still be configured.
    """
    auth = services.auth
    host = request.client.host if request.client else None
    session = codec.decode(request.cookies.get(COOKIE))
    fresh = False
    if auth.local_only:
        principal = auth.authenticate(host, None)  # Forbidden from another machine
        if session is None or session.key_digest is not None:
            session, fresh = codec.new(None), True
    else:
        if session is None or session.key_digest is None:
            raise SignInRequired()
        found = auth.keys.get(session.key_digest)
        if found is None:  # the key was removed since sign-in
            raise SignInRequired()
        principal = found
    auth.authorize(principal, scope)
    return Viewer(principal, session, fresh)


def check_csrf(viewer: Viewer, presented: str | None) -> None:
    """Every change from a page must echo the session's token (a cross-site form cannot read it)."""
    if not presented or not hmac.compare_digest(presented, viewer.session.csrf):
        raise CsrfRejected(
            "the form's security token is missing or out of date; reload the page and try again"
        )


def set_session(response: Response, codec: SessionCodec, session: Session, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        codec.encode(session),
        max_age=codec.lifetime,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
