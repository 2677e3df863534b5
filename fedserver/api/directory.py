"""`GET /api/v1/directory`: the profile directory, as Mastodon serves it (public).

Accounts that chose to be discoverable, approved, and not kept out by the operator's moderation
(suspended or silenced, themselves or their server), ordered by their last post (`order=active`, the
default) or newest first (`order=new`); `local=true` keeps this server's own.
"""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import api_accounts
from .accounts import present_accounts

MAX_LIMIT = 80


def _whole(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, f"{name} must be a whole number") from None
    if value < 0:
        raise HTTPError(400, f"{name} must not be negative")
    return value


async def directory_get(request: web.Request) -> web.Response:
    """GET /api/v1/directory (`offset`, `limit` ≤ 80, `order` active|new, `local`)."""
    order = request.query.get("order") or "active"
    if order not in ("active", "new"):
        raise HTTPError(400, "order must be active or new")
    local = (request.query.get("local") or "false").lower() in ("true", "1")
    limit, offset = max(1, min(_whole(request, "limit", 40), MAX_LIMIT)), _whole(request, "offset", 0)
    async with request.config_dict[POOL].acquire() as conn:
        actors = await api_accounts.read_directory(conn, local=local, order=order, limit=limit, offset=offset)
        body = await present_accounts(conn, request.config_dict[SETTINGS], actors)
    return web.json_response(body)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/directory", directory_get)
