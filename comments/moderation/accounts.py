"""Moderator and owner accounts and their per-site roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email
from sqlmodel import col, select

from comments import security
from comments.errors import FieldError, InvalidInput
from comments.models import Membership, Role, Site, User

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

MIN_PASSWORD_LENGTH = 10


def normalize_account_email(email: str) -> str:
    """The canonical form accounts are stored and looked up by.

    Raises:
        InvalidInput: not an email address.
    """
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput([FieldError("email", "Please enter a valid email address.")]) from exc


async def add_user(session: AsyncSession, *, email: str, password: str, site: Site, role: Role) -> User:
    """Create the account (or update its password) and give it `role` on `site`.

    Raises:
        InvalidInput: bad email or a password shorter than MIN_PASSWORD_LENGTH.
    """
    address = normalize_account_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput([FieldError("password", f"Use at least {MIN_PASSWORD_LENGTH} characters.")])
    user = (await session.exec(select(User).where(col(User.email) == address))).first()
    password_hash = await security.hash_password(password)
    if user is None:
        user = User(email=address, password_hash=password_hash)
        session.add(user)
        await session.flush()
    else:
        user.password_hash = password_hash
    membership = (
        await session.exec(
            select(Membership).where(col(Membership.user_id) == user.id, col(Membership.site_id) == site.id)
        )
    ).first()
    if membership is None:
        session.add(Membership(user_id=user.id, site_id=site.id, role=role))  # type: ignore[arg-type]
    else:
        membership.role = role
    await session.flush()
    return user
