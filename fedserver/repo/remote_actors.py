"""SQL for remote actors: storing what their servers serve, and finding actors by key or by `name@domain`."""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.parse import ParseError, RemoteActor

from .actors import get_actor_by_uri


async def get_actor_by_handle(conn: asyncpg.Connection, username: str, domain: str) -> Actor | None:
    """A known actor (local or remote) by case-insensitive name and exact domain."""
    uri = await conn.fetchval(
        "SELECT uri FROM actors WHERE lower(username) = lower($1) AND domain = $2", username, domain.lower()
    )
    return await get_actor_by_uri(conn, uri) if uri else None


async def get_actors_by_handles(conn: asyncpg.Connection, handles: list[tuple[str, str]]) -> dict[str, Actor]:
    """Known, non-deleted actors for `(name, domain)` pairs, keyed by `name@domain` in lower case."""
    found: dict[str, Actor] = {}
    for username, domain in handles:
        actor = await get_actor_by_handle(conn, username, domain)
        if actor is not None and actor.deleted_at is None:
            found[f"{username}@{domain}".lower()] = actor
    return found


class KeyClaimed(ParseError):
    """The actor's document names a key id that another actor holds."""


async def upsert_remote_actor(conn: asyncpg.Connection, actor: RemoteActor, *, update_key: bool = True,
                              key_verified: bool = False) -> Actor:
    """Insert or refresh a remote actor row; `update_key=False` keeps the stored key.

    A key id belongs to one actor. When another actor holds it, the claim is refused (KeyClaimed),
    unless `key_verified`: the key id itself was dereferenced to this actor, which then takes it
    over from the earlier claimant (left with an unusable key id until it is fetched again).
    """
    if update_key:
        holder = await conn.fetchval("SELECT uri FROM actors WHERE key_id = $1 AND uri <> $2", actor.key_id, actor.id)
        if holder is not None:
            if not key_verified:
                raise KeyClaimed(f"the key {actor.key_id} belongs to another actor, {holder}")
            await conn.execute("UPDATE actors SET key_id = 'invalid:' || id WHERE key_id = $1 AND uri <> $2 "
                               "AND NOT is_local", actor.key_id, actor.id)
    key_sql = "key_id = EXCLUDED.key_id, public_key_pem = EXCLUDED.public_key_pem," if update_key else ""
    row_id = await conn.fetchval(
        f"""INSERT INTO actors (uri, is_local, username, domain, actor_type, display_name, summary, url,
                   inbox_uri, outbox_uri, shared_inbox_uri, followers_uri, following_uri, featured_uri,
                   key_id, public_key_pem, manually_approves_followers, discoverable, indexable,
                   icon_url, image_url, fetched_at)
            VALUES ($1, false, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                    $19, $20, now())
            ON CONFLICT (uri) DO UPDATE SET
                username = EXCLUDED.username, actor_type = EXCLUDED.actor_type,
                display_name = EXCLUDED.display_name, summary = EXCLUDED.summary, url = EXCLUDED.url,
                inbox_uri = EXCLUDED.inbox_uri, outbox_uri = EXCLUDED.outbox_uri,
                shared_inbox_uri = EXCLUDED.shared_inbox_uri, followers_uri = EXCLUDED.followers_uri,
                following_uri = EXCLUDED.following_uri, featured_uri = EXCLUDED.featured_uri, {key_sql}
                manually_approves_followers = EXCLUDED.manually_approves_followers,
                discoverable = EXCLUDED.discoverable, indexable = EXCLUDED.indexable,
                icon_url = EXCLUDED.icon_url, image_url = EXCLUDED.image_url,
                fetched_at = CASE WHEN $21 THEN now() ELSE actors.fetched_at END, updated_at = now()
            WHERE NOT actors.is_local
            RETURNING id""",
        actor.id, actor.username, actor.domain, actor.type, actor.display_name, actor.summary, actor.url,
        actor.inbox, actor.outbox, actor.shared_inbox, actor.followers, actor.following, actor.featured,
        actor.key_id, actor.public_key_pem, actor.manually_approves_followers, actor.discoverable,
        actor.indexable, actor.icon_url, actor.image_url, update_key,
    )
    if row_id is None:
        raise ParseError("that id belongs to a local actor")
    return await get_actor_by_uri(conn, actor.id)  # type: ignore[return-value]


async def get_actor_by_key_id(conn: asyncpg.Connection, key_id: str) -> Actor | None:
    """The non-deleted actor whose key has this id."""
    row = await conn.fetchrow("SELECT uri FROM actors WHERE key_id = $1 AND deleted_at IS NULL LIMIT 1", key_id)
    return await get_actor_by_uri(conn, row["uri"]) if row else None
