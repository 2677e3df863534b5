"""SQL for login sessions of every area of the site (tokens kept as SHA-256 digests)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class SessionRow:
    """A live session's account: its id, current name and role."""

    account_id: int
    username: str
    role: str


async def insert_session(conn: asyncpg.Connection, token_hash: bytes, area: str, account_id: int,
                         ttl_seconds: int) -> int:
    """Store a session of one area that expires after `ttl_seconds`; returns its id."""
    return await conn.fetchval(
        """INSERT INTO sessions (token_hash, area, account_id, expires_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id""",
        token_hash, area, account_id, float(ttl_seconds),
    )


async def get_live_session(conn: asyncpg.Connection, token_hash: bytes, area: str) -> SessionRow | None:
    """A session of `area`, not ended nor expired, of a local account that is not deleted."""
    row = await conn.fetchrow(
        """SELECT s.account_id, a.username, l.role
           FROM sessions s JOIN actors a ON a.id = s.account_id JOIN local_accounts l ON l.actor_id = a.id
           WHERE s.token_hash = $1 AND s.area = $2 AND s.ended_at IS NULL AND s.expires_at > now()
             AND a.is_local AND a.deleted_at IS NULL AND a.suspended_at IS NULL""",
        token_hash, area,
    )
    return SessionRow(row["account_id"], row["username"], row["role"]) if row else None


async def end_session(conn: asyncpg.Connection, token_hash: bytes, area: str) -> bool:
    """End a session of `area` (logout); False if it was not live."""
    status = await conn.execute(
        "UPDATE sessions SET ended_at = now() WHERE token_hash = $1 AND area = $2 AND ended_at IS NULL",
        token_hash, area,
    )
    return status.endswith(" 1")


async def end_account_sessions(conn: asyncpg.Connection, account_id: int, area: str) -> int:
    """End every live session of an account in one area (it is no longer an administrator)."""
    status = await conn.execute(
        "UPDATE sessions SET ended_at = now() WHERE account_id = $1 AND area = $2 AND ended_at IS NULL",
        account_id, area,
    )
    return int(status.split()[-1])


async def delete_old_sessions(conn: asyncpg.Connection) -> int:
    """Forget sessions that expired or ended more than a day ago."""
    status = await conn.execute(
        """DELETE FROM sessions
           WHERE expires_at < now() - interval '1 day' OR ended_at < now() - interval '1 day'"""
    )
    return int(status.split()[-1])
