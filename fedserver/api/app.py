"""Mounting the client API: the /api and /oauth sub-applications with their middlewares, and metadata.

/api middlewares, outermost first: CORS (Mastodon's `config/initializers/cors.rb`: any origin,
`Link` and `X-RateLimit-*` exposed, preflight answered), the bearer token, the rate limit, then
JSON errors, so even a 404 or a 429 carries CORS and rate-limit headers.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import error_middleware
from . import (
    account_search,
    accounts,
    authorize,
    conversations,
    directory,
    follows,
    images,
    instance,
    lists,
    media,
    notifications,
    notifications_v2,
    oauth,
    preferences,
    safety,
    scheduled,
    search,
    status_actions,
    statuses,
    storefront,
    streaming,
    tags,
    timelines,
    trends,
)
from .auth import auth_middleware
from .ratelimit import rate_limit_middleware
from .stream_hub import setup_hub

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, "
                                     "X-Request-Id, Idempotency-Key",
}
_ALLOW_METHODS = "POST, PUT, DELETE, GET, PATCH, OPTIONS"


def _cors_applies(request: web.Request) -> bool:
    # The HTML login page is for browsers navigating, not for scripts on other sites.
    return not request.path.startswith("/oauth/authorize")


@web.middleware
async def cors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Answer preflights and mark every answer readable from any origin."""
    if not _cors_applies(request):
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        allow_headers = request.headers.get("Access-Control-Request-Headers", "")
        return web.Response(status=200, headers={
            **CORS_HEADERS, "Access-Control-Allow-Methods": _ALLOW_METHODS,
            "Access-Control-Allow-Headers": allow_headers or "Authorization, Content-Type",
            "Access-Control-Max-Age": "7200", "Vary": "Access-Control-Request-Headers"})
    response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


def build_api_app() -> web.Application:
    """The /api sub-application (routes relative to /api)."""
    api = web.Application(middlewares=[cors_middleware, auth_middleware, rate_limit_middleware, error_middleware])
    api.router.add_post("/v1/apps", oauth.apps_post)
    api.router.add_get("/v1/apps/verify_credentials", oauth.apps_verify_credentials_get)
    instance.setup_routes(api)
    account_search.setup_routes(api)  # before accounts' `/v1/accounts/{id}`
    accounts.setup_routes(api)
    follows.setup_routes(api)
    safety.setup_routes(api)
    preferences.setup_routes(api)
    media.setup_routes(api)
    search.setup_routes(api)
    statuses.setup_routes(api)
    status_actions.setup_routes(api)
    timelines.setup_routes(api)
    notifications.setup_routes(api)
    notifications_v2.setup_routes(api)
    conversations.setup_routes(api)
    directory.setup_routes(api)
    storefront.setup_routes(api)
    streaming.setup_routes(api)
    lists.setup_routes(api)
    tags.setup_routes(api)
    trends.setup_routes(api)
    scheduled.setup_routes(api)
    return api


def build_oauth_app() -> web.Application:
    """The /oauth sub-application: the login page, the token and revocation endpoints."""
    app = web.Application(middlewares=[cors_middleware, error_middleware, oauth.oauth_error_middleware])
    for path in ("/authorize", "/authorize/"):
        app.router.add_get(path, authorize.authorize_get)
        app.router.add_post(path, authorize.authorize_post)
    app.router.add_post("/token", oauth.token_post)
    app.router.add_post("/revoke", oauth.revoke_post)
    return app


def setup_api(app: web.Application) -> None:
    """Mount the client API and OAuth on the main application."""
    setup_hub(app)  # the streaming API's listener lives with the main application
    app.add_subapp("/api", build_api_app())
    app.add_subapp("/oauth", build_oauth_app())
    app.router.add_get("/.well-known/oauth-authorization-server", oauth.metadata_get)
    images.setup_routes(app)
