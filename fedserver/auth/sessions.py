"""Login sessions: a random token in an HttpOnly cookie, only its SHA-256 digest in the database.

Each area of the site (the admin pages under /admin; the owner dashboard and buyer
pages under /) has its own cookie and its own sessions: a session opens only the area
it was started in, whatever cookie it is presented in. A session lasts 12 hours or
until logout. Whether its account may use the area (an administrator for /admin) is
the area's own check, made on every request.

A logged-in page's forms carry a CSRF token derived from the session's token with
HMAC, so only the holder of the session cookie can know it (a cookie planted by a
sibling subdomain cannot forge it), and it dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from ..app_keys import POOL, VIEWER
from ..repo import sessions as sessions_repo
from .cookies import set_auth_cookie
from .tokens import hash_secret, new_token, same_secret

SESSION_SECONDS = 12 * 3600
MAX_TOKEN_LENGTH = 128
_PRUNE_CHANCE = 0.1


@dataclass(frozen=True)
class SessionArea:
    """A part of the site with its own sessions and session cookie."""

    name: str  # stored with each session; a session opens only its own area
    cookie: str
    path: str
    samesite: str


# The admin pages: the cookie goes only to /admin, and never with a request started by another site.
ADMIN_AREA = SessionArea("admin", "fedserver_admin_session", "/admin", "Strict")
# The owner dashboard and buyer pages (any local account): Lax, so a link from elsewhere arrives logged in.
SITE_AREA = SessionArea("site", "fedserver_session", "/", "Lax")


@dataclass(frozen=True)
class Session:
    """The account behind a live session cookie, in the area the session belongs to."""

    token: str
    area: str
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
        return hmac.new(self.token.encode(), f"fedserver {self.area} form".encode(), hashlib.sha256).hexdigest()

    def form_matches(self, form) -> bool:
        """True when the form carries this session's CSRF token."""
        return same_secret(self.csrf_token, form.get("csrf_token"))


async def start_session(pool: asyncpg.Pool, area: SessionArea, account_id: int) -> str:
    """Open a session in `area` for an account; returns the token for the cookie."""
    token = new_token()
    async with pool.acquire() as conn:
        await sessions_repo.insert_session(conn, hash_secret(token), area.name, account_id, SESSION_SECONDS)
        if random.random() < _PRUNE_CHANCE:
            await sessions_repo.delete_old_sessions(conn)
    return token


async def find_session(pool: asyncpg.Pool, area: SessionArea, token: str) -> Session | None:
    """The live session of `area` behind a cookie value, or None (a session of another area included)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    async with pool.acquire() as conn:
        row = await sessions_repo.get_live_session(conn, hash_secret(token), area.name)
    return Session(token, area.name, row.account_id, row.username, row.role) if row else None


async def end_session(pool: asyncpg.Pool, area: SessionArea, token: str) -> None:
    """Log out: the token no longer opens anything."""
    async with pool.acquire() as conn:
        await sessions_repo.end_session(conn, hash_secret(token), area.name)


async def current_session(request: web.Request, area: SessionArea) -> Session | None:
    """The live session of `area` behind this request's cookie, or None."""
    return await find_session(request.config_dict[POOL], area, request.cookies.get(area.cookie, ""))


@web.middleware
async def viewer_middleware(request: web.Request, handler):
    """Know the logged-in person of the site area on every page (a database lookup only when the cookie is sent)."""
    if request.cookies.get(SITE_AREA.cookie):
        session = await current_session(request, SITE_AREA)
        if session is not None:
            request[VIEWER] = session
    return await handler(request)


def viewer(request: web.Request) -> Session | None:
    """The person logged in to the site area, or None for a visitor."""
    return request.get(VIEWER)


async def log_in(request: web.Request, response: web.StreamResponse, area: SessionArea, account_id: int) -> None:
    """Open a session for an account and set its cookie; the browser's previous session there ends."""
    pool = request.config_dict[POOL]
    previous = request.cookies.get(area.cookie)
    if previous:
        await end_session(pool, area, previous)  # one live session per browser and area
    token = await start_session(pool, area, account_id)
    set_auth_cookie(request, response, area.cookie, token, path=area.path, samesite=area.samesite,
                    max_age=SESSION_SECONDS)


async def log_out(request: web.Request, response: web.StreamResponse, area: SessionArea,
                  session: Session | None) -> None:
    """End the session (if any) and forget the cookie."""
    if session is not None:
        await end_session(request.config_dict[POOL], area, session.token)
    response.del_cookie(area.cookie, path=area.path)
