"""Logins, server-side sessions, their cookie and the login rate limit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import Parameters, Type, extract_parameters
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import security
from comments.models import LoginSession, RateEvent, User, utcnow
from comments.moderation import auth
from tests.moderation.conftest import PASSWORD, LoginAs, World

pytestmark = pytest.mark.anyio

# Taken at import, before the autouse fixture swaps in a cheap hasher for speed.
PRODUCTION_HASHER = security.hasher


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


def cookie_header(response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("way", ["api", "form"])
async def test_both_logins_set_httponly_samesite_cookies_and_secure_over_https(
    settings, world: World, scheme: str, way: str
) -> None:
    from comments.app import create_app

    app = create_app(settings.model_copy(update={"base_url": f"{scheme}://comments.example"}))
    async with AsyncTestClient(app=app, base_url=f"{scheme}://testserver.local") as client:
        page = await client.get("/admin/login")  # hands out the csrftoken cookie, as a browser would get it
        credentials = {"email": "owner@alpha.example", "password": PASSWORD}
        if way == "api":
            response = await client.post("/api/auth/login", json=credentials)
            assert response.status_code == 200
        else:
            response = await client.post("/admin/login", data=credentials, follow_redirects=False)
            assert response.status_code == 303
        session_cookie = cookie_header(response, "comments_session").lower()
        csrf_cookie = cookie_header(page, "csrftoken").lower()
    assert "httponly" in session_cookie  # no script, injected or not, can read the session
    assert "samesite=lax" in session_cookie  # not sent on cross-site posts
    assert "path=/" in session_cookie
    assert "samesite=lax" in csrf_cookie
    for cookie in (session_cookie, csrf_cookie):
        assert ("; secure" in cookie) == (scheme == "https"), cookie


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


async def test_logout_form_ends_the_session_server_side(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    token = owner.client.cookies["comments_session"]
    page = await owner.get("/admin/queue?site=alpha")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = await owner.client.post("/admin/logout", data={"_csrf_token": csrf.group(1)}, follow_redirects=False)
    assert response.status_code == 303
    assert "max-age=0" in cookie_header(response, "comments_session").lower()
    await session.rollback()
    assert (await session.exec(select(LoginSession))).all() == []
    # A copy of the cookie taken before logout is refused by every kind of route.
    owner.client.cookies.set("comments_session", token, domain="testserver.local")
    assert (await owner.get("/api/auth/me")).status_code == 401
    again = await owner.get("/admin/queue?site=alpha", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/admin/login")
    assert (
        await owner.send("PATCH", f"/api/moderation/comments/{world.pending.id}", json={"status": "approved"})
    ).status_code == 401


async def test_logout_ends_only_that_session(login_as: LoginAs, world: World) -> None:
    laptop = await login_as("owner@alpha.example")
    phone = await login_as("owner@alpha.example")
    assert (await laptop.send("POST", "/api/auth/logout")).status_code == 200
    assert (await laptop.get("/api/auth/me")).status_code == 401
    assert (await phone.get("/api/auth/me")).status_code == 200


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


# RFC 9106 section 4, second recommended option ("low memory"): argon2id, t=3, m=64 MiB, p=4,
# 128-bit salt, 256-bit tag. Spelled out here, not taken from argon2-cffi, so the test states the requirement.
RFC_9106_LOW_MEMORY = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=3, memory_cost=65536, parallelism=4
)


async def stored_hash(session: AsyncSession, email: str) -> str:
    await session.rollback()  # a fresh snapshot: the write happened in the app's own transaction
    return (await session.exec(select(User.password_hash).where(col(User.email) == email))).one()


async def test_stored_password_hashes_use_argon2id_with_rfc9106_low_memory_parameters(
    login_as: LoginAs, world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "hasher", PRODUCTION_HASHER)  # undo the suite's cheap hasher
    owner = await login_as("owner@alpha.example")
    new = {"email": "new@alpha.example", "role": "moderator", "password": "a long enough password"}
    assert (await owner.send("POST", "/api/moderation/sites/alpha/members", json=new)).status_code == 201
    stored = await stored_hash(session, "new@alpha.example")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert extract_parameters(stored) == RFC_9106_LOW_MEMORY
    assert await security.verify_password(stored, "a long enough password")


async def test_weaker_hashes_are_rehashed_at_the_next_login(
    client: AsyncTestClient[Litestar], world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture accounts were hashed with t=1, m=1 MiB, p=1, as an older release might have stored them.
    old = await stored_hash(session, "owner@alpha.example")
    assert extract_parameters(old).memory_cost == 1024
    monkeypatch.setattr(security, "hasher", PRODUCTION_HASHER)
    assert security.needs_rehash(old)
    assert (await login(client, "owner@alpha.example")).status_code == 200
    new = await stored_hash(session, "owner@alpha.example")
    assert extract_parameters(new) == RFC_9106_LOW_MEMORY
    assert not security.needs_rehash(new)
    # The new hash works, and a hash that is already current is left alone.
    assert (await login(client, "owner@alpha.example")).status_code == 200
    assert await stored_hash(session, "owner@alpha.example") == new
    # The moderator has not logged in yet: still the old parameters.
    assert extract_parameters(await stored_hash(session, "mod@alpha.example")).memory_cost == 1024


def test_the_configured_hasher_is_rfc9106_low_memory() -> None:
    assert extract_parameters(PRODUCTION_HASHER.hash("x")) == RFC_9106_LOW_MEMORY
