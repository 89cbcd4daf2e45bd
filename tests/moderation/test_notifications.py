"""Pending comments are announced after commit: a signed webhook with retries, and email through SMTP."""

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
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Comment, CommentStatus
from comments.moderation import notifications
from tests.conftest import free_port
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


async def test_webhook_is_signed_retried_and_sent_only_after_commit(
    session: AsyncSession, world: World, hook: Hook
) -> None:
    comment = await pending_comment(session, world, hook.url, "s3cret")
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await notifications.drain()
    assert hook.calls == []  # nothing before the commit
    await session.commit()
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


async def test_rolled_back_comments_are_never_announced(session: AsyncSession, world: World, hook: Hook) -> None:
    comment = await pending_comment(session, world, hook.url, None)
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await session.rollback()
    await session.commit()
    await notifications.drain()
    assert hook.calls == []


async def test_only_pending_comments_are_announced(session: AsyncSession, world: World, hook: Hook) -> None:
    comment = await pending_comment(session, world, hook.url, None)
    comment.status = CommentStatus.spam
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await session.commit()
    await notifications.drain()
    assert hook.calls == []


async def test_a_slow_webhook_does_not_delay_the_commit(session: AsyncSession, world: World, hook: Hook) -> None:
    hook.failures, hook.delay = 0, 1.0
    comment = await pending_comment(session, world, hook.url, None)
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    started = time.monotonic()
    await session.commit()
    assert time.monotonic() - started < 0.5
    await notifications.drain()
    assert len(hook.calls) == 1
    headers, _ = hook.calls[0]
    assert "X-Comments-Signature" not in headers  # no secret, no signature


async def test_an_unreachable_webhook_is_given_up_quietly(session: AsyncSession, world: World) -> None:
    comment = await pending_comment(session, world, f"http://127.0.0.1:{free_port()}/gone", None)
    await notifications.notify_pending(session, site=world.alpha, comment=comment)
    await session.commit()
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
        await notifications.notify_pending(session, site=world.alpha, comment=comment, settings=configured)
        await session.commit()
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
