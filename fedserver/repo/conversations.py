"""SQL for direct-message conversations as the client API shows them (GET /api/v1/conversations).

A conversation is computed, not stored: the direct posts an account may see (its own, and those
mentioning it), grouped by **thread key**. The key of a post is found at the root of its reply chain
(followed up through `in_reply_to_uri` while the parent is stored here): the root's `context` when it
has one (an order's messages all name the order's Agreement there, so one order is one conversation),
else the root's uri (or the uri of the missing parent a chain stops at). A reply therefore joins its
thread whoever wrote it, and Mastodon's own `context` values keep its threads together.

The API id of a conversation is a 60-bit number derived from its key (the same for every
participant, stable while the thread's root is), and its cursor is the id of its last post, as
Mastodon pages conversations by `last_status_id`. `conversation_marks` keeps the account's read and
hidden marks. Blocks, mutes, domain blocks and the operator's moderation hide posts as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .status_views import Window, unwanted_sql, visible_sql, window_sql

MAX_DEPTH = 200  # reply chains deeper than this (or looping) stop there


@dataclass(frozen=True)
class ConversationRow:
    """One conversation of an account: its API id, thread key, last post, read state and other participants."""

    id: int
    thread_key: str
    last_id: int
    unread: bool
    account_ids: list[int]


# $1 is the reading account. `threads` holds one row per conversation the account has not hidden.
_THREADS = f"""
WITH RECURSIVE own AS (  -- two index scans: objects_direct_by_actor, status_mentions_actor
    SELECT o.id FROM objects o WHERE o.actor_id = $1 AND o.visibility = 'direct'
    UNION
    SELECT m.object_id FROM status_mentions m WHERE m.actor_id = $1
), dm AS (
    SELECT o.id, o.actor_id, o.uri, o.in_reply_to_uri, o.data->>'context' AS context
    FROM own JOIN objects o ON o.id = own.id
    WHERE o.visibility = 'direct' AND {visible_sql('$1')} AND NOT {unwanted_sql('$1', 'o.actor_id')}
), up AS (
    SELECT d.id, d.uri AS at_uri, d.in_reply_to_uri AS parent_uri, d.context, 0 AS depth FROM dm d
    UNION ALL
    SELECT u.id, u.parent_uri, p.in_reply_to_uri, p.data->>'context', u.depth + 1
    FROM up u LEFT JOIN objects p ON p.uri = u.parent_uri
    WHERE u.parent_uri IS NOT NULL AND u.depth < {MAX_DEPTH}
), posts AS (
    SELECT DISTINCT ON (u.id) u.id, d.actor_id, coalesce(u.context, u.at_uri) AS thread_key
    FROM up u JOIN dm d ON d.id = u.id ORDER BY u.id, u.depth DESC
), people AS (
    SELECT p.thread_key, p.actor_id FROM posts p
    UNION
    SELECT p.thread_key, m.actor_id FROM posts p JOIN status_mentions m ON m.object_id = p.id
), threads AS (
    SELECT ('x' || substr(md5(p.thread_key), 1, 15))::bit(60)::bigint AS id, p.thread_key, max(p.id) AS last_id,
           bool_or(p.id > coalesce(cm.read_up_to, 0) AND p.actor_id <> $1) AS unread,
           coalesce(max(cm.hidden_up_to), 0) AS hidden_up_to
    FROM posts p LEFT JOIN conversation_marks cm ON cm.account_id = $1 AND cm.thread_key = p.thread_key
    GROUP BY p.thread_key
)
SELECT t.id, t.thread_key, t.last_id, t.unread,
       ARRAY(SELECT pp.actor_id FROM people pp WHERE pp.thread_key = t.thread_key AND pp.actor_id <> $1
             ORDER BY pp.actor_id) AS account_ids
FROM threads t WHERE t.last_id > t.hidden_up_to"""


def _row(row: asyncpg.Record) -> ConversationRow:
    return ConversationRow(id=row["id"], thread_key=row["thread_key"], last_id=row["last_id"],
                           unread=row["unread"], account_ids=list(row["account_ids"]))


async def read_conversations(conn: asyncpg.Connection, account_id: int, window: Window) -> list[ConversationRow]:
    """A page of the account's conversations by last post, newest first (ascending when paging up)."""
    bounds, order = window_sql("t.last_id", 2, window)
    rows = await conn.fetch(f"{_THREADS} AND {bounds} {order}", account_id, *window.params())
    return [_row(row) for row in rows]


async def get_conversation(conn: asyncpg.Connection, account_id: int, conversation_id: int) -> ConversationRow | None:
    """One of the account's (not hidden) conversations by its API id."""
    row = await conn.fetchrow(f"{_THREADS} AND t.id = $2", account_id, conversation_id)
    return _row(row) if row else None


async def mark_read(conn: asyncpg.Connection, account_id: int, thread_key: str, up_to: int) -> None:
    """Everything in the conversation up to post `up_to` is read."""
    await conn.execute(
        """INSERT INTO conversation_marks AS c (account_id, thread_key, read_up_to) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, thread_key) DO UPDATE SET read_up_to = greatest(c.read_up_to, $3)""",
        account_id, thread_key, up_to,
    )


async def hide(conn: asyncpg.Connection, account_id: int, thread_key: str, up_to: int) -> None:
    """Hide the conversation until a post newer than `up_to` arrives in it."""
    await conn.execute(
        """INSERT INTO conversation_marks AS c (account_id, thread_key, hidden_up_to) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, thread_key) DO UPDATE SET hidden_up_to = greatest(c.hidden_up_to, $3)""",
        account_id, thread_key, up_to,
    )
