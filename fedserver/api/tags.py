"""Hashtags: `GET /api/v1/tags/:name` (the Tag entity with `following` and a week of `history`),
`POST /api/v1/tags/:name/follow|unfollow` and `GET /api/v1/followed_tags`. A followed tag's new public
posts reach the follower's home timeline at fan-out (repo/home_feed.py)."""

from __future__ import annotations

from calendar import timegm
from urllib.parse import quote

from aiohttp import web

from activities.text import normalize_hashtag

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import followed_tags as tags_repo
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, optional_viewer, page_of, page_response, window

MAX_FOLLOWED_PAGE = 200


def tag_entity(name: str, base_url: str, history: list[tags_repo.DayUse], following: bool | None) -> dict:
    """Mastodon's Tag: `history` days are UNIX times of UTC midnights, today first; numbers as strings."""
    body = {"name": name, "url": f"{base_url}/tags/{quote(name)}",
            "history": [{"day": str(timegm(d.day.timetuple())), "uses": str(d.uses), "accounts": str(d.accounts)}
                        for d in history]}
    if following is not None:
        body["following"] = following
    return body


async def tag_entities(conn, base_url: str, names: list[str], viewer: int | None) -> list[dict]:
    """Tag entities for `names`, in that order (`following` only for a signed-in reader)."""
    history = await tags_repo.history(conn, names)
    followed = await tags_repo.followed_among(conn, viewer, names)
    return [tag_entity(n, base_url, history.get(n, []), None if viewer is None else n in followed) for n in names]


def _name(request: web.Request) -> str:
    name = normalize_hashtag(request.match_info["name"])
    if not name:
        raise HTTPError(404, NOT_FOUND)
    return name


async def _answer(request: web.Request, name: str, viewer: int | None) -> web.Response:
    async with request.config_dict[POOL].acquire() as conn:
        [body] = await tag_entities(conn, request.config_dict[SETTINGS].base_url, [name], viewer)
    return web.json_response(body)


async def tag_get(request: web.Request) -> web.Response:
    """GET /api/v1/tags/:name: any well-formed tag (one no post carried yet has zero uses)."""
    return await _answer(request, _name(request), optional_viewer(request, "read"))


@require_scopes("write:follows", "follow")
async def tag_follow_post(request: web.Request) -> web.Response:
    """POST /api/v1/tags/:name/follow: idempotent; answers the Tag with `following: true`."""
    caller = require_user(request)
    name = _name(request)
    async with request.config_dict[POOL].acquire() as conn:
        await tags_repo.follow_tag(conn, caller.account_id, name)  # type: ignore[arg-type]
    return await _answer(request, name, caller.account_id)


@require_scopes("write:follows", "follow")
async def tag_unfollow_post(request: web.Request) -> web.Response:
    """POST /api/v1/tags/:name/unfollow: idempotent; posts already in the home timeline stay, as Mastodon."""
    caller = require_user(request)
    name = _name(request)
    async with request.config_dict[POOL].acquire() as conn:
        await tags_repo.unfollow_tag(conn, caller.account_id, name)  # type: ignore[arg-type]
    return await _answer(request, name, caller.account_id)


@require_scopes("read:follows", "follow")
async def followed_tags_get(request: web.Request) -> web.Response:
    """GET /api/v1/followed_tags: the tags the caller follows, latest first, paged."""
    caller = require_user(request)
    page = page_of(request, default=100, maximum=MAX_FOLLOWED_PAGE)
    async with request.config_dict[POOL].acquire() as conn:
        found = newest_first(await tags_repo.read_followed(conn, caller.account_id, window(page)), page)  # type: ignore[arg-type]
        body = await tag_entities(conn, request.config_dict[SETTINGS].base_url, [n for _, n in found],
                                  caller.account_id)
    return page_response(request, body, [cursor for cursor, _ in found], page)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/followed_tags", followed_tags_get)
    api.router.add_get(r"/v1/tags/{name}", tag_get)
    api.router.add_post(r"/v1/tags/{name}/follow", tag_follow_post)
    api.router.add_post(r"/v1/tags/{name}/unfollow", tag_unfollow_post)
