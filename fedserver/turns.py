"""Long runs of CPU work in the event loop, broken up so that requests are served in between.

A batch of a hundred inbound posts takes tens of milliseconds to parse, sanitize and index;
done in one stretch, every request that arrives meanwhile waits for all of it. Iterating with
`in_turns` hands the loop back every few items, so a timeline request waits for a few items'
work at most.

With the web and the workers in one process (`fedserver run`), they share one core's worth of
event loop. While requests are being served (`WEB.in_flight`, counted by `count_requests`),
background work also pauses after each stretch for `WEB_SHARE` times as long as the stretch
took, so a burst of inbound activities is still accepted at most of the web's own speed and the
workers catch up when it ends; when the web is idle they run flat out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")

EVERY = 8  # items between turns: a few milliseconds of parsing and indexing
WEB_SHARE = 1.0  # while requests are in flight: pause this many times as long as the last stretch of work took
MAX_PAUSE = 0.05  # seconds; a stretch longer than expected must not stall the worker for long


class WebLoad:
    """Requests this process is serving right now."""

    def __init__(self) -> None:
        self.in_flight = 0


WEB = WebLoad()  # the process's one event loop is shared by its web and workers, so one count per process


@web.middleware
async def count_requests(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                         ) -> web.StreamResponse:
    """Count requests in flight, for `in_turns` to give them their share."""
    WEB.in_flight += 1
    try:
        return await handler(request)
    finally:
        WEB.in_flight -= 1


async def in_turns(items: Iterable[T], every: int = EVERY) -> AsyncIterator[T]:
    """Yield `items`, letting other tasks run after every `every` of them (for long, if requests are waiting)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n, item in enumerate(items, 1):
        yield item
        if n % every == 0:
            pause = min((loop.time() - started) * WEB_SHARE, MAX_PAUSE) if WEB.in_flight else 0
            await asyncio.sleep(pause)
            started = loop.time()
