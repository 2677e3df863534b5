"""Durable, batched storage of verified inbound activities.

A single-row commit costs about 0.4 ms on this class of machine (fsync), which would cap
the inbox near 2,500 activities/s. Requests therefore hand their row to a few flushers
that commit many rows per statement; each request is answered 202 only after the commit
that holds its row, so nothing acknowledged is ever lost.

Each batch is one statement in its own implicit transaction (insert, skip known ids,
notify the workers when anything is new): one round trip instead of four. A flusher
keeps its pooled connection while rows keep coming, so a busy inbox does not pay the
pool's reset query for every batch.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ..repo.inbox import InboxRow, insert_items

log = logging.getLogger("fedserver.federation.ingest")

MAX_BATCH = 512
# What PostgreSQL refuses because of the row itself (invalid data, a violated constraint), or
# asyncpg cannot encode: the same row is refused every time, so the sender must not retry it.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ValueError, TypeError)
# Flushers at once: while one batch waits for its fsync the next one is inserted, and
# PostgreSQL's group commit merges their flushes.
MAX_FLUSHERS = 4


class RowRefused(Exception):
    """The database refuses this activity whatever the moment; the message says why."""


Pending = tuple[InboxRow, asyncio.Future]


class IngestBatcher:
    """Group inbox inserts into few statements; `submit` returns after the row is durable."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self._pending: list[Pending] = []
        self._flushers: set[asyncio.Task] = set()
        self._kick_scheduled = False
        self._running = False

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        """Refuse new rows, store what is queued, then return."""
        self._running = False
        self._kick()
        while self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)

    async def submit(self, row: InboxRow) -> None:
        """Return once the row is stored (or was already stored: ids are unique)."""
        if not self._running:
            raise RuntimeError("the ingest batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((row, future))
        if not self._kick_scheduled and len(self._flushers) < MAX_FLUSHERS:
            # Start flushing on the next turn of the loop, so every request that arrived
            # in this turn joins the same batch.
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        await future

    def _kick(self) -> None:
        self._kick_scheduled = False
        if self._pending and len(self._flushers) < MAX_FLUSHERS:
            task = asyncio.get_running_loop().create_task(self._flusher(), name="inbox-ingest")
            self._flushers.add(task)
            task.add_done_callback(self._flusher_done)

    def _flusher_done(self, task: asyncio.Task) -> None:
        self._flushers.discard(task)
        if self._pending:
            self._kick()

    def _take(self) -> list[Pending]:
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        return batch

    async def _flusher(self) -> None:
        """Store batches until nothing is pending, on one connection."""
        batch = self._take()
        try:
            async with self.pool.acquire() as conn:
                while batch:
                    await self._store(conn, batch)
                    batch = self._take()
        except Exception as exc:  # no connection: fail this batch; senders retry on 503
            log.warning("inbox batch could not be stored: %s", exc)
            _settle(batch, exc)

    async def _store(self, conn: asyncpg.Connection, batch: list[Pending]) -> None:
        try:
            await insert_items(conn, [row for row, _ in batch])
        except (asyncpg.PostgresError, ValueError, TypeError) as exc:
            if len(batch) == 1:
                _settle(batch, _refused(exc) if isinstance(exc, _ROW_ERRORS) else exc)
                return
            # One bad row must not fail its neighbours: store them one by one.
            log.warning("inbox batch failed, retrying row by row: %s", exc)
            for item in batch:
                await self._store(conn, [item])
            return
        _settle(batch, None)


def _refused(exc: Exception) -> RowRefused:
    refused = RowRefused(str(exc))
    refused.__cause__ = exc
    return refused


def _settle(batch: list[Pending], exc: BaseException | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
