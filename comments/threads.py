"""Thread bookkeeping shared by every feature that changes what the public sees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import col, select, update

from comments.errors import FieldError, InvalidInput
from comments.models import Comment, CommentStatus, Thread

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession


INVALID_KEY = "This field contains characters that are not valid text."


def is_storable_text(value: str) -> bool:
    """False for NUL bytes and lone surrogates, which no column stores faithfully (PostgreSQL refuses them)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_keys(keys: list[str]) -> None:
    """Refuse thread keys no thread can have, before they reach a query.

    Raises:
        InvalidInput: a key holds a NUL byte or a lone surrogate.
    """
    if not all(is_storable_text(key) for key in keys):
        raise InvalidInput([FieldError("thread", INVALID_KEY)])


def visible_ids(rows: list[tuple[int, int | None, CommentStatus]]) -> set[int]:
    """Ids of approved comments whose every ancestor is approved too.

    A reply whose parent is trashed, spammed or pending is hidden with it (and comes
    back when the parent is restored), so the public never sees an orphaned reply.
    `rows` are (id, parent_id, status) in id order, so parents come before children.
    """
    shown: set[int] = set()
    for comment_id, parent_id, status in sorted(rows, key=lambda row: row[0]):
        if status == CommentStatus.approved and (parent_id is None or parent_id in shown):
            shown.add(comment_id)
    return shown


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
