"""Long runs of CPU work in the event loop, broken up so that requests are served in between.

A batch of a hundred inbound posts takes tens of milliseconds to parse, sanitize and index;
done in one stretch, every request that arrives meanwhile waits for all of it. Iterating with
`in_turns` hands the loop back every few items, so a timeline request waits for a few items'
work at most.

Where the web and the workers share one process (`fedserver run`, the default roles), handing the
loop back is not enough: a request makes about ten round trips to PostgreSQL, and after each it
waits behind every worker step that became ready meanwhile. So the web goes first: the server
counts the requests in flight (`request_started`, `request_finished`), and while there are any,
a worker's turn (`worker_turn`, taken by `in_turns` and before each job) waits until they are
answered, but never longer than `PAUSE`, so the workers keep a share of the CPU under any load.
Elsewhere (a worker-only process, the tests' in-process apps) nothing is counted and a turn is
one pass of the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

EVERY = 8  # items between turns: a few milliseconds of parsing and indexing
PAUSE = 0.005  # the longest a worker's turn waits for requests in flight: about one timeline request's time


class _Web:
    """This process's web requests in flight, and the workers' turns waiting for them to be answered."""

    def __init__(self) -> None:
        self.requests = 0
        self.waiting: set[asyncio.Future] = set()

    def finished(self) -> None:
        self.requests -= 1
        if self.requests == 0:
            for waiter in self.waiting:
                _resume(waiter)
            self.waiting.clear()


_web = _Web()


def request_started() -> None:
    """A web request is being handled (the middleware of `fedserver.server` calls this and the next)."""
    _web.requests += 1


def request_finished() -> None:
    """A web request has been answered."""
    _web.finished()


async def worker_turn(pause: float = PAUSE) -> None:
    """Let other tasks run; while web requests are in flight, until they are answered (at most `pause`)."""
    if not _web.requests:
        await asyncio.sleep(0)
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    _web.waiting.add(waiter)
    timer = loop.call_later(pause, _resume, waiter)
    try:
        await waiter
    finally:
        timer.cancel()
        _web.waiting.discard(waiter)


def _resume(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def in_turns(items: Iterable[T], every: int = EVERY) -> AsyncIterator[T]:
    """Yield `items`, taking a worker's turn (`worker_turn`) after every `every` of them."""
    for n, item in enumerate(items, 1):
        yield item
        if n % every == 0:
            await worker_turn()
