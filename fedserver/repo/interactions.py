"""SQL for what remote actors do to local ones: follows, likes, announces, blocks, posts, tombstones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from activities.parse import RemotePost

from . import stream_events
from .search import INDEXED_VISIBILITIES, index_post_text, index_posts_terms, index_posts_text


async def upsert_follow(conn: asyncpg.Connection, follower_id: int, followee_id: int, activity_uri: str,
                        *, accepted: bool, activity: dict | None = None) -> None:
    """Record a follow and its Follow as received; a repeated Follow updates both (as Mastodon does)."""
    await conn.execute(
        """INSERT INTO follows (follower_id, followee_id, activity_uri, state, accepted_at, activity)
           VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'accepted' THEN now() END, $5)
           ON CONFLICT (follower_id, followee_id) DO UPDATE SET
               activity_uri = EXCLUDED.activity_uri, activity = EXCLUDED.activity,
               state = CASE WHEN follows.state = 'accepted' THEN 'accepted' ELSE EXCLUDED.state END,
               accepted_at = coalesce(follows.accepted_at, EXCLUDED.accepted_at)""",
        follower_id, followee_id, activity_uri, "accepted" if accepted else "pending", activity,
    )


async def accept_follow(conn: asyncpg.Connection, *, activity_uri: str | None, follower_id: int | None,
                        followee_id: int) -> bool:
    """Mark a follow accepted, found by its Follow id or by the pair; False if none matched."""
    status = await conn.execute(
        """UPDATE follows SET state = 'accepted', accepted_at = coalesce(accepted_at, now())
           WHERE followee_id = $3 AND (activity_uri = $1 OR follower_id = $2)""",
        activity_uri, follower_id, followee_id,
    )
    return not status.endswith(" 0")


async def delete_follow(conn: asyncpg.Connection, *, follower_id: int, followee_id: int) -> bool:
    """Remove a follow (Undo, Reject, Block); False if there was none."""
    status = await conn.execute(
        "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2", follower_id, followee_id
    )
    return not status.endswith(" 0")


async def get_answered_follower(conn: asyncpg.Connection, followee_id: int, follow_uri: str | None,
                                follower_uri: str | None) -> int | None:
    """The follower whose follow of `followee_id` an Accept or Reject answers: by Follow id or local follower."""
    return await conn.fetchval(
        """SELECT follower_id FROM follows
           WHERE followee_id = $1
             AND (activity_uri = $2 OR follower_id = (SELECT id FROM actors WHERE uri = $3 AND is_local))""",
        followee_id, follow_uri, follower_uri,
    )


async def delete_follow_by_activity(conn: asyncpg.Connection, follower_id: int, follow_uri: str) -> int | None:
    """Remove the follow made by the Follow with this id; the followee's id, None if there was none."""
    return await conn.fetchval(
        "DELETE FROM follows WHERE follower_id = $1 AND activity_uri = $2 RETURNING followee_id",
        follower_id, follow_uri,
    )


async def delete_follows_of(conn: asyncpg.Connection, actor_id: int) -> None:
    """Remove every follow to or from an actor (the actor was deleted)."""
    await conn.execute("DELETE FROM follows WHERE follower_id = $1 OR followee_id = $1", actor_id)


async def insert_like(conn: asyncpg.Connection, actor_id: int, object_uri: str, activity_uri: str) -> bool:
    """Record a like once; False when it was already recorded."""
    return bool(await insert_likes(conn, [(actor_id, object_uri, activity_uri)]))


async def insert_likes(conn: asyncpg.Connection, likes: list[tuple[int, str, str]]) -> set[str]:
    """Record likes (actor id, object uri, activity uri) once each, in order, in one statement; the activity uris
    of those new. A like by someone the post's author blocks is refused (not recorded)."""
    rows = await conn.fetch(
        """INSERT INTO likes (actor_id, object_uri, activity_uri)
           SELECT u.actor_id, u.object_uri, u.activity_uri
           FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS u(actor_id, object_uri, activity_uri, n)
           WHERE NOT EXISTS (SELECT 1 FROM objects o JOIN blocks b ON b.actor_id = o.actor_id
                             WHERE o.uri = u.object_uri AND b.target_id = u.actor_id)
           ORDER BY u.n
           ON CONFLICT DO NOTHING RETURNING activity_uri""",
        [like[0] for like in likes], [like[1] for like in likes], [like[2] for like in likes],
    )
    return {row["activity_uri"] for row in rows}


