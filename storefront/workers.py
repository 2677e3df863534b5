"""The storefront's background work: token orders whose spend was refused end cancelled, with the reason.

The buyer's instance gives the tokens back when the maker's instance refuses a spend for good
(rewards/spending.py, in the delivery worker, which knows nothing of orders); this worker then
cancels the order, which tells the maker (Update(Agreement) `Cancelled`). So a token order the
buyer could not pay never waits in `requested` or `accepted`.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from fedserver.jobs.periodic import run_periodically
from fedserver.publish import Publisher
from fedserver.runtime import Runtime

from . import orders, store
from .rules import MoveRefused

log = logging.getLogger("storefront.workers")

INTERVAL_SECONDS = 2.0


async def cancel_refused_token_orders(pool: asyncpg.Pool, publisher: Publisher) -> int:
    """Cancel every open token order of ours whose spend was refused; returns how many."""
    cancelled = 0
    for order_id, why in await store.token_orders_refused(pool):
        async with pool.acquire() as conn, conn.transaction():
            order = await store.get_order(conn, order_id)
            if order is None or order.state not in ("requested", "accepted"):
                continue
            try:
                await orders.move(conn, publisher, order, "cancel", "buyer", by_spend=True,
                                  reason=f"토큰 결제가 거절되었습니다 (the token payment was refused): {why}"[:1000])
            except MoveRefused:
                continue  # moved meanwhile: seen again next round if still open
        cancelled += 1
        log.info("token order cancelled: its spend was refused", extra={"order": order.uri, "reason": why})
    return cancelled


async def token_orders_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Every few seconds, close the token orders whose payment was refused."""
    await run_periodically(lambda: cancel_refused_token_orders(runtime.pool, runtime.publisher), INTERVAL_SECONDS,
                           stop, "storefront: cancelling refused token orders", log)


STOREFRONT_WORKERS = [("storefront-token-orders", token_orders_worker)]
