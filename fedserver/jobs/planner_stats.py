"""The `planner-stats` worker: ANALYZE the tables a burst has outgrown, every few seconds.

See `repo/planner_stats.py` for why autovacuum alone is too slow for a small instance. A table
is analyzed once its changes since the last ANALYZE exceed half of the rows the planner counts
(and at least `MINIMUM`): only sudden growth, which autovacuum's own rule (a tenth, once a
minute) catches late; a large, steadily growing table is left to autovacuum. One ANALYZE reads
a sample of at most 30,000 rows, tens of milliseconds of PostgreSQL's time, and blocks nobody.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ..repo import planner_stats as store
from .periodic import run_periodically

log = logging.getLogger("fedserver.jobs")

EVERY = 5.0  # seconds between looks
SHARE = 0.5  # of the rows the planner counts
MINIMUM = 1000  # rows changed, so that small tables are left to autovacuum


async def refresh_outgrown(pool: asyncpg.Pool, share: float = SHARE, minimum: int = MINIMUM) -> list[str]:
    """One look: ANALYZE every outgrown table; the tables analyzed."""
    async with pool.acquire() as conn:
        tables = await store.outgrown_tables(conn, share, minimum)
        for table in tables:
            await store.analyze(conn, table)
    if tables:
        log.debug("planner statistics refreshed", extra={"tables": tables})
    return tables


async def run_planner_stats(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Look every EVERY seconds until `stop` is set."""
    await run_periodically(lambda: refresh_outgrown(pool), EVERY, stop, "refreshing planner statistics", log)
