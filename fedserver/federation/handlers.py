"""One handler per inbound activity type. Each decides, then writes in one transaction.

Handlers return "done" or "ignored: <why>". Network fetches (an unknown actor, a post
given by reference) happen before the transaction opens, within the activity's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg

from activities.actor import Actor
from activities.build import build_accept, build_reject, new_object_id
from activities.parse import (
    InboundActivity,
    ParseError,
    parse_activity,
    parse_actor,
    parse_post,
    ref,
)
from activities.text import tag_hashtags
from activities.urls import same_origin

from ..config import Settings
from ..net.http import FetchBudget, HttpClient, Signer
from ..repo import actors as actors_repo
from ..repo import home_feed, status_views
from ..repo import interactions as repo
from . import feeds
from .boosted import fetch_boosted_post
from .fanout import deliver
from .remote import ensure_remote_actor, upsert_remote_actor


@dataclass
class HandlerContext:
    """What a handler may use: the database, the HTTP client and the activity's fetch budget."""

    pool: asyncpg.Pool
    settings: Settings
    http: HttpClient
    signer: Signer
    budget: FetchBudget
    recipient_id: int | None


Handler = Callable[[HandlerContext, InboundActivity], Awaitable[str]]


async def _actor(ctx: HandlerContext, uri: str) -> Actor:
    return await ensure_remote_actor(ctx.pool, ctx.http, ctx.signer, uri, ctx.budget)


async def _local(conn: asyncpg.Connection, uri: str | None) -> Actor | None:
    actor = await actors_repo.get_actor_by_uri(conn, uri) if uri else None
    return actor if actor and actor.is_local and actor.deleted_at is None else None


def _inbox_of(actor: Actor) -> str:
    return actor.inbox_uri  # replies to one actor go to its personal inbox, as Mastodon does


async def on_follow(ctx: HandlerContext, act: InboundActivity) -> str:
    follower = await _actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        target = await _local(conn, act.object_id)
        if target is None:
            return "ignored: the followed actor is not local"
        if await repo.is_blocked(conn, target.id, follower.id):
            reject = build_reject(act.raw, target.uri, f"{target.uri}#rejects/follows/{new_object_id()}")
            await deliver(conn, sender=target, activity=reject, inboxes=[_inbox_of(follower)])
            return "done"
        automatic = not target.manually_approves_followers
        await repo.upsert_follow(conn, follower.id, target.id, act.id, accepted=automatic)
        await feeds.follow_stored(conn, follower.id, target.id)
        if automatic:
            accept = build_accept(act.raw, target.uri, f"{target.uri}#accepts/follows/{new_object_id()}")
            await deliver(conn, sender=target, activity=accept, inboxes=[_inbox_of(follower)])
    return "done"


def _embedded_follow(act: InboundActivity) -> tuple[str | None, str | None, str | None]:
    """(follow id, follower uri, followee uri) of an Accept/Reject's object, embedded or by id."""
    if act.object is not None:
        return act.object_id, ref(act.object.get("actor")), ref(act.object.get("object"))
    return act.object_id, None, None


async def on_accept(ctx: HandlerContext, act: InboundActivity) -> str:
    follow_id, follower_uri, followee_uri = _embedded_follow(act)
    if followee_uri not in (None, act.actor):
        return "ignored: the Accept is not from the followed actor"
    async with ctx.pool.acquire() as conn, conn.transaction():
        followee = await actors_repo.get_actor_by_uri(conn, act.actor)
        follower = await _local(conn, follower_uri) if follower_uri else None
        if followee is None:
            return "ignored: unknown actor"
        done = await repo.accept_follow(conn, activity_uri=follow_id,
                                        follower_id=follower.id if follower else None, followee_id=followee.id)
        for follower_id in await home_feed.accepted_followers(conn, followee.id, follow_id,
                                                              follower.id if follower else None):
            await feeds.follow_accepted(conn, follower_id, followee.id)
    return "done" if done else "ignored: no matching follow request"


