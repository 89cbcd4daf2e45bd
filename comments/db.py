"""Engine, naming convention and sessions shared by the app, the CLI and the migrations."""

from __future__ import annotations

import warnings
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

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


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine for the configured backend, tuned for concurrent writers."""
    url = settings.resolved_database_url
    if settings.is_sqlite:
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_pre_ping=True
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL for readers beside one writer; writes take the lock up front.

    A deferred SQLite transaction that reads and then writes cannot wait for the
    write lock (it would deadlock), so it fails with "database is locked". Write
    transactions are therefore opened with BEGIN IMMEDIATE, which does wait
    (busy_timeout); read-only ones stay deferred so readers never queue.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writer (SQLite: BEGIN IMMEDIATE); call it before the first statement.

    Calling it again in the same transaction is harmless; calling it after a read
    already opened a plain transaction is a bug (that transaction could fail with
    "database is locked" under load), so it raises.
    """
    with warnings.catch_warnings():
        # SQLAlchemy warns (and ignores the option) when the connection already exists; we check below.
        warnings.simplefilter("ignore", SAWarning)
        connection = (await session.connection(execution_options={"sqlite_write": True})).sync_connection
    if connection is None or not connection.get_execution_options().get("sqlite_write"):
        raise RuntimeError("begin_write() must come before the transaction's first statement")


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (handlers return them)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One unit of work for the CLI and background jobs: commits once on success, rolls back on error."""
    async with session_maker(engine)() as session, session.begin():
        yield session
