"""Moderation fixtures: two sites with their owners and moderator, and logged-in HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import security
from comments.app import create_app
from comments.config import Settings
from comments.models import Comment, CommentStatus, Role, Site, Thread, User
from comments.moderation import accounts, notifications
from tests.factories import make_comment, make_site, make_thread

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost makes every login ~100 ms; the tests only need the same algorithm."""
    monkeypatch.setattr(security, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(notifications, "RETRY_DELAYS", (0.01, 0.01))


@dataclass
class World:
    """Site `alpha` (owner + moderator) and site `beta` (its own owner), a thread and comments on each."""

    alpha: Site
    beta: Site
    alpha_thread: Thread
    beta_thread: Thread
    owner: User
    moderator: User
    stranger: User  # owner of beta, nothing on alpha
    pending: Comment
    approved: Comment
    beta_pending: Comment


async def add_account(session: AsyncSession, email: str, site: Site, role: Role) -> User:
    user = await accounts.add_user(session, email=email, password=PASSWORD, site=site, role=role)
    await session.commit()
    return user


@pytest.fixture
async def world(session: AsyncSession) -> World:
    alpha = await make_site(session, slug="alpha")
    beta = await make_site(session, slug="beta")
    alpha_thread = await make_thread(
        session, site=alpha, key="/post-1", title="Post one", url="https://alpha.example/1"
    )
    beta_thread = await make_thread(session, site=beta, key="/b-1", title="Beta post")
    owner = await add_account(session, "owner@alpha.example", alpha, Role.owner)
    moderator = await add_account(session, "mod@alpha.example", alpha, Role.moderator)
    stranger = await add_account(session, "owner@beta.example", beta, Role.owner)
    approved = await make_comment(session, thread=alpha_thread, status=CommentStatus.approved, content="Old and good")
    pending = await make_comment(
        session, thread=alpha_thread, status=CommentStatus.pending, name="Bob", email="bob@example.org", content="Hi"
    )
    beta_pending = await make_comment(session, thread=beta_thread, status=CommentStatus.pending, content="Beta")
    return World(alpha, beta, alpha_thread, beta_thread, owner, moderator, stranger, pending, approved, beta_pending)


class Moderator:
    """A logged-in client that sends the CSRF token the way a script would (header x-csrftoken)."""

    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        token = self.client.cookies.get("csrftoken")
        return {**({"x-csrftoken": token} if token else {}), **(extra or {})}

    async def get(self, url: str, **kwargs: Any) -> Any:
        return await self.client.get(url, **kwargs)

    async def send(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        return await self.client.request(method, url, headers=headers, **kwargs)


LoginAs = Callable[[str], Awaitable[Moderator]]


@pytest.fixture
async def login_as(settings: Settings, session: AsyncSession) -> AsyncIterator[LoginAs]:
    """Log in as a user, each in their own app instance (one lifespan per app), like separate browsers."""
    opened: list[AsyncTestClient[Litestar]] = []

    async def _login(email: str) -> Moderator:
        client = AsyncTestClient(app=create_app(settings), base_url="http://testserver.local")
        await client.__aenter__()
        opened.append(client)
        response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        await client.get("/api/auth/me")  # a safe request hands out the csrftoken cookie
        return Moderator(client)

    yield _login
    for client in opened:
        await client.__aexit__(None, None, None)
