"""The demo article with the widget, as readers use it in a real browser against a real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from comments import sites
from tests.browser.conftest import Server, new_reader
from tests.factories import make_comment, make_thread

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

PENDING = "Your comment is awaiting moderation."
NOTE = "Your email address will not be published. Required fields are marked *"
CONSENT = "Save my name, email, and website in this browser for the next time I comment."
XSS_CONTENT = (
    '<img src=x onerror="window.__xss=1"> <svg onload=window.__xss=1></svg> '
    '<a href="javascript:window.__xss=1">click me</a> <script>window.__xss=1</script> '
    '<iframe src="javascript:window.__xss=1"></iframe> <b onmouseover="window.__xss=1">hover</b>'
)
XSS_NAME = "<img src=x onerror=window.__xss=1>"
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def open_demo(context: Any, path: str = "/demo") -> Any:
    """The demo article once the widget has replaced the server-rendered fallback with its own thread."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.js_errors = errors
    await page.goto(path)
    await page.locator("#comments-form[novalidate]").wait_for()  # the widget's form (the fallback's validates)
    return page


async def classes(locator: Any) -> list[str]:
    return list(await locator.evaluate("e => [...e.classList]"))


async def reload_until(page: Any, selector: str, seconds: float = 15) -> None:
    """Reload until `selector` shows: public reads may be cached for 5 s (max-age=5), by design."""
    for _ in range(int(seconds * 2)):
        await page.reload()
        await page.locator("#comments-form[novalidate]").wait_for()
        if await page.locator(selector).count():
            return
        await page.wait_for_timeout(500)
    raise AssertionError(f"{selector} did not appear within {seconds}s")


async def fill(page: Any, *, content: str, name: str = "Ada Lovelace", email: str = "ada@example.org") -> None:
    await page.get_by_label("Comment", exact=True).fill(content)
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Email", exact=True).fill(email)


async def post(page: Any, *, content: str, **fields: str) -> None:
    """Post through the form and wait for the widget to show the new comment."""
    before = await page.locator("li.comment").count()
    await fill(page, content=content, **fields)
    await page.get_by_role("button", name="Post Comment").click()
    await page.locator("li.comment").nth(before).wait_for()  # not wait_for_function: it needs eval, CSP forbids it


