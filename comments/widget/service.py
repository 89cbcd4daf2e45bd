"""Reading threads: one indexed query per page, encoded once and cached per thread version."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, or_, select, tuple_
from sqlmodel import col

from comments import sites, threads
from comments.errors import FieldError, InvalidInput, NotFound
from comments.models import Comment, CommentStatus, Site, Thread, ThreadAlias
from comments.widget.schemas import AuthorPublic, CommentPublic, ThreadCounts, ThreadPage, ThreadPublic

if TYPE_CHECKING:
    from sqlalchemy import Executable, Result, Table
    from sqlmodel.ext.asyncio.session import AsyncSession

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_COUNT_THREADS = 100
PAGE_CACHE_SIZE = 1024


@dataclass(frozen=True)
class ThreadState:
    """Everything about a thread the read path needs before touching comments (one query)."""

    site_id: int
    origins: list[str]
    max_depth: int
    thread_id: int | None
    version: int
    public: ThreadPublic


class PageCache:
    """Encoded pages keyed by thread version: a moderation change bumps the version, so no entry is ever stale."""

    def __init__(self, size: int = PAGE_CACHE_SIZE) -> None:
        self._size = size
        self._pages: OrderedDict[tuple[int, int, str | None, int], tuple[ThreadPage, bytes]] = OrderedDict()

    def get(self, key: tuple[int, int, str | None, int]) -> tuple[ThreadPage, bytes] | None:
        """The cached page, marked as recently used."""
        found = self._pages.get(key)
        if found is not None:
            self._pages.move_to_end(key)
        return found

    def put(self, key: tuple[int, int, str | None, int], value: tuple[ThreadPage, bytes]) -> None:
        """Remember a page, forgetting the least recently used beyond the size."""
        self._pages[key] = value
        if len(self._pages) > self._size:
            self._pages.popitem(last=False)


async def thread_state(session: AsyncSession, *, site_slug: str, key: str) -> ThreadState:
    """The site and (if it exists) the thread, found by canonical key or by an alias left by a merge.

    An unknown thread reads as an open, empty one. One query, unless the key has a query
    string: then the site's meaningful parameters are read first to canonicalize it.

    Raises:
        NotFound: unknown site.
        InvalidInput: the key holds characters no thread key can have.
    """
    threads.check_keys([key])
    if not sites.is_slug(site_slug):
        raise NotFound(f"Unknown site: {site_slug!r}.")
    keep: list[str] = []
    if threads.needs_site_params(key):
        keep = (await _core(session, select(_S.thread_query_params).where(_S.slug == site_slug))).scalar() or []
    key = threads.canonical_key(key, keep_params=keep)
    row: Any = (
        await _core(
            session,
            select(_S.id, _S.origins, _S.max_depth, _T.id, _T.version, _T.title, _T.url, _T.is_open, _T.approved_count)
            .select_from(_SITE)
            .outerjoin(_ALIAS, and_(_A.site_id == _S.id, _A.key == key))
            .outerjoin(_THREAD, and_(_T.site_id == _S.id, or_(_T.key == key, _T.id == _A.thread_id)))
            .where(_S.slug == site_slug)
            .limit(1),
        )
    ).first()
    if row is None:
        raise NotFound(f"Unknown site: {site_slug!r}.")
    site_id, origins, max_depth, thread_id, version, title, url, is_open, count = row
    public = ThreadPublic(
        key=key, title=title, url=url, open=True if is_open is None else bool(is_open), count=count or 0
    )
    return ThreadState(
        site_id=site_id,
        origins=list(origins),
        max_depth=max_depth,
        thread_id=thread_id,
        version=version or 0,
        public=public,
    )


# Core column collections: the read path selects plain rows, typed as SQLAlchemy columns.
_SITE: Table = Site.__table__  # type: ignore[attr-defined]
_THREAD: Table = Thread.__table__  # type: ignore[attr-defined]
_ALIAS: Table = ThreadAlias.__table__  # type: ignore[attr-defined]
_S, _T, _A, _C = _SITE.c, _THREAD.c, _ALIAS.c, Comment.__table__.c  # type: ignore[attr-defined]


async def _core(session: AsyncSession, statement: Executable) -> Result[Any]:
    """Run a Core query on the session's connection: rows, not ORM objects (the read path's hot loop)."""
    return await (await session.connection()).execute(statement)


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """Parse the opaque cursor handed out as `next_cursor`.

    Raises:
        InvalidInput: the cursor was not made by us.
    """
    if not cursor:
        return None
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode() + b"==").decode().partition("|")
        return datetime.fromisoformat(stamp), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            [FieldError("cursor", "This cursor is not valid; start again from the first page.")]
        ) from exc


def encode_cursor(created_at: datetime, ident: int) -> str:
    """An opaque keyset position: the last root's time and id."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{ident}".encode()).decode().rstrip("=")


