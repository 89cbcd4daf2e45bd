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
