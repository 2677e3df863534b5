"""SQL that keeps the planner's row counts in step with tables that grow faster than autovacuum looks.

Autovacuum visits each database about once a minute (`autovacuum_naptime`). A small instance
that meets a burst (40,000 posts from a boosted thread, a first backfill) can grow its tables
tenfold in that minute, and until the next ANALYZE the planner still believes them small: it
joins posts by scanning the whole table and looks up a page's hashtags by scanning them all,
and a home timeline page that takes 5 ms takes 40. `outgrown_tables` names the tables changed
by more than a share of the rows the planner thinks they hold; `analyze` refreshes one.
"""

from __future__ import annotations

import asyncpg


async def outgrown_tables(conn: asyncpg.Connection, share: float, minimum: int) -> list[str]:
    """This schema's tables with more than `minimum + share * (rows the planner counts)` rows inserted,
    updated or deleted since their last ANALYZE, most changed first (names quoted for SQL). Only tables
    this role may analyze (its own, as migrations made them): PostgreSQL skips the others with a warning."""
    rows = await conn.fetch(
        """SELECT quote_ident(s.relname) AS name
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
           WHERE s.schemaname = current_schema() AND pg_has_role(c.relowner, 'MEMBER')
             AND s.n_mod_since_analyze > $2 + $1 * greatest(c.reltuples, 0)
           ORDER BY s.n_mod_since_analyze DESC""",
        share, minimum,
    )
    return [row["name"] for row in rows]


async def analyze(conn: asyncpg.Connection, table: str) -> None:
    """ANALYZE one table named by `outgrown_tables`; skipped, not waited for, while autovacuum holds it."""
    await conn.execute(f"ANALYZE (SKIP_LOCKED) {table}")
