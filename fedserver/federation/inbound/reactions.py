"""Inbound Like and Announce of posts, and their Undo (embedded, or named by id only)."""

from __future__ import annotations

from activities.parse import InboundActivity, ref

from ...dispatch import DONE, BatchItem, InboundContext, Result, ignored
from ...net.http import FetchError
from ...repo import actors as actors_repo
from ...repo import interactions as repo
from .. import feeds
from .boosted import fetch_boosted_post
from .common import remote_actor, remote_actors
from .posts import post_fetched


async def on_like(ctx: InboundContext, act: InboundActivity) -> Result:
    """A like of a local post: counted, and its author notified."""
    [result] = await on_likes(ctx, [BatchItem(act, None)])
    if isinstance(result, Exception):
        raise result
    return result


async def on_likes(ctx: InboundContext, items: list[BatchItem]) -> list[Result | Exception]:
    """Likes (of one sender or many, in arrival order): those of local posts counted and their authors notified,
    in one transaction of three statements."""
    authors = await remote_actors(ctx, list(dict.fromkeys(item.activity.actor for item in items)))
    results: list[Result | Exception] = []
    async with ctx.pool.acquire() as conn, conn.transaction():
        local = await repo.local_objects_among(conn, [item.activity.object_id for item in items
                                                      if item.activity.object_id])
        likes: list[tuple[int, str, str]] = []
        for item in items:
            act, author = item.activity, authors[item.activity.actor]
            if isinstance(author, FetchError):
                results.append(author)  # retried alone, on the jobs schedule
            elif act.object_id not in local:
                results.append(ignored("likes count only on local posts"))
            else:
                likes.append((author.id, act.object_id, act.id))
                results.append(DONE)
        new = await repo.insert_likes(conn, likes) if likes else set()
        if new:
            await feeds.likes_stored(conn, [like_uri for *_, like_uri in likes if like_uri in new])
    return results


async def on_announce(ctx: InboundContext, act: InboundActivity) -> Result:
    """A boost: the boosted post is fetched when someone here needs it, the boost fans out."""
    actor = await remote_actor(ctx, act.actor)
    if not act.object_id:
        return ignored("Announce without an object")
    boosted = await fetch_boosted_post(ctx, act.object_id, actor)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if boosted and await repo.insert_remote_post(conn, boosted[0], boosted[1].id):
            await post_fetched(conn, boosted[0])
        if await repo.insert_announce(conn, actor.id, act.object_id, act.id):
            await feeds.announce_stored(conn, act.id)
    return DONE


async def on_undo_reaction(ctx: InboundContext, act: InboundActivity) -> Result:
    """Undo{Like} or Undo{Announce}: the reaction (found by its id or by actor and post) goes."""
    inner = act.object or {}
    if ref(inner.get("actor")) not in (None, act.actor):
        return ignored("an actor can only undo its own activities")
    table = "likes" if inner.get("type") == "Like" else "announces"
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None:
            return ignored("unknown actor")
        removed = await repo.delete_interaction(conn, table, actor.id, activity_uri=act.object_id,
                                                object_uri=ref(inner.get("object")))
    return DONE if removed else ignored("nothing to undo")


async def on_undo_reference(ctx: InboundContext, act: InboundActivity) -> Result:
    """An Undo that names what it undoes by id only: a follow, a like or a boost by that id."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        actor = await actors_repo.get_actor_by_uri(conn, act.actor)
        if actor is None:
            return ignored("unknown actor")
        if act.object_id and await repo.delete_follow_by_activity(conn, actor.id, act.object_id) is not None:
            return DONE
        results = [await repo.delete_interaction(conn, table, actor.id, activity_uri=act.object_id, object_uri=None)
                   for table in ("likes", "announces")]
    return DONE if any(results) else ignored("nothing to undo")
