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


async def get_activity_by_uri(conn: asyncpg.Connection, uri: str) -> PublishedActivity | None:
    """A published activity by its id."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM activities WHERE uri = $1", uri)
    return PublishedActivity(**dict(row)) if row else None


async def delete_activity(conn: asyncpg.Connection, uri: str) -> None:
    """Forget an undone activity (its URL then answers 404)."""
    await conn.execute("DELETE FROM activities WHERE uri = $1", uri)


async def audience_inboxes(conn: asyncpg.Connection, object_uri: str) -> list[str]:
    """Inboxes of the remote actors a post concerns besides its author's followers (shared inbox preferred):
    those it mentions, the author it replies to, and those who boosted it. An edit or a delete of
    the post goes to them, however long ago the post was delivered."""
    rows = await conn.fetch(
        """SELECT DISTINCT coalesce(a.shared_inbox_uri, a.inbox_uri) AS inbox
           FROM objects o
           JOIN LATERAL (SELECT m.actor_id FROM status_mentions m WHERE m.object_id = o.id
                         UNION SELECT p.actor_id FROM objects p WHERE p.uri = o.in_reply_to_uri
                         UNION SELECT n.actor_id FROM announces n WHERE n.object_uri = o.uri) AS who ON true
           JOIN actors a ON a.id = who.actor_id
           WHERE o.uri = $1 AND NOT a.is_local AND a.deleted_at IS NULL""",
        object_uri,
    )
    return [row["inbox"] for row in rows]
