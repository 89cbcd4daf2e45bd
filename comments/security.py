"""Password hashing and opaque tokens: the only place secrets are made or checked."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import anyio.to_thread
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id with RFC 9106's second recommended option, the low-memory one (t=3, m=64 MiB, p=4), named
# rather than taken from argon2-cffi's defaults: a library upgrade that moves its defaults must not
# change the cost of every login silently. Hashes made with other parameters are redone at login.
hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


async def hash_password(password: str) -> str:
    """Hash off the event loop: argon2 is deliberately slow and would stall every other request."""
    return await anyio.to_thread.run_sync(hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; never raises for a wrong password or a corrupt hash."""

    def _verify() -> bool:
        try:
            return hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(_verify)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters and should be replaced at the next login."""
    return hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    """A random URL-safe secret handed to a client once (session, submitter token)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token: a leaked table cannot be replayed as credentials."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_token(secret_key: str, *parts: str) -> str:
    """A token derived from the server secret, so a retried request can be answered with the same one."""
    message = "\x1f".join(parts).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
