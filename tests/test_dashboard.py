"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real ``voc serve``.

A history of five generated months is analysed and tracked into a VOC_HOME first; every page is then
loaded and its numbers checked against the API, with no console error, no failed request and no
request to any host but the server. Screenshots of each page at desktop and laptop widths are written
to ``VOC_TEST_ARTEFACTS`` (default ``build/screenshots``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from evals.history import generate
from graph.run import run_batch
from tests.api_helpers import ADMIN_KEY, READ_KEY, RW_KEY, auth, home_like, wait_done
from tests.test_api_server import Server
from tools.deps import Deps
from tools.ingest import rows_from_records

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
ARTEFACTS = Path(os.environ.get("VOC_TEST_ARTEFACTS", REPO / "build" / "screenshots"))
CHROMIUM = os.environ.get("VOC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SIZES = {"desktop": (1440, 1000), "laptop": (1280, 800)}


@pytest.fixture(scope="module")
def history(deps: Deps, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five months of generated complaints, each month analysed and tracked as it came."""
    home = home_like(deps, tmp_path_factory.mktemp("dashboard") / "home")
    d = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"home": home}))
    months = generate(months=5, per_month=30, seed=3)
    for rows in months.by_month():
        run_batch(rows_from_records(rows), d, source="history", track=True)
    return home


@pytest.fixture(scope="module")
def local_server(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No API keys: local-only mode, the page open to this machine."""
    srv = Server(history, tmp_path_factory.mktemp("local") / "server.log", env={"VOC_API_KEYS": ""})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Watched:
    """A page whose console errors, failed requests and off-server requests are collected."""

    def __init__(self, page: Page, server: str) -> None:
        self.page = page
        self.errors: list[str] = []
        host = urlsplit(server).netloc
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        page.on(
            "request",
            lambda r: (
                self.errors.append(f"off-server request: {r.url}")
                if urlsplit(r.url).netloc not in (host, "") and not r.url.startswith("data:")
                else None
            ),
        )

    def clean(self) -> None:
        assert not self.errors, "\n".join(self.errors)


def shoot(browser: Browser, url: str, name: str, cookies: list[Any] | None = None) -> None:
    """Screenshots of one page at desktop and laptop widths, full length."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for size, (w, h) in SIZES.items():
        ctx = browser.new_context(viewport={"width": w, "height": h}, locale="zh-CN")
        if cookies:
            ctx.add_cookies(cookies)
        page = ctx.new_page()
        page.goto(url)
        page.screenshot(path=str(ARTEFACTS / f"{name}-{size}.png"), full_page=True)
        ctx.close()


def number(text: str) -> float:
    return float(re.sub(r"[^\d.\-]", "", text))


def test_every_page_shows_the_api_s_numbers_without_errors(local_server: Server, browser: Browser) -> None:
    with httpx.Client(base_url=local_server.url, timeout=30) as api:
        periods = api.get("/v1/periods").json()["periods"]
        problems = api.get("/v1/problems").json()["problems"]
        latest = periods[-1]
        alerts = api.get("/v1/alerts", params={"period": latest["period"]}).json()["alerts"]
        detail = api.get(f"/v1/problems/{problems[0]['id']}").json()
    assert len(periods) == 5 and problems

    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    w = Watched(page, local_server.url)

    page.goto(f"{local_server.url}/")
    assert number(page.locator('[data-kpi="volume"]').inner_text()) == latest["complaints"]
    assert number(page.locator('[data-kpi="alerts"]').inner_text()) == len(alerts)
    assert page.locator("svg.chart").count() == 3
    top = page.locator("#top tbody tr a").all_inner_texts()
    now = [p for p in problems if p["series"] and p["series"][-1]["period"] == latest["period"]]
    assert top[0] == now[0]["id"]

    page.goto(f"{local_server.url}/problems")
    rows = page.locator("#problems tbody tr[data-id]")
    assert rows.count() == len(problems)
    for p in problems[:5]:
        row = page.locator(f'#problems tr[data-id="{p["id"]}"]')
        last = next((s["complaints"] for s in p["series"] if s["period"] == latest["period"]), 0)
        assert number(row.locator('[data-col="last"]').inner_text()) == last
        assert p["name"] in row.inner_text()

    department = problems[0]["department"]
    page.select_option('select[name="department"]', department)
    page.click("text=筛选 Filter")
    page.wait_for_url(re.compile(r"department="))
    shown = page.locator("#problems tbody tr[data-id]")
    expected = [p["id"] for p in problems if p["department"] == department]
    assert sorted(shown.evaluate_all("rs => rs.map(r => r.dataset.id)")) == sorted(expected)

    pid = problems[0]["id"]
    page.goto(f"{local_server.url}/problems/{pid}")
    assert page.title() == f"{pid} · VOC Tracer 客户声音溯源"
    assert page.locator("#proposal").count() == 1 and page.locator("#actions").count() == 1
    assert number(page.locator('[data-kpi="complaints"]').inner_text()) == detail["complaints"]
    assert page.locator("ul.quotes blockquote").count() == len(detail["examples"])
    shown_evidence = page.locator("ul.quotes .evidence mark").all_inner_texts()
    assert shown_evidence == [w for e in detail["examples"] for w in e["evidence"]]
    assert shown_evidence, "the root cause's evidence words are shown beside the complaints"
    assert page.locator("svg.chart circle").count() >= len(detail["series"])

    page.goto(f"{local_server.url}/batches")
    assert page.locator("#batches").is_visible()
    w.clean()
    ctx.close()

    for path, name in (
        ("/", "overview"),
        ("/problems", "problems"),
        (f"/problems/{pid}", "problem"),
        ("/batches", "batches"),
    ):
        shoot(browser, local_server.url + path, name)
    assert (ARTEFACTS / "overview-desktop.png").stat().st_size > 20_000


def test_a_running_batch_s_progress_updates_on_the_page(
    local_server: Server, browser: Browser, sample_records: list[dict]
) -> None:
    rows = [{**r, "id": f"LIVE-{i}"} for i, r in enumerate(sample_records[:60])]
    ctx = browser.new_context()
    page = ctx.new_page()
    w = Watched(page, local_server.url)
    with httpx.Client(base_url=local_server.url, timeout=60) as api:
        accepted = api.post("/v1/batches", json={"complaints": rows}).json()
        batch_id = accepted["batch_id"]
        page.goto(f"{local_server.url}/batches")
        row = page.locator(f'tr[data-batch="{batch_id}"]')
        assert row.get_attribute("data-live") == "1", "a fresh batch is followed live"
        # The page is never reloaded: the script alone must bring the status to done.
        page.wait_for_selector(f'tr[data-batch="{batch_id}"] [data-field="report"] a', timeout=240_000)
        assert row.locator('[data-field="status"]').inner_text() == "done"
        assert (
            row.locator('[data-field="done"]').inner_text()
            == row.locator('[data-field="total"]').inner_text()
        )
        status = wait_done(api.get, batch_id)
    assert status["status"] == "done"
    page.click(f'tr[data-batch="{batch_id}"] [data-field="report"] a')
    page.wait_for_load_state()
    assert batch_id in page.content() or "VOC" in page.title()
    w.clean()
    ctx.close()
    shoot(browser, f"{local_server.url}/batches", "batches")


@pytest.fixture(scope="module")
def keyed_server(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """API keys configured: the page needs a sign-in."""
    srv = Server(history, tmp_path_factory.mktemp("keyed") / "server.log")
    srv.start()
    yield srv
    srv.stop()


def sign_in(browser: Browser, server: Server, key: str) -> tuple[Any, Page]:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{server.url}/problems")
    assert urlsplit(page.url).path == "/login", "without a session the page asks for a key"
    page.fill('input[name="key"]', key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/problems")
    return ctx, page


def test_signing_in_with_a_key_and_what_each_key_may_see(keyed_server: Server, browser: Browser) -> None:
    url = keyed_server.url
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as anon:
        first = anon.get("/")
        assert first.status_code == 303 and first.headers["location"].startswith("/login")
        assert anon.get("/batches/x/progress").status_code == 401
        # A wrong key: refused, and no session is set.
        form = anon.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        wrong = anon.post("/login", data={"key": "not-a-key-0123456789", "csrf": token.group(1)})
        assert wrong.status_code == 401 and "voc_session" not in wrong.cookies
        assert "密钥无效" in wrong.text
        # A sign-in form posted without its token (e.g. from another site) is refused.
        forged = httpx.post(f"{url}/login", data={"key": READ_KEY, "csrf": token.group(1)})
        assert forged.status_code == 403
        batch = anon.post(
            "/v1/batches",
            json={"complaints": [{"id": "OWN-1", "text": "信用卡被盗刷了三千元"}]},
            headers=auth(RW_KEY),
        ).json()["batch_id"]

    ctx, page = sign_in(browser, keyed_server, READ_KEY)
    w = Watched(page, url)
    assert "只读 read-only" in page.locator(".who").inner_text()
    cookie = next(c for c in ctx.cookies() if c["name"] == "voc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.goto(f"{url}/batches")
    assert page.locator(f'tr[data-batch="{batch}"]').count() == 0, "another key's batch is not shown"
    # Signing out without the form's token is refused and the session still works.
    with httpx.Client(base_url=url, follow_redirects=False) as c:
        c.cookies.set("voc_session", cookie["value"])
        assert c.post("/logout", data={}).status_code == 403
        assert c.get("/problems").status_code == 200
    w.clean()
    ctx.close()

    ctx, page = sign_in(browser, keyed_server, ADMIN_KEY)
    page.goto(f"{url}/batches")
    assert page.locator(f'tr[data-batch="{batch}"]').count() == 1, "admin sees every batch"
    # Changing an action: a read-only key is refused, a missing or wrong CSRF token too; nothing changes.
    with httpx.Client(base_url=url, timeout=30) as api:
        problem = api.get("/v1/problems", headers=auth(READ_KEY)).json()["problems"][0]["id"]
        made = api.post("/v1/actions", json={"problem_id": problem}, headers=auth(RW_KEY)).json()["id"]
    writer = next(c for c in ctx.cookies() if c["name"] == "voc_session")
    page.goto(f"{url}/actions/{made}")
    token = page.locator('#update-action input[name="csrf"]').get_attribute("value")
    move = {"status": "in_progress", "csrf": token or ""}

    def client(session: dict[str, Any] | None = None) -> httpx.Client:
        jar = {"voc_session": session["value"]} if session else None
        return httpx.Client(base_url=url, timeout=30, follow_redirects=False, cookies=jar)

    def status_of(action: str) -> str:
        with client() as api:
            return str(api.get(f"/v1/actions/{action}", headers=auth(READ_KEY)).json()["status"])

    with client(cookie) as as_reader:
        refused = as_reader.post(f"/actions/{made}", data=move)
        assert refused.status_code == 403 and "write" in refused.text
    with client(writer) as as_admin:
        assert as_admin.post(f"/actions/{made}", data={"status": "in_progress"}).status_code == 403
        assert as_admin.post(f"/actions/{made}", data={**move, "csrf": "x" * 20}).status_code == 403
    with client() as nobody:
        no_cookie = nobody.post(f"/actions/{made}", data=move)
        assert no_cookie.status_code == 303 and no_cookie.headers["location"] == "/login"
    assert status_of(made) == "open", "nothing changed"
    with client(writer) as as_admin:
        assert as_admin.post(f"/actions/{made}", data=move).status_code == 303
    assert status_of(made) == "in_progress"
    page.click("text=退出 Sign out")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(f"{url}/")
    assert urlsplit(page.url).path == "/login", "signed out means signed out"
    ctx.close()
    shoot(browser, f"{url}/login", "login")


def test_an_action_is_opened_and_closed_from_the_pages(local_server: Server, browser: Browser) -> None:
    url = local_server.url
    with httpx.Client(base_url=url, timeout=30) as api:
        problems = api.get("/v1/problems").json()["problems"]
    pid = problems[0]["id"]
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    w = Watched(page, url)
    page.goto(f"{url}/problems/{pid}")
    page.click("text=为此问题新建整改行动 Open an action")
    page.wait_for_url(re.compile(r"/actions/ACT-\d+$"))
    action_id = page.url.rsplit("/", 1)[1]
    with httpx.Client(base_url=url, timeout=30) as api:
        opened = api.get(f"/v1/actions/{action_id}").json()
        assert opened["problem_id"] == pid and opened["status"] == "open"
        assert page.locator('[data-kpi="status"]').inner_text().endswith("open")

        # Done without the root-cause note is refused with the reason, and nothing changes.
        page.select_option('#update-action select[name="status"]', "done")
        page.fill('#update-action input[name="fixed_on"]', "2026-05-31")
        with page.expect_response(lambda r: r.request.method == "POST") as refused:
            page.click("#update-action button[type=submit]")
        assert refused.value.status == 409
        assert "note" in page.locator(".error").inner_text()
        assert api.get(f"/v1/actions/{action_id}").json()["status"] == "open"
        w.errors.clear()  # the 409 above was the point

        page.goto(f"{url}/actions/{action_id}")
        page.select_option('#update-action select[name="status"]', "done")
        page.fill('#update-action input[name="fixed_on"]', "2026-05-31")
        page.fill('#update-action input[name="note"]', "追款流程由人工改为自动，时限缩短")
        page.click("#update-action button[type=submit]")
        page.wait_for_url(f"{url}/actions/{action_id}")
        done = api.get(f"/v1/actions/{action_id}").json()
    assert done["status"] in ("done", "verified", "not_effective") and done["fixed_on"] == "2026-05-31"
    assert [h["to"] for h in done["history"]][:2] == ["open", "done"]
    assert page.locator("#history tbody tr").count() == len(done["history"])
    page.goto(f"{url}/actions")
    assert page.locator(f'#board a[data-action="{action_id}"]').count() == 1
    w.clean()
    ctx.close()
    shoot(browser, f"{url}/actions", "actions")
    shoot(browser, f"{url}/actions/{action_id}", "action")
