"""Mechanisms behind the fast read path (issue 8), not timings.

- The ETag changes exactly when the public view changes.
- A change made through one app instance is seen on the very next read from another
  (create_app twice on one database): no per-process cache can serve a stale page.
- The thread read and the moderation-queue page use their indexes (EXPLAIN on both backends).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.app import create_app
from comments.config import Settings
from comments.models import Comment, CommentStatus
from comments.threads import refresh_thread
from comments.widget import service
from tests.factories import make_comment, make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio

URL = "/api/comments?site=blog&thread=/2026/11/article"


async def set_status(session: AsyncSession, comment: Comment, status: CommentStatus) -> None:
    """What a moderation action does: the status and the thread's version, in one transaction."""
    comment.status = status
    session.add(comment)
    await session.flush()
    await refresh_thread(session, comment.thread_id)
    await session.commit()


async def test_a_change_through_one_instance_is_seen_at_once_through_another(
    session: AsyncSession, settings: Settings
) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    await make_comment(session, thread=thread, content="first")
    relaxed = settings.model_copy(update={"flood_seconds": 0, "rate_limit_per_hour": 0})
    async with (
        AsyncTestClient(create_app(relaxed), base_url="http://testserver.local") as a,
        AsyncTestClient(create_app(relaxed), base_url="http://testserver.local") as b,
    ):
        before = await b.get(URL)  # B has now built and cached this version's page
        assert [c["html"] for c in before.json()["comments"]] == ["<p>first</p>"]
        etag = before.headers["etag"]
        assert (await b.get(URL, headers={"If-None-Match": etag})).status_code == 304

        posted = await a.post("/api/comments", json=reply_body(content="second"))
        assert posted.status_code == 201
        # Pending: the public view did not change, so neither does the ETag (on either instance).
        assert (await b.get(URL, headers={"If-None-Match": etag})).status_code == 304
        assert (await a.get(URL)).headers["etag"] == etag

        comment = await session.get(Comment, posted.json()["comment"]["id"])
        assert comment is not None
        await set_status(session, comment, CommentStatus.approved)
        after = await b.get(URL, headers={"If-None-Match": etag})
        assert after.status_code == 200
        assert [c["html"] for c in after.json()["comments"]] == ["<p>first</p>", "<p>second</p>"]
        assert after.json()["thread"]["count"] == 2
        assert after.headers["etag"] != etag
        assert (await a.get(URL)).headers["etag"] == after.headers["etag"]

        await set_status(session, comment, CommentStatus.trash)
        gone = await b.get(URL, headers={"If-None-Match": after.headers["etag"]})
        assert gone.status_code == 200
        assert [c["html"] for c in gone.json()["comments"]] == ["<p>first</p>"]
        assert gone.headers["etag"] not in (etag, after.headers["etag"])


async def test_etag_is_stable_while_nothing_public_changes_and_body_matches_it(
    session: AsyncSession, client: Any
) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    first = await make_comment(session, thread=thread, content="one")
    one = await client.get(URL)
    two = await client.get(URL)  # the second read is served from the page cache
    assert one.headers["etag"] == two.headers["etag"]
    assert one.content == two.content
    await make_comment(session, thread=thread, status=CommentStatus.spam, content="spam")
    spam_only = await client.get(URL)
    assert spam_only.content == one.content  # same public view...
    await make_comment(session, thread=thread, parent=first, content="reply")
    changed = await client.get(URL, headers={"If-None-Match": one.headers["etag"]})
    assert changed.status_code == 200
    assert [c["html"] for c in changed.json()["comments"]] == ["<p>one</p>", "<p>reply</p>"]
    again = await client.get(URL, headers={"If-None-Match": changed.headers["etag"]})
    assert again.status_code == 304


async def _plan(engine: AsyncEngine, statement: Any) -> str:
    """The backend's query plan as one string; PostgreSQL may not pick a seq scan (tables are tiny in tests)."""
    async with engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            rows = (await conn.execute(text(f"EXPLAIN {compiled}"))).all()
        else:
            rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))).all()
        await conn.rollback()
    return "\n".join(str(row[-1]) for row in rows)


async def test_thread_read_queries_use_the_thread_index(engine: AsyncEngine, session: AsyncSession) -> None:
    roots = await _plan(engine, service.roots_statement(1, 51, None))
    assert "ix_comment_thread_status_root" in roots
    after = await _plan(engine, service.roots_statement(1, 51, (datetime(2026, 1, 1, tzinfo=UTC), 5)))
    assert "ix_comment_thread_status_root" in after
    replies = await _plan(engine, service.replies_statement(1, [1, 2, 3]))
    assert "ix_comment_thread_status_root" in replies


def queue_page(site_id: int, status: CommentStatus, after: tuple[Any, int] | None) -> Any:
    """The moderation queue's page: one site's comments of one status, newest first, keyset, 50 at a time."""
    query = (
        select(col(Comment.id), col(Comment.created_at))
        .where(col(Comment.site_id) == site_id, col(Comment.status) == status)
        .order_by(col(Comment.created_at).desc(), col(Comment.id).desc())
        .limit(50)
    )
    if after is not None:
        query = query.where(tuple_(col(Comment.created_at), col(Comment.id)) < tuple_(*after))
    return query


async def test_queue_page_uses_its_index_without_sorting(engine: AsyncEngine, session: AsyncSession) -> None:
    for after in (None, (datetime(2026, 1, 1, tzinfo=UTC), 10)):
        plan = await _plan(engine, queue_page(1, CommentStatus.pending, after))
        assert "ix_comment_site_status_created" in plan
        # The index already yields newest-first: no sort step, however many comments there are.
        assert "TEMP B-TREE" not in plan.upper()
        assert "Sort" not in plan


def test_page_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = service.PageCache(size=3, max_bytes=100)
    for i in range(5):
        cache.put((i, 1, None, 50), b"x" * 30)
    assert cache.get((0, 1, None, 50)) is None
    assert cache.get((1, 1, None, 50)) is None
    assert cache.get((4, 1, None, 50)) == b"x" * 30
    cache.put((9, 1, None, 50), b"y" * 100)  # alone fills the budget: everything older goes
    assert cache.get((4, 1, None, 50)) is None
    assert cache.get((9, 1, None, 50)) == b"y" * 100
