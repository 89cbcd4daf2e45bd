"""Thread bookkeeping shared by every feature that changes what the public sees."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlmodel import col, delete, func, select, update

from comments import db
from comments.errors import FieldError, InvalidInput, NotFound
from comments.models import AuditEvent, Comment, CommentStatus, Thread, ThreadAlias

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlmodel import Session
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
    Rows may come in any order (imports can store children before their parents).
    """
    info = {comment_id: (parent_id, status) for comment_id, parent_id, status in rows}
    known: dict[int, bool] = {}

    def shown(comment_id: int) -> bool:
        chain: list[int] = []
        current: int | None = comment_id
        verdict = True
        while current is not None and current not in known:
            parent_id, status = info.get(current, (None, CommentStatus.trash))
            chain.append(current)
            if status != CommentStatus.approved or len(chain) > len(info):
                verdict = False
                break
            current = parent_id
        else:
            verdict = True if current is None else known[current]
        for member in chain:
            known[member] = verdict and info[member][1] == CommentStatus.approved
        return known[comment_id]

    return {comment_id for comment_id in info if shown(comment_id)}


async def refresh_thread(session: AsyncSession, thread_id: int) -> None:
    """Recount the thread's public comments and bump its version (the read path's ETag).

    Call it in the same transaction as any change to a comment's status, content or
    parent, so every app instance sees the new version at once and no cache serves stale html.
    """
    await db.run_sync(session, recount_thread, thread_id)


def recount_thread(session: Session, thread_id: int) -> None:
    """refresh_thread() inside a synchronous write transaction (db.read_then_write)."""
    rows = session.exec(
        select(Comment.id, Comment.parent_id, Comment.status).where(col(Comment.thread_id) == thread_id)
    ).all()
    count = len(visible_ids([(int(i), p, CommentStatus(s)) for i, p, s in rows if i is not None]))
    session.exec(
        update(Thread).where(col(Thread.id) == thread_id).values(approved_count=count, version=col(Thread.version) + 1)
    )


# Query parameters that never identify an article: analytics and ad-click trackers.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "igshid",
        "_ga",
        "_gl",
        "twclid",
        "ttclid",
        "li_fat_id",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "s_cid",
        "spm",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "srsltid",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
INDEX_FILES = frozenset({"index.html", "index.htm", "index.php", "index.shtml", "default.aspx", "default.htm"})
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


def canonical_key(raw: str, *, keep_params: Collection[str] = ()) -> str:
    """The stable identity of an article, so URL noise does not split its comments into several threads.

    A URL or an absolute path loses its scheme, host, port and fragment (the key is the
    path on the site), duplicate slashes, a trailing slash and index files such as
    `index.html`; percent-escapes are normalized. Query parameters: when the site lists
    the ones that identify an article (`keep_params`), only those are kept; otherwise
    known trackers (`utm_*`, `fbclid`, `gclid`, ...) are dropped and the rest kept.
    Anything else (an opaque id like "article-123") is kept as given.
    """
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        path, query = parts.path, parts.query
    elif text.startswith("/"):
        parts = urlsplit("http://host" + re.sub(r"^/+", "/", text))
        path, query = parts.path, parts.query
    else:
        return text
    path = quote(unquote(re.sub(r"/{2,}", "/", path or "/")), safe=_SAFE_PATH)
    head, _, last = path.rpartition("/")
    if last.lower() in INDEX_FILES:
        path = head + "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    pairs = parse_qsl(query, keep_blank_values=True)
    if keep_params:
        pairs = [(k, v) for k, v in pairs if k in keep_params]
    else:
        pairs = [
            (k, v) for k, v in pairs if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
        ]
    return path + ("?" + urlencode(sorted(pairs)) if pairs else "")


def _is_tracker(name: str) -> bool:
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def needs_site_params(raw: str) -> bool:
    """True when canonicalizing `raw` depends on the site's list of meaningful query parameters."""
    return "?" in raw


# Built once (constructing a statement costs more than running it on the write path).
_ALIAS_OF = select(ThreadAlias.thread_id).where(
    col(ThreadAlias.site_id) == bindparam("site_id"), col(ThreadAlias.key) == bindparam("key")
)


class ThreadRef(NamedTuple):
    """What posting needs of a thread, read as one row instead of an ORM object."""

    id: int
    is_open: bool
    title: str | None
    url: str | None


_THREAD: Any = Thread.__table__  # type: ignore[attr-defined]
_REF = sa.select(_THREAD.c.id, _THREAD.c.is_open, _THREAD.c.title, _THREAD.c.url)
_REF_BY_KEY = _REF.where(_THREAD.c.site_id == bindparam("site_id"), _THREAD.c.key == bindparam("key"))
_REF_BY_ID = _REF.where(_THREAD.c.id == bindparam("thread_id"))


