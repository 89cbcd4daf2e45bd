"""Security headers on every kind of answer, in-process and from a real `comments serve`.

Pages get the strict Content-Security-Policy (and a real Chromium proves the demo and its
widget still work under it, with no violation reported); JSON, scripts and styles get a
deny-all policy; everything gets nosniff, a referrer policy and a framing refusal; no
answer says which server or version produced it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.headers import PAGE_POLICY, RESOURCE_POLICY
from tests.factories import make_site, reply_body
from tests.servers import Server, server_env, start_server

pytestmark = pytest.mark.anyio

PAGE = "page"
RESOURCE = "resource"
DOCS = "docs"
LEAKY = ("server", "x-powered-by", "x-aspnet-version", "via")

# (method, path, body) -> the policy it must carry
ANSWERS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/demo", None, PAGE),
    ("GET", "/api/comments?site=blog&thread=/a", None, RESOURCE),
    ("GET", "/api/comments?site=nope&thread=/a", None, RESOURCE),  # 404 from a handler
    ("GET", "/api/counts?site=blog&thread=/a", None, RESOURCE),
    ("GET", "/healthz", None, RESOURCE),
    ("GET", "/widget.js", None, RESOURCE),
    ("GET", "/widget.css", None, RESOURCE),
    ("GET", "/page.css", None, RESOURCE),
    ("GET", "/no/such/route", None, RESOURCE),  # the router's own 404
    ("DELETE", "/api/comments", None, RESOURCE),  # 405
    ("POST", "/api/comments", {"json": reply_body(email="nope")}, RESOURCE),  # 400 JSON
    ("POST", "/api/comments", {"data": {"site": "blog", "content": ""}}, PAGE),  # the form's HTML error page
    ("POST", "/api/comments", {"content": b"x" * 300_000}, RESOURCE),  # 413
    ("GET", "/schema", None, DOCS),
    ("GET", "/schema/openapi.json", None, RESOURCE),
]


def check_headers(response: httpx.Response, kind: str) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    expected = {PAGE: PAGE_POLICY, RESOURCE: RESOURCE_POLICY, DOCS: None}[kind]
    assert headers.get("content-security-policy") == expected
    if kind == PAGE:
        assert headers["content-type"].startswith("text/html")
    for name in LEAKY:
        assert name not in headers


@pytest.mark.parametrize(("method", "path", "body", "kind"), ANSWERS, ids=[f"{m} {p} {k}" for m, p, _, k in ANSWERS])
async def test_every_answer_carries_the_security_headers(
    session: AsyncSession, client: AsyncTestClient[Litestar], method: str, path: str, body: Any, kind: str
) -> None:
    await make_site(session)
    response = await client.request(method, path, follow_redirects=False, **(body or {}))
    check_headers(response, kind)


def test_the_page_policy_is_the_strict_one() -> None:
    directives = dict(d.strip().split(" ", 1) for d in PAGE_POLICY.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "object-src": "'none'",
    }
    assert "unsafe" not in PAGE_POLICY


@pytest.fixture
def served(settings: Settings, session: AsyncSession, tmp_path: Path) -> Iterator[Server]:
    """A real `comments serve` on the test database (it creates the demo site on the empty database)."""
    server = start_server(server_env(settings), tmp_path, name="headers")
    try:
        yield server
    finally:
        server.stop()


async def test_a_real_server_sends_them_too_and_never_names_itself(served: Server) -> None:
    async with httpx.AsyncClient(base_url=served.base) as http:
        for method, path, body, kind in ANSWERS:
            fixed = path.replace("site=blog", "site=demo")
            if body and "json" in body:
                body = {"json": {**body["json"], "site": "demo"}}
            elif body and "data" in body:
                body = {"data": {**body["data"], "site": "demo"}}
            response = await http.request(method, fixed, **(body or {}))
            check_headers(response, kind)
            # uvicorn's `server` header is off; the `date` header is all that says anything about the host.
            assert "uvicorn" not in str(response.headers).lower()


@pytest.mark.browser
async def test_the_demo_page_and_widget_work_under_the_strict_policy(served: Server, browser: Any) -> None:
    """Chromium loads /demo, the widget renders, a reply posts, and no CSP violation is reported."""
    page = await browser.new_page()
    try:
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        await page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        response = await page.goto(f"{served.base}/demo")
        assert response is not None
        assert response.headers["content-security-policy"] == PAGE_POLICY
        await page.wait_for_selector("#comments-form")
        # The stylesheets applied: pages.css sets the article font, widget.css styles the form.
        font = await page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Georgia" in font
        await page.fill("#comments-content", "Posted under a strict CSP.")
        await page.fill("#comments-name", "Ada")
        await page.fill("#comments-email", "ada@example.org")
        await page.click(".comments-submit")
        await page.wait_for_selector(".comment-awaiting-moderation")
        await asyncio.sleep(0.2)  # let any late violation report arrive
        assert await page.evaluate("window.__csp") == []
        assert violations == []
    finally:
        await page.close()
