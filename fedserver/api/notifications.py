"""Notifications (list with type filters, get, dismiss, clear) and follow requests (list, authorize, reject)."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..errors import HTTPError
from ..federation import outbox
from ..repo import api_accounts, status_views
from ..repo import notifications as repo
from . import entities, presenter
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, page_of, page_response, path_id, window
from .params import query_params
from .wire import id_or_none

MAX_NOTIFICATIONS = 80


def _filter(request: web.Request) -> repo.NotificationFilter:
    query = query_params(request)
    types = tuple(t for t in query.strings("types", max_items=50) if t in repo.TYPES)
    excluded = tuple(t for t in query.strings("exclude_types", max_items=50) if t in repo.TYPES)
    if query.strings("types", max_items=50) and not types:
        types = ("none",)  # only unknown types asked for: nothing matches
    raw_account = query.string("account_id", max_len=40)
    return repo.NotificationFilter(types=types, exclude_types=excluded,
                                   from_id=id_or_none(raw_account) if raw_account else None)


@require_scopes("read:notifications")
async def notifications_get(request: web.Request) -> web.Response:
    """GET /api/v1/notifications (`types[]`, `exclude_types[]`, `account_id`, paging)."""
    caller = require_user(request)
    page = page_of(request, default=40, maximum=MAX_NOTIFICATIONS)
    async with request.config_dict[POOL].acquire() as conn:
        rows = newest_first(await repo.read_notifications(conn, caller.account_id, window(page),  # type: ignore
                                                          _filter(request)), page)
        body = await presenter.present_notifications(conn, request.config_dict[SETTINGS], rows, caller.account_id)
    return page_response(request, body, [r.id for r in rows], page)


@require_scopes("read:notifications")
async def notification_get(request: web.Request) -> web.Response:
    """GET /api/v1/notifications/:id: one of the caller's own."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        row = await repo.get_notification(conn, caller.account_id, path_id(request))  # type: ignore[arg-type]
        body = await presenter.present_notifications(conn, request.config_dict[SETTINGS], [row] if row else [],
                                                     caller.account_id)
    if not body:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(body[0])


@require_scopes("write:notifications")
async def notification_dismiss_post(request: web.Request) -> web.Response:
    """POST /api/v1/notifications/:id/dismiss: answers `{}`."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        if not await repo.dismiss(conn, caller.account_id, path_id(request)):  # type: ignore[arg-type]
            raise HTTPError(404, NOT_FOUND)
    return web.json_response({})


@require_scopes("write:notifications")
async def notifications_clear_post(request: web.Request) -> web.Response:
    """POST /api/v1/notifications/clear: answers `{}`."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        await repo.clear(conn, caller.account_id)  # type: ignore[arg-type]
    return web.json_response({})


@require_scopes("read:follows")
async def follow_requests_get(request: web.Request) -> web.Response:
    """GET /api/v1/follow_requests: accounts waiting for approval, latest first (paged by request)."""
    caller = require_user(request)
    page = page_of(request, default=40, maximum=80)
    async with request.config_dict[POOL].acquire() as conn:
        found = newest_first(await repo.read_follow_requests(conn, caller.account_id, window(page)), page)  # type: ignore
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], [a for _, a in found])
    return page_response(request, body, [c for c, _ in found], page)


async def _answer_request(request: web.Request, accept: bool) -> web.Response:
    caller = require_user(request)
    requester_id = path_id(request)
    pool = request.config_dict[POOL]
    async with pool.acquire() as conn:
        requester = (await status_views.get_actors(conn, [requester_id])).get(requester_id)
    if requester is None:
        raise HTTPError(404, NOT_FOUND)
    try:
        async with outbox.acting_as(pool, caller.username or "") as (conn, actor):
            await outbox.answer_follow_request(conn, request.config_dict[PUBLISHER], actor, requester,
                                               accept=accept)
    except outbox.OutboxError:
        raise HTTPError(404, NOT_FOUND) from None
    async with pool.acquire() as conn:
        rows = await api_accounts.get_relationships(conn, caller.account_id, [requester_id])  # type: ignore[arg-type]
    return web.json_response(entities.relationship(requester_id, rows[requester_id]))


@require_scopes("write:follows")
async def follow_request_authorize_post(request: web.Request) -> web.Response:
    """POST /api/v1/follow_requests/:id/authorize: Accept{Follow}; answers the Relationship."""
    return await _answer_request(request, accept=True)


@require_scopes("write:follows")
async def follow_request_reject_post(request: web.Request) -> web.Response:
    """POST /api/v1/follow_requests/:id/reject: Reject{Follow}; answers the Relationship."""
    return await _answer_request(request, accept=False)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application; fixed paths before `{id}`."""
    api.router.add_get("/v1/notifications", notifications_get)
    api.router.add_post("/v1/notifications/clear", notifications_clear_post)
    api.router.add_get(r"/v1/notifications/{id}", notification_get)
    api.router.add_post(r"/v1/notifications/{id}/dismiss", notification_dismiss_post)
    api.router.add_get("/v1/follow_requests", follow_requests_get)
    api.router.add_post(r"/v1/follow_requests/{id}/authorize", follow_request_authorize_post)
    api.router.add_post(r"/v1/follow_requests/{id}/reject", follow_request_reject_post)
