"""Checking a person's name (or email) and password: the login forms and the OAuth password grant."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..config import Settings
from ..errors import HTTPError
from ..passwords import verify_password
from ..repo import api_accounts
from ..repo.api_accounts import LoginAccount
from .limits import charge_login_attempt, client_address, forgive_login_attempt, login_keys

# A real scrypt hash of a random password: unknown names cost the same ~0.3 s as known ones,
# so response times don't tell which names exist.
_DUMMY_HASH = "scrypt$32768$8$3$/vKbZSBMA9OADfpzuTBkVQ$g/FClP7vILl2D/iVVAHkU6edcnUoyZVnNhgKNkgUTos"
MAX_NAME = 320


class LoginFailed(Exception):
    """Wrong name or password (deliberately not saying which)."""


class LoginPending(Exception):
    """The right password of an account whose sign-up waits for an administrator's approval."""


class LoginRefused(Exception):
    """A login form that logs nobody in: `reason` is `missing`, `bad_login`, `too_many` or `pending`, with its status."""

    def __init__(self, reason: str, status: int, username: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.username = username  # what to show again in the form ("" when nothing usable was sent)


def normalize_login_name(name: str, domain: str) -> str:
    """`@alice`, `alice@our.domain` and `alice` all name the local account alice; emails stay as given."""
    name = name.strip().removeprefix("@")
    suffix = f"@{domain}"
    return name[: -len(suffix)] if name.lower().endswith(suffix.lower()) else name


async def authenticate(pool: asyncpg.Pool, settings: Settings, address: str, name: str,
                       password: str) -> LoginAccount:
    """The account for a correct name/email and password; LoginFailed, LoginPending (a sign-up not yet
    approved), or HTTPError 429 when throttled."""
    name = normalize_login_name(name[:MAX_NAME], settings.instance.domain)
    async with pool.acquire() as conn:
        account = await api_accounts.get_login_account(conn, name) if name else None
        keys = login_keys(address, f"id:{account.id}" if account else f"name:{name.lower()}")
        charged = await charge_login_attempt(conn, settings, keys)
    if charged.delay:
        await asyncio.sleep(charged.delay)  # many failures for this account lately, from anywhere: slow down
    stored = account.password_hash if account and account.password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_password, password, stored)
    if not (matches and account and account.password_hash):
        raise LoginFailed()
    async with pool.acquire() as conn:
        await forgive_login_attempt(conn, charged)
    if not account.approved:
        raise LoginPending()
    return account


async def check_login_form(request: web.Request, form) -> LoginAccount:
    """The account behind a login form's `username` and `password`; LoginRefused with the reason otherwise."""
    name, password = form.get("username"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name.strip() or not password:
        raise LoginRefused("missing", 422)
    settings = request.config_dict[SETTINGS]
    try:
        return await authenticate(request.config_dict[POOL], settings, client_address(request, settings), name,
                                  password)
    except LoginFailed:
        raise LoginRefused("bad_login", 422, name) from None
    except LoginPending:
        raise LoginRefused("pending", 403, name) from None
    except HTTPError as exc:
        if exc.status != 429:
            raise
        raise LoginRefused("too_many", 429, name) from None
