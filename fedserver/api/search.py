"""GET /api/v2/search: accounts, statuses and hashtags; `resolve=true` fetches remote accounts and posts.

Authentication is optional, as on Mastodon (`authorize_if_got_token!`): a token that is sent
must hold `read:search`, and `resolve=true` needs a user's token (Mastodon answers 401
without one), because it makes this server fetch from other servers.
"""

from __future__ import annotations

from aiohttp import web

from ..app_keys import HTTP, INSTANCE_SIGNER, POOL, SETTINGS
from ..errors import HTTPError
from ..federation.resolve import RemoteResolver
from ..repo.status_views import Entry
from ..search.service import TYPES, SearchQuery, search
from . import status_entities
from .accounts import present_accounts
from .auth import NEEDS_USER, OUTSIDE_SCOPES, Auth, current_auth
from .params import Params, query_params
from .presenter import present_entries
from .scopes import grants
from .wire import parse_id

SEARCH_SCOPES = ("read:search",)
DEFAULT_LIMIT = 20
MAX_LIMIT = 40
MAX_OFFSET = 10_000
MAX_QUERY = 1000


def _check_caller(caller: Auth | None, resolve: bool) -> None:
    if caller is not None and not grants(caller.scopes, SEARCH_SCOPES):
        raise HTTPError(403, OUTSIDE_SCOPES)
    if resolve and caller is None:
        raise HTTPError(401, "Search queries that resolve remote resources are not supported without "
                             "authentication", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if resolve and caller is not None and caller.account_id is None:
        raise HTTPError(422, NEEDS_USER)


def _number(params: Params, name: str, default: int, low: int, high: int) -> int:
    raw = params.string(name, max_len=20)
    if raw is None or raw == "":
        return default
    try:
        return max(low, min(high, int(raw)))
    except ValueError:
        raise HTTPError(400, f"{name} must be a number") from None


def parse_search(params: Params, caller: Auth | None) -> SearchQuery:
    """Read the query string (400/422 for wrong values) and check the caller."""
    q = params.string("q", max_len=MAX_QUERY)
    if q is None:
        raise HTTPError(400, "q is required")
    kind = params.string("type", max_len=20)
    if kind not in (None, "", *TYPES):
        raise HTTPError(422, f"type must be one of {', '.join(TYPES)}")
    resolve = bool(params.boolean("resolve"))
    _check_caller(caller, resolve)
    viewer = caller.account_id if caller else None
    return SearchQuery(
        q=q, types=(kind,) if kind else TYPES, resolve=resolve,
        limit=_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_number(params, "offset", 0, 0, MAX_OFFSET),
        following=bool(params.boolean("following")) and viewer is not None,
        account_id=parse_id(params.string("account_id", max_len=20), "account_id"), viewer_id=viewer,
    )


async def search_get(request: web.Request) -> web.Response:
    """GET /api/v2/search."""
    caller = current_auth(request)
    query = parse_search(query_params(request), caller)
    settings, pool = request.config_dict[SETTINGS], request.config_dict[POOL]
    resolver = RemoteResolver(pool, settings, request.config_dict[HTTP], request.config_dict[INSTANCE_SIGNER]) \
        if query.resolve else None
    found = await search(pool, settings, resolver, query)
    async with pool.acquire() as conn:
        accounts = await present_accounts(conn, settings, found.accounts)
        statuses = await present_entries(conn, settings, [Entry(i, i, i) for i in found.status_ids],
                                         query.viewer_id)
    hashtags = [status_entities.tag(name, settings.base_url, history=True) for name in found.tags]
    return web.json_response({"accounts": accounts, "statuses": statuses, "hashtags": hashtags})


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v2/search", search_get)

