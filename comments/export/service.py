"""Streamed export and transactional import of a site's comments."""

from __future__ import annotations

import asyncio
import contextlib
from itertools import islice
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from comments import db, sanitize, threads
from comments.errors import ImportFailed, NotFound
from comments.export import csv_format, disqus, jsonl, wxr
from comments.export.schemas import (
    PERSONAL_COLUMNS,
    RECORD_COLUMNS,
    ExportFormat,
    ExportOptions,
    ImportFormat,
    ImportReport,
)
from comments.models import Comment, Thread, ThreadAlias, ident

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence

    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.export.schemas import ImportedComment, ImportedThread
    from comments.models import Site

# Rows per round trip: large enough that per-batch overhead vanishes, small enough for flat memory.
EXPORT_BATCH = 2000
IMPORT_BATCH = 500
LOOKUP_CHUNK = 500  # ids or keys per IN (...) list

COMMENT = Comment.__table__  # type: ignore[attr-defined]
THREAD = Thread.__table__  # type: ignore[attr-defined]


class ExportWriter(Protocol):
    """A format: bytes before the first row, for each batch of rows, and after the last."""

    media_type: str
    extension: str

    def begin(self) -> bytes: ...
    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes: ...
    def end(self) -> bytes: ...


# Timestamps leave the database already as RFC 3339 text (`2026-11-25T10:00:00.000000Z`, identical on
# both backends): parsing a million rows into datetimes only to format them again was a third of
# the export's time on SQLite, where they are stored as `2026-11-25 10:00:00.000000`.
TIMESTAMP_COLUMNS = ("created_at", "updated_at", "moderated_at")


