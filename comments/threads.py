"""Thread bookkeeping shared by every feature that changes what the public sees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import col, select, update

from comments.models import Comment, CommentStatus, Thread

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession


def visible_ids(rows: list[tuple[int, int | None, CommentStatus]]) -> set[int]:
    """Ids of approved comments whose every ancestor is approved too.

    A reply whose parent is trashed, spammed or pending is hidden with it (and comes
    back when the parent is restored), so the public never sees an orphaned reply.
    `rows` are (id, parent_id, status) in any order: imported replies can be older
    (smaller ids) than their parents, so this walks up the tree instead of relying on id order.
    """
    parent_of = {comment_id: parent_id for comment_id, parent_id, _ in rows}
    approved = {comment_id for comment_id, _, status in rows if status == CommentStatus.approved}
    known: dict[int, bool] = {}
    for start in parent_of:
        chain: list[int] = []
        node: int | None = start
        while node is not None and node not in known and node in approved and node not in chain:
            chain.append(node)
            node = parent_of.get(node, -1)  # -1: a parent outside the thread hides the reply
        shown = known[node] if node is not None and node in known else node is None
        known.update(dict.fromkeys(chain, shown))
    return {comment_id for comment_id, shown in known.items() if shown}


async def refresh_thread(session: AsyncSession, thread_id: int) -> None:
    """Recount the thread's public comments and bump its version (the read path's ETag).

    Call it in the same transaction as any change to a comment's status, content or
    parent, so every app instance sees the new version at once and no cache serves stale html.
    """
    rows = (
        await session.exec(
            select(Comment.id, Comment.parent_id, Comment.status).where(col(Comment.thread_id) == thread_id)
        )
    ).all()
    count = len(visible_ids([(int(i), p, CommentStatus(s)) for i, p, s in rows if i is not None]))
    await session.exec(
        update(Thread).where(col(Thread.id) == thread_id).values(approved_count=count, version=col(Thread.version) + 1)
    )
