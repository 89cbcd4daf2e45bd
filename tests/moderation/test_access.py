"""Every moderator and owner route, enumerated from the app's route table, refuses the wrong callers.

Handlers declare who may call them in `opt["auth"]` (`user`, `member`, `owner`; `opt["role"] = "owner"`
when the service demands an owner); these tests check that the declaration holds, and that no
route under /api/auth, /api/moderation, /api/sites (the owners' export) or /admin escapes classification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.app import create_app
from comments.models import AuditEvent, Comment, CommentStatus
from tests.moderation.conftest import LoginAs, World

pytestmark = pytest.mark.anyio

PROTECTED_PREFIXES = ("/api/auth", "/api/moderation", "/api/sites", "/admin")
PUBLIC = {("POST", "/api/auth/login"), ("GET", "/admin/login"), ("POST", "/admin/login")}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    auth: str
    role: str | None

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/admin")

    @property
    def names_a_site_or_comment(self) -> bool:
        return self.auth in ("member", "owner") or "{comment_id" in self.path or self.path.endswith("/bulk")

    @property
    def needs_owner(self) -> bool:
        return self.auth == "owner" or self.role == "owner"


def endpoints(app: Litestar) -> list[Endpoint]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(PROTECTED_PREFIXES):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                auth = handler.opt.get("auth")
                if (method, route.path) in PUBLIC or auth == "public":
                    continue
                assert auth in ("user", "member", "owner"), f"{method} {route.path} declares no auth"
                found.append(Endpoint(method, route.path, auth, handler.opt.get("role")))
    return found


async def test_every_protected_route_is_classified(app: Litestar) -> None:
    found = endpoints(app)
    assert len(found) >= 25
    assert {e.auth for e in found} == {"user", "member", "owner"}
    assert {(e.method, e.path) for e in found if e.path.startswith("/api/sites")} == {
        ("GET", "/api/sites/{site:str}/export"),
        ("POST", "/api/sites/{site:str}/privacy/export"),
        ("POST", "/api/sites/{site:str}/privacy/erase"),
    }


def url_of(endpoint: Endpoint, world: World) -> str:
    values = {"site": "alpha", "comment_id": str(world.pending.id), "user_id": str(world.moderator.id)}
    path = re.sub(r"\{(\w+):\w+\}", lambda m: values[m.group(1)], endpoint.path)
    return f"{path}?site=alpha"


def body_of(endpoint: Endpoint, world: World) -> dict[str, Any]:
    """A body that is valid where the route needs one, so the refusal comes from the access check."""
    if endpoint.method not in UNSAFE:
        return {}
    if endpoint.is_admin:
        fields = {"status": "approved", "bulk_status": "approved", "ids": str(world.pending.id), "next": "/admin"}
        return {"data": fields}
    if endpoint.path.endswith("/bulk"):
        return {"json": {"ids": [world.pending.id], "status": "approved"}}
    return {"json": {"status": "approved"} if "comment_id" in endpoint.path else {}}


async def call(client: AsyncTestClient[Litestar], endpoint: Endpoint, world: World, *, csrf: bool = True) -> Any:
    if "csrftoken" not in client.cookies:
        await client.get("/admin/login")
    headers = {"x-csrftoken": client.cookies["csrftoken"]} if csrf else {}
    return await client.request(
        endpoint.method, url_of(endpoint, world), headers=headers, follow_redirects=False, **body_of(endpoint, world)
    )


async def assert_untouched(session: AsyncSession, world: World) -> None:
    await session.commit()
    status = (await session.exec(select(Comment.status).where(col(Comment.id) == world.pending.id))).one()
    assert status == CommentStatus.pending
    assert (await session.exec(select(AuditEvent))).all() == []


async def test_anonymous_callers_are_refused(app: Litestar, world: World, session: AsyncSession) -> None:
    async with AsyncTestClient(app=create_app(app.state.settings), base_url="http://testserver.local") as anonymous:
        for endpoint in endpoints(app):
            response = await call(anonymous, endpoint, world)
            if endpoint.is_admin:
                assert response.status_code == 303, endpoint
                assert response.headers["location"].startswith("/admin/login"), endpoint
            else:
                assert response.status_code == 401, endpoint
                assert response.json()["code"] == "not_authenticated"
    await assert_untouched(session, world)


async def test_members_of_another_site_get_404(
    app: Litestar, login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    stranger = await login_as("owner@beta.example")
    checked = 0
    for endpoint in endpoints(app):
        if not endpoint.names_a_site_or_comment:
            continue
        response = await call(stranger.client, endpoint, world)
        assert response.status_code == 404, (endpoint, response.text)
        assert "Alpha" not in response.text
        checked += 1
    assert checked >= 20
    await assert_untouched(session, world)


async def test_moderators_cannot_use_owner_routes(
    app: Litestar, login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    moderator = await login_as("mod@alpha.example")
    owner_only = [e for e in endpoints(app) if e.needs_owner]
    assert len(owner_only) >= 10
    for endpoint in owner_only:
        response = await call(moderator.client, endpoint, world)
        assert response.status_code == 403, (endpoint, response.text)
    await assert_untouched(session, world)


async def test_state_changes_without_csrf_token_are_refused(
    app: Litestar, login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    owner = await login_as("owner@alpha.example")
    unsafe = [e for e in endpoints(app) if e.method in UNSAFE]
    assert len(unsafe) >= 15
    for endpoint in unsafe:
        missing = await call(owner.client, endpoint, world, csrf=False)
        assert missing.status_code == 403, endpoint
        assert missing.json()["code"] == "forbidden"
        forged = await owner.client.request(
            endpoint.method, url_of(endpoint, world), headers={"x-csrftoken": "forged" * 10}, **body_of(endpoint, world)
        )
        assert forged.status_code == 403, endpoint
    await assert_untouched(session, world)


async def test_members_reach_every_read_route(app: Litestar, login_as: LoginAs, world: World) -> None:
    """The positive control: with the right role, the same probes succeed."""
    owner = await login_as("owner@alpha.example")
    for endpoint in endpoints(app):
        if endpoint.method == "GET":
            response = await call(owner.client, endpoint, world)
            assert response.status_code in (200, 303), (endpoint, response.text)