def public_comment(comment: Comment) -> CommentPublic:
    """What the public may see of one comment (never the email, IP or raw text)."""
    if comment.id is None:
        raise RuntimeError("comment is not stored yet")
    return CommentPublic(
        id=comment.id,
        parent_id=comment.parent_id,
        depth=comment.depth,
        author=AuthorPublic(name=comment.author_name, url=comment.author_url),
        html=comment.content_html,
        created_at=comment.created_at,
        # A honeypot catch is stored as spam but must look like any pending reply to the bot.
        status=CommentStatus.approved if comment.status == CommentStatus.approved else CommentStatus.pending,
    )


_COLUMNS = (
    _C.id,
    _C.parent_id,
    _C.root_id,
    _C.depth,
    _C.author_name,
    _C.author_url,
    _C.content_html,
    _C.created_at,
    _C.status,
)


async def load_page(
    session: AsyncSession,
    *,
    state: ThreadState,
    cursor: str | None,
    limit: int,
    submitter_hash: str | None = None,
) -> ThreadPage:
    """One page of approved comments (paginated over roots), plus the submitter's own pending ones."""
    position = decode_cursor(cursor)
    if state.thread_id is None:
        return ThreadPage(thread=state.public, comments=[], next_cursor=None, max_depth=state.max_depth)
    roots_query = (
        select(col(Comment.id), col(Comment.created_at))
        .where(
            col(Comment.thread_id) == state.thread_id,
            col(Comment.status) == CommentStatus.approved,
            col(Comment.parent_id).is_(None),
        )
        .order_by(col(Comment.created_at), col(Comment.id))
        .limit(limit + 1)
    )
    if position is not None:
        roots_query = roots_query.where(tuple_(col(Comment.created_at), col(Comment.id)) > tuple_(*position))
    roots: list[Any] = list((await _core(session, roots_query)).all())
    has_more = len(roots) > limit
    roots = roots[:limit]
    root_ids: list[int] = [r[0] for r in roots]
    rows: list[Any] = []
    if root_ids:
        rows = list(
            (
                await _core(
                    session,
                    select(*_COLUMNS)
                    .where(
                        col(Comment.thread_id) == state.thread_id,
                        col(Comment.status) == CommentStatus.approved,
                        col(Comment.root_id).in_(root_ids),
                    )
                    .order_by(col(Comment.created_at), col(Comment.id)),
                )
            ).all()
        )
    if submitter_hash is not None:
        rows += await _own_pending(
            session, thread_id=state.thread_id, submitter_hash=submitter_hash, root_ids=root_ids, last_page=not has_more
        )
        rows.sort(key=lambda r: (r.created_at, r.id))
    next_cursor = encode_cursor(roots[-1][1], roots[-1][0]) if has_more else None
    return ThreadPage(
        thread=state.public, comments=_display_order(rows, root_ids), next_cursor=next_cursor, max_depth=state.max_depth
    )