async def test_demo_shows_the_form_with_the_exact_labels_and_note(reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    assert await page.locator("h2#comments-title").inner_text() == "No Responses yet"
    assert await page.locator("h3#comments-reply-title").inner_text() == "Leave a Reply"
    assert re.sub(r"\s+", " ", await page.locator(".comment-notes").inner_text()).strip() == NOTE
    content = page.get_by_label("Comment", exact=True)
    name = page.get_by_label("Name", exact=True)
    email = page.get_by_label("Email", exact=True)
    website = page.get_by_label("Website", exact=True)
    assert await content.evaluate("e => e.tagName") == "TEXTAREA"
    for control, required, maxlength, autocomplete in (
        (content, True, "65525", "off"),
        (name, True, "245", "name"),
        (email, True, "100", "email"),
        (website, False, "200", "url"),
    ):
        assert await control.evaluate("e => e.required") is required
        assert await control.get_attribute("maxlength") == maxlength
        assert await control.get_attribute("autocomplete") == autocomplete
    assert await email.get_attribute("type") == "email"
    assert await page.get_by_label(CONSENT).is_checked() is False
    assert await page.get_by_role("button", name="Post Comment").is_visible()
    assert await page.locator("#comments-leave-blank").is_visible() is False or await page.locator(
        "#comments-leave-blank"
    ).evaluate("e => e.getBoundingClientRect().right < 0")
    assert page.js_errors == []


async def test_missing_fields_show_every_error_move_focus_and_send_nothing(reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    await page.get_by_role("button", name="Post Comment").click()
    assert await page.locator("#comments-content-error").inner_text() == "Please type your comment text."
    assert await page.locator("#comments-name-error").inner_text() == "Please fill the required field: name."
    assert await page.locator("#comments-email-error").inner_text() == "Please fill the required field: email."
    assert await page.locator("#comments-url-error").inner_text() == ""
    assert await page.evaluate("document.activeElement.id") == "comments-content"
    assert await page.get_by_label("Name", exact=True).get_attribute("aria-invalid") == "true"
    assert "comments-name-error" in (await page.get_by_label("Name", exact=True).get_attribute("aria-describedby"))

    await page.get_by_label("Comment", exact=True).fill("Just the text")
    await page.get_by_label("Email", exact=True).fill("not-an-address")
    await page.get_by_label("Website", exact=True).fill("javascript:alert(1)")
    await page.get_by_role("button", name="Post Comment").click()
    assert await page.locator("#comments-content-error").inner_text() == ""
    assert await page.evaluate("document.activeElement.id") == "comments-name"
    assert await page.locator("#comments-email-error").inner_text() == "Please enter a valid email address."
    assert await page.locator("#comments-url-error").inner_text() == (
        "Please enter a valid website address (http or https)."
    )
    assert posts == []
    assert await server.count() == 0


async def test_server_errors_show_next_to_their_fields(reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    # Passes the widget's quick checks, fails the server's (a dotted domain is not enough for a real address).
    await fill(page, content="Hello", email="ada@example..org")
    await page.get_by_role("button", name="Post Comment").click()
    await page.locator("#comments-email-error:not(:empty)").wait_for()
    assert await page.locator("#comments-email-error").inner_text() == "Please enter a valid email address."
    assert await page.evaluate("document.activeElement.id") == "comments-email"
    assert await server.count() == 0


async def test_keyboard_tab_order_reaches_post_comment(reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    await page.get_by_label("Comment", exact=True).focus()
    order = []
    for _ in range(8):
        order.append(await page.evaluate("document.activeElement.id || document.activeElement.textContent"))
        if order[-1] == "Post Comment":
            break
        await page.keyboard.press("Tab")
    assert order == [
        "comments-content",
        "comments-name",
        "comments-email",
        "comments-url",
        "comments-consent",
        "Post Comment",
    ]
    await page.keyboard.press("Enter")  # submitting from the keyboard: focus goes to the first invalid field
    assert await page.evaluate("document.activeElement.id") == "comments-content"


async def test_post_wait_for_moderation_then_public_and_replies_nest(
    browser: Any, reader: Any, server: Server, artifacts_dir: Path, backend: str
) -> None:
    page = await open_demo(reader)
    await post(page, content="First!\n\nA second paragraph.")
    [mine] = await server.comments()
    li = page.locator(f"li#comment-{mine.id}")
    assert {"comment", "depth-0", "comment-pending"} <= set(await classes(li))
    assert await li.locator("p.comment-awaiting-moderation").inner_text() == PENDING
    assert await li.locator(".comment-content p").all_inner_texts() == ["First!", "A second paragraph."]
    assert await li.locator(".comment-reply-link").count() == 0  # replies need an approved parent
    await page.locator("div.comments-status[role=status]", has_text=PENDING).wait_for()
    assert await page.get_by_label("Comment", exact=True).input_value() == ""
    assert mine.status == "pending"

    await page.reload()  # the submitter token in localStorage keeps it visible to its author
    await page.locator(f"li#comment-{mine.id} p.comment-awaiting-moderation").wait_for()
    assert await page.evaluate("localStorage.getItem('comments:token')")
    assert await page.evaluate("localStorage.getItem('comments:author')") is None  # consent not given

    other = await new_reader(browser, server)
    try:
        stranger = await open_demo(other)
        assert await stranger.locator("li.comment").count() == 0
        assert await stranger.locator("#comments-title").inner_text() == "No Responses yet"

        await server.approve(mine.id)
        await reload_until(stranger, f"li#comment-{mine.id}")
        assert await stranger.locator("#comments-title").inner_text() == "1 Response"
        assert await stranger.locator(f"li#comment-{mine.id} .comment-author").inner_text() == "Ada Lovelace"
        assert await stranger.locator(".comment-awaiting-moderation").count() == 0

        # The stranger replies: the form moves under the comment, then back.
        await stranger.get_by_role("button", name="Reply to Ada Lovelace").click()
        assert await stranger.locator("h3#comments-reply-title").inner_text() == "Reply to Ada Lovelace"
        assert await stranger.evaluate("document.activeElement.id") == "comments-content"
        assert await stranger.locator(f"li#comment-{mine.id} #comments-form").count() == 1
        await stranger.get_by_role("button", name="Cancel reply").click()
        assert await stranger.locator("h3#comments-reply-title").inner_text() == "Leave a Reply"
        assert await stranger.locator(f"li#comment-{mine.id} #comments-form").count() == 0
        await stranger.get_by_role("button", name="Reply to Ada Lovelace").click()
        await post(stranger, content="Welcome, Ada.", name="Grace Hopper", email="grace@example.org")
        reply = (await server.comments())[-1]
        assert reply.parent_id == mine.id
        nested = stranger.locator(f"li#comment-{mine.id} > ol.children > li#comment-{reply.id}")
        assert {"comment", "depth-1", "comment-pending"} <= set(await classes(nested))
        assert await stranger.locator("h3#comments-reply-title").inner_text() == "Leave a Reply"

        await server.approve(reply.id)
        await reload_until(
            page, f"li#comment-{mine.id} > ol.children > li#comment-{reply.id}.depth-1:not(.comment-pending)"
        )
        assert await page.locator("#comments-title").inner_text() == "2 Responses"
        assert await page.locator(".comment-pending").count() == 0
        name = "demo.png" if backend == "sqlite" else f"demo-{backend}.png"
        await page.screenshot(path=str(artifacts_dir / name), full_page=True)
        assert page.js_errors == stranger.js_errors == []
    finally:
        await other.close()


async def test_xss_payloads_stay_inert_text(browser: Any, reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    await post(page, content=XSS_CONTENT, name=XSS_NAME)
    [stored] = await server.comments()
    await server.approve(stored.id)

    other = await new_reader(browser, server)
    try:
        # The widget (innerHTML of the sanitized html), then the server-rendered fallback (widget.js blocked).
        widget = await open_demo(other)
        fallback = await other.new_page()
        await fallback.route("**/widget.js", lambda route: route.abort())
        await fallback.goto("/demo")
        for view in (page, widget, fallback):
            li = view.locator(f"li#comment-{stored.id}")
            await li.wait_for()
            assert await li.locator(".comment-author").inner_text() == XSS_NAME
            content = li.locator(".comment-content")
            assert await content.locator("img, svg, script, iframe, [onmouseover], [onerror], [onload]").count() == 0
            links = content.locator("a")
            for i in range(await links.count()):
                assert not (await links.nth(i).get_attribute("href") or "").lower().startswith("javascript")
                await links.nth(i).click()
            await content.locator("b", has_text="hover").hover()
            await view.wait_for_timeout(200)
            assert await view.evaluate("typeof window.__xss") == "undefined"
        assert await page.evaluate("typeof window.__xss") == "undefined"
    finally:
        await other.close()


async def test_saved_details_only_with_consent(reader: Any, server: Server) -> None:
    page = await open_demo(reader)
    await page.get_by_label(CONSENT).check()
    await page.get_by_label("Website", exact=True).fill("ada.example.org")
    await post(page, content="Remember me")
    saved = await page.evaluate("JSON.parse(localStorage.getItem('comments:author'))")
    assert saved == {"name": "Ada Lovelace", "email": "ada@example.org", "url": "https://ada.example.org"}
    await page.reload()
    await page.locator("#comments-form[novalidate]").wait_for()
    assert await page.get_by_label("Name", exact=True).input_value() == "Ada Lovelace"
    assert await page.get_by_label("Email", exact=True).input_value() == "ada@example.org"
    assert await page.get_by_label(CONSENT).is_checked()
    await page.get_by_label(CONSENT).uncheck()
    await post(page, content="Forget me")
    assert await page.evaluate("localStorage.getItem('comments:author')") is None


async def test_demo_works_under_a_strict_content_security_policy(reader: Any, server: Server) -> None:
    async def with_csp(route: Any) -> None:
        response = await route.fetch()
        await route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    await reader.route(re.compile(r".*/demo(\?.*)?$"), with_csp)
    await reader.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = await open_demo(reader)
    await post(page, content="Posted under CSP")
    await page.locator(".comment-awaiting-moderation").wait_for()
    assert await page.evaluate("window.__csp") == []
    assert await page.locator(".comments-widget").evaluate("e => getComputedStyle(e).lineHeight") != "normal"


async def test_load_more_appends_the_next_page(reader: Any, server: Server) -> None:
    demo = await sites.get_site(server.session, slug=sites.DEMO_SLUG)
    thread = await make_thread(server.session, site=demo, key="/demo")
    for i in range(52):
        await make_comment(server.session, thread=thread, content=f"root {i}", name=f"Reader {i}")
    page = await open_demo(reader)
    assert await page.locator("#comments-title").inner_text() == "52 Responses"
    assert await page.locator("li.comment").count() == 50
    await page.get_by_role("button", name="Load more comments").click()
    await page.locator("li.comment").nth(51).wait_for()
    assert await page.locator("li.comment .comment-content").last.inner_text() == "root 51"
    assert await page.get_by_role("button", name="Load more comments").is_hidden()
    assert await page.evaluate("document.activeElement.closest('li').id") == (
        await page.locator("li.comment").nth(50).get_attribute("id")
    )
