"""Engine, naming convention and sessions shared by the app, the CLI and the migrations."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import warnings
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio.to_thread
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import AsyncIterator, Callable, Iterable

    from sqlalchemy.orm import Session as OrmSession

    from comments.config import Settings

# Stable constraint names, so Alembic can alter and drop them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION

SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")
R = TypeVar("R")
MAX_BATCH = 100  # writes per transaction: bounds how long one batch holds the database


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine for the configured backend, tuned for concurrent writers."""
    url = settings.resolved_database_url
    if settings.is_sqlite:
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _tune_sqlite(engine.sync_engine)
        database = make_url(url).database
        if database and database != ":memory:":
            _WRITER_GATES[engine.sync_engine] = WriterGate(f"{database}-writer.lock")
            sync = _sync_engine(engine, database)
            _BATCHERS[engine.sync_engine] = WriteBatcher(sync, _WRITER_GATES[engine.sync_engine])
        return engine
    return create_async_engine(
        url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_pre_ping=True
    )


def _tune_sqlite(engine: Engine) -> None:
    """WAL for readers beside one writer; writes take the lock up front.

    A deferred SQLite transaction that reads and then writes cannot wait for the
    write lock (it would deadlock), so it fails with "database is locked". Write
    transactions are therefore opened with BEGIN IMMEDIATE, which does wait
    (busy_timeout); read-only ones stay deferred so readers never queue.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriterGate:
    """SQLite writers queue here, in order, instead of in SQLite's busy handler.

    SQLite runs one writer at a time. A BEGIN IMMEDIATE that finds the lock taken waits
    in the busy handler, which polls with sleeps growing to 100 ms: under load a few
    writers starve for seconds while others get in. So writers first take this gate:
    an asyncio lock (one waiter per process) and then an flock() on a file beside the
    database (one writer across the processes sharing it, woken by the kernel the moment
    the previous one lets go). The gate is held until the transaction ends.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._fd: int | None = None

    async def acquire(self) -> None:
        """Wait for this process's turn, then for the database's."""
        await self._lock.acquire()
        try:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await anyio.to_thread.run_sync(self.lock_database)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        """Let the next writer in (called when the write transaction has ended)."""
        self.unlock_database()
        self._lock.release()

    async def acquire_process(self) -> None:
        """Only this process's turn; the caller then takes lock_database() in the thread that writes."""
        await self._lock.acquire()

    def release_process(self) -> None:
        """End this process's turn (after the writing thread has given the database lock back)."""
        self._lock.release()

    def lock_database(self) -> None:
        """Block until no other process writes (from a worker thread, or the event loop's to_thread)."""
        fcntl.flock(self._file(), fcntl.LOCK_EX)

    def unlock_database(self) -> None:
        """Let other processes write; callable from the thread that committed, without waiting for the loop."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd


_WRITER_GATES: weakref.WeakKeyDictionary[Any, WriterGate] = weakref.WeakKeyDictionary()
_GATE_HELD = "comments.writer_gate_held"


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writer (SQLite: BEGIN IMMEDIATE); call it before the first statement.

    Calling it again in the same transaction is harmless; calling it after a read
    already opened a plain transaction is a bug (that transaction could fail with
    "database is locked" under load), so it raises.
    """
    gate = _WRITER_GATES.get(session.get_bind())
    held = [False]
    if gate is not None and not session.info.get(_GATE_HELD):
        await gate.acquire()
        held[0] = session.info[_GATE_HELD] = True

        def _release(_session: Any, transaction: Any) -> None:
            # Released when this transaction ends: commit, rollback or close (not a savepoint inside it).
            if held[0] and transaction.parent is None:
                held[0] = session.info[_GATE_HELD] = False
                gate.release()

        event.listen(session.sync_session, "after_transaction_end", _release)
    try:
        with warnings.catch_warnings():
            # SQLAlchemy warns (and ignores the option) when the connection already exists; we check below.
            warnings.simplefilter("ignore", SAWarning)
            connection = (await session.connection(execution_options={"sqlite_write": True})).sync_connection
        if connection is None or not connection.get_execution_options().get("sqlite_write"):
            raise RuntimeError("begin_write() must come before the transaction's first statement")
    except BaseException:
        if gate is not None and held[0]:
            held[0] = session.info[_GATE_HELD] = False
            gate.release()
        raise


class _BatchDialect(SQLiteDialect_pysqlite):
    """pysqlite, with savepoints sent straight to the driver.

    A batch takes a savepoint for every post. SQLAlchemy builds each one as a statement
    with a fresh name (sa_savepoint_1, _2, ...), so none is ever found in its compiled
    cache: compiling and executing SAVEPOINT and RELEASE cost 90 us of the ~360 us a post
    spent in the locked section (exec_driver_sql still cost 40). SQLAlchemy still tracks
    the savepoints, so a failed post rolls back alone as before; only the SQL echo, if
    someone turns it on, leaves them out.
    """

    supports_statement_cache = True

    def do_savepoint(self, connection: Connection, name: str) -> None:
        _driver(connection).execute(f"SAVEPOINT {name}")

    def do_rollback_to_savepoint(self, connection: Connection, name: str) -> None:
        _driver(connection).execute(f"ROLLBACK TO SAVEPOINT {name}")

    def do_release_savepoint(self, connection: Connection, name: str) -> None:
        _driver(connection).execute(f"RELEASE SAVEPOINT {name}")


def _driver(connection: Connection) -> sqlite3.Connection:
    return cast("sqlite3.Connection", connection.connection.driver_connection)