async def on_reject(ctx: HandlerContext, act: InboundActivity) -> str:
    follow_id, follower_uri, followee_uri = _embedded_follow(act)
    if followee_uri not in (None, act.actor):
        return "ignored: the Reject is not from the followed actor"
    async with ctx.pool.acquire() as conn, conn.transaction():
        followee = await actors_repo.get_actor_by_uri(conn, act.actor)
        if followee is None:
            return "ignored: unknown actor"
        follower_id = await conn.fetchval(
            "SELECT follower_id FROM follows WHERE followee_id = $1 AND (activity_uri = $2 OR follower_id = "
            "(SELECT id FROM actors WHERE uri = $3 AND is_local))", followee.id, follow_id, follower_uri,
        )
        if follower_id is None:
            return "ignored: no matching follow"
        await repo.delete_follow(conn, follower_id=follower_id, followee_id=followee.id)
    return "done"


async def on_undo(ctx: HandlerContext, act: InboundActivity) -> str:
    inner = act.object or {}
    kind = inner.get("type")
    if inner and ref(inner.get("actor")) not in (None, act.actor):
        return "ignored: an actor can only undo its own activities"
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None:
            return "ignored: unknown actor"
        target = ref(inner.get("object")) if inner else None
        if kind == "Follow" or (not inner and await _undo_follow_by_id(conn, actor, act.object_id)):
            local = await _local(conn, target)
            if local and await repo.delete_follow(conn, follower_id=actor.id, followee_id=local.id):
                return "done"
            return "done" if not inner else "ignored: no such follow"
        if kind in ("Like", "Announce") or not inner:
            tables = {"Like": ["likes"], "Announce": ["announces"]}.get(kind, ["likes", "announces"])
            results = [await repo.delete_interaction(conn, t, actor.id, activity_uri=act.object_id,
                                                     object_uri=target) for t in tables]
            return "done" if any(results) else "ignored: nothing to undo"
        if kind == "Block":
            local = await _local(conn, target)
            return "done" if local and await repo.delete_block(conn, actor.id, local.id) else "ignored: no block"
    return f"ignored: Undo of {kind} is not supported"


async def _undo_follow_by_id(conn: asyncpg.Connection, actor: Actor, follow_id: str | None) -> bool:
    """For an Undo that names its Follow only by id: remove the follow with that id."""
    if not follow_id:
        return False
    status = await conn.execute("DELETE FROM follows WHERE follower_id = $1 AND activity_uri = $2", actor.id,
                                follow_id)
    return not status.endswith(" 0")


async def _object_document(ctx: HandlerContext, act: InboundActivity) -> dict:
    """The activity's object: embedded, or fetched from its own server (never trusted from a third party)."""
    if act.object is not None:
        return act.object
    if not act.object_id or not same_origin(act.object_id, act.actor):
        raise ParseError("the object must be on the actor's server")
    return await ctx.http.fetch_activitypub(act.object_id, signer=ctx.signer, budget=ctx.budget)


async def _relevant(conn: asyncpg.Connection, ctx: HandlerContext, author: Actor, post) -> bool:
    """Mastodon keeps a remote post only if it concerns someone here."""
    if ctx.recipient_id is not None or await repo.has_local_followers(conn, author.id):
        return True
    if post.in_reply_to and (owner := await repo.get_object_owner(conn, post.in_reply_to)) and owner[1]:
        return True
    addressed = list(post.mentions) + [ref(v) for v in _as_list(post.raw.get("to")) + _as_list(post.raw.get("cc"))]
    return bool(await repo.local_actor_ids(conn, [a for a in addressed if a]))


def _as_list(value) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


async def on_create(ctx: HandlerContext, act: InboundActivity) -> str:
    author = await _actor(ctx, act.actor)
    post = parse_post(await _object_document(ctx, act), followers_uri=author.followers_uri)
    if post.attributed_to != act.actor or not same_origin(post.id, act.actor):
        return "ignored: the post is not the actor's own"
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.is_tombstoned(conn, post.id):
            return "ignored: the post was deleted before it arrived"
        if not await _relevant(conn, ctx, author, post):
            return "ignored: nobody here follows or is addressed"
        if await repo.insert_remote_post(conn, post, author.id):
            await _post_stored(conn, post)
    return "done"


