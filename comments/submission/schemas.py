"""Shapes of the Leave-a-Reply write path."""

from __future__ import annotations

import msgspec

from comments.widget.schemas import CommentPublic


class ReplyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """A reader's reply, as the widget (JSON) or the classic form (urlencoded) sends it.

    Every text field is optional at this layer so the service can report every
    missing or invalid field at once, in words a reader understands.
    """

    site: str = ""
    thread: str = ""
    thread_title: str | None = None
    thread_url: str | None = None
    parent_id: int | None = None
    content: str = ""
    name: str = ""
    email: str = ""
    url: str | None = None
    leave_blank: str = msgspec.field(default="")  # honeypot: hidden from people, filled in by bots


class ReplyCreated(msgspec.Struct, kw_only=True):
    """201 answer: the stored comment, its status, and the submitter token (shown once)."""

    comment: CommentPublic
    token: str
    message: str | None
