"""The client address and the failed-login limit, kept in PostgreSQL so every web process shares one count.

`[api] login_failures_per_15min` failures per address and per account before 429, for
every login form and the OAuth password grant alike.
"""

from __future__ import annotations

import random

from aiohttp import web

from ..config import Settings
from ..errors import HTTPError
from ..repo import api_limits

LOGIN_WINDOW = 900
TOO_MANY_LOGINS = "Too many failed login attempts; try again in 15 minutes"
_PRUNE_CHANCE = 0.1


def client_address(request: web.Request, settings: Settings) -> str:
    """The caller's address: the peer, or the last X-Forwarded-For hop behind a trusted proxy."""
    if settings.api.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"


def login_keys(address: str, account_key: str) -> list[str]:
    """The counters one login attempt is charged to: its address, then the account (or name) tried."""
    return [f"login-ip:{address}", f"login-account:{account_key}"]


async def charge_login_attempt(conn, settings: Settings, keys: list[str]) -> list[int]:
    """Charge the attempt first (so parallel attempts can't all slip under the limit); 429 past it."""
    ids = await api_limits.record_login_attempt(conn, keys)
    if await api_limits.count_login_failures(conn, keys, LOGIN_WINDOW) > settings.api.login_failures_per_15min:
        raise HTTPError(429, TOO_MANY_LOGINS, headers={"Retry-After": str(LOGIN_WINDOW)})
    if random.random() < _PRUNE_CHANCE:
        await api_limits.delete_old_login_failures(conn, 2 * LOGIN_WINDOW)
    return ids


async def forgive_login_attempt(conn, keys: list[str], ids: list[int]) -> None:
    """A successful login: it and the account's earlier failures no longer count."""
    await api_limits.forget_login_attempt(conn, ids, keys[-1])
