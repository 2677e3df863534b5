"""Grouped notifications (Mastodon 4.3): `GET /api/v2/notifications` and `GET /api/v2/notifications/unread_count`.

The notifications are read as for v1 (same filters: blocks, mutes, domain blocks, moderation, vanished
posts), then grouped by `notification_groups` (pure). The answer lists each account and status once:
`{accounts, statuses, notification_groups}`. `expand_accounts=partial_avatars` is accepted and answered
with full accounts, which clients read as well.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..repo import api_settings, status_views
from ..repo import notifications as repo
from ..repo.status_views import MAX_ID, Entry, Window
from . import presenter
from .auth import require_scopes, require_user
from .listing import page_of, window
from .notification_groups import GROUPABLE, WITH_STATUS, group_entity, group_page, page_ids
from .pagination import link_header
from .params import Params, query_params
from .wire import id_or_none

MAX_GROUPS = 80
ROWS_PER_GROUP = 4  # notifications read per group asked for: a page of groups rarely needs more
MAX_ROWS = 400
DEFAULT_COUNT_LIMIT = 100
MAX_COUNT_LIMIT = 1000


def _types(params: Params, name: str) -> tuple[str, ...]:
    return tuple(t for t in params.strings(name, max_items=50) if t in repo.TYPES)


def parse_filter(params: Params) -> tuple[repo.NotificationFilter, tuple[str, ...]]:
    """(`types[]`/`exclude_types[]` as v1 reads them, `grouped_types[]`, default favourite, reblog, follow)."""
    types = _types(params, "types")
    if params.strings("types", max_items=50) and not types:
        types = ("none",)  # only unknown types asked for: nothing matches
    grouped = _types(params, "grouped_types") if params.data.get("grouped_types") is not None else GROUPABLE
    return repo.NotificationFilter(types=types, exclude_types=_types(params, "exclude_types")), grouped


async def _visible_rows(conn: asyncpg.Connection, account_id: int, span: Window,
                        options: repo.NotificationFilter) -> list[repo.NotificationRow]:
    """Notifications in the window (in the order read), without those whose post the reader may not see."""
    rows = await repo.read_notifications(conn, account_id, span, options)
    wanted = {r.object_id for r in rows if r.type in WITH_STATUS and r.object_id is not None}
    visible = set(await status_views.visible_object_ids(conn, list(wanted), account_id))
    return [r for r in rows if r.type not in WITH_STATUS or r.object_id in visible]


@require_scopes("read:notifications")
async def grouped_notifications_get(request: web.Request) -> web.Response:
    """GET /api/v2/notifications (`limit`, `max_id`, `since_id`, `min_id`, `types[]`, `exclude_types[]`,
    `grouped_types[]`, `expand_accounts`)."""
    caller = require_user(request)
    page = page_of(request, default=40, maximum=MAX_GROUPS)
    options, grouped = parse_filter(query_params(request))
    span = window(page)
    span = Window(span.lower, span.upper, min(page.limit * ROWS_PER_GROUP, MAX_ROWS), span.ascending)
    settings = request.config_dict[SETTINGS]
    async with request.config_dict[POOL].acquire() as conn:
        rows = await _visible_rows(conn, caller.account_id, span, options)  # type: ignore[arg-type]
        groups = group_page(rows, page.limit, grouped)
        account_ids = list(dict.fromkeys(i for g in groups for i in g.sample_account_ids()))
        accounts = await presenter.present_accounts_by_id(conn, settings, account_ids)
        status_ids = list(dict.fromkeys(g.status_id for g in groups if g.status_id is not None))
        statuses = await presenter.present_entries(conn, settings, [Entry(i, i, i) for i in status_ids],
                                                   caller.account_id)
    shown = {s["id"] for s in statuses}
    kept = [g for g in groups if g.status_id is None or str(g.status_id) in shown]
    body = {"accounts": accounts, "statuses": statuses, "notification_groups": [group_entity(g) for g in kept]}
    link = link_header(settings.base_url, request.path, request.query, page_ids(groups), page.limit)
    return web.json_response(body, headers={"Link": link} if link else None)


@require_scopes("read:notifications")
async def unread_count_get(request: web.Request) -> web.Response:
    """GET /api/v2/notifications/unread_count: groups newer than the notifications marker (at most `limit`,
    default 100, up to 1000), as Mastodon counts them."""
    caller = require_user(request)
    params = query_params(request)
    raw_limit = id_or_none(params.string("limit", max_len=20) or "")
    limit = max(1, min(raw_limit or DEFAULT_COUNT_LIMIT, MAX_COUNT_LIMIT))
    options, grouped = parse_filter(params)
    async with request.config_dict[POOL].acquire() as conn:
        markers = await api_settings.get_markers(conn, caller.account_id, ["notifications"])  # type: ignore
        last_read = id_or_none(markers[0].last_read_id) if markers else None
        span = Window(last_read or 0, MAX_ID, min(limit * ROWS_PER_GROUP, MAX_COUNT_LIMIT * 2))
        rows = await _visible_rows(conn, caller.account_id, span, options)  # type: ignore[arg-type]
    return web.json_response({"count": len(group_page(rows, limit, grouped))})


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application; fixed paths first."""
    api.router.add_get("/v2/notifications/unread_count", unread_count_get)
    api.router.add_get("/v2/notifications", grouped_notifications_get)
