"""Inbound Create and Update of posts, Update of actors, and Delete of posts and actors."""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.parse import InboundActivity, RemotePost, parse_actor, parse_post, ref
from activities.text import tag_hashtags
from activities.urls import same_origin

from ...dispatch import DONE, InboundContext, Result, ignored
from ...repo import actors as actors_repo
from ...repo import interactions as repo
from ...repo import status_views
from ...repo.remote_actors import upsert_remote_actor
from .. import feeds
from .common import as_list, object_document, remote_actor


async def _relevant(conn: asyncpg.Connection, ctx: InboundContext, author: Actor, post: RemotePost) -> bool:
    """Mastodon keeps a remote post only if it concerns someone here."""
    if ctx.recipient_id is not None or await repo.has_local_followers(conn, author.id):
        return True
    if post.in_reply_to and (owner := await repo.get_object_owner(conn, post.in_reply_to)) and owner[1]:
        return True
    addressed = list(post.mentions) + [ref(v) for v in as_list(post.raw.get("to")) + as_list(post.raw.get("cc"))]
    return bool(await repo.local_actor_ids(conn, [a for a in addressed if a]))


async def post_stored(conn: asyncpg.Connection, post: RemotePost, *, fetched: bool = False) -> None:
    """Mentions, hashtags, home timelines and notifications of a newly stored remote post."""
    object_id = await status_views.get_object_id(conn, post.id)
    hook = feeds.post_fetched if fetched else feeds.post_stored
    await hook(conn, object_id, mention_uris=post.mentions, hashtags=tag_hashtags(post.raw.get("tag")))


async def on_create_post(ctx: InboundContext, act: InboundActivity) -> Result:
    """A new remote post (embedded, or fetched from its own server), kept when it concerns someone here."""
    author = await remote_actor(ctx, act.actor)
    post = parse_post(await object_document(ctx, act), followers_uri=author.followers_uri)
    if post.attributed_to != act.actor or not same_origin(post.id, act.actor):
        return ignored("the post is not the actor's own")
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.is_tombstoned(conn, post.id, act.actor):
            return ignored("the post was deleted before it arrived")
        if not await _relevant(conn, ctx, author, post):
            return ignored("nobody here follows or is addressed")
        if await repo.insert_remote_post(conn, post, author.id):
            await post_stored(conn, post)
            await ctx.post_stored(conn, post, author)
    return DONE


async def on_update_actor(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor's new profile (its key only ever changes by our own fetch: checklist #11)."""
    if act.object_id != act.actor:
        return ignored("an actor can only update itself")
    actor = parse_actor(act.object or {})
    async with ctx.pool.acquire() as conn:
        await upsert_remote_actor(conn, actor, update_key=False)
    return DONE


async def on_update_post(ctx: InboundContext, act: InboundActivity) -> Result:
    """An edit of a stored remote post by its own author."""
    author = await remote_actor(ctx, act.actor)
    post = parse_post(act.object or {}, followers_uri=author.followers_uri)
    if post.attributed_to != act.actor:
        return ignored("an actor can only edit its own posts")
    async with ctx.pool.acquire() as conn, conn.transaction():
        changed = await repo.update_remote_post(conn, post, author.id)
        if changed:
            await feeds.post_edited(conn, await status_views.get_object_id(conn, post.id), mention_uris=post.mentions,
                                    hashtags=tag_hashtags(post.raw.get("tag")))
            await ctx.post_stored(conn, post, author)
    return DONE if changed else ignored("unknown post")


async def on_update_reference(ctx: InboundContext, act: InboundActivity) -> Result:
    """Mastodon applies only Updates that embed the new version."""
    return ignored("Update without an embedded object")


async def on_delete(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor deleted itself (its follows go) or one of its posts (a tombstone keeps its id)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None or actor.is_local:
            return ignored("unknown actor")
        if act.object_id == act.actor:
            await repo.delete_follows_of(conn, actor.id)
            await repo.mark_actor_gone(conn, actor.id)
            return DONE
        owner = await repo.get_object_owner(conn, act.object_id)
        if owner is not None and owner[0] != actor.id:
            return ignored("the object is another actor's")
        await repo.delete_object(conn, act.object_id, actor.id)
        await repo.insert_tombstone(conn, act.object_id, act.actor, owner=owner is not None)
    return DONE
