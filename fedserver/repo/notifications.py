"""SQL for notifications of local people: written where the cause is stored (same transaction), read by
the client API. Each insert is one statement that finds who to notify, and notifies at most once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import stream_events
from .moderation import hidden_actor_sql
from .status_views import Window, unwanted_sql, window_sql

TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "update")
_ONCE = "ON CONFLICT DO NOTHING RETURNING id, account_id"  # each new row is streamed


@dataclass(frozen=True)
class NotificationRow:
    id: int
    type: str
    from_id: int
    object_id: int | None
    created_at: datetime


async def notify_mentions(conn: asyncpg.Connection, *object_ids: int) -> None:
    """`mention` for each local person new posts mention, and for the local author of the post each replies to."""
    await stream_events.insert_notifications(
        conn, f"""INSERT INTO notifications (account_id, from_id, type, object_id)
            SELECT t.account_id, o.actor_id, 'mention', o.id FROM objects o CROSS JOIN LATERAL (
                SELECT m.actor_id AS account_id FROM status_mentions m WHERE m.object_id = o.id
                UNION
                SELECT p.actor_id FROM objects p WHERE p.uri = o.in_reply_to_uri AND p.deleted_at IS NULL
                  AND o.visibility IN ('public', 'unlisted')) t
            JOIN actors r ON r.id = t.account_id AND r.is_local AND r.deleted_at IS NULL
            WHERE o.id = ANY($1::bigint[]) AND t.account_id <> o.actor_id
              AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.actor_id = t.account_id AND b.target_id = o.actor_id)
            ORDER BY o.id  -- notifications of a batch in the order of its posts
            {_ONCE}""",
        list(object_ids),
    )


async def notify_favourite(conn: asyncpg.Connection, like_uri: str) -> None:
    """`favourite` for the local author of a liked post."""
    await notify_favourites(conn, [like_uri])


async def notify_favourites(conn: asyncpg.Connection, like_uris: list[str]) -> None:
    """`favourite` for the local authors of liked posts, in one statement."""
    await stream_events.insert_notifications(
        conn, f"""INSERT INTO notifications (account_id, from_id, type, object_id, like_id)
            SELECT o.actor_id, l.actor_id, 'favourite', o.id, l.id
            FROM likes l JOIN objects o ON o.uri = l.object_uri AND o.is_local AND o.deleted_at IS NULL
            WHERE l.activity_uri = ANY($1::text[]) AND o.actor_id <> l.actor_id
              AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.actor_id = o.actor_id AND b.target_id = l.actor_id)
            ORDER BY l.id {_ONCE}""",
        like_uris,
    )


async def notify_reblog(conn: asyncpg.Connection, announce_uri: str) -> None:
    """`reblog` for the local author of a boosted post."""
    await stream_events.insert_notifications(
        conn, f"""INSERT INTO notifications (account_id, from_id, type, object_id, announce_id)
            SELECT o.actor_id, an.actor_id, 'reblog', o.id, an.id
            FROM announces an JOIN objects o ON o.uri = an.object_uri AND o.is_local AND o.deleted_at IS NULL
            WHERE an.activity_uri = $1 AND o.actor_id <> an.actor_id
              AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.actor_id = o.actor_id AND b.target_id = an.actor_id)
            {_ONCE}""",
        announce_uri,
    )


async def notify_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> None:
    """`follow` (or `follow_request` while pending) for a local followee."""
    await stream_events.insert_notifications(
        conn, f"""INSERT INTO notifications (account_id, from_id, type, follow_id)
            SELECT f.followee_id, f.follower_id,
                   CASE f.state WHEN 'accepted' THEN 'follow' ELSE 'follow_request' END, f.id
            FROM follows f JOIN actors a ON a.id = f.followee_id AND a.is_local
            WHERE f.follower_id = $1 AND f.followee_id = $2
            {_ONCE}""",
        follower_id, followee_id,
    )


async def drop_follow_request(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> None:
    """A request was answered: its `follow_request` notification goes."""
    await conn.execute(
        "DELETE FROM notifications WHERE account_id = $2 AND from_id = $1 AND type = 'follow_request'",
        follower_id, followee_id,
    )


@dataclass(frozen=True)
class NotificationFilter:
    """`types[]`, `exclude_types[]` and `account_id` of GET /api/v1/notifications."""

    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    from_id: int | None = None


async def read_notifications(conn: asyncpg.Connection, account_id: int, window: Window,
                             options: NotificationFilter) -> list[NotificationRow]:
    """A page of notifications, newest first, without those whose post or sender is gone."""
    bounds, order = window_sql("n.id", 5, window)
    rows = await conn.fetch(
        f"""SELECT n.id, n.type, n.from_id, n.object_id, n.created_at FROM notifications n
            WHERE n.account_id = $1 AND {bounds}
              AND (cardinality($2::text[]) = 0 OR n.type = ANY($2::text[]))
              AND NOT (n.type = ANY($3::text[])) AND ($4::bigint IS NULL OR n.from_id = $4)
              AND {_LIVE} AND {_WANTED}
            {order}""",
        account_id, list(options.types), list(options.exclude_types), options.from_id, *window.params(),
    )
    return [NotificationRow(**dict(row)) for row in rows]


# Not from someone the reader blocks, mutes with notifications, or whose server the reader blocks.
_WANTED = f"""NOT {unwanted_sql('n.account_id', 'n.from_id', notifications=True)}
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.actor_id = n.account_id AND b.target_id = n.from_id)"""
_LIVE = f"""EXISTS (SELECT 1 FROM actors a WHERE a.id = n.from_id AND a.deleted_at IS NULL)
           AND NOT {hidden_actor_sql('n.from_id')}
           AND (n.object_id IS NULL OR EXISTS (SELECT 1 FROM objects o WHERE o.id = n.object_id
                                                AND o.deleted_at IS NULL))"""


async def get_notification(conn: asyncpg.Connection, account_id: int, notification_id: int) -> NotificationRow | None:
    """One of the account's own notifications."""
    row = await conn.fetchrow(
        f"""SELECT n.id, n.type, n.from_id, n.object_id, n.created_at FROM notifications n
            WHERE n.account_id = $1 AND n.id = $2 AND {_LIVE} AND {_WANTED}""",
        account_id, notification_id,
    )
    return NotificationRow(**dict(row)) if row else None


async def dismiss(conn: asyncpg.Connection, account_id: int, notification_id: int) -> bool:
    """Delete one of the account's notifications; False if it has none with that id."""
    status = await conn.execute(
        "DELETE FROM notifications WHERE account_id = $1 AND id = $2", account_id, notification_id
    )
    return status.endswith(" 1")


async def clear(conn: asyncpg.Connection, account_id: int) -> None:
    """Delete all of the account's notifications."""
    await conn.execute("DELETE FROM notifications WHERE account_id = $1", account_id)


async def read_follow_requests(conn: asyncpg.Connection, account_id: int, window: Window) -> list[tuple[int, int]]:
    """(follow id, requester id) of pending follow requests to the account, latest first."""
    bounds, order = window_sql("f.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT f.id, f.follower_id FROM follows f JOIN actors a ON a.id = f.follower_id AND a.deleted_at IS NULL
            WHERE f.followee_id = $1 AND f.state = 'pending' AND {bounds} {order}""",
        account_id, *window.params(),
    )
    return [(row["id"], row["follower_id"]) for row in rows]
