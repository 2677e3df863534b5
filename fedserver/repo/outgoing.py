"""SQL for what local actors do to others: follow requests they send, likes and announces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg

Reaction = Literal["likes", "announces"]


@dataclass(frozen=True)
class Follow:
    """A follow relation as stored."""

    id: int
    follower_id: int
    followee_id: int
    activity_uri: str | None
    state: str


async def get_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> Follow | None:
    """The relation between two actors, if any."""
    row = await conn.fetchrow(
        """SELECT id, follower_id, followee_id, activity_uri, state FROM follows
           WHERE follower_id = $1 AND followee_id = $2""",
        follower_id, followee_id,
    )
    return Follow(**dict(row)) if row else None


async def request_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int, activity_uri: str,
                         state: str = "pending") -> Follow | None:
    """Insert a follow request, or renew a pending one's Follow id; None if already accepted."""
    row = await conn.fetchrow(
        """INSERT INTO follows (follower_id, followee_id, activity_uri, state, accepted_at)
           VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'accepted' THEN now() END)
           ON CONFLICT (follower_id, followee_id) DO UPDATE SET activity_uri = EXCLUDED.activity_uri
           WHERE follows.state = 'pending'
           RETURNING id, follower_id, followee_id, activity_uri, state""",
        follower_id, followee_id, activity_uri, state,
    )
    return Follow(**dict(row)) if row else None


async def delete_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> Follow | None:
    """Remove a follow relation; returns what was removed."""
    row = await conn.fetchrow(
        """DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2
           RETURNING id, follower_id, followee_id, activity_uri, state""",
        follower_id, followee_id,
    )
    return Follow(**dict(row)) if row else None


async def delete_reaction(conn: asyncpg.Connection, table: Reaction, actor_id: int, object_uri: str) -> str | None:
    """Remove a like or announce; returns its activity id, None if there was none."""
    return await conn.fetchval(
        f"DELETE FROM {_table(table)} WHERE actor_id = $1 AND object_uri = $2 RETURNING activity_uri",
        actor_id, object_uri,
    )


def _table(table: str) -> str:
    if table not in ("likes", "announces"):
        raise ValueError(f"not a reaction table: {table}")
    return table


async def is_accepted_follower(conn: asyncpg.Connection, follower_uri: str, followee_id: int) -> bool:
    """True when the actor with this id follows `followee_id` (accepted)."""
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM follows f JOIN actors a ON a.id = f.follower_id
                          WHERE a.uri = $1 AND f.followee_id = $2 AND f.state = 'accepted')""",
        follower_uri, followee_id,
    )


async def accept_pending_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> Follow | None:
    """Approve a follow request; None if there is no pending request."""
    row = await conn.fetchrow(
        """UPDATE follows SET state = 'accepted', accepted_at = now()
           WHERE follower_id = $1 AND followee_id = $2 AND state = 'pending'
           RETURNING id, follower_id, followee_id, activity_uri, state""",
        follower_id, followee_id,
    )
    return Follow(**dict(row)) if row else None


async def list_pending_followers(conn: asyncpg.Connection, followee_id: int) -> list[str]:
    """Actor ids of pending follow requests to `followee_id`, oldest first."""
    rows = await conn.fetch(
        """SELECT a.uri FROM follows f JOIN actors a ON a.id = f.follower_id
           WHERE f.followee_id = $1 AND f.state = 'pending' ORDER BY f.id""",
        followee_id,
    )
    return [row["uri"] for row in rows]


async def get_received_follow(conn: asyncpg.Connection, activity_uri: str) -> dict | None:
    """A remote actor's Follow exactly as it was received (kept on the follow it made)."""
    return await conn.fetchval("SELECT activity FROM follows WHERE activity_uri = $1", activity_uri)
