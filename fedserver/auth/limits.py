"""The client address and the failed-login limits, kept in PostgreSQL so every web process shares one count.

For every login form and the OAuth password grant alike: more than `[api]
login_failures_per_15min` failures from one address, or for one account from one address,
is refused with 429 for 15 minutes. Failures for one account from many addresses only slow
each further attempt for that account down (a growing delay, at most a few seconds), so an
attacker somewhere else can neither lock the owner out nor guess quickly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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


ACCOUNT_DELAY_STEP = 0.25  # seconds added per failure for the account beyond the limit
ACCOUNT_DELAY_MAX = 3.0


@dataclass(frozen=True)
class LoginCharge:
    """One attempt, charged before the password is checked: its rows, and how long to wait first."""

    keys: list[str]
    ids: list[int]
    delay: float


def login_keys(address: str, account_key: str) -> list[str]:
    """The counters one attempt is charged to: its address, the account from that address, the account."""
    return [f"login-ip:{address}", f"login-pair:{account_key}@{address}", f"login-account:{account_key}"]


def account_delay(failures: int, limit: int) -> float:
    """The wait before checking a password for an account that failed `failures` times lately (any address)."""
    return min(ACCOUNT_DELAY_STEP * max(failures - limit, 0), ACCOUNT_DELAY_MAX)


async def charge_login_attempt(conn, settings: Settings, keys: list[str]) -> LoginCharge:
    """Charge the attempt first (so parallel attempts can't all slip under the limit); 429 past it."""
    ids = await api_limits.record_login_attempt(conn, keys)
    counts = await api_limits.count_login_failures(conn, keys, LOGIN_WINDOW)
    limit = settings.api.login_failures_per_15min
    address_key, pair_key, account_key = keys
    if counts.get(address_key, 0) > limit or counts.get(pair_key, 0) > limit:
        raise HTTPError(429, TOO_MANY_LOGINS, headers={"Retry-After": str(LOGIN_WINDOW)})
    if random.random() < _PRUNE_CHANCE:
        await api_limits.delete_old_login_failures(conn, 2 * LOGIN_WINDOW)
    return LoginCharge(keys, ids, account_delay(counts.get(account_key, 0), limit))


async def forgive_login_attempt(conn, charge: LoginCharge) -> None:
    """A successful login: it, and the earlier failures for the account, no longer count."""
    await api_limits.forget_login_attempt(conn, charge.ids, charge.keys[1:])
