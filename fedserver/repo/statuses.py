"""SQL for posts (the `objects` table) as local actors publish and use them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import stream_events


@dataclass(frozen=True)
class StoredObject:
    """A post as stored: its columns and the ActivityPub document in `data`."""

    id: int
    uri: str
    object_type: str
    actor_id: int | None
    author_uri: str | None
    is_local: bool
    in_reply_to_uri: str | None
    visibility: str
    data: dict
    published_at: datetime
    deleted_at: datetime | None


_COLUMNS = """o.id, o.uri, o.object_type, o.actor_id, a.uri AS author_uri, o.is_local, o.in_reply_to_uri,
              o.visibility, o.data, o.published_at, o.deleted_at"""


def _object(row: asyncpg.Record | None) -> StoredObject | None:
    return StoredObject(**dict(row)) if row else None


async def insert_object(conn: asyncpg.Connection, *, uri: str, object_type: str, actor_id: int, is_local: bool,
                        content: str, name: str | None, summary: str | None, url: str | None,
                        in_reply_to_uri: str | None, visibility: str, data: dict, published_at: datetime) -> int:
    """Insert a post; raises UniqueViolationError if its uri is taken."""
    return await conn.fetchval(
        """INSERT INTO objects (uri, object_type, actor_id, is_local, content, name, summary, url,
                                in_reply_to_uri, visibility, data, published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12) RETURNING id""",
        uri, object_type, actor_id, is_local, content, name, summary, url, in_reply_to_uri, visibility, data,
        published_at,
    )


async def insert_direct_notice(conn: asyncpg.Connection, *, uri: str, author_id: int, recipient_id: int,
                               content: str, data: dict, published_at: datetime) -> int:
    """A local direct post to one local person, in their home timeline and notifications, in one statement."""
    object_id = await conn.fetchval(
        f"""WITH post AS (
               INSERT INTO objects (uri, object_type, actor_id, is_local, content, url, visibility, data, published_at)
               VALUES ($1, 'Note', $2, true, $4, $1, 'direct', $5::jsonb, $6) RETURNING id),
           mention AS (INSERT INTO status_mentions (object_id, actor_id) SELECT id, $3 FROM post),
           feed AS (INSERT INTO home_feed (account_id, entry_id, object_id, author_id)
                    SELECT $3, id, id, $2 FROM post),
           notice AS (INSERT INTO notifications (account_id, from_id, type, object_id)
                      SELECT $3, $2, 'mention', id FROM post RETURNING id, account_id)
           SELECT id, {stream_events.direct_notice_sql("post", "notice")} FROM post""",
        uri, author_id, recipient_id, content, data, published_at,
    )
    return object_id


async def get_object_by_uri(conn: asyncpg.Connection, uri: str) -> StoredObject | None:
    """A post (deleted ones included) by its id, with its author's id."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM objects o LEFT JOIN actors a ON a.id = o.actor_id WHERE o.uri = $1", uri
    )
    return _object(row)


async def mark_object_deleted(conn: asyncpg.Connection, object_id: int) -> bool:
    """Mark a post deleted (and stream the deletion); False if it already was."""
    status = await conn.execute(
        "UPDATE objects SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL", object_id
    )
    if status.endswith(" 1"):
        await stream_events.publish_post_changed(conn, "delete", object_id)
    return status.endswith(" 1")


async def update_object_data(conn: asyncpg.Connection, object_id: int, data: dict) -> None:
    """Replace a post's ActivityPub document (attachments added in the posting transaction)."""
    await conn.execute("UPDATE objects SET data = $2::jsonb WHERE id = $1", object_id, data)


async def update_local_object(conn: asyncpg.Connection, object_id: int, *, content: str, summary: str | None,
                              data: dict, updated_at: datetime) -> bool:
    """Apply an edit to a local post; False if it is deleted."""
    status = await conn.execute(
        """UPDATE objects SET content = $2, summary = $3, data = $4::jsonb, updated_at = $5
           WHERE id = $1 AND is_local AND deleted_at IS NULL""",
        object_id, content, summary, data, updated_at,
    )
    return status.endswith(" 1")
