"""The demo article with JavaScript disabled: the server-rendered thread and the classic form post."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.conftest import Server, new_reader

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

PENDING = "Your comment is awaiting moderation."


@pytest.fixture
async def no_js(browser: Any, server: Server) -> AsyncIterator[Any]:
    context = await new_reader(browser, server, java_script_enabled=False)
    page = await context.new_page()
    yield page
    await context.close()


async def fill(page: Any, *, content: str, name: str, email: str) -> None:
    await page.get_by_label("Comment", exact=True).fill(content)
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Email", exact=True).fill(email)


async def submit(page: Any) -> Any:
    """Click Post Comment and return the response of the page it lands on."""
    async with page.expect_navigation() as landed:
        await page.get_by_role("button", name="Post Comment").click()
    return await landed.value


async def test_no_js_errors_then_post_then_reply(no_js: Any, server: Server) -> None:
    page = no_js
    await page.goto("/demo")
    assert await page.locator("#comments h2#comments-title").inner_text() == "No Responses yet"
    assert await page.locator("h3#comments-reply-title").inner_text() == "Leave a Reply"
    assert re.sub(r"\s+", " ", await page.locator(".comment-notes").inner_text()).strip() == (
        "Your email address will not be published. Required fields are marked *"
    )
    for label in ("Comment", "Name", "Email", "Website"):
        assert await page.get_by_label(label, exact=True).count() == 1

    # Whitespace passes the browser's own `required` check; the server counts it as empty.
    await fill(page, content="   ", name="   ", email="ada@localhost")
    error = await submit(page)
    assert error.status == 400
    assert await page.title() == "Comment Submission Failure"
    items = await page.locator("li").all_inner_texts()
    assert items == [
        "Comment: Please type your comment text.",
        "Name: Please fill the required field: name.",
        "Email: Please enter a valid email address.",
    ]
    assert await server.count() == 0
    async with page.expect_navigation():
        await page.get_by_role("link", name="« Back").click()
    assert page.url == f"{server.base}/demo"

    await fill(page, content="Posted without JavaScript", name="Ada Lovelace", email="ada@example.org")
    await submit(page)
    [mine] = await server.comments()
    assert mine.status == "pending"
    assert re.fullmatch(
        rf"{re.escape(server.base)}/demo\?unapproved={mine.id}&moderation-hash=[0-9a-f]+#comment-{mine.id}", page.url
    )
    notice = page.locator(f"#comment-{mine.id}")
    assert await notice.inner_text() == PENDING
    assert await notice.get_attribute("role") == "status"
    assert await page.locator("li.comment").count() == 0  # pending is not public, not even here
    assert await page.get_by_text("Posted without JavaScript").count() == 0

    await server.approve(mine.id)
    await page.goto("/demo")
    assert await page.locator("#comments-title").inner_text() == "1 Response"
    assert await page.locator(f"li#comment-{mine.id} .comment-author").inner_text() == "Ada Lovelace"

    async with page.expect_navigation():
        await page.get_by_role("link", name="Reply to Ada Lovelace").click()
    assert page.url.endswith(f"/demo?replytocom={mine.id}#respond")
    assert await page.locator("h3#comments-reply-title").inner_text() == "Reply to Ada Lovelace"
    assert await page.get_by_role("link", name="Cancel reply").count() == 1
    await fill(page, content="A reply, also without JavaScript", name="Grace Hopper", email="grace@example.org")
    await submit(page)
    reply = (await server.comments())[-1]
    assert reply.parent_id == mine.id
    assert page.url.endswith(f"#comment-{reply.id}")
    assert await page.locator(f"#comment-{reply.id}").inner_text() == PENDING

    await server.approve(reply.id)
    await page.goto("/demo")
    nested = page.locator(f"li#comment-{mine.id} > ol.children > li#comment-{reply.id}.depth-1")
    assert await nested.locator(".comment-author").inner_text() == "Grace Hopper"
    assert await page.locator("#comments-title").inner_text() == "2 Responses"


async def test_honeypot_is_off_screen_and_out_of_the_tab_order(no_js: Any, server: Server) -> None:
    await no_js.goto("/demo")
    trap = no_js.locator("#comments-leave-blank")
    assert await trap.get_attribute("tabindex") == "-1"
    box = await trap.bounding_box()
    assert box is None or box["x"] + box["width"] <= 0
