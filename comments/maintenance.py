"""Retention: forget personal data and purge spam and trash after each site's chosen number of days.

Run by `comments maintenance` and by a periodic task inside `comments serve`; a lease
row in the database makes sure only one of several app instances runs it at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, or_, select, update

from comments import db, threads
from comments.models import AuditEvent, Comment, CommentStatus, JobLease, Site, ident, utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger("comments.maintenance")
LEASE = "maintenance"


@dataclass(frozen=True)
class Report:
    """What one maintenance pass did to one site."""

    site: str
    personal_data_cleared: int
    comments_purged: int


async def apply_retention(
    session: AsyncSession, *, site_slug: str | None = None, now: datetime | None = None
) -> list[Report]:
    """Apply every site's retention settings (or one site's) and write what was done to the audit log."""
    now = now or utcnow()
    query = select(Site).order_by(col(Site.slug))
    if site_slug is not None:
        query = query.where(col(Site.slug) == site_slug)
    reports = []
    for site in (await session.exec(query)).all():
        cleared = await _clear_personal_data(session, site, now) if site.retention_personal_days else 0
        purged = await _purge(session, site, now) if site.retention_purge_days else 0
        reports.append(Report(site.slug, cleared, purged))
    return reports


async def _clear_personal_data(session: AsyncSession, site: Site, now: datetime) -> int:
    days = site.retention_personal_days or 0
    result = await session.exec(
        update(Comment)
        .where(
            col(Comment.site_id) == ident(site),
            col(Comment.created_at) < now - timedelta(days=days),
            or_(col(Comment.ip).is_not(None), col(Comment.user_agent).is_not(None)),
        )
        .values(ip=None, user_agent=None)
    )
    if result.rowcount:
        session.add(
            AuditEvent(
                site_id=site.id,
                action="retention_personal_data",
                after={"comments": result.rowcount, "older_than_days": days},
            )
        )
    return int(result.rowcount)


async def _purge(session: AsyncSession, site: Site, now: datetime) -> int:
    days = site.retention_purge_days or 0
    doomed = (
        await session.exec(
            select(Comment.id).where(
                col(Comment.site_id) == ident(site),
                col(Comment.status).in_([CommentStatus.spam, CommentStatus.trash]),
                func.coalesce(col(Comment.moderated_at), col(Comment.created_at)) < now - timedelta(days=days),
            )
        )
    ).all()
    ids = [i for i in doomed if i is not None]
    if ids:
        await threads.delete_comments(session, ids)
        session.add(
            AuditEvent(site_id=site.id, action="retention_purge", after={"comments": len(ids), "older_than_days": days})
        )
    return len(ids)


async def take_lease(session: AsyncSession, *, holder: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """True when this holder may run maintenance now (no one else holds an unexpired lease)."""
    now = now or utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.exec(
        insert(JobLease)
        .values(name=LEASE, holder=holder, expires_at=now - timedelta(seconds=1))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    taken = await session.exec(
        update(JobLease)
        .where(col(JobLease.name) == LEASE, or_(col(JobLease.expires_at) < now, col(JobLease.holder) == holder))
        .values(holder=holder, expires_at=now + ttl)
    )
    return bool(taken.rowcount)


async def run_periodically(engine: AsyncEngine, *, interval: float) -> None:
    """The task `comments serve` runs in every worker: at most one of them does the work each interval."""
    holder = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        await asyncio.sleep(interval)
        try:
            async with db.session_scope(engine) as session:
                await db.begin_write(session)
                if await take_lease(session, holder=holder, ttl=timedelta(seconds=interval * 0.9)):
                    for report in await apply_retention(session):
                        if report.personal_data_cleared or report.comments_purged:
                            log.info("retention on %s: %s", report.site, report)
        except Exception:  # a failed pass must not end the task; the next interval tries again
            log.exception("maintenance pass failed")


@contextlib.asynccontextmanager
async def periodic(engine: AsyncEngine, *, interval: float) -> AsyncIterator[None]:
    """Run maintenance in the background for the app's lifetime (off when interval is 0)."""
    if interval <= 0:
        yield
        return
    task = asyncio.create_task(run_periodically(engine, interval=interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
