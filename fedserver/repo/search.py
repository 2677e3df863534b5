"""SQL for search: the post n-gram index (`post_search`), and status, account and hashtag queries.

`index_post_text` is what post writers call in their own transaction (local posts, inbound
Creates and Updates), with the content as stored: sanitized remote HTML or our own. Only public and unlisted posts are indexed; a post that becomes
private loses its entry. Queries never return deleted posts or accounts, posts of authors
who did not opt in to search (`indexable`, Mastodon 4.2) unless they are the viewer's own,
or anything across a block.
"""

from __future__ import annotations

import asyncpg

from activities.actor import Actor

from ..search.ngrams import normalize, post_terms
from .actors import _ACTOR_COLUMNS, _actor

INDEXED_VISIBILITIES = ("public", "unlisted")
_SEPARATOR = "\x1f"
_VISIBLE_ACTOR = "a.deleted_at IS NULL AND coalesce(l.role, 'user') <> 'instance'"
_NOT_BLOCKED = """($1::bigint IS NULL OR NOT EXISTS (
                      SELECT 1 FROM blocks b WHERE (b.actor_id = $1 AND b.target_id = a.id)
                                                OR (b.actor_id = a.id AND b.target_id = $1)))"""


async def index_post_text(conn: asyncpg.Connection, object_id: int, html: str) -> None:
    """(Re)index a post's text in the caller's transaction; non-public posts are removed from the index."""
    await index_posts_text(conn, [(object_id, html)])


async def index_posts_text(conn: asyncpg.Connection, posts: list[tuple[int, str]]) -> None:
    """`index_post_text` for many (object id, html) pairs, in three statements whatever their number."""
    rows = await conn.fetch("SELECT id, visibility, name, summary FROM objects WHERE id = ANY($1::bigint[])",
                            [object_id for object_id, _ in posts])
    found = {row["id"]: row for row in rows}
    indexed = [(object_id, html) for object_id, html in posts
               if object_id in found and found[object_id]["visibility"] in INDEXED_VISIBILITIES]
    if len(indexed) < len(posts):
        kept = {object_id for object_id, _ in indexed}
        await conn.execute("DELETE FROM post_search WHERE object_id = ANY($1::bigint[])",
                           [object_id for object_id, _ in posts if object_id not in kept])
    if not indexed:
        return
    await index_posts_terms(conn, [(object_id, post_terms(html, found[object_id]["name"], found[object_id]["summary"]))
                                   for object_id, html in indexed])


async def index_posts_terms(conn: asyncpg.Connection, posts: list[tuple[int, list[str]]]) -> None:
    """(Re)index posts by terms already made (`post_terms`, of posts known to be public or unlisted), in one statement."""
    if not posts:
        return
    # One text per post: its terms joined by a unit separator (terms are letters and digits only).
    await conn.execute(
        """INSERT INTO post_search (object_id, terms)
           SELECT u.id, string_to_array(u.terms, chr(31)) FROM unnest($1::bigint[], $2::text[]) AS u(id, terms)
           ON CONFLICT (object_id) DO UPDATE SET terms = EXCLUDED.terms""",
        [object_id for object_id, _ in posts], [_SEPARATOR.join(terms) for _, terms in posts],
    )


async def search_statuses(conn: asyncpg.Connection, terms: list[str], *, viewer_id: int | None,
                          account_id: int | None, limit: int, offset: int) -> list[int]:
    """Ids of the visible indexed posts holding every term, newest first."""
    rows = await conn.fetch(
        f"""SELECT o.id FROM post_search s
              JOIN objects o ON o.id = s.object_id
              JOIN actors a ON a.id = o.actor_id
              LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE s.terms @> $2::text[] AND o.deleted_at IS NULL AND {_VISIBLE_ACTOR}
              AND o.visibility IN ('public', 'unlisted')
              AND (a.indexable OR a.id = $1)
              AND ($3::bigint IS NULL OR o.actor_id = $3)
              AND {_NOT_BLOCKED}
            ORDER BY o.published_at DESC, o.id DESC LIMIT $4 OFFSET $5""",
        viewer_id, terms, account_id, limit, offset,
    )
    return [row["id"] for row in rows]


def like_prefix(text: str) -> str:
    """A LIKE pattern matching strings that start with `text` (wildcards in it escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search_accounts(conn: asyncpg.Connection, query: str, *, domain: str | None, viewer_id: int | None,
                          following: bool, limit: int, offset: int) -> list[Actor]:
    """Accounts whose name, or a word of whose display name, starts with `query`; exact names first."""
    needle = normalize(query)
    rows = await conn.fetch(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE {_VISIBLE_ACTOR}
              AND (lower(a.username) LIKE $2 OR ($3::text IS NULL AND (lower(a.display_name) LIKE $2
                   OR lower(a.display_name) LIKE '% ' || $2)))
              AND ($3::text IS NULL OR a.domain = $3)
              AND (NOT $4 OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = a.id
                                                              AND f.state = 'accepted'))
              AND {_NOT_BLOCKED}
            ORDER BY lower(a.username) = $5 DESC, a.is_local DESC, lower(a.username), a.domain, a.id
            LIMIT $6 OFFSET $7""",
        viewer_id, like_prefix(needle), domain.lower() if domain else None, following, needle, limit, offset,
    )
    return [_actor(row) for row in rows]  # type: ignore[misc]


async def search_tags(conn: asyncpg.Connection, prefix: str, *, limit: int, offset: int) -> list[str]:
    """Names of hashtags starting with `prefix` (already normalized), shortest first, as Mastodon orders them."""
    rows = await conn.fetch(
        "SELECT name FROM tags WHERE name LIKE $1 ORDER BY length(name), name LIMIT $2 OFFSET $3",
        like_prefix(prefix), limit, offset,
    )
    return [row["name"] for row in rows]


async def get_visible_account_by_url(conn: asyncpg.Connection, url: str) -> Actor | None:
    """A visible account whose id or profile URL is `url`."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE (a.uri = $1 OR a.url = $1) AND {_VISIBLE_ACTOR}
            ORDER BY a.uri = $1 DESC LIMIT 1""",
        url,
    )
    return _actor(row)


async def get_public_post_id_by_url(conn: asyncpg.Connection, url: str, viewer_id: int | None) -> int | None:
    """The id of a live public or unlisted post whose id or URL is `url`, unless a block stands between."""
    return await conn.fetchval(
        f"""SELECT o.id FROM objects o JOIN actors a ON a.id = o.actor_id
              LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE (o.uri = $2 OR o.url = $2) AND o.deleted_at IS NULL AND {_VISIBLE_ACTOR}
              AND o.visibility IN ('public', 'unlisted') AND {_NOT_BLOCKED}
            ORDER BY o.uri = $2 DESC LIMIT 1""",
        viewer_id, url,
    )
