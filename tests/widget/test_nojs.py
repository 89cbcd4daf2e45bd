"""The server-rendered thread and form (demo page, /embed), the strings they share with widget.js, asset sizes."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sites
from comments.models import CommentStatus
from comments.submission import validation
from comments.widget import render
from tests.factories import make_comment, make_site, make_thread

pytestmark = pytest.mark.anyio

STATIC = Path(render.__file__).parent / "static"
BASE = "http://testserver.local"
EMBED = "/embed?site=blog&thread=/2026/11/article"
CACHE_PUBLIC = "public, max-age=5, must-revalidate"
XSS_NAME = '<img src=x onerror="window.__xss=1">'


async def demo_site(session: AsyncSession) -> Any:
    site = await sites.create_site(session, slug="demo", name="Demo", origins=[BASE])
    await session.commit()
    return site


async def test_embed_renders_the_thread_nested_and_only_what_is_public(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site, url="https://blog.example.org/a")
    first = await make_comment(session, thread=thread, content="first")
    await make_comment(session, thread=thread, parent=first, content="reply")
    await make_comment(session, thread=thread, status=CommentStatus.pending, content="secret pending")
    await make_comment(session, thread=thread, status=CommentStatus.spam, content="spam")

    response = await client.get(EMBED)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<h2 class="comments-title" id="comments-title">2 Responses</h2>' in html
    assert re.search(
        rf'<li id="comment-{first.id}" class="comment depth-0">.*<ol class="children">\s*'
        r'<li id="comment-\d+" class="comment depth-1">.*<p>reply</p>',
        html,
        re.S,
    )
    assert "secret pending" not in html
    assert "spam" not in html
    assert "ada@example.org" not in html
    assert f'href="?replytocom={first.id}#respond"' in html
    assert 'aria-label="Reply to Ada"' in html
    assert "<html" not in html  # a fragment, for a server-side include


async def test_the_classic_form_has_the_labels_limits_and_hidden_fields(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    await make_thread(session, site=site, title="Article", url="https://blog.example.org/a")
    html = (await client.get(EMBED)).text
    assert f'action="{BASE}/api/comments" method="post"' in html
    assert "Your email address will not be published." in html
    assert 'Required fields are marked <span class="required">*</span>' in html
    for key, label in (("content", "Comment"), ("name", "Name"), ("email", "Email"), ("url", "Website")):
        assert f'<label for="comments-{key}">{label}</label>' in html
    assert re.search(r'<textarea id="comments-content" name="content" rows="6" required [^>]*maxlength="65525"', html)
    assert 'name="name" type="text" required autocomplete="name" maxlength="245"' in html
    assert 'name="email" type="email" required autocomplete="email" maxlength="100"' in html
    assert 'name="url" type="url" autocomplete="url" maxlength="200"' in html
    assert 'name="leave_blank" type="text" tabindex="-1"' in html
    for name, value in (
        ("site", "blog"),
        ("thread", "/2026/11/article"),
        ("thread_title", "Article"),
        ("thread_url", "https://blog.example.org/a"),
    ):
        assert f'<input type="hidden" name="{name}" value="{value}">' in html
    assert 'name="parent_id"' not in html
    assert ">Post Comment</button>" in html


async def test_names_and_urls_are_escaped_and_only_stored_html_is_markup(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    comment = await make_comment(session, thread=thread, name=XSS_NAME, content="<b>bold</b>")
    comment.author_url = 'javascript:alert(1)//"><script>'
    session.add(comment)
    await session.commit()
    html = (await client.get(EMBED + "&title=%3Cscript%3Ex%3C/script%3E")).text
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in html
    assert "<img" not in html
    assert "<script" not in html
    assert "javascript:" not in html  # not a link: only http(s) author urls become links
    assert "<p><b>bold</b></p>" in html  # the stored (sanitized) html is the only markup


async def test_reply_to_renders_the_reply_form(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    parent = await make_comment(session, thread=thread, name="Grace")
    html = (await client.get(f"{EMBED}&replytocom={parent.id}")).text
    assert '<h3 class="comment-reply-title" id="comments-reply-title">Reply to Grace</h3>' in html
    assert '<a class="comments-cancel-reply" href="?#respond">Cancel reply</a>' in html
    assert f'<input type="hidden" name="parent_id" value="{parent.id}">' in html
    pending = await make_comment(session, thread=thread, status=CommentStatus.pending)
    html = (await client.get(f"{EMBED}&replytocom={pending.id}")).text
    assert "Leave a Reply" in html
    assert 'name="parent_id"' not in html


async def test_closed_thread_and_unknown_site(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    await make_thread(session, site=site, is_open=False)
    html = (await client.get(EMBED)).text
    assert '<p class="comments-closed">Comments are closed.</p>' in html
    assert "<form" not in html
    missing = await client.get("/embed?site=nope&thread=/x")
    assert missing.status_code == 404


async def test_pages_link_to_the_next_one(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    for i in range(51):
        await make_comment(session, thread=thread, content=f"root {i}")
    first = (await client.get(EMBED)).text
    assert first.count('class="comment depth-0"') == 50
    more = re.search(r'<a class="comments-more" href="\?cpage=([^"#]+)#comments">Load more comments</a>', first)
    assert more
    second = (await client.get(f"{EMBED}&cpage={more.group(1)}")).text
    assert second.count('class="comment depth-0"') == 1
    assert "root 50" in second
    assert "comments-more" not in second
    assert (await client.get(f"{EMBED}&cpage=garbage")).text.count('class="comment depth-0"') == 50


async def test_form_post_lands_on_the_demo_with_the_pending_notice(session: AsyncSession, make_client: Any) -> None:
    await demo_site(session)
    form = {
        "site": "demo",
        "thread": "/demo",
        "thread_url": f"{BASE}/demo",
        "content": "Hello from a browser without JavaScript",
        "name": "Ada",
        "email": "ada@example.org",
        "url": "",
        "leave_blank": "",
    }
    async with make_client(flood_seconds=0) as client:
        posted = await client.post("/api/comments", data=form, headers={"Origin": BASE}, follow_redirects=False)
        assert posted.status_code == 303
        location = urlsplit(posted.headers["location"])
        comment_id = int(location.fragment.removeprefix("comment-"))
        assert location.path == "/demo"
        query = parse_qs(location.query)
        assert query["unapproved"] == [str(comment_id)]
        page = await client.get(f"/demo?{location.query}")
        assert page.headers.get("cache-control") != CACHE_PUBLIC
        forged = await client.get(f"/demo?unapproved={comment_id}&moderation-hash=0123456789abcdef")
        embed = await client.get(f"/embed?site=demo&thread=/demo&{location.query}")
    notice = f'role="status" id="comment-{comment_id}">Your comment is awaiting moderation.'
    assert notice in page.text
    assert "Hello from a browser without JavaScript" not in page.text  # pending is never public
    assert "No Responses yet" in page.text
    assert notice not in forged.text
    assert notice in embed.text
    assert embed.headers["cache-control"] == "private, no-store"


async def test_demo_page_has_no_inline_script_style_or_handler(session: AsyncSession, client: Any) -> None:
    site = await demo_site(session)
    thread = await make_thread(session, site=site, key="/demo")
    await make_comment(session, thread=thread)
    html = (await client.get("/demo")).text
    assert '<section id="comments"' in html
    assert '<li id="comment-' in html  # the no-JS thread is inside #comments
    assert not re.search(r"<style|\sstyle=|<script(?![^>]*\ssrc=)|\son[a-z]+=|javascript:", html, re.I)
    assert f'<link rel="stylesheet" href="{BASE}/page.css">' in html
    error = await client.post("/api/comments", data={"site": "demo", "thread": "/demo"})
    assert error.status_code == 400
    assert not re.search(r"<style|\sstyle=|<script|\son[a-z]+=", error.text, re.I)
    assert "<strong>Comment</strong>: Please type your comment text." in error.text
    styles = await client.get("/page.css")
    assert styles.status_code == 200
    assert styles.headers["content-type"].startswith("text/css")


def _js_strings() -> dict[str, str]:
    """STRINGS.en of widget.js as a flat dict (the count forms appear as zero/one/other)."""
    source = (STATIC / "widget.js").read_text()
    block = re.search(r"\ben: \{\n(.*?)\n    \},\n  \};", source, re.S)
    assert block, "STRINGS.en not found in widget.js"
    return {key: value.replace("\\'", "'") for key, value in re.findall(r"(\w+): '((?:[^'\\]|\\.)*)'", block.group(1))}


def test_no_js_strings_are_the_widget_strings() -> None:
    js = _js_strings()
    for key, value in render.STRINGS.items():
        if isinstance(value, dict):
            assert {k: js[k] for k in value} == value, key
        else:
            assert js[key] == value, key
    assert len(js) > len(render.STRINGS)


def test_client_side_messages_are_the_server_messages() -> None:
    js = _js_strings()
    pairs = {
        "contentRequired": "content_required",
        "nameRequired": "name_required",
        "emailRequired": "email_required",
        "emailInvalid": "email_invalid",
        "urlInvalid": "url_invalid",
        "contentLong": "content_long",
        "nameLong": "name_long",
        "emailLong": "email_long",
        "urlLong": "url_long",
    }
    for js_key, server_key in pairs.items():
        assert js[js_key] == validation.MESSAGES[server_key], js_key


def test_widget_js_and_css_stay_under_15_kb_gzipped() -> None:
    sizes = {name: len(gzip.compress((STATIC / name).read_bytes(), 9)) for name in ("widget.js", "widget.css")}
    assert sum(sizes.values()) < 15 * 1024, sizes
