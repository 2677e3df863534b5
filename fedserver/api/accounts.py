"""Account endpoints: verify_credentials, update_credentials, get, lookup, relationships."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from activities.actor import Actor

from ..accounts import AccountError, SignupLimited, sign_up
from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..auth import client_address
from ..config import Settings
from ..errors import HTTPError
from ..repo import api_accounts, api_settings
from ..repo.actors import get_local_account_by_username
from ..repo.oauth import get_app_by_id
from . import entities
from .auth import current_auth, require_scopes, require_user
from .oauth_service import issue_token
from .params import Params, body_params, query_params
from .profile import ProfileChange, ProfileError, update_own_profile
from .wire import id_or_none

NOT_FOUND = "Record not found"
MAX_RELATIONSHIP_IDS = 80
# Accepted by Mastodon, not by us yet: refusing beats silently dropping them.
_UNSUPPORTED = ("avatar", "header", "fields_attributes")


async def present_accounts(conn: asyncpg.Connection, settings: Settings, actors: list[Actor]) -> list[dict]:
    """Account entities for actors, with their counts fetched in one query."""
    stats = await api_accounts.get_account_stats(conn, [a.id for a in actors])
    return [entities.account(a, stats[a.id], settings) for a in actors]


async def _credential_account(conn: asyncpg.Connection, settings: Settings, account_id: int,
                              username: str) -> dict:
    local = await get_local_account_by_username(conn, username)
    if local is None or local.actor.id != account_id or local.actor.deleted_at is not None:
        raise HTTPError(401, "The access token is invalid")
    stats = await api_accounts.get_account_stats(conn, [account_id])
    return entities.credential_account(
        local.actor, stats[account_id], settings,
        preferences=await api_settings.get_preferences(conn, account_id),
        follow_requests=await api_accounts.count_follow_requests(conn, account_id), role_name=local.role)


@require_scopes("read:accounts", "profile")
async def verify_credentials_get(request: web.Request) -> web.Response:
    """The caller's own account, with `source` and `role`."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        body = await _credential_account(conn, request.config_dict[SETTINGS], caller.account_id, caller.username)
    return web.json_response(body)


def parse_profile_change(params: Params) -> ProfileChange:
    """Read update_credentials parameters (form, multipart or JSON)."""
    for name in _UNSUPPORTED:
        if name in params:
            raise HTTPError(422, f"{name} cannot be changed through the API yet")
    source = params.section("source")
    return ProfileChange(
        display_name=params.string("display_name", max_len=10_000),
        note=params.string("note", max_len=100_000),
        locked=params.boolean("locked"),
        discoverable=params.boolean("discoverable"),
        indexable=params.boolean("indexable"),
        privacy=source.string("privacy", max_len=20),
        sensitive=source.boolean("sensitive"),
        language=source.string("language", max_len=10),
    )


@require_scopes("write:accounts")
async def update_credentials_patch(request: web.Request) -> web.Response:
    """Change the caller's profile; answers with the updated CredentialAccount."""
    caller = require_user(request)
    change = parse_profile_change(await body_params(request))
    settings, pool = request.config_dict[SETTINGS], request.config_dict[POOL]
    try:
        found = await update_own_profile(pool, request.config_dict[PUBLISHER], caller.account_id, caller.username,
                                        change)
    except ProfileError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    if not found:
        raise HTTPError(401, "The access token is invalid")
    async with pool.acquire() as conn:
        body = await _credential_account(conn, settings, caller.account_id, caller.username)
    return web.json_response(body)


async def account_get(request: web.Request) -> web.Response:
    """Any visible account by id (public)."""
    actor_id = id_or_none(request.match_info["id"])
    async with request.config_dict[POOL].acquire() as conn:
        actor = await api_accounts.get_visible_account(conn, actor_id) if actor_id else None
        if actor is None:
            raise HTTPError(404, NOT_FOUND)
        [body] = await present_accounts(conn, request.config_dict[SETTINGS], [actor])
    return web.json_response(body)


def split_acct(acct: str, own_domain: str) -> tuple[str, str]:
    """`name`, `@name`, `name@domain` → (name, domain); no domain means ours."""
    username, _, domain = acct.strip().removeprefix("@").partition("@")
    return username, (domain or own_domain).lower()


async def lookup_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/lookup?acct=: a local or already known remote account by handle (no fetching)."""
    acct = query_params(request).string("acct", max_len=400)
    if not acct or not acct.strip().removeprefix("@"):
        raise HTTPError(400, "acct is required, as name or name@domain")
    settings = request.config_dict[SETTINGS]
    username, domain = split_acct(acct, settings.instance.domain)
    async with request.config_dict[POOL].acquire() as conn:
        actor = await api_accounts.get_visible_account_by_handle(conn, username, domain) if username else None
        if actor is None:
            raise HTTPError(404, NOT_FOUND)
        [body] = await present_accounts(conn, settings, [actor])
    return web.json_response(body)


@require_scopes("read:follows")
async def relationships_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/relationships?id[]=…: one Relationship per existing account, in the order asked."""
    caller = require_user(request)
    wanted = [i for i in (id_or_none(raw) for raw in query_params(request).strings("id", max_items=1000)) if i]
    wanted = list(dict.fromkeys(wanted))[:MAX_RELATIONSHIP_IDS]
    async with request.config_dict[POOL].acquire() as conn:
        rows = await api_accounts.get_relationships(conn, caller.account_id, wanted) if wanted else {}
    return web.json_response([entities.relationship(i, rows[i]) for i in wanted if i in rows])


@require_scopes("write", "write:accounts", user=False)
async def accounts_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts: an app signs a person up (its own client-credentials token), as
    `[instance] registrations` allows; the new account's token. With `approval` the token starts
    working once an administrator approves the sign-up (until then it answers 401)."""
    caller = current_auth(request)
    assert caller is not None
    if caller.account_id is not None:
        raise HTTPError(403, "This method requires an app token (client credentials), not a user's token")
    settings = request.config_dict[SETTINGS]
    if settings.instance.registrations == "closed":
        raise HTTPError(403, "Registrations are closed on this server")
    params = await body_params(request)
    if params.boolean("agreement") is not True:
        raise HTTPError(422, "Validation failed: agreement must be accepted")
    pool = request.config_dict[POOL]
    try:
        actor, _ = await sign_up(pool, settings, address=client_address(request, settings),
                                 username=params.string("username", max_len=100) or "",
                                 password=params.string("password", max_len=1024) or "",
                                 email=params.string("email", max_len=320) or "",
                                 reason=params.string("reason", max_len=1000) or "")
    except SignupLimited as exc:
        raise HTTPError(429, str(exc)) from None
    except AccountError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    async with pool.acquire() as conn:
        app = await get_app_by_id(conn, caller.app_id)
        assert app is not None
        grant = await issue_token(conn, app, actor.id, caller.scopes)  # as Mastodon: the app token's scopes
    return web.json_response(grant.as_json())


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application; fixed paths before `{id}`."""
    api.router.add_post("/v1/accounts", accounts_post)
    api.router.add_get("/v1/accounts/verify_credentials", verify_credentials_get)
    api.router.add_patch("/v1/accounts/update_credentials", update_credentials_patch)
    api.router.add_get("/v1/accounts/lookup", lookup_get)
    api.router.add_get("/v1/accounts/relationships", relationships_get)
    api.router.add_get(r"/v1/accounts/{id}", account_get)
