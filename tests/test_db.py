"""The write-transaction discipline that keeps SQLite writers waiting instead of failing."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db, migrations
from comments.models import Site, ident
from tests.conftest import make_settings
from tests.factories import make_site

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated SQLite file of its own, for what only SQLite's batcher does."""
    settings = make_settings("sqlite", tmp_path)
    await migrations.upgrade_to_head(settings)
    engine = db.create_engine(settings)
    yield engine
    await engine.dispose()


async def test_begin_write_must_come_first(session: AsyncSession) -> None:
    await db.begin_write(session)
    await db.begin_write(session)  # again in the same transaction: fine
    await session.rollback()
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    with pytest.raises(RuntimeError, match="must come before"):
        await db.begin_write(session)
    await session.rollback()


class Refused(Exception):
    pass


def _nothing(_session: Session) -> None:
    return None


def _rename(session: Session, _staged: None, *, site_id: int, name: str, then_fail: bool) -> str:
    session.exec(update(Site).where(col(Site.id) == site_id).values(name=name))
    if then_fail:
        raise Refused(name)
    return name


async def test_a_write_commits_all_or_nothing_and_lets_the_next_writer_in(session: AsyncSession) -> None:
    site = await make_site(session)
    site_id = ident(site)
    with pytest.raises(Refused):
        await db.read_then_write(session, _nothing, partial(_rename, site_id=site_id, name="half", then_fail=True))
    # The failed transaction was rolled back and left the writer gate open: the next one goes through.
    whole = partial(_rename, site_id=site_id, name="whole", then_fail=False)
    assert await db.read_then_write(session, _nothing, whole) == "whole"
    await session.rollback()
    assert (await session.exec(select(Site.name).where(col(Site.id) == site_id))).one() == "whole"


def _add_site(session: Session, staged: str, *, fail: bool) -> str:
    session.add(Site(slug=staged, name=staged, origins=[]))
    session.flush()  # the row is written inside the transaction before the job fails
    if fail:
        raise Refused(staged)
    return staged


def _stage(slug: str, *, fail: bool) -> Any:
    def read(_session: Session) -> str:
        if fail:
            raise Refused(slug)
        return slug

    return read


async def test_concurrent_writes_are_each_all_or_nothing(engine: AsyncEngine, session: AsyncSession) -> None:
    """Waiting writes share a transaction on SQLite; a refused one, at either stage, leaves no trace."""

    async def one(n: int) -> str:
        slug = f"batch-{n}"
        async with db.session_maker(engine)() as own:
            return await db.read_then_write(own, _stage(slug, fail=n % 7 == 0), partial(_add_site, fail=n % 5 == 0))

    outcomes = await asyncio.gather(*(one(n) for n in range(40)), return_exceptions=True)
    stored = {f"batch-{n}" for n in range(40) if n % 7 and n % 5}
    assert {o for o in outcomes if isinstance(o, str)} == stored
    assert sorted(str(o) for o in outcomes if isinstance(o, Refused)) == sorted(
        f"batch-{n}" for n in range(40) if not (n % 7 and n % 5)
    )
    assert set((await session.exec(select(Site.slug))).all()) == stored


def _unstorable(session: Session, _staged: None) -> str:
    """A write whose COMMIT fails: a foreign key checked only at commit, pointing nowhere."""
    session.exec(text("PRAGMA defer_foreign_keys = ON"))  # type: ignore[call-overload]
    session.exec(text("INSERT INTO thread_alias (site_id, key, thread_id) VALUES (1, 'x', 999999)"))  # type: ignore[call-overload]
    return "written"


async def test_a_batch_whose_commit_fails_stores_nothing_and_the_next_batch_goes_through(
    sqlite_file: AsyncEngine,
) -> None:
    async with db.session_maker(sqlite_file)() as own:
        with pytest.raises(IntegrityError):
            await db.read_then_write(own, _nothing, _unstorable)
        assert await db.read_then_write(own, _stage("after", fail=False), partial(_add_site, fail=False)) == "after"
        assert (await own.exec(select(Site.slug))).all() == ["after"]
        assert (await own.exec(text("SELECT count(*) FROM thread_alias"))).one()[0] == 0  # type: ignore[call-overload]


async def test_sqlite_write_transactions_take_the_write_lock_up_front(sqlite_file: AsyncEngine) -> None:
    path = sqlite_file.url.database

    def other_writer_can_start(sync: Session, _staged: None) -> bool:
        sync.connection()  # the transaction begins, before any statement of ours
        # A deferred BEGIN would not hold the lock yet; IMMEDIATE does.
        other = sqlite3.connect(str(path), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()

    async with db.session_maker(sqlite_file)() as session:
        assert await db.read_then_write(session, _nothing, other_writer_can_start) is False


async def test_a_queued_write_is_committed_even_when_its_caller_goes_away(sqlite_file: AsyncEngine) -> None:
    """A reader whose connection drops while the post waits in a batch still has it stored (SQLite)."""
    sessions = db.session_maker(sqlite_file)
    async with sessions() as session, sessions() as other:
        add = partial(_add_site, fail=False)
        caller = asyncio.create_task(db.read_then_write(session, _stage("left-early", fail=False), add))
        stayed = asyncio.create_task(db.read_then_write(other, _stage("stayed", fail=False), add))
        await asyncio.sleep(0)  # both queued in this process's batch
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        # The batch goes on: the other writer gets its answer, and both rows are stored.
        assert await asyncio.wait_for(stayed, timeout=10) == "stayed"
    async with sessions() as session:
        assert sorted((await session.exec(select(Site.slug))).all()) == ["left-early", "stayed"]
