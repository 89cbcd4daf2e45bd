"""Who may call a moderator or owner route: the dependencies every protected route uses.

How to protect a route (the export and privacy features reuse this):

    from comments.moderation import guards

    router = Router("/api/sites", route_handlers=[...], dependencies=guards.DEPENDENCIES)

    @get("/{site:str}/export")
    async def export_site(site: FromPath[str], owner: NamedDependency[guards.Member]) -> ...:
        ...  # owner.site is the Site, owner.user the User, owner.role is Role.owner

- `current_user` -> `User`: the account of the `comments_session` cookie; 401 without one.
- `member` -> `Member`: current user plus their role on the site named by the `site` path
  parameter or, when the path has none, the `site` query parameter; any role.
- `owner` -> `Member`: the same, but the role must be `owner`.

Refusals, in this order: no valid session -> 401 `not_authenticated`; the user is not a member
of the named site (or it does not exist) -> 404 `not_found`, with the same message as an unknown
site, so slugs and ids of other sites do not leak; a member whose role is too low -> 403 `forbidden`.
Comment ids are scoped the same way inside the services: another site's comment is a 404.

Outside Litestar's DI (CLI, tests, other services) call `require_member(session, user=..., site_slug=...)`.

For write requests (anything but GET/HEAD/OPTIONS) `current_user` opens the request's transaction
as a writer (`db.begin_write`, BEGIN IMMEDIATE on SQLite) before its first query, so the handler's
writes never have to upgrade a read transaction; services then must not call `begin_write` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request  # noqa: TC002  (Litestar resolves dependency annotations at runtime)
from litestar.di import NamedDependency, Provide
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: TC002  (Litestar reads the annotation at runtime)

from comments import db
from comments.errors import FieldError, Forbidden, InvalidInput, NotAuthenticated, NotFound
from comments.models import Membership, Role, Site, User
from comments.moderation import auth

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Member:
    """A logged-in user acting on one site, with their role there."""

    user: User
    site: Site
    role: Role

    @property
    def is_owner(self) -> bool:
        """True for the site's owners."""
        return self.role == Role.owner

    @property
    def user_id(self) -> int:
        """The user's primary key (always set for a stored user)."""
        return int(self.user.id or 0)

    @property
    def site_id(self) -> int:
        """The site's primary key (always set for a stored site)."""
        return int(self.site.id or 0)


async def require_user(request: Request[Any, Any, Any], session: AsyncSession) -> User:
    """The user of the request's session cookie.

    Raises:
        NotAuthenticated: no cookie, or an unknown or expired session.
    """
    if request.method not in SAFE_METHODS and not session.in_transaction():
        await db.begin_write(session)
    user = await auth.user_for_token(session, token=request.cookies.get(auth.SESSION_COOKIE))
    if user is None:
        raise NotAuthenticated("Please log in.")
    return user


async def require_member(session: AsyncSession, *, user: User, site_slug: str, role: Role = Role.moderator) -> Member:
    """The user's membership of the site, checked against the role required.

    Raises:
        NotFound: no such site, or the user is not a member of it (indistinguishable on purpose).
        Forbidden: a member, but `role=Role.owner` was required and they are a moderator.
    """
    row = (
        await session.exec(
            select(Site, Membership.role)
            .join(Membership, col(Membership.site_id) == col(Site.id))
            .where(col(Site.slug) == site_slug, col(Membership.user_id) == user.id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Unknown site: {site_slug!r}.")
    site, actual = row
    if role == Role.owner and actual != Role.owner:
        raise Forbidden("Only the site's owners may do this.")
    return Member(user=user, site=site, role=Role(actual))


def site_slug_of(request: Request[Any, Any, Any]) -> str:
    """The site a request names: the `site` path parameter, else the `site` query parameter.

    Raises:
        InvalidInput: the request names no site.
    """
    slug = request.path_params.get("site") or request.query_params.get("site")
    if not slug:
        raise InvalidInput([FieldError("site", "Name the site (?site=slug).")])
    return str(slug)


async def provide_current_user(request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> User:
    """Dependency `current_user`: the logged-in user (401 otherwise)."""
    return await require_user(request, db_session)


async def provide_member(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]
) -> Member:
    """Dependency `member`: the current user's membership of the requested site, any role."""
    return await require_member(db_session, user=current_user, site_slug=site_slug_of(request))


async def provide_owner(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]
) -> Member:
    """Dependency `owner`: the current user's membership of the requested site, which must be `owner`."""
    return await require_member(db_session, user=current_user, site_slug=site_slug_of(request), role=Role.owner)


DEPENDENCIES: dict[str, Provide] = {
    "current_user": Provide(provide_current_user),
    "member": Provide(provide_member),
    "owner": Provide(provide_owner),
}
