"""The commenter's email appears in no public response, page, or log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import Comment, CommentStatus
from comments.threads import refresh_thread
from tests.factories import make_site, reply_body

pytestmark = pytest.mark.anyio

EMAIL = "Secret.Reader+tag@Private-Example.org"


def leaks(text: str) -> bool:
    lowered = text.lower()
    return any(part in lowered for part in (EMAIL.lower(), "private-example", "secret.reader"))


async def test_email_is_in_no_public_response_page_or_log(
    session: AsyncSession, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_site(session, slug="demo", origins=["http://testserver.local"])
    thread = "/2026/11/privacy"
    responses = []
    async with make_client(flood_seconds=0) as client:
        posted = await client.post("/api/comments", json=reply_body(site="demo", thread=thread, email=EMAIL))
        responses.append(posted)
        token = posted.json()["token"]
        comment = await session.get(Comment, posted.json()["comment"]["id"])
        assert comment is not None
        comment.status = CommentStatus.approved
        await refresh_thread(session, comment.thread_id)
        await session.commit()
        responses += [
            await client.post("/api/comments", json=reply_body(site="demo", thread=thread, email=EMAIL)),  # duplicate
            await client.post(
                "/api/comments",
                json=reply_body(site="demo", thread=thread, email=EMAIL, content="", url="javascript:x"),
            ),
            await client.post(
                "/api/comments", data={**reply_body(site="demo", thread=thread, email=EMAIL, content=""), "url": ""}
            ),
            await client.get(f"/api/comments?site=demo&thread={thread}"),
            await client.get(f"/api/comments?site=demo&thread={thread}", headers={"X-Comment-Token": token}),
            await client.get(f"/api/counts?site=demo&thread={thread}"),
            await client.get("/demo"),
            await client.get("/widget.js"),
            await client.get("/schema/openapi.json"),
        ]
    assert [r.status_code for r in responses] == [201, 409, 400, 400, 200, 200, 200, 200, 200, 200]
    assert responses[4].json()["comments"][0]["author"]["name"] == "Ada Lovelace"
    for response in responses:
        assert not leaks(response.text), response.request.url
        assert not any(leaks(v) for v in response.headers.values())
    assert any(record.name == "comments.submission" for record in caplog.records)
    assert not [r.getMessage() for r in caplog.records if leaks(r.getMessage())]
