"""Plain async helpers that put rows in the database for a test."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sites
from comments.models import Comment, CommentStatus, Site, Thread


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
    await session.commit()
    return comment
