"""SQL for backups: what a database holds, to describe an archive and to compare a restore with it."""

from __future__ import annotations

import asyncpg

# Counted into an archive's manifest and checked again after a restore.
COUNTED = ("actors", "local_accounts", "objects", "follows", "media_attachments", "likes", "announces", "listings",
           "orders", "rewards_receipts", "rewards_log_entries", "rewards_keys")


async def server_version(conn: asyncpg.Connection) -> int:
    """`server_version_num`, e.g. 150019 for 15.19."""
    return int(await conn.fetchval("SHOW server_version_num"))


async def user_tables(conn: asyncpg.Connection) -> list[str]:
    """The tables of the `public` schema, by name."""
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [row["tablename"] for row in rows]


async def schema_version(conn: asyncpg.Connection) -> int | None:
    """The newest applied migration, or None before the first."""
    if "schema_migrations" not in await user_tables(conn):
        return None
    return await conn.fetchval("SELECT max(version) FROM schema_migrations")


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows in each table of COUNTED that exists (names are constants, never input)."""
    present = set(await user_tables(conn))
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in COUNTED if table in present}
