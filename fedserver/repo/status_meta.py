"""SQL for what the client API keeps around posts: mentions, hashtags, bookmarks, pins, the typed source,
and idempotency keys. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import asyncpg

IDEMPOTENCY_SECONDS = 3600


async def set_mentions(conn: asyncpg.Connection, object_id: int, actor_uris: list[str]) -> None:
    """Record which known actors a post mentions (replacing what an earlier version mentioned)."""
    await set_mentions_many(conn, [(object_id, actor_uris)])


async def set_mentions_many(conn: asyncpg.Connection, posts: list[tuple[int, list[str]]]) -> None:
    """`set_mentions` for many (object id, mentioned actor URIs) pairs, in two statements."""
    await conn.execute("DELETE FROM status_mentions WHERE object_id = ANY($1::bigint[])", [p[0] for p in posts])
    pairs = [(object_id, uri) for object_id, uris in posts for uri in uris]
    if not pairs:
        return
    await conn.execute(
        """INSERT INTO status_mentions (object_id, actor_id)
           SELECT u.object_id, a.id FROM unnest($1::bigint[], $2::text[]) AS u(object_id, uri)
           JOIN actors a ON a.uri = u.uri AND a.deleted_at IS NULL
           ON CONFLICT DO NOTHING""",
        [object_id for object_id, _ in pairs], [uri for _, uri in pairs],
    )


async def set_tags(conn: asyncpg.Connection, object_id: int, names: list[str]) -> None:
    """Record a post's normalised hashtags (replacing what an earlier version had)."""
    await set_tags_many(conn, [(object_id, names)])


async def set_tags_many(conn: asyncpg.Connection, posts: list[tuple[int, list[str]]]) -> None:
    """`set_tags` for many (object id, hashtag names) pairs, in at most three statements."""
    await conn.execute("DELETE FROM object_tags WHERE object_id = ANY($1::bigint[])", [p[0] for p in posts])
    pairs = [(object_id, name) for object_id, names in posts for name in names]
    if not pairs:
        return
    await conn.execute(
        "INSERT INTO tags (name) SELECT DISTINCT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
        [name for _, name in pairs],
    )
    await conn.execute(
        """INSERT INTO object_tags (tag_id, object_id)
           SELECT t.id, u.object_id FROM unnest($1::bigint[], $2::text[]) AS u(object_id, name)
           JOIN tags t ON t.name = u.name
           ON CONFLICT DO NOTHING""",
        [object_id for object_id, _ in pairs], [name for _, name in pairs],
    )


async def tag_exists(conn: asyncpg.Connection, name: str) -> bool:
    """True when some stored post used the hashtag."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tags WHERE name = $1)", name)


async def insert_source(conn: asyncpg.Connection, object_id: int, text: str, spoiler_text: str,
                        app_id: int | None) -> None:
    """Keep what the author typed, and with which app (replacing an earlier version's text)."""
    await conn.execute(
        """INSERT INTO status_sources (object_id, text, spoiler_text, app_id) VALUES ($1, $2, $3, $4)
           ON CONFLICT (object_id) DO UPDATE SET text = EXCLUDED.text, spoiler_text = EXCLUDED.spoiler_text""",
        object_id, text, spoiler_text, app_id,
    )


async def claim_idempotency_key(conn: asyncpg.Connection, account_id: int, key: str) -> bool:
    """Take a key for a new post; False when a post made with it in the last hour holds it."""
    status = await conn.execute(
        f"""INSERT INTO idempotency_keys AS k (account_id, key) VALUES ($1, $2)
            ON CONFLICT (account_id, key) DO UPDATE SET object_id = NULL, created_at = now()
            WHERE k.created_at < now() - interval '{IDEMPOTENCY_SECONDS} seconds'""",
        account_id, key,
    )
    return status.endswith(" 1")


async def bind_idempotency_key(conn: asyncpg.Connection, account_id: int, key: str, object_id: int) -> None:
    """Remember which post a claimed key made."""
    await conn.execute(
        "UPDATE idempotency_keys SET object_id = $3 WHERE account_id = $1 AND key = $2", account_id, key, object_id
    )


async def get_idempotent_post(conn: asyncpg.Connection, account_id: int, key: str) -> int | None:
    """The post made with this key in the last hour, if any."""
    return await conn.fetchval(
        f"""SELECT object_id FROM idempotency_keys WHERE account_id = $1 AND key = $2
            AND created_at >= now() - interval '{IDEMPOTENCY_SECONDS} seconds'""",
        account_id, key,
    )


async def insert_bookmark(conn: asyncpg.Connection, account_id: int, object_id: int) -> None:
    """Bookmark a post (again is fine)."""
    await conn.execute(
        "INSERT INTO bookmarks (account_id, object_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", account_id, object_id
    )


async def delete_bookmark(conn: asyncpg.Connection, account_id: int, object_id: int) -> None:
    """Remove a bookmark (none is fine)."""
    await conn.execute("DELETE FROM bookmarks WHERE account_id = $1 AND object_id = $2", account_id, object_id)


async def insert_pin(conn: asyncpg.Connection, account_id: int, object_id: int, max_pins: int) -> bool:
    """Pin one's own post unless `max_pins` are pinned already; True when it is pinned afterwards."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pins'), $1::int)", account_id % 2**31)
    row = await conn.fetchval(
        """INSERT INTO pins (account_id, object_id)
           SELECT $1, $2 WHERE (SELECT count(*) FROM pins WHERE account_id = $1) < $3
           ON CONFLICT DO NOTHING RETURNING id""",
        account_id, object_id, max_pins,
    )
    if row is not None:
        return True
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pins WHERE account_id = $1 AND object_id = $2)", account_id, object_id
    )


async def delete_pin(conn: asyncpg.Connection, account_id: int, object_id: int) -> None:
    """Unpin a post (not pinned is fine)."""
    await conn.execute("DELETE FROM pins WHERE account_id = $1 AND object_id = $2", account_id, object_id)


async def list_pinned_documents(conn: asyncpg.Connection, account_id: int, limit: int = 20) -> list[dict]:
    """The public and unlisted pinned posts of an actor as ActivityPub documents, latest pin first."""
    rows = await conn.fetch(
        """SELECT o.data - '@context' AS data FROM pins p JOIN objects o ON o.id = p.object_id
           WHERE p.account_id = $1 AND o.deleted_at IS NULL AND o.visibility IN ('public', 'unlisted')
           ORDER BY p.id DESC LIMIT $2""",
        account_id, limit,
    )
    return [row["data"] for row in rows]