def find_thread_ref(session: Session, *, site_id: int, key: str) -> ThreadRef | None:
    """The thread with this canonical key, or the one it was merged into (synchronous: see db.run_sync)."""
    where = {"site_id": site_id, "key": key}
    connection = session.connection()
    row = connection.execute(_REF_BY_KEY, where).first()
    if row is None:
        alias = connection.execute(_ALIAS_OF, where).first()
        row = None if alias is None else connection.execute(_REF_BY_ID, {"thread_id": alias[0]}).first()
    return None if row is None else ThreadRef(*row)


def find_thread(session: Session, *, site_id: int, key: str) -> Thread | None:
    """find_thread_ref(), loaded as the ORM object."""
    ref = find_thread_ref(session, site_id=site_id, key=key)
    return None if ref is None else session.get(Thread, ref.id)


async def rebuild_tree(session: AsyncSession, thread_id: int) -> None:
    """Recompute every comment's depth and root from its parent (after deletions or a merge)."""
    rows = (
        await session.exec(
            select(Comment.id, Comment.parent_id, Comment.depth, Comment.root_id).where(
                col(Comment.thread_id) == thread_id
            )
        )
    ).all()
    parent_of = {i: p for i, p, _, _ in rows if i is not None}
    for comment_id, _parent, depth, root in rows:
        if comment_id is None:
            continue
        chain = [comment_id]
        while parent_of.get(chain[-1]) is not None and len(chain) <= len(parent_of):
            chain.append(parent_of[chain[-1]])  # type: ignore[arg-type]
        new_depth, new_root = len(chain) - 1, chain[-1]
        if (new_depth, new_root) != (depth, root):
            await session.exec(
                update(Comment).where(col(Comment.id) == comment_id).values(depth=new_depth, root_id=new_root)
            )


async def delete_comments(session: AsyncSession, comment_ids: Collection[int]) -> set[int]:
    """Delete comments for good; their replies move up to the deleted comment's parent, so none is lost.

    Returns the ids of the threads touched (already recounted and re-versioned).
    """
    if not comment_ids:
        return set()
    doomed = (
        await session.exec(
            select(Comment.id, Comment.parent_id, Comment.thread_id).where(col(Comment.id).in_(comment_ids))
        )
    ).all()
    gone = {i for i, _, _ in doomed}
    parent_of = {i: p for i, p, _ in doomed}
    for comment_id, _parent, _thread in doomed:
        new_parent = parent_of[comment_id]
        while new_parent in gone:
            new_parent = parent_of[new_parent]
        await session.exec(update(Comment).where(col(Comment.parent_id) == comment_id).values(parent_id=new_parent))
    await session.exec(delete(Comment).where(col(Comment.id).in_(gone)))
    threads = {t for _, _, t in doomed}
    for thread_id in threads:
        await rebuild_tree(session, thread_id)
        await refresh_thread(session, thread_id)
    return threads


async def merge_threads(
    session: AsyncSession, *, site_id: int, source_key: str, target_key: str, actor_id: int | None = None
) -> Thread:
    """Move every comment of one thread into another and keep the old key (and its aliases) resolving.

    Raises:
        NotFound: either key names no thread of this site.
        InvalidInput: both keys name the same thread.
    """
    source = await db.run_sync(session, find_thread, site_id=site_id, key=source_key)
    target = await db.run_sync(session, find_thread, site_id=site_id, key=target_key)
    if source is None or target is None or source.id is None or target.id is None:
        missing = source_key if source is None else target_key
        raise NotFound(f"No thread with the key {missing!r}.")
    if source.id == target.id:
        raise InvalidInput([FieldError("thread", "Both keys already name the same thread.")])
    moved = (
        await session.exec(select(func.count()).select_from(Comment).where(col(Comment.thread_id) == source.id))
    ).one()
    await session.exec(update(Comment).where(col(Comment.thread_id) == source.id).values(thread_id=target.id))
    await session.exec(update(ThreadAlias).where(col(ThreadAlias.thread_id) == source.id).values(thread_id=target.id))
    session.add(ThreadAlias(site_id=site_id, key=source.key, thread_id=target.id))
    session.add(
        AuditEvent(
            site_id=site_id,
            user_id=actor_id,
            action="thread_merge",
            before={"from": source.key, "into": target.key},
            after={"comments_moved": moved},
        )
    )
    await session.delete(source)
    await session.flush()
    await refresh_thread(session, target.id)
    return target
