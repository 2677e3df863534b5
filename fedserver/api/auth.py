"""Bearer tokens on the API: who is calling (middleware) and what each endpoint demands (decorator)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from ..app_keys import POOL
from ..auth import hash_secret
from ..errors import HTTPError
from ..repo import oauth as oauth_repo
from .scopes import grants

INVALID_TOKEN = "The access token is invalid"
OUTSIDE_SCOPES = "This action is outside the authorized scopes"
NEEDS_USER = "This method requires an authenticated user"
_MAX_TOKEN_LENGTH = 512

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Auth:
    """The caller behind a valid token; `account_id` is None for an app's own (client credentials) token."""

    token_id: int
    app_id: int
    account_id: int | None
    username: str | None
    scopes: tuple[str, ...]


AUTH = web.RequestKey("fedserver.api.auth", Auth | None)  # type: ignore[arg-type]


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def resolve_token(request: web.Request, token: str) -> Auth | None:
    """The live token behind `token`, or None."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    async with request.config_dict[POOL].acquire() as conn:
        found = await oauth_repo.get_live_token(conn, hash_secret(token))
    if found is None:
        return None
    return Auth(found.id, found.app_id, found.account_id, found.username, found.scopes)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller (or None). Public endpoints ignore a bad token, as Mastodon does; others answer 401."""
    token = bearer_token(request)
    request[AUTH] = await resolve_token(request, token) if token else None
    return await handler(request)


def current_auth(request: web.Request) -> Auth | None:
    """The caller of this request, when it sent a valid token."""
    return request.get(AUTH)


def require_scopes(*any_of: str, user: bool = True) -> Callable[[Handler], Handler]:
    """Demand a valid token holding one of `any_of` (and, unless `user=False`, acting for an account)."""
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            caller = current_auth(request)
            if caller is None:
                raise HTTPError(401, INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if not grants(caller.scopes, any_of):
                raise HTTPError(403, OUTSIDE_SCOPES)
            if user and caller.account_id is None:
                raise HTTPError(422, NEEDS_USER)
            return await handler(request)

        checked.required_scopes = any_of  # type: ignore[attr-defined]
        return checked
    return decorate


def require_user(request: web.Request) -> Auth:
    """The caller of a handler wrapped by `require_scopes` (always a user there)."""
    caller = current_auth(request)
    assert caller is not None and caller.account_id is not None
    return caller
