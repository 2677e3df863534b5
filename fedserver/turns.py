"""Long runs of CPU work in the event loop, broken up so that requests are served in between.

A batch of a hundred inbound posts takes tens of milliseconds to parse, sanitize and index;
done in one stretch, every request that arrives meanwhile waits for all of it. Iterating with
`in_turns` hands the loop back every few items, so a timeline request waits for a few items'
work at most.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

EVERY = 8  # items between turns: a few milliseconds of parsing and indexing


async def in_turns(items: Iterable[T], every: int = EVERY) -> AsyncIterator[T]:
    """Yield `items`, letting other tasks run after every `every` of them."""
    for n, item in enumerate(items, 1):
        yield item
        if n % every == 0:
            await asyncio.sleep(0)
