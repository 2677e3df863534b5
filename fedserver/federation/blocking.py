"""A local person blocks an account or a whole domain: what ends, and what the other servers are told.

A block (Mastodon's semantics) ends follows both ways, each told to the other server as Mastodon tells
it (Undo{Follow} of ours, Reject{Follow} of theirs), then sends `Block`; lifting it sends `Undo{Block}`.
What a block hides and refuses afterwards is read from the `blocks` table where posts, notifications,
follows, likes and orders are handled. A user-level domain block tells no one but removes the account's
followers on that domain (Reject{Follow} to each), as Mastodon does. Mutes are local only and live in
the API.
"""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.build import activity_uri, build_block, build_follow, build_reject, build_undo, new_object_id

from ..publish import Publisher
from ..repo import outgoing as outgoing_repo
from ..repo import published as published_repo
from ..repo import safety as safety_repo
from . import feeds
from .outbox import AlreadyDone, OutboxError, unfollow


async def block(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, target: Actor) -> str:
    """Block an account (in the caller's transaction); returns the Block id."""
    if target.id == actor.id:
        raise OutboxError("an account cannot block itself")
    block_id = activity_uri(actor.uri, "block", new_object_id())
    if not await safety_repo.insert_block(conn, actor.id, target.id, block_id):
        raise AlreadyDone(f"@{actor.username} already blocks {target.uri}")
    try:
        await unfollow(conn, publisher, actor, target)
    except AlreadyDone:
        pass  # not following it
    follow = await outgoing_repo.delete_follow(conn, target.id, actor.id)
    if follow is not None:
        await feeds.follow_removed(conn, target.id, actor.id)
        if not target.is_local:
            await _reject(conn, publisher, actor, target.uri, target.inbox_uri, follow.activity_uri,
                          await outgoing_repo.get_received_follow(conn, follow.activity_uri or ""))
    inboxes = [] if target.is_local else [target.inbox_uri]
    return await publisher.publish(conn, actor, build_block(actor.uri, block_id, target.uri), inboxes,
                                   object_uri=target.uri)


async def unblock(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, target: Actor) -> str:
    """Lift a block with Undo{Block}; returns the Undo id."""
    block_id = await safety_repo.take_block(conn, actor.id, target.id)
    if block_id is None:
        raise AlreadyDone(f"@{actor.username} does not block {target.uri}")
    stored = await published_repo.get_activity_by_uri(conn, block_id) if block_id else None
    undone = stored.data if stored else build_block(actor.uri, block_id or f"{actor.uri}#blocks/{target.id}",
                                                     target.uri)
    undo = build_undo(actor.uri, activity_uri(actor.uri, "undo", new_object_id()), undone)
    inboxes = [] if target.is_local else [target.inbox_uri]
    return await publisher.publish(conn, actor, undo, inboxes, object_uri=undone["id"])


async def block_domain(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, domain: str) -> int:
    """Block a domain for one account: its followers there are removed and told (Reject{Follow}); how many."""
    if not await safety_repo.insert_domain_block(conn, actor.id, domain):
        return 0
    removed = await safety_repo.take_followers_on_domain(conn, actor.id, domain)
    for follower in removed:
        await feeds.follow_removed(conn, follower.follower_id, actor.id)
        await _reject(conn, publisher, actor, follower.follower_uri, follower.inbox_uri, follower.activity_uri,
                      follower.activity)
    return len(removed)


async def _reject(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, follower_uri: str, inbox: str,
                  follow_uri: str | None, received: dict | None) -> None:
    """Tell a remote follower its follow of `actor` is over: Reject{Follow}, the Follow embedded as received."""
    follow_doc = received or build_follow(follower_uri, follow_uri or f"{follower_uri}#follows/{actor.id}",
                                          actor.uri)
    reject = build_reject(follow_doc, actor.uri, activity_uri(actor.uri, "reject", new_object_id()))
    await publisher.publish(conn, actor, reject, [inbox], object_uri=follow_doc.get("id"))
