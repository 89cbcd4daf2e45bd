"""The write-transaction discipline that keeps SQLite writers waiting instead of failing."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db

pytestmark = pytest.mark.anyio


async def test_begin_write_must_come_first(session: AsyncSession) -> None:
    await db.begin_write(session)
    await db.begin_write(session)  # again in the same transaction: fine
    await session.rollback()
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    with pytest.raises(RuntimeError, match="must come before"):
        await db.begin_write(session)
    await session.rollback()
