"""`GET /rewards/ranking?kind=posts|products|makers&window=1d|7d|30d|all`: the open ranking as canonical JSON.

The body is exactly what `fedserver rewards rank --json` prints, and what `rank --at` reproduces
from it: the formula's name and version, the request, `as_of`, every log used with its checkpoint
(origin, size, root, tiles URL) and the ranked entries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from fedserver.app_keys import POOL, SETTINGS
from fedserver.errors import HTTPError
from rewards.context import RewardsContext, RewardsHttp, http_session
from rewards.ranking import DEFAULT_WINDOW, RankingError, check_request
from rewards.rankings import Ranker


@dataclass
class _Runtime:
    """The process's ranker (made on first use, once the rewards context is loaded) and its HTTP session."""

    context: Callable[[web.Request], RewardsContext]
    session: RewardsHttp | None = None
    ranker: Ranker | None = None


RANKING = web.AppKey("rewards_ranking", _Runtime)
log = logging.getLogger("rewards.ranking_web")


def _parse_request(request: web.Request) -> tuple[str, str]:
    kind = request.query.get("kind")
    if not kind:
        raise HTTPError(400, "kind is required: posts, products or makers")
    window = request.query.get("window", DEFAULT_WINDOW)
    try:
        check_request(kind, window)
    except RankingError as exc:
        raise HTTPError(400, str(exc)) from None
    return kind, window


async def ranking_get(request: web.Request) -> web.Response:
    """`/rewards/ranking`: the ranking over the current witnessed checkpoint of every log we follow."""
    kind, window = _parse_request(request)
    runtime = request.config_dict[RANKING]
    ctx = runtime.context(request)
    if runtime.session is None:
        raise HTTPError(503, "rewards are starting")
    if runtime.ranker is None:
        runtime.ranker = Ranker(ctx, request.config_dict[POOL], runtime.session)
    body = await runtime.ranker.live(kind, window)
    return web.Response(body=body, content_type="application/json", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=10", "Access-Control-Allow-Origin": "*"})


RANKED_PAGE_SECONDS = 5.0  # what a page waits for the ranking before it shows the newest instead


async def live_ranking(request: web.Request, kind: str, window: str = DEFAULT_WINDOW) -> dict | None:
    """The live ranking as a dict for a page, or None when it cannot be had quickly (rewards still loading,
    no reachable log, or slower than RANKED_PAGE_SECONDS): a page then falls back to the newest first."""
    runtime = request.config_dict.get(RANKING)
    if runtime is None or runtime.session is None:
        return None
    try:
        ctx = runtime.context(request)
        if runtime.ranker is None:
            runtime.ranker = Ranker(ctx, request.config_dict[POOL], runtime.session)
        body = await asyncio.wait_for(runtime.ranker.live(kind, window), RANKED_PAGE_SECONDS)
    except (HTTPError, RankingError, TimeoutError, OSError, ValueError) as exc:
        log.info("no ranking for a page: %s", exc)
        return None
    return json.loads(body)


async def _lifecycle(app: web.Application):
    runtime = app[RANKING]
    async with http_session(app[SETTINGS]) as session:
        runtime.session = session
        yield
        runtime.session = runtime.ranker = None


def setup_ranking_routes(app: web.Application, context: Callable[[web.Request], RewardsContext]) -> None:
    """Register /rewards/ranking; `context` gives the process's rewards context (503 while it loads)."""
    app[RANKING] = _Runtime(context)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/rewards/ranking", ranking_get)
