"""Durable, batched storage of verified inbound activities.

A single-row commit costs about 0.4 ms on this class of machine (fsync), which would cap
the inbox near 2,500 activities/s. Requests therefore hand their row to a few flushers
that commit many rows per statement; each request is answered 202 only after the commit
that holds its row, so nothing acknowledged is ever lost.

Each batch is one statement in its own implicit transaction (insert, skip known ids,
notify the workers when anything is new): one round trip instead of four. The batching
itself (`fedserver/jobs/batcher.py`) is shared with the recording of job outcomes; one
bad row fails alone, refused with `RowRefused`.
"""

from __future__ import annotations

import asyncpg

from ..jobs.batcher import Batcher
from ..repo.inbox import InboxRow, insert_items

MAX_BATCH = 512
# What PostgreSQL refuses because of the row itself (invalid data, a violated constraint), or
# asyncpg cannot encode: the same row is refused every time, so the sender must not retry it.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ValueError, TypeError)
# Flushers at once: while one batch waits for its fsync the next one is inserted, and
# PostgreSQL's group commit merges their flushes.
MAX_FLUSHERS = 4


class RowRefused(Exception):
    """The database refuses this activity whatever the moment; the message says why."""


async def _insert(conn: asyncpg.Connection, rows: list[InboxRow]) -> list[None]:
    await insert_items(conn, rows)
    return [None] * len(rows)


def _refused(exc: Exception) -> Exception:
    if not isinstance(exc, _ROW_ERRORS):
        return exc
    refused = RowRefused(str(exc))
    refused.__cause__ = exc
    return refused


class IngestBatcher(Batcher[InboxRow, None]):
    """Group inbox inserts into few statements; `submit` returns after the row is durable."""

    def __init__(self, pool: asyncpg.Pool):
        super().__init__(pool, _insert, name="inbox-ingest", max_batch=MAX_BATCH, max_flushers=MAX_FLUSHERS,
                         single_error=_refused, running=False)
