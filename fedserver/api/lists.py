"""Lists, with Mastodon's names and answers: `GET|POST /api/v1/lists`, `GET|PUT|DELETE /api/v1/lists/:id`,
`GET|POST|DELETE /api/v1/lists/:id/accounts`, `GET /api/v1/accounts/:id/lists` and the list timeline
`GET /api/v1/timelines/list/:id`. Someone else's list is "Record not found", exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import api_accounts
from ..repo import lists as lists_repo
from . import presenter
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, page_of, page_response, path_id, window
from .params import Params, body_params
from .wire import id_or_none

MAX_TITLE = 200
MAX_ACCOUNTS_PAGE = 80


def list_entity(found: lists_repo.AccountList) -> dict:
    """Mastodon's List entity."""
    return {"id": str(found.id), "title": found.title, "replies_policy": found.replies_policy,
            "exclusive": found.exclusive}


def _title(params: Params, *, required: bool) -> str | None:
    title = params.string("title", max_len=MAX_TITLE)
    if title is None and not required:
        return None
    if not (title or "").strip():
        raise HTTPError(422, "Validation failed: Title can't be blank")
    return title.strip()  # type: ignore[union-attr]


def _policy(params: Params) -> str | None:
    policy = params.string("replies_policy", max_len=20)
    if policy in (None, ""):
        return None
    if policy not in lists_repo.REPLIES_POLICIES:
        raise HTTPError(422, f"Validation failed: replies_policy must be one of "
                             f"{', '.join(lists_repo.REPLIES_POLICIES)}")
    return policy


async def _own_list(conn, owner_id: int, request: web.Request) -> lists_repo.AccountList:
    found = await lists_repo.get_own_list(conn, owner_id, path_id(request))
    if found is None:
        raise HTTPError(404, NOT_FOUND)
    return found


@require_scopes("read:lists")
async def lists_get(request: web.Request) -> web.Response:
    """GET /api/v1/lists: the caller's lists (Ivory and toot call it at startup)."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        found = await lists_repo.get_lists(conn, caller.account_id)  # type: ignore[arg-type]
    return web.json_response([list_entity(x) for x in found])


@require_scopes("write:lists")
async def lists_post(request: web.Request) -> web.Response:
    """POST /api/v1/lists (`title`, `replies_policy` default `list`, `exclusive`)."""
    caller = require_user(request)
    params = await body_params(request)
    title, policy, exclusive = _title(params, required=True), _policy(params), params.boolean("exclusive")
    async with request.config_dict[POOL].acquire() as conn:
        made = await lists_repo.insert_list(conn, caller.account_id, title or "", policy or "list",  # type: ignore[arg-type]
                                            bool(exclusive))
    if made is None:
        raise HTTPError(422, f"Validation failed: you can have at most {lists_repo.MAX_LISTS} lists")
    return web.json_response(list_entity(made))


@require_scopes("read:lists")
async def list_get(request: web.Request) -> web.Response:
    """GET /api/v1/lists/:id."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        return web.json_response(list_entity(await _own_list(conn, caller.account_id, request)))  # type: ignore[arg-type]


@require_scopes("write:lists")
async def list_put(request: web.Request) -> web.Response:
    """PUT /api/v1/lists/:id: change the title, replies policy or exclusiveness (what is sent)."""
    caller = require_user(request)
    list_id = path_id(request)
    params = await body_params(request)
    title, policy, exclusive = _title(params, required=False), _policy(params), params.boolean("exclusive")
    async with request.config_dict[POOL].acquire() as conn:
        changed = await lists_repo.update_list(conn, caller.account_id, list_id, title=title,  # type: ignore[arg-type]
                                               replies_policy=policy, exclusive=exclusive)
    if changed is None:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(list_entity(changed))


