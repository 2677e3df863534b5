"""Many callers' writes in few statements: each caller waits for the commit that holds its item.

A write of one row costs a round trip and, alone in its transaction, a commit. Callers that
arrive in the same turn of the event loop (or while a batch is being written) are written
together by one of a few flushers, each of which keeps its pooled connection while items keep
coming. When a batch fails, its items are written one by one, so one bad item fails alone;
`single_error` turns the error of a single item into what its caller should see.

The inbox's ingest (`federation/ingest.py`) and the recording of job outcomes (`worker.py`)
both use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

log = logging.getLogger("fedserver.jobs.batcher")

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[asyncpg.Connection, list[T]], Awaitable[list[R]]]
# What a batch may fail with because of one of its items: retried item by item.
BATCH_ERRORS = (asyncpg.PostgresError, ValueError, TypeError)


class Batcher(Generic[T, R]):
    """Group `submit`ted items into `write` calls of at most `max_batch`; `submit` returns the item's result."""

    def __init__(self, pool: asyncpg.Pool, write: Write, *, name: str, max_batch: int = 512, max_flushers: int = 4,
                 single_error: Callable[[Exception], Exception] | None = None, running: bool = True):
        self.pool, self.write, self.name = pool, write, name
        self.max_batch, self.max_flushers = max_batch, max_flushers
        self.single_error = single_error or (lambda exc: exc)
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._flushers: set[asyncio.Task] = set()
        self._kick_scheduled = False
        self._running = running

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        """Refuse new items, write what is queued, then return."""
        self._running = False
        self._kick()
        while self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)

    async def submit(self, item: T) -> R:
        """Return once the item is written, with its result; raises what writing it raised."""
        if not self._running:
            raise RuntimeError(f"the {self.name} batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future))
        if not self._kick_scheduled and len(self._flushers) < self.max_flushers:
            # Start on the next turn of the loop, so every caller of this turn joins the batch.
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        return await future

    def _kick(self) -> None:
        self._kick_scheduled = False
        if self._pending and len(self._flushers) < self.max_flushers:
            task = asyncio.get_running_loop().create_task(self._flusher(), name=self.name)
            self._flushers.add(task)
            task.add_done_callback(self._flusher_done)

    def _flusher_done(self, task: asyncio.Task) -> None:
        self._flushers.discard(task)
        if self._pending:
            self._kick()

    def _take(self) -> list[tuple[T, asyncio.Future]]:
        batch = self._pending[:self.max_batch]
        del self._pending[:self.max_batch]
        return batch

    async def _flusher(self) -> None:
        """Write batches until nothing is pending, on one connection."""
        batch = self._take()
        try:
            async with self.pool.acquire() as conn:
                while batch:
                    await self._write(conn, batch)
                    batch = self._take()
        except Exception as exc:  # no connection: this batch fails; its callers decide what follows
            log.warning("%s batch could not be written: %s", self.name, exc)
            _settle(batch, exc)

    async def _write(self, conn: asyncpg.Connection, batch: list[tuple[T, asyncio.Future]]) -> None:
        try:
            results = await self.write(conn, [item for item, _ in batch])
        except BATCH_ERRORS as exc:
            if len(batch) == 1:
                _settle(batch, self.single_error(exc))
                return
            log.warning("%s batch failed, writing item by item: %s", self.name, exc)
            for one in batch:
                await self._write(conn, [one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _settle(batch: list[tuple[T, asyncio.Future]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
