"""Owners' side of a site: its discussion settings and its members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import col, func, select

from comments import sites, threads
from comments.errors import Conflict, FieldError, InvalidInput, NotFound
from comments.models import Membership, Role, User, ident
from comments.moderation import accounts, service
from comments.moderation.schemas import (
    MemberAdd,
    MemberInfo,
    SiteSettings,
    SiteSettingsUpdate,
    ThreadMerge,
    ThreadRef,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.moderation.guards import Member

SECRET_FIELDS = frozenset({"webhook_secret"})
# Fields where an explicit null means "none" (no webhook, keep forever) rather than "leave as it is".
NULLABLE_FIELDS = frozenset({"webhook_url", "webhook_secret", "retention_personal_days", "retention_purge_days"})


async def update_settings(session: AsyncSession, *, owner: Member, changes: SiteSettingsUpdate) -> SiteSettings:
    """Apply the given settings; they hold from the next submission on. Audited (secrets redacted).

    Raises:
        InvalidInput: the webhook URL is not http(s).
    """
    site = owner.site
    values = changes.model_dump(exclude_unset=True)
    if "webhook_url" in values:
        url = (values["webhook_url"] or "").strip()
        if url and sites.origin_of(url) is None:
            raise InvalidInput([FieldError("webhook_url", "Use an http:// or https:// URL.")])
        values["webhook_url"] = url or None
    if "thread_query_params" in values and values["thread_query_params"] is not None:
        values["thread_query_params"] = sorted({p.strip() for p in values["thread_query_params"] if p.strip()})
    if "webhook_secret" in values:
        values["webhook_secret"] = values["webhook_secret"] or None
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in values.items():
        if value is None and field not in NULLABLE_FIELDS:
            continue
        old = getattr(site, field)
        if old == value:
            continue
        redact = field in SECRET_FIELDS
        before[field] = ("set" if old else None) if redact else _plain(old)
        after[field] = ("set" if value else None) if redact else _plain(value)
        setattr(site, field, value)
    if after:
        session.add(site)
        await service.record_event(session, member=owner, action="settings", before=before, after=after)
        await session.flush()
    return SiteSettings.build(site)


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


async def merge_threads(session: AsyncSession, *, owner: Member, data: ThreadMerge) -> ThreadRef:
    """Merge two threads of the owner's site (keys are canonicalized like the widget's); audited.

    Raises:
        NotFound: either key names no thread of the site.
        InvalidInput: both keys name the same thread.
    """
    keep = owner.site.thread_query_params
    target = await threads.merge_threads(
        session,
        site_id=owner.site_id,
        source_key=threads.canonical_key(data.source, keep_params=keep),
        target_key=threads.canonical_key(data.target, keep_params=keep),
        actor_id=owner.user_id,
    )
    return ThreadRef(id=ident(target), key=target.key, title=target.title, url=target.url)


async def list_members(session: AsyncSession, *, owner: Member) -> list[MemberInfo]:
    """Everyone with a role on the site, owners first."""
    rows = (
        await session.exec(
            select(User, Membership.role)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.site_id) == owner.site_id)
            .order_by(col(Membership.role).desc(), col(User.email))
        )
    ).all()
    return [MemberInfo(user_id=int(u.id or 0), email=u.email, name=u.name, role=Role(r)) for u, r in rows]


async def add_member(session: AsyncSession, *, owner: Member, data: MemberAdd) -> MemberInfo:
    """Give an account a role on the site, creating the account when `password` is given for a new email.

    Raises:
        InvalidInput: bad email, or a new account without a (long enough) password.
        Conflict: the account is already a member (change the role instead).
    """
    address = accounts.normalize_account_email(data.email)
    user = (await session.exec(select(User).where(col(User.email) == address))).first()
    if user is None:
        if not data.password:
            raise InvalidInput([FieldError("password", "No account has this email; give an initial password.")])
        user = await accounts.add_user(session, email=address, password=data.password, site=owner.site, role=data.role)
    else:
        if await _membership(session, owner=owner, user_id=int(user.id or 0)) is not None:
            raise Conflict("This account is already a member; change its role instead.")
        session.add(Membership(user_id=int(user.id or 0), site_id=owner.site_id, role=data.role))
        await session.flush()
    await service.record_event(
        session, member=owner, action="member_add", before=None, after={"email": address, "role": data.role.value}
    )
    return MemberInfo(user_id=int(user.id or 0), email=user.email, name=user.name, role=data.role)


async def _membership(session: AsyncSession, *, owner: Member, user_id: int) -> Membership | None:
    return (
        await session.exec(
            select(Membership).where(col(Membership.site_id) == owner.site_id, col(Membership.user_id) == user_id)
        )
    ).first()


async def _owner_count(session: AsyncSession, *, site_id: int) -> int:
    query = select(func.count()).where(col(Membership.site_id) == site_id, col(Membership.role) == Role.owner)
    return int((await session.exec(query)).one())


async def _member_to_change(
    session: AsyncSession, *, owner: Member, user_id: int, stays_owner: bool
) -> tuple[Membership, User]:
    """A member whose role is about to change or go, and their account; the last owner cannot stop being one.

    Raises:
        NotFound: the user is not a member of this site.
        Conflict: it would leave the site without an owner.
    """
    membership = await _membership(session, owner=owner, user_id=user_id)
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of this site.")
    if membership.role == Role.owner and not stays_owner and await _owner_count(session, site_id=owner.site_id) <= 1:
        raise Conflict("A site needs at least one owner.")
    return membership, await session.get_one(User, user_id)


async def change_role(session: AsyncSession, *, owner: Member, user_id: int, role: Role) -> MemberInfo:
    """Make a member an owner or a moderator.

    Raises:
        NotFound: the user is not a member of this site.
        Conflict: it would leave the site without an owner.
    """
    membership, user = await _member_to_change(session, owner=owner, user_id=user_id, stays_owner=role == Role.owner)
    old = membership.role
    if old != role:
        membership.role = role
        await service.record_event(
            session,
            member=owner,
            action="member_role",
            before={"email": user.email, "role": old.value},
            after={"email": user.email, "role": role.value},
        )
        await session.flush()
    return MemberInfo(user_id=user_id, email=user.email, name=user.name, role=role)


async def remove_member(session: AsyncSession, *, owner: Member, user_id: int) -> None:
    """Take away a member's role on the site (the account itself stays).

    Raises:
        NotFound: the user is not a member of this site.
        Conflict: it would leave the site without an owner.
    """
    membership, user = await _member_to_change(session, owner=owner, user_id=user_id, stays_owner=False)
    await service.record_event(
        session,
        member=owner,
        action="member_remove",
        before={"email": user.email, "role": Role(membership.role).value},
        after=None,
    )
    await session.delete(membership)
    await session.flush()
