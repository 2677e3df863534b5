"""SQL for local people's home timelines (the `home_feed` table): fan-out on write, backfill, reading.

Fan-out follows Mastodon's FeedManager: a post goes to its local author and local followers
(a reply only when its parent's author is the follower, someone the follower follows, or the
post's own author); a direct post goes to the mentioned local people; a boost goes to the
booster (when local) and its followers, unless the post is already in that feed. A public post also
goes to the local people following one of its hashtags; a member of an exclusive list reaches the
list's owner through the list only.
"""

from __future__ import annotations

import asyncpg

from .moderation import hidden_actor_sql
from .status_views import Entry, Window, unwanted_sql, window_sql
from .stream_events import home_notice_sql, posts_notice_sql

BACKFILL = 40

# Followed hashtags (Mastodon's FanOutOnWriteService#deliver_to_hashtag_followers): public posts only, not
# replies to others, nothing of silenced or suspended authors, nothing across a block either way.
_TAG_FOLLOWERS_MAY_SEE = f"""
      AND (o.in_reply_to_uri IS NULL OR EXISTS (
            SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri AND p.actor_id = o.actor_id))
      AND NOT {hidden_actor_sql('o.actor_id', silenced_too=True)}
      AND NOT EXISTS (SELECT 1 FROM blocks tb WHERE (tb.actor_id = ft.account_id AND tb.target_id = o.actor_id)
                                              OR (tb.actor_id = o.actor_id AND tb.target_id = ft.account_id))"""

_POST_TARGETS = """
    SELECT o.actor_id AS account_id WHERE o.is_local
    UNION
    SELECT f.follower_id FROM follows f JOIN actors fa ON fa.id = f.follower_id AND fa.is_local
    WHERE f.followee_id = o.actor_id AND f.state = 'accepted' AND o.visibility <> 'direct'
      AND NOT EXISTS (SELECT 1 FROM list_accounts xl JOIN lists xls ON xls.id = xl.list_id AND xls.exclusive
                      WHERE xls.account_id = f.follower_id AND xl.account_id = o.actor_id)
      AND (o.in_reply_to_uri IS NULL OR EXISTS (
            SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri
              AND (p.actor_id IN (o.actor_id, f.follower_id) OR EXISTS (
                    SELECT 1 FROM follows pf WHERE pf.follower_id = f.follower_id AND pf.followee_id = p.actor_id
                      AND pf.state = 'accepted'))))
    UNION
    SELECT m.actor_id FROM status_mentions m JOIN actors ma ON ma.id = m.actor_id AND ma.is_local
    WHERE m.object_id = o.id AND o.visibility = 'direct'
    UNION
    SELECT ft.account_id FROM object_tags ot JOIN followed_tags ft ON ft.tag_id = ot.tag_id
    JOIN actors ta ON ta.id = ft.account_id AND ta.is_local
    WHERE ot.object_id = o.id AND o.visibility = 'public'""" + _TAG_FOLLOWERS_MAY_SEE


async def fan_out_posts(conn: asyncpg.Connection, object_ids: list[int]) -> int:
    """Put new posts into the home timelines they belong to and stream them (`home` events for the entries
    written, `public` and `list` ones), in one statement; returns how many entries were written."""
    return await conn.fetchval(
        f"""WITH entries AS (
                INSERT INTO home_feed (account_id, entry_id, object_id, author_id)
                SELECT t.account_id, o.id, o.id, o.actor_id
                FROM objects o CROSS JOIN LATERAL ({_POST_TARGETS}) t
                WHERE o.id = ANY($1::bigint[]) AND o.deleted_at IS NULL
                ON CONFLICT DO NOTHING
                RETURNING account_id, entry_id, object_id)
            SELECT (SELECT count(*) FROM entries), {home_notice_sql('entries')}, {posts_notice_sql('$1::bigint[]')}""",
        object_ids,
    )


