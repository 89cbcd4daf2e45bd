"""Posting a reply: validate, check for abuse, sanitize once, pick a status, store."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select, update

from comments import db, sanitize, security, sites, spamfilter, threads
from comments.errors import CommentsError, FieldError, InvalidInput, ThreadClosed
from comments.models import Comment, CommentStatus, PostedComment, Thread, ident, utcnow
from comments.moderation import notifications
from comments.submission import abuse, rules
from comments.submission.validation import validate_reply
from comments.threads import ThreadRef, recount_thread

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlmodel import Session
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.config import Settings
    from comments.models import Site
    from comments.submission.schemas import ReplyCreate
    from comments.submission.validation import CleanReply

log = logging.getLogger("comments")
PENDING_MESSAGE = "Your comment is awaiting moderation."
MAX_IDEMPOTENCY_KEY = 200
MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; larger ones cannot exist
_READ_ONCE = "comments.read_once"
_THREADS_SEEN = "comments.threads_seen"
T = TypeVar("T")


@dataclass(frozen=True)
class ClientInfo:
    """What the request says about the poster; the raw IP is used for limits and never stored."""

    ip: str | None
    user_agent: str | None
    origin: str | None
    token: str | None
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class NewComment:
    """A reply as just stored: what its answer, the log line and the moderators' notice read.

    Not the ORM object: building a Comment cost 10% of a post's CPU under load, more than
    storing its row. A retried Idempotency-Key answers with the stored Comment instead.
    """

    id: int
    thread_id: int
    parent_id: int | None
    depth: int
    status: CommentStatus
    reason: str | None
    author_name: str
    author_email: str
    author_url: str | None
    content_raw: str
    content_html: str
    created_at: datetime


@dataclass(frozen=True)
class Submitted:
    """A stored reply, its site, and the submitter token that lets its author see it while it is pending."""

    comment: PostedComment
    token: str
    site: Site

    @property
    def message(self) -> str | None:
        """What to tell the reader about their comment's fate (a bot caught by the honeypot is told the same)."""
        return None if self.comment.status == CommentStatus.approved else PENDING_MESSAGE


@dataclass(frozen=True)
class Prepared:
    """A reply that passed every check needing no database, with its html already sanitized."""

    reply: CleanReply
    html: str
    honeypot: bool


@dataclass(frozen=True)
class Classified:
    """The status a new comment is stored with, why, and the spam filter's score."""

    status: CommentStatus
    reason: str | None
    spam_score: float


@dataclass(frozen=True)
class Refusal:
    """Why a post was refused, and the site it was for (None when unknown).

    The site comes back with a refusal too: the answer still needs its CORS headers and
    a form post its link back to the article.
    """

    site: Site | None
    error: CommentsError


@dataclass(frozen=True)
class _Admitted:
    """A post that passed every check made before the writer's lock, its row built but not yet placed."""

    site: Site
    reply: CleanReply
    row: dict[str, Any]
    token: str


class _Refused(Exception):  # internal: carries a Refusal out of a batched write
    def __init__(self, site: Site | None, error: CommentsError) -> None:
        super().__init__(str(error))
        self.refusal = Refusal(site, error)


def prepare_reply(*, settings: Settings, site: Site, data: ReplyCreate, client: ClientInfo) -> Prepared:
    """Origin check, field validation and sanitizing: the CPU-bound part of a post, done before any lock.

    Raises:
        Forbidden: posted from a page of another origin.
        InvalidInput: any field breaks the Leave-a-Reply rules (all are listed).
    """
    own_origin = sites.origin_of(settings.base_url)
    abuse.check_origin(site, client.origin, own_origin=own_origin)
    reply = validate_reply(data, site=site, own_origin=own_origin)
    return Prepared(reply=reply, html=sanitize.clean(reply.content), honeypot=bool(data.leave_blank.strip()))


