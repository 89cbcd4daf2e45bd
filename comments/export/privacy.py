"""Personal-data requests: everything stored about an email address, and its erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select, update

from comments import threads
from comments.errors import FieldError, InvalidInput
from comments.export.schemas import ErasureReport
from comments.export.service import LOOKUP_CHUNK
from comments.models import AuditEvent, Comment, LoginSession, Membership, Site, Thread, User

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlmodel.ext.asyncio.session import AsyncSession

ANONYMOUS = "Anonymous"
# What erasure removes from a comment and from every audit-log snapshot of it.
PERSONAL_FIELDS = ("author_name", "author_email", "author_url", "ip", "user_agent", "submitter_hash")
ERASED = {"author_name": ANONYMOUS, "author_email": "", "author_url": None, "ip": None, "user_agent": None}


def _address(email: str) -> str:
    address = email.strip().lower()
    if "@" not in address:
        # An empty address would match every comment erased before (their email is "").
        raise InvalidInput([FieldError("email", "Please enter a valid email address.")])
    return address


def _matching(address: str, site: Site | None) -> Any:
    # Addresses are matched case-insensitively: readers type them differently from one comment to the next.
    condition = sa.func.lower(col(Comment.author_email)) == address
    return condition if site is None else sa.and_(condition, col(Comment.site_id) == site.id)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + LOOKUP_CHUNK]) for i in range(0, len(ids), LOOKUP_CHUNK)]


async def export_personal_data(session: AsyncSession, *, email: str, site: Site | None = None) -> dict[str, Any]:
    """Everything stored about an address: its comments, its account and the audit log about either.

    With `site` everything is limited to that site, since an owner asks for it over the API: the
    comments there; the account only if it is a member of that site, with that membership alone and
    without its login sessions (they belong to no site); the audit events of that site.

    Raises:
        InvalidInput: not an email address.
    """
    address = _address(email)
    rows = (
        await session.exec(
            select(Comment, Thread, Site.slug)
            .join(Thread, col(Thread.id) == col(Comment.thread_id))
            .join(Site, col(Site.id) == col(Comment.site_id))
            .where(_matching(address, site))
            .order_by(col(Comment.id))
        )
    ).all()
    comments = [
        comment.model_dump(exclude={"idempotency_key"})
        | {"site": slug, "thread_key": thread.key, "thread_title": thread.title, "thread_url": thread.url}
        for comment, thread, slug in rows
    ]
    account = (await session.exec(select(User).where(sa.func.lower(col(User.email)) == address))).first()
    account_data: dict[str, Any] | None = None
    if account is not None:
        memberships_query = (
            select(Site.slug, Membership.role)
            .join(Site, col(Site.id) == col(Membership.site_id))
            .where(col(Membership.user_id) == account.id)
        )
        if site is not None:
            memberships_query = memberships_query.where(col(Membership.site_id) == site.id)
        memberships = (await session.exec(memberships_query)).all()
        if site is not None and not memberships:
            account = None  # an account of other sites only: none of this site's business
    if account is not None:
        account_data = account.model_dump(exclude={"password_hash"}) | {
            "memberships": [{"site": slug, "role": role} for slug, role in memberships]
        }
        if site is None:
            logins = (await session.exec(select(LoginSession).where(col(LoginSession.user_id) == account.id))).all()
            account_data["login_sessions"] = [{"created_at": s.created_at, "expires_at": s.expires_at} for s in logins]
    events: dict[int, AuditEvent] = {}
    for chunk in _chunks([c["id"] for c in comments]):
        found = await session.exec(select(AuditEvent).where(col(AuditEvent.comment_id).in_(chunk)))
        events.update({e.id: e for e in found.all() if e.id is not None and (site is None or e.site_id == site.id)})
    if account is not None:
        by_account = select(AuditEvent).where(col(AuditEvent.user_id) == account.id)
        if site is not None:
            by_account = by_account.where(col(AuditEvent.site_id) == site.id)
        found = await session.exec(by_account)
        events.update({e.id: e for e in found.all() if e.id is not None})
    return {
        "email": address,
        "site": site.slug if site else None,
        "generated_at": datetime.now(UTC),
        "comments": comments,
        "account": account_data,
        "audit_events": [events[i].model_dump() for i in sorted(events)],
    }


async def erase_personal_data(
    session: AsyncSession,
    *,
    email: str,
    site: Site | None = None,
    delete_comments: bool = False,
    actor_id: int | None = None,
) -> ErasureReport:
    """Anonymize (or delete) every comment written with this address, and scrub it from the audit log.

    Run it in a write transaction (`db.begin_write` first), like every write.

    Name becomes "Anonymous"; email (a NOT NULL column) becomes ""; url, IP, user agent and the
    submitter token hash are removed. Each comment gets an audit event that records *that* it was
    erased, never the erased values. Replies to deleted comments move up to the nearest surviving
    ancestor. Accounts are not touched (they are managed with `comments user`).

    Raises:
        InvalidInput: not an email address.
    """
    address = _address(email)
    rows = (
        await session.exec(
            select(Comment.id, Comment.site_id, Comment.thread_id, Comment.status).where(_matching(address, site))
        )
    ).all()
    report = ErasureReport()
    if not rows:
        return report
    ids = [int(i) for i, _, _, _ in rows if i is not None]
    touched = sorted({thread_id for _, _, thread_id, _ in rows})
    await _scrub_audit_log(session, ids)
    action = "privacy.delete" if delete_comments else "privacy.erase"
    for comment_id, site_id, _thread_id, status in rows:
        session.add(
            AuditEvent(
                site_id=site_id,
                user_id=actor_id,
                action=action,
                comment_id=comment_id,
                before={"status": str(status), "erased": list(PERSONAL_FIELDS)},
                after=None if delete_comments else dict(ERASED),
            )
        )
    if delete_comments:
        # Replies by other people move up to the nearest surviving ancestor; threads are refreshed.
        await threads.delete_comments(session, ids)
        report.deleted = len(ids)
    else:
        now = datetime.now(UTC)
        for chunk in _chunks(ids):
            await session.exec(
                update(Comment).where(col(Comment.id).in_(chunk)).values(**ERASED, submitter_hash=None, updated_at=now)
            )
        for thread_id in touched:
            await threads.refresh_thread(session, thread_id)
        report.anonymized = len(ids)
    report.threads = len(touched)
    await session.flush()
    return report


async def _scrub_audit_log(session: AsyncSession, comment_ids: list[int]) -> None:
    """Drop personal fields from earlier snapshots of these comments (an edit or moderation log keeps them)."""
    for chunk in _chunks(comment_ids):
        events = (await session.exec(select(AuditEvent).where(col(AuditEvent.comment_id).in_(chunk)))).all()
        for event in events:
            for side in ("before", "after"):
                snapshot = getattr(event, side)
                if isinstance(snapshot, dict) and any(field in snapshot for field in PERSONAL_FIELDS):
                    setattr(event, side, {k: v for k, v in snapshot.items() if k not in PERSONAL_FIELDS})
