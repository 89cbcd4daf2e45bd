"""Logins, server-side sessions, their cookie and the login rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import security
from comments.models import LoginSession, RateEvent, User, utcnow
from comments.moderation import auth
from tests.moderation.conftest import PASSWORD, LoginAs, World

pytestmark = pytest.mark.anyio


async def login(client: AsyncTestClient[Litestar], email: str, password: str = PASSWORD):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_login_sets_an_httponly_lax_session_cookie(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession
) -> None:
    response = await login(client, "Owner@Alpha.example ")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "owner@alpha.example"
    assert body["sites"] == [{"slug": "alpha", "name": "Alpha", "role": "owner"}]
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("comments_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http base URL in tests
    assert "Max-Age=1209600" in cookie
    token = client.cookies["comments_session"]
    stored = (await session.exec(select(LoginSession))).all()
    assert [s.token_hash for s in stored] == [security.token_hash(token)]  # the raw token is never stored
    assert (await client.get("/api/auth/me")).json()["email"] == "owner@alpha.example"


async def test_session_cookie_is_secure_behind_https(settings, world: World) -> None:
    from comments.app import create_app

    app = create_app(settings.model_copy(update={"base_url": "https://comments.example"}))
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        response = await login(client, "owner@alpha.example")
        assert response.status_code == 200
        cookies = response.headers.get_list("set-cookie")
        assert all("Secure" in c for c in cookies if c.startswith(("comments_session=", "csrftoken=")))


@pytest.mark.parametrize(
    ("email", "password"),
    [("owner@alpha.example", "wrong password!"), ("nobody@alpha.example", PASSWORD), ("not an email", "x")],
)
async def test_login_failures_never_say_whether_the_email_exists(
    client: AsyncTestClient[Litestar], world: World, email: str, password: str
) -> None:
    response = await login(client, email, password)
    assert response.status_code == 401
    assert response.json() == {"detail": "Wrong email or password.", "code": "not_authenticated"}
    assert "comments_session" not in client.cookies


async def test_a_disabled_account_cannot_log_in(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession
) -> None:
    await session.exec(update(User).where(col(User.id) == world.owner.id).values(is_active=False))
    await session.commit()
    assert (await login(client, "owner@alpha.example")).status_code == 401


async def test_login_is_rate_limited_per_account(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession
) -> None:
    for _ in range(auth.MAX_FAILURES_PER_ACCOUNT):
        assert (await login(client, "owner@alpha.example", "bad")).status_code == 401
    refused = await login(client, "owner@alpha.example")  # even the right password
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "owner@alpha.example" not in refused.text
    assert refused.headers["retry-after"]
    # Unknown accounts are limited the same way, so the limit does not reveal which exist.
    for _ in range(auth.MAX_FAILURES_PER_ACCOUNT):
        await login(client, "ghost@alpha.example", "bad")
    assert (await login(client, "ghost@alpha.example", "bad")).status_code == 429
    # Old failures fall out of the window.
    await session.exec(update(RateEvent).values(created_at=utcnow() - auth.LOGIN_WINDOW - timedelta(seconds=1)))
    await session.commit()
    assert (await login(client, "owner@alpha.example")).status_code == 200


async def test_login_is_rate_limited_per_ip(client: AsyncTestClient[Litestar], world: World, monkeypatch) -> None:
    monkeypatch.setattr(auth, "MAX_FAILURES_PER_IP", 3)
    for n in range(3):
        assert (await login(client, f"guess{n}@alpha.example", "bad")).status_code == 401
    assert (await login(client, "mod@alpha.example")).status_code == 429


async def test_success_clears_the_account_failures(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession
) -> None:
    await login(client, "owner@alpha.example", "bad")
    assert (await login(client, "owner@alpha.example")).status_code == 200
    buckets = (await session.exec(select(RateEvent.bucket))).all()
    assert not [b for b in buckets if b.startswith("login:account:")]


async def test_logout_ends_the_session_server_side(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    token = owner.client.cookies["comments_session"]
    response = await owner.send("POST", "/api/auth/logout")
    assert response.status_code == 200
    assert (await session.exec(select(LoginSession))).all() == []
    # Replaying the copied cookie does not work any more.
    owner.client.cookies.set("comments_session", token, domain="testserver.local")
    assert (await owner.get("/api/auth/me")).status_code == 401


async def test_expired_sessions_are_refused(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    await session.exec(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    await session.commit()
    assert (await owner.get("/api/auth/me")).status_code == 401


async def test_sessions_survive_a_restart(login_as: LoginAs, world: World, settings) -> None:
    from comments.app import create_app

    owner = await login_as("owner@alpha.example")
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as other_instance:
        other_instance.cookies.set(
            "comments_session", owner.client.cookies["comments_session"], domain="testserver.local"
        )
        assert (await other_instance.get("/api/auth/me")).status_code == 200


async def test_old_password_hashes_are_upgraded_at_login(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession, monkeypatch
) -> None:
    owner_id = world.owner.id
    old = (await session.exec(select(User.password_hash).where(col(User.id) == owner_id))).one()
    monkeypatch.setattr(security, "hasher", PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert security.needs_rehash(old)
    assert (await login(client, "owner@alpha.example")).status_code == 200
    await session.rollback()  # end the read snapshot taken before the login
    new = (await session.exec(select(User.password_hash).where(col(User.id) == owner_id))).one()
    assert new != old
    assert not security.needs_rehash(new)
    assert (await login(client, "owner@alpha.example")).status_code == 200


def test_production_hasher_is_argon2id_with_rfc9106_parameters() -> None:
    params = PasswordHasher().hash("x")
    assert params.startswith("$argon2id$")
    assert security.PasswordHasher().time_cost >= 3
