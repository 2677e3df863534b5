"""Following from the API: follow, unfollow (each answers the Relationship) and the followers/following lists."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..errors import HTTPError
from ..federation import outbox
from ..repo import api_accounts
from . import entities, presenter
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, optional_viewer, page_of, page_response, path_id, window

MAX_ACCOUNTS = 80


async def path_account(request: web.Request):
    """The visible account named in the path (404 otherwise)."""
    async with request.config_dict[POOL].acquire() as conn:
        actor = await api_accounts.get_visible_account(conn, path_id(request))
    if actor is None:
        raise HTTPError(404, NOT_FOUND)
    return actor


async def relationship_with(request: web.Request, viewer_id: int, target_id: int) -> dict:
    async with request.config_dict[POOL].acquire() as conn:
        rows = await api_accounts.get_relationships(conn, viewer_id, [target_id])
    if target_id not in rows:  # deleted meanwhile
        raise HTTPError(404, NOT_FOUND)
    return entities.relationship(target_id, rows[target_id])


@require_scopes("write:follows", "follow")
async def follow_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/follow: a Follow (a request while the target must accept); idempotent."""
    caller = require_user(request)
    target = await path_account(request)
    if target.id == caller.account_id:
        raise HTTPError(422, "Validation failed: You cannot follow yourself")
    current = await relationship_with(request, caller.account_id, target.id)  # type: ignore[arg-type]
    if current["following"] or current["requested"]:
        return web.json_response(current)
    try:
        async with outbox.acting_as(request.config_dict[POOL], caller.username or "") as (conn, actor):
            await outbox.follow(conn, request.config_dict[PUBLISHER], actor, target)
    except outbox.AlreadyDone:
        pass  # a concurrent request followed first: the relationship below says so
    except outbox.OutboxError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    return web.json_response(await relationship_with(request, caller.account_id, target.id))  # type: ignore[arg-type]


@require_scopes("write:follows", "follow")
async def unfollow_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/unfollow: Undo{Follow} (also withdraws a request); idempotent."""
    caller = require_user(request)
    target = await path_account(request)
    try:
        async with outbox.acting_as(request.config_dict[POOL], caller.username or "") as (conn, actor):
            await outbox.unfollow(conn, request.config_dict[PUBLISHER], actor, target)
    except outbox.AlreadyDone:
        pass  # not following: nothing to withdraw
    except outbox.OutboxError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    return web.json_response(await relationship_with(request, caller.account_id, target.id))  # type: ignore[arg-type]


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    optional_viewer(request, "read:accounts")
    page = page_of(request, default=40, maximum=MAX_ACCOUNTS)
    account_id = path_id(request)
    async with request.config_dict[POOL].acquire() as conn:
        if await api_accounts.get_visible_account(conn, account_id) is None:
            raise HTTPError(404, NOT_FOUND)
        found = newest_first(await api_accounts.read_follow_list(conn, account_id, direction, window(page)), page)
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], [a for _, a in found])
    return page_response(request, body, [cursor for cursor, _ in found], page)


async def followers_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/:id/followers: accepted followers, newest follow first."""
    return await _follow_list(request, "followers")


async def following_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/:id/following: accounts followed (accepted), newest follow first."""
    return await _follow_list(request, "following")


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_post(r"/v1/accounts/{id}/follow", follow_post)
    api.router.add_post(r"/v1/accounts/{id}/unfollow", unfollow_post)
    api.router.add_get(r"/v1/accounts/{id}/followers", followers_get)
    api.router.add_get(r"/v1/accounts/{id}/following", following_get)
