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


# The outbox lists the Create and Announce activities of public and unlisted posts,
# leaving out Creates of posts deleted since.
_OUTBOX_WHERE = """FROM activities a LEFT JOIN objects o ON a.activity_type = 'Create' AND o.uri = a.object_uri
           WHERE a.actor_id = $1 AND a.activity_type IN ('Create', 'Announce')
             AND a.visibility IN ('public', 'unlisted') AND o.deleted_at IS NULL"""


async def count_outbox(conn: asyncpg.Connection, actor_id: int) -> int:
    """Public and unlisted posts and boosts by an actor (what the outbox shows)."""
    return await conn.fetchval(f"SELECT count(*) {_OUTBOX_WHERE}", actor_id)


async def list_outbox_objects(conn: asyncpg.Connection, actor_id: int, *, limit: int, offset: int) -> list[dict]:
    """The Create and Announce activities of public and unlisted posts, newest first."""
    rows = await conn.fetch(
        f"SELECT a.data - '@context' AS data {_OUTBOX_WHERE} ORDER BY a.id DESC LIMIT $2 OFFSET $3",
        actor_id, limit, offset,
    )
    return [row["data"] for row in rows]
