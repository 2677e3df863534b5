"""Preferences (Ivory, Elk, Phanpy read them at startup) and timeline markers (Elk)."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL
from ..errors import HTTPError
from ..repo import api_settings
from . import entities
from .auth import require_scopes, require_user
from .params import body_params, query_params

TIMELINES = ("home", "notifications")
MAX_MARKER_ID = 64


@require_scopes("read:accounts")
async def preferences_get(request: web.Request) -> web.Response:
    """GET /api/v1/preferences: the caller's posting and reading preferences."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        prefs = await api_settings.get_preferences(conn, caller.account_id)
    return web.json_response(entities.preferences(prefs))


@require_scopes("read:statuses")
async def markers_get(request: web.Request) -> web.Response:
    """GET /api/v1/markers?timeline[]=home&timeline[]=notifications: the stored ones, keyed by timeline."""
    caller = require_user(request)
    asked = [t for t in query_params(request).strings("timeline") if t in TIMELINES] or list(TIMELINES)
    async with request.config_dict[POOL].acquire() as conn:
        markers = await api_settings.get_markers(conn, caller.account_id, asked)
    return web.json_response({m.timeline: entities.marker(m) for m in markers})


@require_scopes("write:statuses")
async def markers_post(request: web.Request) -> web.Response:
    """POST /api/v1/markers: `home[last_read_id]` and/or `notifications[last_read_id]`, stored together."""
    caller = require_user(request)
    params = await body_params(request)
    updates = {}
    for timeline in TIMELINES:
        last_read = params.section(timeline).string("last_read_id", max_len=MAX_MARKER_ID)
        if last_read is not None:
            if not last_read.strip():
                raise HTTPError(422, f"{timeline}[last_read_id] can't be blank")
            updates[timeline] = last_read.strip()
    if not updates:
        raise HTTPError(422, "give home[last_read_id] or notifications[last_read_id]")
    async with request.config_dict[POOL].acquire() as conn, conn.transaction():
        saved = [await api_settings.save_marker(conn, caller.account_id, t, v) for t, v in updates.items()]
    return web.json_response({m.timeline: entities.marker(m) for m in saved})


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/preferences", preferences_get)
    api.router.add_get("/v1/markers", markers_get)
    api.router.add_post("/v1/markers", markers_post)
