"""SQL for lists (Mastodon's): a person's named sets of followed accounts, and each list's timeline.

A member hangs on the owner's follow of it (migration 0030), so an unfollow takes it out of the lists.
The list timeline is read at request time: the members' posts the owner may see, newest first, with
Mastodon's replies policy, and never what the owner blocked, muted or the operator hid.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .moderation import hidden_actor_sql
from .status_views import Entry, Window, unwanted_sql, visible_sql, window_sql

REPLIES_POLICIES = ("followed", "list", "none")
MAX_LISTS = 100  # Mastodon's per-account limit is 50 by default; ours is generous, still bounded
MAX_MEMBERS = 1000


@dataclass(frozen=True)
class AccountList:
    """One list of an owner."""

    id: int
    account_id: int
    title: str
    replies_policy: str
    exclusive: bool


_COLUMNS = "id, account_id, title, replies_policy, exclusive"


def _list(row: asyncpg.Record | None) -> AccountList | None:
    return AccountList(**dict(row)) if row else None


async def get_lists(conn: asyncpg.Connection, owner_id: int) -> list[AccountList]:
    """The owner's lists, oldest first (as Mastodon orders them)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM lists WHERE account_id = $1 ORDER BY id", owner_id)
    return [AccountList(**dict(r)) for r in rows]


async def get_own_list(conn: asyncpg.Connection, owner_id: int, list_id: int) -> AccountList | None:
    """One of the owner's lists; None for a missing list or someone else's."""
    return _list(await conn.fetchrow(f"SELECT {_COLUMNS} FROM lists WHERE id = $1 AND account_id = $2",
                                     list_id, owner_id))


async def insert_list(conn: asyncpg.Connection, owner_id: int, title: str, replies_policy: str,
                      exclusive: bool) -> AccountList | None:
    """A new list; None when the owner already has MAX_LISTS."""
    return _list(await conn.fetchrow(
        f"""INSERT INTO lists (account_id, title, replies_policy, exclusive)
            SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM lists WHERE account_id = $1) < {MAX_LISTS}
            RETURNING {_COLUMNS}""",
        owner_id, title, replies_policy, exclusive))


async def update_list(conn: asyncpg.Connection, owner_id: int, list_id: int, *, title: str | None,
                      replies_policy: str | None, exclusive: bool | None) -> AccountList | None:
    """Change what was given; None when the list is not the owner's."""
    return _list(await conn.fetchrow(
        f"""UPDATE lists SET title = coalesce($3, title), replies_policy = coalesce($4, replies_policy),
                   exclusive = coalesce($5, exclusive)
            WHERE id = $1 AND account_id = $2 RETURNING {_COLUMNS}""",
        list_id, owner_id, title, replies_policy, exclusive))


async def delete_list(conn: asyncpg.Connection, owner_id: int, list_id: int) -> bool:
    """Delete one's list (its members go with it); False when it is not the owner's."""
    status = await conn.execute("DELETE FROM lists WHERE id = $1 AND account_id = $2", list_id, owner_id)
    return not status.endswith(" 0")


async def not_followed(conn: asyncpg.Connection, owner_id: int, account_ids: list[int]) -> list[int]:
    """The ids among `account_ids` the owner neither follows nor asked to follow."""
    rows = await conn.fetch(
        """SELECT x FROM unnest($2::bigint[]) AS x
           WHERE NOT EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = x)""",
        owner_id, account_ids)
    return [r["x"] for r in rows]


async def add_members(conn: asyncpg.Connection, list_id: int, owner_id: int, account_ids: list[int]) -> int:
    """Add followed accounts (one statement; an account already in the list stays); returns how many were new.
    The caller checks MAX_MEMBERS afterwards, in the same transaction."""
    status = await conn.execute(
        """INSERT INTO list_accounts (list_id, account_id, follow_id)
            SELECT $1, f.followee_id, f.id FROM follows f
            WHERE f.follower_id = $2 AND f.followee_id = ANY($3::bigint[])
            ON CONFLICT DO NOTHING""",
        list_id, owner_id, account_ids)
    return int(status.rsplit(" ", 1)[-1])


async def count_members(conn: asyncpg.Connection, list_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM list_accounts WHERE list_id = $1", list_id)


async def remove_members(conn: asyncpg.Connection, list_id: int, account_ids: list[int]) -> None:
    await conn.execute("DELETE FROM list_accounts WHERE list_id = $1 AND account_id = ANY($2::bigint[])",
                       list_id, account_ids)


async def read_members(conn: asyncpg.Connection, list_id: int, window: Window) -> list[int]:
    """Member account ids, paged by account id (as Mastodon pages list accounts), not deleted nor suspended."""
    bounds, order = window_sql("la.account_id", 2, window)
    rows = await conn.fetch(
        f"""SELECT la.account_id FROM list_accounts la JOIN actors a ON a.id = la.account_id AND a.deleted_at IS NULL
            WHERE la.list_id = $1 AND {bounds} AND NOT {hidden_actor_sql('la.account_id')} {order}""",
        list_id, *window.params())
    return [r["account_id"] for r in rows]


async def lists_with_member(conn: asyncpg.Connection, owner_id: int, account_id: int) -> list[AccountList]:
    """The owner's lists holding an account (GET /api/v1/accounts/:id/lists)."""
    rows = await conn.fetch(
        f"""SELECT {', '.join('l.' + c.strip() for c in _COLUMNS.split(','))} FROM lists l
            JOIN list_accounts la ON la.list_id = l.id AND la.account_id = $2
            WHERE l.account_id = $1 ORDER BY l.id""",
        owner_id, account_id)
    return [AccountList(**dict(r)) for r in rows]


# Which replies a list shows (Mastodon's FeedManager#replies_policy): any reply to oneself stays.
_REPLIES = {
    "none": "o.in_reply_to_uri IS NULL",
    "list": """(o.in_reply_to_uri IS NULL OR EXISTS (SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri
               AND (p.actor_id = o.actor_id OR p.actor_id IN (SELECT account_id FROM list_accounts
                                                                WHERE list_id = $2))))""",
    "followed": """(o.in_reply_to_uri IS NULL OR EXISTS (SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri
               AND (p.actor_id IN (o.actor_id, $1) OR EXISTS (SELECT 1 FROM follows rf WHERE rf.follower_id = $1
                    AND rf.followee_id = p.actor_id AND rf.state = 'accepted'))))""",
}


async def read_list_timeline(conn: asyncpg.Connection, owner_id: int, found: AccountList,
                             window: Window) -> list[Entry]:
    """One page of a list's timeline: members' posts the owner may see, newest first (the objects_actor_id
    index gives each member's newest posts)."""
    bounds, order = window_sql("o.id", 3, window)
    rows = await conn.fetch(
        f"""SELECT o.id FROM list_accounts la JOIN objects o ON o.actor_id = la.account_id
            WHERE la.list_id = $2 AND {bounds}
              AND {_REPLIES[found.replies_policy]} AND {visible_sql('$1')}
              AND NOT {unwanted_sql('$1', 'o.actor_id')}
            {order}""",
        owner_id, found.id, *window.params())
    return [Entry(r["id"], r["id"], r["id"]) for r in rows]