registry.register("sqlite.comments_batch", __name__, "_BatchDialect")


def _sync_engine(engine: AsyncEngine, database: str) -> Engine:
    """Synchronous (pysqlite) connections to the same file, for whole transactions run in worker threads.

    Each thread checks out its own connection; write transactions go through the writer
    gate, one at a time. Closed when the async engine is disposed.
    """
    sync = create_sync_engine(
        f"sqlite+comments_batch:///{database}",
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    _tune_sqlite(sync)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: sync.dispose())
    return sync


_BATCHERS: weakref.WeakKeyDictionary[Any, WriteBatcher] = weakref.WeakKeyDictionary()


async def run_sync(session: AsyncSession, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous database function (written once, for both backends) on an async session."""

    def call(sync_session: OrmSession) -> T:
        return fn(cast("Session", sync_session), *args, **kwargs)

    return await session.run_sync(call)


async def read_then_write(session: AsyncSession, read: Callable[[Session], R], write: Callable[[Session, R], T]) -> T:
    """Run `read(sync_session)`, then `write(sync_session, what read returned)` as one all-or-nothing write.

    The write is committed before this returns; an exception from either undoes
    everything `write` did and is raised here. On a SQLite file both run in a worker
    thread, batched with the other writes this process has waiting (see WriteBatcher).
    Elsewhere (PostgreSQL) they run on `session` via run_sync, the write in a savepoint,
    then it commits.
    """
    batcher = _BATCHERS.get(session.get_bind())
    if batcher is None:
        staged = await run_sync(session, read)
        async with session.begin_nested():  # undone alone on error; what was read stays loaded
            result = await run_sync(session, write, staged)
        await session.commit()
        return result
    return await batcher.run(read, write)


@dataclass(eq=False)
class _Job:
    read: Callable[[Session], Any]
    write: Callable[[Session, Any], Any]
    future: asyncio.Future[Any]
    staged: Any = None
    result: Any = None
    error: BaseException | None = None


class WriteBatcher:
    """Group commit: the writes a process has waiting go to SQLite as one transaction, a savepoint each.

    Every transaction costs a thread hand-off, a session, BEGIN IMMEDIATE, COMMIT and a
    turn at the writer gate, and the writing thread competes for the GIL with its own
    event loop while it holds the database lock. Under load most of that was the cost of
    a post. So writes queue here and go through two stages, each one worker thread at a
    time: the reads of all waiting jobs (site, validation, sanitizing, spam score: no
    lock), then their writes in one transaction, each in its own savepoint so a refused
    write leaves no trace, committed once. Nobody hears "done" before that commit.

    The stages overlap: while one batch waits for the database lock (another process is
    writing), the next batch's reads run. They pause while this process holds the lock,
    so the locked section does not also wait for the GIL they would hold.
    """

    def __init__(self, sync: Engine, gate: WriterGate) -> None:
        self._reader = sync
        self._writer = sync.execution_options(sqlite_write=True)  # BEGIN IMMEDIATE
        self._gate = gate
        self._waiting: list[_Job] = []
        self._staged: list[_Job] = []
        self._reading: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._lock_free = threading.Event()
        self._lock_free.set()

    async def run(self, read: Callable[[Session], R], write: Callable[[Session, R], T]) -> T:
        """Queue one read-then-write and wait until it is committed (or refused)."""
        job = _Job(read, write, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_all())
        # Shielded: a client that goes away does not take its post, or the batch, with it.
        return cast("T", await asyncio.shield(job.future))

    async def _read_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await anyio.to_thread.run_sync(self._read, batch)
            except BaseException as exc:  # the thread itself failed
                for job in batch:
                    job.error = job.error or exc
            _settle(job for job in batch if job.error is not None)
            self._staged.extend(job for job in batch if job.error is None)
            if self._writing is None or self._writing.done():
                self._writing = asyncio.create_task(self._write_all())

    async def _write_all(self) -> None:
        while self._staged:
            batch, self._staged = self._staged[:MAX_BATCH], self._staged[MAX_BATCH:]
            await self._gate.acquire_process()
            try:
                await anyio.to_thread.run_sync(self._write, batch)
            except BaseException as exc:  # the thread itself failed: nothing was committed
                for job in batch:
                    job.error = exc
            finally:
                self._gate.release_process()
            _settle(batch)

    def _read(self, batch: list[_Job]) -> None:
        with Session(self._reader) as reading:
            for job in batch:
                self._lock_free.wait()
                try:
                    job.staged = job.read(reading)
                except Exception as exc:  # it belongs to that job's caller
                    job.error = exc

    def _write(self, batch: list[_Job]) -> None:
        # The database lock is taken and given back in this thread: another process's writer
        # gets in the moment this batch commits, not when this process's event loop next runs.
        self._gate.lock_database()
        self._lock_free.clear()
        try:
            with Session(self._writer, expire_on_commit=False) as writing, writing.begin():
                for job in batch:
                    try:
                        with writing.begin_nested():
                            job.result = job.write(writing, job.staged)
                    except Exception as exc:  # rolled back to its savepoint; the others go on
                        job.error = exc
        except Exception as exc:  # the commit failed: none of the batch is stored
            for job in batch:
                job.error = job.error or exc
        finally:
            self._gate.unlock_database()
            self._lock_free.set()


def _settle(jobs: Iterable[_Job]) -> None:
    for job in jobs:
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (handlers return them)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One unit of work for the CLI and background jobs: commits once on success, rolls back on error."""
    async with session_maker(engine)() as session, session.begin():
        yield session
