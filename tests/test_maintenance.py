"""Retention drops exactly what each site asked for, records it, and runs once across instances."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import maintenance
from comments.config import Settings
from comments.models import AuditEvent, Comment, CommentStatus, utcnow
from tests.factories import make_comment, make_site, make_thread
from tests.test_cli import cli_env, run_cli

pytestmark = pytest.mark.anyio


async def aged(session: AsyncSession, comment: Comment, days: int) -> Comment:
    comment.created_at = utcnow() - timedelta(days=days)
    comment.ip, comment.user_agent = "203.0.113.0", "Mozilla/5.0"
    await session.commit()
    return comment


async def test_retention_drops_exactly_what_it_should(session: AsyncSession) -> None:
    site = await make_site(session)
    other = await make_site(session, slug="other")
    site.retention_personal_days, site.retention_purge_days = 30, 60
    await session.commit()
    thread = await make_thread(session, site=site)
    other_thread = await make_thread(session, site=other)
    old_ok = await aged(session, await make_comment(session, thread=thread, content="old approved"), 40)
    new_ok = await aged(session, await make_comment(session, thread=thread, content="new approved"), 5)
    old_spam = await aged(
        session, await make_comment(session, thread=thread, status=CommentStatus.spam, content="old spam"), 90
    )
    await aged(session, await make_comment(session, thread=thread, status=CommentStatus.trash, content="old trash"), 61)
    young_spam = await aged(
        session, await make_comment(session, thread=thread, status=CommentStatus.spam, content="young spam"), 10
    )
    foreign = await aged(
        session,
        await make_comment(session, thread=other_thread, status=CommentStatus.spam, content="other site's old spam"),
        400,
    )
    ids = {c.content_raw: c.id for c in (old_ok, new_ok, old_spam, young_spam, foreign)}

    reports = await maintenance.apply_retention(session)
    await session.commit()

    assert {r.site: (r.personal_data_cleared, r.comments_purged) for r in reports} == {"blog": (3, 2), "other": (0, 0)}
    rows = {c.id: c for c in (await session.exec(select(Comment))).all()}
    assert set(rows) == {ids["old approved"], ids["new approved"], ids["young spam"], ids["other site's old spam"]}
    assert (rows[ids["old approved"]].ip, rows[ids["old approved"]].user_agent) == (None, None)
    assert rows[ids["new approved"]].ip == "203.0.113.0"
    assert rows[ids["other site's old spam"]].ip == "203.0.113.0"
    actions = [(e.action, e.after) for e in (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id))))]
    assert actions == [
        ("retention_personal_data", {"comments": 3, "older_than_days": 30}),
        ("retention_purge", {"comments": 2, "older_than_days": 60}),
    ]


async def test_only_one_instance_holds_the_lease(session: AsyncSession) -> None:
    ttl = timedelta(minutes=5)
    assert await maintenance.take_lease(session, holder="a", ttl=ttl)
    assert not await maintenance.take_lease(session, holder="b", ttl=ttl)
    assert await maintenance.take_lease(session, holder="a", ttl=ttl)
    assert await maintenance.take_lease(session, holder="b", ttl=ttl, now=utcnow() + timedelta(minutes=6))


async def test_serve_runs_retention_periodically(session: AsyncSession, make_client: Any) -> None:
    site = await make_site(session)
    site.retention_purge_days = 1
    await session.commit()
    thread = await make_thread(session, site=site)
    await aged(session, await make_comment(session, thread=thread, status=CommentStatus.trash), 3)
    async with make_client(maintenance_interval=0.2):
        with anyio.fail_after(10):
            while True:
                await session.rollback()
                if not (await session.exec(select(Comment))).all():
                    break
                await anyio.sleep(0.1)
    assert (await session.exec(select(AuditEvent.action))).all() == ["retention_purge"]


async def test_site_set_and_maintenance_from_the_cli(settings: Settings, session: AsyncSession) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    await aged(session, await make_comment(session, thread=thread, status=CommentStatus.spam), 10)
    env = cli_env(settings)
    configured = run_cli("site", "set", "blog", "--retention-purge-days", "7", "--thread-param", "p", env=env)
    assert configured.returncode == 0, configured.stderr
    done = run_cli("maintenance", "--site", "blog", env=env)
    assert done.returncode == 0, done.stderr
    assert "1 spam/trash comments purged" in done.stdout
    await session.rollback()
    assert (await session.exec(select(Comment))).all() == []