def _rfc3339(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    if dialect == "sqlite":
        return sa.func.replace(sa.type_coerce(column, sa.String), " ", "T", type_=sa.String) + "Z"
    utc = sa.func.timezone("UTC", column)
    return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', type_=sa.String)


def _column_expressions(site: Site, dialect: str) -> dict[str, sa.ColumnElement[Any]]:
    c, t = COMMENT.c, THREAD.c
    names = {name: c[name] for name in RECORD_COLUMNS if name in c}
    names |= {name: _rfc3339(c[name], dialect) for name in TIMESTAMP_COLUMNS}
    return names | {
        "status": sa.type_coerce(c.status, sa.String),  # the stored value is the enum's value
        "site": sa.literal(site.slug, sa.String),
        "thread_id": c.thread_id,
        "thread_key": t.key,
        "thread_title": t.title,
        "thread_url": t.url,
        "thread_is_open": t.is_open,
        "thread_created_at": _rfc3339(t.created_at, dialect),
    }


def export_columns(fmt: ExportFormat, *, personal_data: bool) -> tuple[str, ...]:
    """The columns a format writes, without the personal ones when they are left out."""
    columns = wxr.COLUMNS if fmt == ExportFormat.wxr else RECORD_COLUMNS
    return tuple(name for name in columns if personal_data or name not in PERSONAL_COLUMNS)


def make_writer(fmt: ExportFormat, *, site: Site, personal_data: bool = True) -> ExportWriter:
    """The writer for a format (its media type and file extension name the download)."""
    columns = export_columns(fmt, personal_data=personal_data)
    if fmt == ExportFormat.wxr:
        return wxr.WxrWriter(columns, site)
    if fmt == ExportFormat.csv:
        return csv_format.CsvWriter(columns)
    return jsonl.JsonlWriter(columns)


async def _thread_ids(session: AsyncSession, *, site: Site, keys: Iterable[str]) -> list[int]:
    """Threads named by key as the widget would name them (canonical form, or an alias of a merged thread).

    Raises:
        InvalidInput: a key holds a NUL byte or a lone surrogate.
        NotFound: a key names no thread of the site.
    """
    keys = list(keys)
    threads.check_keys(keys)  # a NUL byte would reach PostgreSQL as an error, not as "no such thread"
    found: list[int] = []
    for key in keys:
        thread = await db.run_sync(
            session,
            threads.find_thread,
            site_id=ident(site),
            key=threads.canonical_key(key, keep_params=site.thread_query_params),
        )
        if thread is None:
            raise NotFound(f"Unknown thread on {site.slug!r}: {key!r}.")
        found.append(ident(thread))
    return found


async def _export_statement(
    session: AsyncSession, *, site: Site, fmt: ExportFormat, options: ExportOptions
) -> sa.Select[Any]:
    dialect = session.get_bind().dialect.name
    expressions = _column_expressions(site, dialect)
    columns = export_columns(fmt, personal_data=options.personal_data)
    c = COMMENT.c
    stmt = sa.select(*(expressions[name].label(name) for name in columns)).select_from(
        COMMENT.join(THREAD, THREAD.c.id == c.thread_id)
    )
    if options.thread_keys:
        thread_ids = await _thread_ids(session, site=site, keys=options.thread_keys)
        stmt = stmt.where(c.site_id == site.id, c.thread_id.in_(thread_ids))
    elif dialect == "sqlite":
        # Without statistics SQLite takes the (site_id, status, ...) index for `site_id = ?` and then
        # sorts every row of the site before returning the first. `site_id + 0` cannot use an index,
        # so it walks the table in id order (or the thread index, for WXR) and streams at once.
        stmt = stmt.where((c.site_id + 0) == site.id)
    else:
        stmt = stmt.where(c.site_id == site.id)
    if options.statuses:
        stmt = stmt.where(c.status.in_(list(options.statuses)))
    if options.since is not None:
        stmt = stmt.where(c.created_at >= options.since)
    if options.until is not None:
        stmt = stmt.where(c.created_at < options.until)
    # WXR nests comments in one item per thread, so it needs them grouped by thread.
    return stmt.order_by(c.thread_id, c.id) if fmt == ExportFormat.wxr else stmt.order_by(c.id)


async def count_comments(session: AsyncSession, *, site: Site, options: ExportOptions) -> int:
    """How many comments an export with these filters holds (for a progress bar)."""
    stmt = await _export_statement(session, site=site, fmt=ExportFormat.jsonl, options=options)
    return int((await session.exec(select(sa.func.count()).select_from(stmt.order_by(None).subquery()))).one())


async def export_comments(
    session: AsyncSession,
    *,
    site: Site,
    writer: ExportWriter,
    options: ExportOptions,
    fmt: ExportFormat,
    on_progress: Callable[[int], None] | None = None,
) -> AsyncGenerator[bytes, None]:
    """Stream the site's comments as chunks of the writer's format, one database batch at a time.

    Rows are plain tuples from a server-side cursor (no ORM objects, no identity map), so
    memory stays flat whatever the size of the site. `on_progress` gets each batch's row count.

    Raises:
        NotFound: a thread filter names an unknown thread.
    """
    stmt = await _export_statement(session, site=site, fmt=fmt, options=options)
    yield writer.begin()
    result = await session.stream(stmt.execution_options(yield_per=EXPORT_BATCH))
    batches = result.partitions()
    # Fetch the next batch while this one is encoded: the driver works in its own thread (aiosqlite)
    # or on the socket (asyncpg), so on two cores fetching and encoding overlap instead of taking turns.
    fetching = asyncio.ensure_future(anext(batches, None))
    try:
        while (rows := await fetching) is not None:
            fetching = asyncio.ensure_future(anext(batches, None))
            await asyncio.sleep(0)  # let the fetch reach the driver before the CPU-bound encoding starts
            yield writer.rows(rows)
            if on_progress is not None:
                on_progress(len(rows))
    finally:
        if not fetching.done():  # the consumer stopped early (client went away)
            # Let the batch in flight arrive rather than cancel it: a driver call cancelled half-way leaves
            # its connection in an unknown state, and the pool then drops it without closing it.
            with contextlib.suppress(Exception):
                await fetching
    yield writer.end()


# --- import -----------------------------------------------------------------------------------------------------

PARSERS: dict[ImportFormat, Callable[[BinaryIO], Iterator[ImportedComment | None]]] = {
    ImportFormat.wxr: wxr.parse_wxr,
    ImportFormat.disqus: disqus.parse_disqus,
    ImportFormat.jsonl: jsonl.parse_jsonl,
}


def _text(value: str) -> str:
    # PostgreSQL cannot store NUL in text; a JSON line can carry one ("\u0000").
    return value.replace("\x00", "")


def _cut(value: str | None, limit: int) -> str | None:
    return _text(value)[:limit] if value else None


def _url(value: str | None, limit: int) -> str | None:
    cleaned = sanitize.clean_url(value) if value else None
    return cleaned if cleaned and len(cleaned) <= limit else None


class _Importer:
    """State of one import: source id -> comment id, thread key -> thread id, replies awaiting their parent."""

    def __init__(self, site: Site) -> None:
        self.site_id = ident(site)
        self.thread_params = site.thread_query_params
        self.report = ImportReport()
        self.refs: dict[str, int] = {}
        self.threads: dict[str, int] = {}
        self.pending: list[tuple[int, int, str, str]] = []  # (comment id, thread id, parent source id, where)

    async def add(self, session: AsyncSession, batch: list[ImportedComment]) -> None:
        await self._resolve_threads(session, [entry.thread for entry in batch])
        existing = await self._existing(session, {entry.source_id for entry in batch} - self.refs.keys())
        self.refs.update(existing)
        fresh: list[ImportedComment] = []
        seen: set[str] = set()
        for entry in batch:
            if entry.source_id in self.refs or entry.source_id in seen:
                self.report.skipped_existing += 1
            else:
                seen.add(entry.source_id)
                fresh.append(entry)
        if not fresh:
            return
        stmt = sa.insert(COMMENT).returning(COMMENT.c.id, sort_by_parameter_order=True)
        ids = (await session.exec(stmt, params=[self._row(entry) for entry in fresh])).scalars().all()
        for entry, comment_id in zip(fresh, ids, strict=True):
            self.refs[entry.source_id] = comment_id
            thread_id = self.threads[entry.thread.key]
            self.report.thread_ids.add(thread_id)
            if entry.parent_source_id is not None:
                self.pending.append((comment_id, thread_id, entry.parent_source_id, entry.where))
        self.report.created += len(fresh)

    def _row(self, entry: ImportedComment) -> dict[str, Any]:
        content = _text(entry.content_raw)
        email = _text(entry.author_email).strip()
        name = _text(entry.author_name)
        return {
            "site_id": self.site_id,
            "thread_id": self.threads[entry.thread.key],
            "parent_id": None,
            "root_id": None,
            "depth": 0,
            "status": entry.status,
            "reason": _cut(entry.reason, 200),
            "author_name": (name if name.strip() else "Anonymous")[:245],
            # An address over the form's 100-character limit is not one we could have taken: drop it.
            "author_email": email if len(email) <= 100 else "",
            "author_url": _url(entry.author_url, 200),
            "content_raw": content,
            "content_html": sanitize.clean(content),
            "ip": _cut(entry.ip, 64),
            "user_agent": _cut(entry.user_agent, 500),
            "source_id": entry.source_id,
            "created_at": entry.created_at,
            "updated_at": entry.updated_at or entry.created_at,
            "moderated_at": entry.moderated_at,
        }

    async def _resolve_threads(self, session: AsyncSession, batch: list[ImportedThread]) -> None:
        """Give every file thread a thread id: the site's thread with the same canonical key, else a new one.

        Keys are canonicalized as the widget does (`threads.canonical_key`), so imported comments
        land in the thread the embed on that article asks for, also when it was merged (alias).
        """
        wanted: dict[str, ImportedThread] = {}
        for thread in batch:
            if thread.key in self.threads or thread.key in wanted:
                continue
            canonical = threads.canonical_key(thread.key, keep_params=self.thread_params)
            if not canonical.strip() or len(canonical) > 500 or "\x00" in canonical:
                raise ImportFailed(f"Thread key {thread.key[:80]!r} is empty, longer than 500 characters or holds NUL.")
            wanted[thread.key] = thread
        if not wanted:
            return
        canonical_of = {key: threads.canonical_key(key, keep_params=self.thread_params) for key in wanted}
        keys = sorted(set(canonical_of.values()))
        aliases = await session.exec(
            select(ThreadAlias.key, ThreadAlias.thread_id).where(
                col(ThreadAlias.site_id) == self.site_id, col(ThreadAlias.key).in_(keys)
            )
        )
        by_key: dict[str, int] = dict(aliases.all())
        found = await session.exec(
            select(Thread.key, Thread.id).where(col(Thread.site_id) == self.site_id, col(Thread.key).in_(keys))
        )
        by_key |= {key: thread_id for key, thread_id in found.all() if thread_id is not None}
        for raw, thread in wanted.items():
            key = canonical_of[raw]
            if key not in by_key:
                created = Thread(
                    site_id=self.site_id,
                    key=key,
                    title=_cut(thread.title, 500),
                    url=_url(thread.url, 2000),
                    is_open=thread.is_open,
                )
                session.add(created)
                await session.flush()
                by_key[key] = ident(created)
                self.report.threads_created += 1
            self.threads[raw] = by_key[key]

    async def _existing(self, session: AsyncSession, source_ids: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ordered = sorted(source_ids)
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            rows = await session.exec(
                select(Comment.source_id, Comment.id).where(
                    col(Comment.site_id) == self.site_id, col(Comment.source_id).in_(chunk)
                )
            )
            found.update({str(source_id): int(comment_id) for source_id, comment_id in rows.all() if comment_id})
        return found

    async def finish(self, session: AsyncSession) -> None:
        """Link replies to parents (wherever they were in the file), rebuild depth/root, refresh threads."""
        self.refs.update(await self._existing(session, {p for _, _, p, _ in self.pending} - self.refs.keys()))
        parents: dict[int, dict[int, int | None]] = {}
        for comment_id, thread_id, parent_source_id, _where in self.pending:
            parent_id = self.refs.get(parent_source_id)
            if parent_id is None:
                self.report.orphans += 1  # the file's export lost the parent: keep the reply, top-level
            parents.setdefault(thread_id, {})[comment_id] = parent_id
        where = {comment_id: place for comment_id, _, _, place in self.pending}
        for thread_id in sorted(self.report.thread_ids):
            linked = parents.get(thread_id, {})
            self.report.orphans += await _link_replies(session, thread_id, parents=linked, where=where)
            await threads.refresh_thread(session, thread_id)


async def import_comments(session: AsyncSession, *, site: Site, fmt: ImportFormat, source: BinaryIO) -> ImportReport:
    """Import a WXR, Disqus or JSON Lines file into the site, in the caller's one write transaction.

    Comments already imported (same source id) are skipped, so a re-run adds nothing. Content is
    sanitized again on the way in; nothing from the file's html is trusted.

    Raises:
        ImportFailed: the file is malformed; the caller's transaction must roll back (nothing imported).
        UnsafeXML: an XML file declares a DTD or entities.
    """
    importer = _Importer(site)
    entries = PARSERS[fmt](source)
    while True:
        batch = list(islice(entries, IMPORT_BATCH))
        if not batch:
            break
        kept = [entry for entry in batch if entry is not None]
        importer.report.skipped_other += len(batch) - len(kept)
        if kept:
            await importer.add(session, kept)
    await importer.finish(session)
    return importer.report


# --- reply trees ------------------------------------------------------------------------------------------------


async def _link_replies(
    session: AsyncSession, thread_id: int, *, parents: dict[int, int | None], where: dict[int, str]
) -> int:
    """Set the imported replies' parents, then recompute depth and root in the thread; returns the orphan count.

    One pass over the thread and one batched UPDATE (`threads.rebuild_tree` updates row by row,
    too slow for an import). A parent outside this thread is dropped: the reply becomes top-level.

    Raises:
        ImportFailed: the new parents form a cycle (only a crafted file can do that).
    """
    rows = (
        await session.exec(
            select(Comment.id, Comment.parent_id, Comment.root_id, Comment.depth).where(
                col(Comment.thread_id) == thread_id
            )
        )
    ).all()
    current = {int(i): (p, r, d) for i, p, r, d in rows if i is not None}
    parent_of: dict[int, int | None] = {i: p for i, (p, _, _) in current.items()}
    orphans = 0
    for comment_id, parent_id in parents.items():
        if parent_id is not None and parent_id not in current:
            parent_id, orphans = None, orphans + 1
        parent_of[comment_id] = parent_id

    placed: dict[int, tuple[int, int]] = {}  # id -> (root, depth)

    def place(comment_id: int) -> tuple[int, int]:
        chain: list[int] = []
        node: int | None = comment_id
        while node is not None and node not in placed:
            if node in chain:
                named = ", ".join(where.get(i, f"comment {i}") for i in chain[chain.index(node) :])
                raise ImportFailed(f"Replies form a cycle: {named}. Nothing was imported.")
            chain.append(node)
            node = parent_of[node]
        root, depth = placed[node] if node is not None else (chain[-1], -1)
        for item in reversed(chain):
            depth += 1
            placed[item] = (root, depth)
        return placed[comment_id]

    changes = []
    for comment_id, (old_parent, old_root, old_depth) in current.items():
        root, depth = place(comment_id)
        if (parent_of[comment_id], root, depth) != (old_parent, old_root, old_depth):
            changes.append({"b_id": comment_id, "b_parent": parent_of[comment_id], "b_root": root, "b_depth": depth})
    if changes:
        stmt = (
            sa.update(COMMENT)
            .where(COMMENT.c.id == sa.bindparam("b_id"))
            .values(parent_id=sa.bindparam("b_parent"), root_id=sa.bindparam("b_root"), depth=sa.bindparam("b_depth"))
        )
        await session.exec(stmt, params=changes)
    return orphans
