"""Reading threads: one indexed query per page, encoded once and cached per thread version."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, bindparam, create_engine, event, or_, select, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import col

from comments import sites, threads
from comments.errors import FieldError, InvalidInput, NotFound
from comments.models import Comment, CommentStatus, PostedComment, Site, Thread, ThreadAlias
from comments.widget.schemas import AuthorPublic, CommentPublic, ThreadCounts, ThreadPage, ThreadPublic

if TYPE_CHECKING:
    from sqlalchemy import Connection, Executable, Result, Select, Table
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.config import Settings

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_COUNT_THREADS = 100
PAGE_CACHE_SIZE = 1024
PAGE_CACHE_BYTES = 8 * 1024 * 1024


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
    """Encoded pages keyed by thread version: a moderation change bumps the version, so no entry is ever stale.

    Bounded by entries and by bytes, so RSS per worker stays flat however many threads are
    read (a 200-comment page is ~130 KB). Only the bytes are kept: the decoded page would
    take several times more memory and give the garbage collector thousands of objects to
    walk on every full collection.
    """

    def __init__(self, size: int = PAGE_CACHE_SIZE, max_bytes: int = PAGE_CACHE_BYTES) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._pages: OrderedDict[tuple[int, int, str | None, int], bytes] = OrderedDict()

    def get(self, key: tuple[int, int, str | None, int]) -> bytes | None:
        """The cached page, marked as recently used."""
        found = self._pages.get(key)
        if found is not None:
            self._pages.move_to_end(key)
        return found

    def put(self, key: tuple[int, int, str | None, int], encoded: bytes) -> None:
        """Remember a page, forgetting the least recently used beyond the size or the byte budget."""
        replaced = self._pages.pop(key, None)
        if replaced is not None:
            self._bytes -= len(replaced)
        self._pages[key] = encoded
        self._bytes += len(encoded)
        while self._pages and (len(self._pages) > self._size or self._bytes > self._max_bytes):
            self._bytes -= len(self._pages.popitem(last=False)[1])


async def thread_state(session: AsyncSession, *, site_slug: str, key: str) -> ThreadState:
    """The site and (if it exists) the thread, found by canonical key or by an alias left by a merge.

    An unknown thread reads as an open, empty one. One query, unless the key has a query
    string: then the site's meaningful parameters are read first to canonicalize it.

    Raises:
        NotFound: unknown site.
        InvalidInput: the key holds characters no thread key can have.
    """
    return await _thread_state(_session_rows(session), site_slug=site_slug, key=key)


async def _thread_state(rows: Rows, *, site_slug: str, key: str) -> ThreadState:
    threads.check_keys([key])
    if not sites.is_slug(site_slug):
        raise NotFound(f"Unknown site: {site_slug!r}.")
    keep: list[str] = []
    if threads.needs_site_params(key):
        found = await rows(select(_S.thread_query_params).where(_S.slug == site_slug), None)
        keep = (found[0][0] if found else None) or []
    key = threads.canonical_key(key, keep_params=keep)
    found = await rows(_STATE_STATEMENT, {"key": key, "slug": site_slug})
    return _state_from_row(found[0] if found else None, site_slug=site_slug, key=key)


def _state_from_row(row: Any, *, site_slug: str, key: str) -> ThreadState:
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


class StateReader:
    """The read path's one query per request, without an ORM session or a transaction around it.

    Every public read asks the database for the thread's current version (so no process
    ever serves a stale page: a moderation action on any instance bumps the version in
    the database, and the very next read anywhere sees it). This runs the same statements
    as thread_state() and count_threads(), made cheap:

    - SQLite: a synchronous SQLAlchemy connection of this process (pysqlite, autocommit,
      read-only), queried on the event loop. An indexed lookup takes microseconds, far
      less than aiosqlite's hand-off to a thread and back for BEGIN, execute, fetch and
      ROLLBACK. In WAL mode readers never wait for the writer, and each statement sees
      the latest commit.
    - PostgreSQL: one pooled connection in AUTOCOMMIT, so a lookup is one round trip
      instead of BEGIN, query, COMMIT.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        url = make_url(settings.resolved_database_url)
        database = url.database if url.get_backend_name() == "sqlite" else None
        self._sqlite_path = database if database and database != ":memory:" else None
        self._sync: Connection | None = None
        self._stamp_cursor: Any = None
        self._pool_size = settings.db_pool_size
        self._autocommit: AsyncEngine | None = None

    @property
    def has_stamp(self) -> bool:
        """Whether database_stamp() is available (a SQLite database file)."""
        return self._sqlite_path is not None

    def database_stamp(self) -> int:
        """SQLite's data_version: a number that changes whenever any connection, in any process, commits.

        A pragma on this process's read-only connection: microseconds, no table read.
        """
        if self._stamp_cursor is None:
            self._stamp_cursor = self._sqlite_connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return int(self._stamp_cursor.execute("PRAGMA data_version").fetchone()[0])

    async def thread_state(self, *, site_slug: str, key: str) -> ThreadState:
        """The site and thread exactly as the module-level `thread_state` reads them.

        Raises:
            NotFound: unknown site.
        """
        return await _thread_state(self._rows, site_slug=site_slug, key=key)

    async def counts(self, *, site_slug: str, keys: list[str]) -> tuple[ThreadCounts, list[str]]:
        """Like count_threads(), plus the site's origins (for CORS).

        Raises:
            NotFound: unknown site.
            InvalidInput: no thread, or too many.
        """
        return await _count_threads(self._rows, site_slug=site_slug, keys=keys)

    async def _rows(self, statement: Executable, params: dict[str, Any] | None) -> list[Any]:
        if self._sqlite_path is not None:
            return list(self._sqlite_connection().execute(statement, params).all())
        if self._autocommit is None:
            # Its own pool, AUTOCOMMIT from the start and without pre-ping (switching the isolation
            # level on every checkout and pinging first cost extra round trips per read), and no
            # overflow: an overflow connection is opened and closed per use, which under a burst
            # cost more than the query; a lookup waits a fraction of a millisecond for a pooled one.
            self._autocommit = create_async_engine(
                self._engine.url, pool_size=self._pool_size, max_overflow=0, isolation_level="AUTOCOMMIT"
            )
        async with self._autocommit.connect() as connection:
            return list((await connection.execute(statement, params)).all())

    def _sqlite_connection(self) -> Connection:
        if self._sync is None:
            engine = create_engine(
                f"sqlite:///{self._sqlite_path}",
                poolclass=StaticPool,
                isolation_level="AUTOCOMMIT",  # no BEGIN: every SELECT reads the newest committed state
                connect_args={"check_same_thread": False},
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.execute("PRAGMA query_only=ON")
                cursor.close()

            self._sync = engine.connect()
        return self._sync

    async def close(self) -> None:
        """Close the reader's connections (app shutdown)."""
        if self._stamp_cursor is not None:
            self._stamp_cursor.close()
            self._stamp_cursor = None
        if self._sync is not None:
            self._sync.close()
            self._sync.engine.dispose()
            self._sync = None
        if self._autocommit is not None:
            await self._autocommit.dispose()
            self._autocommit = None


# Core column collections: the read path selects plain rows, typed as SQLAlchemy columns.
_SITE: Table = Site.__table__  # type: ignore[attr-defined]
_THREAD: Table = Thread.__table__  # type: ignore[attr-defined]
_ALIAS: Table = ThreadAlias.__table__  # type: ignore[attr-defined]
_S, _T, _A, _C = _SITE.c, _THREAD.c, _ALIAS.c, Comment.__table__.c  # type: ignore[attr-defined]


async def _core(session: AsyncSession, statement: Executable, params: dict[str, Any] | None = None) -> Result[Any]:
    """Run a Core query on the session's connection: rows, not ORM objects (the read path's hot loop)."""
    return await (await session.connection()).execute(statement, params)


# Runs a statement (with optional parameters) somewhere and returns all its rows.
Rows = Callable[["Executable", dict[str, Any] | None], Awaitable[list[Any]]]


def _session_rows(session: AsyncSession) -> Rows:
    async def rows(statement: Executable, params: dict[str, Any] | None) -> list[Any]:
        return list((await _core(session, statement, params)).all())

    return rows


# The thread lookup every read starts with: built once, run with {"key", "slug"}.
_STATE_STATEMENT = (
    select(_S.id, _S.origins, _S.max_depth, _T.id, _T.version, _T.title, _T.url, _T.is_open, _T.approved_count)
    .select_from(_SITE)
    .outerjoin(_ALIAS, and_(_A.site_id == _S.id, _A.key == bindparam("key")))
    .outerjoin(_THREAD, and_(_T.site_id == _S.id, or_(_T.key == bindparam("key"), _T.id == _A.thread_id)))
    .where(_S.slug == bindparam("slug"))
    .limit(1)
)


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


def public_comment(comment: PostedComment) -> CommentPublic:
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
    roots: list[Any] = list((await _core(session, roots_statement(state.thread_id, limit + 1, position))).all())
    has_more = len(roots) > limit
    roots = roots[:limit]
    root_ids: list[int] = [r[0] for r in roots]
    rows: list[Any] = []
    if root_ids:
        rows = list((await _core(session, replies_statement(state.thread_id, root_ids))).all())
    if submitter_hash is not None:
        rows += await _own_pending(
            session, thread_id=state.thread_id, submitter_hash=submitter_hash, root_ids=root_ids, last_page=not has_more
        )
        rows.sort(key=lambda r: (r.created_at, r.id))
    next_cursor = encode_cursor(roots[-1][1], roots[-1][0]) if has_more else None
    return ThreadPage(
        thread=state.public, comments=_display_order(rows, root_ids), next_cursor=next_cursor, max_depth=state.max_depth
    )


def roots_statement(thread_id: int, limit: int, position: tuple[datetime, int] | None) -> Select[int | None, datetime]:
    """A page of a thread's approved roots in time order, after a keyset position (ix_comment_thread_status_root)."""
    query = (
        select(col(Comment.id), col(Comment.created_at))
        .where(
            col(Comment.thread_id) == thread_id,
            col(Comment.status) == CommentStatus.approved,
            col(Comment.parent_id).is_(None),
        )
        .order_by(col(Comment.created_at), col(Comment.id))
        .limit(limit)
    )
    if position is not None:
        query = query.where(tuple_(col(Comment.created_at), col(Comment.id)) > tuple_(*position))
    return query


def replies_statement(thread_id: int, root_ids: list[int]) -> Executable:
    """The approved comments under these roots, roots included (ix_comment_thread_status_root)."""
    return (
        select(*_COLUMNS)
        .where(
            col(Comment.thread_id) == thread_id,
            col(Comment.status) == CommentStatus.approved,
            col(Comment.root_id).in_(root_ids),
        )
        .order_by(col(Comment.created_at), col(Comment.id))
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
    cached = cached_page(cache, state=state, cursor=cursor, limit=limit)
    if cached is not None:
        return cached
    page = await load_page(session, state=state, cursor=cursor, limit=limit)
    encoded = _encoder.encode(page)
    if state.thread_id is not None:
        cache.put((state.thread_id, state.version, cursor, limit), encoded)
    return encoded


def cached_page(cache: PageCache, *, state: ThreadState, cursor: str | None, limit: int) -> bytes | None:
    """The encoded page of exactly this thread version, if this process has built it before."""
    if state.thread_id is None:
        return None
    return cache.get((state.thread_id, state.version, cursor, limit))


def encode_page(page: ThreadPage) -> bytes:
    """JSON bytes of a page (the submitter's own view, which is never cached)."""
    return _encoder.encode(page)


async def count_threads(session: AsyncSession, *, site_slug: str, keys: list[str]) -> ThreadCounts:
    """Public counts for up to MAX_COUNT_THREADS threads (by key or merged-away alias); unknown threads count 0.

    Raises:
        NotFound: unknown site.
        InvalidInput: no thread, or too many.
    """
    counts, _origins_of_site = await _count_threads(_session_rows(session), site_slug=site_slug, keys=keys)
    return counts


async def _count_threads(rows: Rows, *, site_slug: str, keys: list[str]) -> tuple[ThreadCounts, list[str]]:
    """Counts, plus the site's origins for CORS, through any way of running a statement."""
    _check_count_keys(keys)
    threads.check_keys(keys)
    if not sites.is_slug(site_slug):
        raise NotFound(f"Unknown site: {site_slug!r}.")
    found_site = await rows(select(_S.id, _S.thread_query_params, _S.origins).where(_S.slug == site_slug), None)
    if not found_site:
        raise NotFound(f"Unknown site: {site_slug!r}.")
    site_id, keep, origins = found_site[0]
    canonical = {key: threads.canonical_key(key, keep_params=keep or []) for key in keys}
    wanted = set(canonical.values())
    direct = select(_T.key, _T.approved_count).where(_T.site_id == site_id, _T.key.in_(wanted))
    aliased = (
        select(_A.key, _T.approved_count)
        .join(_THREAD, _T.id == _A.thread_id)
        .where(_A.site_id == site_id, _A.key.in_(wanted))
    )
    found = {row[0]: row[1] for row in await rows(direct.union_all(aliased), None)}
    counts = {key: found.get(canonical[key], 0) for key in keys}
    return ThreadCounts(counts=counts), list(origins)


def _check_count_keys(keys: list[str]) -> None:
    if not keys or len(keys) > MAX_COUNT_THREADS:
        raise InvalidInput([FieldError("thread", f"Ask for 1 to {MAX_COUNT_THREADS} threads at a time.")])
