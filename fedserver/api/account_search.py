"""GET /api/v1/accounts/search (`q`, `limit`, `offset`, `resolve`, `following`): accounts only.

The same search as the accounts of /api/v2/search (handles, name prefixes, Korean display names),
through `search.service.search`. As on Mastodon the token is optional and, when sent, must hold
`read:accounts`; `resolve=true` fetches an unknown `name@host` by WebFinger and needs a user's token,
as /api/v2/search does here (Mastodon resolves for anyone; this server does not fetch for strangers).
`following=true` keeps accounts the caller follows (ignored without a token).
"""

from __future__ import annotations

from aiohttp import web

from ..app_keys import HTTP, INSTANCE_SIGNER, POOL, SETTINGS
from ..errors import HTTPError
from ..federation.resolve import RemoteResolver
from ..search.service import SearchQuery, search
from .accounts import present_accounts
from .auth import NEEDS_USER, OUTSIDE_SCOPES, current_auth
from .params import query_params
from .scopes import grants
from .search import MAX_OFFSET, MAX_QUERY, _number

ACCOUNT_SCOPES = ("read:accounts",)
DEFAULT_LIMIT = 40
MAX_LIMIT = 80


def parse_account_search(request: web.Request) -> SearchQuery:
    """Read the query string (400 for a missing `q` or a non-numeric number) and check the caller."""
    params, caller = query_params(request), current_auth(request)
    if caller is not None and not grants(caller.scopes, ACCOUNT_SCOPES):
        raise HTTPError(403, OUTSIDE_SCOPES)
    q = params.string("q", max_len=MAX_QUERY)
    if q is None:
        raise HTTPError(400, "q is required")
    resolve = bool(params.boolean("resolve"))
    if resolve and caller is None:
        raise HTTPError(401, "Search queries that resolve remote resources are not supported without "
                             "authentication", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if resolve and caller is not None and caller.account_id is None:
        raise HTTPError(422, NEEDS_USER)
    viewer = caller.account_id if caller else None
    return SearchQuery(q=q, types=("accounts",), resolve=resolve,
                       limit=_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
                       offset=_number(params, "offset", 0, 0, MAX_OFFSET),
                       following=bool(params.boolean("following")) and viewer is not None, viewer_id=viewer)


async def account_search_get(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/search: a list of Accounts."""
    query = parse_account_search(request)
    settings, pool = request.config_dict[SETTINGS], request.config_dict[POOL]
    resolver = RemoteResolver(pool, settings, request.config_dict[HTTP], request.config_dict[INSTANCE_SIGNER]) \
        if query.resolve else None
    found = await search(pool, settings, resolver, query)
    async with pool.acquire() as conn:
        body = await present_accounts(conn, settings, found.accounts)
    return web.json_response(body)


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application; registered before `/v1/accounts/{id}`."""
    api.router.add_get("/v1/accounts/search", account_search_get)
