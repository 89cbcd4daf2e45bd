"""Every moderator and owner route, enumerated from the app's route table, refuses the wrong callers.

Handlers declare who may call them in `opt["auth"]` (`user`, `member`, `owner`; `opt["role"] = "owner"`
when the service demands an owner); these tests check that the declaration holds, and that no route
of the whole app escapes classification: one added later is probed like the others, or the first test
fails and says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.app import create_app
from comments.models import AuditEvent, Comment, CommentStatus
from tests.moderation.conftest import LoginAs, World

pytestmark = pytest.mark.anyio

# Routes anyone may call. Everything else in the route table must declare who may call it in
# `opt["auth"]` ("user", "member", "owner", or "public" for assets), so a route added later, such as an
# export under /api/sites/{site}/..., is either checked by every test below or fails the first one.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/api/comments"),
    ("POST", "/api/comments"),
    ("GET", "/api/counts"),
    ("GET", "/embed"),
    ("GET", "/demo"),
    ("GET", "/widget.js"),
    ("GET", "/widget.css"),
    ("GET", "/page.css"),
    ("POST", "/api/auth/login"),
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
}
API_DOCS = "/schema"  # Litestar's OpenAPI documents and renderers: public, read-only
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# The dependency that enforces each declaration (comments.moderation.guards.DEPENDENCIES).
ENFORCED_BY = {"user": "current_user", "member": "member", "owner": "owner"}


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


def handlers(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """(method, path, handler) for every route of the app, OPTIONS and HEAD aside."""
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                found += [(m, route.path, handler) for m in sorted(handler.http_methods - {"OPTIONS", "HEAD"})]
    return found


def endpoints(app: Litestar) -> list[Endpoint]:
    """Every protected route, from the route table."""
    found = []
    for method, path, handler in handlers(app):
        auth = handler.opt.get("auth")
        if (method, path) in PUBLIC or auth == "public" or path.startswith(API_DOCS):
            continue
        assert auth in ENFORCED_BY, f"{method} {path} declares no auth: set opt['auth'] or list it as PUBLIC"
        found.append(Endpoint(method, path, auth, handler.opt.get("role")))
    return found


async def test_every_route_is_classified_and_enforced(app: Litestar) -> None:
    found = endpoints(app)
    assert len(found) >= 25
    assert {e.auth for e in found} == {"user", "member", "owner"}
    owners_export = {(e.method, e.path) for e in found if e.path.startswith("/api/sites") and e.needs_owner}
    assert owners_export == {
        ("GET", "/api/sites/{site:str}/export"),
        ("POST", "/api/sites/{site:str}/privacy/export"),
        ("POST", "/api/sites/{site:str}/privacy/erase"),
    }
    for method, path, handler in handlers(app):
        auth = handler.opt.get("auth")
        if auth in ENFORCED_BY:
            # The declaration is backed by the dependency that checks it, which the handler asks for
            # (a router providing it is not enough: Litestar only runs what the signature names)...
            assert ENFORCED_BY[auth] in handler.parsed_fn_signature.parameters, (method, path)
            # ...and no protected route opts out of the CSRF check.
            assert not handler.opt.get("exclude_from_csrf"), (method, path)
        if (method, path) in PUBLIC:
            assert auth is None, f"{method} {path} is listed as public but declares auth={auth}"


# Values for the path parameters of the probes; a parameter not listed gets "1" (int) or "x" (str),
# which is enough for the refusals, since access is checked before the handler looks at it.
PATH_VALUES = {"site": "alpha"}
QUERY_VALUES = {"site": "alpha"}


GHOST_SITE, GHOST_COMMENT = "no-such-site", "2147483000"


def url_of(endpoint: Endpoint, world: World, *, ghost: bool = False) -> str:
    """The probe's URL; `ghost` names a site and a comment that do not exist instead of alpha's."""
    values = {**PATH_VALUES, "comment_id": str(world.pending.id), "user_id": str(world.moderator.id)}
    query = QUERY_VALUES
    if ghost:
        values |= {"site": GHOST_SITE, "comment_id": GHOST_COMMENT}
        query = {**QUERY_VALUES, "site": GHOST_SITE}

    def value(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        return values.get(name, "1" if kind == "int" else "x")

    path = re.sub(r"\{(\w+):(\w+)\}", value, endpoint.path)
    return f"{path}?{urlencode(query)}"


def body_of(endpoint: Endpoint, world: World, *, ghost: bool = False) -> dict[str, Any]:
    """A body that is valid where the route needs one, so the refusal comes from the access check."""
    if endpoint.method not in UNSAFE:
        return {}
    comment_id = int(GHOST_COMMENT) if ghost else world.pending.id
    if endpoint.is_admin:
        fields = {"status": "approved", "bulk_status": "approved", "ids": str(comment_id), "next": "/admin"}
        return {"data": fields}
    if endpoint.path.endswith("/bulk"):
        return {"json": {"ids": [comment_id], "status": "approved"}}
    return {"json": {"status": "approved"} if "comment_id" in endpoint.path else {}}


async def call(
    client: AsyncTestClient[Litestar], endpoint: Endpoint, world: World, *, csrf: bool = True, ghost: bool = False
) -> Any:
    if "csrftoken" not in client.cookies:
        await client.get("/admin/login")
    headers = {"x-csrftoken": client.cookies["csrftoken"]} if csrf else {}
    url, body = url_of(endpoint, world, ghost=ghost), body_of(endpoint, world, ghost=ghost)
    return await client.request(endpoint.method, url, headers=headers, follow_redirects=False, **body)


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
        # The same answer as for a site or comment that does not exist: nothing tells that alpha's do.
        unknown = await call(stranger.client, endpoint, world, ghost=True)
        as_if_unknown = re.sub(rf"\b{world.pending.id}\b", GHOST_COMMENT, response.text.replace("alpha", GHOST_SITE))
        assert (unknown.status_code, unknown.text) == (404, as_if_unknown), endpoint
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
