"""One outbox service at a time for a named account: the command line's (and scripts') way to publish.

Each resolves what it acts on first (a handle by WebFinger, an unknown post or actor fetched,
when an HTTP client is given), then runs the service in a transaction of its own. Callers that
compose several moves into one commit use `outbox` with `outbox.acting_as` directly.
"""

from __future__ import annotations

import asyncpg

from ..net.http import HttpClient
from ..publish import Publisher
from ..repo.remote_actors import upsert_remote_actor
from . import blocking, edits, outbox, posting
from .targets import TargetError, find_actor, resolve_actor, resolve_object


async def _known_actor(pool: asyncpg.Pool, target: str):
    found = await find_actor(pool, target)
    if found is None:
        raise TargetError(f"no known actor {target}")
    return found


async def create_post(pool: asyncpg.Pool, publisher: Publisher, username: str, text_or_html: str, **kwargs) -> str:
    """Publish a post (see `outbox.create_post` for the options); its id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.create_post(conn, publisher, actor, text_or_html, **kwargs)


async def edit_post(pool: asyncpg.Pool, publisher: Publisher, username: str, url: str, text: str,
                    options: posting.PostOptions) -> str:
    """Edit one's own post; the Update's id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await edits.edit_post(conn, publisher, actor, url, text, options)


async def follow(pool: asyncpg.Pool, publisher: Publisher, http: HttpClient | None, username: str,
                 target: str) -> str:
    """Follow an actor by URL or @name@domain (fetched when unknown); the Follow's id."""
    known, fetched = await resolve_actor(pool, publisher.settings, http, target)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.follow(conn, publisher, actor, known or fetched)  # type: ignore[arg-type]


async def unfollow(pool: asyncpg.Pool, publisher: Publisher, username: str, target: str) -> str:
    """Stop following a known actor; the Undo's id."""
    followee = await _known_actor(pool, target)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.unfollow(conn, publisher, actor, followee)


async def block(pool: asyncpg.Pool, publisher: Publisher, http: HttpClient | None, username: str,
                target: str) -> str:
    """Block an actor by URL or @name@domain (fetched when unknown): follows end both ways; the Block's id."""
    known, fetched = await resolve_actor(pool, publisher.settings, http, target)
    async with outbox.acting_as(pool, username) as (conn, actor):
        blocked = known or await upsert_remote_actor(conn, fetched)  # type: ignore[arg-type]
        return await blocking.block(conn, publisher, actor, blocked)


async def unblock(pool: asyncpg.Pool, publisher: Publisher, username: str, target: str) -> str:
    """Lift a block of a known actor; the Undo's id."""
    blocked = await _known_actor(pool, target)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await blocking.unblock(conn, publisher, actor, blocked)


async def like(pool: asyncpg.Pool, publisher: Publisher, http: HttpClient | None, username: str, url: str) -> str:
    """Like a post (fetched when unknown and `http` is given); the Like's id."""
    post = await resolve_object(pool, publisher.settings, http, url)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.like(conn, publisher, actor, post)


async def announce(pool: asyncpg.Pool, publisher: Publisher, http: HttpClient | None, username: str,
                   url: str) -> str:
    """Share a post (fetched when unknown and `http` is given); the Announce's id."""
    post = await resolve_object(pool, publisher.settings, http, url)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.announce(conn, publisher, actor, post)


async def unlike(pool: asyncpg.Pool, publisher: Publisher, username: str, url: str) -> str:
    """Undo a like; the Undo's id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.unlike(conn, publisher, actor, url)


async def unannounce(pool: asyncpg.Pool, publisher: Publisher, username: str, url: str) -> str:
    """Undo a share; the Undo's id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.unannounce(conn, publisher, actor, url)


async def delete_object(pool: asyncpg.Pool, publisher: Publisher, username: str, url: str) -> str:
    """Delete one's own post; the Delete's id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.delete_object(conn, publisher, actor, url)


async def update_profile(pool: asyncpg.Pool, publisher: Publisher, username: str, **changes: str | None) -> str:
    """Change the display name and/or bio; the Update's id."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.update_profile(conn, publisher, actor, **changes)


async def follow_requests(pool: asyncpg.Pool, username: str) -> list[str]:
    """Pending follow requests of a locked account, oldest first."""
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.follow_requests(conn, actor)


async def answer_follow_request(pool: asyncpg.Pool, publisher: Publisher, username: str, follower: str, *,
                                accept: bool) -> str:
    """Accept or reject a pending follow request from a known actor; the Accept's or Reject's id."""
    requester = await _known_actor(pool, follower)
    async with outbox.acting_as(pool, username) as (conn, actor):
        return await outbox.answer_follow_request(conn, publisher, actor, requester, accept=accept)
