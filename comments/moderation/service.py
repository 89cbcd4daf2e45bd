"""The queue: list, approve/spam/trash/restore, edit, delete, bulk, counts, and the audit log.

Every function is scoped by membership: a comment is found only through a site the
acting user belongs to, otherwise it is a `NotFound` (never a 403, so ids of other
sites do not leak). Every change writes an `AuditEvent` and calls
`threads.refresh_thread` in the same transaction.

Replies follow their parent (decided in `threads.visible_ids`): a reply whose parent is
not approved is hidden from the public together with it, and comes back when the parent
is approved again. Approving such a reply is allowed; it shows once its parent does.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, func, or_, select

from comments import sanitize, spamfilter, threads
from comments.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from comments.models import (
    AuditEvent,
    Comment,
    CommentStatus,
    Membership,
    Role,
    Site,
    Thread,
    User,
    text_digest,
    utcnow,
)
from comments.moderation.schemas import (
    AuditEntry,
    AuditPage,
    AuthorHistory,
    CommentModeration,
    QueuePage,
    SiteRole,
    StatusCounts,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.moderation.guards import Member

_TAG = re.compile(r"<[^>]*>")
_REASON_HEAD = re.compile(r"[:>=<].*$", re.S)  # "links>=2" filters as "links", "spam_score:0.93" as "spam_score"
DELETABLE = frozenset({CommentStatus.spam, CommentStatus.trash})


def encode_cursor(created_at: datetime, row_id: int) -> str:
    """An opaque keyset cursor: the (created_at, id) of the last row shown."""
    return base64.urlsafe_b64encode(f"{created_at.astimezone(UTC).isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) inside a cursor.

    Raises:
        InvalidInput: the cursor was not made by `encode_cursor`.
    """
    try:
        stamp, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError("naive cursor")
        return when, int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput([FieldError("cursor", "Invalid cursor; start again from the first page.")]) from exc


def _before(created: Any, ident: Any, cursor: str | None) -> Any:
    """Keyset condition for "older than the cursor", newest-first order."""
    if not cursor:
        return True
    when, row_id = decode_cursor(cursor)
    return or_(created < when, (created == when) & (ident < row_id))


def encode_score_cursor(score: float, row_id: int) -> str:
    """An opaque keyset cursor for the by-score order: the (spam score, id) of the last row shown."""
    return base64.urlsafe_b64encode(f"score|{score!r}|{row_id}".encode()).decode()


def _after_score(score: Any, ident: Any, cursor: str | None) -> Any:
    """Keyset condition for "less likely spam than the cursor comes later", likely-good-first order."""
    if not cursor:
        return True
    try:
        tag, value, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        if tag != "score":
            raise ValueError("not a by-score cursor")
        last, last_id = float(value), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput([FieldError("cursor", "Invalid cursor; start again from the first page.")]) from exc
    return or_(score > last, (score == last) & (ident > last_id))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_memberships(session: AsyncSession, *, user: User) -> list[SiteRole]:
    """The sites a user belongs to, by slug, with their role on each."""
    rows = (
        await session.exec(
            select(Site, Membership.role)
            .join(Membership, col(Membership.site_id) == col(Site.id))
            .where(col(Membership.user_id) == user.id)
            .order_by(col(Site.slug))
        )
    ).all()
    return [SiteRole(slug=site.slug, name=site.name, role=Role(role)) for site, role in rows]


async def count_statuses(session: AsyncSession, *, site_id: int) -> StatusCounts:
    """Comments per status on a site."""
    rows = (
        await session.exec(
            select(Comment.status, func.count()).where(col(Comment.site_id) == site_id).group_by(col(Comment.status))
        )
    ).all()
    return StatusCounts(**{CommentStatus(status).value: int(n) for status, n in rows})