async def insert_announce(conn: asyncpg.Connection, actor_id: int, object_uri: str, activity_uri: str) -> bool:
    """Record an announce once; False when it was already recorded."""
    status = await conn.execute(
        """INSERT INTO announces (actor_id, object_uri, activity_uri) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""",
        actor_id, object_uri, activity_uri,
    )
    return status.endswith(" 1")


async def delete_interaction(conn: asyncpg.Connection, table: str, actor_id: int, *,
                             activity_uri: str | None, object_uri: str | None) -> bool:
    """Undo a like or announce by its activity id or by (actor, object)."""
    assert table in ("likes", "announces")
    status = await conn.execute(
        f"DELETE FROM {table} WHERE actor_id = $1 AND (activity_uri = $2 OR object_uri = $3)",
        actor_id, activity_uri, object_uri,
    )
    return not status.endswith(" 0")


async def upsert_block(conn: asyncpg.Connection, actor_id: int, target_id: int, activity_uri: str) -> None:
    """Record that `actor_id` blocks `target_id`."""
    await conn.execute(
        """INSERT INTO blocks (actor_id, target_id, activity_uri) VALUES ($1, $2, $3)
           ON CONFLICT (actor_id, target_id) DO UPDATE SET activity_uri = EXCLUDED.activity_uri""",
        actor_id, target_id, activity_uri,
    )


async def delete_block(conn: asyncpg.Connection, actor_id: int, target_id: int) -> bool:
    """Remove a block; False if there was none."""
    status = await conn.execute("DELETE FROM blocks WHERE actor_id = $1 AND target_id = $2", actor_id, target_id)
    return not status.endswith(" 0")


