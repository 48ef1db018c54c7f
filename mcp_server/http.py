"""The MCP server over streamable HTTP: ``voc mcp --transport http`` and the FastAPI app's ``/mcp``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.runtime import PRINCIPAL_KEY, Runtime
from mcp_server.server import build_server
from services.config import ApiSettings, digest, is_loopback
from services.errors import ErrorBody, ErrorDetail, ServiceError
from services.security import Auth

LOOPBACK_ORIGINS = (
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
    "http://127.0.0.1:*",
    "http://localhost:*",
    "http://[::1]:*",
    "https://127.0.0.1:*",
    "https://localhost:*",
    "https://[::1]:*",
)
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")


class McpSettings(BaseSettings):
    """``VOC_MCP_*`` environment variables (keys and limits are the HTTP service's ``VOC_API_*``)."""

    model_config = SettingsConfigDict(env_prefix="VOC_MCP_", env_file=".env", extra="ignore")

    allowed_origins: str = Field(
        "",
        description="Comma-separated browser origins allowed besides this machine's, e.g. "
        "https://copilot.example.com; 'http://host:*' allows any port.",
    )

    def origins(self) -> list[str]:
        extra = [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]
        return [*LOOPBACK_ORIGINS, *extra]


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """An exact match, or ``scheme://host:*`` for any port of that host."""
    for pattern in allowed:
        if origin == pattern:
            return True
        base = pattern[:-1]
        if pattern.endswith(":*") and origin.startswith(base) and origin[len(base) :].isdigit():
            return True
    return False


async def _json_error(
    send: Send, status: int, error: ErrorDetail, headers: dict[str, str] | None = None
) -> None:
    body = ErrorBody(error=error).model_dump_json(exclude_none=True).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Origin and API-key checks in front of the MCP endpoint.

    It refuses a browser ``Origin`` that is not allowed (DNS-rebinding and cross-site requests), checks
    the caller's API key with the HTTP service's own :class:`services.security.Auth` (same
    ``VOC_API_KEYS``; local-only mode without keys), and hands the principal to the tools, which check its
    scope per call. The SDK limits the body.
    """

    def __init__(self, app: ASGIApp, auth: Auth, origins: Sequence[str]) -> None:
        self.app = app
        self.auth = auth
        self.origins = list(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin.rstrip("/"), self.origins):
            message = "this Origin may not call the MCP endpoint; add it to VOC_MCP_ALLOWED_ORIGINS"
            await _json_error(send, 403, ErrorDetail(code="forbidden_origin", message=message))
            return
        presented = headers.get("x-api-key")
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer ":
            presented = bearer[7:].strip()
        client = scope.get("client")
        try:
            who = self.auth.authenticate(client[0] if client else None, presented)
        except ServiceError as exc:
            await _json_error(send, exc.status, exc.detail(), exc.headers)
            return
        scope[PRINCIPAL_KEY] = who
        # The SDK ties a stateful session to the credential that opened it.
        scopes = sorted(who.scopes)
        token = AccessToken(token=digest(presented or who.name), client_id=who.name, scopes=scopes)
        scope["user"] = AuthenticatedUser(token)
        scope["auth"] = AuthCredentials(scopes)
        await self.app(scope, receive, send)


def _sdk_app(server: MCPServer[Runtime], path: str, host: str, max_body_bytes: int) -> Starlette:
    # Behind a loopback address the SDK also checks the Host header (DNS rebinding); elsewhere the
    # host name is the deployment's, and the Guard's Origin check stands on its own.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=is_loopback(host),
        allowed_hosts=list(LOOPBACK_HOSTS),
        allowed_origins=list(LOOPBACK_ORIGINS),
    )
    return server.streamable_http_app(
        streamable_http_path=path,
        max_request_body_size=max_body_bytes,
        transport_security=security,
        host=host,
    )


def http_app(
    server: MCPServer[Runtime],
    auth: Auth,
    *,
    host: str = "127.0.0.1",
    api_settings: ApiSettings | None = None,
    mcp_settings: McpSettings | None = None,
) -> ASGIApp:
    """The standalone ASGI app for ``voc mcp --transport http``: the endpoint is ``/mcp``."""
    api = api_settings or ApiSettings()
    inner = _sdk_app(server, "/mcp", host, api.max_body_bytes)
    return Guard(inner, auth, (mcp_settings or McpSettings()).origins())


class _Current:
    """The SDK app of the current run: a session manager runs once, and an app may start twice."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            message = "the MCP endpoint is starting or stopping"
            await _json_error(send, 503, ErrorDetail(code="not_ready", message=message))
            return
        await self.app(scope, receive, send)


def mount(app: Any, auth: Auth, api_settings: ApiSettings, services: Callable[[], Any]) -> MCPServer[Runtime]:
    """Serve MCP at ``/mcp`` inside the FastAPI app, on that app's services and keys."""
    from starlette.routing import Route

    server = build_server(services=services)
    current = _Current()
    app.router.routes.append(
        Route("/mcp", Guard(current, auth, McpSettings().origins()), include_in_schema=False)
    )
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # FastAPI does not run a routed app's lifespan: start the MCP sessions after the app's
        # own services exist, and stop them first. Host checks stay off: the app is served under
        # whatever name the deployment gives it, and the Guard checks Origin.
        async with outer(a) as state:
            current.app = _sdk_app(server, "/mcp", "0.0.0.0", api_settings.max_body_bytes)
            try:
                async with server.session_manager.run():
                    yield state
            finally:
                current.app = None

    app.router.lifespan_context = lifespan
    return server
