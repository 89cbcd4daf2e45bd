"""Logins and server-side sessions: what the `comments_session` cookie stands for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from litestar.datastructures import Cookie
from sqlmodel import col, delete, func, select

from comments import db, security
from comments.errors import NotAuthenticated, RateLimited
from comments.models import LoginSession, RateEvent, User, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

SESSION_COOKIE = "comments_session"
SESSION_LIFETIME = timedelta(days=14)
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 10
MAX_FAILURES_PER_IP = 50
LOGIN_FAILED = "Wrong email or password."

_dummy_hash: str | None = None


@dataclass(frozen=True)
class LoginResult:
    """A fresh session: the raw token goes into the cookie, only its hash into the database."""

    user: User
    token: str


def session_cookie(token: str, *, secure: bool, max_age: int = int(SESSION_LIFETIME.total_seconds())) -> Cookie:
    """The `comments_session` cookie: HttpOnly (no script reads it), SameSite=Lax, Secure over https.

    `max_age=0` with an empty token clears it (logout).
    """
    return Cookie(
        key=SESSION_COOKIE, value=token, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure
    )


def _buckets(address: str, ip: str | None) -> tuple[str, str]:
    # Digests: any login attempt, however long, fits the bucket column, and the table holds no addresses.
    return (
        "login:account:" + security.token_hash(address),
        "login:ip:" + security.token_hash(ip or "unknown"),
    )


async def _dummy() -> str:
    # Verifying against a throwaway hash makes an unknown email cost as much as a wrong password,
    # so response times do not tell which addresses have accounts.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await security.hash_password(security.new_token())
    return _dummy_hash


async def login(engine: AsyncEngine, *, email: str, password: str, ip: str | None) -> LoginResult:
    """Check the credentials and open a session.

    Runs in its own short transactions on `engine` rather than the request's session: the
    argon2 check is slow and must not hold a transaction, and a failure (an error response,
    which rolls the request's session back) must still be counted for the rate limit.

    Raises:
        RateLimited: too many failures for this account or this IP in the last LOGIN_WINDOW.
        NotAuthenticated: wrong email or password (the message never says which).
    """
    address = email.strip().lower()
    account_bucket, ip_bucket = _buckets(address, ip)
    since = utcnow() - LOGIN_WINDOW
    maker = db.session_maker(engine)
    async with maker() as session:
        failures = dict(
            (
                await session.exec(
                    select(RateEvent.bucket, func.count())
                    .where(col(RateEvent.bucket).in_([account_bucket, ip_bucket]), col(RateEvent.created_at) > since)
                    .group_by(col(RateEvent.bucket))
                )
            ).all()
        )
        user = (await session.exec(select(User).where(col(User.email) == address))).first()
    if failures.get(account_bucket, 0) >= MAX_FAILURES_PER_ACCOUNT or failures.get(ip_bucket, 0) >= MAX_FAILURES_PER_IP:
        raise RateLimited(
            "Too many login attempts. Please wait a few minutes and try again.",
            retry_after=int(LOGIN_WINDOW.total_seconds()),
        )
    valid = await security.verify_password(user.password_hash if user else await _dummy(), password)
    ok = valid and user is not None and user.is_active
    async with db.session_scope(engine) as session:
        await db.begin_write(session)
        if not ok or user is None:
            session.add_all([RateEvent(bucket=account_bucket), RateEvent(bucket=ip_bucket)])
            await session.exec(
                delete(RateEvent).where(
                    col(RateEvent.bucket).in_([account_bucket, ip_bucket]), col(RateEvent.created_at) <= since
                )
            )
            result = None
        else:
            result = await _open_session(session, user=user, password=password, account_bucket=account_bucket)
    if result is None:
        raise NotAuthenticated(LOGIN_FAILED)
    return result


async def _open_session(session: AsyncSession, *, user: User, password: str, account_bucket: str) -> LoginResult:
    user = await session.merge(user)
    if security.needs_rehash(user.password_hash):
        user.password_hash = await security.hash_password(password)
    now = utcnow()
    await session.exec(
        delete(LoginSession).where(col(LoginSession.user_id) == user.id, col(LoginSession.expires_at) <= now)
    )
    await session.exec(delete(RateEvent).where(col(RateEvent.bucket) == account_bucket))
    token = security.new_token()
    expires_at = now + SESSION_LIFETIME
    session.add(LoginSession(token_hash=security.token_hash(token), user_id=user.id, expires_at=expires_at))  # type: ignore[arg-type]
    await session.flush()
    return LoginResult(user=user, token=token)


async def user_for_token(session: AsyncSession, *, token: str | None) -> User | None:
    """The active user a session token belongs to, or None when it is unknown or expired."""
    if not token:
        return None
    found = await session.exec(
        select(User)
        .join(LoginSession, col(LoginSession.user_id) == col(User.id))
        .where(
            col(LoginSession.token_hash) == security.token_hash(token),
            col(LoginSession.expires_at) > utcnow(),
            col(User.is_active).is_(True),
        )
    )
    return found.first()


async def logout(session: AsyncSession, *, token: str | None) -> None:
    """End the session server-side: the cookie is worthless afterwards, even if it was copied."""
    if token:
        await session.exec(delete(LoginSession).where(col(LoginSession.token_hash) == security.token_hash(token)))