async def is_blocked(conn: asyncpg.Connection, blocker_id: int, target_id: int) -> bool:
    """True when `blocker_id` blocks `target_id`."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM blocks WHERE actor_id = $1 AND target_id = $2)", blocker_id, target_id
    )


async def is_tombstoned(conn: asyncpg.Connection, uri: str, actor_uri: str) -> bool:
    """True when `actor_uri` deleted an object with this id (another actor's Delete of it counts for nothing)."""
    return bool(await tombstoned_among(conn, [(uri, actor_uri)]))


async def tombstoned_among(conn: asyncpg.Connection, objects: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those (object id, actor id) pairs where that actor deleted an object with that id."""
    rows = await conn.fetch(
        """SELECT t.uri, t.actor_uri FROM tombstones t JOIN unnest($1::text[], $2::text[]) AS u(uri, actor_uri)
             ON t.uri = u.uri AND t.actor_uri = u.actor_uri""",
        [uri for uri, _ in objects], [actor for _, actor in objects])
    return {(row["uri"], row["actor_uri"]) for row in rows}


async def insert_tombstone(conn: asyncpg.Connection, uri: str, actor_uri: str, *, owner: bool) -> None:
    """Remember a deleted object's id so that a late Create from the same actor is ignored.

    `owner`: the actor's own stored object was deleted, which replaces a tombstone another actor
    wrote first for an id it did not know; a Delete of an unknown id never replaces one.
    """
    await conn.execute(
        """INSERT INTO tombstones (uri, actor_uri) VALUES ($1, $2)
           ON CONFLICT (uri) DO UPDATE SET actor_uri = EXCLUDED.actor_uri, deleted_at = now() WHERE $3""",
        uri, actor_uri, owner,
    )


async def insert_remote_post(conn: asyncpg.Connection, post: RemotePost, actor_id: int) -> bool:
    """Store a remote post once; False when it was already stored."""
    return bool(await insert_remote_posts(conn, [(post, actor_id)]))


async def insert_remote_posts(conn: asyncpg.Connection, posts: list[tuple[RemotePost, int]],
                              terms: Mapping[str, list[str]] | None = None,
                              data: Mapping[str, str] | None = None) -> dict[str, int]:
    """Store remote posts (each with its author's id) once each, in order, in one statement; {uri: id} of those new.

    `terms` may give the search terms of posts (by uri) made beforehand (`post_terms`), and `data` the JSON text of
    their `raw`, both out of the transaction: encoding 256 posts' JSON here took 4-6 ms of the event loop in one step.
    """
    unique = list({post.id: (post, author) for post, author in reversed(posts)}.values())[::-1]  # first of repeats
    encoded = data or {}
    columns = [[getattr(post, name) for post, _ in unique] for name in
               ("id", "type", "in_reply_to", "content", "name", "summary", "url", "visibility")]
    columns += [[encoded.get(post.id) or json.dumps(post.raw) for post, _ in unique],
                [post.published for post, _ in unique], [post.updated for post, _ in unique]]
    rows = await conn.fetch(
        """INSERT INTO objects (uri, object_type, actor_id, is_local, in_reply_to_uri, content, name, summary, url,
                                visibility, data, published_at, updated_at)
           SELECT u.uri, u.object_type, u.actor_id, false, u.in_reply_to, u.content, u.name, u.summary, u.url,
                  u.visibility, u.data::jsonb, coalesce(u.published_at, now()), u.updated_at
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[])
                WITH ORDINALITY AS u(actor_id, uri, object_type, in_reply_to, content, name, summary, url, visibility,
                                     data, published_at, updated_at, n)
           ORDER BY u.n
           ON CONFLICT (uri) DO NOTHING RETURNING id, uri""",
        [author for _, author in unique], *columns,
    )
    stored = {row["uri"]: row["id"] for row in rows}
    new = [post for post, _ in unique if post.id in stored]
    given = terms or {}
    await index_posts_terms(conn, [(stored[post.id], given[post.id]) for post in new
                                   if post.id in given and post.visibility in INDEXED_VISIBILITIES])
    rest = [post for post in new if post.id not in given]
    if rest:
        await index_posts_text(conn, [(stored[post.id], post.content) for post in rest])
    return stored


async def update_remote_post(conn: asyncpg.Connection, post: RemotePost, actor_id: int) -> bool:
    """Apply an edit by the post's own author; False if unknown or not theirs."""
    object_id = await conn.fetchval(
        """UPDATE objects SET content = $3, name = $4, summary = $5, url = $6, data = $7,
                              updated_at = coalesce($8, now())
           WHERE uri = $1 AND actor_id = $2 AND deleted_at IS NULL RETURNING id""",
        post.id, actor_id, post.content, post.name, post.summary, post.url, post.raw, post.updated,
    )
    if object_id is not None:
        await index_post_text(conn, object_id, post.content)
    return object_id is not None


async def delete_object(conn: asyncpg.Connection, uri: str, actor_id: int) -> bool:
    """Mark an actor's own object deleted (and stream the deletion)."""
    object_id = await conn.fetchval(
        "UPDATE objects SET deleted_at = now() WHERE uri = $1 AND actor_id = $2 AND deleted_at IS NULL RETURNING id",
        uri, actor_id,
    )
    if object_id is not None:
        await stream_events.publish_post_changed(conn, "delete", object_id)
    return object_id is not None


async def get_object_owner(conn: asyncpg.Connection, uri: str) -> tuple[int, bool] | None:
    """(actor id, is_local) of a stored, non-deleted object."""
    row = await conn.fetchrow("SELECT actor_id, is_local FROM objects WHERE uri = $1 AND deleted_at IS NULL", uri)
    return (row["actor_id"], row["is_local"]) if row else None


async def local_objects_among(conn: asyncpg.Connection, uris: list[str]) -> set[str]:
    """Those of `uris` that are local, non-deleted objects."""
    if not uris:
        return set()
    rows = await conn.fetch("SELECT uri FROM objects WHERE uri = ANY($1::text[]) AND is_local AND deleted_at IS NULL",
                            uris)
    return {row["uri"] for row in rows}


async def local_actors_among(conn: asyncpg.Connection, uris: list[str]) -> set[str]:
    """Those of `uris` that are local, non-deleted actors."""
    if not uris:
        return set()
    rows = await conn.fetch("SELECT uri FROM actors WHERE is_local AND deleted_at IS NULL AND uri = ANY($1::text[])",
                            uris)
    return {row["uri"] for row in rows}


async def has_local_followers(conn: asyncpg.Connection, actor_id: int) -> bool:
    """True when an accepted local follower exists."""
    return bool(await with_local_followers(conn, [actor_id]))


async def with_local_followers(conn: asyncpg.Connection, actor_ids: list[int]) -> set[int]:
    """Those of `actor_ids` that an accepted local follower follows."""
    rows = await conn.fetch(
        """SELECT u.id FROM unnest($1::bigint[]) AS u(id)
           WHERE EXISTS (SELECT 1 FROM follows f JOIN actors a ON a.id = f.follower_id
                         WHERE f.followee_id = u.id AND f.state = 'accepted' AND a.is_local)""",
        actor_ids,
    )
    return {row["id"] for row in rows}


async def mark_actor_gone(conn: asyncpg.Connection, actor_id: int, when: datetime | None = None) -> None:
    """Mark a remote actor deleted."""
    await conn.execute(
        "UPDATE actors SET deleted_at = coalesce($2, now()), updated_at = now() WHERE id = $1 AND NOT is_local",
        actor_id, when,
    )
