"""SQL of the public web pages: an account's posts and articles, the instance's makers and newest posts.

Only what anyone may read: public and unlisted posts (Mastodon shows both on a profile),
never deleted ones, never replies (a profile lists what its owner started), and never the
Notes that carry a product listing (those are the shop's). Pages are numbered; a caller
asks for one row more than it shows to know whether a next page exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .moderation import hidden_actor_sql

# What an account shows on its profile (posts) and on its blog (articles).
KINDS = {"posts": ("Note", "Question", "Page"), "blog": ("Article",)}
KINDS["all"] = KINDS["posts"] + KINDS["blog"]


@dataclass(frozen=True)
class PagePost:
    """A post as a page lists it: its document keeps the attachments and the title."""

    id: int
    uri: str
    object_type: str
    author_id: int
    name: str | None
    summary: str | None
    content: str
    data: dict
    published_at: datetime
    updated_at: datetime | None


_POST_COLUMNS = """o.id, o.uri, o.object_type, o.actor_id AS author_id, o.name, o.summary, o.content, o.data,
                   o.published_at, o.updated_at"""
_POST = f"{_POST_COLUMNS} FROM objects o"
_SHOWN = f"""o.visibility IN ('public', 'unlisted') AND o.deleted_at IS NULL AND o.in_reply_to_uri IS NULL
            AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.object_id = o.id) AND NOT {hidden_actor_sql('o.actor_id')}"""
# The discovery page leaves silenced accounts and domains out too.
_NOT_SILENCED = hidden_actor_sql("o.actor_id", silenced_too=True)


async def account_posts(conn: asyncpg.Connection, actor_id: int, kind: str, *, limit: int,
                        offset: int = 0) -> list[PagePost]:
    """An account's posts of one kind (`posts`, `blog` or `all`), newest first."""
    rows = await conn.fetch(
        f"""SELECT {_POST} WHERE o.actor_id = $1 AND o.object_type = ANY($2::text[]) AND {_SHOWN}
            ORDER BY o.published_at DESC, o.id DESC LIMIT $3 OFFSET $4""",
        actor_id, list(KINDS[kind]), limit, offset,
    )
    return [PagePost(**dict(row)) for row in rows]


async def newest_posts(conn: asyncpg.Connection, *, limit: int) -> list[tuple[PagePost, str]]:
    """The newest public posts and articles of local accounts, each with its author's name."""
    rows = await conn.fetch(
        f"""SELECT {_POST} JOIN actors a ON a.id = o.actor_id
            WHERE o.is_local AND o.visibility = 'public' AND o.object_type = ANY($1::text[])
              AND a.deleted_at IS NULL AND {_SHOWN}
            ORDER BY o.published_at DESC, o.id DESC LIMIT $2""",
        list(KINDS["all"]), limit,
    )
    names = await conn.fetch("SELECT id, username FROM actors WHERE id = ANY($1::bigint[])",
                             list({r["author_id"] for r in rows}))
    username = {r["id"]: r["username"] for r in names}
    return [(PagePost(**dict(row)), username[row["author_id"]]) for row in rows]


async def network_posts(conn: asyncpg.Connection, *, limit: int, offset: int = 0) -> list[tuple[PagePost, str]]:
    """The newest public posts and articles this server knows, local and remote, each with its author's
    `name@domain`."""
    rows = await conn.fetch(
        f"""SELECT {_POST_COLUMNS}, a.username || '@' || a.domain AS acct FROM objects o JOIN actors a ON a.id = o.actor_id
            WHERE o.visibility = 'public' AND o.object_type = ANY($1::text[]) AND a.deleted_at IS NULL AND {_SHOWN}
              AND NOT {_NOT_SILENCED}
            ORDER BY o.published_at DESC, o.id DESC LIMIT $2 OFFSET $3""",
        list(KINDS["all"]), limit, offset,
    )
    return [(PagePost(**{k: v for k, v in dict(row).items() if k != "acct"}), row["acct"]) for row in rows]


async def network_posts_by_uri(conn: asyncpg.Connection, uris: list[str]) -> dict[str, tuple[PagePost, str]]:
    """The public posts and articles among `uris` that a visitor may see, by uri, each with its author's
    `name@domain`."""
    rows = await conn.fetch(
        f"""SELECT {_POST_COLUMNS}, a.username || '@' || a.domain AS acct FROM objects o JOIN actors a ON a.id = o.actor_id
            WHERE o.uri = ANY($1::text[]) AND o.visibility = 'public' AND o.object_type = ANY($2::text[])
              AND a.deleted_at IS NULL AND {_SHOWN} AND NOT {_NOT_SILENCED}""",
        uris, list(KINDS["all"]),
    )
    return {row["uri"]: (PagePost(**{k: v for k, v in dict(row).items() if k != "acct"}), row["acct"]) for row in rows}


@dataclass(frozen=True)
class Maker:
    """A local account as the instance's front page lists it."""

    username: str
    display_name: str
    icon_url: str | None
    posts: int


async def makers(conn: asyncpg.Connection, *, limit: int) -> list[Maker]:
    """The instance's local accounts that may be listed (discoverable, not deleted), most recently active first
    (post counts and last post times kept by triggers, 0005)."""
    rows = await conn.fetch(
        """SELECT a.username, a.display_name, a.icon_url, coalesce(c.statuses_count, 0) AS posts
           FROM actors a JOIN local_accounts l ON l.actor_id = a.id
                LEFT JOIN account_counters c ON c.actor_id = a.id
           WHERE a.is_local AND a.deleted_at IS NULL AND l.role <> 'instance' AND a.discoverable
           ORDER BY c.last_status_at DESC NULLS LAST, a.id
           LIMIT $1""",
        limit,
    )
    return [Maker(**dict(row)) for row in rows]