@require_scopes("write:lists")
async def list_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/lists/:id: answers `{}`."""
    caller = require_user(request)
    list_id = path_id(request)
    async with request.config_dict[POOL].acquire() as conn:
        if not await lists_repo.delete_list(conn, caller.account_id, list_id):  # type: ignore[arg-type]
            raise HTTPError(404, NOT_FOUND)
    return web.json_response({})


def _account_ids(params: Params) -> list[int]:
    raw = params.strings("account_ids", max_items=lists_repo.MAX_MEMBERS)
    ids = [id_or_none(value) for value in raw]
    if not raw or any(value is None for value in ids):
        raise HTTPError(422, "Validation failed: account_ids[] must hold one or more account ids")
    return list(dict.fromkeys(ids))  # type: ignore[arg-type]


@require_scopes("read:lists")
async def list_accounts_get(request: web.Request) -> web.Response:
    """GET /api/v1/lists/:id/accounts: the members (`limit=0` for all, as Mastodon), paged by account id."""
    caller = require_user(request)
    unpaged = request.query.get("limit") == "0"
    page = page_of(request, default=40, maximum=MAX_ACCOUNTS_PAGE)
    if unpaged:
        page = replace(page, limit=lists_repo.MAX_MEMBERS)
    async with request.config_dict[POOL].acquire() as conn:
        found = await _own_list(conn, caller.account_id, request)  # type: ignore[arg-type]
        ids = newest_first(await lists_repo.read_members(conn, found.id, window(page)), page)
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], ids)
    if unpaged:
        return web.json_response(body)
    return page_response(request, body, ids, page)


@require_scopes("write:lists")
async def list_accounts_post(request: web.Request) -> web.Response:
    """POST /api/v1/lists/:id/accounts `account_ids[]`: only accounts the caller follows (422 otherwise, and
    nothing is added); answers `{}`."""
    caller = require_user(request)
    ids = _account_ids(await body_params(request))
    async with request.config_dict[POOL].acquire() as conn, conn.transaction():
        found = await _own_list(conn, caller.account_id, request)  # type: ignore[arg-type]
        if await lists_repo.not_followed(conn, caller.account_id, ids):  # type: ignore[arg-type]
            raise HTTPError(422, "Validation failed: You must follow an account to add it to a list")
        await lists_repo.add_members(conn, found.id, caller.account_id, ids)  # type: ignore[arg-type]
        if await lists_repo.count_members(conn, found.id) > lists_repo.MAX_MEMBERS:
            raise HTTPError(422, f"Validation failed: a list holds at most {lists_repo.MAX_MEMBERS} accounts")
    return web.json_response({})


@require_scopes("write:lists")
async def list_accounts_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/lists/:id/accounts `account_ids[]`: answers `{}` (ids not in the list are ignored)."""
    caller = require_user(request)
    ids = _account_ids(await body_params(request))
    async with request.config_dict[POOL].acquire() as conn:
        found = await _own_list(conn, caller.account_id, request)  # type: ignore[arg-type]
        await lists_repo.remove_members(conn, found.id, ids)
    return web.json_response({})


@require_scopes("read:lists")
async def account_lists_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/:id/lists: the caller's lists holding the account."""
    caller = require_user(request)
    account_id = path_id(request)
    async with request.config_dict[POOL].acquire() as conn:
        if await api_accounts.get_visible_account(conn, account_id) is None:
            raise HTTPError(404, NOT_FOUND)
        found = await lists_repo.lists_with_member(conn, caller.account_id, account_id)  # type: ignore[arg-type]
    return web.json_response([list_entity(x) for x in found])


@require_scopes("read:lists")
async def list_timeline_get(request: web.Request) -> web.Response:
    """GET /api/v1/timelines/list/:id: the members' posts the caller may see, newest first, paged by id."""
    caller = require_user(request)
    page = page_of(request)
    async with request.config_dict[POOL].acquire() as conn:
        found = await _own_list(conn, caller.account_id, request)  # type: ignore[arg-type]
        entries = newest_first(await lists_repo.read_list_timeline(conn, caller.account_id, found,  # type: ignore[arg-type]
                                                                   window(page)), page)
        body = await presenter.present_entries(conn, request.config_dict[SETTINGS], entries, caller.account_id)
    return page_response(request, body, [e.cursor for e in entries], page)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/lists", lists_get)
    api.router.add_post("/v1/lists", lists_post)
    api.router.add_get(r"/v1/lists/{id}", list_get)
    api.router.add_put(r"/v1/lists/{id}", list_put)
    api.router.add_delete(r"/v1/lists/{id}", list_delete)
    api.router.add_get(r"/v1/lists/{id}/accounts", list_accounts_get)
    api.router.add_post(r"/v1/lists/{id}/accounts", list_accounts_post)
    api.router.add_delete(r"/v1/lists/{id}/accounts", list_accounts_delete)
    api.router.add_get(r"/v1/accounts/{id}/lists", account_lists_get)
    api.router.add_get(r"/v1/timelines/list/{id}", list_timeline_get)