async def post_reply(
    session: AsyncSession, *, settings: Settings, data: ReplyCreate, client: ClientInfo
) -> Submitted | Refusal:
    """Store a reader's reply (normally `pending`) and announce it; a retried Idempotency-Key gets the first answer.

    Refusals come back as the outcome, never raised: unknown site (NotFound), another
    origin (Forbidden), broken Leave-a-Reply rules or a bad parent (InvalidInput, every
    field listed), closed article (ThreadClosed), flood or hourly limit (TooManyRequests),
    the same author saying exactly this here again (Duplicate).
    """
    admit = partial(_admit, settings=settings, data=data, client=client)
    store = partial(_store, settings=settings, client=client)
    try:
        submitted = await db.read_then_write(session, admit, store)
    except _Refused as refused:
        return refused.refusal
    # A webhook or email, sent by a background task; a no-op unless the comment is pending. The comment
    # is committed by now: a database error while preparing the notice must not turn its 201 into a 500
    # (a retry would then be refused as a duplicate), so it is logged and the notice is skipped.
    try:
        await notifications.notify_pending(session, site=submitted.site, comment=submitted.comment, settings=settings)
    except SQLAlchemyError:
        log.warning("comment %s stored, but its moderation notice could not be prepared", submitted.comment.id)
    return submitted


def _admit(session: Session, *, settings: Settings, data: ReplyCreate, client: ClientInfo) -> _Admitted:
    """Everything before the writer's lock: the site, validation and sanitizing, the spam filter and rules."""
    site: Site | None = None
    try:
        if not data.site.strip():
            raise InvalidInput([FieldError("site", "The site is missing.")])
        site = _site(session, slug=data.site.strip())
        prepared = prepare_reply(settings=settings, site=site, data=data, client=client)
        ip = abuse.anonymize_ip(client.ip)
        verdict = _classify(session, site=site, prepared=prepared, ip=ip)
        token = _submitter_token(settings, site, client)
        row = _draft(prepared, verdict, site=site, settings=settings, client=client, token=token, ip=ip)
        return _Admitted(site, prepared.reply, row, token)
    except CommentsError as exc:
        raise _Refused(site, exc) from exc


def _draft(
    prepared: Prepared,
    verdict: Classified,
    *,
    site: Site,
    settings: Settings,
    client: ClientInfo,
    token: str,
    ip: str | None,
) -> dict[str, Any]:
    """The new comment's row as far as it is known before the writer's lock; _insert places it in its thread.

    Raises:
        InvalidInput: the Idempotency-Key is too long.
    """
    reply = prepared.reply
    return {
        "site_id": ident(site),
        "status": verdict.status,
        "reason": verdict.reason,
        "spam_score": round(verdict.spam_score, 4),
        "author_name": reply.name,
        "author_email": reply.email,
        "author_url": reply.url,
        "content_raw": reply.content,
        "content_html": prepared.html,
        "ip": ip,
        "user_agent": (client.user_agent or "").replace("\x00", "")[:500] or None,
        "submitter_hash": security.token_hash(token),
        "idempotency_key": _idempotency_hash(settings, site, client.idempotency_key),
    }


def _site(session: Session, *, slug: str) -> Site:
    """find_site, once per read transaction: the posts of a batch are mostly for one site."""
    return _once_per_read(session, ("site", slug), lambda: sites.find_site(session, slug=slug))


def _spam_model(session: Session, *, site: Site) -> spamfilter.Model:
    """The site's spam model totals, once per read transaction like the site."""
    site_id = ident(site)
    return _once_per_read(session, ("spam_model", site_id), lambda: spamfilter.load_model(session, site_id=site_id))


def _once_per_read(session: Session, key: tuple[str, object], load: Callable[[], T]) -> T:
    """What `load` returns, read once per read transaction (one snapshot, so it cannot change under a batch)."""
    known: dict[tuple[str, object], Any] = session.info.setdefault(_READ_ONCE, {})
    if key not in known:
        known[key] = load()
    return cast("T", known[key])


