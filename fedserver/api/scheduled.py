"""Scheduled statuses, as Mastodon: `POST /api/v1/statuses` with `scheduled_at` (at least five minutes ahead)
stores the post's parameters and answers a ScheduledStatus; `GET /api/v1/scheduled_statuses` and
`GET|PUT|DELETE /api/v1/scheduled_statuses/:id` read, move and drop them. A worker posts due ones
(scheduled_worker.py). Everything is checked when scheduling, so a bad post is refused now, not later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from ..app_keys import POOL
from ..errors import HTTPError
from ..federation.posting import PostOptions
from ..media.entity import media_attachment
from ..repo import scheduled_statuses as scheduled_repo
from . import status_service
from .auth import Auth, require_scopes, require_user
from .listing import NOT_FOUND, newest_first, page_of, page_response, path_id, window
from .params import Params, body_params
from .status_input import parse_draft
from .status_service import StatusDraft
from .wire import api_datetime

MIN_AHEAD = timedelta(minutes=5)  # Mastodon's ScheduledStatusValidator
TOO_SOON = "Validation failed: scheduled_at must be at least 5 minutes in the future"


def wants_schedule(params: Params) -> bool:
    """Whether a new status asks to be scheduled."""
    return params.raw("scheduled_at") not in (None, "")


def parse_scheduled_at(params: Params, now: datetime | None = None) -> datetime:
    """`scheduled_at` (ISO 8601; UTC when it names no offset), at least five minutes ahead; 422 otherwise."""
    raw = params.string("scheduled_at", max_len=60, required=True) or ""
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HTTPError(422, "Validation failed: scheduled_at must be an ISO 8601 date and time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when < (now or datetime.now(UTC)) + MIN_AHEAD:
        raise HTTPError(422, TOO_SOON)
    return when.astimezone(UTC)


def stored_params(draft: StatusDraft, scheduled_at: datetime, app_id: int | None) -> dict:
    """The `params` of Mastodon's ScheduledStatus (ids as strings), which is also what the worker posts."""
    options = draft.options
    return {"text": draft.text, "visibility": draft.visibility,
            "in_reply_to_id": None if draft.in_reply_to_id is None else str(draft.in_reply_to_id),
            "spoiler_text": options.spoiler_text or None, "sensitive": options.sensitive,
            "language": options.language, "media_ids": [str(m) for m in options.media_ids] or None,
            "poll": None, "idempotency": None, "with_rate_limit": False, "application_id": app_id,
            "scheduled_at": None}


def draft_of(row: scheduled_repo.ScheduledStatus) -> StatusDraft:
    """The post a scheduled status makes (no Idempotency-Key: the row itself is posted once)."""
    p = row.params
    options = PostOptions(spoiler_text=p.get("spoiler_text") or "", sensitive=bool(p.get("sensitive")),
                          language=p.get("language"), media_ids=tuple(row.media_ids), app_id=row.app_id)
    reply = p.get("in_reply_to_id")
    return StatusDraft(text=p.get("text") or "", visibility=p.get("visibility"),
                       in_reply_to_id=int(reply) if reply else None, options=options)


async def _entity(conn, row: scheduled_repo.ScheduledStatus) -> dict:
    media = await scheduled_repo.own_unattached_media(conn, row.account_id, row.media_ids)
    return {"id": str(row.id), "scheduled_at": api_datetime(row.scheduled_at), "params": row.params,
            "media_attachments": [media_attachment(media[m]) for m in row.media_ids if m in media]}


async def schedule_post(request: web.Request, caller: Auth, params: Params, key: str | None) -> web.Response:
    """POST /api/v1/statuses with `scheduled_at`: check the post as if it were made now, then store it."""
    scheduled_at = parse_scheduled_at(params)
    draft = parse_draft(params, key=None, app_id=caller.app_id)
    async with request.config_dict[POOL].acquire() as conn:
        if draft.in_reply_to_id is not None:
            await status_service.visible_entry(conn, draft.in_reply_to_id, caller.account_id)
        media = await scheduled_repo.own_unattached_media(conn, caller.account_id,  # type: ignore[arg-type]
                                                          list(draft.options.media_ids))
        if len(media) != len(draft.options.media_ids):
            raise HTTPError(422, "Validation failed: media_ids must name your own uploads not yet in a post")
        try:
            row = await scheduled_repo.insert_scheduled(
                conn, caller.account_id, scheduled_at, stored_params(draft, scheduled_at, caller.app_id),  # type: ignore[arg-type]
                list(draft.options.media_ids), caller.app_id, key)
        except scheduled_repo.TooMany:
            raise HTTPError(422, f"Validation failed: you can schedule at most {scheduled_repo.MAX_SCHEDULED} "
                                 "statuses") from None
        return web.json_response(await _entity(conn, row))


@require_scopes("read:statuses")
async def scheduled_statuses_get(request: web.Request) -> web.Response:
    """GET /api/v1/scheduled_statuses: the caller's, latest first, paged by id."""
    caller = require_user(request)
    page = page_of(request)
    async with request.config_dict[POOL].acquire() as conn:
        rows = newest_first(await scheduled_repo.read_scheduled(conn, caller.account_id, window(page)), page)  # type: ignore[arg-type]
        body = [await _entity(conn, row) for row in rows]
    return page_response(request, body, [row.id for row in rows], page)


@require_scopes("read:statuses")
async def scheduled_status_get(request: web.Request) -> web.Response:
    """GET /api/v1/scheduled_statuses/:id."""
    caller = require_user(request)
    async with request.config_dict[POOL].acquire() as conn:
        row = await scheduled_repo.get_own_scheduled(conn, caller.account_id, path_id(request))  # type: ignore[arg-type]
        if row is None:
            raise HTTPError(404, NOT_FOUND)
        return web.json_response(await _entity(conn, row))


@require_scopes("write:statuses")
async def scheduled_status_put(request: web.Request) -> web.Response:
    """PUT /api/v1/scheduled_statuses/:id `scheduled_at`: move it (five minutes ahead at least)."""
    caller = require_user(request)
    scheduled_id = path_id(request)
    scheduled_at = parse_scheduled_at(await body_params(request))
    async with request.config_dict[POOL].acquire() as conn:
        row = await scheduled_repo.reschedule(conn, caller.account_id, scheduled_id, scheduled_at)  # type: ignore[arg-type]
        if row is None:
            raise HTTPError(404, NOT_FOUND)
        return web.json_response(await _entity(conn, row))


@require_scopes("write:statuses")
async def scheduled_status_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/scheduled_statuses/:id: answers `{}`."""
    caller = require_user(request)
    scheduled_id = path_id(request)
    async with request.config_dict[POOL].acquire() as conn:
        if not await scheduled_repo.delete_scheduled(conn, caller.account_id, scheduled_id):  # type: ignore[arg-type]
            raise HTTPError(404, NOT_FOUND)
    return web.json_response({})


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/scheduled_statuses", scheduled_statuses_get)
    api.router.add_get(r"/v1/scheduled_statuses/{id}", scheduled_status_get)
    api.router.add_put(r"/v1/scheduled_statuses/{id}", scheduled_status_put)
    api.router.add_delete(r"/v1/scheduled_statuses/{id}", scheduled_status_delete)