async def _post_stored(conn: asyncpg.Connection, post, *, fetched: bool = False) -> None:
    """Mentions, hashtags, home timelines and notifications of a newly stored remote post."""
    object_id = await status_views.get_object_id(conn, post.id)
    hook = feeds.post_fetched if fetched else feeds.post_stored
    await hook(conn, object_id, mention_uris=post.mentions, hashtags=tag_hashtags(post.raw.get("tag")))


async def on_update(ctx: HandlerContext, act: InboundActivity) -> str:
    document = act.object
    if document is None:
        return "ignored: Update without an embedded object"
    if act.object_id == act.actor:
        actor = parse_actor(document)
        async with ctx.pool.acquire() as conn:
            # The pushed document may not change the key (checklist #11): only our own fetch does.
            await upsert_remote_actor(conn, actor, update_key=False)
        return "done"
    author = await _actor(ctx, act.actor)
    post = parse_post(document, followers_uri=author.followers_uri)
    if post.attributed_to != act.actor:
        return "ignored: an actor can only edit its own posts"
    async with ctx.pool.acquire() as conn, conn.transaction():
        changed = await repo.update_remote_post(conn, post, author.id)
        if changed:
            await feeds.post_edited(conn, await status_views.get_object_id(conn, post.id), mention_uris=post.mentions,
                                    hashtags=tag_hashtags(post.raw.get("tag")))
    return "done" if changed else "ignored: unknown post"


async def on_delete(ctx: HandlerContext, act: InboundActivity) -> str:
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None or actor.is_local:
            return "ignored: unknown actor"
        if act.object_id == act.actor:
            await repo.delete_follows_of(conn, actor.id)
            await repo.mark_actor_gone(conn, actor.id)
            return "done"
        await repo.insert_tombstone(conn, act.object_id, act.actor)
        await repo.delete_object(conn, act.object_id, actor.id)
    return "done"


async def on_like(ctx: HandlerContext, act: InboundActivity) -> str:
    actor = await _actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        owner = await repo.get_object_owner(conn, act.object_id) if act.object_id else None
        if owner is None or not owner[1]:
            return "ignored: likes count only on local posts"
        if await repo.insert_like(conn, actor.id, act.object_id, act.id):
            await feeds.like_stored(conn, act.id)
    return "done"


async def on_announce(ctx: HandlerContext, act: InboundActivity) -> str:
    actor = await _actor(ctx, act.actor)
    if not act.object_id:
        return "ignored: Announce without an object"
    boosted = await fetch_boosted_post(ctx, act.object_id, actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if boosted and await repo.insert_remote_post(conn, boosted[0], boosted[1].id):
            await _post_stored(conn, boosted[0], fetched=True)
        if await repo.insert_announce(conn, actor.id, act.object_id, act.id):
            await feeds.announce_stored(conn, act.id)
    return "done"


async def on_block(ctx: HandlerContext, act: InboundActivity) -> str:
    actor = await _actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        target = await _local(conn, act.object_id)
        if target is None:
            return "ignored: the blocked actor is not local"
        await repo.upsert_block(conn, actor.id, target.id, act.id)
        await repo.delete_follow(conn, follower_id=actor.id, followee_id=target.id)
        await repo.delete_follow(conn, follower_id=target.id, followee_id=actor.id)
    return "done"


HANDLERS: dict[str, Handler] = {
    "Follow": on_follow,
    "Accept": on_accept,
    "Reject": on_reject,
    "Undo": on_undo,
    "Create": on_create,
    "Update": on_update,
    "Delete": on_delete,
    "Like": on_like,
    "Announce": on_announce,
    "Block": on_block,
}


async def handle(ctx: HandlerContext, body: dict) -> str:
    """Dispatch a stored activity to its handler; unknown types are recorded as ignored."""
    act = parse_activity(body)
    handler = HANDLERS.get(act.type)
    if handler is None:
        return f"ignored: {act.type} is not supported"
    return await handler(ctx, act)