def _classify(session: Session, *, site: Site, prepared: Prepared, ip: str | None) -> Classified:
    """The status a new comment gets: honeypot, the site's rules, then the spam filter."""
    reply = prepared.reply
    tokens = spamfilter.features(name=reply.name, email=reply.email, url=reply.url, content=reply.content)
    verdict = spamfilter.score(session, model=_spam_model(session, site=site), tokens=tokens)
    if prepared.honeypot:
        # A honeypot hit is kept as spam (nothing accepted is dropped) and answered like any pending reply.
        return Classified(CommentStatus.spam, "honeypot", verdict.score)
    draft = rules.Draft(
        name=reply.name, email=reply.email, url=reply.url, content=reply.content, html=prepared.html, ip=ip
    )
    decision = rules.decide_status(session, site=site, draft=draft)
    status, reason = spamfilter.decide(site, verdict, decision.status, decision.reason)
    return Classified(status, reason, verdict.score)


def _store(session: Session, admitted: _Admitted, *, settings: Settings, client: ClientInfo) -> Submitted:
    """The post's write, in its own savepoint of a batch; a refusal rolls it back and carries the site out."""
    try:
        return _insert(session, admitted, settings=settings, client=client)
    except CommentsError as exc:
        raise _Refused(admitted.site, exc) from exc


def _insert(session: Session, admitted: _Admitted, *, settings: Settings, client: ClientInfo) -> Submitted:
    site, reply, row = admitted.site, admitted.reply, admitted.row
    site_id = ident(site)
    _serialize_thread(session, site_id=site_id, key=reply.thread)
    if row["idempotency_key"] is not None:
        earlier = session.exec(
            select(Comment).where(
                col(Comment.site_id) == site_id, col(Comment.idempotency_key) == row["idempotency_key"]
            )
        ).first()
        if earlier is not None:
            return Submitted(earlier, admitted.token, site)

    thread = _get_or_create_thread(session, site_id=site_id, reply=reply)
    if not thread.is_open:
        raise ThreadClosed("Comments are closed on this article.")
    parent = _check_parent(session, site=site, thread=thread, parent_id=reply.parent_id)
    abuse.check_rate(session, settings=settings, site_id=site_id, ip=client.ip, email=reply.email)
    abuse.check_duplicate(session, thread_id=thread.id, email=reply.email, content=reply.content)

    now = utcnow()  # when it is stored: times follow commit order
    placed = {
        **row,
        "thread_id": thread.id,
        "parent_id": None if parent is None else parent.id,
        "depth": 0 if parent is None else parent.depth + 1,
        "root_id": None if parent is None else parent.root_id,
        "created_at": now,
        "updated_at": now,
    }
    comment = _insert_comment(session, placed)
    abuse.record_post(session, settings=settings, ip=client.ip)
    if comment.status == CommentStatus.approved:
        recount_thread(session, thread.id)
    session.flush()
    return Submitted(comment, admitted.token, site)


_COMMENT: Any = Comment.__table__  # type: ignore[attr-defined]
_INSERT_COMMENT = sa.insert(_COMMENT).returning(_COMMENT.c.id)
_NEW_COMMENT_FIELDS = [field.name for field in fields(NewComment) if field.name != "id"]
_MAKE_ROOT = sa.update(_COMMENT).where(_COMMENT.c.id == sa.bindparam("comment_id")).values(root_id=_COMMENT.c.id)


def _insert_comment(session: Session, row: dict[str, Any]) -> NewComment:
    """Store a new comment with one prepared INSERT (and, for a root, one UPDATE).

    Core rather than the ORM's unit of work: the insert, the flush to learn the id and the
    second flush for root_id cost 260 us per post that way against 65 us here.
    """
    # The id comes from the database, content_hash from its column default.
    comment_id = session.connection().execute(_INSERT_COMMENT, row).scalar_one()
    if row["parent_id"] is None:
        # A root is its own root; the id exists only after the insert.
        session.connection().execute(_MAKE_ROOT, {"comment_id": comment_id})
    return NewComment(id=comment_id, **{name: row[name] for name in _NEW_COMMENT_FIELDS})


