"""The no-JavaScript thread: the read service's page, shaped for the server-rendered fragment and form.

Strings here are the English entries of widget.js's STRINGS table, so the page reads the same
with or without JavaScript (a test compares the two tables).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from comments import security
from comments.errors import CommentsError
from comments.models import CommentStatus
from comments.submission import validation
from comments.widget import service

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.widget.schemas import CommentPublic

STRINGS: dict[str, Any] = {
    "count": {"zero": "No Responses yet", "one": "1 Response", "other": "{n} Responses"},
    "leaveReply": "Leave a Reply",
    "replyTo": "Reply to {name}",
    "reply": "Reply",
    "cancelReply": "Cancel reply",
    "emailNote": "Your email address will not be published.",
    "requiredNote": "Required fields are marked",
    "comment": "Comment",
    "name": "Name",
    "email": "Email",
    "url": "Website",
    "honeypot": "Leave this field empty",
    "submit": "Post Comment",
    "closed": "Comments are closed.",
    "pending": "Your comment is awaiting moderation.",
    "anonymous": "Anonymous",
    "more": "Load more comments",
}

# Form field -> its label, for the no-JS error page.
FIELD_LABELS = {key: STRINGS[key] for key in ("name", "email", "url")} | {"content": STRINGS["comment"]}

# The query parameters the fragment's own links use (WordPress's names), relative to the article page.
PAGE_PARAM = "cpage"
REPLY_PARAM = "replytocom"
UNAPPROVED_PARAM = "unapproved"
PROOF_PARAM = "moderation-hash"

LIMITS = {
    "content": validation.MAX_CONTENT_BYTES,
    "name": validation.MAX_NAME,
    "email": validation.MAX_EMAIL,
    "url": validation.MAX_URL,
}


@dataclass
class Node:
    """One comment in the rendered tree, with its replies."""

    comment: CommentPublic
    date: str
    link: str | None
    can_reply: bool
    reply_href: str = ""
    children: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class NoJsThread:
    """Everything thread.html needs."""

    site: str
    thread: str
    title: str | None
    url: str | None
    action: str
    heading: str
    open: bool
    nodes: list[Node]
    more_href: str | None
    reply_to: Node | None
    cancel_href: str
    pending_id: int | None
    strings: dict[str, Any]
    limits: dict[str, int]


def count_text(count: int) -> str:
    """'No Responses yet', '1 Response', '1,234 Responses' (as the widget's Intl formatting in en)."""
    forms = STRINGS["count"]
    text = forms["zero"] if count == 0 else forms["one"] if count == 1 else forms["other"]
    return str(text).replace("{n}", f"{count:,}")


def format_date(moment: datetime) -> str:
    """'November 25, 2026 at 9:05 AM UTC': the widget's long date in en, in UTC (the server knows no time zone)."""
    hour = moment.hour % 12 or 12
    return f"{moment:%B} {moment.day}, {moment.year} at {hour}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'} UTC"


def pending_proof(secret_key: str, comment_id: int) -> str:
    """Proof, in the redirect after a no-JS post, that this reader just posted `comment_id`."""
    return security.keyed_token(secret_key, "unapproved", str(comment_id))[:32]


def pending_query(secret_key: str, comment_id: int) -> dict[str, str]:
    """The query a no-JS post's redirect carries when the comment waits for moderation."""
    return {UNAPPROVED_PARAM: str(comment_id), PROOF_PARAM: pending_proof(secret_key, comment_id)}


def _safe_link(url: str | None) -> str | None:
    # Stored urls passed clean_url at write time; imports might not have, so check the scheme again.
    return url if url and url.lower().startswith(("http://", "https://")) else None


def _tree(comments: list[CommentPublic], *, open_: bool, max_depth: int) -> tuple[list[Node], dict[int, Node]]:
    """Nest the read service's display-ordered flat list (a parent always comes before its replies)."""
    roots: list[Node] = []
    by_id: dict[int, Node] = {}
    for comment in comments:
        node = Node(
            comment=comment,
            date=format_date(comment.created_at),
            link=_safe_link(comment.author.url),
            can_reply=open_ and comment.status == CommentStatus.approved and comment.depth < max_depth - 1,
        )
        parent = by_id.get(comment.parent_id) if comment.parent_id is not None else None
        (parent.children if parent else roots).append(node)
        by_id[comment.id] = node
    return roots, by_id


def _query(**params: object) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v is not None})


async def load_thread(
    session: AsyncSession,
    *,
    secret_key: str,
    base_url: str,
    site: str,
    thread: str,
    title: str | None = None,
    url: str | None = None,
    cursor: str | None = None,
    reply_to: int | None = None,
    unapproved: int | None = None,
    proof: str | None = None,
) -> NoJsThread:
    """One page of the public thread and the classic form, through the widget's own read service.

    A `cursor` that is not ours reads as the first page. `unapproved` with a valid `proof` (the
    redirect after a no-JS post) shows "awaiting moderation" where that comment would be.

    Raises:
        NotFound: unknown site.
    """
    state = await service.thread_state(session, site_slug=site, key=thread)
    try:
        page = await service.load_page(session, state=state, cursor=cursor, limit=service.DEFAULT_PAGE)
    except CommentsError:
        cursor = None
        page = await service.load_page(session, state=state, cursor=None, limit=service.DEFAULT_PAGE)
    open_ = page.thread.open
    nodes, by_id = _tree(page.comments, open_=open_, max_depth=page.max_depth)
    for node in by_id.values():
        node.reply_href = _query(**{PAGE_PARAM: cursor, REPLY_PARAM: node.comment.id}) + "#respond"
    target = by_id.get(reply_to) if reply_to is not None else None
    pending_id = None
    if (
        unapproved is not None
        and unapproved not in by_id
        and proof
        and hmac.compare_digest(proof, pending_proof(secret_key, unapproved))
    ):
        pending_id = unapproved
    return NoJsThread(
        site=site,
        thread=thread,
        title=title or page.thread.title,
        url=url or page.thread.url,
        action=f"{base_url.rstrip('/')}/api/comments",
        heading=count_text(page.thread.count),
        open=open_,
        nodes=nodes,
        more_href=_query(**{PAGE_PARAM: page.next_cursor}) + "#comments" if page.next_cursor else None,
        reply_to=target if target is not None and target.can_reply else None,
        cancel_href=_query(**{PAGE_PARAM: cursor}) + "#respond",
        pending_id=pending_id,
        strings=STRINGS,
        limits=LIMITS,
    )