async def author_histories(session: AsyncSession, *, site_id: int, emails: set[str]) -> dict[str, AuthorHistory]:
    """Per email address, how many comments it has on the site in each status (all of them)."""
    if not emails:
        return {}
    rows = (
        await session.exec(
            select(Comment.author_email, Comment.status, func.count())
            .where(col(Comment.site_id) == site_id, col(Comment.author_email).in_(emails))
            .group_by(col(Comment.author_email), col(Comment.status))
        )
    ).all()
    histories: dict[str, AuthorHistory] = {}
    for email, status, n in rows:
        setattr(histories.setdefault(email, AuthorHistory()), CommentStatus(status).value, int(n))
    return histories


def _others(history: AuthorHistory | None, comment: Comment) -> AuthorHistory:
    """The author's history without the comment itself ("how many approved before")."""
    counts = (history or AuthorHistory()).model_copy()
    current = getattr(counts, comment.status.value)
    setattr(counts, comment.status.value, max(0, current - 1))
    return counts


async def _views(session: AsyncSession, site: Site, rows: list[tuple[Comment, Thread]]) -> list[CommentModeration]:
    histories = await author_histories(
        session, site_id=int(site.id or 0), emails={comment.author_email for comment, _ in rows}
    )
    return [
        CommentModeration.build(
            comment, site=site, thread=thread, history=_others(histories.get(comment.author_email), comment)
        )
        for comment, thread in rows
    ]


