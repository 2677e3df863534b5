"""Inbound Create and Update of posts, Update of actors, and Delete of posts and actors."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import asyncpg

from activities.actor import Actor
from activities.parse import InboundActivity, ParseError, RemotePost, parse_actor, parse_post, ref, visibility_of
from activities.text import tag_hashtags
from activities.urls import same_origin

from ...dispatch import DONE, BatchItem, InboundContext, Result, ignored
from ...net.http import FetchError
from ...repo import actors as actors_repo
from ...repo import interactions as repo
from ...repo import status_views
from ...repo.remote_actors import upsert_remote_actor
from ...search.ngrams import post_terms
from ...turns import in_turns
from .. import feeds
from .common import as_list, object_document, remote_actor, remote_actors


def _addressed(post: RemotePost) -> list[str]:
    """Whom a post mentions or addresses."""
    return [a for a in list(post.mentions) + [ref(v) for v in as_list(post.raw.get("to")) + as_list(post.raw.get("cc"))]
            if a]


async def _relevant(conn: asyncpg.Connection, followed: set[int],
                    candidates: list[tuple[RemotePost, int | None, Actor]]) -> list[bool]:
    """Mastodon keeps a remote post only if it concerns someone here: its author is followed, it came to a
    personal inbox, it replies to a local post or it mentions or addresses a local account (two statements
    for any number of posts, and none when every author is followed)."""
    doubtful = [post for post, recipient_id, author in candidates if author.id not in followed and recipient_id is None]
    replied_to, addressed = set(), set()
    if doubtful:
        replied_to = await repo.local_objects_among(conn, [p.in_reply_to for p in doubtful if p.in_reply_to])
        addressed = await repo.local_actors_among(conn, list({a for p in doubtful for a in _addressed(p)}))
    return [author.id in followed or recipient_id is not None or post.in_reply_to in replied_to
            or any(a in addressed for a in _addressed(post)) for post, recipient_id, author in candidates]


async def post_fetched(conn: asyncpg.Connection, post: RemotePost) -> None:
    """Mentions and hashtags of a remote post stored because of a boost (not new to any timeline)."""
    object_id = await status_views.get_object_id(conn, post.id)
    await feeds.post_fetched(conn, object_id, mention_uris=post.mentions, hashtags=tag_hashtags(post.raw.get("tag")))


async def on_create_post(ctx: InboundContext, act: InboundActivity) -> Result:
    """A new remote post (embedded, or fetched from its own server), kept when it concerns someone here."""
    author = await remote_actor(ctx, act.actor)
    post = parse_post(await object_document(ctx, act), followers_uri=author.followers_uri)
    [result] = await _store_posts(ctx, [(post, ctx.recipient_id, author)])
    return result


@dataclass(frozen=True)
class PreparedPost:
    """An embedded post parsed and sanitized (its visibility not yet known: that needs its author), with its terms."""

    post: RemotePost
    terms: list[str]
    data: str  # the post's raw object as JSON text: encoding it in the batch's INSERT was one long step


def prepare_create_post(act: InboundActivity) -> PreparedPost:
    """The pure part of a Create of an embedded post, done ahead of its batch's turn."""
    post = parse_post(act.object or {}, shallow=True)  # parse_activity walked the activity, this object with it
    return PreparedPost(post, post_terms(post.content, post.name, post.summary), json.dumps(post.raw))


async def on_create_posts(ctx: InboundContext, items: list[BatchItem]) -> list[Result | Exception]:
    """Creates of embedded posts (of one sender or many, in arrival order), stored in one transaction."""
    authors = await remote_actors(ctx, list(dict.fromkeys(item.activity.actor for item in items)))
    results: list[Result | Exception] = []
    parsed: list[tuple[RemotePost, int | None, Actor] | None] = []
    ready: dict[str, PreparedPost] = {}
    async for item in in_turns(items):
        author = authors[item.activity.actor]
        try:
            if isinstance(author, FetchError):
                results.append(author)  # retried alone, on the jobs schedule, like a single Create
                parsed.append(None)
                continue
            if isinstance(item.prepared, PreparedPost):
                post = item.prepared.post
                post = replace(post, visibility=visibility_of(post.raw, author.followers_uri))
                ready[post.id] = item.prepared
            else:
                post = parse_post(item.activity.object or {}, followers_uri=author.followers_uri)
            parsed.append((post, item.recipient_id, author))
            results.append(DONE)
        except (ParseError, ValueError) as exc:
            parsed.append(None)
            results.append(exc)
    stored = await _store_posts(ctx, [p for p in parsed if p is not None], ready)
    return [stored.pop(0) if p is not None else r for p, r in zip(parsed, results, strict=True)]


async def _store_posts(ctx: InboundContext, posts: list[tuple[RemotePost, int | None, Actor]],
                       ready: dict[str, PreparedPost] | None = None) -> list[Result]:
    """Keep those new posts (each with the inbox it came to and its sender) that concern someone here, in order.

    `ready`: what was prepared ahead of the transaction for some of the posts (by id)."""
    results: list[Result] = [ignored("the post is not the actor's own")
                             if post.attributed_to != author.uri or not same_origin(post.id, author.uri) else DONE
                             for post, _, author in posts]
    candidates = [(i, *posts[i]) for i in range(len(posts)) if results[i] is DONE]
    if not candidates:
        return results
    terms = {uri: prepared.terms for uri, prepared in (ready or {}).items()}
    data = {uri: prepared.data for uri, prepared in (ready or {}).items()}
    async with ctx.pool.acquire() as conn, conn.transaction():
        deleted = await repo.tombstoned_among(conn, [(post.id, author.uri) for _, post, _, author in candidates])
        followed = await repo.with_local_followers(conn, list({author.id for *_, author in candidates}))
        relevant = await _relevant(conn, followed, [(post, recipient_id, author)
                                                    for _, post, recipient_id, author in candidates])
        kept: list[tuple[RemotePost, Actor]] = []
        for (i, post, _, author), concerns_us in zip(candidates, relevant, strict=True):
            if (post.id, author.uri) in deleted:
                results[i] = ignored("the post was deleted before it arrived")
            elif not concerns_us:
                results[i] = ignored("nobody here follows or is addressed")
            else:
                kept.append((post, author))
        stored = await repo.insert_remote_posts(conn, [(post, author.id) for post, author in kept], terms,
                                                data) if kept else {}
        new = [(stored.pop(post.id), post, author) for post, author in kept if post.id in stored]  # repeats once
        if new:
            await feeds.posts_stored(conn, [(object_id, post.mentions, tag_hashtags(post.raw.get("tag")))
                                            for object_id, post, _ in new])
            for _, post, author in new:
                await ctx.post_stored(conn, post, author)
    return results


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