async def fan_out_boost(conn: asyncpg.Connection, announce_uri: str) -> int:
    """Put a new boost of a stored public or unlisted post into its booster's and followers' timelines and stream
    it there, in one statement; returns how many entries were written."""
    return await conn.fetchval(
        f"""WITH entries AS (
                INSERT INTO home_feed (account_id, entry_id, object_id, author_id, reblog_by)
                SELECT t.account_id, an.id, o.id, o.actor_id, an.actor_id
                FROM announces an
                JOIN objects o ON o.uri = an.object_uri AND o.deleted_at IS NULL
                               AND o.visibility IN ('public', 'unlisted')
                JOIN actors b ON b.id = an.actor_id
                CROSS JOIN LATERAL (
                    SELECT an.actor_id AS account_id WHERE b.is_local
                    UNION
                    SELECT f.follower_id FROM follows f JOIN actors fa ON fa.id = f.follower_id AND fa.is_local
                    WHERE f.followee_id = an.actor_id AND f.state = 'accepted') t
                WHERE an.activity_uri = $1
                  AND NOT EXISTS (SELECT 1 FROM home_feed h WHERE h.account_id = t.account_id AND h.object_id = o.id)
                ON CONFLICT DO NOTHING
                RETURNING account_id, entry_id, object_id)
            SELECT (SELECT count(*) FROM entries), {home_notice_sql('entries')}""",
        announce_uri,
    )


async def backfill(conn: asyncpg.Connection, account_id: int, followee_id: int, limit: int = BACKFILL) -> None:
    """After a follow is accepted: the followee's latest posts (not replies) into the follower's timeline."""
    await conn.execute(
        """INSERT INTO home_feed (account_id, entry_id, object_id, author_id)
           SELECT $1, o.id, o.id, o.actor_id FROM objects o
           WHERE o.actor_id = $2 AND o.deleted_at IS NULL AND o.in_reply_to_uri IS NULL
             AND o.visibility IN ('public', 'unlisted', 'private')
             AND EXISTS (SELECT 1 FROM actors a WHERE a.id = $1 AND a.is_local)
           ORDER BY o.id DESC LIMIT $3
           ON CONFLICT DO NOTHING""",
        account_id, followee_id, limit,
    )


async def remove_author(conn: asyncpg.Connection, account_id: int, author_id: int) -> None:
    """After an unfollow: drop the unfollowed account's posts and boosts from the timeline."""
    await conn.execute(
        """DELETE FROM home_feed
           WHERE account_id = $1 AND (reblog_by = $2 OR (author_id = $2 AND reblog_by IS NULL))""",
        account_id, author_id,
    )


async def read_home(conn: asyncpg.Connection, account_id: int, window: Window) -> list[Entry]:
    """One page of a home timeline: a primary-key range scan, skipping deleted, undone and blocked entries."""
    bounds, order = window_sql("h.entry_id", 2, window)
    rows = await conn.fetch(
        f"""SELECT h.entry_id, h.object_id, h.reblog_by IS NOT NULL AS is_boost
            FROM home_feed h JOIN objects o ON o.id = h.object_id
            JOIN actors au ON au.id = h.author_id AND au.deleted_at IS NULL
            LEFT JOIN announces an ON h.reblog_by IS NOT NULL AND an.id = h.entry_id
            WHERE h.account_id = $1 AND {bounds} AND o.deleted_at IS NULL
              AND (h.reblog_by IS NULL OR an.id IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM blocks b
                              WHERE b.actor_id = $1 AND b.target_id IN (h.author_id, h.reblog_by))
              AND NOT {unwanted_sql('$1', 'h.author_id')} AND NOT {hidden_actor_sql('h.author_id')}
              AND (h.reblog_by IS NULL OR NOT {unwanted_sql('$1', 'h.reblog_by')})
            {order}""",
        account_id, *window.params(),
    )
    return [Entry(r["entry_id"], r["entry_id"], r["object_id"], r["entry_id"] if r["is_boost"] else None)
            for r in rows]


async def accepted_followers(conn: asyncpg.Connection, followee_id: int, follow_uri: str | None,
                             follower_id: int | None) -> list[int]:
    """Local followers whose follow of `followee_id` (by Follow id or by follower) is now accepted."""
    rows = await conn.fetch(
        """SELECT f.follower_id FROM follows f JOIN actors a ON a.id = f.follower_id AND a.is_local
           WHERE f.followee_id = $1 AND f.state = 'accepted' AND (f.activity_uri = $2 OR f.follower_id = $3)""",
        followee_id, follow_uri, follower_id,
    )
    return [row["follower_id"] for row in rows]
