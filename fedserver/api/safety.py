"""Blocks, mutes and domain blocks from the API, with Mastodon's names and answers.

`POST /api/v1/accounts/:id/{block,unblock,mute,unmute}` answer the Relationship; `GET /api/v1/blocks` and
`GET /api/v1/mutes` list accounts (mutes with `mute_expires_at`); `GET|POST|DELETE /api/v1/domain_blocks`
list, add and lift the caller's domain blocks. A block is told to the other server (federation/blocking.py);
a mute and a domain block are the caller's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from activities.urls import BadId, domain_of_input

from ..app_keys import POOL, PUBLISHER, SETTINGS
from ..errors import HTTPError
from ..federation import blocking, outbox, reports
from ..repo import api_accounts
from ..repo import safety as safety_repo
from . import entities, presenter
from .auth import require_scopes, require_user
from .follows import path_account, relationship_with
from .listing import NOT_FOUND, newest_first, page_of, page_response, window
from .params import Params, body_params
from .wire import api_datetime, id_or_none

MAX_ACCOUNTS = 80
MAX_DOMAINS = 200
MAX_MUTE_SECONDS = 10 * 365 * 86400  # a mute "for ten years" is a mute for good, said without overflow


async def _relationship(request: web.Request, viewer_id: int, target_id: int) -> web.Response:
    return web.json_response(await relationship_with(request, viewer_id, target_id))


async def _outbox_move(request: web.Request, move, target) -> web.Response:
    """Run a block or unblock as the caller (doing it again changes nothing); the Relationship after it."""
    caller = require_user(request)
    try:
        async with outbox.acting_as(request.config_dict[POOL], caller.username or "") as (conn, actor):
            await move(conn, request.config_dict[PUBLISHER], actor, target)
    except outbox.AlreadyDone:
        pass
    except outbox.OutboxError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    return await _relationship(request, caller.account_id, target.id)  # type: ignore[arg-type]


@require_scopes("write:blocks", "follow")
async def block_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/block: follows end both ways, the account's server is told; idempotent."""
    target = await path_account(request)
    if target.id == require_user(request).account_id:
        raise HTTPError(422, "Validation failed: You cannot block yourself")
    return await _outbox_move(request, blocking.block, target)


@require_scopes("write:blocks", "follow")
async def unblock_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/unblock: Undo{Block}; idempotent."""
    return await _outbox_move(request, blocking.unblock, await path_account(request))


def _duration(params: Params) -> int:
    """`duration` in seconds (0 or absent: for good)."""
    raw = params.data.get("duration")
    if raw is None or raw == "":
        return 0
    try:
        seconds = int(raw) if not isinstance(raw, bool | float) else None
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or seconds < 0 or seconds > MAX_MUTE_SECONDS:
        raise HTTPError(422, f"Validation failed: duration must be a number of seconds from 0 (for good) "
                             f"to {MAX_MUTE_SECONDS}")
    return seconds


@require_scopes("write:mutes", "follow")
async def mute_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/mute (`notifications`, default true; `duration` in seconds, 0 for good): hides
    the account's posts (and notifications) from the caller, tells no one. Muting again changes the options."""
    caller = require_user(request)
    params = await body_params(request)
    notifications = params.boolean("notifications")
    seconds = _duration(params)
    target = await path_account(request)
    if target.id == caller.account_id:
        raise HTTPError(422, "Validation failed: You cannot mute yourself")
    expires = datetime.now(UTC) + timedelta(seconds=seconds) if seconds else None
    async with request.config_dict[POOL].acquire() as conn:
        await safety_repo.upsert_mute(conn, caller.account_id, target.id,  # type: ignore[arg-type]
                                      True if notifications is None else notifications, expires)
    return await _relationship(request, caller.account_id, target.id)  # type: ignore[arg-type]


@require_scopes("write:mutes", "follow")
async def unmute_post(request: web.Request) -> web.Response:
    """POST /api/v1/accounts/:id/unmute; idempotent."""
    caller = require_user(request)
    target = await path_account(request)
    async with request.config_dict[POOL].acquire() as conn:
        await safety_repo.delete_mute(conn, caller.account_id, target.id)  # type: ignore[arg-type]
    return await _relationship(request, caller.account_id, target.id)  # type: ignore[arg-type]


@require_scopes("read:blocks", "follow")
async def blocks_get(request: web.Request) -> web.Response:
    """GET /api/v1/blocks: the accounts the caller blocks, latest first."""
    caller = require_user(request)
    page = page_of(request, default=40, maximum=MAX_ACCOUNTS)
    async with request.config_dict[POOL].acquire() as conn:
        found = newest_first(await safety_repo.read_blocks(conn, caller.account_id, window(page)), page)
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], [a for _, a in found])
    return page_response(request, body, [cursor for cursor, _ in found], page)


