"""post_reply called directly: posts sent together, which SQLite writes as one batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db
from comments.config import Settings
from comments.models import Comment, Thread
from comments.submission import service
from comments.submission.schemas import ReplyCreate
from tests.factories import make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio
ARTICLE = "https://blog.example.org/2026/11/article"


async def _post(engine: AsyncEngine, settings: Settings, **fields: Any) -> service.Submitted | service.Refusal:
    client = service.ClientInfo(ip=None, user_agent=None, origin=None, token=None, idempotency_key=None)
    async with db.session_maker(engine)() as own:
        return await service.post_reply(own, settings=settings, data=ReplyCreate(**reply_body(**fields)), client=client)


async def test_posts_sent_together_keep_the_first_title_given_to_an_untitled_thread(
    engine: AsyncEngine, session: AsyncSession, settings: Settings
) -> None:
    await make_thread(session, site=await make_site(session))
    outcomes = await asyncio.gather(
        *(
            _post(
                engine,
                settings,
                content=f"Reply {n}.",
                email=f"reader{n}@example.org",
                thread_title=f"Title {n}",
                thread_url=f"{ARTICLE}?n={n}",
            )
            for n in range(8)
        )
    )
    assert all(isinstance(outcome, service.Submitted) for outcome in outcomes)
    await session.rollback()  # a fresh snapshot: the batch committed after this session last read
    first = (await session.exec(select(Comment.content_raw).order_by(col(Comment.id)))).first()
    assert first is not None
    n = first.removeprefix("Reply ").removesuffix(".")
    thread = (await session.exec(select(Thread))).one()
    assert (thread.title, thread.url) == (f"Title {n}", f"{ARTICLE}?n={n}")
