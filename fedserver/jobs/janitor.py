"""Pruning finished jobs, so queue tables on a small disk do not grow forever.

Every `PRUNE_EVERY` seconds (and once at start), rows of the queues with `retention` that
finished more than `[jobs] retention_days` ago are deleted in batches, then each extra
pruner runs (such as the delivered bodies no delivery refers to any more). Queued rows are
never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

import asyncpg

from ..db import DATABASE_DOWN
from ..repo import jobs as store
from ..repo.jobs import Queue

log = logging.getLogger("fedserver.jobs")

PRUNE_EVERY = 3600.0
BATCH = 5000

# Extra pruning after the queues: (connection, retention in seconds) -> rows deleted.
Pruner = Callable[[asyncpg.Connection, float], Awaitable[int]]


async def prune_queues(pool: asyncpg.Pool, queues: Sequence[Queue], pruners: Sequence[Pruner],
                       retention_seconds: float) -> dict[str, int]:
    """One pruning pass; rows deleted per table (and per extra pruner, by its name)."""
    deleted: dict[str, int] = {}
    for queue in (q for q in queues if q.retention):
        total = 0
        while True:
            async with pool.acquire() as conn:
                gone = await store.prune(conn, queue, retention_seconds, BATCH)
            total += gone
            if gone < BATCH:
                break
        deleted[queue.table] = total
    for pruner in pruners:
        async with pool.acquire() as conn:
            deleted[getattr(pruner, "__name__", "pruner")] = await pruner(conn, retention_seconds)
    return deleted


async def run_janitor(pool: asyncpg.Pool, queues: Sequence[Queue], pruners: Sequence[Pruner],
                      retention_seconds: float, stop: asyncio.Event) -> None:
    """Prune now and then every PRUNE_EVERY seconds until `stop` is set."""
    while not stop.is_set():
        try:
            deleted = await prune_queues(pool, queues, pruners, retention_seconds)
            if any(deleted.values()):
                log.info("pruned finished jobs", extra={"deleted": deleted})
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            log.warning("pruning finished jobs failed (tried again later): %s", exc)
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PRUNE_EVERY)
