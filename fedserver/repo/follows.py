"""SQL for follow relations and the outbox, as far as the collections need them."""

from __future__ import annotations

import asyncpg


async def count_followers(conn: asyncpg.Connection, actor_id: int) -> int:
    """Accepted followers of an actor."""
    return await conn.fetchval(
        "SELECT count(*) FROM follows WHERE followee_id = $1 AND state = 'accepted'", actor_id
    )


async def count_following(conn: asyncpg.Connection, actor_id: int) -> int:
    """Accepted follows by an actor."""
    return await conn.fetchval(
        "SELECT count(*) FROM follows WHERE follower_id = $1 AND state = 'accepted'", actor_id
    )


async def list_follower_uris(conn: asyncpg.Connection, actor_id: int, *, limit: int, offset: int) -> list[str]:
    """Follower actor ids, newest follow first."""
    rows = await conn.fetch(
        """SELECT a.uri FROM follows f JOIN actors a ON a.id = f.follower_id
           WHERE f.followee_id = $1 AND f.state = 'accepted'
           ORDER BY f.id DESC LIMIT $2 OFFSET $3""",
        actor_id, limit, offset,
    )
    return [row["uri"] for row in rows]


async def list_following_uris(conn: asyncpg.Connection, actor_id: int, *, limit: int, offset: int) -> list[str]:
    """Followed actor ids, newest follow first."""
    rows = await conn.fetch(
        """SELECT a.uri FROM follows f JOIN actors a ON a.id = f.followee_id
           WHERE f.follower_id = $1 AND f.state = 'accepted'
           ORDER BY f.id DESC LIMIT $2 OFFSET $3""",
        actor_id, limit, offset,
    )
    return [row["uri"] for row in rows]


async def count_outbox(conn: asyncpg.Connection, actor_id: int) -> int:
    """Public and unlisted posts by an actor (what the outbox shows)."""
    return await conn.fetchval(
        """SELECT count(*) FROM objects
           WHERE actor_id = $1 AND deleted_at IS NULL AND visibility IN ('public', 'unlisted')""",
        actor_id,
    )


async def list_outbox_objects(conn: asyncpg.Connection, actor_id: int, *, limit: int, offset: int) -> list[dict]:
    """The stored documents of public and unlisted posts, newest first."""
    rows = await conn.fetch(
        """SELECT data FROM objects
           WHERE actor_id = $1 AND deleted_at IS NULL AND visibility IN ('public', 'unlisted')
           ORDER BY published_at DESC, id DESC LIMIT $2 OFFSET $3""",
        actor_id, limit, offset,
    )
    return [row["data"] for row in rows]
