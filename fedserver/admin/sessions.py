"""Admin sessions: a random token in an HttpOnly cookie, only its digest in the database.

A logged-in page's forms carry a CSRF token derived from the session's token with
HMAC, so only the holder of the session cookie can know it (a cookie planted by a
sibling subdomain cannot forge it), and it dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass

import asyncpg

from ..api.auth import hash_secret
from ..repo import admin_sessions

SESSION_SECONDS = 12 * 3600
MAX_TOKEN_LENGTH = 128
_CSRF_LABEL = b"fedserver admin form"
_PRUNE_CHANCE = 0.1


@dataclass(frozen=True)
class AdminSession:
    """The account behind a live session cookie."""

    token: str
    account_id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the account is (still) an administrator."""
        return self.role == "admin"

    @property
    def csrf_token(self) -> str:
        """The token this session's forms must carry."""
        return hmac.new(self.token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


async def start_session(pool: asyncpg.Pool, account_id: int) -> str:
    """Open a session for an account; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        await admin_sessions.insert_session(conn, hash_secret(token), account_id, SESSION_SECONDS)
        if random.random() < _PRUNE_CHANCE:
            await admin_sessions.delete_old_sessions(conn)
    return token


async def find_session(pool: asyncpg.Pool, token: str) -> AdminSession | None:
    """The live session behind a cookie value, or None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    async with pool.acquire() as conn:
        row = await admin_sessions.get_live_session(conn, hash_secret(token))
    return AdminSession(token, row.account_id, row.username, row.role) if row else None


async def end_session(pool: asyncpg.Pool, token: str) -> None:
    """Log out: the token no longer opens anything."""
    async with pool.acquire() as conn:
        await admin_sessions.end_session(conn, hash_secret(token))
