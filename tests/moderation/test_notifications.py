"""Committed pending comments are announced: a signed webhook with retries, and email through SMTP."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Comment, CommentStatus
from comments.moderation import notifications
from tests.conftest import free_port
from tests.factories import make_site, reply_body
from tests.moderation.conftest import World

pytestmark = pytest.mark.anyio


class Hook:
    """A local webhook receiver that fails the first `failures` calls and can be slow."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.failures, self.delay = failures, delay
        self.calls: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls.append((dict(self.headers.items()), body))
                time.sleep(hook.delay)
                failing = len(hook.calls) <= hook.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook(failures=2)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


async def pending_comment(session: AsyncSession, world: World, hook_url: str | None, secret: str | None) -> Comment:
    world.alpha.webhook_url, world.alpha.webhook_secret = hook_url, secret
    session.add(world.alpha)
    comment = Comment(
        site_id=world.alpha.id,  # type: ignore[arg-type]
        thread_id=world.alpha_thread.id,  # type: ignore[arg-type]
        author_name="Eve",
        author_email="eve@example.org",
        content_raw="Hold me",
        content_html="<p>Hold me</p>",
        reason="manual_approval",
    )
    session.add(comment)
    await session.flush()
    return comment


async def test_webhook_is_signed_and_retried(session: AsyncSession, world: World, hook: Hook) -> None:
    comment = await pending_comment(session, world, hook.url, "s3cret")
    await session.commit()
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await notifications.drain()
    assert len(hook.calls) == 3  # two failures, then success
    headers, body = hook.calls[-1]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Comments-Signature"] == expected
    assert headers["X-Comments-Event"] == "comment.pending"
    payload = json.loads(body)
    assert payload["event"] == "comment.pending"
    assert payload["comment"]["comment_id"] == comment.id
    assert payload["comment"]["thread_key"] == "/post-1"
    assert payload["comment"]["reason"] == "manual_approval"
    assert b"eve@example.org" not in body  # webhooks end up in chat rooms: no author email


async def test_a_post_is_announced_once_and_a_refused_one_never(session: AsyncSession, client: Any, hook: Hook) -> None:
    hook.failures = 0
    site = await make_site(session)
    site.webhook_url = hook.url
    session.add(site)
    await session.commit()
    assert (await client.post("/api/comments", json=reply_body(content="Hold me"))).status_code == 201
    refused = await client.post("/api/comments", json=reply_body(content="Hold me"))
    assert refused.status_code in (409, 429)  # nothing was stored, so nothing may be announced
    await notifications.drain()
    assert [json.loads(body)["comment"]["html"] for _, body in hook.calls] == ["<p>Hold me</p>"]


async def test_only_pending_comments_are_announced(session: AsyncSession, world: World, hook: Hook) -> None:
    comment = await pending_comment(session, world, hook.url, None)
    comment.status = CommentStatus.spam
    await session.commit()
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await notifications.drain()
    assert hook.calls == []


async def test_a_slow_webhook_does_not_delay_the_answer(session: AsyncSession, world: World, hook: Hook) -> None:
    hook.failures, hook.delay = 0, 1.0
    comment = await pending_comment(session, world, hook.url, None)
    await session.commit()
    started = time.monotonic()
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    assert time.monotonic() - started < 0.5
    await notifications.drain()
    assert len(hook.calls) == 1
    headers, _ = hook.calls[0]
    assert "X-Comments-Signature" not in headers  # no secret, no signature


async def test_an_unreachable_webhook_is_given_up_quietly(session: AsyncSession, world: World) -> None:
    comment = await pending_comment(session, world, f"http://127.0.0.1:{free_port()}/gone", None)
    await session.commit()
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await notifications.drain()  # no exception escapes


class Sink:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


async def test_members_get_an_email_when_smtp_is_configured(
    session: AsyncSession, world: World, settings: Settings
) -> None:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        configured = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "comments@alpha.example"}
        )
        comment = await pending_comment(session, world, None, None)
        await session.commit()
        await notifications.notify_pending(session, site=world.alpha, comment=comment, settings=configured)
        await notifications.drain()
    finally:
        controller.stop()
    assert len(sink.messages) == 1
    envelope = sink.messages[0]
    assert sorted(envelope.rcpt_tos) == ["mod@alpha.example", "owner@alpha.example"]  # not beta's owner
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "[Alpha] New comment awaiting moderation"
    text = message.get_body().get_content()
    assert "eve@example.org" in text  # moderators may see the author's email
    assert f"/admin/queue?site=alpha&status=pending#c{comment.id}" in text


async def test_a_reader_reply_triggers_the_webhook(
    client: Any, session: AsyncSession, world: World, hook: Hook
) -> None:
    hook.failures = 0
    world.alpha.webhook_url = hook.url
    session.add(world.alpha)
    await session.commit()
    body = {"site": "alpha", "thread": "/post-1", "content": "Please hold", "name": "Rea", "email": "rea@example.org"}
    response = await client.post("/api/comments", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["comment"]["status"] == "pending"
    await notifications.drain()
    assert len(hook.calls) == 1
    assert json.loads(hook.calls[0][1])["comment"]["comment_id"] == response.json()["comment"]["id"]


async def test_a_stored_post_keeps_its_201_when_its_notice_cannot_be_prepared(
    session: AsyncSession, make_client: Any, world: World, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """The comment is committed before the moderators' notice is prepared; a database error there
    must not turn the answer into a 500 (a retry would then be refused as a duplicate)."""
    world.alpha.webhook_url = hook.url
    session.add(world.alpha)
    await session.commit()
    # A real failure of the member lookup: its table is gone while the post is made.
    await session.exec(text("ALTER TABLE membership RENAME TO membership_away"))  # type: ignore[call-overload]
    await session.commit()
    try:
        async with make_client(smtp_host="127.0.0.1") as client:
            body = {"site": "alpha", "thread": "/post-1", "content": "Hold", "name": "Rea", "email": "rea@example.org"}
            response = await client.post("/api/comments", json=body)
    finally:
        await session.exec(text("ALTER TABLE membership_away RENAME TO membership"))  # type: ignore[call-overload]
        await session.commit()
    assert response.status_code == 201, response.text
    stored = await session.get_one(Comment, response.json()["comment"]["id"])
    assert (stored.status, stored.content_raw) == (CommentStatus.pending, "Hold")
    assert f"comment {stored.id} stored, but its moderation notice could not be prepared" in caplog.text
    await notifications.drain()
    assert hook.calls == []
