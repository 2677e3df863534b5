"""Rate limits kept in PostgreSQL, so several web processes share one count.

API: `[api] rate_limit_per_5min` requests per token (per address without one) per fixed
5-minute window, as Mastodon; every response carries the three `X-RateLimit-*` headers
(Mastodon.py reads all three), and 429 past the limit. Logins: `[api]
login_failures_per_15min` failures per address and per account before 429.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..config import Settings
from ..errors import HTTPError, json_error
from ..repo import api_limits
from .auth import current_auth
from .wire import api_datetime

PERIOD = 300
LOGIN_WINDOW = 900
TOO_MANY_LOGINS = "Too many failed login attempts; try again in 15 minutes"
_PRUNE_CHANCE = 0.01


def client_address(request: web.Request, settings: Settings) -> str:
    """The caller's address: the peer, or the last X-Forwarded-For hop behind a trusted proxy."""
    if settings.api.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"


def _bucket(request: web.Request, settings: Settings) -> str:
    caller = current_auth(request)
    return f"token:{caller.token_id}" if caller else f"ip:{client_address(request, settings)}"


@web.middleware
async def rate_limit_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Count the request; answer 429 past the limit; add the X-RateLimit-* headers to every answer."""
    settings = request.config_dict[SETTINGS]
    limit = settings.api.rate_limit_per_5min
    if limit == 0:
        return await handler(request)
    async with request.config_dict[POOL].acquire() as conn:
        count = await api_limits.hit(conn, _bucket(request, settings), PERIOD)
        if random.random() < _PRUNE_CHANCE:
            await api_limits.delete_old_windows(conn, 2 * PERIOD)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - count.hits)),
        "X-RateLimit-Reset": api_datetime(count.resets_at),
    }
    if count.hits > limit:
        wait = max(1, int((count.resets_at - datetime.now(timezone.utc)).total_seconds()) + 1)
        return json_error(429, "Too many requests", {**headers, "Retry-After": str(wait)})
    response = await handler(request)
    response.headers.update(headers)
    return response


def login_keys(address: str, account_key: str) -> list[str]:
    """The counters one login attempt is charged to: its address, then the account (or name) tried."""
    return [f"login-ip:{address}", f"login-account:{account_key}"]


async def charge_login_attempt(conn, settings: Settings, keys: list[str]) -> list[int]:
    """Charge the attempt first (so parallel attempts can't all slip under the limit); 429 past it."""
    ids = await api_limits.record_login_attempt(conn, keys)
    if await api_limits.count_login_failures(conn, keys, LOGIN_WINDOW) > settings.api.login_failures_per_15min:
        raise HTTPError(429, TOO_MANY_LOGINS, headers={"Retry-After": str(LOGIN_WINDOW)})
    if random.random() < _PRUNE_CHANCE * 10:
        await api_limits.delete_old_login_failures(conn, 2 * LOGIN_WINDOW)
    return ids


async def forgive_login_attempt(conn, keys: list[str], ids: list[int]) -> None:
    """A successful login: it and the account's earlier failures no longer count."""
    await api_limits.forget_login_attempt(conn, ids, keys[-1])
