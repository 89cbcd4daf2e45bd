"""Replayed public reads (SQLite): identical answers while nothing changed, fresh ones after any commit."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import CommentStatus
from comments.widget.replay import ReplayUnchanged
from tests.factories import make_comment, make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio

READ = "/api/comments?site=blog&thread=/2026/11/article"
COUNTS = "/api/counts?site=blog&thread=/2026/11/article&thread=/elsewhere"
SITE_ORIGIN = "https://blog.example.org"


async def test_installed_only_where_the_database_has_a_change_stamp(app: Litestar, backend: str) -> None:
    installed = [m for m in app.middleware if isinstance(m, ReplayUnchanged)]
    assert len(installed) == (1 if backend == "sqlite" else 0)


async def test_counts_follow_every_commit(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    await make_comment(session, thread=thread)
    first = await client.get(COUNTS)
    assert first.json()["counts"] == {"/2026/11/article": 1, "/elsewhere": 0}
    assert (await client.get(COUNTS)).content == first.content
    await make_comment(session, thread=thread, content="another")
    assert (await client.get(COUNTS)).json()["counts"] == {"/2026/11/article": 2, "/elsewhere": 0}


async def test_each_origin_gets_its_own_cors_answer(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    await make_thread(session, site=site)
    for _ in range(2):  # the second round comes from memory on SQLite
        allowed = await client.get(READ, headers={"Origin": SITE_ORIGIN})
        foreign = await client.get(READ, headers={"Origin": "https://evil.example"})
        plain = await client.get(READ)
        assert allowed.headers["access-control-allow-origin"] == SITE_ORIGIN
        assert "access-control-allow-origin" not in foreign.headers
        assert "access-control-allow-origin" not in plain.headers
        for answer in (allowed, foreign, plain):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["content-security-policy"].startswith("default-src 'none'")


async def test_a_submitter_token_is_never_answered_from_the_public_copy(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    await make_comment(session, thread=thread, content="public")
    posted = await client.post("/api/comments", json=reply_body(content="mine, pending", email="grace@example.org"))
    assert posted.status_code == 201
    public = [await client.get(READ) for _ in range(2)]
    assert [[c["html"] for c in r.json()["comments"]] for r in public] == [["<p>public</p>"]] * 2
    own = await client.get(READ, headers={"X-Comment-Token": posted.json()["token"]})
    assert [c["status"] for c in own.json()["comments"]] == [CommentStatus.approved, CommentStatus.pending]
    assert own.headers["cache-control"] == "private, no-store"


async def test_a_304_is_replayed_only_for_the_current_etag(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    await make_comment(session, thread=thread, content="one")
    etag = (await client.get(READ)).headers["etag"]
    for _ in range(2):
        assert (await client.get(READ, headers={"If-None-Match": etag})).status_code == 304
    await make_comment(session, thread=thread, content="two")
    changed = await client.get(READ, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert len(changed.json()["comments"]) == 2


def _handler(status: int, headers: list[tuple[bytes, bytes]], calls: list[int]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(1)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    return app


@pytest.mark.parametrize(
    ("status", "headers", "replayed"),
    [
        (200, [(b"content-type", b"application/json")], True),
        (404, [(b"content-type", b"application/json")], False),
        (200, [(b"set-cookie", b"csrftoken=abc")], False),
    ],
)
async def test_only_complete_successful_answers_without_cookies_are_kept(
    status: int, headers: list[tuple[bytes, bytes]], replayed: bool
) -> None:
    stamp = [1]
    replay = ReplayUnchanged(lambda: stamp[0], ["/api/counts"])
    calls: list[int] = []
    inner = _handler(status, headers, calls)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/counts", "query_string": b"site=a", "headers": []}
    for _ in range(2):
        await replay.handle(scope, None, send, inner)  # type: ignore[arg-type]
    assert len(calls) == (1 if replayed else 2)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [status, status]
    stamp[0] = 2  # any commit: the next answer is built again
    await replay.handle(scope, None, send, inner)  # type: ignore[arg-type]
    assert len(calls) == (2 if replayed else 3)
