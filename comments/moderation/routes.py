"""The moderation API: login, the queue, the audit log, site settings and members (JSON).

Every route here except `POST /api/auth/login` needs the `comments_session` cookie, and every
state-changing one also the CSRF token (cookie `csrftoken`, echoed in the `x-csrftoken` header).
Refusals: 401 without a session, 404 for a site or comment outside the caller's memberships,
403 when the role is too low, 403 without a valid CSRF token. Replies of a comment that is not
approved are hidden from the public with it (see `service`), whatever their own status.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.errors import error_responses
from comments.models import CommentStatus, User
from comments.moderation import admin, auth, guards, service, site_settings
from comments.moderation.schemas import (
    Account,
    AuditPage,
    BulkResult,
    BulkUpdate,
    CommentModeration,
    CommentUpdate,
    LoginRequest,
    MemberAdd,
    MemberInfo,
    MemberUpdate,
    QueuePage,
    SiteSettings,
    SiteSettingsUpdate,
    StatusCounts,
    ThreadMerge,
    ThreadRef,
)

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

PageSize = Annotated[int, QueryParameter(ge=1, le=100, description="Rows per page.")]
MEMBER = {"auth": "member"}
OWNER = {"auth": "owner"}
USER = {"auth": "user"}


async def account_of(session: AsyncSession, user: User) -> Account:
    """The user with the sites they belong to."""
    sites = await service.list_memberships(session, user=user)
    return Account(id=int(user.id or 0), email=user.email, name=user.name, sites=sites)


# Every moderator route answers errors as ErrorBody; documenting them keeps the schema (and its fuzzing) honest.
API_ERRORS = error_responses(400, 401, 403, 404, 409, 429)


class AuthController(Controller):
    """Moderator and owner sessions."""

    path = "/api/auth"
    dependencies = guards.DEPENDENCIES
    tags = ["moderation"]  # noqa: RUF012

    # Login is exempt from CSRF: there is no session to ride on yet, and it only accepts JSON,
    # which a cross-site <form> cannot send.
    @post("/login", responses=API_ERRORS, opt={"exclude_from_csrf": True}, status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        db_engine: NamedDependency[AsyncEngine],
        db_session: NamedDependency[AsyncSession],
    ) -> Response[Account]:
        """Log in with email and password; sets the `comments_session` cookie (rate-limited)."""
        ip = request.client.host if request.client else None
        result = await auth.login(db_engine, email=data.email, password=data.password, ip=ip)
        account = await account_of(db_session, result.user)
        secure = request.app.state.settings.secure_cookies
        return Response(account, cookies=[auth.session_cookie(result.token, secure=secure)])

    @post("/logout", responses=API_ERRORS, status_code=200, opt=USER)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        current_user: NamedDependency[User],
    ) -> Response[dict[str, str]]:
        """End the session server-side and clear the cookie."""
        await auth.logout(db_session, token=request.cookies.get(auth.SESSION_COOKIE))
        secure = request.app.state.settings.secure_cookies
        return Response({"detail": "Logged out."}, cookies=[auth.session_cookie("", secure=secure, max_age=0)])

    @get("/me", responses=API_ERRORS, opt=USER, cache=False)
    async def me(self, db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]) -> Account:
        """The logged-in user and their sites and roles."""
        return await account_of(db_session, current_user)


class QueueController(Controller):
    """The moderation queue of the sites a user belongs to."""

    path = "/api/moderation"
    dependencies = guards.DEPENDENCIES
    tags = ["moderation"]  # noqa: RUF012

    @get("/comments", responses=API_ERRORS, opt=MEMBER, cache=False)
    async def list_queue(
        self,
        db_session: NamedDependency[AsyncSession],
        member: NamedDependency[guards.Member],
        site: FromQuery[str],
        status: FromQuery[CommentStatus] = CommentStatus.pending,
        thread: FromQuery[str | None] = None,
        email: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        reason: FromQuery[str | None] = None,
        sort: FromQuery[Literal["newest", "score"]] = "newest",
        cursor: FromQuery[str | None] = None,
        limit: PageSize = 50,
    ) -> QueuePage:
        """List a site's comments in one status, newest first or likely-good first (`sort=score`).

        Filters: thread key, author email, text, dates, and `reason` (the rule that held or
        spammed it: `links`, `moderation_keyword`, `disallowed_keyword`, `spam_score`, `honeypot`...).
        """
        return await service.list_queue(
            db_session,
            member=member,
            status=status,
            thread_key=thread,
            email=email,
            text=q,
            since=since,
            until=until,
            reason=reason,
            by_score=sort == "score",
            cursor=cursor,
            limit=limit,
        )

    @get("/counts", responses=API_ERRORS, opt=MEMBER, cache=False)
    async def count_queue(
        self, db_session: NamedDependency[AsyncSession], member: NamedDependency[guards.Member], site: FromQuery[str]
    ) -> StatusCounts:
        """Comments per status on a site (the "12 pending" badge)."""
        return await service.count_statuses(db_session, site_id=member.site_id)

    @get("/comments/{comment_id:int}", responses=API_ERRORS, opt=USER, cache=False)
    async def get_comment(
        self,
        db_session: NamedDependency[AsyncSession],
        current_user: NamedDependency[User],
        comment_id: FromPath[int],
    ) -> CommentModeration:
        """One comment with email, IP, user agent, raw text and the author's history."""
        return await service.get_comment(db_session, user=current_user, comment_id=comment_id)

    @patch("/comments/{comment_id:int}", responses=API_ERRORS, opt=USER)
    async def update_comment(
        self,
        db_session: NamedDependency[AsyncSession],
        current_user: NamedDependency[User],
        comment_id: FromPath[int],
        data: JSONBody[CommentUpdate],
    ) -> CommentModeration:
        """Approve, spam, trash or restore (status) and/or edit (content, sanitized again) a comment."""
        return await service.update_comment(
            db_session, user=current_user, comment_id=comment_id, status=data.status, content=data.content
        )

    @delete("/comments/{comment_id:int}", responses=API_ERRORS, opt={**USER, "role": "owner"}, status_code=200)
    async def delete_comment(
        self,
        db_session: NamedDependency[AsyncSession],
        current_user: NamedDependency[User],
        comment_id: FromPath[int],
    ) -> dict[str, list[int]]:
        """Delete a spam or trashed comment (and its spam/trashed replies) for good; owners only."""
        return {"deleted": await service.delete_comment(db_session, user=current_user, comment_id=comment_id)}

    @post("/comments/bulk", responses=API_ERRORS, opt=USER, status_code=200)
    async def bulk_update(
        self,
        db_session: NamedDependency[AsyncSession],
        current_user: NamedDependency[User],
        data: JSONBody[BulkUpdate],
    ) -> BulkResult:
        """Give many comments one status in one transaction (all or nothing)."""
        changed = await service.bulk_update(db_session, user=current_user, ids=data.ids, status=data.status)
        return BulkResult(ids=changed, status=data.status)

    @get("/audit", responses=API_ERRORS, opt=MEMBER, cache=False)
    async def list_audit(
        self,
        db_session: NamedDependency[AsyncSession],
        member: NamedDependency[guards.Member],
        site: FromQuery[str],
        comment_id: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: PageSize = 50,
    ) -> AuditPage:
        """The site's audit log, newest first: who did what to which comment, before and after."""
        return await service.list_audit(db_session, member=member, comment_id=comment_id, cursor=cursor, limit=limit)


