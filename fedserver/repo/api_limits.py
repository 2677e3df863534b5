"""SQL for API rate-limit windows and failed-login counts, shared by every web process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class WindowCount:
    hits: int
    resets_at: datetime


async def hit(conn: asyncpg.Connection, bucket: str, period_seconds: int) -> WindowCount:
    """Count one request for `bucket` in the current fixed window (database clock); returns the new count."""
    row = await conn.fetchrow(
        """INSERT INTO api_rate_limits AS r (bucket, window_start, hits)
           VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2), 1)
           ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
           RETURNING hits, window_start + make_interval(secs => $2) AS resets_at""",
        bucket, float(period_seconds),
    )
    return WindowCount(hits=row["hits"], resets_at=row["resets_at"])


async def delete_old_windows(conn: asyncpg.Connection, older_than_seconds: int) -> None:
    """Drop finished windows (called now and then, from any process)."""
    await conn.execute(
        "DELETE FROM api_rate_limits WHERE window_start < now() - make_interval(secs => $1)",
        float(older_than_seconds),
    )


async def record_login_attempt(conn: asyncpg.Connection, keys: list[str]) -> list[int]:
    """Charge one attempt to every key (address, account) before the password is checked; returns row ids."""
    rows = await conn.fetch("INSERT INTO login_failures (key) SELECT unnest($1::text[]) RETURNING id", keys)
    return [row["id"] for row in rows]


async def count_login_failures(conn: asyncpg.Connection, keys: list[str], within_seconds: int) -> dict[str, int]:
    """The attempts charged to each of `keys` within the period (keys without any are left out)."""
    rows = await conn.fetch(
        """SELECT key, count(*) AS n FROM login_failures
           WHERE key = ANY($1::text[]) AND failed_at > now() - make_interval(secs => $2)
           GROUP BY key""",
        keys, float(within_seconds),
    )
    return {row["key"]: row["n"] for row in rows}


async def forget_login_attempt(conn: asyncpg.Connection, ids: list[int], keys: list[str]) -> None:
    """After a successful login: drop its own charge and the earlier failures counted under `keys`."""
    await conn.execute("DELETE FROM login_failures WHERE id = ANY($1::bigint[]) OR key = ANY($2::text[])",
                       ids, keys)


async def delete_old_login_failures(conn: asyncpg.Connection, older_than_seconds: int) -> None:
    """Drop failures too old to matter."""
    await conn.execute(
        "DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => $1)", float(older_than_seconds)
    )
