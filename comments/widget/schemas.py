"""Public shapes of the read path. No `*Public` shape has an email field (a test checks it)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from comments.models import CommentStatus


class AuthorPublic(msgspec.Struct, kw_only=True):
    """What readers see of an author: the name and, when given, the website."""

    name: str
    url: str | None


class CommentPublic(msgspec.Struct, kw_only=True):
    """One comment as the widget renders it; `html` was sanitized when it was written."""

    id: int
    parent_id: int | None
    depth: int
    author: AuthorPublic
    html: str
    created_at: datetime
    status: CommentStatus


class ThreadPublic(msgspec.Struct, kw_only=True):
    """The article a thread belongs to, and how many comments the public sees."""

    key: str
    title: str | None
    url: str | None
    open: bool
    count: int


class ThreadPage(msgspec.Struct, kw_only=True):
    """One page of a thread in display order: each root, then its replies depth-first."""

    thread: ThreadPublic
    comments: list[CommentPublic]
    next_cursor: str | None
    max_depth: int


class ThreadCounts(msgspec.Struct, kw_only=True):
    """Public comment counts for listing pages, keyed by thread."""

    counts: dict[str, int]
