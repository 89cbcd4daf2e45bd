"""Browser fixtures: a real `comments serve` on a free port, driven by Playwright in Debian's headless Chromium.

The server uses the session's migrated database (SQLite file or COMMENTS_TEST_POSTGRES_URL), and
the `session` fixture empties it after each test, exactly as for the HTTP tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db, sites
from comments.config import Settings
from comments.errors import NotFound
from comments.models import Comment, CommentStatus
from comments.threads import refresh_thread
from tests.conftest import free_port
from tests.servers import server_env

TIMEOUT_MS = 10_000


@dataclass
class Server:
    """A running `comments serve` and the database it uses."""

    base: str
    session: AsyncSession

    async def comments(self) -> list[Comment]:
        """Every stored comment, oldest first, read in a fresh transaction."""
        try:
            return list((await self.session.exec(select(Comment).order_by(col(Comment.id)))).all())
        finally:
            await self.session.commit()

    async def count(self) -> int:
        try:
            return int((await self.session.exec(select(func.count()).select_from(Comment))).one())
        finally:
            await self.session.commit()

    async def approve(self, comment_id: int) -> None:
        """What the moderation service does: set the status and refresh the thread, in one transaction."""
        await db.begin_write(self.session)
        comment = await self.session.get(Comment, comment_id, populate_existing=True)
        assert comment is not None
        comment.status = CommentStatus.approved
        self.session.add(comment)
        await refresh_thread(self.session, comment.thread_id)
        await self.session.commit()


@pytest.fixture
async def server(settings: Settings, session: AsyncSession, tmp_path: Path) -> AsyncIterator[Server]:
    """`comments serve` on a free port of 127.0.0.1, stopped (by its own PID) before the tables are emptied."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the server runs beside the test
            [sys.executable, "-m", "comments", "serve", "--port", str(port)],
            env=server_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"comments serve exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    if (await client.get(f"{base}/healthz", timeout=2)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"comments serve did not answer within 30s:\n{log_path.read_text()}")
                await anyio.sleep(0.1)
        # `serve` creates the demo site only on an empty database; make sure it is there.
        try:
            await sites.get_site(session, slug=sites.DEMO_SLUG)
        except NotFound:
            await sites.create_site(session, slug=sites.DEMO_SLUG, name="Demo", origins=[base])
        await session.commit()
        yield Server(base=base, session=session)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def new_reader(browser: Any, server: Server, **options: Any) -> Any:
    """A fresh browser context: its own storage and cache, as one reader on one device."""
    context = await browser.new_context(base_url=server.base, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
async def reader(browser: Any, server: Server) -> AsyncIterator[Any]:
    """A reader with JavaScript."""
    context = await new_reader(browser, server)
    yield context
    await context.close()