@require_scopes("read:mutes", "follow")
async def mutes_get(request: web.Request) -> web.Response:
    """GET /api/v1/mutes: the accounts the caller mutes, latest first, each with `mute_expires_at`."""
    caller = require_user(request)
    page = page_of(request, default=40, maximum=MAX_ACCOUNTS)
    async with request.config_dict[POOL].acquire() as conn:
        found = newest_first(await safety_repo.read_mutes(conn, caller.account_id, window(page)), page)
        body = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS],
                                                      [m.target_id for m in found])
    expiry = {str(m.target_id): m.expires_at for m in found}
    for account in body:
        expires = expiry.get(account["id"])
        account["mute_expires_at"] = api_datetime(expires) if expires else None
    return page_response(request, body, [m.id for m in found], page)


async def _domain(request: web.Request) -> str:
    params = await body_params(request)
    raw = params.string("domain", max_len=300)
    if not raw:
        raise HTTPError(422, "Validation failed: domain is required")
    try:
        domain = domain_of_input(raw)
    except BadId as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    if domain == request.config_dict[SETTINGS].instance.domain:
        raise HTTPError(422, "Validation failed: You cannot block your own server")
    return domain


@require_scopes("read:blocks", "follow")
async def domain_blocks_get(request: web.Request) -> web.Response:
    """GET /api/v1/domain_blocks: the domains the caller blocks (strings), latest first."""
    caller = require_user(request)
    page = page_of(request, default=100, maximum=MAX_DOMAINS)
    async with request.config_dict[POOL].acquire() as conn:
        found = newest_first(await safety_repo.read_domain_blocks(conn, caller.account_id, window(page)), page)
    return page_response(request, [domain for _, domain in found], [cursor for cursor, _ in found], page)


@require_scopes("write:blocks", "follow")
async def domain_blocks_post(request: web.Request) -> web.Response:
    """POST /api/v1/domain_blocks `domain`: nothing from it in the caller's timelines and notifications; the
    caller's followers there are removed. Answers `{}`, as Mastodon; idempotent."""
    caller = require_user(request)
    domain = await _domain(request)
    async with outbox.acting_as(request.config_dict[POOL], caller.username or "") as (conn, actor):
        await blocking.block_domain(conn, request.config_dict[PUBLISHER], actor, domain)
    return web.json_response({})


@require_scopes("write:blocks", "follow")
async def domain_blocks_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/domain_blocks `domain`: lift it (followers removed stay removed); idempotent."""
    caller = require_user(request)
    domain = await _domain(request)
    async with request.config_dict[POOL].acquire() as conn:
        await safety_repo.delete_domain_block(conn, caller.account_id, domain)  # type: ignore[arg-type]
    return web.json_response({})


def _ids(params: Params, name: str) -> list[int]:
    found = []
    for raw in params.strings(name, max_items=100):
        value = id_or_none(raw)
        if value is None:
            raise HTTPError(422, f"Validation failed: {name} must hold ids")
        found.append(value)
    return found


@require_scopes("write:reports")
async def reports_post(request: web.Request) -> web.Response:
    """POST /api/v1/reports (`account_id`, `status_ids[]`, `comment`, `category`, `rule_ids[]`, `forward`): a
    report for this server's operator; with `forward`, a Flag goes to a remote account's server too."""
    caller = require_user(request)
    params = await body_params(request)
    account_id = id_or_none(params.string("account_id", max_len=30) or "")
    if account_id is None:
        raise HTTPError(422, "Validation failed: account_id is required")
    report = reports.NewReport(
        status_ids=_ids(params, "status_ids"), comment=params.string("comment", max_len=10_000) or "",
        category=params.string("category", max_len=20) or "other", rule_ids=_ids(params, "rule_ids"),
        forward=bool(params.boolean("forward")))
    pool = request.config_dict[POOL]
    async with pool.acquire() as conn:
        target = await api_accounts.get_visible_account(conn, account_id)
        reporter = await api_accounts.get_visible_account(conn, caller.account_id)  # type: ignore[arg-type]
    if target is None:
        raise HTTPError(404, NOT_FOUND)
    assert reporter is not None
    try:
        filed = await reports.file_report(pool, request.config_dict[PUBLISHER], reporter, target, report)
    except reports.ReportError as exc:
        raise HTTPError(422, f"Validation failed: {exc}") from None
    async with pool.acquire() as conn:
        [account] = await presenter.present_accounts_by_id(conn, request.config_dict[SETTINGS], [target.id])
    return web.json_response(entities.report(filed, account))


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_post(r"/v1/accounts/{id}/block", block_post)
    api.router.add_post(r"/v1/accounts/{id}/unblock", unblock_post)
    api.router.add_post(r"/v1/accounts/{id}/mute", mute_post)
    api.router.add_post(r"/v1/accounts/{id}/unmute", unmute_post)
    api.router.add_get("/v1/blocks", blocks_get)
    api.router.add_get("/v1/mutes", mutes_get)
    api.router.add_get("/v1/domain_blocks", domain_blocks_get)
    api.router.add_post("/v1/domain_blocks", domain_blocks_post)
    api.router.add_delete("/v1/domain_blocks", domain_blocks_delete)
    for path in ("/v1/reports", "/v1/reports/"):  # Mastodon.py posts to the second
        api.router.add_post(path, reports_post)
