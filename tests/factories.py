"""Plain async helpers that put rows in the database for a test."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sites
from comments.models import Comment, CommentStatus, Site, Thread
from comments.threads import refresh_thread


async def make_site(session: AsyncSession, *, slug: str = "blog", origins: list[str] | None = None) -> Site:
    site = await sites.create_site(
        session, slug=slug, name=slug.title(), origins=origins or ["https://blog.example.org"]
    )
    await session.commit()
    return site


async def make_thread(session: AsyncSession, *, site: Site, key: str = "/2026/11/article", **fields: object) -> Thread:
    assert site.id is not None
    thread = Thread(site_id=site.id, key=key, **fields)  # type: ignore[arg-type]
    session.add(thread)
    await session.commit()
    return thread


async def make_comment(
    session: AsyncSession,
    *,
    thread: Thread,
    status: CommentStatus = CommentStatus.approved,
    parent: Comment | None = None,
    name: str = "Ada",
    email: str = "ada@example.org",
    content: str = "A thoughtful reply.",
) -> Comment:
    assert thread.id is not None
    comment = Comment(
        site_id=thread.site_id,
        thread_id=thread.id,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        status=status,
        author_name=name,
        author_email=email,
        content_raw=content,
        content_html=f"<p>{content}</p>",
    )
    session.add(comment)
    await session.flush()
    comment.root_id = parent.root_id if parent else comment.id
    await refresh_thread(session, thread.id)  # keeps the public count and ETag version true, as the services do
    await session.commit()
    return comment


def reply_body(**overrides: object) -> dict[str, object]:
    """A valid Leave-a-Reply post for the `blog` site; override any field."""
    body: dict[str, object] = {
        "site": "blog",
        "thread": "/2026/11/article",
        "content": "Great article, thanks!",
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "url": None,
    }
    body.update(overrides)
    return body


def with_client_ip(app: Any, ip: str) -> Any:
    """The app as seen from `ip` (the test client always reports 'testclient')."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (ip, 40000)}
        await app(scope, receive, send)

    return wrapped