async def _own_pending(
    session: AsyncSession, *, thread_id: int, submitter_hash: str, root_ids: list[int], last_page: bool
) -> list[Any]:
    """The submitter's pending comments that belong on this page; new roots go on the last page."""
    in_page = col(Comment.root_id).in_(root_ids) if root_ids else None
    new_root = col(Comment.parent_id).is_(None) if last_page else None
    placement = [c for c in (in_page, new_root) if c is not None]
    if not placement:
        return []
    return list(
        (
            await _core(
                session,
                select(*_COLUMNS).where(
                    col(Comment.thread_id) == thread_id,
                    col(Comment.status) == CommentStatus.pending,
                    col(Comment.submitter_hash) == submitter_hash,
                    or_(*placement),
                ),
            )
        ).all()
    )


def _display_order(rows: list[Any], root_ids: list[int]) -> list[CommentPublic]:
    """Each root followed by its replies depth-first; a reply whose parent is not shown is hidden with it."""
    children: dict[int | None, list[Any]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    page_roots = set(root_ids)
    stack = list(reversed([r for r in children.get(None, []) if r.id in page_roots or r.status != "approved"]))
    ordered: list[CommentPublic] = []
    while stack:
        row = stack.pop()
        ordered.append(
            CommentPublic(
                id=row.id,
                parent_id=row.parent_id,
                depth=row.depth,
                author=AuthorPublic(name=row.author_name, url=row.author_url),
                html=row.content_html,
                created_at=row.created_at,
                status=CommentStatus(row.status),
            )
        )
        stack.extend(reversed(children.get(row.id, [])))
    return ordered


_encoder = msgspec.json.Encoder()


async def read_page(
    session: AsyncSession, cache: PageCache, *, state: ThreadState, cursor: str | None, limit: int
) -> bytes:
    """The public (token-less) page as JSON bytes, from the cache when this thread version was read before."""
    key = (state.thread_id or 0, state.version, cursor, limit)
    cached = cache.get(key) if state.thread_id is not None else None
    if cached is not None:
        return cached[1]
    page = await load_page(session, state=state, cursor=cursor, limit=limit)
    encoded = _encoder.encode(page)
    if state.thread_id is not None:
        cache.put(key, (page, encoded))
    return encoded


def encode_page(page: ThreadPage) -> bytes:
    """JSON bytes of a page (the submitter's own view, which is never cached)."""
    return _encoder.encode(page)


async def count_threads(session: AsyncSession, *, site_slug: str, keys: list[str]) -> ThreadCounts:
    """Public counts for up to MAX_COUNT_THREADS threads; unknown threads count 0.

    Raises:
        NotFound: unknown site.
        InvalidInput: no thread, or too many.
    """
    if not keys or len(keys) > MAX_COUNT_THREADS:
        raise InvalidInput([FieldError("thread", f"Ask for 1 to {MAX_COUNT_THREADS} threads at a time.")])
    threads.check_keys(keys)
    if not sites.is_slug(site_slug):
        raise NotFound(f"Unknown site: {site_slug!r}.")
    site: Any = (await _core(session, select(_S.id, _S.thread_query_params).where(_S.slug == site_slug))).first()
    if site is None:
        raise NotFound(f"Unknown site: {site_slug!r}.")
    canonical = {key: threads.canonical_key(key, keep_params=site.thread_query_params) for key in keys}
    wanted = set(canonical.values())
    direct = select(_T.key, _T.approved_count).where(_T.site_id == site.id, _T.key.in_(wanted))
    aliased = (
        select(_A.key, _T.approved_count)
        .join(_THREAD, _T.id == _A.thread_id)
        .where(_A.site_id == site.id, _A.key.in_(wanted))
    )
    rows: list[Any] = list((await _core(session, direct.union_all(aliased))).all())
    found = {row[0]: row[1] for row in rows}
    counts = {key: found.get(canonical[key], 0) for key in keys}
    return ThreadCounts(counts=counts)