class SiteAdminController(Controller):
    """Owners' settings and members of one site."""

    path = "/api/moderation/sites/{site:str}"
    dependencies = guards.DEPENDENCIES
    tags = ["moderation"]  # noqa: RUF012

    @get("/settings", responses=API_ERRORS, opt=OWNER, cache=False)
    async def get_settings(self, owner: NamedDependency[guards.Member]) -> SiteSettings:
        """The site's auto-moderation rules, webhook and reply depth."""
        return SiteSettings.build(owner.site)

    @patch("/settings", responses=API_ERRORS, opt=OWNER)
    async def update_settings(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        data: JSONBody[SiteSettingsUpdate],
    ) -> SiteSettings:
        """Change the rules; they apply from the next submission on."""
        return await site_settings.update_settings(db_session, owner=owner, changes=data)

    @post("/threads/merge", responses=API_ERRORS, opt=OWNER, status_code=200)
    async def merge_threads(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        data: JSONBody[ThreadMerge],
    ) -> ThreadRef:
        """Move every comment of one thread into another; the old key keeps resolving (reads, counts, replies)."""
        return await site_settings.merge_threads(db_session, owner=owner, data=data)

    @get("/members", responses=API_ERRORS, opt=OWNER, cache=False)
    async def list_members(
        self, db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member]
    ) -> list[MemberInfo]:
        """Everyone with a role on the site."""
        return await site_settings.list_members(db_session, owner=owner)

    @post("/members", responses=API_ERRORS, opt=OWNER, status_code=201)
    async def add_member(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        data: JSONBody[MemberAdd],
    ) -> MemberInfo:
        """Give an account (new or existing) a role on the site."""
        return await site_settings.add_member(db_session, owner=owner, data=data)

    @patch("/members/{user_id:int}", responses=API_ERRORS, opt=OWNER)
    async def change_role(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        user_id: FromPath[int],
        data: JSONBody[MemberUpdate],
    ) -> MemberInfo:
        """Make a member an owner or a moderator (a site keeps at least one owner)."""
        return await site_settings.change_role(db_session, owner=owner, user_id=user_id, role=data.role)

    @delete("/members/{user_id:int}", responses=API_ERRORS, opt=OWNER, status_code=200)
    async def remove_member(
        self, db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member], user_id: FromPath[int]
    ) -> dict[str, int]:
        """Take a member's role away (the account stays)."""
        await site_settings.remove_member(db_session, owner=owner, user_id=user_id)
        return {"removed": user_id}


ROUTES: list[ControllerRouterHandler] = [AuthController, QueueController, SiteAdminController, *admin.ROUTES]