def _serialize_thread(session: Session, *, site_id: int, key: str) -> None:
    """Serialize writers of one thread, so duplicate and flood checks cannot race.

    SQLite already runs one writer at a time (BEGIN IMMEDIATE); PostgreSQL takes a
    transaction-scoped advisory lock on the thread's key.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock_id = zlib.crc32(f"{site_id}\x1f{key}".encode())
        session.exec(select(func.pg_advisory_xact_lock(lock_id)))


def _idempotency_hash(settings: Settings, site: Site, key: str | None) -> str | None:
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput([FieldError("Idempotency-Key", f"Use at most {MAX_IDEMPOTENCY_KEY} characters.")])
    return security.keyed_token(settings.secret_key, "idempotency", site.slug, key)


def _submitter_token(settings: Settings, site: Site, client: ClientInfo) -> str:
    """The submitter token for this reply.

    A token the reader already holds is reused, so all their comments share it; with an
    Idempotency-Key it is derived from the key, so a retry answers with the same token.
    """
    if client.token and 20 <= len(client.token) <= 100 and client.token.isascii():
        return client.token
    if client.idempotency_key:
        return security.keyed_token(settings.secret_key, "submitter", site.slug, client.idempotency_key)
    return security.new_token()


def _get_or_create_thread(session: Session, *, site_id: int, reply: CleanReply) -> ThreadRef:
    """The thread of this article (or the one it was merged into), created by its first comment.

    Race-free without an error path: insert-or-ignore, then read. A title or URL the
    thread still lacks is taken from the post. The posts of one write transaction look a
    thread up once: nobody else can change it meanwhile (SQLite lets one writer in at a time,
    PostgreSQL's writers of a thread queue on its advisory lock), and a post of the batch that
    is undone can only undo what it wrote itself, so only threads that were there before it
    are remembered.
    """
    seen: dict[tuple[int, str], ThreadRef] = session.info.setdefault(_THREADS_SEEN, {})
    key = (site_id, reply.thread)
    thread = seen.get(key) or threads.find_thread_ref(session, site_id=site_id, key=reply.thread)
    if thread is not None:
        seen[key] = thread
    else:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.exec(
            insert(Thread)
            .values(
                site_id=site_id,
                key=reply.thread,
                title=reply.thread_title,
                url=reply.thread_url,
                is_open=True,
                approved_count=0,
                version=1,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["site_id", "key"])
        )
        thread = threads.find_thread_ref(session, site_id=site_id, key=reply.thread)
        if thread is None:
            raise RuntimeError(f"thread {reply.thread!r} was neither found nor created")
    offered = {"title": reply.thread_title, "url": reply.thread_url}
    if fill := {name: value for name, value in offered.items() if value and getattr(thread, name) is None}:
        seen.pop(key, None)  # the fill is this post's own write, and may still be undone
        session.exec(update(Thread).where(col(Thread.id) == thread.id).values(**fill))
    return thread


def _check_parent(session: Session, *, site: Site, thread: ThreadRef, parent_id: int | None) -> Comment | None:
    """A reply's parent must be an approved comment of the same thread, above the site's depth cap."""
    if parent_id is None:
        return None
    parent = session.get(Comment, parent_id) if 0 < parent_id <= MAX_ID else None
    if parent is None or parent.thread_id != thread.id or parent.status != CommentStatus.approved:
        raise InvalidInput(
            [FieldError("parent_id", "The comment you are replying to does not exist or is not approved yet.")]
        )
    if parent.depth + 1 >= site.max_depth:
        raise InvalidInput([FieldError("parent_id", f"Replies can be nested at most {site.max_depth} levels deep.")])
    return parent
