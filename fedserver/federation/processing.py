"""The inbox worker: claim stored activities, run their handler, record the outcome.

Rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`), so any
number of workers can share the table and a worker killed mid-activity leaves its rows
to be claimed again when the lease runs out. Nothing is held only in memory.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

import asyncpg

from activities.parse import ParseError

from ..config import Settings
from ..net.http import FetchBudget, FetchError, HttpClient, Signer
from .handlers import HandlerContext, handle
from .ingest import INBOX_CHANNEL

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("fedserver.federation.processing")

BATCH = 32
LEASE_SECONDS = 120
MAX_ATTEMPTS = 8
POLL_SECONDS = 2.0
FETCH_BUDGET = 20


async def claim_inbox_items(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Lease up to `limit` due items to this worker."""
    return await conn.fetch(
        f"""UPDATE inbox_items SET locked_until = now() + interval '{LEASE_SECONDS} seconds',
                                   attempts = attempts + 1
            WHERE id IN (SELECT id FROM inbox_items
                         WHERE state = 'queued' AND next_attempt_at <= now()
                           AND (locked_until IS NULL OR locked_until < now())
                         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, actor_uri, body, recipient_id, attempts""",
        limit,
    )


async def finish_item(conn: asyncpg.Connection, item_id: int, state: str, note: str | None) -> None:
    await conn.execute(
        """UPDATE inbox_items SET state = $2, last_error = $3, finished_at = now(), locked_until = NULL
           WHERE id = $1""",
        item_id, state, note,
    )


async def retry_item(conn: asyncpg.Connection, item_id: int, delay: float, error: str) -> None:
    await conn.execute(
        """UPDATE inbox_items SET next_attempt_at = now() + $2 * interval '1 second', last_error = $3,
                                   locked_until = NULL
            WHERE id = $1""",
        item_id, delay, error,
    )


def retry_delay(attempt: int) -> float:
    """30 s, 1 min, 2 min ... with jitter: transient fetch failures of a peer."""
    base = 30.0 * 2 ** (attempt - 1)
    return base + random.uniform(0, base / 2)


async def process_item(pool: asyncpg.Pool, settings: Settings, http: HttpClient, signer: Signer,
                       item: asyncpg.Record) -> str:
    """Run one item's handler and record the outcome; never raises."""
    ctx = HandlerContext(pool, settings, http, signer, FetchBudget(FETCH_BUDGET), item["recipient_id"])
    try:
        outcome = await handle(ctx, item["body"])
    except (ParseError, ValueError) as exc:
        outcome = f"failed: {exc}"
    except FetchError as exc:
        if exc.permanent or item["attempts"] >= MAX_ATTEMPTS:
            outcome = f"failed: {exc.reason}"
        else:
            async with pool.acquire() as conn:
                await retry_item(conn, item["id"], retry_delay(item["attempts"]), exc.reason)
            return "retry"
    except Exception as exc:  # a bug must not stop the worker: record it and go on
        log.exception("inbox handler crashed", extra={"item": item["id"]})
        outcome = f"failed: internal error {type(exc).__name__}"
    state = "done" if outcome == "done" else outcome.split(":", 1)[0]
    async with pool.acquire() as conn:
        await finish_item(conn, item["id"], state, None if state == "done" else outcome[:500])
    return state


def _by_actor(items: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Group a batch by sender, keeping arrival order inside each group."""
    groups: dict[str, list[asyncpg.Record]] = {}
    for item in items:
        groups.setdefault(item["actor_uri"], []).append(item)
    return list(groups.values())


async def _process_in_order(pool, settings, http, signer, group: list[asyncpg.Record]) -> None:
    """One sender's activities one after another (a Follow before its Undo); senders in parallel."""
    for item in group:
        await process_item(pool, settings, http, signer, item)


async def run_inbox_worker(runtime: "Runtime", stop: asyncio.Event) -> None:
    """Process inbox items until `stop` is set, woken by NOTIFY and by a slow poll."""
    pool, settings, http, signer = runtime.pool, runtime.settings, runtime.http, runtime.signer
    wake = asyncio.Event()

    def on_notify(*_: object) -> None:
        wake.set()

    listener = await pool.acquire()
    await listener.add_listener(INBOX_CHANNEL, on_notify)
    try:
        while not stop.is_set():
            async with pool.acquire() as conn:
                items = await claim_inbox_items(conn, BATCH)
            if items:
                await asyncio.gather(*(_process_in_order(pool, settings, http, signer, group)
                                       for group in _by_actor(items)))
                continue
            wake.clear()
            stopper = asyncio.ensure_future(stop.wait())
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait({stopper, waiter}, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            waiter.cancel()
    finally:
        await listener.remove_listener(INBOX_CHANNEL, on_notify)
        await pool.release(listener)
