"""SQL for the lists of posts besides the home timeline: public, hashtag, an account's posts, favourites,
bookmarks, threads, and who favourited or boosted a post. Every list pages by an id (`Window`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .moderation import hidden_actor_sql
from .status_views import Entry, Window, unwanted_sql, visible_sql, window_sql

# A reply to someone else's post stays out of public lists (Mastodon's `without_replies`);
# threads continued by their own author stay in.
_NOT_A_REPLY_TO_OTHERS = """(o.in_reply_to_uri IS NULL OR EXISTS (
    SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri AND p.actor_id = o.actor_id))"""
_HAS_MEDIA = "(jsonb_typeof(o.data->'attachment') = 'object' OR jsonb_array_length(CASE WHEN " \
             "jsonb_typeof(o.data->'attachment') = 'array' THEN o.data->'attachment' ELSE '[]' END) > 0)"
# Silenced accounts and domains stay out of the public lists (the operator's moderation).
_SILENCED = hidden_actor_sql("o.actor_id", silenced_too=True)
MAX_THREAD_DEPTH = 40
MAX_DESCENDANTS = 200


@dataclass(frozen=True)
class PublicFilter:
    """Options of the public and hashtag timelines."""

    local: bool = False
    remote: bool = False
    only_media: bool = False

    def sql(self) -> str:
        parts = []
        if self.local and not self.remote:
            parts.append("o.is_local")
        if self.remote and not self.local:
            parts.append("NOT o.is_local")
        if self.only_media:
            parts.append(_HAS_MEDIA)
        return "".join(f" AND {p}" for p in parts)


def _entries(rows: list[asyncpg.Record]) -> list[Entry]:
    return [Entry(r["cursor"], r["entry_id"], r["object_id"], r["reblog_id"]) for r in rows]


async def read_public(conn: asyncpg.Connection, viewer_id: int | None, window: Window,
                      options: PublicFilter) -> list[Entry]:
    """Public posts, local and/or remote, newest first."""
    bounds, order = window_sql("o.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT o.id AS cursor, o.id AS entry_id, o.id AS object_id, NULL::bigint AS reblog_id FROM objects o
            WHERE o.visibility = 'public' AND o.deleted_at IS NULL AND {bounds}{options.sql()}
              AND {_NOT_A_REPLY_TO_OTHERS} AND {visible_sql('$1')} AND NOT {unwanted_sql('$1', 'o.actor_id')}
              AND NOT {_SILENCED}
            {order}""",
        viewer_id, *window.params(),
    )
    return _entries(rows)


async def read_tag(conn: asyncpg.Connection, tag: str, viewer_id: int | None, window: Window,
                   options: PublicFilter) -> list[Entry]:
    """Public posts carrying a hashtag, newest first."""
    bounds, order = window_sql("t.object_id", 3, window)
    rows = await conn.fetch(
        f"""SELECT t.object_id AS cursor, t.object_id AS entry_id, t.object_id, NULL::bigint AS reblog_id
            FROM object_tags t JOIN objects o ON o.id = t.object_id
            WHERE t.tag_id = (SELECT id FROM tags WHERE name = $2) AND {bounds}
              AND o.visibility = 'public'{options.sql()} AND {visible_sql('$1')}
              AND NOT {unwanted_sql('$1', 'o.actor_id')} AND NOT {_SILENCED}
            {order}""",
        viewer_id, tag, *window.params(),
    )
    return _entries(rows)


@dataclass(frozen=True)
class AccountFilter:
    """Options of GET /api/v1/accounts/:id/statuses."""

    exclude_replies: bool = False
    exclude_reblogs: bool = False
    only_media: bool = False


async def read_account(conn: asyncpg.Connection, account_id: int, viewer_id: int | None, window: Window,
                       options: AccountFilter) -> list[Entry]:
    """An account's posts and boosts that the viewer may see, newest first."""
    post_bounds, _ = window_sql("o.id", 3, window)
    boost_bounds, _ = window_sql("an.id", 3, window)
    _, order = window_sql("entry_id", 3, window)
    extra = (" AND (o.in_reply_to_uri IS NULL OR EXISTS (SELECT 1 FROM objects p WHERE p.uri = o.in_reply_to_uri "
             "AND p.actor_id = o.actor_id))" if options.exclude_replies else "")
    extra += f" AND {_HAS_MEDIA}" if options.only_media else ""
    boosts = "" if options.exclude_reblogs or options.only_media else f"""
        UNION ALL
        (SELECT an.id, o.id, an.id FROM announces an JOIN objects o ON o.uri = an.object_uri
         WHERE an.actor_id = $1 AND {boost_bounds} AND o.visibility IN ('public', 'unlisted')
           AND {visible_sql('$2')} {order.replace('entry_id', 'an.id')})"""
    rows = await conn.fetch(
        f"""SELECT entry_id AS cursor, entry_id, object_id, reblog_id FROM (
              (SELECT o.id AS entry_id, o.id AS object_id, NULL::bigint AS reblog_id FROM objects o
               WHERE o.actor_id = $1 AND {post_bounds}{extra} AND {visible_sql('$2')}
               {order.replace('entry_id', 'o.id')}){boosts}) AS x
            {order}""",
        account_id, viewer_id, *window.params(),
    )
    return _entries(rows)


