"""The composition root: it puts the features together.

`build_publisher` and `build_dispatcher` register what each package adds to publishing and to
inbound dispatch (federation its social activities, rewards its receipt hook); `create_app`
mounts every feature's routes on one aiohttp application. `server.py` and the command line
build their runtime from these.
"""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from rewards import web as rewards_web
from rewards.hooks import receipt_hook
from storefront import inbound as storefront_inbound
from storefront import web as storefront_web

from .admin import routes as admin_routes
from .api.app import setup_api
from .app_keys import MODERATION, POOL, PUBLISHER, SETTINGS
from .moderation import Moderation
from .auth import viewer_middleware
from .config import Settings
from .db import ping
from .dispatch import Dispatcher
from .errors import error_middleware, json_error, nul_middleware
from .federation import inbound, inbox
from .federation.keys import federation_context
from .metrics import setup_metrics
from .net.http import HttpClient
from .publish import Publisher
from .templates import setup_pages
from .web import actors, dashboard, media, objects, orders, profiles, session, signup, transparency, wellknown

access_log = logging.getLogger("fedserver.access")


class AccessLogger(AbstractAccessLogger):
    """One structured line per request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s", request.method, request.path, response.status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "ms": round(time * 1000, 2),
                "remote": request.remote,
                "agent": request.headers.get("User-Agent", ""),
            },
        )


async def healthz_get(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    try:
        async with request.config_dict[POOL].acquire(timeout=5) as conn:
            await ping(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return json_error(503, f"database unavailable: {type(exc).__name__}")
    return web.json_response({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})


def build_publisher(settings: Settings) -> Publisher:
    """Publishing for this instance, with every package's publish hooks."""
    return Publisher(settings, hooks=(receipt_hook(settings),))


def build_dispatcher() -> Dispatcher:
    """Inbound dispatch, with every package's handlers registered."""
    dispatcher = Dispatcher()
    inbound.register(dispatcher)
    storefront_inbound.register(dispatcher)
    return dispatcher


def create_app(settings: Settings, pool: asyncpg.Pool, *, http: HttpClient | None = None,
               publisher: Publisher | None = None, moderation: Moderation | None = None) -> web.Application:
    """Build the web application around an open pool (and HTTP client); the caller owns their lifetime."""
    app = web.Application(middlewares=[error_middleware, nul_middleware, viewer_middleware],
                          client_max_size=settings.server.client_max_size)
    app[SETTINGS] = settings
    app[POOL] = pool
    app[PUBLISHER] = publisher or build_publisher(settings)
    app[MODERATION] = moderation or Moderation(pool)
    setup_metrics(app, settings)  # with [metrics] enabled: /metrics, and every request counted
    setup_pages(app)
    app.cleanup_ctx.append(federation_context(http))
    app.router.add_get("/healthz", healthz_get)
    wellknown.setup_routes(app)
    actors.setup_routes(app)
    profiles.setup_routes(app)
    session.setup_routes(app)
    signup.setup_routes(app)
    orders.setup_routes(app)
    dashboard.setup_routes(app)
    objects.setup_routes(app)
    inbox.setup_routes(app)
    media.setup(app)
    setup_api(app)
    rewards_web.setup_routes(app)
    transparency.setup_routes(app)
    storefront_web.setup_routes(app)
    admin_routes.setup_routes(app)
    return app
