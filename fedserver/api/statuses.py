"""Status endpoints: create, read, edit, delete, source, thread context, and who favourited or boosted."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..repo import timelines
from . import presenter, scheduled, status_entities, status_service
from .auth import require_scopes, require_user
from .listing import optional_viewer, page_of, page_response, path_id, window
from .params import body_params
from .status_input import idempotency_key, parse_draft

MAX_REACTORS = 80


@require_scopes("write:statuses")
async def statuses_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses: publish (with `Idempotency-Key`, the same key within an hour gives the same post);
    with `scheduled_at`, schedule it."""
    caller = require_user(request)
    params = await body_params(request)
    if scheduled.wants_schedule(params):  # Mastodon answers a ScheduledStatus instead
        return await scheduled.schedule_post(request, caller, params, idempotency_key(request.headers))
    draft = parse_draft(params, key=idempotency_key(request.headers), app_id=caller.app_id)
    pool, settings = request.config_dict[POOL], request.config_dict[SETTINGS]
    object_id = await status_service.post_status(pool, request.config_dict[PUBLISHER], caller, draft)
    async with pool.acquire() as conn:
        entry = await status_service.visible_entry(conn, object_id, caller.account_id)
        body = await presenter.present_entry(conn, settings, entry, caller.account_id)
    return web.json_response(body)


async def status_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id: a post or boost the reader may see."""
    viewer = optional_viewer(request, "read:statuses")
    async with request.config_dict[POOL].acquire() as conn:
        entry = await status_service.visible_entry(conn, path_id(request), viewer)
        body = await presenter.present_entry(conn, request.config_dict[SETTINGS], entry, viewer)
    return web.json_response(body)


@require_scopes("write:statuses")
async def status_put(request: web.Request) -> web.Response:
    """PUT /api/v1/statuses/:id: edit one's own post (federated as Update)."""
    caller = require_user(request)
    status_id = path_id(request)
    draft = parse_draft(await body_params(request), key=None, app_id=None, editing=True)
    pool, settings = request.config_dict[POOL], request.config_dict[SETTINGS]
    await status_service.edit_status(pool, request.config_dict[PUBLISHER], caller, status_id, draft)
    async with pool.acquire() as conn:
        entry = await status_service.visible_entry(conn, status_id, caller.account_id)
        body = await presenter.present_entry(conn, settings, entry, caller.account_id)
    return web.json_response(body)


@require_scopes("write:statuses")
async def status_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/statuses/:id: delete one's own post; answers it with `text` for delete-and-redraft."""
    caller = require_user(request)
    pool, settings = request.config_dict[POOL], request.config_dict[SETTINGS]
    async with pool.acquire() as conn:
        row = await status_service.own_post(conn, path_id(request), caller)
        body = await presenter.present_with_source(conn, settings, row.id, caller.account_id)  # type: ignore[arg-type]
    await status_service.delete_status(pool, request.config_dict[PUBLISHER], caller, row)
    return web.json_response(body)


@require_scopes("read:statuses")
async def status_source_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/source: what the author typed (own posts only)."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        row = await status_service.own_post(conn, path_id(request), caller)
    return web.json_response(status_entities.source(row.id, status_entities.source_text(row),
                                                    status_entities.spoiler_text(row)))


async def context_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/context: the stored thread around a post, as far as the reader may see it."""
    viewer = optional_viewer(request, "read:statuses")
    settings = request.config_dict[SETTINGS]
    async with request.config_dict[POOL].acquire() as conn:
        entry = await status_service.visible_entry(conn, path_id(request), viewer)
        ancestors = await timelines.read_ancestors(conn, entry.object_id, viewer)
        descendants = await timelines.read_descendants(conn, entry.object_id, viewer)
        body = status_entities.context(await presenter.present_entries(conn, settings, ancestors, viewer),
                                       await presenter.present_entries(conn, settings, descendants, viewer))
    return web.json_response(body)


async def _reactors(request: web.Request, table: str) -> web.Response:
    viewer = optional_viewer(request, "read:accounts")
    page = page_of(request, default=40, maximum=MAX_REACTORS)
    async with request.config_dict[POOL].acquire() as conn:
        entry = await status_service.visible_entry(conn, path_id(request), viewer)
        found = await timelines.read_reactors(conn, table, entry.object_id, window(page))
        found = list(reversed(found)) if page.ascending else found
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], [a for _, a in found])
    return page_response(request, body, [c for c, _ in found], page)


async def favourited_by_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/favourited_by: accounts that liked the post, latest first."""
    return await _reactors(request, "likes")


async def reblogged_by_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/reblogged_by: accounts that boosted the post, latest first."""
    return await _reactors(request, "announces")


async def status_history_get(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/history: the current version only (earlier versions are not kept)."""
    viewer = optional_viewer(request, "read:statuses")
    async with request.config_dict[POOL].acquire() as conn:
        entry = await status_service.visible_entry(conn, path_id(request), viewer)
        body = await presenter.present_entry(conn, request.config_dict[SETTINGS], entry, viewer)
    keys = ("content", "spoiler_text", "sensitive", "account", "media_attachments", "emojis", "poll")
    version = {k: body[k] for k in keys} | {"created_at": body["edited_at"] or body["created_at"]}
    return web.json_response([version])


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_post("/v1/statuses", statuses_post)
    api.router.add_get(r"/v1/statuses/{id}", status_get)
    api.router.add_put(r"/v1/statuses/{id}", status_put)
    api.router.add_delete(r"/v1/statuses/{id}", status_delete)
    api.router.add_get(r"/v1/statuses/{id}/source", status_source_get)
    api.router.add_get(r"/v1/statuses/{id}/history", status_history_get)
    api.router.add_get(r"/v1/statuses/{id}/context", context_get)
    api.router.add_get(r"/v1/statuses/{id}/favourited_by", favourited_by_get)
    api.router.add_get(r"/v1/statuses/{id}/reblogged_by", reblogged_by_get)
