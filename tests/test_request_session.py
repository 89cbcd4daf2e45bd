"""A request's session is committed before its answer leaves, and a commit that fails is never answered 2xx."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, post
from litestar.di import NamedDependency
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db
from comments.models import Site

pytestmark = pytest.mark.anyio


def _with_route(handler: Any) -> Any:
    def register(app: Litestar) -> Litestar:
        app.register(handler)
        return app

    return register


@post("/test/site", opt={"exclude_from_csrf": True}, status_code=201)
async def add_site(db_session: NamedDependency[AsyncSession]) -> dict[str, str]:
    """A write that relies on the request's commit, like every moderation handler."""
    await db.begin_write(db_session)
    db_session.add(Site(slug="committed", name="Committed"))
    await db_session.flush()
    return {"status": "stored"}


@post("/test/unstorable", opt={"exclude_from_csrf": True}, status_code=201)
async def add_unstorable_site(
    db_session: NamedDependency[AsyncSession], db_engine: NamedDependency[AsyncEngine]
) -> dict[str, str]:
    """A write whose COMMIT fails for real: a deferred foreign key (SQLite), or the connection killed (PostgreSQL)."""
    await db.begin_write(db_session)
    db_session.add(Site(slug="unstorable", name="Unstorable"))
    await db_session.flush()
    if db_engine.dialect.name == "sqlite":
        await db_session.exec(text("PRAGMA defer_foreign_keys = ON"))  # type: ignore[call-overload]
        await db_session.exec(text("INSERT INTO thread_alias (site_id, key, thread_id) VALUES (1, 'x', 999999)"))  # type: ignore[call-overload]
    else:
        pid = (await db_session.exec(text("SELECT pg_backend_pid()"))).one()[0]  # type: ignore[call-overload]
        async with db_engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return {"status": "stored"}


async def test_a_write_is_committed_before_the_answer(make_client: Any, session: AsyncSession) -> None:
    async with make_client(_with_route(add_site)) as client:
        response = await client.post("/test/site")
    assert response.status_code == 201
    assert (await session.exec(select(Site.name).where(col(Site.slug) == "committed"))).one() == "Committed"


async def test_a_commit_that_fails_answers_503_and_stores_nothing(make_client: Any, session: AsyncSession) -> None:
    async with make_client(_with_route(add_unstorable_site)) as client:
        response = await client.post("/test/unstorable")
        assert response.status_code == 503
        assert response.json() == {"detail": "The change could not be stored. Please try again.", "code": "not_stored"}
        # The next request gets a working session: nothing of the failed one is left behind.
        assert (await client.post("/test/unstorable")).status_code == 503
    assert (await session.exec(select(Site).where(col(Site.slug) == "unstorable"))).first() is None


async def test_any_change_opens_a_transaction(engine: AsyncEngine, session: AsyncSession) -> None:
    # A request's session with no transaction and no loaded object is left alone when the answer
    # starts. That is only safe because SQLAlchemy opens a transaction for any add or change,
    # including a change to an object loaded before the last commit.
    async with db.session_maker(engine)() as writing:
        writing.add(Site(slug="added", name="Added"))
        assert writing.in_transaction()
        await writing.commit()
        site = (await writing.exec(select(Site).where(col(Site.slug) == "added"))).one()
        await writing.commit()
        assert not writing.in_transaction()
        site.name = "Renamed"
        assert writing.in_transaction()
        await writing.rollback()
