"""A server killed with SIGKILL in the middle of a write load loses no comment it acknowledged.

A reader whose comment got a 201 was told it is stored; a crash (an OOM kill, a power-cut
container) right after must not make that a lie. Writers keep posting while the whole
`comments serve` process group (2 workers) is killed at once; after a restart on the same
database every acknowledged comment is there with its content, the database is intact, and
the restarted server takes new comments.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Comment
from tests.factories import make_site
from tests.servers import Sent, Server, post_reply, server_env, start_server

pytestmark = pytest.mark.anyio

WRITERS = 8
ACKNOWLEDGED_BEFORE_KILL = 80  # enough that writes are in flight in every worker when the kill lands
ARTICLE = "/2026/11/crash"


@pytest.fixture
def server_factory(settings: Settings, session: AsyncSession, tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def write_until_stopped(
    base: str, writer: int, stop: threading.Event, enough: threading.Event, sent: list[Sent]
) -> None:
    """Post replies back to back until told to stop or the server is gone; `enough` once the kill may come."""
    with httpx.Client(timeout=10) as http:
        n = 0
        while not stop.is_set():
            outcome = post_reply(http, base, "blog", ARTICLE, f"w{writer}n{n}")
            sent.append(outcome)
            if outcome.status == 0:
                return  # the server is gone: this writer's last request got no answer
            if sum(s.status == 201 for s in sent) >= ACKNOWLEDGED_BEFORE_KILL:
                enough.set()
            n += 1


async def test_sigkill_mid_load_loses_no_acknowledged_comment(
    settings: Settings, session: AsyncSession, engine: AsyncEngine, server_factory: list[Server], tmp_path: Path
) -> None:
    await make_site(session)
    env = server_env(settings)
    server = start_server(env, tmp_path, workers=2, name="doomed")
    server_factory.append(server)

    stop, enough = threading.Event(), threading.Event()
    sent: list[Sent] = []
    writers = [
        threading.Thread(target=write_until_stopped, args=(server.base, n, stop, enough, sent), daemon=True)
        for n in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    await anyio.to_thread.run_sync(enough.wait, 60)
    server.kill()  # the whole group, workers included, mid-load
    stop.set()
    for writer in writers:
        writer.join(timeout=30)

    acknowledged = {s.tag: s.comment_id for s in sent if s.status == 201}
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    assert all(s.status in (0, 201) for s in sent), {s.status for s in sent}
    # The kill really landed mid-load: requests were in flight and got no answer.
    assert any(s.status == 0 for s in sent)

    restarted = start_server(env, tmp_path, workers=2, name="restarted")
    server_factory.append(restarted)

    if settings.is_sqlite:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"
    session.expire_all()
    stored = {row.id: row for row in (await session.exec(select(Comment))).all()}
    lost = {tag: cid for tag, cid in acknowledged.items() if cid not in stored}
    assert not lost, f"acknowledged but gone after the crash: {lost}"
    for tag, comment_id in acknowledged.items():
        assert stored[comment_id].content_raw == f"Load test comment {tag}."
    # Unacknowledged requests may or may not have committed; nothing beyond them appeared.
    assert len(stored) <= len(acknowledged) + WRITERS

    async with httpx.AsyncClient(base_url=restarted.base) as http:
        body = {"site": "blog", "thread": ARTICLE, "content": "After the crash.", "name": "A", "email": "a@example.org"}
        assert (await http.post("/api/comments", json=body)).status_code == 201
