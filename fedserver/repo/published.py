"""SQL for the activities local actors publish (the `activities` table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class PublishedActivity:
    """An activity a local actor sent, as stored."""

    id: int
    uri: str
    actor_id: int
    activity_type: str
    object_uri: str | None
    visibility: str
    data: dict
    created_at: datetime


_COLUMNS = "id, uri, actor_id, activity_type, object_uri, visibility, data, created_at"


async def insert_activity(conn: asyncpg.Connection, *, uri: str, actor_id: int, activity_type: str,
                          object_uri: str | None, visibility: str, data: dict) -> int:
    """Store a published activity; raises UniqueViolationError if its uri is taken."""
    return await conn.fetchval(
        """INSERT INTO activities (uri, actor_id, activity_type, object_uri, visibility, data)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id""",
        uri, actor_id, activity_type, object_uri, visibility, data,
    )


async def get_activity_by_uri(conn: asyncpg.Connection, uri: str) -> PublishedActivity | None:
    """A published activity by its id."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM activities WHERE uri = $1", uri)
    return PublishedActivity(**dict(row)) if row else None


async def delete_activity(conn: asyncpg.Connection, uri: str) -> None:
    """Forget an undone activity (its URL then answers 404)."""
    await conn.execute("DELETE FROM activities WHERE uri = $1", uri)


async def recipients_of_object(conn: asyncpg.Connection, object_uri: str) -> list[str]:
    """Every inbox that was sent an activity about this object (so a Delete reaches them too)."""
    rows = await conn.fetch(
        """SELECT DISTINCT d.inbox_uri FROM deliveries d
           WHERE d.activity_uri IN (SELECT uri FROM activities WHERE object_uri = $1)""",
        object_uri,
    )
    return [row["inbox_uri"] for row in rows]
