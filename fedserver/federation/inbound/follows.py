"""Inbound Follow, Accept and Reject of a Follow, Undo of a Follow, Block and Undo of a Block."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from activities.build import build_accept, build_reject, new_object_id
from activities.parse import InboundActivity, ref

from ...dispatch import DONE, InboundContext, Result, ignored
from ...repo import actors as actors_repo
from ...repo import home_feed
from ...repo import interactions as repo
from .. import feeds
from .common import local_actor, remote_actor

# Removes what an Undo undoes between (remote actor id, local actor id); True if there was something.
Remove = Callable[[asyncpg.Connection, int, int], Awaitable[bool]]


async def on_follow(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor follows a local one: accepted at once unless the account approves followers."""
    follower = await remote_actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        target = await local_actor(conn, act.object_id)
        if target is None:
            return ignored("the followed actor is not local")
        # Replies to one actor go to its personal inbox, as Mastodon does.
        if await repo.is_blocked(conn, target.id, follower.id):
            reject = build_reject(act.raw, target.uri, f"{target.uri}#rejects/follows/{new_object_id()}")
            await ctx.publisher.publish(conn, target, reject, [follower.inbox_uri], object_uri=act.id)
            return DONE
        automatic = not target.manually_approves_followers
        await repo.upsert_follow(conn, follower.id, target.id, act.id, accepted=automatic, activity=act.raw)
        await feeds.follow_stored(conn, follower.id, target.id)
        if automatic:
            accept = build_accept(act.raw, target.uri, f"{target.uri}#accepts/follows/{new_object_id()}")
            await ctx.publisher.publish(conn, target, accept, [follower.inbox_uri], object_uri=act.id)
    return DONE


def _answered_follow(act: InboundActivity) -> tuple[str | None, str | None, str | None]:
    """(follow id, follower uri, followee uri) of an Accept/Reject's object, embedded or by id."""
    if act.object is not None:
        return act.object_id, ref(act.object.get("actor")), ref(act.object.get("object"))
    return act.object_id, None, None


async def on_accept_follow(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor accepted a local account's follow request."""
    follow_id, follower_uri, followee_uri = _answered_follow(act)
    if followee_uri not in (None, act.actor):
        return ignored("the Accept is not from the followed actor")
    async with ctx.pool.acquire() as conn, conn.transaction():
        followee = await actors_repo.get_actor_by_uri(conn, act.actor)
        follower = await local_actor(conn, follower_uri) if follower_uri else None
        if followee is None:
            return ignored("unknown actor")
        done = await repo.accept_follow(conn, activity_uri=follow_id,
                                        follower_id=follower.id if follower else None, followee_id=followee.id)
        for follower_id in await home_feed.accepted_followers(conn, followee.id, follow_id,
                                                              follower.id if follower else None):
            await feeds.follow_accepted(conn, follower_id, followee.id)
    return DONE if done else ignored("no matching follow request")


async def on_reject_follow(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor refused (or ended) a local account's follow: its posts leave that home timeline."""
    follow_id, follower_uri, followee_uri = _answered_follow(act)
    if followee_uri not in (None, act.actor):
        return ignored("the Reject is not from the followed actor")
    async with ctx.pool.acquire() as conn, conn.transaction():
        followee = await actors_repo.get_actor_by_uri(conn, act.actor)
        if followee is None:
            return ignored("unknown actor")
        follower_id = await repo.get_answered_follower(conn, followee.id, follow_id, follower_uri)
        if follower_id is None:
            return ignored("no matching follow")
        await repo.delete_follow(conn, follower_id=follower_id, followee_id=followee.id)
        await feeds.follow_removed(conn, follower_id, followee.id)
    return DONE


async def _undo_towards_local(ctx: InboundContext, act: InboundActivity, remove: Remove, nothing: str) -> Result:
    """Undo of the sender's own embedded activity aimed at a local actor: `remove` it, if there was one."""
    if ref((act.object or {}).get("actor")) not in (None, act.actor):
        return ignored("an actor can only undo its own activities")
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None:
            return ignored("unknown actor")
        local = await local_actor(conn, ref((act.object or {}).get("object")))
        if local and await remove(conn, actor.id, local.id):
            return DONE
    return ignored(nothing)


async def on_undo_follow(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor stops following a local one (Undo with the Follow embedded)."""
    return await _undo_towards_local(
        ctx, act, lambda conn, actor_id, local_id: repo.delete_follow(conn, follower_id=actor_id, followee_id=local_id),
        "no such follow")


async def on_block(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor blocks a local one: follows end both ways, and its posts leave the local home timeline."""
    actor = await remote_actor(ctx, act.actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        target = await local_actor(conn, act.object_id)
        if target is None:
            return ignored("the blocked actor is not local")
        await repo.upsert_block(conn, actor.id, target.id, act.id)
        await repo.delete_follow(conn, follower_id=actor.id, followee_id=target.id)
        if await repo.delete_follow(conn, follower_id=target.id, followee_id=actor.id):
            await feeds.follow_removed(conn, target.id, actor.id)
    return DONE


async def on_undo_block(ctx: InboundContext, act: InboundActivity) -> Result:
    """A remote actor lifts its block of a local one."""
    return await _undo_towards_local(ctx, act, repo.delete_block, "no block")
