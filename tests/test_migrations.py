"""The migrations build exactly the models' schema, and walk down and up again, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from comments.config import Settings
from tests.conftest import alembic_command

pytestmark = pytest.mark.anyio


def _table_names(connection: object) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_downgrade_upgrade_matches_models(settings: Settings, engine: AsyncEngine) -> None:
    import anyio.to_thread

    await anyio.to_thread.run_sync(alembic_command, settings, "downgrade", "base")
    async with engine.connect() as connection:
        assert await connection.run_sync(_table_names) <= {"alembic_version"}

    await anyio.to_thread.run_sync(alembic_command, settings, "upgrade", "head")
    async with engine.connect() as connection:
        tables = await connection.run_sync(_table_names)
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
            )
        )
    assert {"site", "thread", "comment", "user", "membership", "audit_event", "login_session"} <= tables
    assert diff == []


async def test_content_hash_migration_fills_existing_comments(settings: Settings, engine: AsyncEngine) -> None:
    import hashlib

    import anyio.to_thread
    from sqlalchemy import text

    await anyio.to_thread.run_sync(alembic_command, settings, "downgrade", "6208b4de07e2")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO site (slug, name, origins, max_depth, auto_approve_known, hold_links,"
                    " moderation_keywords, disallowed_keywords, disallowed_action, created_at)"
                    " VALUES ('m', 'M', '[]', 5, false, 2, '', '', 'spam', CURRENT_TIMESTAMP)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO thread (site_id, key, is_open, approved_count, version, created_at)"
                    " SELECT id, '/t', true, 0, 1, CURRENT_TIMESTAMP FROM site WHERE slug = 'm'"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO comment (site_id, thread_id, depth, status, author_name, author_email, content_raw,"
                    " content_html, created_at, updated_at) SELECT site_id, id, 0, 'pending', 'A', 'a@example.org',"
                    " 'older text', '<p>older text</p>', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM thread"
                )
            )
        await anyio.to_thread.run_sync(alembic_command, settings, "upgrade", "head")
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT content_hash FROM comment"))).scalar_one()
        assert stored == hashlib.sha256(b"older text").hexdigest()
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM comment"))
            await connection.execute(text("DELETE FROM thread"))
            await connection.execute(text("DELETE FROM site"))