async def read_pinned(conn: asyncpg.Connection, account_id: int, viewer_id: int | None) -> list[Entry]:
    """An account's pinned posts the viewer may see, latest pin first."""
    rows = await conn.fetch(
        f"""SELECT pn.id AS cursor, o.id AS entry_id, o.id AS object_id, NULL::bigint AS reblog_id
            FROM pins pn JOIN objects o ON o.id = pn.object_id
            WHERE pn.account_id = $1 AND {visible_sql('$2')} ORDER BY pn.id DESC""",
        account_id, viewer_id,
    )
    return _entries(rows)


async def read_favourites(conn: asyncpg.Connection, viewer_id: int, window: Window) -> list[Entry]:
    """Posts the viewer favourited, latest favourite first (paged by favourite)."""
    bounds, order = window_sql("l.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT l.id AS cursor, o.id AS entry_id, o.id AS object_id, NULL::bigint AS reblog_id
            FROM likes l JOIN objects o ON o.uri = l.object_uri
            WHERE l.actor_id = $1 AND {bounds} AND {visible_sql('$1')} {order}""",
        viewer_id, *window.params(),
    )
    return _entries(rows)


async def read_bookmarks(conn: asyncpg.Connection, viewer_id: int, window: Window) -> list[Entry]:
    """Posts the viewer bookmarked, latest bookmark first (paged by bookmark)."""
    bounds, order = window_sql("b.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT b.id AS cursor, o.id AS entry_id, o.id AS object_id, NULL::bigint AS reblog_id
            FROM bookmarks b JOIN objects o ON o.id = b.object_id
            WHERE b.account_id = $1 AND {bounds} AND {visible_sql('$1')} {order}""",
        viewer_id, *window.params(),
    )
    return _entries(rows)


async def read_ancestors(conn: asyncpg.Connection, object_id: int, viewer_id: int | None) -> list[Entry]:
    """The stored posts a post replies to, root first, as far as the viewer may see them."""
    rows = await conn.fetch(
        f"""WITH RECURSIVE up(id, parent_uri, depth) AS (
                SELECT id, in_reply_to_uri, 0 FROM objects WHERE id = $1
                UNION ALL
                SELECT p.id, p.in_reply_to_uri, up.depth + 1 FROM up JOIN objects p ON p.uri = up.parent_uri
                WHERE up.depth < {MAX_THREAD_DEPTH})
            SELECT o.id FROM up JOIN objects o ON o.id = up.id
            WHERE up.depth > 0 AND {visible_sql('$2')} ORDER BY up.depth DESC""",
        object_id, viewer_id,
    )
    return [Entry(r["id"], r["id"], r["id"]) for r in rows]


async def read_descendants(conn: asyncpg.Connection, object_id: int, viewer_id: int | None) -> list[Entry]:
    """The stored replies to a post and their replies, oldest first, as far as the viewer may see them."""
    rows = await conn.fetch(
        f"""WITH RECURSIVE down(id, uri, depth) AS (
                SELECT id, uri, 0 FROM objects WHERE id = $1
                UNION ALL
                SELECT c.id, c.uri, down.depth + 1 FROM down JOIN objects c ON c.in_reply_to_uri = down.uri
                WHERE down.depth < {MAX_THREAD_DEPTH})
            SELECT o.id FROM down JOIN objects o ON o.id = down.id
            WHERE down.depth > 0 AND {visible_sql('$2')} ORDER BY o.id LIMIT {MAX_DESCENDANTS}""",
        object_id, viewer_id,
    )
    return [Entry(r["id"], r["id"], r["id"]) for r in rows]


async def read_reactors(conn: asyncpg.Connection, table: str, object_id: int, window: Window) -> list[tuple[int, int]]:
    """(cursor, actor id) of who favourited (`likes`) or boosted (`announces`) a post, latest first."""
    assert table in ("likes", "announces")
    bounds, order = window_sql("x.id", 2, window)
    rows = await conn.fetch(
        f"""SELECT x.id, x.actor_id FROM {table} x JOIN actors a ON a.id = x.actor_id AND a.deleted_at IS NULL
            WHERE x.object_uri = (SELECT uri FROM objects WHERE id = $1) AND {bounds} {order}""",
        object_id, *window.params(),
    )
    return [(r["id"], r["actor_id"]) for r in rows]
