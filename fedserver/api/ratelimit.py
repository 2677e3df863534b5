"""The API rate limit, kept in PostgreSQL so several web processes share one count.

`[api] rate_limit_per_5min` requests per token (per address without one) per fixed
5-minute window, as Mastodon; every response carries the three `X-RateLimit-*` headers
(Mastodon.py reads all three), and 429 past the limit. The failed-login limit is
`fedserver.auth.limits`.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..auth import client_address
from ..config import Settings
from ..errors import json_error
from ..repo import api_limits
from .auth import current_auth
from .wire import api_datetime

PERIOD = 300
_PRUNE_CHANCE = 0.01


def _bucket(request: web.Request, settings: Settings) -> str:
    caller = current_auth(request)
    return f"token:{caller.token_id}" if caller else f"ip:{client_address(request, settings)}"


@web.middleware
async def rate_limit_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Count the request; answer 429 past the limit; add the X-RateLimit-* headers to every answer."""
    settings = request.config_dict[SETTINGS]
    limit = settings.api.rate_limit_per_5min
    if limit == 0:
        return await handler(request)
    async with request.config_dict[POOL].acquire() as conn:
        count = await api_limits.hit(conn, _bucket(request, settings), PERIOD)
        if random.random() < _PRUNE_CHANCE:
            await api_limits.delete_old_windows(conn, 2 * PERIOD)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - count.hits)),
        "X-RateLimit-Reset": api_datetime(count.resets_at),
    }
    if count.hits > limit:
        wait = max(1, int((count.resets_at - datetime.now(timezone.utc)).total_seconds()) + 1)
        return json_error(429, "Too many requests", {**headers, "Retry-After": str(wait)})
    response = await handler(request)
    response.headers.update(headers)
    return response
