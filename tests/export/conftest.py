"""A site whose comments exercise every corner of the formats: hostile cells, CDATA breakers, controls, replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sanitize
from comments.export import service
from comments.export.schemas import ExportFormat, ExportOptions
from comments.models import Comment, CommentStatus, Site, Thread
from comments.threads import refresh_thread
from tests.factories import make_site, make_thread

# The moderation fixtures (logged-in clients with their CSRF token, cheap password hashes) serve the API tests.
from tests.moderation.conftest import cheap_hashes, login_as  # noqa: F401

BASE = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)

# (thread index, parent index or None, status, name, email, url, content)
SPECS: list[tuple[int, int | None, CommentStatus, str, str, str | None, str]] = [
    (
        0,
        None,
        CommentStatus.approved,
        "Ada",
        "ada@example.org",
        "https://ada.example.org",
        "First!\n\nSecond paragraph.",
    ),
    (0, 0, CommentStatus.approved, '=HYPERLINK("http://evil")', "eve@example.org", None, "=cmd|' /C calc'!A0"),
    (0, 1, CommentStatus.pending, "+Plus", "ada@example.org", None, "-2+3 and ]]> breaks CDATA ]]]]> twice"),
    (0, None, CommentStatus.spam, "@Spammer", "spam@example.org", "http://spam.example", "@SUM(1+1) buy now"),
    (1, None, CommentStatus.trash, "\tTab", "tab@example.org", None, "\tstarts with a tab\r\nand CRLF"),
    (
        1,
        4,
        CommentStatus.approved,
        "Ünïcødé 😀",
        "Ada@Example.org",
        None,
        "controls \x01\x08\x0b\x1f gone; emoji 😀 stays",
    ),
    (1, None, CommentStatus.approved, "Ben", "ben@example.org", None, "<script>alert(1)</script> <b>bold</b>"),
]


@dataclass
class Populated:
    site: Site
    threads: list[Thread]
    comments: list[Comment]


async def add_comment(
    session: AsyncSession,
    *,
    thread: Thread,
    parent: Comment | None,
    status: CommentStatus,
    name: str,
    email: str,
    url: str | None,
    content: str,
    created_at: datetime,
) -> Comment:
    comment = Comment(
        site_id=thread.site_id,
        thread_id=thread.id,  # type: ignore[arg-type]
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        status=status,
        author_name=name,
        author_email=email,
        author_url=sanitize.clean_url(url) if url else None,  # as submission stores it
        content_raw=content,
        content_html=sanitize.clean(content),
        ip="203.0.113.0",
        user_agent="Mozilla/5.0 (X11; Linux x86_64)",
        created_at=created_at,
        updated_at=created_at + timedelta(minutes=5),
        moderated_at=created_at + timedelta(hours=1) if status != CommentStatus.pending else None,
    )
    session.add(comment)
    await session.flush()
    comment.root_id = parent.root_id if parent else comment.id
    return comment


async def populate(session: AsyncSession, *, slug: str = "blog") -> Populated:
    site = await make_site(session, slug=slug)
    threads = [
        await make_thread(
            session, site=site, key="/2026/11/first", title="First & <best>", url="https://blog.example.org/first"
        ),
        await make_thread(session, site=site, key="post-42", title=None, url=None, is_open=False),
    ]
    comments: list[Comment] = []
    for i, (thread_index, parent_index, status, name, email, url, content) in enumerate(SPECS):
        comments.append(
            await add_comment(
                session,
                thread=threads[thread_index],
                parent=comments[parent_index] if parent_index is not None else None,
                status=status,
                name=name,
                email=email,
                url=url,
                content=content,
                created_at=BASE + timedelta(days=i, seconds=i),
            )
        )
    for thread in threads:
        await refresh_thread(session, thread.id)  # type: ignore[arg-type]
    await session.commit()
    return Populated(site=site, threads=threads, comments=comments)


@pytest.fixture
async def populated(session: AsyncSession) -> Populated:
    return await populate(session)


async def export_bytes(
    session: AsyncSession, site: Site, fmt: ExportFormat, options: ExportOptions | None = None
) -> bytes:
    options = options or ExportOptions()
    writer = service.make_writer(fmt, site=site, personal_data=options.personal_data)
    chunks = service.export_comments(session, site=site, writer=writer, options=options, fmt=fmt)
    return b"".join([chunk async for chunk in chunks])
