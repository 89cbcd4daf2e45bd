"""The public read API as the widget uses it: order, pagination, pending-for-submitter, caching, counts, CORS."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import Comment, CommentStatus
from comments.threads import refresh_thread
from comments.widget import schemas
from tests.factories import make_comment, make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio

URL = "/api/comments?site=blog&thread=/2026/11/article"


async def set_status(session: AsyncSession, comment: Comment, status: CommentStatus) -> None:
    comment.status = status
    session.add(comment)
    assert comment.thread_id is not None
    await refresh_thread(session, comment.thread_id)
    await session.commit()


async def test_approved_comments_in_threaded_display_order(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site, title="Article", url="https://blog.example.org/a")
    first = await make_comment(session, thread=thread, content="first")
    second = await make_comment(session, thread=thread, content="second")
    reply = await make_comment(session, thread=thread, parent=first, content="reply to first")
    await make_comment(session, thread=thread, parent=reply, content="reply to reply")
    await make_comment(session, thread=thread, status=CommentStatus.pending, content="pending")
    await make_comment(session, thread=thread, status=CommentStatus.spam, content="spam")

    body = (await client.get(URL)).json()
    assert [(c["html"], c["depth"]) for c in body["comments"]] == [
        ("<p>first</p>", 0),
        ("<p>reply to first</p>", 1),
        ("<p>reply to reply</p>", 2),
        ("<p>second</p>", 0),
    ]
    assert body["comments"][1]["parent_id"] == first.id
    assert body["thread"] == {
        "key": "/2026/11/article",
        "title": "Article",
        "url": "https://blog.example.org/a",
        "open": True,
        "count": 4,
    }
    assert body["next_cursor"] is None
    assert body["max_depth"] == 5
    assert all(c["status"] == "approved" for c in body["comments"])
    assert set(body["comments"][0]) == {"id", "parent_id", "depth", "author", "html", "created_at", "status"}
    assert second.id in [c["id"] for c in body["comments"]]


async def test_replies_of_a_trashed_comment_are_hidden_with_it(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    parent = await make_comment(session, thread=thread, content="parent")
    await make_comment(session, thread=thread, parent=parent, content="child")
    await set_status(session, parent, CommentStatus.trash)
    body = (await client.get(URL)).json()
    assert body["comments"] == []
    assert body["thread"]["count"] == 0
    await set_status(session, parent, CommentStatus.approved)
    body = (await client.get(URL)).json()
    assert [c["html"] for c in body["comments"]] == ["<p>parent</p>", "<p>child</p>"]
    assert body["thread"]["count"] == 2


async def test_cursor_pagination_over_roots(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    roots = [await make_comment(session, thread=thread, content=f"root {i}") for i in range(5)]
    await make_comment(session, thread=thread, parent=roots[1], content="reply")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = f"{URL}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(url)).json()
        seen += [c["html"] for c in body["comments"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ["<p>root 0</p>", "<p>root 1</p>", "<p>reply</p>", "<p>root 2</p>", "<p>root 3</p>", "<p>root 4</p>"]


@pytest.mark.parametrize("query", ["&cursor=not-a-cursor", "&limit=0", "&limit=201", "&limit=abc"])
async def test_bad_paging_parameters_are_a_400(session: AsyncSession, client: Any, query: str) -> None:
    await make_site(session)
    response = await client.get(URL + query)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


async def test_unknown_thread_is_empty_and_unknown_site_is_404(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    empty = await client.get("/api/comments?site=blog&thread=/never/commented")
    assert empty.status_code == 200
    assert empty.json() == {
        "thread": {"key": "/never/commented", "title": None, "url": None, "open": True, "count": 0},
        "comments": [],
        "next_cursor": None,
        "max_depth": 5,
    }
    missing = await client.get("/api/comments?site=nope&thread=/x")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Unknown site: 'nope'.", "code": "not_found"}


async def test_submitter_sees_own_pending_comment_and_nobody_else_does(session: AsyncSession, make_client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    root = await make_comment(session, thread=thread, content="approved root")
    async with make_client(flood_seconds=0) as client:
        posted = (await client.post("/api/comments", json=reply_body(content="my reply", parent_id=root.id))).json()
        token = posted["token"]
        also = await client.post(
            "/api/comments", json=reply_body(content="my root"), headers={"X-Comment-Token": token}
        )
        assert also.json()["token"] == token
        mine = await client.get(URL, headers={"X-Comment-Token": token})
        theirs = await client.get(URL, headers={"X-Comment-Token": "someone-elses-token-0123456789"})
        anonymous = await client.get(URL)
    assert [(c["html"], c["status"]) for c in mine.json()["comments"]] == [
        ("<p>approved root</p>", "approved"),
        ("<p>my reply</p>", "pending"),
        ("<p>my root</p>", "pending"),
    ]
    assert mine.headers["cache-control"] == "private, no-store"
    assert [c["html"] for c in theirs.json()["comments"]] == ["<p>approved root</p>"]
    assert [c["html"] for c in anonymous.json()["comments"]] == ["<p>approved root</p>"]
    assert mine.json()["thread"]["count"] == 1


async def test_etag_changes_exactly_when_the_public_view_changes(session: AsyncSession, make_client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    comment = await make_comment(session, thread=thread)
    async with make_client(flood_seconds=0) as client:
        first = await client.get(URL)
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("public")
        not_modified = await client.get(URL, headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        await client.post("/api/comments", json=reply_body(content="pending, not public"))
        assert (await client.get(URL, headers={"If-None-Match": etag})).status_code == 304
        await set_status(session, comment, CommentStatus.spam)
        changed = await client.get(URL, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["comments"] == []


async def test_counts_for_several_threads(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site, key="/a")
    await make_comment(session, thread=thread)
    await make_comment(session, thread=thread)
    await make_comment(session, thread=thread, status=CommentStatus.pending)
    response = await client.get("/api/counts?site=blog&thread=/a&thread=/b")
    assert response.status_code == 200
    assert response.json() == {"counts": {"/a": 2, "/b": 0}}
    too_many = await client.get("/api/counts?site=blog&" + "&".join(f"thread=/t{i}" for i in range(101)))
    assert too_many.status_code == 400
    assert (await client.get("/api/counts?site=nope&thread=/a")).status_code == 404


async def test_cors_only_for_the_site_origins(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    allowed = await client.get(URL, headers={"Origin": "https://blog.example.org"})
    other = await client.get(URL, headers={"Origin": "https://evil.example"})
    counts = await client.get("/api/counts?site=blog&thread=/a", headers={"Origin": "https://blog.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://blog.example.org"
    assert "access-control-allow-origin" not in other.headers
    assert counts.headers["access-control-allow-origin"] == "https://blog.example.org"
    assert "Origin" in allowed.headers["vary"]


def test_public_shapes_never_carry_an_email() -> None:
    for shape in (schemas.CommentPublic, schemas.AuthorPublic, schemas.ThreadPublic, schemas.ThreadPage):
        fields = {f.name for f in msgspec.structs.fields(shape)}
        assert not any("email" in name for name in fields), shape


async def test_widget_assets_are_served(client: Any) -> None:
    script = await client.get("/widget.js")
    styles = await client.get("/widget.css")
    assert script.status_code == styles.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert styles.headers["content-type"].startswith("text/css")


async def test_thread_answers_vary_on_the_submitter_token(session: AsyncSession, client: Any) -> None:
    """A browser must not serve its cached public page to a submitter who now sends a token."""
    site = await make_site(session)
    await make_thread(session, site=site)
    public = await client.get(URL)
    own = await client.get(URL, headers={"X-Comment-Token": "a-submitter-token-0123456789"})
    assert "X-Comment-Token" in public.headers["vary"]
    assert "X-Comment-Token" in own.headers["vary"]
    assert public.headers["cache-control"].startswith("public")
