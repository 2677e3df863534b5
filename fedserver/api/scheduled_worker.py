"""The worker that publishes due scheduled statuses.

Each row is claimed with FOR UPDATE SKIP LOCKED, posted through the statuses endpoint's own service
(`status_service.post_status_in`) and deleted, all in one transaction: any number of workers can run,
and a crash before the commit leaves the row to be posted later, never twice. A post refused at its time
(its reply target deleted or hidden, its media gone, its account deleted) is dropped with a log line, as
Mastodon's PublishScheduledStatusWorker drops it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ..db import database_down
from ..errors import HTTPError
from ..federation import outbox
from ..federation.posting import DuplicatePost, MediaRefused
from ..jobs.periodic import run_periodically
from ..publish import Publisher
from ..repo import scheduled_statuses as scheduled_repo
from ..runtime import Runtime
from . import status_service
from .scheduled import draft_of

log = logging.getLogger("fedserver.scheduled")

INTERVAL_SECONDS = 5.0
MAX_PER_PASS = 100
RETRY_SECONDS = 300


async def publish_one(pool: asyncpg.Pool, publisher: Publisher) -> bool:
    """Claim, post and delete one due scheduled status; False when none is due."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await scheduled_repo.claim_due(conn)
        if claimed is None:
            return False
        row, username = claimed
        try:
            async with conn.transaction():  # a savepoint: a refused post leaves nothing half-written
                actor = await outbox.author(conn, username)
                uri = await status_service.post_status_in(conn, publisher, actor, draft_of(row))
            log.info("scheduled status published", extra={"scheduled_id": row.id, "uri": uri})
        except (HTTPError, MediaRefused, DuplicatePost, outbox.OutboxError) as exc:
            log.warning("scheduled status dropped: %s", getattr(exc, "message", None) or exc,
                        extra={"scheduled_id": row.id})
        except Exception as exc:  # an unforeseen failure: nothing was posted; try again later, let the others go first
            if database_down(exc):
                raise
            log.exception("publishing a scheduled status failed; retrying later", extra={"scheduled_id": row.id})
            await scheduled_repo.postpone(conn, row.id, RETRY_SECONDS)
            return True
        await scheduled_repo.delete_claimed(conn, row.id)
    return True


async def publish_due(pool: asyncpg.Pool, publisher: Publisher, limit: int = MAX_PER_PASS) -> int:
    """One pass: publish the due scheduled statuses (at most `limit`); returns how many rows were handled."""
    done = 0
    while done < limit and await publish_one(pool, publisher):
        done += 1
    return done


async def run_scheduled_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Every few seconds, publish what is due."""
    await run_periodically(lambda: publish_due(runtime.pool, runtime.publisher), INTERVAL_SECONDS, stop,
                           "publishing scheduled statuses", log)
