"""Direct-message conversations with Mastodon's names: `GET /api/v1/conversations` (paged by last status,
`Link` header), `DELETE /api/v1/conversations/:id` (hides it for the caller until a newer post) and
`POST /api/v1/conversations/:id/read`. How posts make a conversation: fedserver/repo/conversations.py."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..config import Settings
from ..errors import HTTPError
from ..repo import conversations as repo
from ..repo.status_views import Entry
from . import presenter
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, page_of, page_response, path_id, window

MAX_CONVERSATIONS = 40


async def present_conversations(conn: asyncpg.Connection, settings: Settings, rows: list[repo.ConversationRow],
                                viewer_id: int) -> list[dict]:
    """Conversation entities {id, unread, accounts, last_status}; one whose last post vanished is left out."""
    statuses = await presenter.present_entries(conn, settings, [Entry(r.last_id, r.last_id, r.last_id) for r in rows],
                                               viewer_id)
    by_id = {int(s["id"]): s for s in statuses}
    people = await presenter.present_accounts_by_id(conn, settings,
                                                    list(dict.fromkeys(i for r in rows for i in r.account_ids)))
    accounts = {int(a["id"]): a for a in people}
    return [{"id": str(r.id), "unread": r.unread, "accounts": [accounts[i] for i in r.account_ids if i in accounts],
             "last_status": by_id[r.last_id]} for r in rows if r.last_id in by_id]


@require_scopes("read:statuses")
async def conversations_get(request: web.Request) -> web.Response:
    """GET /api/v1/conversations: the caller's conversations, latest post first."""
    caller = require_user(request)
    page = page_of(request, default=20, maximum=MAX_CONVERSATIONS)
    async with request.config_dict[POOL].acquire() as conn:
        rows = newest_first(await repo.read_conversations(conn, caller.account_id, window(page)), page)  # type: ignore
        body = await present_conversations(conn, request.config_dict[SETTINGS], rows, caller.account_id)  # type: ignore
    return page_response(request, body, [r.last_id for r in rows], page)


async def _own(conn: asyncpg.Connection, request: web.Request, account_id: int) -> repo.ConversationRow:
    found = await repo.get_conversation(conn, account_id, path_id(request))
    if found is None:
        raise HTTPError(404, NOT_FOUND)
    return found


@require_scopes("write:conversations")
async def conversation_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/conversations/:id: hidden for the caller (others keep theirs); answers `{}`."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        found = await _own(conn, request, caller.account_id)  # type: ignore[arg-type]
        await repo.hide(conn, caller.account_id, found.thread_key, found.last_id)  # type: ignore[arg-type]
    return web.json_response({})


@require_scopes("write:conversations")
async def conversation_read_post(request: web.Request) -> web.Response:
    """POST /api/v1/conversations/:id/read: answers the Conversation, now read."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        found = await _own(conn, request, caller.account_id)  # type: ignore[arg-type]
        await repo.mark_read(conn, caller.account_id, found.thread_key, found.last_id)  # type: ignore[arg-type]
        body = await present_conversations(conn, request.config_dict[SETTINGS], [replace(found, unread=False)],
                                           caller.account_id)  # type: ignore[arg-type]
    if not body:
        raise HTTPError(404, NOT_FOUND)
    return web.json_response(body[0])


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    for path in ("/v1/conversations", "/v1/conversations/"):  # Mastodon.py asks for the second
        api.router.add_get(path, conversations_get)
    api.router.add_delete(r"/v1/conversations/{id}", conversation_delete)
    api.router.add_post(r"/v1/conversations/{id}/read", conversation_read_post)
