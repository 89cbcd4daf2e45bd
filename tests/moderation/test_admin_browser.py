"""The /admin UI in headless Chromium against a real `comments serve`: log in, approve, see it public."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.browser.conftest import Server, server  # noqa: F401  (fixture)
from tests.moderation.conftest import PASSWORD, World

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_moderator_approves_a_comment_and_the_public_sees_it(
    browser: Any,
    server: Server,  # noqa: F811
    world: World,
    session: AsyncSession,
    artifacts_dir: Path,
    javascript: bool,
) -> None:
    public_url = f"{server.base}/api/comments"
    params = {"site": "alpha", "thread": "/post-1"}
    async with httpx.AsyncClient() as http:
        before = (await http.get(public_url, params=params)).json()
    assert world.pending.id not in [c["id"] for c in before["comments"]]

    # A phone-sized viewport: the queue must be usable there.
    context = await browser.new_context(
        base_url=server.base, java_script_enabled=javascript, viewport={"width": 390, "height": 844}
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        await page.goto("/admin")
        assert "/admin/login" in page.url
        await page.get_by_label("Email").fill("owner@alpha.example")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url("**/admin/queue?site=alpha**")
        await expect(page.locator('[data-count="pending"]')).to_have_text("1")
        entry = page.locator(f"#c{world.pending.id}")
        await expect(entry).to_contain_text("bob@example.org")  # moderators see the email
        await expect(entry.locator(".content")).to_have_text("Hi")
        await entry.get_by_role("button", name="Approve").click()
        await expect(page.locator('[data-count="pending"]')).to_have_text("0")
        await expect(page.locator('[data-count="approved"]')).to_have_text("2")
        await page.screenshot(path=str(artifacts_dir / f"admin-queue-{'js' if javascript else 'nojs'}.png"))
    finally:
        await context.close()

    async with httpx.AsyncClient() as http:
        after = (await http.get(public_url, params=params)).json()
    shown = {c["id"]: c for c in after["comments"]}
    assert world.pending.id in shown
    assert shown[world.pending.id]["html"] == "<p>Hi</p>"
    assert "bob@example.org" not in str(after)
