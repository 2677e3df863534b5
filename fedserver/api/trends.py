"""Trends from the open ranking, not from private signals: `GET /api/v1/trends/statuses`,
`GET /api/v1/trends/tags` and `GET /api/v1/trends` (tags, as Mastodon aliases it). The rules are in
trend_rules.py. With no ranking to be had within the discover page's budget (rewards still loading,
no reachable log), the answer is `[]`."""

from __future__ import annotations

from aiohttp import web

from rewards.ranking_web import live_ranking

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import status_views
from ..repo import trends as trends_repo
from ..repo.status_views import Entry
from . import presenter, trend_rules
from .listing import optional_viewer
from .tags import tag_entities


def _limit_offset(request: web.Request, default: int, maximum: int) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit") or default)
        offset = int(request.query.get("offset") or 0)
    except ValueError:
        raise HTTPError(400, "limit and offset must be whole numbers") from None
    if offset < 0:
        raise HTTPError(400, "offset must not be negative")
    return max(1, min(limit, maximum)), offset


async def _ranked_visible(request: web.Request, conn, viewer: int | None) -> list[tuple[str, int, int]]:
    """(uri, score, object id) of the ranked posts known here that the reader may see, in ranking order."""
    scores = trend_rules.ranked_objects(await live_ranking(request, "posts"))
    known = await trends_repo.visible_public_posts(conn, [uri for uri, _ in scores], viewer)
    return [(uri, score, known[uri]) for uri, score in scores if uri in known]


async def trending_statuses_get(request: web.Request) -> web.Response:
    """GET /api/v1/trends/statuses (`limit` ≤ 40, `offset`): ranked posts, in ranking order."""
    viewer = optional_viewer(request, "read:statuses")
    limit, offset = _limit_offset(request, 20, 40)
    async with request.config_dict[POOL].acquire() as conn:
        ranked = (await _ranked_visible(request, conn, viewer))[offset:offset + limit]
        entries = [Entry(object_id, object_id, object_id) for _, _, object_id in ranked]
        body = await presenter.present_entries(conn, request.config_dict[SETTINGS], entries, viewer)
    return web.json_response(body)


async def trending_tags_get(request: web.Request) -> web.Response:
    """GET /api/v1/trends/tags and /api/v1/trends (`limit` ≤ 20, `offset`): tags of ranked posts, by weight."""
    viewer = optional_viewer(request, "read")
    limit, offset = _limit_offset(request, 10, 20)
    async with request.config_dict[POOL].acquire() as conn:
        ranked = await _ranked_visible(request, conn, viewer)
        by_object = await status_views.get_tags(conn, [object_id for _, _, object_id in ranked])
        tags = {uri: by_object.get(object_id, []) for uri, _, object_id in ranked}
        weighed = trend_rules.weigh_tags([(uri, score) for uri, score, _ in ranked], tags)[offset:offset + limit]
        body = await tag_entities(conn, request.config_dict[SETTINGS].base_url, [t for t, _, _ in weighed], viewer)
    return web.json_response(body)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/trends", trending_tags_get)
    api.router.add_get("/v1/trends/tags", trending_tags_get)
    api.router.add_get("/v1/trends/statuses", trending_statuses_get)
