"""Instance information (v1 and v2, with and without the trailing slash) and the startup stubs."""

from __future__ import annotations

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import actors as actors_repo
from ..repo import api_accounts
from ..repo import moderation as moderation_repo
from . import entities
from .auth import require_scopes


async def instance_v1_get(request: web.Request) -> web.Response:
    """GET /api/v1/instance: toot needs `uri`; Mastodon.py reads `version` from the trailing-slash URL."""
    async with request.config_dict[POOL].acquire() as conn:
        users = await actors_repo.count_local_users(conn)
        statuses = await actors_repo.count_local_posts(conn)
        domains = await api_accounts.count_remote_domains(conn)
    body = entities.instance_v1(request.config_dict[SETTINGS], users=users, statuses=statuses, domains=domains)
    return web.json_response(body)


async def instance_v2_get(request: web.Request) -> web.Response:
    """GET /api/v2/instance: Elk, Phanpy, Tusky and Ivory start here."""
    async with request.config_dict[POOL].acquire() as conn:
        active = await api_accounts.count_active_users(conn, 30)
    return web.json_response(entities.instance_v2(request.config_dict[SETTINGS], active_month=active))


async def rules_get(request: web.Request) -> web.Response:
    """GET /api/v1/instance/rules: the server's rules (`[instance] rules`), public, as Mastodon serves them."""
    return web.json_response(entities.rules(request.config_dict[SETTINGS]))


async def peers_get(request: web.Request) -> web.Response:
    """GET /api/v1/instance/peers: the domains of the servers this one knows actors of, public."""
    async with request.config_dict[POOL].acquire() as conn:
        return web.json_response(await api_accounts.list_remote_domains(conn))


async def domain_blocks_get(request: web.Request) -> web.Response:
    """GET /api/v1/instance/domain_blocks: the blocked and silenced domains with their reasons, public unless
    `[instance] publish_domain_blocks` is off (then 404, as Mastodon answers when it does not show them)."""
    if not request.config_dict[SETTINGS].instance.publish_domain_blocks:
        raise HTTPError(404, "this server does not publish its domain blocks")
    async with request.config_dict[POOL].acquire() as conn:
        domains = await moderation_repo.list_domains(conn)
    return web.json_response([entities.domain_block(d) for d in domains])


async def activity_get(request: web.Request) -> web.Response:
    """GET /api/v1/instance/activity: the last 12 weeks, newest first; Mastodon's numbers are strings."""
    async with request.config_dict[POOL].acquire() as conn:
        rows = await api_accounts.weekly_activity(conn, 12)
    return web.json_response([{key: str(row[key]) for key in ("week", "statuses", "logins", "registrations")}
                              for row in rows])


async def empty_list_get(request: web.Request) -> web.Response:
    """A startup stub that answers `[]` (custom emojis: public)."""
    return web.json_response([])


@require_scopes("read:filters")
async def filters_get(request: web.Request) -> web.Response:
    """GET /api/v1/filters and /api/v2/filters: no filters yet (Tusky)."""
    return web.json_response([])


@require_scopes("read")
async def announcements_get(request: web.Request) -> web.Response:
    """GET /api/v1/announcements: none (Tusky)."""
    return web.json_response([])


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    for path in ("/v1/instance", "/v1/instance/"):
        api.router.add_get(path, instance_v1_get)
    for path in ("/v2/instance", "/v2/instance/"):
        api.router.add_get(path, instance_v2_get)
    api.router.add_get("/v1/instance/rules", rules_get)
    api.router.add_get("/v1/instance/peers", peers_get)
    api.router.add_get("/v1/instance/domain_blocks", domain_blocks_get)
    api.router.add_get("/v1/instance/activity", activity_get)
    api.router.add_get("/v1/custom_emojis", empty_list_get)
    api.router.add_get("/v1/filters", filters_get)
    api.router.add_get("/v2/filters", filters_get)
    api.router.add_get("/v1/announcements", announcements_get)
