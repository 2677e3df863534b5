"""Acting on a status: favourite, reblog, bookmark, pin, and their undos. Each answers the Status."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..repo.status_views import Entry
from . import presenter, status_service
from .auth import require_scopes, require_user
from .listing import path_id


async def _answer(request: web.Request, entry: Entry) -> web.Response:
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        body = await presenter.present_entry(conn, request.config_dict[SETTINGS], entry, caller.account_id)
    return web.json_response(body)


def _services(request: web.Request) -> tuple:
    return request.config_dict[POOL], request.config_dict[PUBLISHER], require_user(request), path_id(request)


@require_scopes("write:favourites")
async def favourite_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/favourite: the Like reaches the post's author."""
    pool, publisher, caller, status_id = _services(request)
    return await _answer(request, await status_service.favourite(pool, publisher, caller, status_id))


@require_scopes("write:favourites")
async def unfavourite_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unfavourite: Undo{Like}."""
    pool, publisher, caller, status_id = _services(request)
    return await _answer(request, await status_service.favourite(pool, publisher, caller, status_id, undo=True))


@require_scopes("write:statuses")
async def reblog_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/reblog: answers the boost, whose `reblog` is the post."""
    pool, publisher, caller, status_id = _services(request)
    return await _answer(request, await status_service.reblog(pool, publisher, caller, status_id))


@require_scopes("write:statuses")
async def unreblog_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unreblog: Undo{Announce}; answers the post."""
    pool, publisher, caller, status_id = _services(request)
    return await _answer(request, await status_service.unreblog(pool, publisher, caller, status_id))


@require_scopes("write:bookmarks")
async def bookmark_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/bookmark."""
    pool, _, caller, status_id = _services(request)
    return await _answer(request, await status_service.bookmark(pool, caller, status_id))


@require_scopes("write:bookmarks")
async def unbookmark_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unbookmark."""
    pool, _, caller, status_id = _services(request)
    return await _answer(request, await status_service.bookmark(pool, caller, status_id, undo=True))


@require_scopes("write:accounts")
async def pin_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/pin: one's own post joins the `featured` collection."""
    pool, _, caller, status_id = _services(request)
    return await _answer(request, await status_service.pin(pool, caller, status_id))


@require_scopes("write:accounts")
async def unpin_post(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unpin."""
    pool, _, caller, status_id = _services(request)
    return await _answer(request, await status_service.pin(pool, caller, status_id, undo=True))


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    for action, handler in (("favourite", favourite_post), ("unfavourite", unfavourite_post),
                            ("reblog", reblog_post), ("unreblog", unreblog_post),
                            ("bookmark", bookmark_post), ("unbookmark", unbookmark_post),
                            ("pin", pin_post), ("unpin", unpin_post)):
        api.router.add_post(f"/v1/statuses/{{id}}/{action}", handler)
