"""Timelines: home, public, hashtag, an account's posts, favourites and bookmarks. All page by id with
`max_id`/`since_id`/`min_id`/`limit` and answer a `Link` header (`next` first)."""

from __future__ import annotations

from aiohttp import web

from activities.text import normalize_hashtag

from ..app_keys import POOL, SETTINGS
from ..errors import HTTPError
from ..repo import api_accounts, home_feed, timelines
from ..repo.status_views import Entry
from . import presenter
from .auth import require_scopes, require_user
from .listing import NOT_FOUND, newest_first, optional_viewer, page_of, page_response, path_id, window
from .pagination import Page
from .params import query_params


async def _answer(request: web.Request, conn, entries: list[Entry], page: Page, viewer: int | None) -> web.Response:
    entries = newest_first(entries, page)
    body = await presenter.present_entries(conn, request.config_dict[SETTINGS], entries, viewer)
    return page_response(request, body, [e.cursor for e in entries], page)


@require_scopes("read:statuses")
async def home_get(request: web.Request) -> web.Response:
    """GET /api/v1/timelines/home: own posts, and posts and boosts of followed accounts (fanned out on write)."""
    caller = require_user(request)
    page = page_of(request)
    async with request.config_dict[POOL].acquire() as conn:
        entries = await home_feed.read_home(conn, caller.account_id, window(page))  # type: ignore[arg-type]
        return await _answer(request, conn, entries, page, caller.account_id)


def _public_filter(request: web.Request) -> timelines.PublicFilter:
    query = query_params(request)
    return timelines.PublicFilter(local=bool(query.boolean("local")), remote=bool(query.boolean("remote")),
                                  only_media=bool(query.boolean("only_media")))


async def public_get(request: web.Request) -> web.Response:
    """GET /api/v1/timelines/public (`local`, `remote`, `only_media`): public posts known here."""
    viewer = optional_viewer(request, "read:statuses")
    page, options = page_of(request), _public_filter(request)
    async with request.config_dict[POOL].acquire() as conn:
        entries = await timelines.read_public(conn, viewer, window(page), options)
        return await _answer(request, conn, entries, page, viewer)


async def tag_get(request: web.Request) -> web.Response:
    """GET /api/v1/timelines/tag/:hashtag: public posts with the hashtag (an unknown tag is an empty list)."""
    viewer = optional_viewer(request, "read:statuses")
    page, options = page_of(request), _public_filter(request)
    tag = normalize_hashtag(request.match_info["hashtag"])
    async with request.config_dict[POOL].acquire() as conn:
        entries = await timelines.read_tag(conn, tag, viewer, window(page), options) if tag else []
        return await _answer(request, conn, entries, page, viewer)


@require_scopes("read:favourites")
async def favourites_get(request: web.Request) -> web.Response:
    """GET /api/v1/favourites: posts the caller liked (paged by the like, as Mastodon's Link header)."""
    caller = require_user(request)
    page = page_of(request)
    async with request.config_dict[POOL].acquire() as conn:
        entries = await timelines.read_favourites(conn, caller.account_id, window(page))  # type: ignore[arg-type]
        return await _answer(request, conn, entries, page, caller.account_id)


@require_scopes("read:bookmarks")
async def bookmarks_get(request: web.Request) -> web.Response:
    """GET /api/v1/bookmarks: posts the caller bookmarked (paged by the bookmark)."""
    caller = require_user(request)
    page = page_of(request)
    async with request.config_dict[POOL].acquire() as conn:
        entries = await timelines.read_bookmarks(conn, caller.account_id, window(page))  # type: ignore[arg-type]
        return await _answer(request, conn, entries, page, caller.account_id)


async def account_statuses_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/:id/statuses (`pinned`, `exclude_replies`, `exclude_reblogs`, `only_media`)."""
    viewer = optional_viewer(request, "read:statuses")
    account_id, page, query = path_id(request), page_of(request), query_params(request)
    options = timelines.AccountFilter(exclude_replies=bool(query.boolean("exclude_replies")),
                                      exclude_reblogs=bool(query.boolean("exclude_reblogs")),
                                      only_media=bool(query.boolean("only_media")))
    async with request.config_dict[POOL].acquire() as conn:
        if await api_accounts.get_visible_account(conn, account_id) is None:
            raise HTTPError(404, NOT_FOUND)
        if query.boolean("pinned"):
            paging = page.max_id or page.min_id or page.since_id
            entries = [] if paging else await timelines.read_pinned(conn, account_id, viewer)
        else:
            entries = await timelines.read_account(conn, account_id, viewer, window(page), options)
        return await _answer(request, conn, entries, page, viewer)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/timelines/home", home_get)
    api.router.add_get("/v1/timelines/public", public_get)
    api.router.add_get("/v1/timelines/tag/{hashtag}", tag_get)
    api.router.add_get("/v1/favourites", favourites_get)
    api.router.add_get("/v1/bookmarks", bookmarks_get)
    api.router.add_get(r"/v1/accounts/{id}/statuses", account_statuses_get)
