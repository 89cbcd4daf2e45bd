"""Each request's database session: handed to handlers as `db_session`, committed before the answer leaves.

Write handlers never commit themselves. When the response starts, the session is committed
if the status is below 400 (redirects included: the admin's form posts answer 303) and
rolled back otherwise. A commit that fails turns the answer into a 503 before any of it is
sent, so nobody is told "done" about a change that was not stored.

This replaces advanced-alchemy's Litestar plugin, which did the same except that it logged a
failed commit at DEBUG and sent the 2xx anyway, and whose imports (alembic, mako, rich and
pygments, for its CLI) cost each worker 12 MB.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import msgspec

# Litestar reads the providers' annotations at runtime, so these cannot hide behind TYPE_CHECKING.
from litestar.datastructures import State  # noqa: TC002
from litestar.types import Scope  # noqa: TC002
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: TC002
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: TC002

from comments.errors import NotStored, error_body

if TYPE_CHECKING:
    from litestar.types import Message

log = logging.getLogger("comments")
_SESSION = "comments.db_session"
_FAILED = "comments.commit_failed"  # "pending" until the error body replaced the first chunk, then "sent"
_NOT_STORED = msgspec.json.encode(error_body(NotStored("The change could not be stored. Please try again.")))


def provide_db_session(state: State, scope: Scope) -> AsyncSession:
    """A session for this request, settled by settle_db_session when the response starts."""
    session: AsyncSession = state.sessions()
    cast("dict[str, Any]", scope)[_SESSION] = session
    return session


def provide_db_engine(state: State) -> AsyncEngine:
    """The engine, for handlers that run their own transactions (login)."""
    engine: AsyncEngine = state.engine
    return engine


async def settle_db_session(message: Message, scope: Scope) -> None:
    """Commit (below 400) or roll back the request's session as the response starts; a failed commit answers 503."""
    slots = cast("dict[str, Any]", scope)
    if message["type"] == "http.response.start":
        session: AsyncSession | None = slots.pop(_SESSION, None)
        if session is not None and not await _settled(session, commit=message["status"] < 400):
            slots[_FAILED] = "pending"
            message["status"] = NotStored.status_code
            message["headers"] = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_NOT_STORED)).encode()),
            ]
    elif message["type"] == "http.response.body" and _FAILED in slots:
        # The handler's body described a success: its first chunk becomes the error, the rest nothing.
        message["body"] = _NOT_STORED if slots[_FAILED] == "pending" else b""
        slots[_FAILED] = "sent"


async def _settled(session: AsyncSession, *, commit: bool) -> bool:
    """Commit or roll back, then close; False if that failed.

    A session that never opened a transaction has nothing to commit or roll back (SQLAlchemy
    opens one on the first query, add or change), and one that also holds no object has
    nothing to close: a post on SQLite, written by the batcher on its own connections, is one.
    Hopping into SQLAlchemy's greenlet for it anyway cost 4% of a post's CPU under load.
    """
    if not session.in_transaction() and not session.sync_session.identity_map:
        return True
    try:
        if commit:
            await session.commit()
        else:
            await session.rollback()
    except Exception as exc:
        # The type only: SQLAlchemy's message carries the statement's parameters, and those can be an email.
        log.error("a request's changes could not be committed (%s); answering 503", type(exc).__name__)
        # A failed COMMIT can leave SQLite's transaction open on the connection, and SQLAlchemy
        # would pool it as it is: the next request's BEGIN would fail. Discard the connection.
        await session.invalidate()
        return False
    await session.close()
    return True
