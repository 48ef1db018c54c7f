"""The dashboard's pages, served by ``voc serve`` at ``/`` beside ``/v1`` and ``/mcp``.

Server-rendered: every figure is computed here from the same services the API uses, charts are
inline SVG, and the one small script (live batch progress) ships in ``web/static``. Nothing is
fetched from another host.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.config import digest
from services.errors import ServiceError
from services.factory import Services
from services.security import actor_of
from tools.settings import Settings
from web import views
from web.access import SignInRequired, Viewer, check_csrf, set_session, viewer_of
from web.session import COOKIE, SessionCodec, load_secret

HERE = Path(__file__).parent
LOGIN_COOKIE = "voc_login"
NAV = (
    ("/", "总览", "Overview"),
    ("/problems", "问题", "Problems"),
    ("/actions", "整改", "Actions"),
    ("/batches", "批次", "Batches"),
)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: f"{v:.1%}" if v is not None else "–"
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else (f"{v:,.2f}" if v is not None else "–")
    env.filters["signed"] = lambda v: f"{v:+,}"
    env.globals["views"] = views
    return env


def mount(app: FastAPI, settings: Settings, services_of: Callable[[], Services]) -> None:
    """Add the dashboard's pages and static assets to ``app``."""
    env = _env()
    codec = SessionCodec(load_secret(settings.home))
    router = APIRouter(include_in_schema=False)

    def render(
        request: Request, viewer: Viewer | None, template: str, status: int = 200, **ctx: Any
    ) -> Response:
        html = env.get_template(template).render(
            nav=NAV, path=request.url.path, viewer=viewer, csrf=viewer.session.csrf if viewer else "", **ctx
        )
        response = HTMLResponse(html, status_code=status, headers=_headers())
        if viewer is not None and viewer.fresh:
            set_session(response, codec, viewer.session, request.url.scheme == "https")
        return response

    def page(request: Request, template: str, build: Callable[[Viewer], dict[str, Any]]) -> Response:
        try:
            viewer = viewer_of(request, services_of(), codec)
        except SignInRequired:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        except ServiceError as exc:
            return render(request, None, "error.html", status=exc.status, error=exc)
        try:
            ctx = build(viewer)
        except ServiceError as exc:
            return render(request, viewer, "error.html", status=exc.status, error=exc)
        return render(request, viewer, template, **ctx)

    @router.get("/", response_class=HTMLResponse)
    def overview_page(request: Request) -> Response:
        return page(request, "overview.html", lambda v: {"o": views.overview(services_of(), v.principal)})

    @router.get("/problems", response_class=HTMLResponse)
    def problems_page(
        request: Request,
        status: Annotated[str | None, Query(max_length=16)] = None,
        department: Annotated[str | None, Query(max_length=100)] = None,
        dimension: Annotated[str | None, Query(max_length=8)] = None,
        priority: Annotated[str | None, Query(max_length=4)] = None,
        period: Annotated[str | None, Query(max_length=16)] = None,
        q: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        filters = views.ProblemFilters(
            status or None, department or None, dimension or None, priority or None, period or None, q or None
        )
        return page(
            request,
            "problems.html",
            lambda v: {
                "lst": views.problem_list(services_of(), v.principal, filters),
                "statuses": views.STATUSES,
                "dimensions": views.DIMENSIONS,
                "priorities": views.PRIORITIES,
            },
        )

    @router.get("/problems/{problem_id}", response_class=HTMLResponse)
    def problem_page(request: Request, problem_id: str) -> Response:
        return page(
            request,
            "problem.html",
            lambda v: {"p": views.problem_page(services_of(), v.principal, problem_id[:32])},
        )

    @router.get("/actions", response_class=HTMLResponse)
    def actions_page(
        request: Request, owner: Annotated[str | None, Query(max_length=100)] = None
    ) -> Response:
        return page(
            request, "actions.html", lambda v: {"b": views.board(services_of(), v.principal, owner or None)}
        )

    @router.get("/actions/{action_id}", response_class=HTMLResponse)
    def action_page(request: Request, action_id: str) -> Response:
        def build(v: Viewer) -> dict[str, Any]:
            return {"a": views.action_page(services_of(), v.principal, action_id[:32])}

        return page(request, "action.html", build)

    @router.post("/actions")
    def open_action(
        request: Request,
        problem_id: Annotated[str, Form(max_length=32)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        owner: Annotated[str, Form(max_length=200)] = "",
        due: Annotated[str, Form(max_length=10)] = "",
        from_proposal: Annotated[str, Form(max_length=8)] = "",
    ) -> Response:
        def act(v: Viewer) -> str:
            created = services_of().actions.open(
                actor_of(v.principal),
                problem_id,
                owner=owner.strip() or None,
                due=due or None,
                from_proposal=bool(from_proposal),
            )
            return f"/actions/{created.id}"

        return change(request, csrf, act)

    @router.post("/actions/{action_id}")
    def update_action(
        request: Request,
        action_id: str,
        status: Annotated[str, Form(max_length=16)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        fixed_on: Annotated[str, Form(max_length=10)] = "",
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        def act(v: Viewer) -> str:
            moved = services_of().actions.update(
                actor_of(v.principal), action_id[:32], status, fixed_on=fixed_on or None, note=note or None
            )
            return f"/actions/{moved.id}"

        return change(request, csrf, act)

    def change(request: Request, csrf: str, act: Callable[[Viewer], str]) -> Response:
        """A change from a form: write scope and the session's CSRF token, then back to a page."""
        try:
            viewer = viewer_of(request, services_of(), codec, scope="write")
            check_csrf(viewer, csrf)
            target = act(viewer)
        except SignInRequired:
            return RedirectResponse("/login", status_code=303)
        except ServiceError as exc:
            return render(request, None, "error.html", status=exc.status, error=exc)
        return RedirectResponse(target, status_code=303)

    @router.get("/batches", response_class=HTMLResponse)
    def batches_page(request: Request) -> Response:
        return page(request, "batches.html", lambda v: {"rows": views.batches(services_of(), v.principal)})

    @router.get("/batches/{batch_id}/progress")
    def batch_progress(request: Request, batch_id: str) -> Response:
        try:
            viewer = viewer_of(request, services_of(), codec)
            return JSONResponse(
                views.progress(services_of(), viewer.principal, batch_id[:64]), headers=_headers()
            )
        except SignInRequired:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        except ServiceError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    @router.get("/batches/{batch_id}/report", response_class=HTMLResponse)
    def batch_report(request: Request, batch_id: str) -> Response:
        try:
            viewer = viewer_of(request, services_of(), codec)
            text, media = services_of().batches.report(batch_id[:64], viewer.principal, "html")
        except SignInRequired:
            return RedirectResponse("/login", status_code=303)
        except ServiceError as exc:
            return render(request, None, "error.html", status=exc.status, error=exc)
        # The report is a standalone page with its own inline styles and no script.
        policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        headers = {**_headers(), "Content-Security-Policy": policy}
        return HTMLResponse(text, media_type=media, headers=headers)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: Annotated[str, Query(max_length=200)] = "/") -> Response:
        if services_of().auth.local_only:
            return RedirectResponse("/", status_code=303)
        token = secrets.token_urlsafe(24)
        html = env.get_template("login.html").render(
            nav=(), path="/login", viewer=None, csrf=token, next=_safe_next(next), failed=False
        )
        response = HTMLResponse(html, headers=_headers())
        response.set_cookie(LOGIN_COOKIE, token, max_age=600, httponly=True, samesite="strict", path="/login")
        return response

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        key: Annotated[str, Form(max_length=512)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=200)] = "/",
    ) -> Response:
        services = services_of()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(csrf, expected):
            return HTMLResponse("the sign-in form expired; reload it", status_code=403, headers=_headers())
        sha = digest(key.strip())
        who = services.auth.keys.get(sha)
        if who is None:
            html = env.get_template("login.html").render(
                nav=(), path="/login", viewer=None, csrf=expected, next=_safe_next(next), failed=True
            )
            return HTMLResponse(html, status_code=401, headers=_headers())
        response = RedirectResponse(_safe_next(next), status_code=303)
        set_session(response, codec, codec.new(sha), request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
        try:
            viewer = viewer_of(request, services_of(), codec)
            check_csrf(viewer, csrf)
        except SignInRequired:
            return RedirectResponse("/login", status_code=303)
        except ServiceError as exc:
            return render(request, None, "error.html", status=exc.status, error=exc)
        response = RedirectResponse("/login" if not services_of().auth.local_only else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")


def _safe_next(target: str) -> str:
    """Only a path on this server (no scheme, no //host) may follow a sign-in."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _headers() -> dict[str, str]:
    # Everything is served from this origin; the policy makes a stray external request fail loudly.
    return {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