async def list_queue(
    session: AsyncSession,
    *,
    member: Member,
    status: CommentStatus = CommentStatus.pending,
    thread_key: str | None = None,
    email: str | None = None,
    text: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reason: str | None = None,
    by_score: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> QueuePage:
    """One page of a site's comments in one status, newest first (or likely-good first), with filters.

    `reason` matches the rule that decided (`links`, `spam_score`, `moderation_keyword`...),
    with or without its detail (`links>=2`). With `by_score` the lowest spam scores come
    first, so the comments most likely to be fine wait least.

    Raises:
        InvalidInput: a malformed cursor.
    """
    score = func.coalesce(col(Comment.spam_score), 0.5)
    query = (
        select(Comment, Thread)
        .join(Thread, col(Thread.id) == col(Comment.thread_id))
        .where(col(Comment.site_id) == member.site_id, col(Comment.status) == status)
        .where(
            _after_score(score, col(Comment.id), cursor)
            if by_score
            else _before(col(Comment.created_at), col(Comment.id), cursor)
        )
    )
    if thread_key:
        key = threads.canonical_key(thread_key, keep_params=member.site.thread_query_params)
        query = query.where(col(Thread.key) == key)
    if reason:
        query = query.where(col(Comment.reason).startswith(_REASON_HEAD.sub("", reason.strip()), autoescape=True))
    if email:
        query = query.where(func.lower(col(Comment.author_email)) == email.strip().lower())
    if text:
        pattern = _like(text.strip())
        in_text = col(Comment.content_raw).ilike(pattern, escape="\\")
        query = query.where(or_(in_text, col(Comment.author_name).ilike(pattern, escape="\\")))
    if since:
        query = query.where(col(Comment.created_at) >= since)
    if until:
        query = query.where(col(Comment.created_at) < until)
    order = (score, col(Comment.id)) if by_score else (col(Comment.created_at).desc(), col(Comment.id).desc())
    query = query.order_by(*order).limit(limit + 1)
    rows = [(c, t) for c, t in (await session.exec(query)).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if more and rows else None
    if last is None:
        next_cursor = None
    elif by_score:
        next_cursor = encode_score_cursor(0.5 if last.spam_score is None else last.spam_score, int(last.id or 0))
    else:
        next_cursor = encode_cursor(last.created_at, int(last.id or 0))
    return QueuePage(
        comments=await _views(session, member.site, rows),
        next_cursor=next_cursor,
        counts=await count_statuses(session, site_id=member.site_id),
    )


async def _scoped(session: AsyncSession, *, user: User, ids: list[int]) -> list[tuple[Comment, Site, Thread, Role]]:
    """The comments among `ids` that the user may act on, with their site, thread and the user's role."""
    query = (
        select(Comment, Site, Thread, Membership.role)
        .join(Site, col(Site.id) == col(Comment.site_id))
        .join(Thread, col(Thread.id) == col(Comment.thread_id))
        .join(Membership, (col(Membership.site_id) == col(Comment.site_id)) & (col(Membership.user_id) == user.id))
        .where(col(Comment.id).in_(ids))
        .order_by(col(Comment.id))
    )
    return [(c, s, t, Role(r)) for c, s, t, r in (await session.exec(query)).all()]


async def _one(session: AsyncSession, *, user: User, comment_id: int) -> tuple[Comment, Site, Thread, Role]:
    found = await _scoped(session, user=user, ids=[comment_id])
    if not found:
        raise NotFound(f"Comment {comment_id} not found.")
    return found[0]


async def get_comment(session: AsyncSession, *, user: User, comment_id: int) -> CommentModeration:
    """One comment as moderators see it.

    Raises:
        NotFound: no such comment on any site the user belongs to.
    """
    comment, site, thread, _role = await _one(session, user=user, comment_id=comment_id)
    return (await _views(session, site, [(comment, thread)]))[0]


def _audit(
    session: AsyncSession, *, user: User, comment: Comment | None, site_id: int, action: str, **change: Any
) -> None:
    session.add(
        AuditEvent(
            site_id=site_id,
            user_id=user.id,
            action=action,
            comment_id=comment.id if comment else None,
            before=change.get("before"),
            after=change.get("after"),
        )
    )


def _set_status(session: AsyncSession, comment: Comment, *, user: User, status: CommentStatus, via: str) -> bool:
    if comment.status == status:
        return False
    before = comment.status
    comment.status = status
    comment.moderated_at = utcnow()
    comment.moderated_by = user.id
    after: dict[str, Any] = {"status": status.value} | ({"via": via} if via != "single" else {})
    _audit(
        session,
        user=user,
        comment=comment,
        site_id=comment.site_id,
        action="status",
        before={"status": before.value},
        after=after,
    )
    return True


async def update_comment(
    session: AsyncSession,
    *,
    user: User,
    comment_id: int,
    status: CommentStatus | None = None,
    content: str | None = None,
) -> CommentModeration:
    """Change a comment's status (approve, spam, trash, restore to pending) and/or its text.

    Edited text is sanitized again with the same cleaner as a new comment.

    Raises:
        NotFound: no such comment on any site the user belongs to.
        InvalidInput: the new content is empty once sanitized.
    """
    comment, site, thread, _role = await _one(session, user=user, comment_id=comment_id)
    changed = False
    if content is not None and content != comment.content_raw:
        html = sanitize.clean(content)
        if not content.strip() or not _TAG.sub("", html).strip():
            raise InvalidInput([FieldError("content", "The comment cannot be empty.")])
        _audit(
            session,
            user=user,
            comment=comment,
            site_id=comment.site_id,
            action="edit",
            before={"content_raw": comment.content_raw},
            after={"content_raw": content},
        )
        comment.content_raw, comment.content_html, comment.updated_at = content, html, utcnow()
        comment.content_hash = text_digest(content)
        changed = True
    if status is not None:
        changed = _set_status(session, comment, user=user, status=status, via="single") or changed
    if changed:
        await spamfilter.learn_from_status(session, comment)
        await session.flush()
        await threads.refresh_thread(session, comment.thread_id)
    return (await _views(session, site, [(comment, thread)]))[0]


async def bulk_update(session: AsyncSession, *, user: User, ids: list[int], status: CommentStatus) -> list[int]:
    """Give many comments one status, all or nothing; returns the ids that actually changed.

    Raises:
        NotFound: any id is unknown or on a site the user does not belong to (then nothing changes).
    """
    wanted = sorted(set(ids))
    found = await _scoped(session, user=user, ids=wanted)
    if len(found) != len(wanted):
        missing = sorted(set(wanted) - {int(c.id or 0) for c, *_ in found})
        raise NotFound(f"Comments not found: {', '.join(map(str, missing[:20]))}.")
    changed = [c for c, *_ in found if _set_status(session, c, user=user, status=status, via="bulk")]
    for comment in changed:
        await spamfilter.learn_from_status(session, comment)
    await session.flush()
    for thread_id in sorted({c.thread_id for c in changed}):
        await threads.refresh_thread(session, thread_id)
    return [int(c.id or 0) for c in changed]


def _subtree(rows: list[tuple[int, int | None, CommentStatus]], root: int) -> list[tuple[int, CommentStatus]]:
    children: dict[int | None, list[tuple[int, CommentStatus]]] = {}
    for comment_id, parent_id, status in rows:
        children.setdefault(parent_id, []).append((comment_id, status))
    found: list[tuple[int, CommentStatus]] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child[0])
    return found


async def delete_comment(session: AsyncSession, *, user: User, comment_id: int) -> list[int]:
    """Delete a spam or trashed comment for good, with its replies (which must be spam or trash too).

    Returns the deleted ids. The audit events stay, holding a snapshot of what was deleted.

    Raises:
        NotFound: no such comment on any site the user belongs to.
        Forbidden: the user is a moderator, not an owner, of the comment's site.
        Conflict: the comment, or one of its replies, is not in spam or trash.
    """
    comment, _site, _thread, role = await _one(session, user=user, comment_id=comment_id)
    if role != Role.owner:
        raise Forbidden("Only the site's owners may delete comments permanently.")
    if comment.status not in DELETABLE:
        raise Conflict("Only comments in spam or trash can be deleted; move it there first.")
    rows = (
        await session.exec(
            select(Comment.id, Comment.parent_id, Comment.status).where(col(Comment.thread_id) == comment.thread_id)
        )
    ).all()
    replies = _subtree([(int(i or 0), p, CommentStatus(s)) for i, p, s in rows], int(comment.id or 0))
    if any(status not in DELETABLE for _, status in replies):
        raise Conflict("It has replies that are not in spam or trash; trash them first, or leave it in the trash.")
    doomed = [int(comment.id or 0), *(i for i, _ in replies)]
    victims = (await session.exec(select(Comment).where(col(Comment.id).in_(doomed)))).all()
    for victim in victims:
        snapshot = {
            "status": victim.status.value,
            "author_name": victim.author_name,
            "author_email": victim.author_email,
            "content_raw": victim.content_raw,
            "thread_id": victim.thread_id,
            "created_at": victim.created_at.isoformat(),
        }
        _audit(session, user=user, comment=victim, site_id=victim.site_id, action="delete", before=snapshot, after=None)
    await session.exec(delete(Comment).where(col(Comment.id).in_(doomed)))
    await threads.refresh_thread(session, comment.thread_id)
    return doomed


async def list_audit(
    session: AsyncSession,
    *,
    member: Member,
    comment_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPage:
    """One page of a site's audit log, newest first, optionally for one comment.

    Raises:
        InvalidInput: a malformed cursor.
    """
    query = (
        select(AuditEvent, User)
        .outerjoin(User, col(User.id) == col(AuditEvent.user_id))
        .where(col(AuditEvent.site_id) == member.site_id)
        .where(_before(col(AuditEvent.created_at), col(AuditEvent.id), cursor))
    )
    if comment_id is not None:
        query = query.where(col(AuditEvent.comment_id) == comment_id)
    query = query.order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc()).limit(limit + 1)
    rows = list((await session.exec(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if more and rows else None
    return AuditPage(
        events=[AuditEntry.build(event, site=member.site, user=who) for event, who in rows],
        next_cursor=encode_cursor(last.created_at, int(last.id or 0)) if last else None,
    )


async def record_event(
    session: AsyncSession, *, member: Member, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    """Audit an action that concerns the site rather than a comment (settings, members)."""
    _audit(session, user=member.user, comment=None, site_id=member.site_id, action=action, before=before, after=after)
